//! The customer API: send a message, read the transcript.

use axum::extract::State;
use axum::Json;
use bot_core::{ConversationId, Event, InboundMessage};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::client_ip::ClientAddress;
use crate::error::WebError;
use crate::input::{self, ConversationPath, JsonBody, QueryParams};
use crate::state::WebState;
use crate::view::customer_views;

/// The channel name of messages from this crate, as the engine receives them.
pub const CHANNEL: &str = "web";

/// Maximum number of events one transcript request returns.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// Body of `POST /api/v1/conversations/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct SendMessage {
    pub text: String,
    /// The client's id for this message; sending the same id again is a retry and
    /// returns the original events.
    #[serde(default)]
    pub client_message_id: Option<String>,
    /// The customer's locale, such as `zh-CN`; only the language subtag is used.
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SendMessageResponse {
    pub conversation_id: ConversationId,
    /// True when `client_message_id` was seen before and nothing new happened.
    pub duplicate: bool,
    /// The customer's event followed by the replies, in `seq` order.
    pub events: Vec<Event>,
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn send_message(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    path: ConversationPath,
    JsonBody(body): JsonBody<SendMessage>,
) -> Result<Json<SendMessageResponse>, WebError> {
    let ConversationPath(id) = path;
    input::web_conversation(&id)?;
    state.check_rate(address, Some(&id))?;
    let client_message_id = input::client_message_id(body.client_message_id.as_deref())?;
    let locale = input::locale(body.locale.as_deref())?;
    let text = input::message_text(&body.text, state.config().max_message_bytes)?;

    let mut message = InboundMessage::text(id.clone(), CHANNEL, text);
    message.client_message_id = client_message_id;
    message.locale_hint = locale;
    let outcome = state.engine().handle(message).await.map_err(|error| WebError::engine(&id, error))?;

    tracing::debug!(events = outcome.events.len(), duplicate = outcome.duplicate, "message handled");
    let events = customer_views(&outcome.events);
    Ok(Json(SendMessageResponse { conversation_id: id, duplicate: outcome.duplicate, events }))
}

/// Query of the transcript endpoints.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Return events with a `seq` greater than this; 0 for the whole transcript.
    #[serde(default)]
    pub after: u64,
    /// At most this many events: 1 or more, capped at [`MAX_EVENTS_PER_REQUEST`],
    /// which is also the default.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl EventsQuery {
    /// Returns the number of events to read: `limit` capped at
    /// [`MAX_EVENTS_PER_REQUEST`], or an error for a limit of 0.
    pub fn checked_limit(&self) -> Result<usize, WebError> {
        match self.limit {
            None => Ok(MAX_EVENTS_PER_REQUEST),
            Some(0) => Err(WebError::InvalidLimit { limit: 0, max: MAX_EVENTS_PER_REQUEST }),
            Some(limit) => Ok(limit.min(MAX_EVENTS_PER_REQUEST)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventsResponse {
    pub conversation_id: ConversationId,
    pub events: Vec<Event>,
}

#[instrument(skip_all, fields(conversation_id = %path.0))]
pub(crate) async fn customer_events(
    State(state): State<WebState>,
    path: ConversationPath,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Json<EventsResponse>, WebError> {
    let ConversationPath(id) = path;
    input::web_conversation(&id)?;
    let limit = query.checked_limit()?;

    let events = visible_events(state.engine(), &id, query.after, limit).await;
    let events = events.map_err(|error| WebError::engine(&id, error))?;
    Ok(Json(EventsResponse { conversation_id: id, events }))
}

/// Reads up to `limit` events the customer may see with `seq > after`. Agents'
/// notes are left out, and reading goes on past them, so a page shorter than
/// `limit` means the transcript has no more events for the customer.
async fn visible_events(engine: &bot_core::Engine, id: &ConversationId, after: u64, limit: usize) -> Result<Vec<Event>, bot_core::EngineError> {
    let mut visible = Vec::new();
    let mut after = after;
    loop {
        let page = engine.events(id, after, limit).await?;
        let more = page.len() == limit;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        visible.extend(customer_views(&page));
        if !more || visible.len() >= limit {
            visible.truncate(limit);
            return Ok(visible);
        }
    }
}
