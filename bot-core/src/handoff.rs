//! Who handles a conversation: the bot, nobody yet (waiting), an agent, or nobody (closed).

use serde::{Deserialize, Serialize};

use crate::ids::AgentId;
use crate::message::Timestamp;

/// The handoff state of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum HandoffState {
    Bot,
    WaitingForAgent {
        since: Timestamp,
        reason: HandoffReason,
        /// When the customer was last told that they still wait.
        #[serde(default)]
        reminded_at: Option<Timestamp>,
        /// When the customer was offered to leave a contact because no agent
        /// replied in time; set at most once per waiting period.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_agent_offered_at: Option<Timestamp>,
    },
    Agent {
        agent: AgentId,
        since: Timestamp,
        /// The reason the bot handed off, kept from the waiting state. `None`
        /// when the agent took the conversation from the bot, or in sessions
        /// stored before agent states kept it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<HandoffReason>,
    },
    Closed { at: Timestamp },
}

impl HandoffState {
    /// True when a person, not the bot, answers the customer's next message.
    pub fn is_human(&self) -> bool {
        matches!(self, Self::WaitingForAgent { .. } | Self::Agent { .. })
    }

    /// Returns when the conversation joined the queue for an agent, if it waits there.
    pub fn waiting_since(&self) -> Option<Timestamp> {
        match self {
            Self::WaitingForAgent { since, .. } => Some(*since),
            _ => None,
        }
    }

    /// Returns when people took over the conversation: when it joined the queue
    /// while it waits, or when its agent took it. `None` while the bot or
    /// nobody handles it.
    pub fn human_since(&self) -> Option<Timestamp> {
        match self {
            Self::WaitingForAgent { since, .. } | Self::Agent { since, .. } => Some(*since),
            Self::Bot | Self::Closed { .. } => None,
        }
    }

    /// Returns the reason the bot handed off, while people handle the conversation.
    pub fn reason(&self) -> Option<&HandoffReason> {
        match self {
            Self::WaitingForAgent { reason, .. } => Some(reason),
            Self::Agent { reason, .. } => reason.as_ref(),
            Self::Bot | Self::Closed { .. } => None,
        }
    }

    /// Returns a short name for logs and APIs: `bot`, `waiting`, `agent`, `closed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::WaitingForAgent { .. } => "waiting",
            Self::Agent { .. } => "agent",
            Self::Closed { .. } => "closed",
        }
    }
}

/// The reason the bot handed a conversation to a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person.
    Requested,
    /// The bot did not understand several messages in a row.
    RepeatedFallback,
    /// A form question was answered wrongly too many times.
    FormExhausted,
    /// A flow step handed off.
    FlowStep,
}
