//! The Redis session store for Lepton. [`RedisStore`] keeps sessions,
//! transcripts and the queue of conversations waiting for an agent in Redis,
//! so that several `lepton serve` processes behind a load balancer share them.
//! It also orders the turns of one conversation across those processes with a
//! lease, and passes the events one process commits to the others, so that a
//! widget connected to any process receives every reply.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use bot_core::{ConversationId, SessionStore};
//! use lepton_redis::{RedisConfig, RedisStore};
//!
//! let config = RedisConfig { url: "redis://:secret@127.0.0.1:6379/0".to_owned(), ..RedisConfig::default() };
//! let store = RedisStore::connect(config).await?;
//!
//! let id = ConversationId::new("web:42");
//! let lease = store.lease(&id).await?;
//! let stored = store.load(&id).await?;
//! println!("stored version: {:?}", stored.map(|s| s.version));
//! lease.release().await;
//! # Ok(()) }
//! ```
//!
//! # Keys
//!
//! With the default prefix `lepton`, conversation `web:42` has
//! - `lepton:{web:42}:session`: a hash of the store `version`, the `session`
//!   JSON (with its schema version, migrated on load by
//!   [`bot_core::session::decode_session`]) and the `commit` token of the last write;
//! - `lepton:{web:42}:transcript`: a sorted set of event JSON scored by
//!   sequence number, trimmed to the newest [`RedisConfig::max_events`];
//! - `lepton:{web:42}:lease`: the lease token while a turn runs.
//!
//! The braces are a Redis Cluster hash tag, so these keys share a slot (ids
//! with braces use a digest, see `keys.rs`). `lepton:waiting` is the sorted set
//! of waiting conversations scored by when they started waiting,
//! `lepton:unrecognised` the list of the newest customer messages the bot did
//! not recognise (JSON, newest first), and `lepton:events` the pub/sub channel
//! of committed events.
//!
//! # Guarantees
//!
//! - A save or a turn's commit is one Lua script: compare-and-set on the
//!   version, the events appended, every key's TTL refreshed, and the events
//!   published, all or nothing. The waiting queue change of a turn is a second
//!   call, because the queue is in another slot.
//! - Every write refreshes the TTL, so an active conversation never expires.
//!   Versions start again at 1 after a session expired.
//! - Every call has a timeout ([`RedisConfig::command_timeout`] and
//!   [`RedisConfig::connect_timeout`]), so an outage makes calls fail with
//!   [`StoreError::Unavailable`](bot_core::StoreError::Unavailable) instead of
//!   hanging. After a dropped connection a call is retried once on a new
//!   connection. An outage is logged once at ERROR when it starts and once at
//!   WARN when it ends, with the number of failed calls.
//! - Redis keeps writes in memory; how many survive a Redis crash depends on
//!   the server's persistence settings (RDB snapshots, AOF), not on this store.
//! - Every key has a TTL, so a `maxmemory` policy of `volatile-*` or
//!   `allkeys-*` may evict conversations before they expire. Run Redis with
//!   `maxmemory-policy noeviction`, so that a full Redis refuses writes (the
//!   turn fails and the customer is asked to retry) instead of dropping sessions.
//!
//! # Redis Cluster
//!
//! With [`RedisConfig::cluster`] set, [`RedisConfig::url`] lists seed nodes
//! separated by commas (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`), and
//! the store sends each command to the node that serves its key's hash slot,
//! following MOVED and ASK redirects. Every Lua script touches only the keys
//! passed to it, which are one conversation's keys and so share a slot. A
//! cluster has only database 0. A node that is down fails the calls for its
//! slots with `Unavailable`. The other nodes keep serving theirs only when the
//! cluster runs with `cluster-require-full-coverage no`; with Redis's default
//! (`yes`) the whole cluster refuses calls until every slot is served again.
//! Events are published from the scripts, and the remote events feed
//! subscribes on one seed node, because a cluster passes a classic PUBLISH on
//! to the subscribers on every node.

mod config;
mod connection;
mod endpoint;
mod health;
mod keys;
mod lease;
mod record;
mod remote;
mod scripts;
mod store;
mod unrecognised;

pub use config::{default_instance_id, redact_url, RedisConfig, RedisStoreError, ACCEPTED_URL_FORMS};
pub use store::RedisStore;
