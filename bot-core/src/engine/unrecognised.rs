//! The list of customer messages the bot did not recognise, which agents review
//! to add examples to intents.

use crate::event::{Event, EventKind};
use crate::ids::ConversationId;
use crate::message::Content;
use crate::session::Session;
use crate::store::UnrecognisedMessage;
use crate::text::is_payload;

use super::{Engine, EngineError};

impl Engine {
    /// Lists up to `limit` unrecognised customer messages, newest first.
    pub async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, EngineError> {
        Ok(self.inner.store.unrecognised(limit).await?)
    }

    /// Removes message `seq` of conversation `id` from the unrecognised list.
    /// Returns false when the list does not contain it.
    pub async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, EngineError> {
        Ok(self.inner.store.dismiss_unrecognised(id, seq).await?)
    }

    /// Adds the customer's text message of a committed turn that ended in the
    /// fallback to the unrecognised list. The turn is already stored, so a
    /// store error is logged and does not fail it.
    pub(super) async fn record_unrecognised(&self, session: &Session, customer: &Event) {
        let EventKind::Customer { content: Content::Text(text), .. } = &customer.kind else { return };
        let text = text.trim();
        if text.is_empty() || is_payload(text) {
            return;
        }
        let message = UnrecognisedMessage {
            conversation_id: customer.conversation_id.clone(),
            seq: customer.seq,
            text: text.to_owned(),
            lang: session.lang.clone(),
            channel: session.channel.clone(),
            at: customer.at,
        };
        if let Err(error) = self.inner.store.record_unrecognised(&message).await {
            tracing::warn!(%error, seq = customer.seq, "failed to add the message to the unrecognised list");
        }
    }
}
