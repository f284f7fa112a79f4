//! Rate limits of the customer API and the origins allowed to call it.

use anyhow::{Context, Result};
use lepton_web::{AllowedOrigins, Rate, RateLimits, TrustedProxies, WebConfig};
use serde_json::{json, Value};

use crate::support::{conversation, error_code, read_json, TestServer};

/// A rate so slow that no token comes back during a test.
const SLOW: f64 = 0.001;

fn limits(per_conversation: Option<Rate>, per_address: Option<Rate>) -> WebConfig {
    let rate_limits = RateLimits { per_conversation, per_address, ..RateLimits::default() };
    WebConfig { rate_limits, ..WebConfig::default() }
}

/// Posts `text` with extra headers and returns the status, `Retry-After` and body.
async fn post(server: &TestServer, id: &str, headers: &[(&str, &str)]) -> Result<(u16, Option<u64>, Value)> {
    let mut request = server.http.post(server.url(&format!("/api/v1/conversations/{id}/messages"))).json(&json!({ "text": "hello" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let retry_after = match response.headers().get("retry-after") {
        Some(value) => Some(value.to_str()?.parse::<u64>().context("retry-after is not whole seconds")?),
        None => None,
    };
    let (status, body) = read_json(response).await?;
    Ok((status, retry_after, body))
}

#[tokio::test]
async fn conversation_limit_returns_429_with_retry_after() -> Result<()> {
    let server = TestServer::start_with(limits(Some(Rate::new(SLOW, 2).unwrap()), None)).await?;
    let id = conversation("limited");
    for _ in 0..2 {
        let (status, _, body) = post(&server, &id, &[]).await?;
        assert_eq!(status, 200, "{body}");
    }

    let (status, retry_after, body) = post(&server, &id, &[]).await?;

    assert_eq!(status, 429);
    assert_eq!(error_code(&body), "rate_limited");
    assert!(retry_after.is_some_and(|seconds| seconds >= 1), "retry-after {retry_after:?}");
    let (other_status, _, _) = post(&server, &conversation("other"), &[]).await?;
    assert_eq!(other_status, 200, "another conversation has its own limit");
    Ok(())
}

#[tokio::test]
async fn address_limit_spans_conversations() -> Result<()> {
    let server = TestServer::start_with(limits(None, Some(Rate::new(SLOW, 3).unwrap()))).await?;
    for index in 0..3 {
        let (status, _, body) = post(&server, &conversation(&format!("address-{index}")), &[]).await?;
        assert_eq!(status, 200, "{body}");
    }

    let (status, retry_after, body) = post(&server, &conversation("address-next"), &[]).await?;

    assert_eq!(status, 429);
    assert_eq!(error_code(&body), "rate_limited");
    assert!(retry_after.is_some_and(|seconds| seconds >= 1), "retry-after {retry_after:?}");
    Ok(())
}

#[tokio::test]
async fn websocket_upgrade_counts_against_address_limit() -> Result<()> {
    let server = TestServer::start_with(limits(None, Some(Rate::new(SLOW, 1).unwrap()))).await?;
    let id = conversation("socket-limit");
    let _socket = server.connect(&id, 0).await?;

    let rejected = server.connect(&id, 0).await;

    let error = rejected.err().context("a second upgrade was accepted")?;
    assert!(error.to_string().contains("429"), "expected 429, got {error}");
    Ok(())
}

#[tokio::test]
async fn untrusted_peer_cannot_pick_its_address() -> Result<()> {
    let server = TestServer::start_with(limits(None, Some(Rate::new(SLOW, 1).unwrap()))).await?;
    let (first, _, _) = post(&server, &conversation("forged-1"), &[("x-forwarded-for", "203.0.113.1")]).await?;

    let (second, _, _) = post(&server, &conversation("forged-2"), &[("x-forwarded-for", "203.0.113.2")]).await?;

    assert_eq!(first, 200);
    assert_eq!(second, 429, "X-Forwarded-For from an untrusted peer must not give a fresh bucket");
    Ok(())
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_counts_per_client() -> Result<()> {
    let mut config = limits(None, Some(Rate::new(SLOW, 1).unwrap()));
    config.trusted_proxies = TrustedProxies::parse("127.0.0.1")?;
    let server = TestServer::start_with(config).await?;
    let (first, _, _) = post(&server, &conversation("proxied-1"), &[("x-forwarded-for", "203.0.113.1")]).await?;
    let (second, _, _) = post(&server, &conversation("proxied-2"), &[("x-forwarded-for", "203.0.113.2")]).await?;

    let (again, _, body) = post(&server, &conversation("proxied-3"), &[("x-forwarded-for", "198.51.100.9, 203.0.113.1")]).await?;

    assert_eq!(first, 200);
    assert_eq!(second, 200, "another client behind the proxy has its own bucket");
    assert_eq!(again, 429, "the right-most untrusted entry is the client: {body}");
    Ok(())
}

#[tokio::test]
async fn default_conversation_limit_allows_a_burst_of_five() -> Result<()> {
    let server = TestServer::start_with(WebConfig::default()).await?;
    let id = conversation("default-limits");
    let mut statuses = Vec::new();

    // Ten messages at once: five pass at once, and unless the machine takes
    // five seconds for them, at least one is over the limit.
    for _ in 0..10 {
        statuses.push(post(&server, &id, &[]).await?.0);
    }

    assert_eq!(statuses[..5], [200; 5]);
    assert!(statuses.contains(&429), "statuses {statuses:?}");
    Ok(())
}

#[tokio::test]
async fn listed_origin_is_allowed() -> Result<()> {
    let origins = AllowedOrigins::parse("https://shop.example, https://www.shop.example")?;
    let server = TestServer::start_with(WebConfig { customer_origins: origins, ..WebConfig::default() }).await?;
    let url = server.url("/api/v1/conversations/web:listed/messages");

    let response = server.http.post(url).header("origin", "https://www.shop.example").json(&json!({ "text": "hello" })).send().await?;

    let allow = response.headers().get("access-control-allow-origin").map(|value| value.to_str().map(str::to_owned)).transpose()?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(allow.as_deref(), Some("https://www.shop.example"));
    Ok(())
}

#[tokio::test]
async fn unlisted_origin_preflight_is_rejected() -> Result<()> {
    let origins = AllowedOrigins::parse("https://shop.example")?;
    let server = TestServer::start_with(WebConfig { customer_origins: origins, ..WebConfig::default() }).await?;
    let url = server.url("/api/v1/conversations/web:unlisted/messages");

    let response = server
        .http
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await?;

    let allow = response.headers().get("access-control-allow-origin").cloned();
    let (status, body) = read_json(response).await?;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "origin_not_allowed");
    assert_eq!(allow, None);
    Ok(())
}

#[tokio::test]
async fn conversation_cap_returns_503_server_busy() -> Result<()> {
    let server = TestServer::start_with(WebConfig::default()).await?;
    let window = std::time::Duration::from_secs(60);
    server.engine.set_active_limit(Some(bot_core::engine::ActiveLimit { max_conversations: 1, idle_window: window }));
    server.say(&conversation("first"), "hello").await?;

    let (status, retry_after, body) = post(&server, &conversation("second"), &[]).await?;

    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "server_busy");
    assert!(retry_after.is_some_and(|seconds| (1..=60).contains(&seconds)), "retry-after {retry_after:?}");
    let events = server.say(&conversation("first"), "where is my order").await?;
    assert_eq!(events.len(), 2, "the active conversation goes on");
    Ok(())
}

/// Signs in to the console as `name` with a wrong password from `client`,
/// as a trusted proxy on 127.0.0.1 forwards it; returns the status.
async fn failed_sign_in(server: &TestServer, name: &str, client: &str) -> Result<u16> {
    let body = json!({ "name": name, "password": "wrong password" });
    let response = server.http.post(server.url("/console/api/session")).header("x-forwarded-for", client).json(&body).send().await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn sign_in_limit_counts_forwarded_clients_apart() -> Result<()> {
    let folder = std::env::temp_dir().join(format!("lepton-limits-test-{}", std::process::id()));
    let path = folder.join("agents.json");
    let mut accounts = lepton_web::console::Accounts::new()?;
    accounts.add("carol", lepton_web::console::Role::Agent, "correct horse battery")?;
    accounts.save(&path)?;
    let config = WebConfig { trusted_proxies: TrustedProxies::parse("127.0.0.1")?, ..WebConfig::default() };
    let state_path = path.clone();
    let server = TestServer::start_configured(config, move |state| state.with_accounts(state_path)).await?;

    // Five failures for five names from one client block that client's address.
    for attempt in 0..5 {
        let status = failed_sign_in(&server, &format!("name-{attempt}"), "203.0.113.1").await?;
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let blocked = failed_sign_in(&server, "name-5", "203.0.113.1").await?;
    let other_client = failed_sign_in(&server, "name-6", "203.0.113.2").await?;

    let _ = std::fs::remove_dir_all(&folder);
    assert_eq!(blocked, 429);
    assert_eq!(other_client, 401, "another client behind the same proxy has its own count");
    Ok(())
}
