//! [`EmbeddedStore`]: the [`SessionStore`] kept in one redb file.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::message::now_millis;
use bot_core::{ConversationId, Event, Session, SessionStore, StoreError, Timestamp, TurnCommit, UnrecognisedMessage, Versioned};
use redb::Database;

use crate::error::EmbeddedStoreError;
use crate::batch::TurnWriter;
use crate::ops::{self, EncodedTurn, Inner, OpError, SweepStats};
use crate::record;
use crate::sync::{Flusher, SyncPolicy};
use crate::tables::{self, FormatCheck, FORMAT_VERSION};
use crate::unrecognised;

/// redb's page cache. Its default (1 GiB) lets a busy server's memory grow with
/// the file; recent sessions fit in far less, and older pages are read from disk.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A session store in one file on local disk, safe to share between tasks as
/// `Arc<EmbeddedStore>`.
///
/// Each write is one redb transaction (concurrent `commit_turn` calls share
/// one), visible to every reader when it returns. When it reaches the disk
/// depends on the [`SyncPolicy`]. By default each write is fsynced before it
/// returns. Under [`SyncPolicy::Periodic`] a background thread makes writes
/// durable later, so a crash may lose the last ones (see the crate documentation).
/// [`flush`](SessionStore::flush) and dropping the store make every write
/// durable, so after a clean shutdown a restarted server continues each
/// conversation where it stopped. Only one process can open a file at a time.
///
/// Expired records read as absent. They are deleted when the store opens, every
/// [`SWEEP_EVERY_WRITES`](crate::SWEEP_EVERY_WRITES) writes, and by
/// [`sweep_expired`](Self::sweep_expired). redb reuses the freed pages, so the
/// file stops growing once expiry keeps pace with new conversations.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    /// The thread that stores `commit_turn` requests in batches.
    writer: TurnWriter,
    /// The thread that flushes deferred commits; `None` under [`SyncPolicy::EveryWrite`].
    flusher: Option<Flusher>,
}

impl EmbeddedStore {
    /// Opens the store file at `path` with the default [`SyncPolicy`], creating
    /// it and its parent folders if needed, and deletes expired records.
    ///
    /// This blocks on file I/O, so call it at startup or inside
    /// `tokio::task::spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, EmbeddedStoreError> {
        Self::open_with(path, SyncPolicy::default())
    }

    /// Opens the store file at `path` as [`open`](Self::open) does, with
    /// `policy` deciding when writes become durable.
    pub fn open_with(path: &Path, policy: SyncPolicy) -> Result<Self, EmbeddedStoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| EmbeddedStoreError::CreateFolder { path: parent.to_path_buf(), source })?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| EmbeddedStoreError::from_open(path, e))?;
        prepare_tables(&db, path)?;

        let inner = Arc::new(Inner::new(db, path.to_path_buf(), policy));
        let stats = ops::sweep(&inner, now_millis()).map_err(|e| match e {
            OpError::Redb(source) => EmbeddedStoreError::from_setup(path, source),
            OpError::Store(error) => EmbeddedStoreError::Corrupt { path: path.to_path_buf(), reason: error.to_string() },
        })?;
        let thread_error = |source| EmbeddedStoreError::WriterThread { path: path.to_path_buf(), source };
        let writer = TurnWriter::start(Arc::clone(&inner)).map_err(thread_error)?;
        let flusher = match policy.interval() {
            Some(interval) => Some(Flusher::start(Arc::clone(&inner), interval).map_err(thread_error)?),
            None => None,
        };
        tracing::debug!(
            path = %path.display(),
            ?policy,
            expired_sessions = stats.sessions,
            expired_transcripts = stats.transcripts,
            "opened the embedded session store"
        );
        Ok(Self { inner, writer, flusher })
    }

    /// Returns the path of the store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Deletes every session record and transcript that has expired, and returns
    /// how many it deleted. The store also sweeps by itself, so calling this on a
    /// timer is optional.
    pub async fn sweep_expired(&self) -> Result<SweepStats, StoreError> {
        self.run("sweep", |inner| ops::sweep(inner, now_millis())).await
    }

    /// Runs a blocking redb operation on the blocking thread pool.
    async fn run<T, F>(&self, operation: &'static str, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, OpError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || op(&inner).map_err(|e| e.into_store_error(&inner.path)));
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(StoreError::Unavailable {
                reason: format!("session store {} {operation} did not finish: {error}", self.inner.path.display()),
            }),
        }
    }

    /// Runs a write, then a sweep when enough writes have passed since the last one.
    /// The sweep runs in the same blocking task so that no task outlives the
    /// caller's await and keeps the file locked after the store is dropped.
    async fn write<T, F>(&self, operation: &'static str, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, OpError> + Send + 'static,
    {
        self.run(operation, move |inner| {
            let value = op(inner)?;
            if inner.count_write() {
                ops::sweep_after_write(inner);
            }
            Ok(value)
        })
        .await
    }
}

fn prepare_tables(db: &Database, path: &Path) -> Result<(), EmbeddedStoreError> {
    let txn = db.begin_write().map_err(|e| EmbeddedStoreError::from_setup(path, e))?;
    let check = tables::create_tables(&txn).map_err(|e| EmbeddedStoreError::from_setup(path, e))?;
    if let FormatCheck::Unsupported { found } = check {
        return Err(EmbeddedStoreError::UnsupportedFormat { path: path.to_path_buf(), found, supported: FORMAT_VERSION });
    }
    txn.commit().map_err(|e| EmbeddedStoreError::from_setup(path, e))
}

fn expiry(ttl: Duration) -> Timestamp {
    let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    now_millis().saturating_add(ttl)
}

fn encode_events(events: &[Event]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    events.iter().map(|event| record::encode_event(event).map(|bytes| (event.seq, bytes))).collect()
}

/// Stores the queued turns, stops the threads and makes every write durable.
/// A failure is logged, because `Drop` cannot return it; call
/// [`SessionStore::flush`] first to see it.
impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.writer.stop();
        if let Some(flusher) = &mut self.flusher {
            flusher.stop();
        }
        if let Err(error) = self.inner.flush() {
            let error = error.into_store_error(&self.inner.path);
            tracing::error!(%error, "the last writes to the session store may not be durable");
        }
    }
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError> {
        let id = id.clone();
        self.run("load", move |inner| ops::load(inner, &id, now_millis())).await
    }

    async fn save(&self, session: &Session, expected: u64, ttl: Duration) -> Result<u64, StoreError> {
        let session = session.clone();
        let expires_at = expiry(ttl);
        self.write("save", move |inner| ops::save(inner, &session, expected, expires_at, now_millis())).await
    }

    async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: Duration) -> Result<(), StoreError> {
        let encoded = encode_events(events)?;
        let id = id.clone();
        let expires_at = expiry(ttl);
        self.write("append_events", move |inner| ops::append_events(inner, &id, &encoded, expires_at, now_millis())).await
    }

    async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let id = id.clone();
        self.run("events", move |inner| ops::events(inner, &id, after_seq, limit, now_millis())).await
    }

    async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError> {
        let id = id.clone();
        self.write("set_waiting", move |inner| ops::set_waiting(inner, &id, since)).await
    }

    async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError> {
        self.run("waiting", ops::waiting).await
    }

    /// Stores the session, the events and the waiting-queue change in one
    /// transaction: on a conflict or any other error none of them is stored.
    /// Concurrent turns share one transaction (see the `batch` module), and
    /// each gets its own result.
    async fn commit_turn(&self, turn: TurnCommit<'_>) -> Result<u64, StoreError> {
        let turn = EncodedTurn {
            session: turn.session.clone(),
            expected: turn.expected,
            events: encode_events(turn.events)?,
            waiting: turn.waiting,
            expires_at: expiry(turn.ttl),
        };
        self.writer.commit(turn).await
    }

    async fn record_unrecognised(&self, message: &UnrecognisedMessage) -> Result<(), StoreError> {
        let bytes = unrecognised::encode(message)?;
        let message = message.clone();
        self.write("record_unrecognised", move |inner| unrecognised::record(inner, &message, &bytes)).await
    }

    async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
        self.run("unrecognised", move |inner| unrecognised::list(inner, limit)).await
    }

    async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write("dismiss_unrecognised", move |inner| unrecognised::dismiss(inner, &id, seq)).await
    }

    /// Makes every write so far durable with one fsync, or returns at once when
    /// all of them already are.
    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", ops::ping).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.run("flush", Inner::flush).await
    }
}
