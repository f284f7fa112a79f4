//! The dialog engine: runs one customer message (a turn) at a time per
//! conversation, and the agent operations of human handoff.

mod agent;
mod builtin;
mod flow;
mod sync;
mod turn;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use regex::Regex;
use tokio::sync::broadcast;

use crate::action::HttpClient;
use crate::bot::{BotDefinition, SlotKind};
use crate::classify::Classifier;
use crate::event::Event;
use crate::handoff::HandoffReason;
use crate::ids::{AgentId, Channel, ConversationId, Lang, SlotName};
use crate::knowledge::KnowledgeSearch;
use crate::message::{InboundMessage, Timestamp};
use crate::session::Session;
use crate::store::{SessionStore, StoreError, TurnCommit};

pub use builtin::RESERVED as RESERVED_RESPONSES;

/// How many times a turn is retried when another writer changed the session.
const MAX_CONFLICT_RETRIES: usize = 3;

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
    #[error("conversation {conversation_id} kept changing concurrently; retry the request")]
    Contended { conversation_id: ConversationId },
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
    locks: sync::ConversationLocks,
    hub: sync::EventHub,
}

impl Engine {
    pub fn new(bot: Arc<BotDefinition>, parts: EngineParts) -> Self {
        let runtime = Runtime::new(bot, parts.classifier, parts.knowledge);
        let inner = Inner {
            runtime: RwLock::new(Arc::new(runtime)),
            http: parts.http,
            store: parts.store,
            locks: sync::ConversationLocks::default(),
            hub: sync::EventHub::default(),
        };
        Self { inner: Arc::new(inner) }
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

    fn ttl(&self, runtime: &Runtime) -> Duration {
        Duration::from_secs(runtime.bot.settings.session.ttl_seconds.max(1))
    }

    /// Runs one customer message and returns the events it produced. Messages of
    /// one conversation run one at a time in arrival order; different
    /// conversations run in parallel.
    #[tracing::instrument(skip_all, fields(conversation_id = %message.conversation_id, channel = %message.channel))]
    pub async fn handle(&self, message: InboundMessage) -> Result<TurnOutcome, EngineError> {
        let _guard = self.inner.locks.lock(&message.conversation_id).await;
        for attempt in 1..=MAX_CONFLICT_RETRIES {
            match self.run_turn(&message).await {
                Err(EngineError::Store(StoreError::Conflict { .. })) if attempt < MAX_CONFLICT_RETRIES => {
                    tracing::warn!(attempt, "session changed by another writer during the turn; running it again");
                }
                Err(EngineError::Store(StoreError::Conflict { .. })) => break,
                other => return other,
            }
        }
        Err(EngineError::Contended { conversation_id: message.conversation_id })
    }

    /// Subscribes to the conversation's new events (customer messages and replies), in order.
    pub fn subscribe(&self, id: &ConversationId) -> broadcast::Receiver<Event> {
        self.inner.hub.subscribe(id)
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

    /// Lists the conversations waiting for an agent, longest-waiting first.
    pub async fn waiting(&self) -> Result<Vec<WaitingConversation>, EngineError> {
        let mut waiting = Vec::new();
        for (id, since) in self.inner.store.waiting().await? {
            let Some(stored) = self.inner.store.load(&id).await? else {
                self.inner.store.set_waiting(&id, None).await?;
                continue;
            };
            let session = stored.session;
            if let crate::handoff::HandoffState::WaitingForAgent { reason, .. } = session.handoff {
                waiting.push(WaitingConversation { conversation_id: id, channel: session.channel, lang: session.lang, since, reason });
            }
        }
        Ok(waiting)
    }

    /// Saves a session and its new events, then publishes the events.
    async fn commit(&self, session: &Session, version: u64, events: &[Event], runtime: &Runtime, waiting_changed: bool) -> Result<(), EngineError> {
        let waiting = waiting_changed.then(|| session.handoff.waiting_since());
        let turn = TurnCommit { session, expected: version, events, waiting, ttl: self.ttl(runtime) };
        self.inner.store.commit_turn(turn).await?;
        self.inner.hub.publish(events);
        Ok(())
    }
}
