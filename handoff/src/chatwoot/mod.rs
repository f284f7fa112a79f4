//! The Chatwoot adapter: a handed-off conversation becomes a conversation in
//! a Chatwoot inbox of type API, and Chatwoot's webhook brings the agents'
//! replies and status changes back.
//!
//! Calls use Chatwoot's Application API (`/api/v1/accounts/{account_id}/...`)
//! with the `api_access_token` header. On handoff the adapter:
//!
//! 1. finds the contact whose `identifier` is the Lepton conversation id, or
//!    creates it in the inbox;
//! 2. reuses the contact's unresolved conversation in the inbox, or creates one
//!    with `custom_attributes.lepton_conversation_id`;
//! 3. posts a private note with the bot's context, then the transcript
//!    (customer messages as incoming messages, everything else as private notes);
//! 4. sets the status to open.
//!
//! Later customer messages arrive as incoming messages. Lepton posts no
//! outgoing public message, so an API inbox never sends Lepton's own messages
//! back to its callback.
//!
//! See [`callback`] for what Chatwoot's events do in Lepton.

pub mod callback;
mod client;
mod format;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::handoff_adapter::{AdapterError, HandoffAdapter, HandoffEnded, HandoffStarted};
use bot_core::{ConversationId, Event, EventKind};

use crate::secret::Secret;
use crate::webhook::{made_by_helpdesk, ClientError};

pub use callback::{callback_router, CALLBACK_PATH};
pub(crate) use client::REQUEST_TIMEOUT;
use client::{ApiClient, MessageKind, NewConversation, Status};

/// The prefix of the agent ids that Chatwoot agents act as: `chatwoot:NAME`.
pub const AGENT_PREFIX: &str = "chatwoot:";

/// The conversations whose Chatwoot conversation id is remembered.
const MAX_REMEMBERED: usize = 10_000;

/// The Chatwoot installation, account and inbox, with their credentials.
#[derive(Clone, Debug)]
pub struct ChatwootConfig {
    /// The installation's base URL, such as `https://chatwoot.example.com`.
    pub url: String,
    pub account_id: u64,
    /// An inbox of type API.
    pub inbox_id: u64,
    /// An agent's or agent bot's access token (`LEPTON_CHATWOOT_API_TOKEN`).
    pub api_token: Secret,
    /// The token in the callback URL path (`LEPTON_CHATWOOT_CALLBACK_TOKEN`).
    pub callback_token: Secret,
    /// The webhook's signing secret, for Chatwoot versions that sign webhooks
    /// (`LEPTON_CHATWOOT_WEBHOOK_SECRET`); unsigned requests are rejected when set.
    pub webhook_secret: Option<Secret>,
    pub timeout: Duration,
}

/// Forwards handed-off conversations to a Chatwoot inbox.
#[derive(Debug)]
pub struct ChatwootAdapter {
    client: ApiClient,
    /// Lepton conversation → Chatwoot conversation id, found or created earlier.
    conversations: Mutex<HashMap<ConversationId, u64>>,
}

impl ChatwootAdapter {
    pub fn new(config: &ChatwootConfig) -> Result<Self, ClientError> {
        Ok(Self { client: ApiClient::new(config)?, conversations: Mutex::new(HashMap::new()) })
    }

    fn remembered(&self, id: &ConversationId) -> Option<u64> {
        self.conversations.lock().expect("chatwoot map poisoned").get(id).copied()
    }

    fn remember(&self, id: &ConversationId, chatwoot_id: u64) {
        let mut conversations = self.conversations.lock().expect("chatwoot map poisoned");
        if conversations.len() >= MAX_REMEMBERED {
            conversations.clear();
        }
        conversations.insert(id.clone(), chatwoot_id);
    }

    fn forget(&self, id: &ConversationId) {
        self.conversations.lock().expect("chatwoot map poisoned").remove(id);
    }

    /// Returns the Chatwoot conversation of `id`: remembered, else looked up
    /// through the contact, else (when `new` is given) created.
    async fn conversation(&self, id: &ConversationId, new: Option<&NewConversation<'_>>) -> Result<Option<u64>, AdapterError> {
        if let Some(chatwoot_id) = self.remembered(id) {
            return Ok(Some(chatwoot_id));
        }
        let contact = self.client.find_contact(id).await?;
        if let Some(contact) = &contact {
            if let Some(chatwoot_id) = self.client.open_conversation(contact.id).await? {
                self.remember(id, chatwoot_id);
                return Ok(Some(chatwoot_id));
            }
        }
        let Some(new) = new else { return Ok(None) };

        let (contact_id, source_id) = match contact {
            Some(contact) => {
                let source_id = match contact.source_id {
                    Some(source_id) => source_id,
                    None => self.client.create_contact_inbox(contact.id).await?,
                };
                (contact.id, source_id)
            }
            None => self.client.create_contact(id).await?,
        };
        let chatwoot_id = self.client.create_conversation(new, contact_id, &source_id).await?;
        self.remember(id, chatwoot_id);
        Ok(Some(chatwoot_id))
    }

    /// Posts one transcript event: a customer's text as an incoming message,
    /// anything else as a private note.
    async fn post_event(&self, chatwoot_id: u64, event: &Event) -> Result<(), AdapterError> {
        match &event.kind {
            EventKind::Customer { content, .. } => self.client.create_message(chatwoot_id, &format::customer_text(content), MessageKind::Incoming).await,
            _ => match format::note_for(event) {
                Some(note) => self.client.create_message(chatwoot_id, &note, MessageKind::PrivateNote).await,
                None => Ok(()),
            },
        }
    }
}

#[async_trait]
impl HandoffAdapter for ChatwootAdapter {
    fn name(&self) -> &'static str {
        "chatwoot"
    }

    async fn handoff_started(&self, handoff: &HandoffStarted) -> Result<(), AdapterError> {
        let new = NewConversation { id: &handoff.conversation_id, channel: &handoff.channel, lang: &handoff.lang };
        let Some(chatwoot_id) = self.conversation(&handoff.conversation_id, Some(&new)).await? else { return Ok(()) };

        self.client.create_message(chatwoot_id, &format::context_note(handoff), MessageKind::PrivateNote).await?;
        for event in &handoff.transcript {
            self.post_event(chatwoot_id, event).await?;
        }
        self.client.toggle_status(chatwoot_id, Status::Open).await
    }

    async fn conversation_event(&self, event: &Event) -> Result<(), AdapterError> {
        if made_by_helpdesk(event, AGENT_PREFIX) {
            return Ok(());
        }
        let id = &event.conversation_id;
        // A conversation forwarded before this process started, or by another
        // server, is found again through its contact.
        let Some(chatwoot_id) = self.conversation(id, None).await? else {
            tracing::debug!(conversation_id = %id, "no Chatwoot conversation for this event; skipping it");
            return Ok(());
        };
        self.post_event(chatwoot_id, event).await
    }

    async fn handoff_ended(&self, ended: &HandoffEnded) -> Result<(), AdapterError> {
        let id = &ended.conversation_id;
        let Some(chatwoot_id) = self.conversation(id, None).await? else { return Ok(()) };
        self.client.create_message(chatwoot_id, &format::ended_note(ended), MessageKind::PrivateNote).await?;
        self.client.toggle_status(chatwoot_id, Status::Resolved).await?;
        self.forget(id);
        Ok(())
    }
}
