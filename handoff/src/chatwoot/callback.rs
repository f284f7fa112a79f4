//! `POST /api/v1/handoff/chatwoot/callback/{token}`: Chatwoot's webhook (an
//! account webhook, or the API inbox's callback URL) with the events
//! `message_created` and `conversation_status_changed`.
//!
//! - Only events of the configured inbox count: the conversation's
//!   `inbox_id` (or a message's `inbox.id`) must be `inbox_id`, and events
//!   without one are ignored too.
//! - An outgoing, non-private message by an agent (`sender.type` `user`) is
//!   sent to the customer. The agent acts as `chatwoot:NAME` and claims the
//!   conversation first when it waits. A message to a conversation that was
//!   never handed off is ignored with a warning.
//! - Status `resolved` closes the conversation; `pending` (Chatwoot's status
//!   for conversations a bot handles) hands it back to the bot; `open`
//!   changes nothing.
//! - Incoming messages, private notes and messages of agent bots are ignored,
//!   which also ignores everything Lepton posted itself. A message id seen
//!   before is ignored too, for when both webhooks point here.
//!
//! The token in the path must equal `LEPTON_CHATWOOT_CALLBACK_TOKEN` (compared
//! in constant time), because Chatwoot versions before signed webhooks send
//! no signature. When `LEPTON_CHATWOOT_WEBHOOK_SECRET` is set, the request must
//! also carry `X-Chatwoot-Timestamp` and `X-Chatwoot-Signature: sha256=<hex>`,
//! the HMAC-SHA256 of `timestamp.body`, as signed webhooks send them.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bot_core::{AgentId, ConversationId, Engine};
use serde_json::{json, Value};

use super::{ChatwootConfig, AGENT_PREFIX};
use crate::http;
use crate::ops::{self, Command, CommandError, MAX_TEXT_BYTES};
use crate::secret::Secret;
use crate::signature::{self, Verifier};

pub const CALLBACK_PATH: &str = "/api/v1/handoff/chatwoot/callback/{token}";

const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";
const SIGNATURE_HEADER: &str = "x-chatwoot-signature";

/// Chatwoot message ids remembered to drop a second delivery of the same message.
const SEEN_MESSAGES: usize = 10_000;

struct CallbackState {
    engine: Engine,
    inbox_id: u64,
    token: Secret,
    webhook_secret: Option<Secret>,
    verifier: Verifier,
    seen: Mutex<SeenMessages>,
}

#[derive(Default)]
struct SeenMessages {
    order: VecDeque<u64>,
    ids: HashSet<u64>,
}

impl SeenMessages {
    /// Records `id`; false when it was recorded already.
    fn insert(&mut self, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_MESSAGES {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        true
    }
}

/// Builds the callback route with its state applied, for merging into the web router.
pub fn callback_router(engine: Engine, config: &ChatwootConfig) -> Router {
    let state = CallbackState {
        engine,
        inbox_id: config.inbox_id,
        token: config.callback_token.clone(),
        webhook_secret: config.webhook_secret.clone(),
        verifier: Verifier::new(),
        seen: Mutex::new(SeenMessages::default()),
    };
    Router::new().route(CALLBACK_PATH, post(callback)).layer(DefaultBodyLimit::max(1024 * 1024)).with_state(Arc::new(state))
}

/// The engine operation that one Chatwoot event requests.
#[derive(Debug)]
struct Action {
    conversation_id: ConversationId,
    agent: AgentId,
    command: Command,
}

#[tracing::instrument(skip_all, fields(event, conversation_id))]
async fn callback(State(state): State<Arc<CallbackState>>, Path(token): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if !state.token.matches(&token) {
        tracing::warn!("rejected a Chatwoot callback with a wrong token");
        return http::error(StatusCode::UNAUTHORIZED, "invalid_token", "the callback token is wrong; use the URL with LEPTON_CHATWOOT_CALLBACK_TOKEN");
    }
    if let Some(secret) = &state.webhook_secret {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        if let Err(error) = state.verifier.verify(secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &body, signature::unix_now()) {
            tracing::warn!(%error, "rejected a Chatwoot callback");
            return http::error(StatusCode::UNAUTHORIZED, "invalid_signature", error.to_string());
        }
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(error) => return http::error(StatusCode::BAD_REQUEST, "invalid_body", format!("invalid Chatwoot event: {error}")),
    };
    let event = payload.get("event").and_then(Value::as_str).unwrap_or_default();
    tracing::Span::current().record("event", event);

    let action = match event {
        "message_created" => state.message_action(&payload),
        "conversation_status_changed" | "conversation_resolved" => state.status_action(&payload),
        _ => Err("event not handled"),
    };
    let action = match action {
        Ok(action) => action,
        Err(reason) => return ignored(reason),
    };
    tracing::Span::current().record("conversation_id", action.conversation_id.as_str());

    match ops::run(&state.engine, &action.conversation_id, &action.agent, AGENT_PREFIX, action.command).await {
        Ok(events) => http::events(&events),
        // Answered with 200 like every ignored event, so that Chatwoot counts
        // the delivery as done; the warning tells the operator.
        Err(error @ CommandError::NotHandedOff { .. }) => {
            tracing::warn!(%error, "ignoring a Chatwoot reply to a conversation that was never handed off");
            (StatusCode::OK, Json(json!({ "ignored": "conversation not handed off" }))).into_response()
        }
        Err(CommandError::Engine(error)) => {
            tracing::warn!(%error, "cannot apply a Chatwoot event to the conversation");
            http::engine_error(&error)
        }
    }
}

fn ignored(reason: &'static str) -> Response {
    tracing::debug!(reason, "ignoring a Chatwoot event");
    (StatusCode::OK, Json(json!({ "ignored": reason }))).into_response()
}

impl CallbackState {
    fn message_action(&self, payload: &Value) -> Result<Action, &'static str> {
        if payload.get("message_type").and_then(Value::as_str) != Some("outgoing") {
            return Err("not an outgoing message");
        }
        if payload.get("private").and_then(Value::as_bool).unwrap_or(false) {
            return Err("private note");
        }
        let sender = payload.get("sender").ok_or("message without sender")?;
        if sender.get("type").and_then(Value::as_str) != Some("user") {
            return Err("not sent by an agent");
        }
        let conversation = payload.get("conversation").ok_or("message without conversation")?;
        let inbox = conversation.get("inbox_id").or_else(|| payload.pointer("/inbox/id"));
        let conversation_id = self.lepton_conversation(inbox, conversation)?;
        let text = payload.get("content").and_then(Value::as_str).and_then(bot_core::text::clean_message).ok_or("message without text")?;
        if text.len() > MAX_TEXT_BYTES {
            return Err("message too long");
        }
        if let Some(id) = payload.get("id").and_then(Value::as_u64) {
            if !self.seen.lock().expect("seen messages poisoned").insert(id) {
                return Err("message delivered before");
            }
        }
        Ok(Action { conversation_id, agent: agent_id(sender), command: Command::Reply(text) })
    }

    fn status_action(&self, conversation: &Value) -> Result<Action, &'static str> {
        let conversation_id = self.lepton_conversation(conversation.get("inbox_id"), conversation)?;
        let command = match conversation.get("status").and_then(Value::as_str) {
            Some("resolved") => Command::Close,
            Some("pending") => Command::HandBack,
            _ => return Err("status needs no change"),
        };
        let assignee = conversation.pointer("/meta/assignee").filter(|assignee| assignee.is_object());
        let agent = assignee.map(agent_id).unwrap_or_else(|| AgentId::new(format!("{AGENT_PREFIX}team")));
        Ok(Action { conversation_id, agent, command })
    }

    /// Finds the Lepton conversation of a Chatwoot conversation in `inbox`,
    /// which must be the configured inbox.
    fn lepton_conversation(&self, inbox: Option<&Value>, conversation: &Value) -> Result<ConversationId, &'static str> {
        match inbox.and_then(Value::as_u64) {
            Some(inbox) if inbox == self.inbox_id => {}
            Some(_) => return Err("another inbox"),
            None => return Err("event without inbox"),
        }
        let from_attribute = conversation.pointer("/custom_attributes/lepton_conversation_id");
        let from_contact = conversation.pointer("/meta/sender/identifier");
        let id = from_attribute.or(from_contact).and_then(Value::as_str).ok_or("not a Lepton conversation")?;
        if !http::valid_id(id, 128, true) {
            return Err("not a Lepton conversation id");
        }
        Ok(ConversationId::new(id))
    }
}

/// `chatwoot:` and the agent's name with characters outside `[A-Za-z0-9_.-]`
/// replaced by `_`, or the agent's numeric id when the name has no ASCII
/// letter or digit (a name in Chinese characters, for one).
///
/// NOTE: two Chatwoot agents with the same name act as the same Lepton agent.
fn agent_id(sender: &Value) -> AgentId {
    let name = sender.get("available_name").or_else(|| sender.get("name")).and_then(Value::as_str).unwrap_or_default();
    let max = 64 - AGENT_PREFIX.len();
    let cleaned: String = name.trim().chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }).take(max).collect();
    if cleaned.chars().any(|c| c.is_ascii_alphanumeric()) {
        return AgentId::new(format!("{AGENT_PREFIX}{cleaned}"));
    }
    let id = sender.get("id").and_then(Value::as_u64).unwrap_or(0);
    AgentId::new(format!("{AGENT_PREFIX}agent-{id}"))
}
