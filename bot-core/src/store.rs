//! The session-store boundary and its in-memory implementation.
//!
//! A store keeps, per conversation, the [`Session`] under a version number, the
//! transcript of [`Event`]s, and membership of the queue of conversations waiting
//! for an agent. Writes of a session are compare-and-set on the version, so two
//! writers that read the same version cannot both win. Every record expires
//! `ttl` after its last write.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::event::Event;
use crate::ids::{Channel, ConversationId, Lang};
use crate::message::{now_millis, Timestamp};
use crate::session::Session;

/// A session with the version it was stored under.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub session: Session,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Loads a conversation's session, or `None` when there is none or it expired.
    async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError>;

    /// Stores `session` if the stored version is `expected` (0: no session stored)
    /// and returns the new version. Fails with [`StoreError::Conflict`] otherwise.
    async fn save(&self, session: &Session, expected: u64, ttl: Duration) -> Result<u64, StoreError>;

    /// Appends events to the conversation's transcript and refreshes its TTL.
    /// Events carry increasing sequence numbers; appending a number already
    /// stored is a caller bug, and stores may keep either copy.
    async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: Duration) -> Result<(), StoreError>;

    /// Returns up to `limit` transcript events with `seq > after_seq`, in order.
    async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// Adds a conversation to the queue of those waiting for an agent, or removes it (`None`).
    async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError>;

    /// Lists the conversations waiting for an agent, longest-waiting first.
    async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError>;

    /// Stores the outcome of one turn: the session (compare-and-set as in
    /// [`save`](Self::save)), its new events, and when `waiting` is `Some`, the
    /// queue membership as in [`set_waiting`](Self::set_waiting). Stores that
    /// can should do this in one transaction; this default makes three calls.
    async fn commit_turn(&self, turn: TurnCommit<'_>) -> Result<u64, StoreError> {
        let version = self.save(turn.session, turn.expected, turn.ttl).await?;
        if !turn.events.is_empty() {
            self.append_events(&turn.session.conversation_id, turn.events, turn.ttl).await?;
        }
        if let Some(since) = turn.waiting {
            self.set_waiting(&turn.session.conversation_id, since).await?;
        }
        Ok(version)
    }

    /// Takes the conversation's lease, which orders turns across every server
    /// process sharing this store: the engine holds it from loading a session
    /// to storing the turn. A store that only one process uses returns
    /// [`Lease::local`], because the engine's in-process lock already orders
    /// the turns. A shared store waits a bounded time for the holder and then
    /// fails with [`StoreError::LeaseTimeout`].
    async fn lease(&self, _id: &ConversationId) -> Result<Lease, StoreError> {
        Ok(Lease::local())
    }

    /// Returns, on the first call, the receiver of events that other server
    /// processes committed to this store, so that the engine can pass them to
    /// this process's subscribers. Stores that only one process uses return `None`.
    fn remote_events(&self) -> Option<mpsc::Receiver<RemoteEvents>> {
        None
    }

    /// Adds a customer message the bot did not recognise to the list agents
    /// review, keeping only the newest [`MAX_UNRECOGNISED`].
    async fn record_unrecognised(&self, message: &UnrecognisedMessage) -> Result<(), StoreError>;

    /// Lists up to `limit` unrecognised messages, newest first.
    async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError>;

    /// Removes the unrecognised message `seq` of conversation `id` from the list.
    /// Returns false when the list does not contain it.
    async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError>;

    /// Checks that the store responds, for readiness probes. It must be cheap
    /// (a Redis `PING`, a read transaction), and callers bound it with a timeout.
    /// This default reports success, which suits stores in process memory.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes every write so far durable. Called on shutdown; stores that write
    /// through on every call need not override it.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The session, events and queue change that [`SessionStore::commit_turn`] stores.
#[derive(Clone, Copy, Debug)]
pub struct TurnCommit<'a> {
    pub session: &'a Session,
    /// The version the session was loaded at (0: none stored).
    pub expected: u64,
    pub events: &'a [Event],
    /// `Some(Some(since))` adds the conversation to the waiting queue,
    /// `Some(None)` removes it, `None` leaves the queue alone.
    pub waiting: Option<Option<Timestamp>>,
    pub ttl: Duration,
}

/// The number of unrecognised messages a store keeps. Recording one more drops the oldest.
pub const MAX_UNRECOGNISED: usize = 1000;

/// A customer text message whose turn ended in the fallback: no intent matched
/// and the knowledge base returned no result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnrecognisedMessage {
    pub conversation_id: ConversationId,
    /// The `seq` of the customer's event in the transcript.
    pub seq: u64,
    pub text: String,
    pub lang: Lang,
    pub channel: Channel,
    pub at: Timestamp,
}

impl UnrecognisedMessage {
    /// Tells whether this is message `seq` of conversation `id`.
    pub fn is(&self, id: &ConversationId, seq: u64) -> bool {
        self.seq == seq && &self.conversation_id == id
    }
}

/// A conversation's lease, held until [`release`](Self::release) or drop.
#[must_use = "a lease orders turns only while it is held"]
pub struct Lease {
    handle: Option<Box<dyn LeaseHandle>>,
}

/// A store's side of a held lease.
#[async_trait]
pub trait LeaseHandle: Send {
    /// Gives the lease back so that the next turn need not wait for it to expire.
    async fn release(self: Box<Self>);
}

impl Lease {
    /// A lease that orders nothing beyond the engine's in-process lock.
    pub fn local() -> Self {
        Self { handle: None }
    }

    pub fn new(handle: Box<dyn LeaseHandle>) -> Self {
        Self { handle: Some(handle) }
    }

    pub async fn release(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.release().await;
        }
    }
}

/// What a shared store passes on from the other server processes.
#[derive(Clone, Debug, PartialEq)]
pub enum RemoteEvents {
    /// Events another process committed, in `seq` order per conversation.
    Committed(Vec<Event>),
    /// The feed was interrupted (a reconnect), so events may have been missed:
    /// subscribers should read the transcript after the last event they saw.
    MaybeMissed,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session {conversation_id} changed concurrently: expected version {expected}, found {actual}")]
    Conflict { conversation_id: ConversationId, expected: u64, actual: u64 },
    #[error("session store unavailable: {reason}")]
    Unavailable { reason: String },
    /// Another process kept the conversation's lease longer than the store waits.
    #[error("conversation {conversation_id} is busy: waited {waited_ms} ms for the lease held by {holder}; retry the message")]
    LeaseTimeout { conversation_id: ConversationId, waited_ms: u64, holder: String },
    /// The stored session cannot be decoded. `version` is the version it is stored
    /// under, so that the caller can overwrite it with a fresh session.
    #[error("stored session of conversation {conversation_id} (version {version}) cannot be read: {reason}")]
    Corrupt { conversation_id: ConversationId, version: u64, reason: String },
}

/// A store in process memory, for tests and single-process experiments; lost on exit.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    sessions: HashMap<ConversationId, (Versioned, Timestamp)>,
    transcripts: HashMap<ConversationId, (Vec<Event>, Timestamp)>,
    waiting: BTreeMap<ConversationId, Timestamp>,
    /// Newest first.
    unrecognised: VecDeque<UnrecognisedMessage>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn expiry(ttl: Duration) -> Timestamp {
    now_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError> {
        let inner = self.inner.lock().expect("memory store lock poisoned");
        let found = inner.sessions.get(id).filter(|(_, expires)| *expires > now_millis());
        Ok(found.map(|(versioned, _)| versioned.clone()))
    }

    async fn save(&self, session: &Session, expected: u64, ttl: Duration) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock().expect("memory store lock poisoned");
        let id = &session.conversation_id;
        let now = now_millis();
        let stored = inner.sessions.get(id);
        let actual = stored.filter(|(_, expires)| *expires > now).map_or(0, |(v, _)| v.version);
        if actual != expected {
            return Err(StoreError::Conflict { conversation_id: id.clone(), expected, actual });
        }

        // Versions keep rising across an expiry, so a writer holding a version
        // from before it cannot win against the new session.
        let version = stored.map_or(0, |(v, _)| v.version).max(expected) + 1;
        let stored = Versioned { version, session: session.clone() };
        inner.sessions.insert(id.clone(), (stored, expiry(ttl)));
        if let Some((_, expires)) = inner.transcripts.get_mut(id).filter(|(_, expires)| *expires > now) {
            *expires = expiry(ttl);
        }
        Ok(version)
    }

    async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: Duration) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("memory store lock poisoned");
        let entry = inner.transcripts.entry(id.clone()).or_insert_with(|| (Vec::new(), 0));
        if entry.1 <= now_millis() {
            entry.0.clear();
        }
        entry.0.extend_from_slice(events);
        entry.1 = expiry(ttl);
        Ok(())
    }

    async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let inner = self.inner.lock().expect("memory store lock poisoned");
        let Some((events, expires)) = inner.transcripts.get(id) else {
            return Ok(Vec::new());
        };
        if *expires <= now_millis() {
            return Ok(Vec::new());
        }
        Ok(events.iter().filter(|e| e.seq > after_seq).take(limit).cloned().collect())
    }

    async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("memory store lock poisoned");
        match since {
            Some(since) => inner.waiting.insert(id.clone(), since),
            None => inner.waiting.remove(id),
        };
        Ok(())
    }

    async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError> {
        let inner = self.inner.lock().expect("memory store lock poisoned");
        let mut waiting: Vec<_> = inner.waiting.iter().map(|(id, since)| (id.clone(), *since)).collect();
        waiting.sort_by_key(|(id, since)| (*since, id.clone()));
        Ok(waiting)
    }

    async fn record_unrecognised(&self, message: &UnrecognisedMessage) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("memory store lock poisoned");
        inner.unrecognised.retain(|kept| !kept.is(&message.conversation_id, message.seq));
        inner.unrecognised.push_front(message.clone());
        inner.unrecognised.truncate(MAX_UNRECOGNISED);
        Ok(())
    }

    async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
        let inner = self.inner.lock().expect("memory store lock poisoned");
        Ok(inner.unrecognised.iter().take(limit).cloned().collect())
    }

    async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock().expect("memory store lock poisoned");
        let before = inner.unrecognised.len();
        inner.unrecognised.retain(|kept| !kept.is(id, seq));
        Ok(inner.unrecognised.len() < before)
    }
}

pub mod contract;
