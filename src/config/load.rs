//! Loading the configuration: the file, checked key by key against the known
//! keys with line and column, then the environment, then command-line flags.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use toml::de::{DeTable, DeValue};

use super::Config;

/// The environment variable that names the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "LEPTON_CONFIG";

/// Older environment variable names that still set a key, beside `LEPTON_<SECTION>_<KEY>`.
/// The `LEPTON_<SECTION>_<KEY>` name wins when both are set.
pub const ENV_ALIASES: &[(&str, &str)] = &[("LEPTON_SESSION_STORE", "store.kind"), ("LEPTON_AGENTS_FILE", "agent.accounts_file"), ("LEPTON_LOG", "log.level")];

/// Lookup of environment variables, passed as a parameter so that tests need not change the process's environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Origin of a key's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File { path, line } => write!(f, "{}:{line}", path.display()),
            Self::Env(name) => write!(f, "environment {name}"),
            Self::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value a command-line flag sets, applied over the file and the environment.
#[derive(Clone, Debug)]
pub struct Override {
    /// The dotted key, such as `server.port`.
    pub key: &'static str,
    pub value: Value,
    /// The flag as written, such as `--port`.
    pub flag: &'static str,
}

impl Override {
    pub fn new(key: &'static str, flag: &'static str, value: impl Into<Value>) -> Self {
        Self { key, value: value.into(), flag }
    }
}

/// One problem in the file, at a line and column (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The dotted key, when the problem belongs to one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        match &self.key {
            Some(key) => write!(f, "`{key}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reason the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", join_lines(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
    /// `value` is `None` for secrets, which are never printed.
    #[error("invalid {variable}{}: `{key}` {reason}", value.as_ref().map(|v| format!("={v:?}")).unwrap_or_default())]
    Env { variable: String, value: Option<String>, key: String, reason: String },
    #[error("invalid {flag}: `{key}` {reason}")]
    Flag { flag: String, key: String, reason: String },
    /// A value that has the right type but is not allowed, from the environment or a flag.
    #[error("invalid `{key}` from {source_name}: {reason}")]
    Value { key: String, source_name: String, reason: String },
}

fn join_lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// The effective configuration and where each key's value came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// Every key, dotted (`server.port`), with its source.
    pub sources: BTreeMap<String, Source>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// Loads the file given, else the one `LEPTON_CONFIG` names, else none. Then
/// applies the environment and `overrides`.
pub fn load(file: Option<&Path>, env: Env<'_>, overrides: &[Override]) -> Result<Loaded, ConfigError> {
    let named = env(CONFIG_ENV).filter(|value| !value.trim().is_empty()).map(PathBuf::from);
    match file.map(Path::to_path_buf).or(named) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            load_str(&text, &path, env, overrides)
        }
        None => finish(Config::default(), default_sources(), None, env, overrides),
    }
}

/// Loads the configuration from `text`, the contents of the file at `path`.
pub fn load_str(text: &str, path: &Path, env: Env<'_>, overrides: &[Override]) -> Result<Loaded, ConfigError> {
    let document = DeTable::parse(text).map_err(|error| ConfigError::Invalid { diagnostics: vec![toml_diagnostic(&error, text, path, None)] })?;

    let schema = schema();
    let mut sources = default_sources();
    let mut diagnostics = Vec::new();
    let mut file = FileCheck { text, path, diagnostics: &mut diagnostics, sources: &mut sources };
    file.check_table(document.get_ref(), &schema, "");
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        return Err(ConfigError::Invalid { diagnostics });
    }

    let mut config: Config = toml::from_str(text).map_err(|error| {
        let key = error.span().and_then(|span| key_at(document.get_ref(), "", span.start));
        ConfigError::Invalid { diagnostics: vec![toml_diagnostic(&error, text, path, key)] }
    })?;
    resolve_paths(&mut config, &sources, path);
    finish(config, sources, Some(path.to_path_buf()), env, overrides)
}

/// Applies the environment and the overrides, then checks the values that
/// have the right type but may still be wrong.
fn finish(config: Config, mut sources: BTreeMap<String, Source>, file: Option<PathBuf>, env: Env<'_>, overrides: &[Override]) -> Result<Loaded, ConfigError> {
    let mut value = to_value(&config);
    for key in sources.keys().cloned().collect::<Vec<_>>() {
        let Some((variable, text)) = env_value(&key, env) else { continue };
        value = set_from_text(&value, &key, &text).map_err(|reason| match hides_value(&key, &text) {
            true => ConfigError::Env { variable: variable.clone(), value: None, key: key.clone(), reason: without_value(&reason) },
            false => ConfigError::Env { variable: variable.clone(), value: Some(text.clone()), key: key.clone(), reason },
        })?;
        sources.insert(key, Source::Env(variable));
    }
    for flag in overrides {
        let next = with_leaf(&value, flag.key, flag.value.clone());
        check(&next).map_err(|reason| ConfigError::Flag { flag: flag.flag.to_owned(), key: flag.key.to_owned(), reason })?;
        value = next;
        sources.insert(flag.key.to_owned(), Source::Flag(flag.flag.to_owned()));
    }
    let config = check(&value).map_err(|reason| ConfigError::Value { key: String::new(), source_name: "the configuration".to_owned(), reason })?;

    let problems = super::validate::validate(&config);
    if let Some((key, reason)) = problems.into_iter().next() {
        return Err(match sources.get(&key) {
            Some(Source::File { path, line }) => ConfigError::Invalid { diagnostics: vec![Diagnostic { path: path.clone(), line: *line, column: 1, key: Some(key), message: reason }] },
            Some(source) => ConfigError::Value { key, source_name: source.to_string(), reason },
            None => ConfigError::Value { key, source_name: "the configuration".to_owned(), reason },
        });
    }
    Ok(Loaded { config, sources, file })
}

/// Returns the variable that sets `key` and its value, if one is set and not empty.
fn env_value(key: &str, env: Env<'_>) -> Option<(String, String)> {
    let canonical = env_name(key);
    let aliases = ENV_ALIASES.iter().filter(|(_, target)| *target == key).map(|(name, _)| (*name).to_owned());
    std::iter::once(canonical).chain(aliases).find_map(|name| {
        let value = env(&name)?;
        (!value.trim().is_empty()).then_some((name, value))
    })
}

/// Returns `LEPTON_<SECTION>_<KEY>` for a dotted key.
pub(crate) fn env_name(key: &str) -> String {
    format!("LEPTON_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Sets `key` from an environment variable's text: as a string, else as a
/// number or boolean, else as a list separated by commas or spaces. Returns the
/// first attempt's error, which names the type the key expects.
fn set_from_text(value: &Value, key: &str, text: &str) -> Result<Value, String> {
    let text = text.trim();
    let mut candidates = vec![Value::String(text.to_owned())];
    candidates.extend(scalar(text));
    let items: Vec<Value> = text.split([',', ' ']).map(str::trim).filter(|item| !item.is_empty()).map(|item| scalar(item).unwrap_or_else(|| Value::String(item.to_owned()))).collect();
    candidates.push(Value::Array(items));

    let mut first_error = None;
    for candidate in candidates {
        let next = with_leaf(value, key, candidate);
        match check(&next) {
            Ok(_) => return Ok(next),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

/// Parses a number, or a boolean written `true`/`false`, `yes`/`no` or `1`/`0`.
fn scalar(text: &str) -> Option<Value> {
    if let Ok(number) = text.parse::<u64>() {
        return Some(Value::from(number));
    }
    if let Ok(number) = text.parse::<i64>() {
        return Some(Value::from(number));
    }
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(Value::Bool(true)),
        "false" | "no" | "off" => Some(Value::Bool(false)),
        _ => text.parse::<f64>().ok().map(Value::from),
    }
}

fn check(value: &Value) -> Result<Config, String> {
    serde_json::from_value(value.clone()).map_err(|error| error.to_string())
}

pub(crate) fn to_value(config: &Config) -> Value {
    // Serializing plain structs of strings, numbers and lists cannot fail.
    serde_json::to_value(config).unwrap_or(Value::Null)
}

/// Returns `value` with the dotted `key` set to `leaf`.
fn with_leaf(value: &Value, key: &str, leaf: Value) -> Value {
    let mut value = value.clone();
    let mut node = &mut value;
    for part in key.split('.') {
        let Value::Object(map) = node else { break };
        node = map.entry(part.to_owned()).or_insert(Value::Null);
    }
    *node = leaf;
    value
}

/// Returns the known keys: the sections and keys of the default configuration.
/// An object is a section, and anything else (`null` for an unset option) is a key.
pub(crate) fn schema() -> Map<String, Value> {
    match to_value(&Config::default()) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Lists every key of the schema, dotted, each with the default source.
fn default_sources() -> BTreeMap<String, Source> {
    let mut keys = Vec::new();
    leaf_keys(&schema(), "", &mut keys);
    keys.into_iter().map(|key| (key, Source::Default)).collect()
}

pub(crate) fn leaf_keys(map: &Map<String, Value>, prefix: &str, keys: &mut Vec<String>) {
    for (name, value) in map {
        let dotted = dotted(prefix, name);
        match value {
            Value::Object(section) => leaf_keys(section, &dotted, keys),
            _ => keys.push(dotted),
        }
    }
}

fn dotted(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Makes the relative paths that the file sets relative to the file's folder.
/// The keys in `fields` are the ones that contain paths.
fn resolve_paths(config: &mut Config, sources: &BTreeMap<String, Source>, file: &Path) {
    let Some(folder) = file.parent() else { return };
    let from_file = |key: &str| matches!(sources.get(key), Some(Source::File { .. }));
    let fields: [(&str, &mut Option<PathBuf>); 4] = [
        ("server.bot", &mut config.server.bot),
        ("server.data_dir", &mut config.server.data_dir),
        ("store.path", &mut config.store.path),
        ("agent.accounts_file", &mut config.agent.accounts_file),
    ];
    for (key, field) in fields {
        if let Some(path) = field.as_mut().filter(|path| path.is_relative() && from_file(key)) {
            *path = folder.join(&*path);
        }
    }
}

/// Walks the parsed file against the schema, reporting unknown keys and
/// recording the line of each known one.
struct FileCheck<'a> {
    text: &'a str,
    path: &'a Path,
    diagnostics: &'a mut Vec<Diagnostic>,
    sources: &'a mut BTreeMap<String, Source>,
}

impl FileCheck<'_> {
    fn check_table(&mut self, table: &DeTable<'_>, schema: &Map<String, Value>, prefix: &str) {
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let dotted = dotted(prefix, name);
            let (line, column) = line_column(self.text, key.span().start);
            match (schema.get(name), value.get_ref()) {
                (None, _) => {
                    let message = unknown_key_message(name, prefix, schema);
                    self.diagnostics.push(Diagnostic { path: self.path.to_path_buf(), line, column, key: Some(dotted), message });
                }
                (Some(Value::Object(section)), DeValue::Table(table)) => self.check_table(table, section, &dotted),
                // A section written as a value is a type error, which deserializing reports.
                (Some(Value::Object(_)), _) => {}
                (Some(_), _) => {
                    self.sources.insert(dotted, Source::File { path: self.path.to_path_buf(), line });
                }
            }
        }
    }
}

fn unknown_key_message(name: &str, prefix: &str, schema: &Map<String, Value>) -> String {
    let what = if prefix.is_empty() { "section" } else { "key" };
    let closest = schema
        .keys()
        .map(|known| (strsim::damerau_levenshtein(name, known), known))
        .filter(|(distance, known)| *distance <= (known.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, known)) => format!("unknown {what} `{name}`; did you mean `{}`?", dotted(prefix, known)),
        None => {
            let known: Vec<String> = schema.keys().map(|known| format!("`{known}`")).collect();
            let place = if prefix.is_empty() { "sections are".to_owned() } else { format!("keys of [{prefix}] are") };
            format!("unknown {what} `{name}`; the {place} {}", known.join(", "))
        }
    }
}

/// Returns the dotted key whose name or value contains byte `offset`.
fn key_at(table: &DeTable<'_>, prefix: &str, offset: usize) -> Option<String> {
    for (key, value) in table {
        let dotted = dotted(prefix, key.get_ref().as_ref());
        if let DeValue::Table(inner) = value.get_ref() {
            if let Some(found) = key_at(inner, &dotted, offset) {
                return Some(found);
            }
        }
        if key.span().contains(&offset) || value.span().contains(&offset) {
            return Some(dotted);
        }
    }
    None
}

fn toml_diagnostic(error: &toml::de::Error, text: &str, path: &Path, key: Option<String>) -> Diagnostic {
    let (line, column) = error.span().map(|span| line_column(text, span.start)).unwrap_or((1, 1));
    let message = error.message().trim().to_owned();
    let value = error.span().and_then(|span| text.get(span));
    let message = match &key {
        Some(name) if hides_value(name, value.unwrap_or(&message)) => without_value(&message),
        _ => message,
    };
    Diagnostic { path: path.to_path_buf(), line, column, key, message }
}

/// Returns whether an error about `key` must not print its value: a secret, or text
/// that looks like a URL with a password, such as a Redis URL in the wrong key.
fn hides_value(key: &str, value: &str) -> bool {
    super::show::is_secret_key(key) || (value.contains("://") && value.contains('@'))
}

/// Drops the value from a parser's message about a secret, such as
/// "invalid type: integer `123`, expected a string", keeping what was expected.
fn without_value(message: &str) -> String {
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("invalid value (not shown, as it may hold a secret), expected {expected}"),
        None => "invalid value (not shown, as it may hold a secret)".to_owned(),
    }
}

/// Returns the 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    (line, before[line_start..].chars().count() + 1)
}
