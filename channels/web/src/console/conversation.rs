//! One conversation in the console: its transcript with the bot's reading,
//! and the agent operations on it (claim, reply, note, transfer, hand back, close).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use bot_core::{AgentId, Channel, ConversationId, Event, EventKind, HandoffReason, HandoffState, Lang, SlotName, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::accounts::Role;
use super::error::ConsoleError;
use super::presence::Presence;
use super::session::SignedIn;
use crate::input::{self, ConversationPath, JsonBody};
use crate::state::WebState;

/// The most transcript events the conversation view returns: the newest ones.
pub const MAX_TRANSCRIPT_EVENTS: u64 = 1000;

/// Who handles the conversation.
#[derive(Debug, Serialize)]
pub struct StateView {
    /// `bot`, `waiting`, `agent` or `closed`.
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<HandoffReason>,
}

impl From<&HandoffState> for StateView {
    fn from(state: &HandoffState) -> Self {
        let (agent, since) = match state {
            HandoffState::Agent { agent, since, .. } => (Some(agent.clone()), Some(*since)),
            HandoffState::WaitingForAgent { since, .. } => (None, Some(*since)),
            HandoffState::Closed { at } => (None, Some(*at)),
            HandoffState::Bot => (None, None),
        };
        Self { name: state.name(), agent, since, reason: state.reason().cloned() }
    }
}

/// `GET /console/api/conversations/{id}`.
#[derive(Debug, Serialize)]
pub struct ConversationView {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    pub state: StateView,
    pub presence: Presence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_customer_at: Option<Timestamp>,
    pub slots: BTreeMap<SlotName, String>,
    /// The newest [`MAX_TRANSCRIPT_EVENTS`] events, agent view: with the bot's
    /// reading of customer messages and agents' notes.
    pub events: Vec<Event>,
}

#[derive(Debug, Serialize)]
pub struct EventsBody {
    pub events: Vec<Event>,
}

#[derive(Debug, Serialize)]
pub struct EventBody {
    pub event: Event,
}

/// Body of the reply and note requests.
#[derive(Debug, Deserialize)]
pub struct TextRequest {
    pub text: String,
}

/// Body of `POST .../transfer`.
#[derive(Debug, Deserialize)]
pub struct TransferRequest {
    pub to: String,
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn detail(State(state): State<WebState>, _agent: SignedIn, path: ConversationPath) -> Result<Json<ConversationView>, ConsoleError> {
    let ConversationPath(id) = path;
    let engine = state.engine();
    let session = engine.session(&id).await.map_err(|error| ConsoleError::engine(&id, error))?;
    let session = session.ok_or_else(|| ConsoleError::engine(&id, bot_core::EngineError::NotFound { conversation_id: id.clone() }))?;

    let after = session.next_seq.saturating_sub(MAX_TRANSCRIPT_EVENTS + 1);
    let events = engine.events(&id, after, MAX_TRANSCRIPT_EVENTS as usize).await.map_err(|error| ConsoleError::engine(&id, error))?;
    let last_customer_at = events.iter().rev().find(|event| matches!(event.kind, EventKind::Customer { .. })).map(|event| event.at);
    Ok(Json(ConversationView {
        presence: state.console().presence().get(&id),
        conversation_id: id,
        channel: session.channel,
        lang: session.lang,
        state: StateView::from(&session.handoff),
        last_customer_at,
        slots: session.slots,
        events,
    }))
}

#[instrument(skip_all, fields(conversation_id = %path.0, agent = %agent.name))]
pub(crate) async fn claim(State(state): State<WebState>, agent: SignedIn, path: ConversationPath) -> Result<Json<EventsBody>, ConsoleError> {
    let ConversationPath(id) = path;
    let events = state.engine().claim(&id, &agent.name).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(Json(EventsBody { events }))
}

#[instrument(skip_all, fields(conversation_id = %path.0, agent = %agent.name))]
pub(crate) async fn reply(
    State(state): State<WebState>,
    agent: SignedIn,
    path: ConversationPath,
    JsonBody(body): JsonBody<TextRequest>,
) -> Result<Json<EventBody>, ConsoleError> {
    let ConversationPath(id) = path;
    let text = input::message_text(&body.text, state.config().max_message_bytes)?;
    let event = state.engine().agent_reply(&id, &agent.name, &text).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(Json(EventBody { event }))
}

#[instrument(skip_all, fields(conversation_id = %path.0, agent = %agent.name))]
pub(crate) async fn note(
    State(state): State<WebState>,
    agent: SignedIn,
    path: ConversationPath,
    JsonBody(body): JsonBody<TextRequest>,
) -> Result<Json<EventBody>, ConsoleError> {
    let ConversationPath(id) = path;
    let text = input::message_text(&body.text, state.config().max_message_bytes)?;
    let event = state.engine().add_note(&id, &agent.name, &text).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(Json(EventBody { event }))
}

/// Moves the conversation to another agent. Admins may move any agent's conversation.
#[instrument(skip_all, fields(conversation_id = %path.0, agent = %agent.name))]
pub(crate) async fn transfer(
    State(state): State<WebState>,
    agent: SignedIn,
    path: ConversationPath,
    JsonBody(body): JsonBody<TransferRequest>,
) -> Result<Json<EventsBody>, ConsoleError> {
    let ConversationPath(id) = path;
    let accounts = state.console().accounts().current().await?;
    let to = accounts.as_ref().and_then(|accounts| accounts.find(&body.to)).map(|account| account.name.clone());
    let to = to.ok_or_else(|| ConsoleError::UnknownAgent { name: input::truncated(&body.to) })?;

    let force = agent.role == Role::Admin;
    let events = state.engine().transfer(&id, &agent.name, &to, force).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(Json(EventsBody { events }))
}

#[instrument(skip_all, fields(conversation_id = %path.0, agent = %agent.name))]
pub(crate) async fn hand_back(State(state): State<WebState>, agent: SignedIn, path: ConversationPath) -> Result<Json<EventsBody>, ConsoleError> {
    let ConversationPath(id) = path;
    let events = state.engine().hand_back(&id, &agent.name).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(Json(EventsBody { events }))
}

#[instrument(skip_all, fields(conversation_id = %path.0, agent = %agent.name))]
pub(crate) async fn close(State(state): State<WebState>, agent: SignedIn, path: ConversationPath) -> Result<Json<EventsBody>, ConsoleError> {
    let ConversationPath(id) = path;
    let events = state.engine().close(&id, &agent.name).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(Json(EventsBody { events }))
}
