//! Bad input gets a clear 4xx answer, never a 500 or a crash.

use serde_json::{json, Value};

use crate::harness::Server;

async fn post_raw(server: &Server, conversation: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}/api/v1/conversations/{conversation}/messages", server.url);
    let response = reqwest::Client::new().post(url).header("content-type", content_type).body(body).send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

async fn post_text(server: &Server, conversation: &str, text: &str) -> anyhow::Result<(u16, Value)> {
    post_raw(server, conversation, "application/json", serde_json::to_vec(&json!({ "text": text }))?).await
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_text_is_rejected_clearly() -> anyhow::Result<()> {
    let server = Server::start()?;

    let (status, body) = post_text(&server, "bad-empty", "   ").await?;

    assert_eq!(status, 400, "body: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "expected an error message, got {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_text_gets_413() -> anyhow::Result<()> {
    let server = Server::start()?;
    let text = "退款".repeat(100 * 1024 / 6) + &"a".repeat(50 * 1024);

    let (status, body) = post_text(&server, "bad-large", &text).await?;

    assert_eq!(status, 413, "body: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("large") || m.contains("limit")), "expected a clear message, got {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_json_is_rejected_clearly() -> anyhow::Result<()> {
    let server = Server::start()?;

    let (status, body) = post_raw(&server, "bad-json", "application/json", b"{\"text\": \"hi".to_vec()).await?;

    assert_eq!(status, 400, "body: {body}");
    assert!(body["error"]["message"].is_string(), "expected a JSON error, got {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_but_valid_text_is_answered() -> anyhow::Result<()> {
    let server = Server::start()?;
    let cases = [
        ("emoji", "🙂🙂🚀"),
        ("control", "hel\u{0}lo\u{7}\u{1b}[31m where is my order"),
        ("mixed", "我的order在哪里？"),
        ("syntax", "refund (partial)? -1 a:(^ https://x.example/?q=1"),
        ("rtl", "\u{202e}gnipping"),
    ];

    for (name, text) in cases {
        let (status, body) = post_text(&server, &format!("odd-{name}"), text).await?;
        assert_eq!(status, 200, "{name}: body {body}");
        let replies = crate::harness::reply_texts(&body);
        assert!(!replies.is_empty(), "{name}: expected a reply, got {body}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn server_survives_bad_input() -> anyhow::Result<()> {
    let server = Server::start()?;
    post_raw(&server, "bad-type", "text/plain", b"hello".to_vec()).await?;
    post_raw(&server, "bad-bytes", "application/json", vec![0xff, 0xfe, 0x00]).await?;
    post_raw(&server, "bad%20id%00", "application/json", b"{\"text\":\"hi\"}".to_vec()).await?;

    let (status, _) = post_text(&server, "after-bad", "hello").await?;

    assert_eq!(status, 200);
    Ok(())
}
