//! The store's connection: to one server, a [`ConnectionManager`] (a
//! multiplexed connection that reconnects after a drop); to a Redis Cluster, a
//! [`ClusterConnection`] (a multiplexed connection per node, routing each
//! command by the hash slot of its first key). Both get a timeout on every
//! call, one retry after a dropped connection, and outage logging.

use std::future::Future;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bot_core::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::config::{RedisConfig, RedisStoreError};
use crate::endpoint::Endpoint;
use crate::health::Health;

/// How often a cluster call is sent again after a MOVED or ASK redirect, a
/// TRYAGAIN or CLUSTERDOWN reply, or a dropped node connection, within the
/// call's timeout.
const CLUSTER_RETRIES: u32 = 3;
/// The wait in ms before a cluster call is sent again after TRYAGAIN or
/// CLUSTERDOWN; redirects are followed at once.
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 10;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 100;

/// How long calls to one server must have failed before the store replaces
/// its connection manager, and the least time between two replacements.
const REBUILD_AFTER: Duration = Duration::from_secs(2);

/// A connection to one server or to a cluster; clones share it.
#[derive(Clone)]
pub(crate) enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(manager) => manager.req_packed_command(cmd),
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(manager) => manager.get_db(),
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}

pub(crate) struct Connection {
    connection: RwLock<RedisConnection>,
    /// The client and settings that a replacement of a single server's connection manager needs.
    single: Option<SingleServer>,
    health: Health,
    /// A guard around each attempt, in case a reconnect outlasts the client's own timeouts.
    attempt_timeout: Duration,
    url: String,
    /// The password, removed from error texts in case one repeats it.
    password: Option<String>,
}

/// A single server's client and settings, kept to build a new connection
/// manager when the current one is stuck. redis 1.8's manager reconnects after
/// an I/O error only, so a reconnect that failed otherwise (the server
/// rejected the password while it was being reconfigured) would fail every
/// later call.
struct SingleServer {
    endpoint: Endpoint,
    config: RedisConfig,
    /// The first failure since the last success, and the last replacement attempt.
    failing: Mutex<(Option<Instant>, Option<Instant>)>,
}

enum CallError {
    Redis(RedisError),
    TimedOut(Duration),
}

impl Connection {
    /// Connects and checks the connection with a PING. Fails with
    /// [`RedisStoreError::InvalidSetting`] for `cluster` when the server's
    /// cluster mode differs from the setting: a cluster node reached in
    /// single mode would fail every key of another node's slots with MOVED.
    pub async fn open(endpoint: &Endpoint, config: &RedisConfig) -> Result<Self, RedisStoreError> {
        let attempt_timeout = config.connect_timeout + config.command_timeout;
        let url = endpoint.url.clone();
        let password = endpoint.password.clone();

        let connect = async {
            let mut connection = if endpoint.cluster {
                RedisConnection::Cluster(connect_cluster(endpoint, config).await?)
            } else {
                RedisConnection::Single(connect_single(endpoint, config).await?)
            };
            redis::cmd("PING").query_async::<()>(&mut connection).await?;
            let cluster_node = !endpoint.cluster && is_cluster_node(&mut connection).await?;
            Ok::<_, RedisError>((connection, cluster_node))
        };
        let connection = match tokio::time::timeout(attempt_timeout, connect).await {
            Ok(Ok((_, true))) => {
                let reason = format!(
                    "the server at {url} is a Redis Cluster node, so keys in other nodes' hash slots would fail with MOVED; \
                     set the Redis store setting cluster to true"
                );
                return Err(RedisStoreError::InvalidSetting { setting: "cluster", reason });
            }
            Ok(Ok((connection, false))) => connection,
            // Redis 7.0 replies "This instance has cluster support disabled" to CLUSTER SLOTS.
            Ok(Err(error)) if endpoint.cluster && error.to_string().contains("cluster support disabled") => {
                let reason = format!("the server at {url} is no Redis Cluster node; set the Redis store setting cluster to false");
                return Err(RedisStoreError::InvalidSetting { setting: "cluster", reason });
            }
            Ok(Err(error)) => {
                let reason = scrub(&error.to_string(), password.as_deref());
                return Err(RedisStoreError::Connect { url, reason });
            }
            Err(_) => {
                let reason = format!("no reply within {} ms", attempt_timeout.as_millis());
                return Err(RedisStoreError::Connect { url, reason });
            }
        };

        let health = Health::new(url.clone());
        let single = (!endpoint.cluster).then(|| SingleServer { endpoint: endpoint.clone(), config: config.clone(), failing: Mutex::new((None, None)) });
        Ok(Self { connection: RwLock::new(connection), single, health, attempt_timeout, url, password })
    }

    /// Runs `call` with a clone of the connection, once more after a dropped
    /// or refused connection (the connection reconnects after the first
    /// failure), and maps a failure to [`StoreError::Unavailable`].
    ///
    /// A retried write may have been applied before the connection dropped, so
    /// the store's writes are safe to repeat.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut result = self.attempt(&call).await;
        if let Err(CallError::Redis(error)) = &result {
            if is_reconnectable(error) {
                tracing::debug!(operation, %error, "retrying a redis call after a dropped or refused connection");
                result = self.attempt(&call).await;
            }
        }

        match result {
            Ok(value) => {
                self.health.record_success();
                if let Some(single) = &self.single {
                    single.failing.lock().expect("connection state poisoned").0 = None;
                }
                Ok(value)
            }
            Err(error) => {
                let reason = self.reason(operation, &error);
                self.health.record_failure(operation, &reason);
                self.replace_if_stuck().await;
                Err(StoreError::Unavailable { reason })
            }
        }
    }

    /// Builds a new connection manager for a single server when calls have
    /// failed for [`REBUILD_AFTER`], at most once per that time. When the
    /// server is still down the attempt fails within the connect timeout and
    /// the current manager stays.
    async fn replace_if_stuck(&self) {
        let Some(single) = &self.single else { return };
        {
            let mut failing = single.failing.lock().expect("connection state poisoned");
            let now = Instant::now();
            let since = *failing.0.get_or_insert(now);
            let recently_tried = failing.1.is_some_and(|at| now.duration_since(at) < REBUILD_AFTER);
            if now.duration_since(since) < REBUILD_AFTER || recently_tried {
                return;
            }
            failing.1 = Some(now);
        }

        match tokio::time::timeout(self.attempt_timeout, connect_single(&single.endpoint, &single.config)).await {
            Ok(Ok(manager)) => {
                tracing::info!(url = %self.url, "replaced the redis connection after calls kept failing");
                *self.connection.write().expect("connection lock poisoned") = RedisConnection::Single(manager);
            }
            Ok(Err(error)) => {
                let error = scrub(&error.to_string(), self.password.as_deref());
                tracing::debug!(url = %self.url, %error, "cannot build a new redis connection yet");
            }
            Err(_) => tracing::debug!(url = %self.url, "building a new redis connection timed out"),
        }
    }

    async fn attempt<T, F, Fut>(&self, call: &F) -> Result<T, CallError>
    where
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let connection = self.connection.read().expect("connection lock poisoned").clone();
        match tokio::time::timeout(self.attempt_timeout, call(connection)).await {
            Ok(result) => result.map_err(CallError::Redis),
            Err(_) => Err(CallError::TimedOut(self.attempt_timeout)),
        }
    }

    fn reason(&self, operation: &str, error: &CallError) -> String {
        let detail = match error {
            CallError::Redis(error) if error.is_timeout() => format!("timed out: {error}"),
            CallError::Redis(error) => error.to_string(),
            CallError::TimedOut(after) => format!("timed out after {} ms", after.as_millis()),
        };
        scrub(&format!("redis {operation} at {}: {detail}", self.url), self.password.as_deref())
    }
}

async fn connect_single(endpoint: &Endpoint, config: &RedisConfig) -> RedisResult<ConnectionManager> {
    // One connection attempt per reconnect: a call during an outage fails
    // fast, and the next call starts the next attempt.
    // redis 1.8's manager starts a new attempt only after an I/O error, so
    // `Connection::replace_if_stuck` replaces a manager that keeps failing.
    let manager_config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout));
    ConnectionManager::new_with_config(endpoint.nodes[0].client.clone(), manager_config).await
}

/// Connects to the seed nodes and reads the cluster's slot map from the first
/// that replies.
async fn connect_cluster(endpoint: &Endpoint, config: &RedisConfig) -> RedisResult<ClusterConnection> {
    ClusterClientBuilder::new(endpoint.connection_infos())
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.command_timeout)
        // A call may reconnect to a node and then wait for its reply.
        .overall_response_timeout(Some(config.connect_timeout + config.command_timeout))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
        .build()?
        .get_async_connection()
        .await
}

/// Returns true when `INFO cluster` reports cluster mode. A server that
/// rejects the command (some proxies do) counts as no cluster node.
async fn is_cluster_node(connection: &mut RedisConnection) -> RedisResult<bool> {
    let info: RedisResult<String> = redis::cmd("INFO").arg("cluster").query_async(connection).await;
    match info {
        Ok(info) => Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1")),
        Err(error) if error.is_io_error() || error.is_timeout() => Err(error),
        Err(_) => Ok(false),
    }
}

/// True for errors after which the connection reconnects and an immediate
/// retry can succeed. A timed-out call is not retried, so its caller does not wait
/// for a second timeout.
fn is_reconnectable(error: &RedisError) -> bool {
    !error.is_timeout() && (error.is_connection_dropped() || error.is_connection_refusal())
}

/// Replaces every occurrence of `password` in `text` with `***`.
pub(crate) fn scrub(text: &str, password: Option<&str>) -> String {
    match password {
        Some(password) if !password.is_empty() => text.replace(password, "***"),
        _ => text.to_owned(),
    }
}
