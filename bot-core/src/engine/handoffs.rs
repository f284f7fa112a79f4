//! The conversations with people: waiting for an agent or handled by one.
//!
//! The store's queue index (`SessionStore::waiting`) contains every conversation
//! whose handoff state is waiting or agent, under the time it joined: when the
//! bot handed off, or when an agent took it from the bot. The engine writes an
//! entry when a turn or an agent operation moves a conversation from the bot
//! to people, and removes it when the conversation goes back to the bot or is
//! closed. A claim leaves the entry as it is.

use crate::event::{Event, EventKind};
use crate::handoff::{HandoffReason, HandoffState};
use crate::ids::{Channel, ConversationId, Lang};
use crate::message::{Content, Timestamp};
use crate::session::Session;

use super::{Engine, EngineError, WaitingConversation, STALE_QUEUE_ENTRY_MS};

/// The maximum length of the preview of the customer's last message, in characters.
const PREVIEW_CHARS: usize = 200;

/// Transcript events read per page while looking for the customer's last message.
const TAIL_PAGE: u64 = 50;

/// The maximum number of transcript events read back per conversation to find
/// the customer's last message. An older message is left out of the entry.
const TAIL_MAX: u64 = 200;

/// A conversation with people, as [`Engine::handoffs`] lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HandoffEntry {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    /// `WaitingForAgent` or `Agent`.
    pub state: HandoffState,
    /// The reason the bot handed off, or `None` when an agent took the
    /// conversation from the bot directly.
    pub reason: Option<HandoffReason>,
    /// When the conversation joined the queue (waiting) or its agent took it.
    pub since: Timestamp,
    /// When the customer last wrote, if within the last 200 transcript events.
    pub last_customer_at: Option<Timestamp>,
    /// The customer's last text message, cut to 200 characters.
    pub preview: Option<String>,
}

impl Engine {
    /// Lists every conversation with people, waiting or handled by an agent,
    /// in the order of the store's queue index (oldest first). An entry's
    /// `since` comes from its session's state. Entries whose
    /// session is gone, expired or back with the bot are skipped, and removed
    /// from the index as in [`waiting`](Self::waiting).
    pub async fn handoffs(&self) -> Result<Vec<HandoffEntry>, EngineError> {
        let mut entries = Vec::new();
        for session in self.sessions_with_people().await? {
            let Some(since) = session.handoff.human_since() else { continue };
            let (last_customer_at, preview) = self.last_customer_message(&session).await?;
            entries.push(HandoffEntry {
                reason: session.handoff.reason().cloned(),
                conversation_id: session.conversation_id,
                channel: session.channel,
                lang: session.lang,
                state: session.handoff,
                since,
                last_customer_at,
                preview,
            });
        }
        Ok(entries)
    }

    /// Lists the conversations waiting for an agent, longest-waiting first.
    /// Queue entries whose session is gone, expired or back with the bot are
    /// skipped, and removed once they are a minute old. A younger entry may
    /// belong to a turn that joined the queue and has not stored its session
    /// yet. Conversations an agent handles are skipped and stay in the index.
    pub async fn waiting(&self) -> Result<Vec<WaitingConversation>, EngineError> {
        let waiting = self.sessions_with_people().await?.into_iter().filter_map(|session| match session.handoff {
            HandoffState::WaitingForAgent { since, reason, .. } => Some(WaitingConversation {
                conversation_id: session.conversation_id,
                channel: session.channel,
                lang: session.lang,
                since,
                reason,
            }),
            _ => None,
        });
        Ok(waiting.collect())
    }

    /// Loads the sessions of the queue index's entries, in its order, skipping
    /// and cleaning up entries whose session no longer has people.
    async fn sessions_with_people(&self) -> Result<Vec<Session>, EngineError> {
        let runtime = self.runtime();
        let mut sessions = Vec::new();
        for (id, queued_at) in self.inner.store.waiting().await? {
            let stored = self.inner.store.load(&id).await?;
            let session = stored.map(|s| s.session).filter(|s| !self.expired(s, &runtime));
            match session {
                Some(session) if session.handoff.is_human() => sessions.push(session),
                _ if self.now().saturating_sub(queued_at) >= STALE_QUEUE_ENTRY_MS => {
                    tracing::debug!(conversation_id = %id, "removing a queue entry whose session has no people");
                    self.inner.store.set_waiting(&id, None).await?;
                }
                _ => {}
            }
        }
        Ok(sessions)
    }

    /// Returns when the customer last wrote and a preview of that message's
    /// text, reading the transcript backwards from its end.
    async fn last_customer_message(&self, session: &Session) -> Result<(Option<Timestamp>, Option<String>), EngineError> {
        let end = session.next_seq.saturating_sub(1);
        let mut upto = end;
        while upto > 0 && end - upto < TAIL_MAX {
            let after = upto.saturating_sub(TAIL_PAGE);
            let page = self.inner.store.events(&session.conversation_id, after, (upto - after) as usize).await?;
            if let Some(found) = page.iter().rev().find_map(customer_message) {
                return Ok(found);
            }
            upto = after;
        }
        Ok((None, None))
    }
}

/// Returns the time and text preview of a customer event.
fn customer_message(event: &Event) -> Option<(Option<Timestamp>, Option<String>)> {
    let EventKind::Customer { content, .. } = &event.kind else { return None };
    let preview = match content {
        Content::Text(text) => Some(text.chars().take(PREVIEW_CHARS).collect()),
        Content::NonText { .. } => None,
    };
    Some((Some(event.at), preview))
}
