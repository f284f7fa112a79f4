//! [`RedisStore`] and its [`SessionStore`] operations.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::{
    ConversationId, Event, Lease, RemoteEvents, Session, SessionStore, StoreError, Timestamp, TurnCommit, UnrecognisedMessage, Versioned,
};
use redis::RedisResult;
use tokio::sync::mpsc;

use crate::config::{RedisConfig, RedisStoreError};
use crate::connection::Connection;
use crate::endpoint::Endpoint;
use crate::keys::Keys;
use crate::{lease, record, remote, scripts, unrecognised};

/// A [`SessionStore`] in Redis that several server processes share. See the
/// crate documentation for the key layout and the guarantees.
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: RedisConfig,
    pub keys: Keys,
    pub connection: Connection,
    endpoint: Endpoint,
    /// The source of unique write and lease tokens: `{instance_id}/{n}`.
    next_token: AtomicU64,
    remote_events_taken: AtomicBool,
    runtime: tokio::runtime::Handle,
}

impl Inner {
    pub fn token(&self) -> String {
        let n = self.next_token.fetch_add(1, Ordering::Relaxed);
        format!("{}/{n}", self.config.instance_id)
    }
}

impl RedisStore {
    /// Connects to Redis, or to a Redis Cluster when [`RedisConfig::cluster`]
    /// is set. Fails when the settings are invalid, when Redis does not reply
    /// to a PING within the connect and command timeouts, or when a server
    /// connected to without cluster mode is a cluster node.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisStoreError> {
        config.validate()?;
        let endpoint = Endpoint::parse(&config)?;
        let connection = Connection::open(&endpoint, &config).await?;
        tracing::debug!(
            url = %endpoint.url,
            cluster = endpoint.cluster,
            key_prefix = %config.key_prefix,
            instance_id = %config.instance_id,
            "connected to the redis session store"
        );

        let inner = Inner {
            keys: Keys::new(&config.key_prefix),
            config,
            connection,
            endpoint,
            next_token: AtomicU64::new(1),
            remote_events_taken: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Returns the settings the store was connected with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }
}

/// Converts a TTL to whole milliseconds, at least 1 (Redis deletes a key given 0).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError> {
        let key = self.inner.keys.session(id);
        let fields = self
            .inner
            .connection
            .call("load", |mut con| {
                let key = &key;
                async move {
                    let reply: RedisResult<(Option<String>, Option<Vec<u8>>)> =
                        redis::cmd("HMGET").arg(key).arg("version").arg("session").query_async(&mut con).await;
                    match reply {
                        Err(error) if error.code() == Some("WRONGTYPE") => Ok(None),
                        other => other.map(Some),
                    }
                }
            })
            .await?;

        let Some((version, session)) = fields else {
            let reason = format!("key {key} is not a hash, so it is no session record");
            return Err(StoreError::Corrupt { conversation_id: id.clone(), version: 0, reason });
        };
        if version.is_none() && session.is_none() {
            return Ok(None);
        }
        let (version, session) = record::decode_session(id, version, session)?;
        Ok(Some(Versioned { version, session }))
    }

    async fn save(&self, session: &Session, expected: u64, ttl: Duration) -> Result<u64, StoreError> {
        let turn = TurnCommit { session, expected, events: &[], waiting: None, ttl };
        self.commit_session(&turn).await
    }

    async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: Duration) -> Result<(), StoreError> {
        let encoded = record::encode_events(events)?;
        let message = record::encode_published(&self.inner.config.instance_id, &encoded);
        let mut invocation = scripts::append_events().prepare_invoke();
        invocation
            .key(self.inner.keys.transcript(id))
            .arg(ttl_millis(ttl))
            .arg(self.inner.config.max_events)
            .arg(self.inner.keys.events_channel())
            .arg(message);
        for (seq, json) in &encoded {
            invocation.arg(seq).arg(json);
        }

        let invocation = &invocation;
        self.inner.connection.call("append_events", |mut con| async move { invocation.invoke_async::<()>(&mut con).await }).await
    }

    async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        if limit == 0 || after_seq == u64::MAX {
            return Ok(Vec::new());
        }
        let key = self.inner.keys.transcript(id);
        let limit = isize::try_from(limit).unwrap_or(isize::MAX);
        let stored: Vec<(Vec<u8>, f64)> = self
            .inner
            .connection
            .call("events", |mut con| {
                let key = &key;
                async move {
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(key)
                        .arg(format!("({after_seq}"))
                        .arg("+inf")
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut con)
                        .await
                }
            })
            .await?;
        // A transcript entry this build cannot read (written by a newer build,
        // or by hand) is skipped, so that one bad entry does not fail every
        // turn and every replay of the conversation.
        let mut events = Vec::with_capacity(stored.len());
        let mut skipped = Vec::new();
        for (json, seq) in &stored {
            match record::decode_event(id, *seq, json) {
                Ok(event) => events.push(event),
                Err(error) => skipped.push((*seq, error)),
            }
        }
        if let Some((seq, error)) = skipped.first() {
            tracing::warn!(conversation_id = %id, skipped = skipped.len(), first_seq = seq, %error, "skipped transcript events that cannot be read");
        }
        Ok(events)
    }

    async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError> {
        let key = self.inner.keys.waiting();
        let mut command = match since {
            Some(since) => {
                let mut command = redis::cmd("ZADD");
                command.arg(&key).arg(since);
                command
            }
            None => {
                let mut command = redis::cmd("ZREM");
                command.arg(&key);
                command
            }
        };
        command.arg(id.as_str());

        let command = &command;
        self.inner.connection.call("set_waiting", |mut con| async move { command.query_async::<()>(&mut con).await }).await
    }

    async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError> {
        let key = self.inner.keys.waiting();
        let waiting: Vec<(String, f64)> = self
            .inner
            .connection
            .call("waiting", |mut con| {
                let key = &key;
                async move { redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query_async(&mut con).await }
            })
            .await?;
        // Redis orders equal scores by member, so this is the trait's order.
        Ok(waiting.into_iter().map(|(id, since)| (ConversationId::new(id), since as Timestamp)).collect())
    }

    async fn commit_turn(&self, turn: TurnCommit<'_>) -> Result<u64, StoreError> {
        // The queue is one key for all conversations, in another Redis Cluster
        // slot than the conversation's keys, so it cannot be in the same script.
        // A conversation joins the queue before its session is stored and leaves
        // it after, so a failure between the two calls leaves at most a queue
        // entry whose session is not waiting, which `Engine::waiting` skips and
        // removes, and never a waiting session missing from the queue.
        let id = &turn.session.conversation_id;
        let joins = matches!(turn.waiting, Some(Some(_)));
        if let Some(Some(since)) = turn.waiting {
            self.set_waiting(id, Some(since)).await?;
        }
        let version = match self.commit_session(&turn).await {
            Ok(version) => version,
            Err(error) => {
                if joins {
                    // Best effort: when this fails too, the entry stays until it is skipped as stale.
                    let _ = self.set_waiting(id, None).await;
                }
                return Err(error);
            }
        };
        if let Some(None) = turn.waiting {
            self.set_waiting(id, None).await?;
        }
        Ok(version)
    }

    async fn record_unrecognised(&self, message: &UnrecognisedMessage) -> Result<(), StoreError> {
        unrecognised::record(&self.inner, message).await
    }

    async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
        unrecognised::list(&self.inner, limit).await
    }

    async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
        unrecognised::dismiss(&self.inner, id, seq).await
    }

    async fn lease(&self, id: &ConversationId) -> Result<Lease, StoreError> {
        lease::acquire(&self.inner, id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.connection.call("ping", |mut con| async move { redis::cmd("PING").query_async::<()>(&mut con).await }).await
    }

    fn remote_events(&self) -> Option<mpsc::Receiver<RemoteEvents>> {
        if self.inner.remote_events_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let feed = remote::Feed::new(&self.inner.endpoint, &self.inner.config, self.inner.keys.events_channel());
        Some(feed.spawn(&self.inner.runtime))
    }
}

impl RedisStore {
    /// Stores the session and events of `turn` in one script (see
    /// `scripts::commit_turn`) and returns the new version.
    async fn commit_session(&self, turn: &TurnCommit<'_>) -> Result<u64, StoreError> {
        let id = &turn.session.conversation_id;
        let session = record::encode_session(turn.session, turn.expected)?;
        let encoded = record::encode_events(turn.events)?;
        let message = if encoded.is_empty() {
            String::new()
        } else {
            record::encode_published(&self.inner.config.instance_id, &encoded)
        };

        let mut invocation = scripts::commit_turn().prepare_invoke();
        invocation
            .key(self.inner.keys.session(id))
            .key(self.inner.keys.transcript(id))
            .arg(turn.expected)
            .arg(session)
            .arg(self.inner.token())
            .arg(ttl_millis(turn.ttl))
            .arg(self.inner.config.max_events)
            .arg(self.inner.keys.events_channel())
            .arg(message);
        for (seq, json) in &encoded {
            invocation.arg(seq).arg(json);
        }

        let invocation = &invocation;
        let operation = if turn.events.is_empty() { "save" } else { "commit_turn" };
        let (stored, version): (i64, u64) =
            self.inner.connection.call(operation, |mut con| async move { invocation.invoke_async(&mut con).await }).await?;
        if stored == 1 {
            return Ok(version);
        }
        Err(StoreError::Conflict { conversation_id: id.clone(), expected: turn.expected, actual: version })
    }
}
