//! Calls to Chatwoot's Application API.

use std::time::Duration;

use bot_core::handoff_adapter::AdapterError;
use bot_core::{Channel, ConversationId, Lang};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ChatwootConfig;
use crate::secret::Secret;
use crate::webhook::{status_result, transport_error, ClientError};

/// A contact found by its identifier.
#[derive(Debug)]
pub(super) struct Contact {
    pub id: u64,
    /// The contact's source id in the configured inbox, if it has one there.
    pub source_id: Option<String>,
}

/// The details of the Lepton conversation that a new Chatwoot conversation records.
pub(super) struct NewConversation<'a> {
    pub id: &'a ConversationId,
    pub channel: &'a Channel,
    pub lang: &'a Lang,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum MessageKind {
    /// From the customer, as if sent in the inbox.
    Incoming,
    /// Visible to agents only.
    PrivateNote,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Status {
    Open,
    Resolved,
}

#[derive(Debug)]
pub(super) struct ApiClient {
    http: reqwest::Client,
    /// `{url}/api/v1/accounts/{account_id}`
    base: String,
    inbox_id: u64,
    token: Secret,
}

#[derive(Deserialize)]
struct Payload<T> {
    payload: T,
}

#[derive(Deserialize)]
struct ContactItem {
    id: u64,
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    contact_inboxes: Vec<ContactInbox>,
}

#[derive(Deserialize)]
struct ContactInbox {
    source_id: String,
    #[serde(default)]
    inbox: Option<InboxRef>,
}

#[derive(Deserialize)]
struct InboxRef {
    id: u64,
}

#[derive(Deserialize)]
struct CreatedContact {
    contact: ContactItem,
    #[serde(default)]
    contact_inbox: Option<ContactInbox>,
}

#[derive(Deserialize)]
struct ConversationItem {
    id: u64,
    #[serde(default)]
    inbox_id: Option<u64>,
    #[serde(default)]
    status: Option<String>,
}

/// A response body without a field the adapter needs.
#[derive(Debug, thiserror::Error)]
#[error("the Chatwoot response to `{operation}` has no {field}")]
struct MissingField {
    operation: &'static str,
    field: &'static str,
}

impl ApiClient {
    pub fn new(config: &ChatwootConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().timeout(config.timeout).build()?;
        let base = format!("{}/api/v1/accounts/{}", config.url.trim_end_matches('/'), config.account_id);
        Ok(Self { http, base, inbox_id: config.inbox_id, token: config.api_token.clone() })
    }

    async fn call<T: DeserializeOwned>(&self, operation: &'static str, request: reqwest::RequestBuilder) -> Result<T, AdapterError> {
        let response = request.header("api_access_token", self.token.expose()).send().await.map_err(|error| transport_error(operation, error))?;
        status_result(operation, response.status())?;
        response.json::<T>().await.map_err(|error| AdapterError::Rejected { operation, source: Box::new(error.without_url()) })
    }

    /// Finds the contact whose identifier is the Lepton conversation id.
    pub async fn find_contact(&self, id: &ConversationId) -> Result<Option<Contact>, AdapterError> {
        let request = self.http.get(format!("{}/contacts/search", self.base)).query(&[("q", id.as_str())]);
        let found: Payload<Vec<ContactItem>> = self.call("search_contacts", request).await?;
        let contact = found.payload.into_iter().find(|contact| contact.identifier.as_deref() == Some(id.as_str()));
        Ok(contact.map(|contact| Contact { id: contact.id, source_id: self.source_in_inbox(&contact.contact_inboxes) }))
    }

    fn source_in_inbox(&self, inboxes: &[ContactInbox]) -> Option<String> {
        let inbox = inboxes.iter().find(|entry| entry.inbox.as_ref().is_some_and(|inbox| inbox.id == self.inbox_id));
        inbox.map(|entry| entry.source_id.clone())
    }

    /// Creates a contact in the inbox, returning its id and source id there.
    pub async fn create_contact(&self, id: &ConversationId) -> Result<(u64, String), AdapterError> {
        let body = json!({ "inbox_id": self.inbox_id, "name": id.as_str(), "identifier": id.as_str() });
        let request = self.http.post(format!("{}/contacts", self.base)).json(&body);
        let created: Payload<CreatedContact> = self.call("create_contact", request).await?;
        let source_id = created.payload.contact_inbox.map(|entry| entry.source_id);
        let source_id = source_id.or_else(|| self.source_in_inbox(&created.payload.contact.contact_inboxes));
        let source_id = source_id.ok_or_else(|| missing("create_contact", "contact_inbox.source_id"))?;
        Ok((created.payload.contact.id, source_id))
    }

    /// Adds the configured inbox to a contact, returning the source id there.
    pub async fn create_contact_inbox(&self, contact_id: u64) -> Result<String, AdapterError> {
        let body = json!({ "inbox_id": self.inbox_id });
        let request = self.http.post(format!("{}/contacts/{contact_id}/contact_inboxes", self.base)).json(&body);
        let created: ContactInbox = self.call("create_contact_inbox", request).await?;
        Ok(created.source_id)
    }

    /// Returns the contact's newest conversation in the inbox that is not resolved.
    pub async fn open_conversation(&self, contact_id: u64) -> Result<Option<u64>, AdapterError> {
        let request = self.http.get(format!("{}/contacts/{contact_id}/conversations", self.base));
        let listed: Payload<Vec<ConversationItem>> = self.call("list_contact_conversations", request).await?;
        let open = listed.payload.into_iter().filter(|c| c.inbox_id == Some(self.inbox_id) && c.status.as_deref() != Some("resolved"));
        Ok(open.map(|conversation| conversation.id).max())
    }

    pub async fn create_conversation(&self, new: &NewConversation<'_>, contact_id: u64, source_id: &str) -> Result<u64, AdapterError> {
        let body = json!({
            "source_id": source_id,
            "inbox_id": self.inbox_id,
            "contact_id": contact_id,
            "status": "open",
            "custom_attributes": { "lepton_conversation_id": new.id.as_str() },
            "additional_attributes": { "lepton_channel": new.channel.as_str(), "lepton_lang": new.lang.as_str() },
        });
        let request = self.http.post(format!("{}/conversations", self.base)).json(&body);
        let created: Value = self.call("create_conversation", request).await?;
        created.get("id").and_then(Value::as_u64).ok_or_else(|| missing("create_conversation", "id"))
    }

    pub async fn create_message(&self, conversation: u64, content: &str, kind: MessageKind) -> Result<(), AdapterError> {
        let (message_type, private) = match kind {
            MessageKind::Incoming => ("incoming", false),
            MessageKind::PrivateNote => ("outgoing", true),
        };
        let body = json!({ "content": content, "message_type": message_type, "private": private });
        let request = self.http.post(format!("{}/conversations/{conversation}/messages", self.base)).json(&body);
        let _: Value = self.call("create_message", request).await?;
        Ok(())
    }

    pub async fn toggle_status(&self, conversation: u64, status: Status) -> Result<(), AdapterError> {
        let status = match status {
            Status::Open => "open",
            Status::Resolved => "resolved",
        };
        let request = self.http.post(format!("{}/conversations/{conversation}/toggle_status", self.base)).json(&json!({ "status": status }));
        let _: Value = self.call("toggle_status", request).await?;
        Ok(())
    }
}

fn missing(operation: &'static str, field: &'static str) -> AdapterError {
    AdapterError::Rejected { operation, source: Box::new(MissingField { operation, field }) }
}

/// How long one Chatwoot API call may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
