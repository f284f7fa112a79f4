//! Webhook mode: the secret token, answers Telegram can rely on, redeliveries.

use std::net::SocketAddr;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{private_text, Harness, TestResult, CUSTOMER};

const SECRET: &str = "s3cret_Token-1";

/// Serves the channel's webhook route on 127.0.0.1 and returns its URL.
async fn serve(harness: &Harness) -> anyhow::Result<String> {
    let app = harness.channel.webhook_router()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{address}/telegram/webhook"))
}

async fn post(url: &str, secret: Option<&str>, body: String) -> anyhow::Result<StatusCode> {
    let mut request = reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    if let Some(secret) = secret {
        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    Ok(request.send().await?.status())
}

#[tokio::test]
async fn webhook_rejects_wrong_secret() -> TestResult {
    let harness = Harness::webhook(SECRET).await?;
    let url = serve(&harness).await?;
    let update = private_text(1, 1, "Do you offer gift wrapping?").to_string();

    assert_eq!(post(&url, Some("wrong"), update.clone()).await?, StatusCode::UNAUTHORIZED);
    assert_eq!(post(&url, None, update.clone()).await?, StatusCode::UNAUTHORIZED);
    assert_eq!(post(&url, Some(&SECRET[..SECRET.len() - 1]), update).await?, StatusCode::UNAUTHORIZED);
    let events = harness.engine.events(&"telegram:1001".into(), 0, 10).await?;
    assert!(events.is_empty(), "a rejected update reached the engine");
    Ok(())
}

#[tokio::test]
async fn webhook_processes_redelivery_once() -> TestResult {
    let harness = Harness::webhook(SECRET).await?;
    let url = serve(&harness).await?;
    let update = private_text(7, 1, "Do you offer gift wrapping?").to_string();

    assert_eq!(post(&url, Some(SECRET), update.clone()).await?, StatusCode::OK);
    assert_eq!(post(&url, Some(SECRET), update).await?, StatusCode::OK);
    assert_eq!(post(&url, Some(SECRET), private_text(8, 2, "thanks").to_string()).await?, StatusCode::OK);
    let texts = harness.fake.wait_texts(CUSTOMER, 2).await?;

    assert_eq!(texts.len(), 2, "the redelivered update was answered again: {texts:?}");
    assert!(texts[0].contains("¥10"), "{texts:?}");
    let customer_events = harness.engine.events(&"telegram:1001".into(), 0, 100).await?.iter().filter(|e| e.reply().is_none()).count();
    assert_eq!(customer_events, 2);
    Ok(())
}

#[tokio::test]
async fn webhook_accepts_unreadable_and_unknown() -> TestResult {
    let harness = Harness::webhook(SECRET).await?;
    let url = serve(&harness).await?;

    assert_eq!(post(&url, Some(SECRET), "not json".to_owned()).await?, StatusCode::OK);
    assert_eq!(post(&url, Some(SECRET), json!({ "update_id": 3, "future_thing": {} }).to_string()).await?, StatusCode::OK);
    assert_eq!(post(&url, Some(SECRET), json!({ "update_id": 4, "message": { "nonsense": true } }).to_string()).await?, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn webhook_registers_https_url_and_secret() -> TestResult {
    let harness = Harness::webhook(SECRET).await?;

    harness.channel.register_webhook().await?;

    let calls = harness.fake.calls();
    let set = calls.iter().find(|c| c.method == "setwebhook").ok_or_else(|| anyhow::anyhow!("setWebhook was not called"))?;
    let body = set.params.to_string();
    assert!(body.contains("https://bot.example.com/telegram/webhook"), "{body}");
    assert!(body.contains(SECRET), "{body}");
    Ok(())
}

#[tokio::test]
async fn polling_config_has_no_webhook() -> TestResult {
    let harness = Harness::polling().await?;

    assert!(harness.channel.webhook_router().is_err());
    harness.stop().await
}
