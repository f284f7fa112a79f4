//! Access control: the agent API's token or loopback check, and the page
//! origins allowed to call the customer API from a browser.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    AUTHORIZATION, HOST, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::WebError;
use crate::state::{digest, WebState};

/// Lets a request through to the agent API only with the configured bearer
/// token or, when no token is configured, from a loopback address.
pub(crate) async fn require_agent(State(state): State<WebState>, request: Request, next: Next) -> Response {
    match authorize_agent(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn authorize_agent(state: &WebState, request: &Request) -> Result<(), WebError> {
    if let Some(expected) = state.agent_token_digest() {
        let presented = bearer_token(request.headers()).ok_or(WebError::Unauthorized)?;
        if !constant_time_eq(&digest(presented), expected) {
            return Err(WebError::Unauthorized);
        }
        return Ok(());
    }

    let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>().ok_or(WebError::PeerAddressUnknown)?;
    if !peer.ip().to_canonical().is_loopback() {
        return Err(WebError::NotLoopback);
    }
    Ok(())
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Applies [`crate::WebConfig::customer_origins`] to browser requests from other
/// origins: answers CORS preflights, rejects origins not on the list, and adds
/// `access-control-allow-origin` to allowed responses.
pub(crate) async fn customer_origin(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let origin_text = origin.to_str().unwrap_or_default().to_owned();
    if is_same_origin(&origin_text, request.headers()) {
        return next.run(request).await;
    }
    if !state.config().customer_origins.allows(&origin_text) {
        return WebError::OriginNotAllowed { origin: origin_text }.into_response();
    }

    let mut response = if request.method() == Method::OPTIONS { preflight() } else { next.run(request).await };
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(VARY, HeaderValue::from_static("origin"));
    response
}

fn preflight() -> Response {
    let headers = [
        (ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
        (ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
        (ACCESS_CONTROL_MAX_AGE, "600"),
    ];
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// True when `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn is_same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_reads_scheme_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
        assert_eq!(bearer_token(&headers), Some("s3cret"));
    }

    #[test]
    fn bearer_token_ignores_other_schemes() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic czNjcmV0"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn constant_time_eq_compares_digests() {
        assert!(constant_time_eq(&digest("a"), &digest("a")));
        assert!(!constant_time_eq(&digest("a"), &digest("b")));
    }

    #[test]
    fn same_origin_matches_host_header() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(is_same_origin("http://127.0.0.1:8080", &headers));
        assert!(!is_same_origin("http://evil.example", &headers));
    }
}
