//! Learning from handoffs: an agent marks a customer message as an example of
//! the intent it should have been, and the console hands it to an
//! [`ExampleWriter`], which appends it to the bot's YAML and reloads the bot.
//! The list of unrecognised messages comes from the engine.

use std::path::PathBuf;

use async_trait::async_trait;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bot_core::{Content, ConversationId, EventKind, Lang};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::error::ConsoleError;
use super::session::SignedIn;
use crate::input::{self, JsonBody, QueryParams};
use crate::state::WebState;

/// Writes intent examples into a bot folder. The binary implements it over the
/// bot folder it serves.
#[async_trait]
pub trait ExampleWriter: Send + Sync {
    /// Appends `text` as an example of `intent` in `lang` to the bot folder's
    /// YAML (a new intent when `new_intent`), then reloads the bot.
    async fn add_example(&self, intent: &str, new_intent: bool, lang: &Lang, text: &str) -> Result<ExampleAdded, ExampleError>;
}

/// Where an example was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExampleAdded {
    pub intent: String,
    /// The file, relative to the bot folder.
    pub file: PathBuf,
    /// The example's line in that file, from 1.
    pub line: usize,
    /// The outcome of the reload that followed, in words.
    pub reload: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    #[error("no intent named {intent:?}: pick an existing intent or ask for a new one")]
    UnknownIntent { intent: String },

    #[error("invalid intent name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    #[error("intent {intent:?} has this example already")]
    Duplicate { intent: String },

    #[error("the bot folder did not validate with the new example, so the file was restored: {}", diagnostics.join("; "))]
    Rejected { diagnostics: Vec<String> },

    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Body of `POST /console/api/examples`.
#[derive(Debug, Deserialize)]
pub struct ExampleRequest {
    pub conversation_id: String,
    /// The customer event whose text becomes the example.
    pub seq: u64,
    pub intent: String,
    #[serde(default)]
    pub new_intent: bool,
}

#[derive(Debug, Serialize)]
pub struct ExampleResponse {
    pub intent: String,
    pub lang: Lang,
    pub file: PathBuf,
    pub line: usize,
    pub reload: String,
}

/// `POST /console/api/examples`: the text is read from the stored event, never
/// taken from the request, so an agent cannot plant arbitrary training data
/// under a customer's name.
#[instrument(skip_all, fields(agent = %agent.name, conversation_id = %body.conversation_id, seq = body.seq))]
pub(crate) async fn add_example(
    State(state): State<WebState>,
    agent: SignedIn,
    JsonBody(body): JsonBody<ExampleRequest>,
) -> Result<(StatusCode, Json<ExampleResponse>), ConsoleError> {
    let id = input::conversation_id(&body.conversation_id)?;
    let writer = state.example_writer().ok_or(ConsoleError::LearningUnavailable)?;
    let (text, lang) = customer_text(&state, &id, body.seq).await?;

    let added = writer.add_example(&body.intent, body.new_intent, &lang, &text).await?;
    tracing::info!(intent = %added.intent, file = %added.file.display(), line = added.line, "example added from the console");
    dismiss_quietly(&state, &id, body.seq).await;
    let response = ExampleResponse { intent: added.intent, lang, file: added.file, line: added.line, reload: added.reload };
    Ok((StatusCode::CREATED, Json(response)))
}

/// Reads the text and language of customer event `seq`.
async fn customer_text(state: &WebState, id: &ConversationId, seq: u64) -> Result<(String, Lang), ConsoleError> {
    let not_text = || ConsoleError::NotCustomerText { conversation_id: id.clone(), seq };
    if seq == 0 {
        return Err(not_text());
    }
    let events = state.engine().events(id, seq - 1, 1).await.map_err(|error| ConsoleError::engine(id, error))?;
    let Some(event) = events.into_iter().next().filter(|event| event.seq == seq) else {
        return Err(not_text());
    };
    let EventKind::Customer { content: Content::Text(text), .. } = event.kind else {
        return Err(not_text());
    };
    let session = state.engine().session(id).await.map_err(|error| ConsoleError::engine(id, error))?;
    let lang = session.map(|session| session.lang).unwrap_or_else(|| state.engine().bot().settings.default_language());
    Ok((text, lang))
}

/// Removes the message from the unrecognised list, if it is there; a failure
/// leaves it listed, which the agent can dismiss by hand.
async fn dismiss_quietly(state: &WebState, id: &ConversationId, seq: u64) {
    if let Err(error) = state.engine().dismiss_unrecognised(id, seq).await {
        tracing::warn!(%error, "the example was added but the message stays in the unrecognised list");
    }
}

/// Query of `GET /console/api/unrecognised`.
#[derive(Debug, Deserialize)]
pub struct UnrecognisedQuery {
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    100
}

/// The most messages one request lists.
const MAX_UNRECOGNISED: usize = 1000;

#[derive(Debug, Serialize)]
pub struct UnrecognisedResponse {
    pub messages: Vec<bot_core::UnrecognisedMessage>,
}

pub(crate) async fn unrecognised(
    State(state): State<WebState>,
    _agent: SignedIn,
    QueryParams(query): QueryParams<UnrecognisedQuery>,
) -> Result<Json<UnrecognisedResponse>, ConsoleError> {
    if query.limit == 0 {
        return Err(crate::WebError::InvalidLimit { limit: 0, max: MAX_UNRECOGNISED }.into());
    }
    let messages = state.engine().unrecognised(query.limit.min(MAX_UNRECOGNISED)).await;
    let messages = messages.map_err(|source| crate::WebError::Engine { conversation_id: None, source })?;
    Ok(Json(UnrecognisedResponse { messages }))
}

#[instrument(skip_all, fields(agent = %agent.name))]
pub(crate) async fn dismiss(
    State(state): State<WebState>,
    agent: SignedIn,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<StatusCode, ConsoleError> {
    let Path((id, seq)) = path.map_err(input::path_rejection)?;
    let id = input::conversation_id(&id)?;
    state.engine().dismiss_unrecognised(&id, seq).await.map_err(|error| ConsoleError::engine(&id, error))?;
    Ok(StatusCode::NO_CONTENT)
}
