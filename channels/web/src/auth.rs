//! Access control: the agent API's token or loopback check, and the page
//! origins allowed to call the customer API from a browser.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    AUTHORIZATION, HOST, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::WebError;
use crate::input::truncated;
use crate::state::{digest, WebState};

/// Lets a request through to the agent API only with the configured bearer
/// token or, when no token is configured, from a loopback peer. Without a token
/// the `Host` must be a loopback name, and an `Origin` must be that same host.
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
    // A loopback peer may still be a browser running another site's script: with
    // DNS rebinding, `evil.example` resolves to 127.0.0.1 and its page calls this
    // API. Such requests name the foreign host in `Host` and carry its `Origin`.
    let host = request_host(request).unwrap_or_default();
    if !is_loopback_host(host) {
        return Err(WebError::HostNotLoopback { host: truncated(host) });
    }
    if let Some(origin) = request.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !is_same_loopback_origin(origin, host) {
            return Err(WebError::OriginNotLoopback { origin: truncated(origin) });
        }
    }
    Ok(())
}

/// Returns the `Host` header, or the URI's authority for HTTP/2 requests, which have no `Host`.
fn request_host(request: &Request) -> Option<&str> {
    match request.headers().get(HOST) {
        Some(value) => value.to_str().ok(),
        None => request.uri().authority().map(|authority| authority.as_str()),
    }
}

/// True for `localhost`, a 127.0.0.0/8 address or `[::1]`, each with an optional port.
fn is_loopback_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((address, port)) => (address, port),
            None => return false,
        },
        None => host.split_at(host.find(':').unwrap_or(host.len())),
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return false;
    }

    if host.starts_with('[') {
        return name.parse::<Ipv6Addr>().is_ok_and(|address| address.to_canonical().is_loopback());
    }
    name.eq_ignore_ascii_case("localhost") || name.parse::<Ipv4Addr>().is_ok_and(|address| address.is_loopback())
}

/// True when `origin` is `http://` or `https://` followed by exactly `host`.
fn is_same_loopback_origin(origin: &str, host: &str) -> bool {
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host))
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
    fn loopback_host_accepts_loopback_names_with_ports() {
        for host in ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.255.0.1:1", "[::1]", "[::1]:65535", "[::ffff:127.0.0.1]:80"] {
            assert!(is_loopback_host(host), "{host:?} was rejected");
        }
    }

    #[test]
    fn loopback_host_rejects_other_names() {
        let rejected = [
            "",
            "evil.example",
            "localhost.evil.example",
            "evil.localhost",
            "127.1",
            "128.0.0.1",
            "0.0.0.0",
            "[::]",
            "[::1",
            "[::1]x",
            "::1",
            "localhost:",
            "localhost:123456",
            "localhost:80:80",
        ];
        for host in rejected {
            assert!(!is_loopback_host(host), "{host:?} was accepted");
        }
    }

    #[test]
    fn same_loopback_origin_checks_scheme_and_host() {
        assert!(is_same_loopback_origin("http://localhost:8080", "localhost:8080"));
        assert!(is_same_loopback_origin("https://127.0.0.1", "127.0.0.1"));
        assert!(!is_same_loopback_origin("http://127.0.0.1:9", "127.0.0.1:8080"));
        assert!(!is_same_loopback_origin("ws://localhost", "localhost"));
        assert!(!is_same_loopback_origin("null", "localhost"));
    }

    #[test]
    fn same_origin_matches_host_header() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(is_same_origin("http://127.0.0.1:8080", &headers));
        assert!(!is_same_origin("http://evil.example", &headers));
    }
}
