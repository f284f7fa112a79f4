//! `POST /api/v1/handoff/webhook/callback`: agent replies and status changes
//! from the helpdesk, signed like the adapter's own requests.
//!
//! Body: `{"type":"claim"|"reply"|"note"|"hand_back"|"close",
//! "conversation_id":"web:42","agent":"alice","text":"..."}` (`text` for reply
//! and note). The agent acts as `webhook:alice`. Returns 200 `{"events":[...]}`
//! with the events committed, 401 for a missing, wrong, stale (more than five
//! minutes off) or reused signature, 400 for an invalid body, 409
//! `not_handed_off` for a reply to a conversation that was never handed off,
//! and the agent API's 403, 404 and 409 answers for engine refusals.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bot_core::{AgentId, ConversationId, Engine};
use serde::Deserialize;

use super::AGENT_PREFIX;
use crate::http;
use crate::ops::{self, Command, CommandError, MAX_TEXT_BYTES};
use crate::secret::Secret;
use crate::signature::{self, SignatureError, Verifier, SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub const CALLBACK_PATH: &str = "/api/v1/handoff/webhook/callback";

/// The maximum agent name length, so that `webhook:NAME` fits the 64 characters of an agent id.
const MAX_AGENT_NAME: usize = 64 - AGENT_PREFIX.len();

struct CallbackState {
    engine: Engine,
    secret: Secret,
    verifier: Verifier,
}

/// Builds the callback route with its state applied, for merging into the web router.
pub fn callback_router(engine: Engine, secret: Secret) -> Router {
    let state = Arc::new(CallbackState { engine, secret, verifier: Verifier::new() });
    Router::new().route(CALLBACK_PATH, post(callback)).layer(DefaultBodyLimit::max(64 * 1024)).with_state(state)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Claim { conversation_id: String, agent: String },
    Reply { conversation_id: String, agent: String, text: String },
    Note { conversation_id: String, agent: String, text: String },
    HandBack { conversation_id: String, agent: String },
    Close { conversation_id: String, agent: String },
}

#[tracing::instrument(skip_all, fields(conversation_id, command))]
async fn callback(State(state): State<Arc<CallbackState>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let verified = state.verifier.verify(&state.secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &body, signature::unix_now());
    if let Err(error) = verified {
        tracing::warn!(%error, "rejected a webhook callback");
        return http::error(StatusCode::UNAUTHORIZED, signature_code(&error), error.to_string());
    }

    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return http::error(StatusCode::BAD_REQUEST, "invalid_body", format!("invalid callback body: {error}")),
    };
    let (id, agent, command) = match parse(request) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    tracing::Span::current().record("conversation_id", id.as_str()).record("command", command.name());

    match ops::run(&state.engine, &id, &agent, AGENT_PREFIX, command).await {
        Ok(events) => http::events(&events),
        Err(CommandError::Engine(error)) => http::engine_error(&error),
        Err(error @ CommandError::NotHandedOff { .. }) => {
            tracing::warn!(%error, "rejected a webhook reply to a conversation that was never handed off");
            http::error(StatusCode::CONFLICT, "not_handed_off", error.to_string())
        }
    }
}

fn signature_code(error: &SignatureError) -> &'static str {
    match error {
        SignatureError::MissingHeader { .. } => "missing_signature",
        SignatureError::InvalidTimestamp | SignatureError::StaleTimestamp { .. } => "stale_timestamp",
        SignatureError::Mismatch => "invalid_signature",
        SignatureError::Replayed => "replayed_request",
        SignatureError::TooMany => "rate_limited",
    }
}

fn parse(request: Request) -> Result<(ConversationId, AgentId, Command), Response> {
    let (id, agent, command) = match request {
        Request::Claim { conversation_id, agent } => (conversation_id, agent, Command::Claim),
        Request::Reply { conversation_id, agent, text } => (conversation_id, agent, Command::Reply(clean_text(&text)?)),
        Request::Note { conversation_id, agent, text } => (conversation_id, agent, Command::Note(clean_text(&text)?)),
        Request::HandBack { conversation_id, agent } => (conversation_id, agent, Command::HandBack),
        Request::Close { conversation_id, agent } => (conversation_id, agent, Command::Close),
    };
    if !http::valid_id(&id, 128, true) {
        return Err(http::error(StatusCode::BAD_REQUEST, "invalid_conversation_id", "conversation_id must be 1 to 128 characters from [A-Za-z0-9_.:-]"));
    }
    if !http::valid_id(&agent, MAX_AGENT_NAME, false) {
        let message = format!("agent must be 1 to {MAX_AGENT_NAME} characters from [A-Za-z0-9_.-]");
        return Err(http::error(StatusCode::BAD_REQUEST, "invalid_agent", message));
    }
    Ok((ConversationId::new(id), AgentId::new(format!("{AGENT_PREFIX}{agent}")), command))
}

fn clean_text(raw: &str) -> Result<String, Response> {
    let Some(text) = bot_core::text::clean_message(raw) else {
        return Err(http::error(StatusCode::BAD_REQUEST, "empty_text", "text has no visible characters"));
    };
    if text.len() > MAX_TEXT_BYTES {
        let message = format!("text is {} bytes; at most {MAX_TEXT_BYTES} are accepted", text.len());
        return Err(http::error(StatusCode::PAYLOAD_TOO_LARGE, "text_too_large", message));
    }
    Ok(text)
}
