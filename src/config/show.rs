//! `lepton config show`: the effective configuration as TOML, with secrets
//! redacted and each value's source in a comment.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::load::{env_name, to_value, Loaded, Source};

/// The text that replaces a secret.
const REDACTED: &str = "<redacted>";

/// True for keys whose values are secrets: names ending in `token`, `secret` or `password`.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let name = key.rsplit('.').next().unwrap_or(key);
    ["token", "secret", "password"].iter().any(|suffix| name.ends_with(suffix))
}

/// Renders the effective configuration as TOML that loads back, except that
/// secrets read `<redacted>`. Unset keys are commented out.
pub fn render(loaded: &Loaded) -> String {
    let mut out = String::new();
    let file = loaded.file.as_ref().map_or_else(|| "no configuration file".to_owned(), |path| path.display().to_string());
    let _ = writeln!(out, "# The effective configuration: flags, then environment variables, then {file}, then defaults.");
    let _ = writeln!(out, "# Secrets are redacted. Each comment names the source of the value and the environment variable that sets it.");
    if let Value::Object(sections) = to_value(&loaded.config) {
        render_table(&mut out, loaded, &sections, "");
    }
    out
}

fn render_table(out: &mut String, loaded: &Loaded, table: &Map<String, Value>, prefix: &str) {
    if !prefix.is_empty() {
        let _ = writeln!(out, "\n[{prefix}]");
    }
    for (name, value) in table.iter().filter(|(_, value)| !value.is_object()) {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let source = loaded.sources.get(&key).map(ToString::to_string).unwrap_or_default();
        let env = env_name(&key);
        match value {
            Value::Null => {
                let _ = writeln!(out, "# {name} is not set  # {env}");
            }
            _ => {
                let shown = redact(&key, value);
                let from_env = matches!(loaded.sources.get(&key), Some(Source::Env(_)));
                match from_env {
                    true => writeln!(out, "{name} = {shown}  # {source}"),
                    false => writeln!(out, "{name} = {shown}  # {source}; {env}"),
                }
                .unwrap_or_default();
            }
        }
    }
    for (name, value) in table {
        if let Value::Object(inner) = value {
            let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            render_table(out, loaded, inner, &key);
        }
    }
}

/// Formats a value as TOML, replacing secrets and the passwords in URLs.
fn redact(key: &str, value: &Value) -> String {
    if is_secret_key(key) {
        return toml_text(&Value::String(REDACTED.to_owned()));
    }
    match value {
        Value::String(text) if text.contains("://") && text.contains('@') => toml_text(&Value::String(lepton_redis::redact_url(text))),
        _ => toml_text(value),
    }
}

fn toml_text(value: &Value) -> String {
    match toml::Value::try_from(value) {
        Ok(value) => value.to_string(),
        Err(_) => value.to_string(),
    }
}
