//! The agent API: the queue of waiting conversations, claiming one, replying,
//! handing it back to the bot and closing it. Agents see the full transcript,
//! including the bot's reading of each customer message.
//!
//! Every route sits behind [`crate::auth::require_agent`].

use axum::extract::State;
use axum::Json;
use bot_core::message::now_millis;
use bot_core::{Channel, ConversationId, Event, HandoffReason, Lang, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::customer::{EventsQuery, EventsResponse};
use crate::error::WebError;
use crate::input::{self, ConversationPath, JsonBody, QueryParams};
use crate::state::WebState;

/// One entry of `GET /api/v1/agent/conversations`.
#[derive(Debug, Serialize)]
pub struct WaitingEntry {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    /// When the conversation started waiting, in milliseconds since the Unix epoch.
    pub since: Timestamp,
    pub reason: HandoffReason,
    pub waiting_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct WaitingResponse {
    /// Longest-waiting first.
    pub conversations: Vec<WaitingEntry>,
}

/// Body of the claim, hand-back and close requests.
#[derive(Debug, Deserialize)]
pub struct AgentRequest {
    pub agent: String,
}

/// Body of `POST /api/v1/agent/conversations/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct AgentMessage {
    pub agent: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct AgentMessageResponse {
    pub conversation_id: ConversationId,
    pub event: Event,
}

pub(crate) async fn waiting(State(state): State<WebState>) -> Result<Json<WaitingResponse>, WebError> {
    let waiting = state.engine().waiting().await;
    let waiting = waiting.map_err(|source| WebError::Engine { conversation_id: None, source })?;

    let now = now_millis();
    let conversations = waiting
        .into_iter()
        .map(|entry| WaitingEntry {
            waiting_seconds: now.saturating_sub(entry.since) / 1000,
            conversation_id: entry.conversation_id,
            channel: entry.channel,
            lang: entry.lang,
            since: entry.since,
            reason: entry.reason,
        })
        .collect();
    Ok(Json(WaitingResponse { conversations }))
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn claim(
    State(state): State<WebState>,
    path: ConversationPath,
    JsonBody(body): JsonBody<AgentRequest>,
) -> Result<Json<EventsResponse>, WebError> {
    let ConversationPath(id) = path;
    let agent = input::agent_id(&body.agent)?;

    let events = state.engine().claim(&id, &agent).await.map_err(|error| WebError::engine(&id, error))?;
    Ok(Json(EventsResponse { conversation_id: id, events }))
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn reply(
    State(state): State<WebState>,
    path: ConversationPath,
    JsonBody(body): JsonBody<AgentMessage>,
) -> Result<Json<AgentMessageResponse>, WebError> {
    let ConversationPath(id) = path;
    let agent = input::agent_id(&body.agent)?;
    let text = input::message_text(&body.text, state.config().max_message_bytes)?;

    let event = state.engine().agent_reply(&id, &agent, &text).await.map_err(|error| WebError::engine(&id, error))?;
    Ok(Json(AgentMessageResponse { conversation_id: id, event }))
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn hand_back(
    State(state): State<WebState>,
    path: ConversationPath,
    JsonBody(body): JsonBody<AgentRequest>,
) -> Result<Json<EventsResponse>, WebError> {
    let ConversationPath(id) = path;
    let agent = input::agent_id(&body.agent)?;

    let events = state.engine().hand_back(&id, &agent).await.map_err(|error| WebError::engine(&id, error))?;
    Ok(Json(EventsResponse { conversation_id: id, events }))
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn close(
    State(state): State<WebState>,
    path: ConversationPath,
    JsonBody(body): JsonBody<AgentRequest>,
) -> Result<Json<EventsResponse>, WebError> {
    let ConversationPath(id) = path;
    let agent = input::agent_id(&body.agent)?;

    let events = state.engine().close(&id, &agent).await.map_err(|error| WebError::engine(&id, error))?;
    Ok(Json(EventsResponse { conversation_id: id, events }))
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn events(
    State(state): State<WebState>,
    path: ConversationPath,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Json<EventsResponse>, WebError> {
    let ConversationPath(id) = path;
    let limit = query.checked_limit()?;

    let events = state.engine().events(&id, query.after, limit).await;
    let events = events.map_err(|error| WebError::engine(&id, error))?;
    Ok(Json(EventsResponse { conversation_id: id, events }))
}
