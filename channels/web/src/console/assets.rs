//! The console's page and its static files, embedded in the binary: plain HTML,
//! CSS and JavaScript modules from `assets/console/`, no build step.
//!
//! A new file in `assets/console/` needs a line in [`FILES`]; a test checks it.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::WebError;

/// The page's Content-Security-Policy: no inline scripts or styles, nothing from other origins.
pub const CONTENT_SECURITY_POLICY_VALUE: &str =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// The console page.
pub const INDEX_HTML: &str = include_str!("../../assets/console/index.html");

macro_rules! console_files {
    ($($name:literal),* $(,)?) => {
        /// The files served under `/console/assets/`, by name.
        pub const FILES: &[(&str, &str)] = &[$(($name, include_str!(concat!("../../assets/console/", $name)))),*];
    };
}

console_files!(
    "admin.js",
    "api.js",
    "composer.js",
    "console.css",
    "console.js",
    "conversation.js",
    "dom.js",
    "i18n.js",
    "learning.js",
    "live.js",
    "queue.js",
);

/// `GET /console`: the page, which shows the sign-in form when `/console/api/me` answers 401.
pub(crate) async fn page() -> Response {
    let headers = [
        (CONTENT_TYPE, "text/html; charset=utf-8"),
        (CACHE_CONTROL, "no-cache"),
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "same-origin"),
    ];
    (headers, INDEX_HTML).into_response()
}

/// `GET /console/assets/{file}`: revalidated on every use with a strong ETag.
pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, WebError> {
    let Some(index) = FILES.iter().position(|(file, _)| *file == name) else {
        return Err(WebError::RouteNotFound { method: "GET".to_owned(), path: format!("/console/assets/{}", crate::input::truncated(&name)) });
    };
    let (name, body) = FILES[index];
    let etag = etags()[index].as_str();
    let cache_headers = [(ETAG, etag.to_owned()), (CACHE_CONTROL, "no-cache".to_owned())];
    if if_none_match(&headers, etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let content_type = if name.ends_with(".css") { "text/css; charset=utf-8" } else { "text/javascript; charset=utf-8" };
    Ok((cache_headers, [(CONTENT_TYPE, content_type), (X_CONTENT_TYPE_OPTIONS, "nosniff")], body).into_response())
}

/// Strong ETags of [`FILES`], in the same order: the first 16 bytes of each SHA-256, in hex.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, body)| {
                let digest = Sha256::digest(body.as_bytes());
                let hex: String = digest[..16].iter().map(|byte| format!("{byte:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let Some(value) = headers.get(IF_NONE_MATCH).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    value.split(',').map(|candidate| candidate.trim().trim_start_matches("W/")).any(|candidate| candidate == etag || candidate == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_folder_is_served() -> std::io::Result<()> {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/console");
        for entry in std::fs::read_dir(folder)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name == "index.html" {
                continue;
            }
            assert!(FILES.iter().any(|(file, _)| *file == name), "assets/console/{name} is missing from FILES in console/assets.rs");
        }
        Ok(())
    }

    #[test]
    fn page_has_no_inline_script_or_style() {
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
    }
}
