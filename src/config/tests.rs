use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::load::{leaf_keys, schema};
use super::*;

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| vars.get(name).cloned()
}

fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_str(text, Path::new("/etc/lepton/lepton.toml"), &env_of(vars), &[])
}

fn diagnostics(result: Result<Loaded, ConfigError>) -> Vec<Diagnostic> {
    match result {
        Err(ConfigError::Invalid { diagnostics }) => diagnostics,
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

#[test]
fn no_file_gives_defaults() -> anyhow::Result<()> {
    let loaded = load(None, &env_of(&[]), &[])?;

    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.sources.get("server.port"), Some(&Source::Default));
    Ok(())
}

#[test]
fn file_values_record_their_line() -> anyhow::Result<()> {
    let loaded = load_text("[server]\nhost = \"0.0.0.0\"\nport = 9000\n\n[store]\nkind = \"redis\"\n", &[])?;

    assert_eq!(loaded.config.server.host, "0.0.0.0");
    assert_eq!(loaded.config.server.port, 9000);
    assert_eq!(loaded.config.store.kind, Some(bot_core::bot::StoreKind::Redis));
    let expected = Source::File { path: PathBuf::from("/etc/lepton/lepton.toml"), line: 3 };
    assert_eq!(loaded.sources.get("server.port"), Some(&expected));
    Ok(())
}

#[test]
fn unknown_key_names_closest_and_line() {
    let found = diagnostics(load_text("[server]\nhost = \"0.0.0.0\"\nprot = 9000\n", &[]));

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].column), (3, 1));
    assert_eq!(found[0].key.as_deref(), Some("server.prot"));
    assert!(found[0].message.contains("did you mean `server.port`"), "{}", found[0].message);
}

#[test]
fn unknown_section_names_closest() {
    let found = diagnostics(load_text("# comment\n[sever]\nport = 1\n", &[]));

    assert_eq!(found[0].line, 2);
    assert!(found[0].message.contains("did you mean `server`"), "{}", found[0].message);
}

#[test]
fn unknown_key_far_from_any_lists_keys() {
    let found = diagnostics(load_text("[log]\nverbosity = 3\n", &[]));

    assert!(found[0].message.contains("`format`, `level`"), "{}", found[0].message);
}

#[test]
fn every_unknown_key_is_reported() {
    let found = diagnostics(load_text("[server]\nprot = 1\n[web]\nmax_socket = 2\n", &[]));

    let lines: Vec<usize> = found.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 4]);
}

#[test]
fn wrong_type_names_key_and_line() {
    let found = diagnostics(load_text("[server]\nhost = \"::\"\nport = \"eighty\"\n", &[]));

    assert_eq!(found[0].line, 3);
    assert_eq!(found[0].key.as_deref(), Some("server.port"));
    let shown = found[0].to_string();
    assert!(shown.starts_with("/etc/lepton/lepton.toml:3:"), "{shown}");
}

#[test]
fn syntax_error_names_line() {
    let found = diagnostics(load_text("[server]\nport = = 1\n", &[]));

    assert_eq!(found[0].line, 2);
}

#[test]
fn invalid_value_names_key_and_line() {
    let found = diagnostics(load_text("[discord]\nenabled = true\nshards = \"4-2/8\"\n", &[]));

    assert_eq!(found[0].key.as_deref(), Some("discord.shards"));
    assert_eq!(found[0].line, 3);
}

#[test]
fn environment_overrides_file() -> anyhow::Result<()> {
    let loaded = load_text("[server]\nport = 9000\n", &[("LEPTON_SERVER_PORT", "9100"), ("LEPTON_WEB_CUSTOMER_ORIGINS", "https://a.example, https://b.example")])?;

    assert_eq!(loaded.config.server.port, 9100);
    assert_eq!(loaded.sources.get("server.port"), Some(&Source::Env("LEPTON_SERVER_PORT".to_owned())));
    assert_eq!(loaded.config.web.customer_origins, ["https://a.example", "https://b.example"]);
    Ok(())
}

#[test]
fn environment_parses_each_type() -> anyhow::Result<()> {
    let vars = [("LEPTON_REDIS_CLUSTER", "yes"), ("LEPTON_DISCORD_SUPPORT_CHANNELS", "11,22 33"), ("LEPTON_REDIS_KEY_PREFIX", "123"), ("LEPTON_REDIS_MAX_EVENTS", "50")];
    let loaded = load(None, &env_of(&vars), &[])?;

    assert_eq!(loaded.config.redis.cluster, Some(true));
    assert_eq!(loaded.config.discord.support_channels, [11, 22, 33]);
    assert_eq!(loaded.config.redis.key_prefix.as_deref(), Some("123"));
    assert_eq!(loaded.config.redis.max_events, Some(50));
    Ok(())
}

#[test]
fn older_environment_names_still_work() -> anyhow::Result<()> {
    let vars = [("LEPTON_SESSION_STORE", "memory"), ("LEPTON_AGENTS_FILE", "/srv/agents.json"), ("LEPTON_AGENT_TOKEN", "t0ken")];
    let loaded = load(None, &env_of(&vars), &[])?;

    assert_eq!(loaded.config.store.kind, Some(bot_core::bot::StoreKind::Memory));
    assert_eq!(loaded.config.agent.accounts_file, Some(PathBuf::from("/srv/agents.json")));
    assert_eq!(loaded.config.agent.token.as_ref().map(Secret::expose), Some("t0ken"));
    Ok(())
}

#[test]
fn canonical_environment_name_beats_alias() -> anyhow::Result<()> {
    let loaded = load(None, &env_of(&[("LEPTON_SESSION_STORE", "memory"), ("LEPTON_STORE_KIND", "redis")]), &[])?;

    assert_eq!(loaded.config.store.kind, Some(bot_core::bot::StoreKind::Redis));
    Ok(())
}

#[test]
fn mistyped_environment_names_variable() {
    let result = load(None, &env_of(&[("LEPTON_SERVER_PORT", "eighty")]), &[]);

    let message = result.expect_err("eighty accepted").to_string();
    assert!(message.contains("LEPTON_SERVER_PORT=\"eighty\""), "{message}");
}

#[test]
fn invalid_environment_secret_is_not_printed() {
    let result = load(None, &env_of(&[("LEPTON_REDIS_URL", "http://:hunter2@h")]), &[]);

    let message = result.expect_err("http:// accepted").to_string();
    assert!(message.contains("LEPTON_REDIS_URL"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn mistyped_file_secret_is_not_printed() {
    let found = diagnostics(load_text("[agent]\ntoken = 987654321\n", &[]));

    assert_eq!(found[0].key.as_deref(), Some("agent.token"));
    assert_eq!(found[0].line, 2);
    let shown = found[0].to_string();
    assert!(shown.contains("expected a string"), "{shown}");
    assert!(!shown.contains("987654321"), "{shown}");
}

#[test]
fn url_password_in_a_wrong_value_is_not_printed() {
    let from_env = load(None, &env_of(&[("LEPTON_SESSION_STORE", "redis://:hunter2@h:6379/0")]), &[]).expect_err("a URL accepted as store.kind").to_string();
    let from_file = diagnostics(load_text("[store]\nkind = \"rediss://:hunter2@h:6379\"\n", &[]))[0].to_string();
    let proxy = diagnostics(load_text("[discord]\napi_proxy = \"htp://user:hunter2@proxy:3000\"\n", &[]))[0].to_string();

    for message in [from_env, from_file] {
        assert!(message.contains("store.kind"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert!(proxy.contains("discord.api_proxy"), "{proxy}");
    assert!(!proxy.contains("hunter2"), "{proxy}");
}

#[test]
fn flag_overrides_environment() -> anyhow::Result<()> {
    let flags = [Override::new("server.port", "--port", 7000)];
    let loaded = load(None, &env_of(&[("LEPTON_SERVER_PORT", "9100")]), &flags)?;

    assert_eq!(loaded.config.server.port, 7000);
    assert_eq!(loaded.sources.get("server.port"), Some(&Source::Flag("--port".to_owned())));
    Ok(())
}

#[test]
fn file_named_by_environment_is_read() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("lepton-config-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("lepton.toml");
    std::fs::write(&file, "[server]\nport = 9300\nbot = \"shop\"\n")?;

    let loaded = load(None, &env_of(&[(CONFIG_ENV, file.to_str().unwrap_or_default())]), &[]);
    std::fs::remove_dir_all(&dir)?;
    let loaded = loaded?;

    assert_eq!(loaded.config.server.port, 9300);
    assert_eq!(loaded.config.server.bot, Some(dir.join("shop")), "a relative path is relative to the file's folder");
    Ok(())
}

#[test]
fn missing_file_is_an_error() {
    let result = load(Some(Path::new("/nonexistent/lepton.toml")), &env_of(&[]), &[]);

    assert!(matches!(result, Err(ConfigError::Read { .. })), "{result:?}");
}

#[test]
fn show_redacts_secrets() -> anyhow::Result<()> {
    let text = "[agent]\ntoken = \"agent-s3cret\"\n[redis]\nurl = \"redis://:pa55word@127.0.0.1:6379/0\"\n[telegram]\ntoken = \"tg-s3cret\"\nwebhook_secret = \"hook-s3cret\"\n";
    let loaded = load_text(text, &[("LEPTON_DISCORD_TOKEN", "dc-s3cret")])?;

    let shown = render(&loaded);
    let debug = format!("{:?}", loaded.config);

    for secret in ["agent-s3cret", "pa55word", "tg-s3cret", "hook-s3cret", "dc-s3cret"] {
        assert!(!shown.contains(secret), "config show printed {secret}:\n{shown}");
        assert!(!debug.contains(secret), "Debug printed {secret}: {debug}");
    }
    assert!(shown.contains("127.0.0.1:6379"), "{shown}");
    Ok(())
}

#[test]
fn show_notes_sources_and_loads_back() -> anyhow::Result<()> {
    let loaded = load_text("[server]\nport = 9000\n", &[("LEPTON_LOG_FORMAT", "json")])?;

    let shown = render(&loaded);
    let again = load_text(&shown, &[])?;

    assert!(shown.contains("port = 9000  # /etc/lepton/lepton.toml:2"), "{shown}");
    assert!(shown.contains("format = \"json\"  # environment LEPTON_LOG_FORMAT"), "{shown}");
    assert_eq!(again.config, loaded.config);
    Ok(())
}

/// Uncomments the `# key = value` lines of the example, so that every key
/// it documents is set.
fn uncommented_example() -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lepton.example.toml");
    let text = std::fs::read_to_string(&path)?;
    let lines = text.lines().map(|line| {
        let rest = line.strip_prefix("# ").unwrap_or(line);
        let is_key = rest.split_once(" = ").is_some_and(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        if is_key {
            rest
        } else {
            line
        }
    });
    Ok(lines.collect::<Vec<_>>().join("\n"))
}

#[test]
fn example_file_loads() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lepton.example.toml");

    let loaded = load(Some(&path), &env_of(&[]), &[]);

    assert!(loaded.is_ok(), "{:?}", loaded.err());
    Ok(())
}

#[test]
fn example_file_documents_every_key() -> anyhow::Result<()> {
    let text = uncommented_example()?;
    let loaded = load_text(&text, &[]).map_err(|error| anyhow::anyhow!("the uncommented example does not load:\n{error}"))?;

    let mut keys = Vec::new();
    leaf_keys(&schema(), "", &mut keys);
    for key in keys {
        let source = loaded.sources.get(&key);
        assert!(matches!(source, Some(Source::File { .. })), "docs/lepton.example.toml does not document `{key}`");
    }
    Ok(())
}

#[test]
fn metrics_path_inside_api_rejected() {
    let found = diagnostics(load_text("[metrics]\npath = \"/api/metrics\"\n", &[]));

    assert_eq!(found[0].key.as_deref(), Some("metrics.path"));
    assert_eq!(found[0].line, 2);
}

#[test]
fn metrics_path_on_another_route_rejected() {
    for path in ["/", "/healthz", "/readyz", "/widget.js", "/demo/orders/1"] {
        let found = diagnostics(load_text(&format!("[metrics]\npath = \"{path}\"\n"), &[]));

        assert_eq!(found[0].key.as_deref(), Some("metrics.path"), "{path}");
    }
}

#[test]
fn metrics_token_from_environment_redacted() -> anyhow::Result<()> {
    let loaded = load_text("", &[("LEPTON_METRICS_TOKEN", "scrape-s3cret")])?;

    let shown = render(&loaded);
    let access = loaded.config.metrics.access();

    assert!(!shown.contains("scrape-s3cret"), "config show printed the metrics token:\n{shown}");
    assert_eq!(access.and_then(|access| access.token).as_deref(), Some("scrape-s3cret"));
    Ok(())
}

#[test]
fn mistyped_log_level_in_file_is_rejected() {
    let found = diagnostics(load_text("[log]\nlevel = \"inof\"\n", &[]));

    assert!(found.iter().any(|d| d.key.as_deref() == Some("log.level")), "{found:?}");
}

#[test]
fn mistyped_log_level_in_env_names_variable() {
    let result = load_text("", &[("LEPTON_LOG", "verbose")]);

    let Err(ConfigError::Value { key, source_name, .. }) = result else {
        panic!("expected a value error, got {result:?}");
    };
    assert_eq!(key, "log.level");
    assert_eq!(source_name, "environment LEPTON_LOG");
}

#[test]
fn log_filters_with_levels_and_targets_pass() -> anyhow::Result<()> {
    for level in ["info", "WARN", "info,lepton_web=debug", "off", "lepton=trace"] {
        let text = format!("[log]\nlevel = \"{level}\"\n");

        let loaded = load_text(&text, &[])?;

        assert_eq!(loaded.config.log.level, level);
    }
    Ok(())
}

#[test]
fn encoder_env_overrides_file_and_bot() -> anyhow::Result<()> {
    let loaded = load_text("[encoder]\ndevice = \"cpu\"\nbatch_size = 8\n", &[("LEPTON_ENCODER_DEVICE", "cuda:1")])?;
    let bot = bot_core::bot::EncoderSettings::new("models/mini");

    let applied = loaded.config.encoder.apply(Some(bot)).ok_or_else(|| anyhow::anyhow!("the bot's encoder was dropped"))?;

    assert_eq!(applied.device, bot_core::bot::EncoderDevice::Cuda(1));
    assert_eq!(applied.batch_size, 8);
    assert_eq!(applied.model, "models/mini");
    Ok(())
}

#[test]
fn encoder_model_gives_a_bot_an_encoder() -> anyhow::Result<()> {
    let loaded = load_text("[encoder]\nmodel = \"org/name\"\n", &[])?;

    let applied = loaded.config.encoder.apply(None).ok_or_else(|| anyhow::anyhow!("no encoder from [encoder] model"))?;

    assert_eq!(applied.model, "org/name");
    Ok(())
}

#[test]
fn encoder_device_typo_rejected() {
    let found = diagnostics(load_text("[encoder]\ndevice = \"gpu\"\n", &[]));

    assert_eq!(found[0].key.as_deref(), Some("encoder.device"));
    assert!(found[0].message.contains("cpu, cuda or cuda:N"), "{}", found[0].message);
}
