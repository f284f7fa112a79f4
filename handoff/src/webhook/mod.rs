//! The generic webhook adapter: every forwarded event is a signed JSON POST to
//! the helpdesk's URL, and the helpdesk replies through a signed callback route.
//!
//! Each request carries `X-Lepton-Timestamp` (Unix seconds) and
//! `X-Lepton-Signature: sha256=<hex>`, the HMAC-SHA256 of `timestamp.body`
//! with the shared secret from `LEPTON_HANDOFF_WEBHOOK_SECRET`. The body is
//! one of:
//!
//! ```json
//! {"type":"handoff_started","conversation_id":"web:42","channel":"web","lang":"en",
//!  "reason":"requested","since":1767225600000,"transcript":[Event...],
//!  "context":{"slots":{"order_number":"100001"},"intents":["order_status","human"]}}
//! {"type":"event","conversation_id":"web:42","event":Event}
//! {"type":"handoff_ended","conversation_id":"web:42","end":"handed_back","event":Event}
//! ```
//!
//! `Event` is the transcript event JSON of the agent API. Events that the
//! helpdesk's own callbacks caused (replies and notes of `webhook:` agents)
//! are not sent back.

mod callback;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::handoff_adapter::{AdapterError, BoxError, HandoffAdapter, HandoffEnd, HandoffEnded, HandoffStarted};
use bot_core::{Author, Channel, ConversationId, Event, EventKind, HandoffReason, IntentId, Lang, SlotName, Timestamp};
use serde::Serialize;

use crate::secret::Secret;
use crate::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub use callback::{callback_router, CALLBACK_PATH};

/// The prefix of the agent ids that webhook callbacks act as: `webhook:NAME`.
pub const AGENT_PREFIX: &str = "webhook:";

/// How long one POST to the helpdesk may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook adapter's target URL, secret and request timeout.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Secret,
    pub timeout: Duration,
}

impl WebhookConfig {
    pub fn new(url: impl Into<String>, secret: Secret) -> Self {
        Self { url: url.into(), secret, timeout: REQUEST_TIMEOUT }
    }
}

/// The adapter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the HTTP client for the helpdesk adapter")]
pub struct ClientError(#[from] reqwest::Error);

/// Posts signed JSON to the helpdesk.
#[derive(Debug)]
pub struct WebhookAdapter {
    client: reqwest::Client,
    config: WebhookConfig,
}

/// The body of one POST.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Payload<'a> {
    HandoffStarted {
        conversation_id: &'a ConversationId,
        channel: &'a Channel,
        lang: &'a Lang,
        reason: &'a HandoffReason,
        since: Timestamp,
        transcript: &'a [Event],
        context: Context<'a>,
    },
    Event {
        conversation_id: &'a ConversationId,
        event: &'a Event,
    },
    HandoffEnded {
        conversation_id: &'a ConversationId,
        end: HandoffEnd,
        event: &'a Event,
    },
}

#[derive(Serialize)]
struct Context<'a> {
    slots: &'a BTreeMap<SlotName, String>,
    intents: &'a [IntentId],
}

/// An unexpected response status from the helpdesk.
#[derive(Debug, thiserror::Error)]
#[error("the helpdesk answered HTTP {status}")]
pub(crate) struct StatusError {
    pub status: u16,
}

impl WebhookAdapter {
    pub fn new(config: WebhookConfig) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder().timeout(config.timeout).build()?;
        Ok(Self { client, config })
    }

    async fn post(&self, operation: &'static str, payload: &Payload<'_>) -> Result<(), AdapterError> {
        let body = serde_json::to_vec(payload).map_err(|error| AdapterError::Rejected { operation, source: error.into() })?;
        let timestamp = signature::unix_now();
        let signed = signature::sign(&self.config.secret, timestamp, &body);
        let request = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signed)
            .body(body);
        let response = request.send().await.map_err(|error| transport_error(operation, error))?;
        status_result(operation, response.status())
    }
}

/// Turns a failed request into a transient error, without the URL, which may hold a token.
pub(crate) fn transport_error(operation: &'static str, error: reqwest::Error) -> AdapterError {
    let source: BoxError = Box::new(error.without_url());
    AdapterError::Transient { operation, source }
}

/// Sorts a response status: success, a retryable failure (5xx, 429, 408) or a rejection.
pub(crate) fn status_result(operation: &'static str, status: reqwest::StatusCode) -> Result<(), AdapterError> {
    if status.is_success() {
        return Ok(());
    }
    let source: BoxError = Box::new(StatusError { status: status.as_u16() });
    let retryable = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    if retryable {
        Err(AdapterError::Transient { operation, source })
    } else {
        Err(AdapterError::Rejected { operation, source })
    }
}

/// True for the replies and notes that an agent of the helpdesk whose agent
/// ids start with `prefix` made through its callback.
pub(crate) fn made_by_helpdesk(event: &Event, prefix: &str) -> bool {
    match &event.kind {
        EventKind::Reply(reply) => matches!(&reply.author, Author::Agent { id } if id.as_str().starts_with(prefix)),
        EventKind::Note { agent, .. } => agent.as_str().starts_with(prefix),
        _ => false,
    }
}

#[async_trait]
impl HandoffAdapter for WebhookAdapter {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn handoff_started(&self, handoff: &HandoffStarted) -> Result<(), AdapterError> {
        let context = Context { slots: &handoff.slots, intents: &handoff.intents };
        let payload = Payload::HandoffStarted {
            conversation_id: &handoff.conversation_id,
            channel: &handoff.channel,
            lang: &handoff.lang,
            reason: &handoff.reason,
            since: handoff.since,
            transcript: &handoff.transcript,
            context,
        };
        self.post("handoff_started", &payload).await
    }

    async fn conversation_event(&self, event: &Event) -> Result<(), AdapterError> {
        if made_by_helpdesk(event, AGENT_PREFIX) {
            return Ok(());
        }
        self.post("event", &Payload::Event { conversation_id: &event.conversation_id, event }).await
    }

    async fn handoff_ended(&self, ended: &HandoffEnded) -> Result<(), AdapterError> {
        let payload = Payload::HandoffEnded { conversation_id: &ended.conversation_id, end: ended.end, event: &ended.event };
        self.post("handoff_ended", &payload).await
    }
}
