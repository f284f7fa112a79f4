//! The agent API without a token: only loopback peers that address the server
//! by a loopback name, and only pages of that same loopback origin, so that a
//! page on another site cannot reach it through DNS rebinding.

use anyhow::Result;
use lepton_web::WebConfig;
use serde_json::{json, Value};

use crate::support::{conversation, error_code, read_json, TestServer};

async fn open_server() -> Result<TestServer> {
    TestServer::start_with(WebConfig::default()).await
}

/// Returns the port the test server listens on.
fn port(server: &TestServer) -> &str {
    server.base.rsplit_once(':').map_or("", |(_, port)| port)
}

/// Lists waiting conversations without a token, with the given `Host` and optional `Origin`.
async fn list_waiting(server: &TestServer, host: &str, origin: Option<&str>) -> Result<(u16, Value)> {
    let mut request = server.http.get(server.url("/api/v1/agent/conversations")).header("host", host);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    read_json(request.send().await?).await
}

#[tokio::test]
async fn foreign_host_cannot_list_waiting_conversations() -> Result<()> {
    let server = open_server().await?;
    server.say(&conversation("rebind-list"), "I want a person").await?;

    let (status, body) = list_waiting(&server, "evil.example:18300", None).await?;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "forbidden");
    assert_eq!(body.get("conversations"), None);
    Ok(())
}

#[tokio::test]
async fn foreign_host_and_origin_cannot_claim() -> Result<()> {
    let server = open_server().await?;
    let id = conversation("rebind-claim");
    server.say(&id, "I want a person").await?;

    let url = server.url(&format!("/api/v1/agent/conversations/{id}/claim"));
    let request = server.http.post(url).header("host", "evil.example").header("origin", "http://evil.example");
    let (status, body) = read_json(request.json(&json!({ "agent": "mallory" })).send().await?).await?;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "forbidden");

    let (_, waiting) = list_waiting(&server, &format!("127.0.0.1:{}", port(&server)), None).await?;
    assert_eq!(waiting["conversations"][0]["conversation_id"], json!(id));
    Ok(())
}

#[tokio::test]
async fn foreign_origin_is_rejected_with_loopback_host() -> Result<()> {
    let server = open_server().await?;
    let host = format!("127.0.0.1:{}", port(&server));

    let (status, body) = list_waiting(&server, &host, Some("http://evil.example")).await?;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "origin_not_allowed");
    Ok(())
}

#[tokio::test]
async fn other_loopback_origin_is_rejected() -> Result<()> {
    let server = open_server().await?;
    let host = format!("localhost:{}", port(&server));

    for origin in ["http://localhost:1", "http://127.0.0.1", "null", "file://"] {
        let (status, body) = list_waiting(&server, &host, Some(origin)).await?;
        assert_eq!(status, 403, "origin {origin:?}");
        assert_eq!(error_code(&body), "origin_not_allowed", "origin {origin:?}");
    }
    Ok(())
}

#[tokio::test]
async fn loopback_hosts_are_accepted() -> Result<()> {
    let server = open_server().await?;
    let port = port(&server).to_owned();

    for host in [format!("localhost:{port}"), "LocalHost".to_owned(), format!("127.0.0.1:{port}"), "127.8.9.10".to_owned(), format!("[::1]:{port}")] {
        let (status, body) = list_waiting(&server, &host, None).await?;
        assert_eq!(status, 200, "host {host:?}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn look_alike_hosts_are_rejected() -> Result<()> {
    let server = open_server().await?;

    for host in ["localhost.evil.example", "127.0.0.1.evil.example", "evil.localhost", "127.1", "[::2]:80", "localhost:80:80", "localhost:port"] {
        let (status, body) = list_waiting(&server, host, None).await?;
        assert_eq!(status, 403, "host {host:?}");
        assert_eq!(error_code(&body), "forbidden", "host {host:?}");
    }
    Ok(())
}

#[tokio::test]
async fn same_loopback_origin_is_accepted() -> Result<()> {
    let server = open_server().await?;
    let host = format!("localhost:{}", port(&server));

    let (status, body) = list_waiting(&server, &host, Some(&format!("http://{host}"))).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn token_allows_any_host_and_origin() -> Result<()> {
    let server = TestServer::start().await?;
    let request = server
        .http
        .get(server.url("/api/v1/agent/conversations"))
        .header("host", "support.example")
        .header("origin", "https://console.example")
        .bearer_auth(crate::support::AGENT_TOKEN);

    let (status, body) = read_json(request.send().await?).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}
