//! The choice of the session store `lepton serve` opens: the configuration's
//! `[store]` and `[redis]` sections (where `--store` and the environment
//! variables `LEPTON_SESSION_STORE`, `LEPTON_REDIS_URL` and the like are
//! already merged), else the bot's `settings.session_store` and
//! `settings.redis`, else the embedded store in the data folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bot_core::bot::{Settings, StoreKind};
use bot_core::{MemoryStore, SessionStore};

use crate::config::{Override, RedisSection, StoreSection};

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

/// Resolves the store from the configuration, where `--store`, the
/// environment and the file are already merged, then from the bot's settings.
pub fn resolve(store: &StoreSection, redis: &RedisSection, settings: &Settings, data_dir: &Path) -> StoreConfig {
    match store.kind.or(settings.session_store).unwrap_or(StoreKind::Embedded) {
        StoreKind::Memory => StoreConfig::Memory,
        StoreKind::Embedded => StoreConfig::Embedded {
            path: store.path.clone().unwrap_or_else(|| data_dir.join("sessions.redb")),
            flush_interval: (store.flush_ms > 0).then(|| Duration::from_millis(store.flush_ms)),
        },
        StoreKind::Redis => StoreConfig::Redis(redis_config(redis, settings)),
    }
}

fn redis_config(redis: &RedisSection, settings: &Settings) -> lepton_redis::RedisConfig {
    let mut config = lepton_redis::RedisConfig::default();
    if let Some(url) = redis.url.as_ref().map(|url| url.expose().to_owned()).or_else(|| settings.redis.url.clone()) {
        config.url = url;
    }
    if let Some(prefix) = redis.key_prefix.clone().or_else(|| settings.redis.key_prefix.clone()) {
        config.key_prefix = prefix;
    }
    if let Some(max_events) = redis.max_events.or(settings.redis.max_events) {
        config.max_events = max_events;
    }
    if let Some(cluster) = redis.cluster.or(settings.redis.cluster) {
        config.cluster = cluster;
    }
    config
}

impl StoreOption {
    /// Returns the configuration keys that `--store` sets.
    pub fn overrides(&self) -> Vec<Override> {
        let kind = |kind: &str| Override::new("store.kind", "--store", kind);
        match self {
            Self::FromSettings => Vec::new(),
            Self::Memory => vec![kind("memory")],
            Self::Embedded(None) => vec![kind("embedded")],
            Self::Embedded(Some(path)) => vec![kind("embedded"), Override::new("store.path", "--store", path.to_string_lossy().into_owned())],
            Self::Redis(None) => vec![kind("redis")],
            Self::Redis(Some(url)) => vec![kind("redis"), Override::new("redis.url", "--store", url.clone())],
        }
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
    use super::*;
    use crate::config::{load, Secret};

    fn redis_settings() -> Settings {
        let mut settings = Settings::default();
        settings.session_store = Some(StoreKind::Redis);
        settings.redis.url = Some("redis://settings:6379/1".to_owned());
        settings.redis.key_prefix = Some("shop".to_owned());
        settings
    }

    fn resolved(store: &StoreSection, redis: &RedisSection, settings: &Settings) -> StoreConfig {
        resolve(store, redis, settings, Path::new("/data"))
    }

    #[test]
    fn default_is_embedded_in_data_dir() {
        let config = resolved(&StoreSection::default(), &RedisSection::default(), &Settings::default());
        assert!(matches!(config, StoreConfig::Embedded { ref path, flush_interval: None } if path == Path::new("/data/sessions.redb")), "{config:?}");
    }

    #[test]
    fn settings_choose_redis() -> anyhow::Result<()> {
        let config = resolved(&StoreSection::default(), &RedisSection::default(), &redis_settings());
        let StoreConfig::Redis(redis) = config else { anyhow::bail!("expected redis, got {config:?}") };
        assert_eq!(redis.url, "redis://settings:6379/1");
        assert_eq!(redis.key_prefix, "shop");
        Ok(())
    }

    #[test]
    fn configuration_overrides_settings() -> anyhow::Result<()> {
        let redis = RedisSection { url: Some(Secret::new("redis://env:6379/2")), key_prefix: Some("env".to_owned()), cluster: Some(false), max_events: Some(7) };
        let mut settings = redis_settings();
        settings.redis.cluster = Some(true);

        let config = resolved(&StoreSection::default(), &redis, &settings);

        let StoreConfig::Redis(redis) = config else { anyhow::bail!("expected redis, got {config:?}") };
        assert_eq!(redis.url, "redis://env:6379/2");
        assert_eq!(redis.key_prefix, "env");
        assert!(!redis.cluster, "redis.cluster = false overrides the settings");
        assert_eq!(redis.max_events, 7);
        Ok(())
    }

    #[test]
    fn configuration_store_kind_overrides_settings() {
        let store = StoreSection { kind: Some(StoreKind::Memory), ..Default::default() };
        let config = resolved(&store, &RedisSection::default(), &redis_settings());
        assert!(matches!(config, StoreConfig::Memory), "{config:?}");
    }

    #[test]
    fn option_overrides_environment() -> anyhow::Result<()> {
        let option = StoreOption::parse("redis://option:6379/3")?;
        let env = |name: &str| match name {
            "LEPTON_SESSION_STORE" => Some("memory".to_owned()),
            "LEPTON_REDIS_URL" => Some("redis://env:6379".to_owned()),
            _ => None,
        };
        let loaded = load(None, &env, &option.overrides())?;

        let config = resolved(&loaded.config.store, &loaded.config.redis, &Settings::default());

        let StoreConfig::Redis(redis) = config else { anyhow::bail!("expected redis, got {config:?}") };
        assert_eq!(redis.url, "redis://option:6379/3");
        Ok(())
    }

    #[test]
    fn invalid_environment_store_kind_names_choices() {
        let env = |name: &str| (name == "LEPTON_SESSION_STORE").then(|| "mysql".to_owned());
        let message = load(None, &env, &[]).expect_err("mysql accepted").to_string();
        assert!(message.contains("LEPTON_SESSION_STORE"), "{message}");
        assert!(message.contains("`embedded`, `memory`, `redis`"), "{message}");
    }

    #[test]
    fn invalid_cluster_environment_rejected() {
        let env = |name: &str| (name == "LEPTON_REDIS_CLUSTER").then(|| "on-ish".to_owned());
        let message = load(None, &env, &[]).expect_err("on-ish accepted").to_string();
        assert!(message.contains("LEPTON_REDIS_CLUSTER"), "{message}");
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

}
