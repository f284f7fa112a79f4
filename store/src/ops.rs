//! The store operations as blocking redb transactions. Each runs in one
//! transaction, so it reads and leaves the file consistent. redb runs write
//! transactions one at a time, which makes the compare-and-set in [`save`] atomic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bot_core::{ConversationId, Event, Session, StoreError, Timestamp, Versioned};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, WriteTransaction};

use crate::error::unavailable;
use crate::record::{self, Envelope};
use crate::sync::{SyncPolicy, SyncState};
use crate::tables::{EVENTS, SESSIONS, SESSIONS_BY_EXPIRY, TRANSCRIPTS, TRANSCRIPTS_BY_EXPIRY, WAITING};

/// How many writes pass between two sweeps of expired records.
pub const SWEEP_EVERY_WRITES: u64 = 256;

/// The open database, shared by every task using the store.
pub(crate) struct Inner {
    pub db: Database,
    pub path: PathBuf,
    pub sync: SyncState,
    writes: AtomicU64,
}

impl Inner {
    pub fn new(db: Database, path: PathBuf, policy: SyncPolicy) -> Self {
        Self { db, path, sync: SyncState::new(policy), writes: AtomicU64::new(0) }
    }

    /// Counts a committed write; true when this write should be followed by a sweep.
    pub fn count_write(&self) -> bool {
        self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_WRITES == SWEEP_EVERY_WRITES - 1
    }

    /// Starts a write transaction with the durability of the store's [`SyncPolicy`].
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, OpError> {
        let mut txn = self.db.begin_write()?;
        if self.sync.deferred {
            txn.set_durability(Durability::None)?;
        }
        Ok(txn)
    }

    /// Commits a transaction from [`begin_write`](Self::begin_write).
    pub(crate) fn commit(&self, txn: WriteTransaction) -> Result<(), OpError> {
        txn.commit()?;
        if self.sync.deferred {
            self.sync.mark_dirty();
        }
        Ok(())
    }

    /// Makes every commit so far durable with one fsync, unless none is pending.
    pub fn flush(&self) -> Result<(), OpError> {
        let _flushing = self.sync.lock_flush();
        if !self.sync.take_dirty() {
            return Ok(());
        }
        // An empty transaction with redb's default `Durability::Immediate`
        // writes the header that points at the newest commit, then fsyncs.
        let result = self.db.begin_write().map_err(OpError::from).and_then(|txn| Ok(txn.commit()?));
        if result.is_err() {
            self.sync.mark_dirty();
        }
        result
    }
}

/// Counts of the records a sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Expired session records.
    pub sessions: u64,
    /// Expired transcripts.
    pub transcripts: u64,
    /// Events of those transcripts.
    pub events: u64,
}

/// A failed operation: a store-level error such as a conflict, or a redb failure.
pub(crate) enum OpError {
    Store(StoreError),
    Redb(redb::Error),
}

impl OpError {
    pub fn into_store_error(self, path: &Path) -> StoreError {
        match self {
            Self::Store(error) => error,
            Self::Redb(error) => unavailable(path, error),
        }
    }
}

impl From<StoreError> for OpError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for OpError {
            fn from(error: $error) -> Self {
                Self::Redb(error.into())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Opens the sessions table in a read transaction, which fails when the file cannot be read.
pub(crate) fn ping(inner: &Inner) -> Result<(), OpError> {
    let txn = inner.db.begin_read()?;
    txn.open_table(SESSIONS)?;
    Ok(())
}

pub(crate) fn load(inner: &Inner, id: &ConversationId, now: Timestamp) -> Result<Option<Versioned>, OpError> {
    let txn = inner.db.begin_read()?;
    let sessions = txn.open_table(SESSIONS)?;
    let Some(bytes) = sessions.get(id.as_str())? else {
        return Ok(None);
    };

    let envelope = record::decode_envelope(id, bytes.value())?;
    if envelope.expires_at <= now {
        return Ok(None);
    }
    let version = envelope.version;
    let session = record::decode_session(id, envelope)?;
    Ok(Some(Versioned { version, session }))
}

/// Stores `session` if the live stored version is `expected`.
///
/// A record that expired counts as absent (version 0). A live record whose
/// session cannot be decoded keeps its version, which [`load`] reports in
/// [`StoreError::Corrupt`] so that the caller can replace it. A record whose
/// store fields cannot be read counts as version 0. The new version continues
/// from the stored record's version when that is readable, so a writer holding a
/// version from before the record expired still conflicts.
pub(crate) fn save(inner: &Inner, session: &Session, expected: u64, expires_at: Timestamp, now: Timestamp) -> Result<u64, OpError> {
    let txn = inner.begin_write()?;
    let version = save_in(&txn, session, expected, expires_at, now)?;
    inner.commit(txn)?;
    Ok(version)
}

/// Does the work of [`save`] inside `txn`. Every [`StoreError`] it returns
/// comes before its first write, which [`commit_turns`] relies on.
fn save_in(txn: &WriteTransaction, session: &Session, expected: u64, expires_at: Timestamp, now: Timestamp) -> Result<u64, OpError> {
    let id = &session.conversation_id;
    let version = {
        let mut sessions = txn.open_table(SESSIONS)?;
        let previous = sessions.get(id.as_str())?.map(|bytes| record::decode_envelope(id, bytes.value()));
        let stored = StoredVersion::of(id, previous, now);
        if stored.live != expected {
            return Err(StoreError::Conflict { conversation_id: id.clone(), expected, actual: stored.live }.into());
        }

        let bytes = record::encode_session(session, stored.version, expires_at)?;
        sessions.insert(id.as_str(), bytes.as_slice())?;

        let mut by_expiry = txn.open_table(SESSIONS_BY_EXPIRY)?;
        if let Some(old_expiry) = stored.expires_at {
            by_expiry.remove((old_expiry, id.as_str()))?;
        }
        by_expiry.insert((expires_at, id.as_str()), ())?;
        stored.version + 1
    };

    refresh_live_transcript(txn, id, expires_at, now)?;
    Ok(version)
}

/// Stores a batch of turns in one transaction. Each turn does [`save`], then
/// [`append_events`] when it has events, then [`set_waiting`] when `waiting`
/// is `Some`, and gets its own result: a turn that fails with a [`StoreError`]
/// (a conflict, or a session that cannot be encoded) stores nothing, and the
/// others are stored. A redb error aborts the transaction, so no turn is stored.
pub(crate) fn commit_turns(inner: &Inner, turns: &[EncodedTurn], now: Timestamp) -> Result<Vec<Result<u64, StoreError>>, OpError> {
    let txn = inner.begin_write()?;
    let mut results = Vec::with_capacity(turns.len());
    for turn in turns {
        match commit_turn_in(&txn, turn, now) {
            Ok(version) => results.push(Ok(version)),
            // `save_in` returns every StoreError before the turn's first write.
            Err(OpError::Store(error)) => results.push(Err(error)),
            Err(error @ OpError::Redb(_)) => return Err(error),
        }
    }
    inner.commit(txn)?;
    Ok(results)
}

fn commit_turn_in(txn: &WriteTransaction, turn: &EncodedTurn, now: Timestamp) -> Result<u64, OpError> {
    let id = &turn.session.conversation_id;
    let version = save_in(txn, &turn.session, turn.expected, turn.expires_at, now)?;
    if !turn.events.is_empty() {
        append_events_in(txn, id, &turn.events, turn.expires_at, now)?;
    }
    if let Some(since) = turn.waiting {
        set_waiting_in(txn, id, since)?;
    }
    Ok(version)
}

/// A [`bot_core::TurnCommit`] with its events encoded, ready to store.
pub(crate) struct EncodedTurn {
    pub session: Session,
    pub expected: u64,
    /// (sequence number, event JSON) of each event.
    pub events: Vec<(u64, Vec<u8>)>,
    pub waiting: Option<Option<Timestamp>>,
    pub expires_at: Timestamp,
}

/// The store fields of the record a save replaces.
struct StoredVersion {
    /// The record's version, live or expired; 0 when there is none or it is unreadable.
    version: u64,
    /// The version a save must expect: `version` while the record is live, else 0.
    live: u64,
    expires_at: Option<Timestamp>,
}

impl StoredVersion {
    fn of(id: &ConversationId, previous: Option<Result<Envelope, StoreError>>, now: Timestamp) -> Self {
        match previous {
            None => Self { version: 0, live: 0, expires_at: None },
            Some(Err(error)) => {
                tracing::warn!(conversation_id = %id, %error, "a session record with unreadable store fields counts as version 0");
                Self { version: 0, live: 0, expires_at: None }
            }
            Some(Ok(envelope)) => {
                let live = if envelope.expires_at > now { envelope.version } else { 0 };
                Self { version: envelope.version, live, expires_at: Some(envelope.expires_at) }
            }
        }
    }
}

/// Moves the expiry of a conversation's transcript to `expires_at`, unless it
/// has none or it already expired (an expired transcript must stay unreadable).
fn refresh_live_transcript(txn: &WriteTransaction, id: &ConversationId, expires_at: Timestamp, now: Timestamp) -> Result<(), OpError> {
    let mut transcripts = txn.open_table(TRANSCRIPTS)?;
    let current = transcripts.get(id.as_str())?.map(|v| v.value());
    match current {
        Some(current) if current > now => {
            let mut by_expiry = txn.open_table(TRANSCRIPTS_BY_EXPIRY)?;
            set_transcript_expiry(&mut transcripts, &mut by_expiry, id, Some(current), expires_at)
        }
        _ => Ok(()),
    }
}

fn set_transcript_expiry(
    transcripts: &mut Table<&str, Timestamp>,
    by_expiry: &mut Table<(Timestamp, &str), ()>,
    id: &ConversationId,
    old: Option<Timestamp>,
    new: Timestamp,
) -> Result<(), OpError> {
    if let Some(old) = old {
        by_expiry.remove((old, id.as_str()))?;
    }
    by_expiry.insert((new, id.as_str()), ())?;
    transcripts.insert(id.as_str(), new)?;
    Ok(())
}

/// Appends encoded events keyed by their sequence number; an event whose
/// number is already stored replaces it, so a retried append stores it once.
/// An expired transcript is emptied first.
pub(crate) fn append_events(
    inner: &Inner,
    id: &ConversationId,
    events: &[(u64, Vec<u8>)],
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), OpError> {
    let txn = inner.begin_write()?;
    append_events_in(&txn, id, events, expires_at, now)?;
    inner.commit(txn)
}

fn append_events_in(
    txn: &WriteTransaction,
    id: &ConversationId,
    events: &[(u64, Vec<u8>)],
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), OpError> {
    let mut transcripts = txn.open_table(TRANSCRIPTS)?;
    let mut by_expiry = txn.open_table(TRANSCRIPTS_BY_EXPIRY)?;
    let mut stored = txn.open_table(EVENTS)?;
    let old_expiry = transcripts.get(id.as_str())?.map(|v| v.value());
    if old_expiry.is_some_and(|old| old <= now) {
        delete_events(&mut stored, id)?;
    }

    for (seq, bytes) in events {
        stored.insert((id.as_str(), *seq), bytes.as_slice())?;
    }
    set_transcript_expiry(&mut transcripts, &mut by_expiry, id, old_expiry, expires_at)
}

fn delete_events(stored: &mut Table<(&str, u64), &[u8]>, id: &ConversationId) -> Result<u64, OpError> {
    let mut deleted = 0;
    stored.retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| {
        deleted += 1;
        false
    })?;
    Ok(deleted)
}

pub(crate) fn events(inner: &Inner, id: &ConversationId, after_seq: u64, limit: usize, now: Timestamp) -> Result<Vec<Event>, OpError> {
    let Some(first) = after_seq.checked_add(1) else {
        return Ok(Vec::new());
    };
    let txn = inner.db.begin_read()?;
    let transcripts = txn.open_table(TRANSCRIPTS)?;
    let live = transcripts.get(id.as_str())?.is_some_and(|expiry| expiry.value() > now);
    if !live || limit == 0 {
        return Ok(Vec::new());
    }

    let stored = txn.open_table(EVENTS)?;
    let mut events = Vec::new();
    for entry in stored.range((id.as_str(), first)..=(id.as_str(), u64::MAX))?.take(limit) {
        let (key, bytes) = entry?;
        let (_, seq) = key.value();
        events.push(record::decode_event(id, seq, bytes.value())?);
    }
    Ok(events)
}

pub(crate) fn set_waiting(inner: &Inner, id: &ConversationId, since: Option<Timestamp>) -> Result<(), OpError> {
    let txn = inner.begin_write()?;
    set_waiting_in(&txn, id, since)?;
    inner.commit(txn)
}

fn set_waiting_in(txn: &WriteTransaction, id: &ConversationId, since: Option<Timestamp>) -> Result<(), OpError> {
    let mut waiting = txn.open_table(WAITING)?;
    match since {
        Some(since) => waiting.insert(id.as_str(), since)?,
        None => waiting.remove(id.as_str())?,
    };
    Ok(())
}

pub(crate) fn waiting(inner: &Inner) -> Result<Vec<(ConversationId, Timestamp)>, OpError> {
    let txn = inner.db.begin_read()?;
    let table = txn.open_table(WAITING)?;
    let mut waiting = Vec::new();
    for entry in table.iter()? {
        let (id, since) = entry?;
        waiting.push((ConversationId::new(id.value()), since.value()));
    }
    waiting.sort_by(|(a_id, a_since), (b_id, b_since)| (a_since, a_id).cmp(&(b_since, b_id)));
    Ok(waiting)
}

/// Sweeps after a committed write. The write already succeeded, so a failed sweep
/// is logged and left for the next one.
pub(crate) fn sweep_after_write(inner: &Inner) {
    match sweep(inner, bot_core::message::now_millis()) {
        Ok(stats) => tracing::debug!(
            expired_sessions = stats.sessions,
            expired_transcripts = stats.transcripts,
            expired_events = stats.events,
            "swept the embedded session store"
        ),
        Err(error) => {
            let error = error.into_store_error(&inner.path);
            tracing::warn!(%error, "sweeping expired records failed; the next sweep retries");
        }
    }
}

/// Deletes the session records and transcripts that expired at or before `now`.
///
/// A session record whose store fields cannot be read is kept: it is unreadable
/// data, not expired data, and the next save of that conversation replaces it.
pub(crate) fn sweep(inner: &Inner, now: Timestamp) -> Result<SweepStats, OpError> {
    let mut stats = SweepStats::default();
    let txn = inner.begin_write()?;
    {
        let due = take_due(&mut txn.open_table(SESSIONS_BY_EXPIRY)?, now)?;
        let mut sessions = txn.open_table(SESSIONS)?;
        for id in due {
            let conversation_id = ConversationId::new(id.as_str());
            let expired = match sessions.get(id.as_str())? {
                Some(bytes) => match record::decode_envelope(&conversation_id, bytes.value()) {
                    Ok(envelope) => envelope.expires_at <= now,
                    Err(error) => {
                        tracing::warn!(%conversation_id, %error, "keeping an unreadable session record in the sweep");
                        false
                    }
                },
                None => false,
            };
            if expired {
                sessions.remove(id.as_str())?;
                stats.sessions += 1;
            }
        }
    }
    {
        let due = take_due(&mut txn.open_table(TRANSCRIPTS_BY_EXPIRY)?, now)?;
        let mut transcripts = txn.open_table(TRANSCRIPTS)?;
        let mut stored = txn.open_table(EVENTS)?;
        for id in due {
            let expired = transcripts.get(id.as_str())?.is_some_and(|expiry| expiry.value() <= now);
            if expired {
                transcripts.remove(id.as_str())?;
                stats.events += delete_events(&mut stored, &ConversationId::new(id))?;
                stats.transcripts += 1;
            }
        }
    }
    inner.commit(txn)?;
    Ok(stats)
}

/// Removes and returns the conversation ids of index entries due at or before `now`.
///
/// An entry can be stale: a save that replaces a record whose store fields are
/// unreadable cannot find that record's old entry. So callers check the record itself.
fn take_due(by_expiry: &mut Table<(Timestamp, &str), ()>, now: Timestamp) -> Result<Vec<String>, OpError> {
    let end = (now.saturating_add(1), "");
    let mut due = Vec::new();
    for entry in by_expiry.extract_from_if(..end, |_, _| true)? {
        let (key, _) = entry?;
        due.push(key.value().1.to_owned());
    }
    Ok(due)
}
