//! Transcript events. Every customer message, every reply and every agent note
//! becomes one event with a per-conversation sequence number that starts at 1
//! and has no gaps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::ScoredIntent;
use crate::ids::{AgentId, Channel, ClientMessageId, ConversationId, IntentId, SenderId, SlotName};
use crate::message::{Content, Reply, Timestamp};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventKind {
    /// A message from the customer.
    Customer {
        channel: Channel,
        sender: SenderId,
        content: Content,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_message_id: Option<ClientMessageId>,
        /// What the bot made of the message; for agents, never shown to the customer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        understanding: Option<Understanding>,
    },
    /// A message to the customer from the bot or an agent.
    Reply(Reply),
    /// An agent's internal note, for agents only: customers never see it.
    Note { agent: AgentId, text: String },
}

impl Event {
    pub fn reply(&self) -> Option<&Reply> {
        match &self.kind {
            EventKind::Reply(reply) => Some(reply),
            EventKind::Customer { .. } | EventKind::Note { .. } => None,
        }
    }

    /// True when the customer may see the event: every event except notes.
    pub fn is_customer_visible(&self) -> bool {
        !matches!(self.kind, EventKind::Note { .. })
    }
}

/// The bot's reading of a customer message, kept for agents and evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Understanding {
    /// The best few intents with confidences.
    pub ranking: Vec<ScoredIntent>,
    /// The intent acted on, if any passed the threshold and margin.
    pub intent: Option<IntentId>,
    /// `faq:ID` or an article section when the bot answered from the knowledge base.
    pub knowledge_source: Option<String>,
    /// Slots after the turn.
    pub slots: BTreeMap<SlotName, String>,
}
