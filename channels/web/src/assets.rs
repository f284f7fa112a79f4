//! Static responses: the chat widget script, the demo shop page, the health
//! check, and the JSON errors for unknown routes and methods.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::WebError;
use crate::state::WebState;

/// The chat widget: one script that builds its own button and panel in a shadow DOM.
pub const WIDGET_JS: &str = include_str!("../assets/widget.js");

/// The demo shop page that embeds the widget.
pub const DEMO_HTML: &str = include_str!("../assets/demo.html");

/// Maximum length of a request path echoed back in a 404 message, in characters.
const SHOWN_PATH_CHARS: usize = 200;

pub(crate) async fn widget(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let etag = widget_etag();
    let cache_control = format!("public, max-age={}", state.config().widget_max_age_seconds);
    let cache_headers = [(ETAG, etag.to_owned()), (CACHE_CONTROL, cache_control)];

    if if_none_match(&headers, etag) {
        return (StatusCode::NOT_MODIFIED, cache_headers).into_response();
    }
    let content_headers = [
        (CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (cache_headers, content_headers, WIDGET_JS).into_response()
}

/// Returns the strong ETag of the widget script: the first 16 bytes of its SHA-256, in hex.
fn widget_etag() -> &'static str {
    static ETAG_VALUE: OnceLock<String> = OnceLock::new();
    ETAG_VALUE.get_or_init(|| {
        let digest = Sha256::digest(WIDGET_JS.as_bytes());
        let hex: String = digest[..16].iter().map(|byte| format!("{byte:02x}")).collect();
        format!("\"{hex}\"")
    })
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let Some(value) = headers.get(IF_NONE_MATCH).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let mut candidates = value.split(',').map(|candidate| candidate.trim().trim_start_matches("W/"));
    candidates.any(|candidate| candidate == etag || candidate == "*")
}

pub(crate) async fn demo_page() -> Response {
    let headers = [
        (CONTENT_TYPE, "text/html; charset=utf-8"),
        (CACHE_CONTROL, "no-cache"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, DEMO_HTML).into_response()
}

pub(crate) async fn healthz() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, "no-store")], "ok").into_response()
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> WebError {
    WebError::RouteNotFound { method: method.to_string(), path: shown_path(&uri) }
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> WebError {
    WebError::MethodNotAllowed { method: method.to_string(), path: shown_path(&uri) }
}

fn shown_path(uri: &Uri) -> String {
    uri.path().chars().take(SHOWN_PATH_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widget_etag_is_quoted_hex() {
        let etag = widget_etag();
        assert_eq!(etag.len(), 34);
        assert!(etag.starts_with('"'));
        assert!(etag.ends_with('"'));
    }

    #[test]
    fn if_none_match_finds_etag_in_list() {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"abc\", \"def\""));
        assert!(if_none_match(&headers, "\"def\""));
        assert!(!if_none_match(&headers, "\"xyz\""));
    }

    #[test]
    fn widget_never_uses_inner_html() {
        assert!(!WIDGET_JS.contains("innerHTML"));
        assert!(!WIDGET_JS.contains("insertAdjacentHTML"));
        assert!(!WIDGET_JS.contains("document.write"));
    }
}
