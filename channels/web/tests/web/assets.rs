//! The widget script, the demo page, the health check, and JSON for unknown routes.

use anyhow::Result;
use lepton_web::{AllowedOrigins, WebConfig};

use crate::support::{error_code, read_json, TestServer};

#[tokio::test]
async fn widget_is_javascript_with_cache_headers() -> Result<()> {
    let server = TestServer::start().await?;
    let response = server.http.get(server.url("/widget.js")).send().await?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header("content-type").as_deref(), Some("text/javascript; charset=utf-8"));
    assert_eq!(header("cache-control").as_deref(), Some("public, max-age=300"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(header("etag").is_some());
    assert_eq!(response.text().await?, lepton_web::WIDGET_JS);
    Ok(())
}

#[tokio::test]
async fn widget_revalidates_with_etag() -> Result<()> {
    let server = TestServer::start().await?;
    let first = server.http.get(server.url("/widget.js")).send().await?;
    let etag = first.headers().get("etag").cloned();
    let Some(etag) = etag else {
        anyhow::bail!("no etag");
    };

    let second = server.http.get(server.url("/widget.js")).header("if-none-match", etag).send().await?;
    assert_eq!(second.status().as_u16(), 304);
    Ok(())
}

#[tokio::test]
async fn demo_page_embeds_widget() -> Result<()> {
    let server = TestServer::start().await?;
    let response = server.http.get(server.url("/")).send().await?;
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let html = response.text().await?;

    assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert!(html.contains("<script src=\"widget.js\""));
    Ok(())
}

/// The page must agree with the demo bot's answers: Lepton Shop in China, prices in
/// yuan, free shipping over ¥99, 7-day returns, 15-day exchange, 1-year warranty.
#[tokio::test]
async fn demo_page_matches_demo_bot() -> Result<()> {
    let server = TestServer::start().await?;
    let html = server.http.get(server.url("/")).send().await?.text().await?;

    for fact in ["Lepton Shop", "¥99", "¥10", "7-day", "七天无理由退货", "15-day", "15 天换货", "1-year", "保修 1 年", "100001", "100006"] {
        assert!(html.contains(fact), "demo page lacks {fact:?}");
    }
    for hint in ["Where is my order 100001?", "我想退货", "Talk to a person", "转人工"] {
        assert!(html.contains(hint), "demo page lacks the hint {hint:?}");
    }
    for stale in ["$", "30 days", "mug", "美元"] {
        assert!(!html.contains(stale), "demo page still says {stale:?}");
    }
    Ok(())
}

#[tokio::test]
async fn healthz_returns_ok() -> Result<()> {
    let server = TestServer::start().await?;
    let response = server.http.get(server.url("/healthz")).send().await?;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await?, "ok");
    Ok(())
}

#[tokio::test]
async fn unknown_route_returns_404_json() -> Result<()> {
    let server = TestServer::start().await?;
    let (status, body) = read_json(server.http.get(server.url("/nope")).send().await?).await?;

    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
    Ok(())
}

#[tokio::test]
async fn wrong_method_returns_405_json() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url("/api/v1/conversations/web:x/messages");
    let (status, body) = read_json(server.http.get(url).send().await?).await?;

    assert_eq!(status, 405);
    assert_eq!(error_code(&body), "method_not_allowed");
    Ok(())
}

#[tokio::test]
async fn cors_preflight_is_answered_for_any_origin() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url("/api/v1/conversations/web:x/messages");
    let response = server
        .http
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);

    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("https://shop.example"));
    assert_eq!(header("access-control-allow-headers").as_deref(), Some("content-type"));
    Ok(())
}

#[tokio::test]
async fn cross_origin_post_gets_allow_origin() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url("/api/v1/conversations/web:cors/messages");
    let response = server.http.post(url).header("origin", "https://shop.example").json(&serde_json::json!({ "text": "hello" })).send().await?;
    let allow = response.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_owned);

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(allow.as_deref(), Some("https://shop.example"));
    Ok(())
}

#[tokio::test]
async fn unlisted_origin_is_rejected() -> Result<()> {
    let config = WebConfig { customer_origins: AllowedOrigins::List(vec!["https://shop.example".to_owned()]), ..WebConfig::default() };
    let server = TestServer::start_with(config).await?;
    let url = server.url("/api/v1/conversations/web:cors/messages");
    let response = server.http.post(url).header("origin", "https://evil.example").json(&serde_json::json!({ "text": "hello" })).send().await?;
    let (status, body) = read_json(response).await?;

    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "origin_not_allowed");
    Ok(())
}

#[tokio::test]
async fn same_origin_post_needs_no_listing() -> Result<()> {
    let config = WebConfig { customer_origins: AllowedOrigins::List(Vec::new()), ..WebConfig::default() };
    let server = TestServer::start_with(config).await?;
    let url = server.url("/api/v1/conversations/web:same/messages");
    let response = server.http.post(url).header("origin", server.base.clone()).json(&serde_json::json!({ "text": "hello" })).send().await?;

    assert_eq!(response.status().as_u16(), 200);
    Ok(())
}
