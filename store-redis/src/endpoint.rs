//! Where the store connects: one Redis server, or the seed nodes of a Redis
//! Cluster, parsed from [`RedisConfig::url`] and [`RedisConfig::cluster`].

use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::config::{redact_url, split_urls, RedisConfig, RedisStoreError};

/// The parsed URL of the store.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The whole URL or list of URLs with passwords redacted, for logs and errors.
    pub url: String,
    pub cluster: bool,
    /// The server, or the cluster's seed nodes in the configured order. In
    /// cluster mode every seed carries the user and password given on any seed.
    pub nodes: Vec<Node>,
    /// The password, removed from error texts in case one repeats it.
    pub password: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Node {
    pub client: Client,
    /// The node's URL with its password redacted.
    pub url: String,
}

impl Endpoint {
    pub fn parse(config: &RedisConfig) -> Result<Self, RedisStoreError> {
        let url = redact_url(&config.url);
        let invalid = |reason: String| RedisStoreError::InvalidUrl { url: url.clone(), reason };

        let seeds = split_urls(&config.url);
        if seeds.len() > 1 && !config.cluster {
            let reason = format!(
                "it lists {} URLs separated by commas, which only a Redis Cluster's seed nodes may do; \
                 set the Redis store setting cluster to true to enable cluster mode, or give one URL",
                seeds.len()
            );
            return Err(invalid(reason));
        }
        let mut infos = Vec::with_capacity(seeds.len());
        for seed in &seeds {
            infos.push(parse_seed(seed).map_err(|reason| invalid(format!("{}: {reason}", redact_url(seed))))?);
        }
        if config.cluster {
            check_cluster_seeds(&infos, &seeds).map_err(invalid)?;
            infos = share_credentials(infos, &seeds).map_err(invalid)?;
        }

        let password = infos.iter().find_map(|info| info.redis_settings().password().map(str::to_owned));
        let mut nodes = Vec::with_capacity(infos.len());
        for (info, seed) in infos.into_iter().zip(&seeds) {
            let client = Client::open(info).map_err(|e| invalid(e.to_string()))?;
            nodes.push(Node { client, url: redact_url(seed) });
        }
        Ok(Self { url, cluster: config.cluster, nodes, password })
    }

    /// Returns the connection settings of every node, for a cluster client.
    pub fn connection_infos(&self) -> Vec<ConnectionInfo> {
        self.nodes.iter().map(|node| node.client.get_connection_info().clone()).collect()
    }
}

/// Parses one URL with a `redis` or `rediss` scheme.
fn parse_seed(seed: &str) -> Result<ConnectionInfo, String> {
    let parsed = redis::parse_redis_url(seed).ok_or_else(|| "not a URL with a redis or rediss scheme".to_owned())?;
    match parsed.scheme() {
        "redis" => {}
        "rediss" => install_crypto_provider(),
        other => return Err(format!("scheme {other} is not supported")),
    }
    seed.into_connection_info().map_err(|e| e.to_string())
}

/// Installs a process-wide crypto provider for rustls, which `rediss` needs.
fn install_crypto_provider() {
    // This installs ring, which the workspace already builds for reqwest, and
    // fails harmlessly when another part of the program installed one first.
    // rustls 0.23.48 deprecates ring's provider because it lacks post-quantum
    // key exchange; its X25519 and P-256 key exchange work with any TLS 1.2
    // or 1.3 server.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Checks what a cluster requires of its seeds: one scheme, and database 0,
/// the only database a Redis Cluster has.
fn check_cluster_seeds(infos: &[ConnectionInfo], seeds: &[&str]) -> Result<(), String> {
    for (info, seed) in infos.iter().zip(seeds) {
        let db = info.redis_settings().db();
        if db != 0 {
            return Err(format!(
                "seed {} selects database {db}, but a Redis Cluster has only database 0; remove /{db} from the URL",
                redact_url(seed)
            ));
        }
    }
    let tls: Vec<bool> = infos.iter().map(|info| matches!(info.addr(), ConnectionAddr::TcpTls { .. })).collect();
    if tls.iter().any(|&t| t != tls[0]) {
        return Err("the seeds mix redis:// and rediss://; use rediss:// for every seed of a cluster with TLS, else redis://".to_owned());
    }
    Ok(())
}

/// Gives every seed the user and password written on any of them, so that
/// they may be written once. Seeds that name different ones are an error.
fn share_credentials(infos: Vec<ConnectionInfo>, seeds: &[&str]) -> Result<Vec<ConnectionInfo>, String> {
    let credentials = |info: &ConnectionInfo| {
        let settings = info.redis_settings();
        (settings.username().map(str::to_owned), settings.password().map(str::to_owned))
    };
    let mut shared: Option<(Option<String>, Option<String>)> = None;
    for (info, seed) in infos.iter().zip(seeds) {
        let these = credentials(info);
        if these == (None, None) {
            continue;
        }
        match &shared {
            None => shared = Some(these),
            Some(first) if *first == these => {}
            Some(_) => {
                return Err(format!(
                    "seed {} names another user or password than an earlier seed; a cluster has one, so write it on every seed or only on the first",
                    redact_url(seed)
                ));
            }
        }
    }

    let Some((username, password)) = shared else {
        return Ok(infos);
    };
    let with_credentials = |info: ConnectionInfo| {
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &password {
            settings = settings.set_password(password);
        }
        info.set_redis_settings(settings)
    };
    Ok(infos.into_iter().map(with_credentials).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_config(url: &str) -> RedisConfig {
        RedisConfig { url: url.to_owned(), cluster: true, ..RedisConfig::default() }
    }

    fn invalid_reason(config: &RedisConfig) -> String {
        match Endpoint::parse(config) {
            Err(RedisStoreError::InvalidUrl { reason, .. }) => reason,
            Err(other) => format!("unexpected error: {other}"),
            Ok(_) => "parsed".to_owned(),
        }
    }

    #[test]
    fn endpoint_seed_list_without_cluster() {
        let config = RedisConfig { url: "redis://a:7000,redis://b:7000".to_owned(), ..RedisConfig::default() };
        assert!(invalid_reason(&config).contains("enable cluster mode"), "reason {}", invalid_reason(&config));
    }

    #[test]
    fn endpoint_cluster_database() {
        let reason = invalid_reason(&cluster_config("redis://a:7000/5,redis://b:7000"));
        assert!(reason.contains("database 5"), "reason {reason}");
    }

    #[test]
    fn endpoint_cluster_mixed_schemes() {
        let reason = invalid_reason(&cluster_config("rediss://a:7000,redis://b:7000"));
        assert!(reason.contains("mix"), "reason {reason}");
    }

    #[test]
    fn endpoint_cluster_different_passwords() {
        let reason = invalid_reason(&cluster_config("redis://:one@a:7000,redis://:two@b:7000"));
        assert!(reason.contains("another user or password"), "reason {reason}");
        assert!(!reason.contains("two"), "reason contains the password: {reason}");
    }

    #[test]
    fn endpoint_cluster_shares_password() -> Result<(), RedisStoreError> {
        let endpoint = Endpoint::parse(&cluster_config("redis://a:7000, redis://u:pw@b:7000,redis://c:7000"))?;
        let credentials: Vec<_> = endpoint
            .connection_infos()
            .iter()
            .map(|info| (info.redis_settings().username().map(str::to_owned), info.redis_settings().password().map(str::to_owned)))
            .collect();
        assert_eq!(credentials, vec![(Some("u".to_owned()), Some("pw".to_owned())); 3], "credentials of the seeds");
        Ok(())
    }

    #[test]
    fn endpoint_single_keeps_database() -> Result<(), RedisStoreError> {
        let endpoint = Endpoint::parse(&RedisConfig { url: "redis://a:6379/5".to_owned(), ..RedisConfig::default() })?;
        assert_eq!(endpoint.connection_infos()[0].redis_settings().db(), 5, "database");
        Ok(())
    }
}
