//! JSON responses of the callback routes, shaped like the web channel's:
//! `{"error":{"code":"...","message":"..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bot_core::{EngineError, Event};
use serde_json::json;

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

pub(crate) fn events(events: &[Event]) -> Response {
    Json(json!({ "events": events })).into_response()
}

/// Maps an engine error to a status; store failures are logged here, once.
pub(crate) fn engine_error(error: &EngineError) -> Response {
    let message = error.to_string();
    match error {
        EngineError::NotFound { .. } => self::error(StatusCode::NOT_FOUND, "not_found", message),
        EngineError::AlreadyClaimed { by, .. } => {
            let body = json!({ "error": { "code": "already_claimed", "message": message, "agent": by } });
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        EngineError::NotWaiting { .. } => self::error(StatusCode::CONFLICT, "not_waiting", message),
        EngineError::NotOwner { .. } => self::error(StatusCode::FORBIDDEN, "not_owner", message),
        EngineError::Contended { .. } => self::error(StatusCode::SERVICE_UNAVAILABLE, "busy", message),
        _ => {
            tracing::error!(%error, "helpdesk callback failed in the engine");
            self::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the conversation store is unavailable; retry later")
        }
    }
}

/// Checks a conversation or agent id: 1 to `max` characters from `[A-Za-z0-9_.:-]`
/// (no `:` when `colon` is false).
pub(crate) fn valid_id(raw: &str, max: usize, colon: bool) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') || (colon && c == ':');
    !raw.is_empty() && raw.len() <= max && raw.chars().all(allowed)
}
