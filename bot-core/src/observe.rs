//! Hooks for metrics. The engine, the channels and the console report what
//! happened (a turn finished, a send failed, an agent signed in) to every
//! [`Observer`] registered with [`Engine::add_observer`](crate::Engine::add_observer).
//! Exporters such as a Prometheus registry live outside this crate and
//! implement the trait; [`RecentStats`] is the in-memory implementation the
//! console's admin page reads.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use bot_core::observe::{Observer, TurnReport};
//!
//! #[derive(Default)]
//! struct TurnCounter(AtomicU64);
//!
//! impl Observer for TurnCounter {
//!     fn turn_finished(&self, _turn: &TurnReport<'_>) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//! ```

mod recent;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::ids::{Channel, ConversationId, IntentId};
use crate::message::Timestamp;

pub use recent::{RecentStats, StatsBucket, StatsSnapshot, BUCKET_MS, BUCKETS_KEPT};

/// The outcome of a customer turn, for counting turns by outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TurnKind {
    /// A matched intent's response or flow ran.
    Intent,
    /// The reply came from the knowledge base.
    Knowledge,
    /// The message answered (or failed to answer) a waiting form's question.
    Form,
    /// Nothing matched and the bot sent the fallback.
    Fallback,
    /// The turn moved the conversation to the queue for an agent.
    Handoff,
    /// A person has the conversation (waiting or with an agent), so the bot stayed out.
    Human,
    /// Anything else: a non-text message, a payload that named no intent.
    Other,
    /// A retried message; the original replies were returned again.
    Duplicate,
    /// The turn failed: the store was unavailable or the conversation busy.
    Error,
    /// The process already served its maximum of active conversations, so the
    /// customer was asked to retry later.
    Busy,
}

impl TurnKind {
    /// Returns the label value used in metrics: `intent`, `knowledge`, `form`,
    /// `fallback`, `handoff`, `human`, `other`, `duplicate`, `error` or `busy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Knowledge => "knowledge",
            Self::Form => "form",
            Self::Fallback => "fallback",
            Self::Handoff => "handoff",
            Self::Human => "human",
            Self::Other => "other",
            Self::Duplicate => "duplicate",
            Self::Error => "error",
            Self::Busy => "busy",
        }
    }

    /// Every kind, in the order of [`as_str`](Self::as_str)'s list.
    pub const ALL: [TurnKind; 10] = [
        Self::Intent,
        Self::Knowledge,
        Self::Form,
        Self::Fallback,
        Self::Handoff,
        Self::Human,
        Self::Other,
        Self::Duplicate,
        Self::Error,
        Self::Busy,
    ];
}

/// One finished customer turn.
#[derive(Clone, Copy, Debug)]
pub struct TurnReport<'a> {
    pub conversation_id: &'a ConversationId,
    pub channel: &'a Channel,
    pub kind: TurnKind,
    /// The intent the turn acted on, when one was matched (the knowledge
    /// intent included).
    pub intent: Option<&'a IntentId>,
    /// From the engine receiving the message to its reply being stored,
    /// including waits for earlier turns of the same conversation.
    pub elapsed: Duration,
    /// When the turn finished, in milliseconds since the Unix epoch.
    pub at: Timestamp,
}

/// The outcome of a console sign-in attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignInOutcome {
    Succeeded,
    /// A wrong name or password.
    Rejected,
    /// Too many failures from the address or for the name.
    RateLimited,
}

impl SignInOutcome {
    /// Returns the label value used in metrics: `succeeded`, `rejected` or `rate_limited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// The outcome of loading the bot folder again into a running engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BotReload {
    /// True when the new bot was swapped in.
    pub reloaded: bool,
    /// True when the intent model was trained again.
    pub retrained: bool,
    /// True when the knowledge index was built again.
    pub reindexed: bool,
}

/// Receives what happened in the engine and around it. Every method has an
/// empty default, so an implementation overrides only what it records.
/// Methods run on the caller's task, in the middle of a turn or a send, so
/// they must return quickly and must not block on I/O.
pub trait Observer: Send + Sync {
    /// Records a finished customer turn, successful or not.
    fn turn_finished(&self, _turn: &TurnReport<'_>) {}

    /// Records a run of the intent classifier. `top_confidence` is the best
    /// intent's confidence, `None` when it ranked no intent.
    fn classified(&self, _elapsed: Duration, _top_confidence: Option<f32>) {}

    /// Records a knowledge base search. `answered` is true when an entry scored high enough.
    fn knowledge_searched(&self, _elapsed: Duration, _answered: bool) {}

    /// Records an agent's claim of a conversation that had waited `waited` in the queue.
    fn agent_claimed(&self, _channel: &Channel, _waited: Duration) {}

    /// Records a message a channel failed to deliver to its platform after its own retries.
    fn send_failed(&self, _channel: &Channel) {}

    /// Records a wait of `wait` that a platform's rate limit imposed on a channel.
    fn rate_limited(&self, _channel: &Channel, _wait: Duration) {}

    /// Records an attempt to sign in to the support console.
    fn sign_in(&self, _outcome: SignInOutcome) {}

    /// Records a reload of the bot folder, or the rejection of an edit.
    fn bot_reloaded(&self, _reload: &BotReload) {}
}

/// The observers registered with an engine; reporting to it reports to each.
#[derive(Clone, Default)]
pub struct Observers {
    list: Arc<RwLock<Vec<Arc<dyn Observer>>>>,
}

impl Observers {
    pub(crate) fn add(&self, observer: Arc<dyn Observer>) {
        self.list.write().expect("observer list lock poisoned").push(observer);
    }

    fn each(&self, report: impl Fn(&dyn Observer)) {
        for observer in self.list.read().expect("observer list lock poisoned").iter() {
            report(observer.as_ref());
        }
    }
}

impl Observer for Observers {
    fn turn_finished(&self, turn: &TurnReport<'_>) {
        self.each(|observer| observer.turn_finished(turn));
    }

    fn classified(&self, elapsed: Duration, top_confidence: Option<f32>) {
        self.each(|observer| observer.classified(elapsed, top_confidence));
    }

    fn knowledge_searched(&self, elapsed: Duration, answered: bool) {
        self.each(|observer| observer.knowledge_searched(elapsed, answered));
    }

    fn agent_claimed(&self, channel: &Channel, waited: Duration) {
        self.each(|observer| observer.agent_claimed(channel, waited));
    }

    fn send_failed(&self, channel: &Channel) {
        self.each(|observer| observer.send_failed(channel));
    }

    fn rate_limited(&self, channel: &Channel, wait: Duration) {
        self.each(|observer| observer.rate_limited(channel, wait));
    }

    fn sign_in(&self, outcome: SignInOutcome) {
        self.each(|observer| observer.sign_in(outcome));
    }

    fn bot_reloaded(&self, reload: &BotReload) {
        self.each(|observer| observer.bot_reloaded(reload));
    }
}
