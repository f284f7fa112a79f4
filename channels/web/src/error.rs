//! The one error type of the web channel and how it becomes an HTTP response.
//!
//! Every failure returns a status and the body
//! `{"error":{"code":"...","message":"..."}}`. The code is stable and meant for
//! programs; the message is a lowercase sentence for people. Details go to the
//! log once, here at the boundary, and never include customer text.

use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use axum::Json;
use bot_core::{ConversationId, EngineError, StoreError};
use serde::Serialize;

use crate::rate_limit::retry_after_seconds;

/// The limit a [`WebError::RateLimited`] request ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitScope {
    /// Too many requests for one conversation.
    Conversation,
    /// Too many requests from one client address.
    Address,
}

impl RateLimitScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Conversation => "conversation",
            Self::Address => "address",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("invalid conversation id {id:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '_', '.', ':' and '-'")]
    InvalidConversationId { id: String },

    #[error("conversation id {id:?} belongs to another channel: web conversation ids have no prefix or the prefix 'web:'")]
    ForeignConversationId { id: String },

    #[error("invalid agent id {id:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', ':' and '-'")]
    InvalidAgentId { id: String },

    #[error("invalid client_message_id {id:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '_', '.', ':' and '-'")]
    InvalidClientMessageId { id: String },

    #[error("invalid locale {locale:?}: send a language tag such as 'en' or 'zh-CN'")]
    InvalidLocale { locale: String },

    #[error("message text is empty: send at least one visible character")]
    EmptyText,

    #[error("invalid limit {limit}: use 1 to {max}; a larger limit returns at most {max} events")]
    InvalidLimit { limit: usize, max: usize },

    #[error("message text is {bytes} bytes, more than the limit of {max} bytes: send a shorter message")]
    MessageTooLarge { bytes: usize, max: usize },

    #[error("request body is larger than the limit of {max} bytes: send a shorter message")]
    BodyTooLarge { max: usize },

    #[error("invalid JSON body: {detail}")]
    InvalidJson { detail: String },

    #[error("request body must be JSON: set the header 'content-type: application/json'")]
    UnsupportedMediaType,

    #[error("invalid query string: {detail}")]
    InvalidQuery { detail: String },

    #[error("invalid path: {detail}")]
    InvalidPath { detail: String },

    #[error("this endpoint needs a WebSocket upgrade request: {detail}")]
    NotWebSocket { detail: String },

    #[error("missing or wrong agent token: send the header 'authorization: Bearer TOKEN'")]
    Unauthorized,

    #[error("the agent api accepts requests from loopback addresses only when no agent token is configured")]
    NotLoopback,

    #[error("host {host:?} is not a loopback name: without an agent token the agent api answers only requests to localhost, 127.0.0.1 or [::1]; configure an agent token to serve it under another name")]
    HostNotLoopback { host: String },

    #[error("origin {origin:?} may not use the agent api: without an agent token only pages of the same loopback origin may")]
    OriginNotLoopback { origin: String },

    #[error("the agent api cannot see the client address: configure an agent token or serve with into_make_service_with_connect_info")]
    PeerAddressUnknown,

    #[error("origin {origin:?} may not use this api")]
    OriginNotAllowed { origin: String },

    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },

    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed { method: String, path: String },

    #[error("too many requests for this {}: try again in {} seconds", scope.as_str(), retry_after_seconds(*retry_after))]
    RateLimited { scope: RateLimitScope, retry_after: Duration },

    #[error("too many open chat connections: try again in a minute")]
    TooManySockets,

    #[error("the server is shutting down: try again in a minute")]
    ShuttingDown,

    #[error("this server cannot reload its bot: it was started without a bot folder to reload from")]
    ReloadUnavailable,

    #[error("the bot has not been reloaded since the server started")]
    NoReloadYet,

    #[error("{source}")]
    Engine {
        /// The conversation the failed call was about; `None` for calls about none.
        conversation_id: Option<ConversationId>,
        source: EngineError,
    },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl WebError {
    /// Wraps an engine error with the conversation it concerns, for the log.
    pub fn engine(conversation_id: &ConversationId, source: EngineError) -> Self {
        Self::Engine { conversation_id: Some(conversation_id.clone()), source }
    }

    /// Returns the HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidConversationId { .. }
            | Self::ForeignConversationId { .. }
            | Self::InvalidAgentId { .. }
            | Self::InvalidClientMessageId { .. }
            | Self::InvalidLocale { .. }
            | Self::EmptyText
            | Self::InvalidJson { .. }
            | Self::InvalidQuery { .. }
            | Self::InvalidLimit { .. }
            | Self::InvalidPath { .. }
            | Self::NotWebSocket { .. } => StatusCode::BAD_REQUEST,
            Self::MessageTooLarge { .. } | Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotLoopback
            | Self::HostNotLoopback { .. }
            | Self::OriginNotLoopback { .. }
            | Self::PeerAddressUnknown
            | Self::OriginNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::RouteNotFound { .. } | Self::ReloadUnavailable | Self::NoReloadYet => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TooManySockets | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine { source, .. } => engine_status(source),
        }
    }

    /// Returns the stable, machine-readable code of the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidConversationId { .. } | Self::ForeignConversationId { .. } => "invalid_conversation_id",
            Self::InvalidAgentId { .. } => "invalid_agent_id",
            Self::InvalidClientMessageId { .. } => "invalid_client_message_id",
            Self::InvalidLocale { .. } => "invalid_locale",
            Self::EmptyText => "empty_text",
            Self::MessageTooLarge { .. } | Self::BodyTooLarge { .. } => "message_too_large",
            Self::InvalidJson { .. } => "invalid_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidQuery { .. } | Self::InvalidLimit { .. } => "invalid_query",
            Self::InvalidPath { .. } => "invalid_path",
            Self::NotWebSocket { .. } => "websocket_required",
            Self::Unauthorized => "unauthorized",
            Self::NotLoopback | Self::HostNotLoopback { .. } | Self::PeerAddressUnknown => "forbidden",
            Self::OriginNotAllowed { .. } | Self::OriginNotLoopback { .. } => "origin_not_allowed",
            Self::RouteNotFound { .. } => "not_found",
            Self::ReloadUnavailable => "reload_unavailable",
            Self::NoReloadYet => "no_reload",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooManySockets | Self::ShuttingDown => "unavailable",
            Self::Engine { source, .. } => engine_code(source),
        }
    }

    /// Returns the message for the client. Server-side failures get a generic
    /// message so that store details stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Engine { source, .. } => engine_message(source),
            other => other.to_string(),
        }
    }

    /// Returns how long the client should wait before sending the request
    /// again, for the `Retry-After` header.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Engine { source: EngineError::TooManyConversations { retry_after, .. }, .. } => Some(*retry_after),
            Self::Engine { source, .. } if engine_status(source) == StatusCode::SERVICE_UNAVAILABLE => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    fn log(&self) {
        let status = self.status().as_u16();
        let code = self.code();
        match self {
            Self::Engine { conversation_id, source } => {
                let conversation_id = conversation_id.as_ref().map(ConversationId::as_str);
                // The engine logs store outages once with a count of failed turns.
                let outage = matches!(source, EngineError::Store(StoreError::Unavailable { .. }));
                let busy = matches!(
                    source,
                    EngineError::Contended { .. } | EngineError::Store(StoreError::LeaseTimeout { .. } | StoreError::Conflict { .. })
                );
                // The engine logs the first rejection at the cap, then a count at most once a minute.
                let at_capacity = matches!(source, EngineError::TooManyConversations { .. });
                if outage {
                    tracing::debug!(status, code, conversation_id, error = %source, "engine call failed: session store unavailable");
                } else if at_capacity {
                    tracing::debug!(status, code, conversation_id, "new conversation rejected: the server is at its limit of active conversations");
                } else if busy {
                    tracing::warn!(status, code, conversation_id, error = %source, "conversation busy; the client is asked to retry");
                } else if self.status().is_server_error() {
                    tracing::error!(status, code, conversation_id, error = %source, "engine call failed");
                } else {
                    tracing::debug!(status, code, conversation_id, error = %source, "engine rejected the request");
                }
            }
            Self::Unauthorized
            | Self::NotLoopback
            | Self::HostNotLoopback { .. }
            | Self::OriginNotLoopback { .. }
            | Self::OriginNotAllowed { .. } => {
                tracing::warn!(status, code, "request rejected");
            }
            Self::PeerAddressUnknown => {
                tracing::error!(status, code, "agent api has no agent token and no peer address: serve with into_make_service_with_connect_info");
            }
            Self::TooManySockets | Self::ShuttingDown => {
                tracing::warn!(status, code, "websocket rejected");
            }
            // DEBUG, because a flood would otherwise flood the log as well.
            Self::RateLimited { scope, retry_after } => {
                tracing::debug!(status, code, scope = scope.as_str(), retry_after_ms = retry_after.as_millis() as u64, "request rejected by a rate limit");
            }
            _ => tracing::debug!(status, code, error = %self, "bad request"),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.log();

        let body = ErrorBody { error: ErrorDetail { code: self.code(), message: self.public_message() } };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = self.retry_after() {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
        }
        response
    }
}

fn engine_status(error: &EngineError) -> StatusCode {
    match error {
        EngineError::AlreadyClaimed { .. } | EngineError::NotWaiting { .. } => StatusCode::CONFLICT,
        EngineError::NotOwner { .. } => StatusCode::FORBIDDEN,
        EngineError::NotFound { .. } => StatusCode::NOT_FOUND,
        EngineError::Contended { .. }
        | EngineError::TooManyConversations { .. }
        | EngineError::Store(StoreError::Unavailable { .. } | StoreError::Conflict { .. } | StoreError::LeaseTimeout { .. }) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        EngineError::Store(StoreError::Corrupt { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn engine_code(error: &EngineError) -> &'static str {
    match error {
        EngineError::AlreadyClaimed { .. } => "already_claimed",
        EngineError::NotWaiting { .. } => "not_waiting",
        EngineError::NotOwner { .. } => "not_owner",
        EngineError::NotFound { .. } => "conversation_not_found",
        EngineError::Contended { .. } | EngineError::Store(StoreError::Conflict { .. } | StoreError::LeaseTimeout { .. }) => "busy",
        EngineError::TooManyConversations { .. } => "server_busy",
        EngineError::Store(StoreError::Unavailable { .. }) => "unavailable",
        EngineError::Store(StoreError::Corrupt { .. }) => "internal",
    }
}

fn engine_message(error: &EngineError) -> String {
    match error {
        EngineError::AlreadyClaimed { conversation_id, by } => {
            format!("conversation {conversation_id} is already claimed by {by}")
        }
        EngineError::NotWaiting { conversation_id, state } => {
            format!("conversation {conversation_id} is not waiting for an agent (its state is {state})")
        }
        EngineError::NotOwner { conversation_id, agent } => {
            format!("agent {agent} does not handle conversation {conversation_id}: claim it first")
        }
        EngineError::NotFound { conversation_id } => format!("conversation {conversation_id} not found"),
        EngineError::Contended { .. } | EngineError::Store(StoreError::Conflict { .. } | StoreError::LeaseTimeout { .. }) => {
            "the conversation is busy with another message: please send this one again in a moment".to_owned()
        }
        EngineError::TooManyConversations { retry_after, .. } => format!(
            "the server is serving as many conversations as it can, so this one was not started: send the message again in {} seconds",
            retry_after_seconds(*retry_after)
        ),
        EngineError::Store(StoreError::Unavailable { .. }) => {
            "the service is briefly unavailable, so the message may not have been processed: send it again with the same client_message_id in a moment".to_owned()
        }
        EngineError::Store(StoreError::Corrupt { .. }) => {
            "the stored conversation cannot be read: the error is logged for the operator".to_owned()
        }
    }
}
