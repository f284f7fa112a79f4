//! Forwarding conversations with people to an outside helpdesk.
//!
//! A [`HandoffAdapter`] is called when a conversation joins the queue for a
//! person, with the transcript so far and the bot's context. It is called again
//! for every later event while people handle the conversation, and when the
//! conversation goes back to the bot or is closed. The
//! [`dispatch`] task feeds an adapter from [`Engine::subscribe_all`](crate::Engine::subscribe_all).
//! The helpdesk answers through the engine's agent operations (claim, reply,
//! hand back, close), which adapters call from their own callback routes.
//!
//! Without an adapter nothing is forwarded, and the built-in console is where
//! agents work.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;

use crate::event::Event;
use crate::handoff::HandoffReason;
use crate::ids::{Channel, ConversationId, IntentId, Lang, SlotName};
use crate::message::Timestamp;

pub mod dispatch;

pub use dispatch::{spawn_dispatcher, DispatcherConfig};

/// A boxed error from an adapter's transport (HTTP client, JSON decoding).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A conversation that has just joined the queue for a person.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandoffStarted {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    pub reason: HandoffReason,
    /// When the conversation joined the queue, in milliseconds since the Unix epoch.
    pub since: Timestamp,
    /// The transcript up to and including the bot's waiting notice, oldest
    /// first; long transcripts keep only their newest events.
    pub transcript: Vec<Event>,
    /// The slots filled when the bot handed off.
    pub slots: BTreeMap<SlotName, String>,
    /// The intents the bot acted on in this transcript, in order of first use.
    pub intents: Vec<IntentId>,
}

/// The way a conversation left the people who handled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffEnd {
    /// Handed back to the bot, which greets the customer again.
    HandedBack,
    /// Closed; the customer's next message starts again with the bot.
    Closed,
}

/// A conversation that went back to the bot or was closed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandoffEnded {
    pub conversation_id: ConversationId,
    pub end: HandoffEnd,
    /// The notice the customer received.
    pub event: Event,
}

/// An adapter call that failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The helpdesk could not be reached or returned a server error, so the
    /// dispatcher calls again a bounded number of times.
    #[error("helpdesk call `{operation}` failed and may succeed if retried")]
    Transient {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// The helpdesk rejected the call (bad credentials, unknown inbox, invalid
    /// body); retrying cannot help, so fix the configuration.
    #[error("helpdesk rejected call `{operation}`; check the adapter's settings and credentials")]
    Rejected {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
}

impl AdapterError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// A helpdesk that people use instead of, or next to, the built-in console.
///
/// The dispatcher calls one conversation's methods in the order of its events
/// and never concurrently; different conversations may run concurrently.
/// Events that the adapter's own callback caused (an agent reply from the
/// helpdesk) are passed too, and the adapter skips them to avoid echoes.
#[async_trait]
pub trait HandoffAdapter: Send + Sync {
    /// Returns a short name for logs: `webhook`, `chatwoot`.
    fn name(&self) -> &'static str;

    /// Called once when the conversation joins the queue for a person.
    async fn handoff_started(&self, handoff: &HandoffStarted) -> Result<(), AdapterError>;

    /// Called for each later event while people handle the conversation:
    /// customer messages, bot notices (agent joined, waiting reminders),
    /// agent replies and internal notes.
    async fn conversation_event(&self, event: &Event) -> Result<(), AdapterError>;

    /// Called when the conversation goes back to the bot or is closed.
    async fn handoff_ended(&self, ended: &HandoffEnded) -> Result<(), AdapterError>;
}

/// One call an adapter received, as [`RecordingAdapter`] keeps it.
#[derive(Clone, Debug, PartialEq)]
pub enum AdapterCall {
    Started(HandoffStarted),
    Event(Event),
    Ended(HandoffEnded),
}

/// An in-memory adapter that records its calls, for tests and for checking a
/// bot's handoffs without a helpdesk. It can fail its first calls with a
/// transient error, to exercise retries.
#[derive(Debug, Default)]
pub struct RecordingAdapter {
    calls: Mutex<Vec<AdapterCall>>,
    failures_left: Mutex<u32>,
}

impl RecordingAdapter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` calls fail with [`AdapterError::Transient`]; a
    /// failed call is not recorded.
    pub fn fail_next(&self, count: u32) {
        *self.failures_left.lock().expect("recording adapter poisoned") = count;
    }

    /// Returns the calls recorded so far, oldest first.
    pub fn calls(&self) -> Vec<AdapterCall> {
        self.calls.lock().expect("recording adapter poisoned").clone()
    }

    fn record(&self, operation: &'static str, call: AdapterCall) -> Result<(), AdapterError> {
        let mut failures = self.failures_left.lock().expect("recording adapter poisoned");
        if *failures > 0 {
            *failures -= 1;
            return Err(AdapterError::Transient { operation, source: "failure requested by fail_next".into() });
        }
        self.calls.lock().expect("recording adapter poisoned").push(call);
        Ok(())
    }
}

#[async_trait]
impl HandoffAdapter for RecordingAdapter {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn handoff_started(&self, handoff: &HandoffStarted) -> Result<(), AdapterError> {
        self.record("handoff_started", AdapterCall::Started(handoff.clone()))
    }

    async fn conversation_event(&self, event: &Event) -> Result<(), AdapterError> {
        self.record("conversation_event", AdapterCall::Event(event.clone()))
    }

    async fn handoff_ended(&self, ended: &HandoffEnded) -> Result<(), AdapterError> {
        self.record("handoff_ended", AdapterCall::Ended(ended.clone()))
    }
}
