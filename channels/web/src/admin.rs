//! The admin API: `POST /api/v1/admin/reload` loads the bot folder again on
//! demand, as the file watcher of `lepton serve` does after an edit. It is
//! behind the same authentication as the agent API.

use std::future::Future;
use std::pin::Pin;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::WebError;
use crate::state::WebState;

/// The outcome of a reload.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReloadReport {
    /// When the reload finished, in milliseconds since the Unix epoch.
    pub at: bot_core::Timestamp,
    /// The trigger: `watch` (an edit of the folder) or `api` (this route).
    pub cause: &'static str,
    /// True when the new bot was swapped in; false when the folder was invalid.
    pub reloaded: bool,
    /// True when the intent model was trained again because examples changed.
    pub retrained: bool,
    /// True when the knowledge index was built again.
    pub reindexed: bool,
    /// Validation errors and warnings as `file:line:column: severity: message`.
    pub diagnostics: Vec<String>,
    /// The reason the reload failed, when it failed for another reason than invalid YAML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Loads the bot folder again and swaps the new bot in when it is valid; the
/// running bot stays as it was otherwise. The binary implements it.
pub trait BotReloader: Send + Sync {
    fn reload(&self) -> Pin<Box<dyn Future<Output = ReloadReport> + Send + '_>>;

    /// Returns the report of the last reload, by the watcher or this API,
    /// including a rejected edit's diagnostics; `None` before the first.
    fn last_report(&self) -> Option<ReloadReport>;
}

/// `GET /api/v1/admin/reload`: the last reload's report, so that an operator
/// (or a console) can read why an edit was rejected; 404 `no_reload` before the first.
pub(crate) async fn last_reload(State(state): State<WebState>) -> Result<Json<ReloadReport>, WebError> {
    let reloader = state.reloader().ok_or(WebError::ReloadUnavailable)?;
    reloader.last_report().map(Json).ok_or(WebError::NoReloadYet)
}

/// `POST /api/v1/admin/reload`: 200 with the report when the bot was reloaded,
/// 422 with the diagnostics when the folder is invalid and nothing changed.
pub(crate) async fn reload(State(state): State<WebState>) -> Result<Response, WebError> {
    let Some(reloader) = state.reloader() else {
        return Err(WebError::ReloadUnavailable);
    };

    let report = reloader.reload().await;
    let status = if report.reloaded { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    tracing::info!(reloaded = report.reloaded, retrained = report.retrained, diagnostics = report.diagnostics.len(), "reload requested through the admin api");
    Ok((status, Json(report)).into_response())
}
