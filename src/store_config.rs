//! The choice of the session store `lepton serve` opens: the `--store` option, else the
//! environment (`LEPTON_SESSION_STORE`, `LEPTON_REDIS_URL`,
//! `LEPTON_REDIS_KEY_PREFIX`, `LEPTON_REDIS_CLUSTER`), else the bot's
//! `settings.session_store` and `settings.redis`, else the embedded store in
//! the data folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bot_core::bot::{Settings, StoreKind};
use bot_core::{MemoryStore, SessionStore};

/// The store named by `--store`, before the bot's settings are known.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StoreOption {
    /// No `--store`: the environment or the bot's settings decide.
    #[default]
    FromSettings,
    Memory,
    /// The embedded store, in the data folder or at this path.
    Embedded(Option<PathBuf>),
    /// Redis, at this URL or the configured one.
    Redis(Option<String>),
}

impl StoreOption {
    /// Parses `--store`: `embedded`, `memory`, `redis`, a `redis://` or
    /// `rediss://` URL (schemes in any case), or the path of an embedded store
    /// file. Another URL scheme, or `host:port` without a scheme, is an error
    /// rather than a file path, so that a typo cannot quietly give each server
    /// a store of its own.
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        let option = match value {
            "memory" => Self::Memory,
            "embedded" => Self::Embedded(None),
            "redis" => Self::Redis(None),
            _ => match value.split_once("://") {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("redis") || scheme.eq_ignore_ascii_case("rediss") => {
                    Self::Redis(Some(format!("{}://{rest}", scheme.to_ascii_lowercase())))
                }
                Some((scheme, _)) => {
                    anyhow::bail!("invalid --store {value:?}: unknown URL scheme {scheme:?}; use redis:// or rediss://, or a file path for the embedded store")
                }
                None if value.to_ascii_lowercase().starts_with("redis") && value.contains(':') => {
                    anyhow::bail!("invalid --store {value:?}: a Redis URL starts with redis:// or rediss://")
                }
                None if looks_like_host_port(value) => {
                    anyhow::bail!("invalid --store {value:?}: this looks like a Redis address; write redis://{value}, or ./{value} for a file of that name")
                }
                None => Self::Embedded(Some(PathBuf::from(value))),
            },
        };
        Ok(option)
    }
}

/// True for `host:port` and `[v6]:port`: a name and a port number without a slash.
fn looks_like_host_port(value: &str) -> bool {
    let Some((host, port)) = value.rsplit_once(':') else { return false };
    !host.is_empty() && !host.contains('/') && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
}

/// The store to open, with every setting resolved.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// The embedded on-disk store at this path; with `flush_interval`, writes
    /// are made durable that long after they return instead of before.
    Embedded { path: PathBuf, flush_interval: Option<Duration> },
    /// Process memory; everything is lost on exit.
    Memory,
    Redis(lepton_redis::RedisConfig),
}

/// Reads environment variables; a parameter so that tests need not change the process's environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves the store from `--store`, the environment and the bot's settings.
pub fn resolve(option: &StoreOption, settings: &Settings, env: Env<'_>, data_dir: &Path, flush_interval: Option<Duration>) -> anyhow::Result<StoreConfig> {
    let from_env = match env("LEPTON_SESSION_STORE").filter(|v| !v.is_empty()) {
        Some(name) => Some(StoreKind::from_name(&name).with_context(|| {
            format!("invalid LEPTON_SESSION_STORE {name:?}: use one of {}", StoreKind::NAMES.join(", "))
        })?),
        None => None,
    };
    let embedded = |path: Option<&PathBuf>| StoreConfig::Embedded {
        path: path.cloned().unwrap_or_else(|| data_dir.join("sessions.redb")),
        flush_interval,
    };

    let config = match option {
        StoreOption::Memory => StoreConfig::Memory,
        StoreOption::Embedded(path) => embedded(path.as_ref()),
        StoreOption::Redis(url) => StoreConfig::Redis(redis_config(url.clone(), settings, env)?),
        StoreOption::FromSettings => match from_env.or(settings.session_store).unwrap_or(StoreKind::Embedded) {
            StoreKind::Memory => StoreConfig::Memory,
            StoreKind::Embedded => embedded(None),
            StoreKind::Redis => StoreConfig::Redis(redis_config(None, settings, env)?),
        },
    };
    Ok(config)
}

fn redis_config(url: Option<String>, settings: &Settings, env: Env<'_>) -> anyhow::Result<lepton_redis::RedisConfig> {
    let mut config = lepton_redis::RedisConfig::default();
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(url) = url.or_else(|| non_empty("LEPTON_REDIS_URL")).or_else(|| settings.redis.url.clone()) {
        config.url = url;
    }
    if let Some(prefix) = non_empty("LEPTON_REDIS_KEY_PREFIX").or_else(|| settings.redis.key_prefix.clone()) {
        config.key_prefix = prefix;
    }
    if let Some(max_events) = settings.redis.max_events {
        config.max_events = max_events;
    }
    let cluster_env = match non_empty("LEPTON_REDIS_CLUSTER") {
        Some(value) => Some(parse_bool(&value).with_context(|| format!("invalid LEPTON_REDIS_CLUSTER {value:?}: use true or false"))?),
        None => None,
    };
    if let Some(cluster) = cluster_env.or(settings.redis.cluster) {
        config.cluster = cluster;
    }
    Ok(config)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Opens the store. Redis must be reachable at start, so that a wrong URL or
/// password is reported at once rather than on the first customer message.
pub async fn open(config: &StoreConfig) -> anyhow::Result<Arc<dyn SessionStore>> {
    match config {
        StoreConfig::Memory => {
            tracing::info!(kind = "memory", "session store open; sessions are lost when the server stops");
            Ok(Arc::new(MemoryStore::new()))
        }
        StoreConfig::Embedded { path, flush_interval } => {
            let policy = match flush_interval {
                Some(interval) => lepton_store::SyncPolicy::Periodic(*interval),
                None => lepton_store::SyncPolicy::EveryWrite,
            };
            let store = lepton_store::EmbeddedStore::open_with(path, policy)?;
            tracing::info!(kind = "embedded", path = %path.display(), ?policy, "session store open");
            Ok(Arc::new(store))
        }
        StoreConfig::Redis(redis) => {
            let store = lepton_redis::RedisStore::connect(redis.clone()).await?;
            tracing::info!(
                kind = "redis",
                url = %lepton_redis::redact_url(&redis.url),
                key_prefix = %redis.key_prefix,
                max_events = redis.max_events,
                instance = %redis.instance_id,
                "session store open"
            );
            Ok(Arc::new(store))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    fn redis_settings() -> Settings {
        let mut settings = Settings::default();
        settings.session_store = Some(StoreKind::Redis);
        settings.redis.url = Some("redis://settings:6379/1".to_owned());
        settings.redis.key_prefix = Some("shop".to_owned());
        settings
    }

    fn resolved(option: &StoreOption, settings: &Settings, vars: &[(&str, &str)]) -> anyhow::Result<StoreConfig> {
        resolve(option, settings, &env_of(vars), Path::new("/data"), None)
    }

    #[test]
    fn default_is_embedded_in_data_dir() -> anyhow::Result<()> {
        let config = resolved(&StoreOption::FromSettings, &Settings::default(), &[])?;
        assert!(matches!(config, StoreConfig::Embedded { ref path, .. } if path == Path::new("/data/sessions.redb")), "{config:?}");
        Ok(())
    }

    #[test]
    fn settings_choose_redis() -> anyhow::Result<()> {
        let config = resolved(&StoreOption::FromSettings, &redis_settings(), &[])?;
        let StoreConfig::Redis(redis) = config else { anyhow::bail!("expected redis, got {config:?}") };
        assert_eq!(redis.url, "redis://settings:6379/1");
        assert_eq!(redis.key_prefix, "shop");
        Ok(())
    }

    #[test]
    fn environment_overrides_settings() -> anyhow::Result<()> {
        let vars = [("LEPTON_REDIS_URL", "redis://env:6379/2"), ("LEPTON_REDIS_KEY_PREFIX", "env")];
        let config = resolved(&StoreOption::FromSettings, &redis_settings(), &vars)?;
        let StoreConfig::Redis(redis) = config else { anyhow::bail!("expected redis, got {config:?}") };
        assert_eq!(redis.url, "redis://env:6379/2");
        assert_eq!(redis.key_prefix, "env");
        Ok(())
    }

    #[test]
    fn environment_store_kind_overrides_settings() -> anyhow::Result<()> {
        let config = resolved(&StoreOption::FromSettings, &redis_settings(), &[("LEPTON_SESSION_STORE", "memory")])?;
        assert!(matches!(config, StoreConfig::Memory), "{config:?}");
        Ok(())
    }

    #[test]
    fn cluster_from_settings_and_environment() -> anyhow::Result<()> {
        let mut settings = redis_settings();
        settings.redis.cluster = Some(true);
        let from_settings = resolved(&StoreOption::FromSettings, &settings, &[])?;
        let from_env = resolved(&StoreOption::FromSettings, &settings, &[("LEPTON_REDIS_CLUSTER", "false")])?;
        let (StoreConfig::Redis(from_settings), StoreConfig::Redis(from_env)) = (from_settings, from_env) else {
            anyhow::bail!("expected redis configs");
        };
        assert!(from_settings.cluster, "settings.redis.cluster: true");
        assert!(!from_env.cluster, "LEPTON_REDIS_CLUSTER=false overrides the settings");
        Ok(())
    }

    #[test]
    fn option_overrides_environment() -> anyhow::Result<()> {
        let option = StoreOption::parse("redis://option:6379/3")?;
        let config = resolved(&option, &Settings::default(), &[("LEPTON_SESSION_STORE", "memory"), ("LEPTON_REDIS_URL", "redis://env:6379")])?;
        let StoreConfig::Redis(redis) = config else { anyhow::bail!("expected redis, got {config:?}") };
        assert_eq!(redis.url, "redis://option:6379/3");
        Ok(())
    }

    #[test]
    fn invalid_environment_store_kind_names_choices() {
        let result = resolved(&StoreOption::FromSettings, &Settings::default(), &[("LEPTON_SESSION_STORE", "mysql")]);
        let message = format!("{:#}", result.expect_err("mysql accepted"));
        assert!(message.contains("embedded, memory, redis"), "{message}");
    }

    #[test]
    fn option_parses_every_form() -> anyhow::Result<()> {
        assert_eq!(StoreOption::parse("memory")?, StoreOption::Memory);
        assert_eq!(StoreOption::parse("embedded")?, StoreOption::Embedded(None));
        assert_eq!(StoreOption::parse("redis")?, StoreOption::Redis(None));
        assert_eq!(StoreOption::parse("rediss://h:1")?, StoreOption::Redis(Some("rediss://h:1".to_owned())));
        assert_eq!(StoreOption::parse("REDIS://h:1/2")?, StoreOption::Redis(Some("redis://h:1/2".to_owned())));
        assert_eq!(StoreOption::parse("/tmp/s.redb")?, StoreOption::Embedded(Some(PathBuf::from("/tmp/s.redb"))));
        assert_eq!(StoreOption::parse("./s:1")?, StoreOption::Embedded(Some(PathBuf::from("./s:1"))));
        Ok(())
    }

    #[test]
    fn option_rejects_mistyped_addresses() {
        for value in ["127.0.0.1:6379", "redis-host:6379", "redis:/127.0.0.1:6379", "redis+unix:///tmp/x.sock", "http://h:6379"] {
            let result = StoreOption::parse(value);
            assert!(result.is_err(), "--store {value:?} was accepted as {result:?}");
        }
    }

    #[test]
    fn invalid_cluster_environment_rejected() {
        let result = resolved(&StoreOption::FromSettings, &redis_settings(), &[("LEPTON_REDIS_CLUSTER", "on-ish")]);
        let message = format!("{:#}", result.expect_err("on-ish accepted"));
        assert!(message.contains("LEPTON_REDIS_CLUSTER"), "{message}");
    }
}
