//! The limits of `lepton serve`, set through its configuration's environment
//! variables: rate limits, the cap on active conversations, allowed origins.

use serde_json::{json, Value};

use crate::harness::{temp_dir, Customer, Server};

/// Serves the demo bot with its own store and the environment variables `env`.
fn start(env: &[(&str, &str)]) -> anyhow::Result<Server> {
    let store = temp_dir("store").join("sessions.redb");
    let store = store.to_str().ok_or_else(|| anyhow::anyhow!("store path is not UTF-8"))?.to_owned();
    Server::start_with_args(&["--store", &store], env)
}

/// Posts "hello" to `conversation` with an optional `Origin`; returns the
/// status, the `Retry-After` header and the body.
async fn post(server: &Server, conversation: &str, origin: Option<&str>) -> anyhow::Result<(u16, Option<String>, Value)> {
    let url = format!("{}/api/v1/conversations/{conversation}/messages", server.url);
    let mut request = reqwest::Client::new().post(url).json(&json!({ "text": "hello" }));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap_or_default().to_owned());
    Ok((status, retry_after, response.json().await?))
}

#[tokio::test]
async fn conversation_rate_limit_from_environment() -> anyhow::Result<()> {
    let server = start(&[("LEPTON_WEB_RATE_LIMIT_CONVERSATION", "0.01/s,2")])?;
    for _ in 0..2 {
        assert_eq!(post(&server, "web:e2e-rate", None).await?.0, 200);
    }

    let (status, retry_after, body) = post(&server, "web:e2e-rate", None).await?;

    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(retry_after.is_some(), "no Retry-After");
    Ok(())
}

#[tokio::test]
async fn busy_reply_past_active_conversation_cap() -> anyhow::Result<()> {
    let server = start(&[("LEPTON_SERVER_MAX_ACTIVE_CONVERSATIONS", "1")])?;
    let mut first = Customer::new(&server, "web:e2e-first");
    first.say("hello").await?;

    let (status, retry_after, body) = post(&server, "web:e2e-second", None).await?;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "server_busy");
    assert!(retry_after.is_some(), "no Retry-After");
    let replies = first.say("where is my order").await?;
    assert!(!replies.is_empty(), "the active conversation went on without a reply");
    Ok(())
}

#[tokio::test]
async fn customer_origins_from_environment() -> anyhow::Result<()> {
    let server = start(&[("LEPTON_WEB_CUSTOMER_ORIGINS", "https://shop.example")])?;

    let (listed, _, _) = post(&server, "web:e2e-listed", Some("https://shop.example")).await?;
    let (unlisted, _, body) = post(&server, "web:e2e-unlisted", Some("https://evil.example")).await?;

    assert_eq!(listed, 200);
    assert_eq!(unlisted, 403, "{body}");
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    Ok(())
}
