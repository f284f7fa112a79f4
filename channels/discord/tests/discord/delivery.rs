//! How replies reach Discord: long text split, allowed mentions off, 429 and
//! bounded retries, and requests that stay on 127.0.0.1.

use axum::http::StatusCode;
use std::sync::Arc;

use bot_core::observe::Observer;
use bot_core::{AgentId, Channel};
use serde_json::json;

use crate::harness::{dm, loopback_client, Harness, TestResult, DM};

const SEND: &str = "POST /channels/{id}/messages";

/// Counts what the channel reports to the engine's observers.
#[derive(Default)]
struct DeliveryRecorder {
    rate_limit_waits: std::sync::Mutex<Vec<(String, std::time::Duration)>>,
    send_failures: std::sync::Mutex<Vec<String>>,
}

impl Observer for DeliveryRecorder {
    fn rate_limited(&self, channel: &Channel, wait: std::time::Duration) {
        self.rate_limit_waits.lock().expect("recorder lock").push((channel.as_str().to_owned(), wait));
    }

    fn send_failed(&self, channel: &Channel) {
        self.send_failures.lock().expect("recorder lock").push(channel.as_str().to_owned());
    }
}

/// Puts the customer's direct message conversation in an agent's hands.
async fn claimed(harness: &Harness) -> TestResult {
    harness.send(dm(1, "talk to a human"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.engine.claim(&format!("discord:dm:{DM}").into(), &AgentId::new("alice")).await?;
    harness.fake.wait_texts(DM, 2).await?;
    Ok(())
}

fn too_many_requests(retry_after: f64) -> serde_json::Value {
    json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": false })
}

#[tokio::test]
async fn long_reply_split_at_sentences() -> TestResult {
    let harness = Harness::start().await?;
    claimed(&harness).await?;
    let sentence = "Our returns policy covers every order from the shop. ";
    let long = sentence.repeat(3000 / sentence.len() + 1);

    harness.engine.agent_reply(&format!("discord:dm:{DM}").into(), &AgentId::new("alice"), &long).await?;
    let texts = harness.fake.wait_texts(DM, 4).await?;

    let parts = &texts[2..];
    assert!(long.chars().count() > 2000);
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|part| part.chars().count() <= 2000), "a part is too long");
    assert!(parts[0].ends_with("shop."), "not split at a sentence end: {:?}", &parts[0][parts[0].len() - 20..]);
    assert_eq!(format!("{} {}", parts[0], parts[1]), long.trim_end());
    harness.stop().await
}

#[tokio::test]
async fn mentions_in_customer_text_notify_nobody() -> TestResult {
    let harness = Harness::start().await?;
    let address = "@everyone <@&111> <@222> Flat 3, 20 Century Avenue, Shanghai 200120";

    harness.send(dm(1, "change my delivery address"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.send(dm(2, "100002"))?;
    harness.fake.wait_texts(DM, 2).await?;
    harness.send(dm(3, address))?;
    let texts = harness.fake.wait_texts(DM, 3).await?;

    assert!(texts[2].contains("@everyone <@&111> <@222>"), "the address is not in the reply: {:?}", texts[2]);
    for sent in harness.fake.messages_to(DM) {
        let allowed = &sent.body["allowed_mentions"];
        assert_eq!(allowed["parse"], json!([]), "{allowed}");
        assert_eq!(allowed["users"], json!([]), "{allowed}");
        assert_eq!(allowed["roles"], json!([]), "{allowed}");
    }
    harness.stop().await
}

#[tokio::test]
async fn retry_after_honoured() -> TestResult {
    let harness = Harness::start().await?;
    harness.fake.script(SEND, StatusCode::TOO_MANY_REQUESTS, vec![("retry-after", "1".to_owned())], too_many_requests(0.5));

    harness.send(dm(1, "Do you offer gift wrapping?"))?;
    harness.fake.wait_texts(DM, 2).await?;

    let sends = harness.fake.messages_to(DM);
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0].body, sends[1].body);
    let waited = sends[1].at.duration_since(sends[0].at).as_secs_f64();
    assert!(waited >= 0.5, "the retry came {waited} s after the 429, before retry_after");
    harness.stop().await
}

#[tokio::test]
async fn retries_bounded_then_dropped() -> TestResult {
    let harness = Harness::start().await?;
    let recorder = Arc::new(DeliveryRecorder::default());
    harness.engine.add_observer(recorder.clone());
    // One first attempt and three retries, all rate-limited.
    for _ in 0..4 {
        harness.fake.script(SEND, StatusCode::TOO_MANY_REQUESTS, Vec::new(), too_many_requests(0.01));
    }

    harness.send(dm(1, "Do you offer gift wrapping?"))?;
    harness.fake.wait_texts(DM, 4).await?;
    // The customer's events run in order, so the first reply was given up before this one.
    harness.send(dm(2, "Which countries do you ship to?"))?;
    let texts = harness.fake.wait_texts(DM, 5).await?;

    assert_eq!(texts.len(), 5, "{texts:?}");
    assert!(texts[..4].iter().all(|text| text.contains("¥10")), "{texts:?}");
    assert!(texts[4].contains("DHL"), "the next reply was not sent: {texts:?}");
    assert_eq!(recorder.rate_limit_waits.lock().expect("recorder lock").len(), 3);
    assert_eq!(*recorder.send_failures.lock().expect("recorder lock"), vec!["discord".to_owned()]);
    harness.stop().await
}

#[tokio::test]
async fn server_error_retried() -> TestResult {
    let harness = Harness::start().await?;
    harness.fake.script(SEND, StatusCode::BAD_GATEWAY, Vec::new(), json!({ "message": "502: Bad Gateway", "code": 0 }));

    harness.send(dm(1, "Do you offer gift wrapping?"))?;
    let texts = harness.fake.wait_texts(DM, 2).await?;

    assert_eq!(texts[0], texts[1]);
    harness.stop().await
}

#[tokio::test]
async fn rejected_send_not_retried() -> TestResult {
    let harness = Harness::start().await?;
    let missing = json!({ "message": "Missing Permissions", "code": 50013 });
    harness.fake.script(SEND, StatusCode::FORBIDDEN, Vec::new(), missing);

    harness.send(dm(1, "Do you offer gift wrapping?"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.send(dm(2, "Which countries do you ship to?"))?;
    let texts = harness.fake.wait_texts(DM, 2).await?;

    assert!(texts[1].contains("DHL"), "the rejected reply was sent again: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn requests_stay_on_loopback() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(dm(1, "where is my order"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.send(dm(2, "100001"))?;
    harness.fake.wait_texts(DM, 2).await?;

    let calls = harness.fake.calls();
    let port = harness.fake.url.port().unwrap_or_default();
    assert!(calls.iter().any(|call| call.method == "WS"), "the gateway connection did not reach the fake");
    for call in &calls {
        assert_eq!(call.host, format!("127.0.0.1:{port}"), "{} {} went to another host", call.method, call.path);
    }
    // The safety net: Discord's own address resolves to a closed port of 127.0.0.1.
    let escaped = loopback_client()?.get("https://discord.com/api/v10/gateway").send().await;
    assert!(escaped.as_ref().is_err_and(reqwest::Error::is_connect), "{escaped:?}");
    harness.stop().await
}
