//! `GET /metrics`: the registry in the OpenMetrics text format, for loopback
//! clients or, when a token is configured, for clients that send it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bot_core::message::now_millis;
use bot_core::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Metrics;
use crate::app::EncoderSlot;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The maximum time a scrape waits for the store to list the queue. When
/// the store takes longer, the queue gauges keep their last values.
const QUEUE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The route of the metrics and the clients allowed to read them.
#[derive(Clone)]
pub struct MetricsAccess {
    /// The route, `/metrics` by default.
    pub path: String,
    /// The bearer token scrapers must send. Without one, only clients
    /// connecting from a loopback address may read the metrics.
    pub token: Option<String>,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        Self { path: "/metrics".to_owned(), token: None }
    }
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess").field("path", &self.path).field("token", &self.token.as_ref().map(|_| "<redacted>")).finish()
    }
}

struct ScrapeState {
    metrics: Arc<Metrics>,
    engine: Engine,
    encoders: EncoderSlot,
    token_digest: Option<[u8; 32]>,
}

/// Returns the metrics route, for the server to merge into the web channel's router.
pub fn router(metrics: Arc<Metrics>, engine: Engine, encoders: EncoderSlot, access: &MetricsAccess) -> Router {
    let token_digest = access.token.as_deref().map(digest);
    let state = Arc::new(ScrapeState { metrics, engine, encoders, token_digest });
    Router::new().route(&access.path, get(scrape)).with_state(state)
}

async fn scrape(State(state): State<Arc<ScrapeState>>, request: Request) -> Response {
    if let Some(rejection) = reject_unauthorized(state.token_digest.as_ref(), &request) {
        return rejection;
    }

    let queue = read_queue(&state.engine).await;
    let bot = state.engine.bot();
    state.metrics.set_session_ttl(Duration::from_secs(bot.settings.session.ttl_seconds.max(1)));
    state.metrics.set_gauges(queue);
    let max = state.engine.active_limit().map(|limit| limit.max_conversations);
    state.metrics.set_admission(state.engine.active_conversations(), max);
    state.metrics.record_encoder(state.encoders.current().as_ref());
    ([(CONTENT_TYPE, OPENMETRICS)], state.metrics.encode()).into_response()
}

/// Reads the queue's length and its longest wait; `None` when the store failed or was slow.
async fn read_queue(engine: &Engine) -> Option<(usize, Duration)> {
    match tokio::time::timeout(QUEUE_READ_TIMEOUT, engine.waiting()).await {
        Ok(Ok(waiting)) => {
            let oldest = waiting.iter().map(|entry| entry.since).min().map_or(0, |since| now_millis().saturating_sub(since));
            Some((waiting.len(), Duration::from_millis(oldest)))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read the queue for the metrics; the queue gauges keep their last values");
            None
        }
        Err(_) => {
            tracing::warn!(timeout_ms = QUEUE_READ_TIMEOUT.as_millis() as u64, "reading the queue for the metrics timed out; the queue gauges keep their last values");
            None
        }
    }
}

/// Returns the 401 or 403 response for a client that may not read the metrics.
fn reject_unauthorized(token_digest: Option<&[u8; 32]>, request: &Request) -> Option<Response> {
    if let Some(expected) = token_digest {
        let sent = request.headers().get(AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer "));
        let matches = sent.is_some_and(|token| bool::from(digest(token.trim()).ct_eq(expected)));
        if matches {
            return None;
        }
        let body = error_body("unauthorized", "the metrics need the header Authorization: Bearer with the configured metrics token");
        return Some((StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer")], body).into_response());
    }

    let loopback = request.extensions().get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    if loopback {
        return None;
    }
    let body = error_body("forbidden", "the metrics are served to loopback clients only; set metrics.token to let other hosts scrape them");
    Some((StatusCode::FORBIDDEN, body).into_response())
}

fn error_body(code: &str, message: &str) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "error": { "code": code, "message": message } }))
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request_from(peer: &str, authorization: Option<&str>) -> anyhow::Result<Request> {
        let mut builder = axum::http::Request::get("/metrics");
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        let mut request = builder.body(Body::empty())?;
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>()?));
        Ok(request)
    }

    fn status(rejection: Option<Response>) -> Option<u16> {
        rejection.map(|response| response.status().as_u16())
    }

    #[test]
    fn without_token_only_loopback_reads() -> anyhow::Result<()> {
        assert_eq!(status(reject_unauthorized(None, &request_from("127.0.0.1:5000", None)?)), None);
        assert_eq!(status(reject_unauthorized(None, &request_from("[::1]:5000", None)?)), None);
        assert_eq!(status(reject_unauthorized(None, &request_from("10.0.0.7:5000", None)?)), Some(403));
        Ok(())
    }

    #[test]
    fn with_token_every_address_needs_it() -> anyhow::Result<()> {
        let expected = digest("scrape-secret");

        let remote_with = reject_unauthorized(Some(&expected), &request_from("10.0.0.7:5000", Some("Bearer scrape-secret"))?);
        let loopback_without = reject_unauthorized(Some(&expected), &request_from("127.0.0.1:5000", None)?);
        let wrong = reject_unauthorized(Some(&expected), &request_from("10.0.0.7:5000", Some("Bearer scrape-secreT"))?);

        assert_eq!(status(remote_with), None);
        assert_eq!(status(loopback_without), Some(401));
        assert_eq!(status(wrong), Some(401));
        Ok(())
    }
}
