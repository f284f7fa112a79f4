//! The message types every channel speaks: one inbound type, one reply type.

use serde::{Deserialize, Serialize};

use crate::handoff::HandoffState;
use crate::ids::{AgentId, Channel, ClientMessageId, ConversationId, Lang, SenderId};

/// Milliseconds since the Unix epoch.
pub type Timestamp = u64;

/// Returns the current time as milliseconds since the Unix epoch.
pub fn now_millis() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A customer's message as a channel hands it to the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub sender: SenderId,
    pub content: Content,
    /// The sender's id for this message; a second message with the same id is a retry.
    pub client_message_id: Option<ClientMessageId>,
    /// The language the channel believes the customer uses (browser or app locale).
    pub locale_hint: Option<Lang>,
    pub received_at: Timestamp,
}

impl InboundMessage {
    /// Builds a text message received now.
    pub fn text(conversation_id: impl Into<ConversationId>, channel: impl Into<Channel>, text: impl Into<String>) -> Self {
        let conversation_id = conversation_id.into();
        Self {
            sender: SenderId::new(conversation_id.as_str()),
            conversation_id,
            channel: channel.into(),
            content: Content::Text(text.into()),
            client_message_id: None,
            locale_hint: None,
            received_at: now_millis(),
        }
    }

    pub fn with_client_message_id(mut self, id: impl Into<ClientMessageId>) -> Self {
        self.client_message_id = Some(id.into());
        self
    }

    pub fn with_locale_hint(mut self, lang: Lang) -> Self {
        self.locale_hint = Some(lang);
        self
    }

    /// Returns the text of the message, empty for non-text content.
    pub fn text_content(&self) -> &str {
        match &self.content {
            Content::Text(text) => text,
            Content::NonText { .. } => "",
        }
    }
}

/// The content of a customer's message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum Content {
    Text(String),
    /// A photo, sticker, file or other message with no text; `kind` names it (`photo`, `sticker`).
    NonText { kind: String },
}

/// One message from the bot or an agent to the customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub author: Author,
    pub text: String,
    /// Buttons the customer can tap; tapping one sends its `payload` as a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
    /// Set when the reply announces a change of who handles the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffNotice>,
}

impl Reply {
    pub fn bot(text: impl Into<String>) -> Self {
        Self { author: Author::Bot, text: text.into(), quick_replies: Vec::new(), handoff: None }
    }
}

/// The author of a reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Author {
    Bot,
    Agent { id: AgentId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    pub title: String,
    pub payload: String,
}

/// Attached to a reply that announces a handoff state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffNotice {
    pub state: HandoffState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::handoff::HandoffReason>,
}
