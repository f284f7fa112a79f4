//! The console's errors: sign-in, session and permission failures, and the
//! web channel's own errors, all as `{"error":{"code":"...","message":"..."}}`.

use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bot_core::{AgentId, ConversationId, EngineError};
use serde_json::{json, Value};

use super::accounts::AccountsError;
use super::learning::ExampleError;
use crate::error::WebError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("not signed in: sign in to the console first")]
    NotSignedIn,

    #[error("wrong agent name or password")]
    InvalidCredentials,

    #[error("too many failed sign-ins: try again in {} seconds", retry_after.as_secs())]
    RateLimited { retry_after: Duration },

    #[error("missing or wrong X-CSRF-Token header: reload the console page and try again")]
    CsrfInvalid,

    #[error("origin {origin:?} may not use the console: open the console from this server's own address")]
    CrossOrigin { origin: String },

    #[error("this action needs the admin role")]
    Forbidden,

    #[error("conversation {conversation_id} is already claimed by {by}")]
    AlreadyClaimed { conversation_id: ConversationId, by: AgentId },

    #[error("no agent named {name:?}: pick one from the agent list")]
    UnknownAgent { name: String },

    #[error("event {seq} of conversation {conversation_id} is not a customer text message")]
    NotCustomerText { conversation_id: ConversationId, seq: u64 },

    #[error("invalid language {lang:?}: use a code such as 'en' or 'zh'")]
    InvalidLang { lang: String },

    #[error("this server cannot add examples: it was started without a bot folder to write to")]
    LearningUnavailable,

    #[error("{0}")]
    Example(#[from] ExampleError),

    #[error("the console's accounts cannot be read: the error is logged for the operator")]
    Accounts(#[from] AccountsError),

    #[error(transparent)]
    Web(#[from] WebError),
}

impl ConsoleError {
    /// Wraps an engine error, keeping the winner of a lost claim for the response.
    pub(crate) fn engine(id: &ConversationId, error: EngineError) -> Self {
        match error {
            EngineError::AlreadyClaimed { conversation_id, by } => Self::AlreadyClaimed { conversation_id, by },
            other => Self::Web(WebError::engine(id, other)),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotSignedIn | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::CsrfInvalid | Self::CrossOrigin { .. } | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::AlreadyClaimed { .. } => StatusCode::CONFLICT,
            Self::UnknownAgent { .. } | Self::InvalidLang { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotCustomerText { .. } | Self::LearningUnavailable => StatusCode::NOT_FOUND,
            Self::Example(error) => match error {
                ExampleError::UnknownIntent { .. } | ExampleError::InvalidName { .. } | ExampleError::Rejected { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                ExampleError::Duplicate { .. } => StatusCode::CONFLICT,
                ExampleError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Accounts(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Web(error) => error.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotSignedIn => "not_signed_in",
            Self::InvalidCredentials => "invalid_credentials",
            Self::RateLimited { .. } => "rate_limited",
            Self::CsrfInvalid => "csrf_invalid",
            Self::CrossOrigin { .. } => "origin_not_allowed",
            Self::Forbidden => "forbidden",
            Self::AlreadyClaimed { .. } => "already_claimed",
            Self::UnknownAgent { .. } => "unknown_agent",
            Self::NotCustomerText { .. } => "message_not_found",
            Self::InvalidLang { .. } => "invalid_lang",
            Self::LearningUnavailable => "learning_unavailable",
            Self::Example(error) => match error {
                ExampleError::UnknownIntent { .. } | ExampleError::InvalidName { .. } => "invalid_intent",
                ExampleError::Duplicate { .. } => "duplicate_example",
                ExampleError::Rejected { .. } => "example_rejected",
                ExampleError::Io { .. } => "internal",
            },
            Self::Accounts(_) => "accounts_unavailable",
            Self::Web(error) => error.code(),
        }
    }

    /// Fields besides `code` and `message`.
    fn extra(&self) -> Option<(&'static str, Value)> {
        match self {
            Self::AlreadyClaimed { by, .. } => Some(("agent", json!(by))),
            Self::Example(ExampleError::Rejected { diagnostics }) => Some(("diagnostics", json!(diagnostics))),
            _ => None,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Example(ExampleError::Io { .. }) => "the example cannot be written: the error is logged for the operator".to_owned(),
            other => other.to_string(),
        }
    }

    fn log(&self) {
        let status = self.status().as_u16();
        let code = self.code();
        match self {
            Self::Accounts(error) => tracing::error!(status, code, %error, "console accounts unavailable"),
            Self::Example(error @ ExampleError::Io { .. }) => tracing::error!(status, code, %error, "adding an example failed"),
            // A failed sign-in is logged once, with the name, by the sign-in route.
            Self::RateLimited { .. } | Self::CsrfInvalid | Self::CrossOrigin { .. } => {
                tracing::warn!(status, code, "console request rejected");
            }
            _ => tracing::debug!(status, code, error = %self, "console request refused"),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let Self::Web(error) = self {
            return error.into_response();
        }
        self.log();

        let mut detail = json!({ "code": self.code(), "message": self.public_message() });
        if let Some((key, value)) = self.extra() {
            detail[key] = value;
        }
        let mut response = (self.status(), Json(json!({ "error": detail }))).into_response();
        if let Self::RateLimited { retry_after } = &self {
            let seconds = HeaderValue::from(retry_after.as_secs().max(1));
            response.headers_mut().insert(RETRY_AFTER, seconds);
        }
        response
    }
}
