//! The dialog engine: runs one customer message (a turn) at a time per
//! conversation, and the agent operations of human handoff.

mod admission;
mod agent;
mod builtin;
mod flow;
mod handoffs;
mod outage;
mod relay;
mod sync;
mod timer;
mod turn;
mod unrecognised;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use regex::Regex;
use tokio::sync::{broadcast, oneshot};

use crate::action::HttpClient;
use crate::bot::{BotDefinition, SlotKind};
use crate::classify::Classifier;
use crate::clock::{Clock, SystemClock};
use crate::event::Event;
use crate::handoff::HandoffReason;
use crate::ids::{AgentId, Channel, ConversationId, Lang, SlotName};
use crate::knowledge::KnowledgeSearch;
use crate::message::{InboundMessage, Reply, Timestamp};
use crate::observe::{Observer, Observers, RecentStats, StatsSnapshot, TurnKind, TurnReport};
use crate::session::Session;
use crate::store::{SessionStore, StoreError, TurnCommit};

pub use admission::ActiveLimit;
pub use builtin::RESERVED as RESERVED_RESPONSES;
pub use handoffs::HandoffEntry;
pub use sync::FeedEvent;

/// How many times a turn is retried when another writer changed the session.
const MAX_CONFLICT_RETRIES: usize = 3;

/// The age after which a queue entry whose session no longer has people is removed.
const STALE_QUEUE_ENTRY_MS: u64 = 60_000;

/// The longest a turn or agent operation waits for the turns of the same
/// conversation queued before it on this server process; then it fails as
/// busy (see [`EngineError::Contended`]) instead of waiting without bound.
const LOCAL_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Events kept for a slow subscriber of [`Engine::subscribe_proactive`].
const PROACTIVE_CAPACITY: usize = 1024;

/// Events kept for a slow subscriber of [`Engine::subscribe_all`].
const FEED_CAPACITY: usize = 4096;

/// The parts an engine runs on.
pub struct EngineParts {
    pub classifier: Arc<dyn Classifier>,
    pub knowledge: Arc<dyn KnowledgeSearch>,
    pub http: Arc<dyn HttpClient>,
    pub store: Arc<dyn SessionStore>,
}

/// The events one turn produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnOutcome {
    /// The customer's event, then the replies, with their sequence numbers.
    pub events: Vec<Event>,
    /// True when the message was a retry of one already processed; `events` are
    /// then the original ones.
    pub duplicate: bool,
    /// The way the turn ended.
    pub kind: TurnKind,
    /// The intent the turn acted on, if any.
    pub intent: Option<crate::ids::IntentId>,
}

/// A conversation in the queue for an agent.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WaitingConversation {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    pub since: Timestamp,
    pub reason: HandoffReason,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("conversation {conversation_id} is already claimed by agent {by}")]
    AlreadyClaimed { conversation_id: ConversationId, by: AgentId },
    #[error("conversation {conversation_id} is not waiting for an agent (state: {state})")]
    NotWaiting { conversation_id: ConversationId, state: &'static str },
    #[error("agent {agent} does not own conversation {conversation_id}; claim it first")]
    NotOwner { conversation_id: ConversationId, agent: AgentId },
    #[error("conversation {conversation_id} not found")]
    NotFound { conversation_id: ConversationId },
    /// The conversation kept changing concurrently, or earlier messages of it
    /// kept it busy for too long.
    #[error("conversation {conversation_id} is busy with other messages or changes; retry the request")]
    Contended { conversation_id: ConversationId },
    /// This process serves its maximum of active conversations (see
    /// [`ActiveLimit`]) and the message would start another. Nothing was
    /// stored, so the customer should send the message again after `retry_after`.
    #[error("conversation {conversation_id} was not started: this server is at its limit of {max_conversations} active conversations; retry in {} seconds", retry_after.as_secs())]
    TooManyConversations { conversation_id: ConversationId, max_conversations: usize, retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The bot and the models built from it; replaced as a whole on reload.
pub(crate) struct Runtime {
    pub bot: Arc<BotDefinition>,
    pub classifier: Arc<dyn Classifier>,
    pub knowledge: Arc<dyn KnowledgeSearch>,
    pub patterns: HashMap<SlotName, Regex>,
}

impl Runtime {
    fn new(bot: Arc<BotDefinition>, classifier: Arc<dyn Classifier>, knowledge: Arc<dyn KnowledgeSearch>) -> Self {
        let patterns = bot
            .slots
            .iter()
            .filter_map(|(name, slot)| match &slot.kind {
                SlotKind::Regex { pattern } => match Regex::new(pattern) {
                    Ok(regex) => Some((name.clone(), regex)),
                    Err(error) => {
                        tracing::error!(slot = %name, %error, "invalid slot pattern; answers to this slot never validate");
                        None
                    }
                },
                _ => None,
            })
            .collect();
        Self { bot, classifier, knowledge, patterns }
    }
}

/// The dialog engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: RwLock<Arc<Runtime>>,
    http: Arc<dyn HttpClient>,
    store: Arc<dyn SessionStore>,
    /// A clock set by [`Engine::with_clock`]; the system clock otherwise.
    clock: std::sync::OnceLock<Arc<dyn Clock>>,
    locks: sync::ConversationLocks,
    hub: sync::EventHub,
    proactive: broadcast::Sender<Event>,
    /// Every event this process commits or relays, for [`Engine::subscribe_all`].
    feed: broadcast::Sender<FeedEvent>,
    outage: outage::OutageLog,
    active: Arc<admission::ActiveConversations>,
    observers: Observers,
    /// Turn counts of the last hours, also registered in `observers`.
    recent: Arc<RecentStats>,
    /// Dropped with the engine, which stops the relay of other servers' events.
    _relay_stop: Option<oneshot::Sender<()>>,
}

impl Engine {
    /// Builds the engine. When the store is shared with other server processes,
    /// this also starts passing their events to this process's subscribers,
    /// which needs a running tokio runtime.
    pub fn new(bot: Arc<BotDefinition>, parts: EngineParts) -> Self {
        let runtime = Runtime::new(bot, parts.classifier, parts.knowledge);
        let feed = parts.store.remote_events();
        let (relay_stop, stopped) = oneshot::channel();
        let observers = Observers::default();
        let recent = Arc::new(RecentStats::default());
        observers.add(recent.clone());
        let inner = Inner {
            runtime: RwLock::new(Arc::new(runtime)),
            http: parts.http,
            store: parts.store,
            clock: std::sync::OnceLock::new(),
            locks: sync::ConversationLocks::default(),
            hub: sync::EventHub::default(),
            proactive: broadcast::channel(PROACTIVE_CAPACITY).0,
            feed: broadcast::channel(FEED_CAPACITY).0,
            outage: outage::OutageLog::default(),
            active: Arc::new(admission::ActiveConversations::new(Some(ActiveLimit::default()))),
            observers,
            recent,
            _relay_stop: feed.is_some().then_some(relay_stop),
        };
        let inner = Arc::new(inner);
        if let Some(feed) = feed {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn(relay::run(Arc::downgrade(&inner), feed, stopped))),
                Err(_) => tracing::error!("no tokio runtime: events committed by other servers will not reach this server's subscribers"),
            }
        }
        Self { inner }
    }

    /// Replaces the system clock, for tests that move time forward. Call it
    /// before the first turn.
    ///
    /// # Panics
    /// When a clock was set already.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        if self.inner.clock.set(clock).is_err() {
            panic!("Engine::with_clock called twice");
        }
        self
    }

    /// Registers an observer of turns, classifications, searches and the
    /// other events of [`Observer`]. It receives them from now on.
    pub fn add_observer(&self, observer: Arc<dyn Observer>) {
        self.inner.observers.add(observer);
    }

    /// Returns the registered observers, for the channels and the console to
    /// report sends, rate limits, sign-ins and reloads to.
    pub fn observers(&self) -> &Observers {
        &self.inner.observers
    }

    /// Returns this process's turn counts of the last hours, up to now.
    pub fn recent_stats(&self, top_intents: usize) -> StatsSnapshot {
        self.inner.recent.snapshot(self.now(), top_intents)
    }

    /// Checks that the classifier and the knowledge index can serve turns, for
    /// readiness probes. Nothing joins the encoder's queue, so the check
    /// returns at once on a busy server. It fails when the index cannot be
    /// read or the encoder has stalled, and the error names each failure.
    pub fn check_models(&self) -> Result<(), String> {
        let runtime = self.runtime();
        let lang = runtime.bot.settings.default_language();
        let failures: Vec<String> = [
            runtime.classifier.check_ready().map_err(|error| format!("intent classifier: {error}")),
            runtime.knowledge.check_ready(&lang).map_err(|error| error.to_string()),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Pings the session store and fails when it does not reply within `timeout`.
    pub async fn ping_store(&self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(timeout, self.inner.store.ping()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable { reason: format!("ping timed out after {} ms", timeout.as_millis()) }),
        }
    }

    fn now(&self) -> Timestamp {
        match self.inner.clock.get() {
            Some(clock) => clock.now(),
            None => SystemClock.now(),
        }
    }

    fn clock(&self) -> Arc<dyn Clock> {
        match self.inner.clock.get() {
            Some(clock) => clock.clone(),
            None => Arc::new(SystemClock),
        }
    }

    /// Sets the cap on active conversations of this process, or removes it
    /// with `None`. [`ActiveLimit::default`] applies until this is called.
    pub fn set_active_limit(&self, limit: Option<ActiveLimit>) {
        self.inner.active.set_limit(limit);
    }

    /// Returns the cap on active conversations, `None` when there is none.
    pub fn active_limit(&self) -> Option<ActiveLimit> {
        self.inner.active.limit()
    }

    /// Returns the number of conversations counted against the cap on active
    /// conversations: those with a turn running on this process and those idle
    /// for less than its window. 0 without a cap.
    pub fn active_conversations(&self) -> usize {
        self.inner.active.count_active(self.now())
    }

    /// Swaps in a new bot with its classifier and knowledge base. Turns already
    /// running finish on the old one.
    pub fn replace_bot(&self, bot: Arc<BotDefinition>, classifier: Arc<dyn Classifier>, knowledge: Arc<dyn KnowledgeSearch>) {
        let runtime = Arc::new(Runtime::new(bot, classifier, knowledge));
        *self.inner.runtime.write().expect("engine runtime lock poisoned") = runtime;
    }

    pub fn bot(&self) -> Arc<BotDefinition> {
        self.runtime().bot.clone()
    }

    fn runtime(&self) -> Arc<Runtime> {
        self.inner.runtime.read().expect("engine runtime lock poisoned").clone()
    }

    /// How long a session lives after its last change.
    fn ttl(&self, runtime: &Runtime) -> Duration {
        Duration::from_secs(runtime.bot.settings.session.ttl_seconds.max(1))
    }

    /// How long the store keeps a session after its last change: twice the
    /// session TTL, so that a customer who returns within that time gets a
    /// notice that the old session expired instead of a silent restart.
    fn retention(&self, runtime: &Runtime) -> Duration {
        self.ttl(runtime).saturating_mul(2)
    }

    /// Runs one customer message and returns the events it produced. Messages of
    /// one conversation run one at a time in arrival order; different
    /// conversations run in parallel.
    #[tracing::instrument(skip_all, fields(conversation_id = %message.conversation_id, channel = %message.channel, turn = tracing::field::Empty))]
    pub async fn handle(&self, message: InboundMessage) -> Result<TurnOutcome, EngineError> {
        let started = std::time::Instant::now();
        let result = self.handle_ordered(&message).await;
        match &result {
            Err(EngineError::Store(error @ StoreError::Unavailable { .. })) => self.inner.outage.turn_failed(error),
            Err(_) => {}
            Ok(_) => self.inner.outage.turn_succeeded(),
        }

        let (kind, intent) = match &result {
            Ok(outcome) => (outcome.kind, outcome.intent.as_ref()),
            Err(EngineError::TooManyConversations { .. }) => (TurnKind::Busy, None),
            Err(_) => (TurnKind::Error, None),
        };
        let report = TurnReport { conversation_id: &message.conversation_id, channel: &message.channel, kind, intent, elapsed: started.elapsed(), at: self.now() };
        self.inner.observers.turn_finished(&report);
        result
    }

    /// Runs the turn under the conversation's in-process lock and the store's
    /// lease, which orders it against turns on other server processes, once
    /// the cap on active conversations admits it.
    async fn handle_ordered(&self, message: &InboundMessage) -> Result<TurnOutcome, EngineError> {
        let admitted = self.inner.active.admit(&message.conversation_id, self.clock());
        let _admitted = admitted.map_err(|rejected| EngineError::TooManyConversations {
            conversation_id: message.conversation_id.clone(),
            max_conversations: rejected.max_conversations,
            retry_after: rejected.retry_after,
        })?;
        let _guard = self.lock_conversation(&message.conversation_id).await?;
        let lease = self.inner.store.lease(&message.conversation_id).await?;
        let result = self.run_turn_retrying(message).await;
        lease.release().await;
        result
    }

    /// Takes the conversation's in-process lock, waiting at most [`LOCAL_LOCK_WAIT`].
    async fn lock_conversation(&self, id: &ConversationId) -> Result<sync::ConversationGuard<'_>, EngineError> {
        match tokio::time::timeout(LOCAL_LOCK_WAIT, self.inner.locks.lock(id)).await {
            Ok(guard) => Ok(guard),
            Err(_) => {
                tracing::warn!(conversation_id = %id, waited_ms = LOCAL_LOCK_WAIT.as_millis() as u64, "earlier messages of the conversation are still running; rejecting this one as busy");
                Err(EngineError::Contended { conversation_id: id.clone() })
            }
        }
    }

    async fn run_turn_retrying(&self, message: &InboundMessage) -> Result<TurnOutcome, EngineError> {
        for attempt in 1..=MAX_CONFLICT_RETRIES {
            match self.run_turn(message).await {
                Err(EngineError::Store(StoreError::Conflict { .. })) if attempt < MAX_CONFLICT_RETRIES => {
                    tracing::warn!(attempt, "session changed by another writer during the turn; running it again");
                }
                Err(EngineError::Store(StoreError::Conflict { .. })) => break,
                other => return other,
            }
        }
        Err(EngineError::Contended { conversation_id: message.conversation_id.clone() })
    }

    /// Builds the reply a channel sends when a turn failed because the store is
    /// unavailable or the conversation is busy: a short request to send the
    /// message again, in the customer's language as far as the message shows it.
    pub fn unavailable_reply(&self, message: &InboundMessage) -> Reply {
        let runtime = self.runtime();
        let lang = turn::initial_lang(message, &runtime);
        let session = Session::new(message.conversation_id.clone(), message.channel.clone(), lang, self.now());
        flow::render(&runtime, &session, "unavailable", &[])
    }

    /// Builds the reply a channel sends when [`handle`](Self::handle) failed:
    /// the `busy` response when the server is at its limit of active
    /// conversations, else the `unavailable` response, in the customer's
    /// language as far as the message shows it.
    pub fn failure_reply(&self, message: &InboundMessage, error: &EngineError) -> Reply {
        let response = match error {
            EngineError::TooManyConversations { .. } => "busy",
            _ => "unavailable",
        };
        let runtime = self.runtime();
        let lang = turn::initial_lang(message, &runtime);
        let session = Session::new(message.conversation_id.clone(), message.channel.clone(), lang, self.now());
        flow::render(&runtime, &session, response, &[])
    }

    /// Subscribes to the conversation's new events (customer messages and
    /// replies), including those committed by other server processes sharing
    /// the store. Events arrive in `seq` order per server process, but those of
    /// two processes may interleave or repeat after a reconnect, so a
    /// subscriber keeps the last `seq` it passed on and reads gaps back with
    /// [`events`](Self::events).
    pub fn subscribe(&self, id: &ConversationId) -> broadcast::Receiver<Event> {
        self.inner.hub.subscribe(id)
    }

    /// Subscribes to the events this server process commits outside a customer
    /// turn: agent operations (claim, agent reply, transfer, hand back, close)
    /// and the timer's offer to a customer no agent replied to. Channels that
    /// push messages to a platform (Telegram, Discord) send these, because no
    /// [`handle`](Self::handle) call returns them. Agents' notes are left out.
    /// Each event reaches the subscribers of exactly one process: the one that
    /// committed it.
    pub fn subscribe_proactive(&self) -> broadcast::Receiver<Event> {
        self.inner.proactive.subscribe()
    }

    /// Subscribes to the events of every conversation. Events this process
    /// commits (turns, agent operations, notes, timers) have `local` true, and
    /// events that other processes sharing the store commit have `local` false.
    /// After a gap in the store's feed of other processes' events, only the
    /// conversations someone [`subscribe`](Self::subscribe)s to are read back.
    /// So a subscriber that must not miss a remote event reads the store again
    /// when it finds a gap in a conversation's `seq`s.
    pub fn subscribe_all(&self) -> broadcast::Receiver<FeedEvent> {
        self.inner.feed.subscribe()
    }

    /// Reads up to `limit` transcript events with `seq > after_seq`.
    pub async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, EngineError> {
        Ok(self.inner.store.events(id, after_seq, limit).await?)
    }

    /// Makes every stored write durable; call it on shutdown.
    pub async fn flush(&self) -> Result<(), EngineError> {
        Ok(self.inner.store.flush().await?)
    }

    /// Reads a conversation's session.
    pub async fn session(&self, id: &ConversationId) -> Result<Option<Session>, EngineError> {
        Ok(self.inner.store.load(id).await?.map(|v| v.session))
    }

    /// True when the session's last change is older than the session TTL.
    fn expired(&self, session: &Session, runtime: &Runtime) -> bool {
        let ttl = u64::try_from(self.ttl(runtime).as_millis()).unwrap_or(u64::MAX);
        session.updated_at.saturating_add(ttl) <= self.now()
    }

    /// Saves a session and its new events, then publishes the events, to the
    /// proactive subscribers too when an agent operation or a timer made them.
    /// When `queue_changed`, the session's entry in the store's queue index of
    /// conversations with people is written too (see [`handoffs`](Self::handoffs)).
    async fn commit(&self, session: &Session, version: u64, events: &[Event], runtime: &Runtime, queue_changed: bool, origin: Origin) -> Result<(), EngineError> {
        let waiting = queue_changed.then(|| session.handoff.human_since());
        let turn = TurnCommit { session, expected: version, events, waiting, ttl: self.retention(runtime) };
        self.inner.store.commit_turn(turn).await?;
        self.inner.hub.publish(events);
        for event in events {
            // An error only means that no receiver exists.
            let _ = self.inner.feed.send(FeedEvent { event: event.clone(), local: true });
        }
        if origin != Origin::CustomerTurn {
            for event in events.iter().filter(|event| event.is_customer_visible()) {
                let _ = self.inner.proactive.send(event.clone());
            }
        }
        Ok(())
    }
}

/// The source of a commit's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    CustomerTurn,
    Agent,
    Timer,
}
