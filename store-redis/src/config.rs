//! The store's settings, the errors of [`RedisStore::connect`](crate::RedisStore::connect),
//! and the redaction of passwords in Redis URLs and lists of them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The URL forms [`RedisStore::connect`](crate::RedisStore::connect) accepts, for error messages.
pub const ACCEPTED_URL_FORMS: &str = "redis://[[user]:password@]host[:port][/db] or rediss://... for TLS, \
     and with cluster mode a comma-separated list of such URLs of seed nodes, all with database 0";

/// Settings of a [`RedisStore`](crate::RedisStore).
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (server certificates are checked against the Mozilla root certificates).
    ///
    /// With [`cluster`](Self::cluster) set, a comma-separated list of such
    /// URLs of seed nodes, such as `redis://10.0.0.1:7000,redis://10.0.0.2:7000`:
    /// the store reads the cluster's other nodes from the first seed that
    /// replies. All seeds use the same scheme and database 0. A user and
    /// password written on one seed apply to all, and seeds that name
    /// different ones are rejected.
    pub url: String,
    /// Connects to a Redis Cluster through the seed nodes in [`url`](Self::url)
    /// instead of to one server.
    pub cluster: bool,
    /// The first part of every key and of the pub/sub channel, so that several
    /// bots can share one Redis database.
    pub key_prefix: String,
    /// The maximum number of transcript events kept per conversation; older
    /// events are dropped.
    pub max_events: usize,
    /// How long a conversation's lease lives without renewal. A holder renews
    /// it every third of this, so a crashed holder blocks the conversation for
    /// at most this long.
    pub lease_ttl: Duration,
    /// How long a turn waits for a lease another process holds before it fails
    /// with [`StoreError::LeaseTimeout`](bot_core::StoreError::LeaseTimeout).
    pub lease_wait: Duration,
    /// The maximum wait for the response to one Redis command.
    pub command_timeout: Duration,
    /// The maximum wait for one connection attempt.
    pub connect_timeout: Duration,
    /// Names this server process in lease tokens, published events and logs.
    pub instance_id: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            cluster: false,
            key_prefix: "lepton".to_owned(),
            max_events: 1000,
            lease_ttl: Duration::from_secs(10),
            lease_wait: Duration::from_secs(10),
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            instance_id: default_instance_id(),
        }
    }
}

/// Why [`RedisStore::connect`](crate::RedisStore::connect) failed. URLs in
/// these errors have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    #[error("invalid Redis URL {url}: {reason}; use {ACCEPTED_URL_FORMS}")]
    InvalidUrl { url: String, reason: String },

    #[error("invalid Redis store setting {setting}: {reason}")]
    InvalidSetting { setting: &'static str, reason: String },

    #[error("cannot connect to Redis at {url}: {reason}; check that the server is running, reachable from here, and that the password is right")]
    Connect { url: String, reason: String },
}

impl RedisConfig {
    /// Checks the settings that do not need a connection.
    pub(crate) fn validate(&self) -> Result<(), RedisStoreError> {
        if self.key_prefix.contains(['{', '}']) {
            let reason = format!("key prefix {:?} contains {{ or }}, which would change the Redis Cluster hash slot of every key; remove them", self.key_prefix);
            return Err(RedisStoreError::InvalidSetting { setting: "key_prefix", reason });
        }
        if self.max_events == 0 {
            let reason = "max_events is 0, so no transcript would be kept; set it to 1 or more".to_owned();
            return Err(RedisStoreError::InvalidSetting { setting: "max_events", reason });
        }
        let durations = [
            ("lease_ttl", self.lease_ttl),
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
        ];
        for (setting, value) in durations {
            if value < Duration::from_millis(3) {
                let reason = format!("{setting} is {} ms; set it to 3 ms or more", value.as_millis());
                return Err(RedisStoreError::InvalidSetting { setting, reason });
            }
        }
        if self.instance_id.is_empty() {
            let reason = "instance_id is empty; leave the default or name this server process".to_owned();
            return Err(RedisStoreError::InvalidSetting { setting: "instance_id", reason });
        }
        Ok(())
    }
}

/// Returns `hostname-pid-random`, unique per process with high probability.
pub fn default_instance_id() -> String {
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());

    // RandomState is seeded from the operating system's random source once per process.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let random = hasher.finish() as u32;
    format!("{hostname}-{}-{random:08x}", std::process::id())
}

/// Returns `url` with its password replaced by `***`, for logs and error
/// messages. In a comma-separated list of URLs, each URL is redacted.
///
/// Everything between `://` and the last `@` is user information: a user name
/// before a `:` is kept, and the rest is replaced. User information without a
/// `:` is replaced whole, because some write a bare password there. A `pass=`
/// or `password=` query parameter is replaced too.
pub fn redact_url(url: &str) -> String {
    split_urls(url).into_iter().map(redact_one_url).collect::<Vec<_>>().join(",")
}

/// Splits a comma-separated list of Redis URLs. Only a comma followed by
/// `redis://` or `rediss://` separates two URLs, so a password that contains
/// a comma stays in its URL.
pub(crate) fn split_urls(url: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in url.match_indices(',') {
        let next = url[comma + 1..].trim_start();
        let starts_url = next
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("redis") || scheme.eq_ignore_ascii_case("rediss"));
        if starts_url {
            urls.push(url[start..comma].trim());
            start = comma + 1;
        }
    }
    urls.push(url[start..].trim());
    urls
}

fn redact_one_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    let redacted = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, host) = rest.split_at(at);
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_owned(),
            };
            format!("{scheme}://{user}{host}")
        }
        None => url.to_owned(),
    };
    redact_query(&redacted)
}

fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("pass") || name.eq_ignore_ascii_case("password") => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_password_only() {
        assert_eq!(redact_url("redis://:s3cret@10.0.0.5:6379/2"), "redis://:***@10.0.0.5:6379/2");
    }

    #[test]
    fn redact_url_user_and_password() {
        assert_eq!(redact_url("rediss://default:p@ss:w@rd@cache.example:6380"), "rediss://default:***@cache.example:6380");
    }

    #[test]
    fn redact_url_bare_userinfo() {
        assert_eq!(redact_url("redis://s3cret@host"), "redis://***@host");
    }

    #[test]
    fn redact_url_without_password() {
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
    }

    #[test]
    fn redact_url_query_password() {
        assert_eq!(redact_url("redis://host/0?protocol=resp3&pass=s3cret"), "redis://host/0?protocol=resp3&pass=***");
    }

    #[test]
    fn redact_url_each_seed() {
        let seeds = "redis://:s3cret@10.0.0.1:7000, rediss://u:s3cret@10.0.0.2:7000";
        assert_eq!(redact_url(seeds), "redis://:***@10.0.0.1:7000,rediss://u:***@10.0.0.2:7000");
    }

    #[test]
    fn split_urls_keeps_comma_in_password() {
        assert_eq!(split_urls("redis://:pa,ss@host:6379/0"), vec!["redis://:pa,ss@host:6379/0"]);
    }

    #[test]
    fn split_urls_seed_list() {
        let seeds = split_urls("redis://a:7000,REDISS://b:7001 ,redis://c:7002");
        assert_eq!(seeds, vec!["redis://a:7000", "REDISS://b:7001", "redis://c:7002"]);
    }

    #[test]
    fn default_instance_ids_differ() {
        assert_ne!(default_instance_id(), default_instance_id());
    }

    #[test]
    fn validate_rejects_braced_prefix() {
        let config = RedisConfig { key_prefix: "app{1}".to_owned(), ..RedisConfig::default() };
        assert!(matches!(config.validate(), Err(RedisStoreError::InvalidSetting { setting: "key_prefix", .. })));
    }
}
