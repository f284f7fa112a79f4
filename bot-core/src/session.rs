//! Per-conversation state, as stored between turns.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::handoff::HandoffState;
use crate::ids::{Channel, ClientMessageId, ConversationId, FlowId, Lang, SlotName};
use crate::message::Timestamp;

mod migrate;

pub use migrate::{decode_session, SessionDecodeError};

/// The schema version written with every session. Bump it when `Session` changes
/// shape, and add the upgrade from the previous version to `migrate.rs` with a
/// fixture of the previous version.
pub const SESSION_SCHEMA_VERSION: u32 = 3;

/// How many recent client message ids a session remembers for de-duplication.
pub const REMEMBERED_MESSAGE_IDS: usize = 64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub schema_version: u32,
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    pub slots: BTreeMap<SlotName, String>,
    pub dialog: DialogState,
    pub handoff: HandoffState,
    pub consecutive_fallbacks: u32,
    /// Customer messages processed so far.
    pub turns: u64,
    /// The sequence number the next transcript event gets.
    pub next_seq: u64,
    /// Recently processed client message ids, oldest first.
    pub recent_messages: VecDeque<ProcessedMessage>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Session {
    pub fn new(conversation_id: ConversationId, channel: Channel, lang: Lang, now: Timestamp) -> Self {
        Self {
            schema_version: SESSION_SCHEMA_VERSION,
            conversation_id,
            channel,
            lang,
            slots: BTreeMap::new(),
            dialog: DialogState::Idle,
            handoff: HandoffState::Bot,
            consecutive_fallbacks: 0,
            turns: 0,
            next_seq: 1,
            recent_messages: VecDeque::new(),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn processed(&self, id: &ClientMessageId) -> Option<&ProcessedMessage> {
        self.recent_messages.iter().find(|m| &m.client_message_id == id)
    }

    pub fn remember(&mut self, processed: ProcessedMessage) {
        self.recent_messages.push_back(processed);
        while self.recent_messages.len() > REMEMBERED_MESSAGE_IDS {
            self.recent_messages.pop_front();
        }
    }
}

/// The conversation's position in its flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DialogState {
    Idle,
    /// A form is waiting for the customer to answer the `ask` step at `step`,
    /// which asks for `slot`. After the bot is reloaded the step is found again
    /// by its slot, since edits may move it.
    AwaitingSlot {
        flow: FlowId,
        step: usize,
        /// `None` only in sessions stored before schema version 3.
        slot: Option<SlotName>,
        attempts: u32,
    },
}

/// A client message id and the transcript events its turn produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessedMessage {
    pub client_message_id: ClientMessageId,
    pub first_seq: u64,
    pub last_seq: u64,
}
