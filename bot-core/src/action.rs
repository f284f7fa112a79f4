//! The boundary for HTTP actions that flows call.

use std::time::Duration;

use async_trait::async_trait;

/// A request built from a flow's HTTP step, with placeholders already filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub body: Option<serde_json::Value>,
    /// The time allowed for the whole request, from connecting to reading the
    /// body; `None` uses the client's default. A client always applies some timeout.
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// The body parsed as JSON; `Null` when it is empty or not JSON.
    pub body: serde_json::Value,
}

/// Sends the HTTP requests of flow steps.
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends `request`; an error means no response arrived (connection failure or timeout).
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("HTTP request to {url} timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("HTTP response from {url} is larger than the limit of {max_bytes} bytes")]
    ResponseTooLarge { url: String, max_bytes: usize },
    #[error("HTTP request to {url} failed: {reason}")]
    Failed { url: String, reason: String },
    #[error("invalid HTTP request: {reason}")]
    Invalid { reason: String },
}

impl HttpError {
    /// Returns the kind of failure without the URL, whose path and query may
    /// contain slot values a customer typed: `timeout`, `response_too_large`,
    /// `failed` or `invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::ResponseTooLarge { .. } => "response_too_large",
            Self::Failed { .. } => "failed",
            Self::Invalid { .. } => "invalid",
        }
    }
}

/// An HTTP client for bots without HTTP steps; every request fails.
pub struct NoHttp;

#[async_trait]
impl HttpClient for NoHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Failed { url: request.url, reason: "no HTTP client configured".to_owned() })
    }
}
