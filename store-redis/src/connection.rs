//! The store's connection: one [`ConnectionManager`] (a multiplexed connection
//! that reconnects after a drop) with a timeout on every call, one retry after
//! a dropped connection, and outage logging.

use std::future::Future;
use std::time::Duration;

use bot_core::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, RedisResult};

use crate::config::{RedisConfig, RedisStoreError};
use crate::health::Health;

pub(crate) struct Connection {
    manager: ConnectionManager,
    health: Health,
    /// A guard around each attempt, in case a reconnect outlasts the manager's own timeouts.
    attempt_timeout: Duration,
    url: String,
    /// The password, removed from error texts in case one repeats it.
    password: Option<String>,
}

enum CallError {
    Redis(RedisError),
    TimedOut(Duration),
}

impl Connection {
    /// Connects and checks the connection with a PING.
    pub async fn open(client: &Client, config: &RedisConfig, url: String) -> Result<Self, RedisStoreError> {
        // One connection attempt per reconnect: a call during an outage fails
        // fast, and the next call starts the next attempt.
        // NOTE: redis 1.8's manager starts a new attempt only after an I/O
        // error. A reconnect that fails otherwise (a password changed on the
        // server) keeps failing every call until this process restarts.
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        let attempt_timeout = config.connect_timeout + config.command_timeout;
        let password = client.get_connection_info().redis_settings().password().map(str::to_owned);

        let connect = async {
            let mut manager = ConnectionManager::new_with_config(client.clone(), manager_config).await?;
            redis::cmd("PING").query_async::<()>(&mut manager).await?;
            Ok::<_, RedisError>(manager)
        };
        let manager = match tokio::time::timeout(attempt_timeout, connect).await {
            Ok(Ok(manager)) => manager,
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
        Ok(Self { manager, health, attempt_timeout, url, password })
    }

    /// Runs `call` with a clone of the manager, once more after a dropped or
    /// refused connection (the manager reconnects after the first failure), and
    /// maps a failure to [`StoreError::Unavailable`].
    ///
    /// A retried write may have been applied before the connection dropped, so
    /// the store's writes are safe to repeat.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
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
                Ok(value)
            }
            Err(error) => {
                let reason = self.reason(operation, &error);
                self.health.record_failure(operation, &reason);
                Err(StoreError::Unavailable { reason })
            }
        }
    }

    async fn attempt<T, F, Fut>(&self, call: &F) -> Result<T, CallError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match tokio::time::timeout(self.attempt_timeout, call(self.manager.clone())).await {
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

/// True for errors after which the manager reconnects and an immediate retry
/// can succeed. A timed-out call is not retried, so its caller does not wait
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
