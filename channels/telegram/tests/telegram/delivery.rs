//! How replies reach Telegram: long text split, escaping, fallback to plain text, 429.

use axum::http::StatusCode;
use std::sync::Arc;

use bot_core::observe::Observer;
use bot_core::{AgentId, Channel};
use serde_json::json;

use crate::harness::{private_text, Harness, TestResult, CUSTOMER};

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

/// Puts the customer's conversation in an agent's hands.
async fn claimed(harness: &Harness) -> TestResult {
    harness.fake.push_update(private_text(1, 1, "talk to a human"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.engine.claim(&"telegram:1001".into(), &AgentId::new("alice")).await?;
    harness.fake.wait_texts(CUSTOMER, 2).await?;
    Ok(())
}

#[tokio::test]
async fn long_reply_split_in_two() -> TestResult {
    let harness = Harness::polling().await?;
    claimed(&harness).await?;
    let sentence = "Our returns policy covers every order from the shop. ";
    let long = sentence.repeat(5000 / sentence.len() + 1);

    harness.engine.agent_reply(&"telegram:1001".into(), &AgentId::new("alice"), &long).await?;
    let texts = harness.fake.wait_texts(CUSTOMER, 4).await?;

    let parts = &texts[2..];
    assert!(long.chars().count() > 5000);
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|part| part.encode_utf16().count() <= 4096), "a part is too long");
    assert!(parts[0].ends_with("shop."), "not split at a sentence end: {:?}", &parts[0][parts[0].len() - 20..]);
    assert_eq!(format!("{} {}", parts[0], parts[1]), long.trim_end());
    harness.stop().await
}

#[tokio::test]
async fn retry_after_honoured() -> TestResult {
    let harness = Harness::polling().await?;
    let recorder = Arc::new(DeliveryRecorder::default());
    harness.engine.add_observer(recorder.clone());
    let too_many = json!({ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": { "retry_after": 1 } });
    harness.fake.script("sendMessage", StatusCode::TOO_MANY_REQUESTS, too_many);

    harness.fake.push_update(private_text(1, 1, "Do you offer gift wrapping?"));
    harness.fake.wait_texts(CUSTOMER, 2).await?;

    let sends = harness.fake.calls_to("sendmessage", CUSTOMER);
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0].text(), sends[1].text());
    assert!(sends[1].at.duration_since(sends[0].at).as_secs_f64() >= 1.0, "the retry did not wait retry_after");
    let waits = recorder.rate_limit_waits.lock().expect("recorder lock").clone();
    assert_eq!(waits, vec![("telegram".to_owned(), std::time::Duration::from_secs(1))]);
    assert!(recorder.send_failures.lock().expect("recorder lock").is_empty());
    harness.stop().await
}

#[tokio::test]
async fn rejected_html_resent_as_plain() -> TestResult {
    let harness = Harness::polling().await?;
    let rejected = json!({ "ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 3" });
    harness.fake.script("sendMessage", StatusCode::BAD_REQUEST, rejected);

    harness.fake.push_update(private_text(1, 1, "Do you offer gift wrapping?"));
    harness.fake.wait_texts(CUSTOMER, 2).await?;

    let sends = harness.fake.calls_to("sendmessage", CUSTOMER);
    assert_eq!(sends[0].params["parse_mode"], "HTML");
    assert_eq!(sends[1].params.get("parse_mode"), None);
    assert!(sends[1].text().contains("¥10"), "{:?}", sends[1].text());
    harness.stop().await
}

#[tokio::test]
async fn address_with_markup_characters_escaped() -> TestResult {
    let harness = Harness::polling().await?;
    let address = "Flat *3*, <b>Bund_Tower</b> & [Annex 20 Century Avenue, Shanghai 200120";

    harness.fake.push_update(private_text(1, 1, "change my delivery address"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.fake.push_update(private_text(2, 2, "100002"));
    harness.fake.wait_texts(CUSTOMER, 2).await?;
    harness.fake.push_update(private_text(3, 3, address));
    let texts = harness.fake.wait_texts(CUSTOMER, 3).await?;

    let expected = "Flat *3*, &lt;b&gt;Bund_Tower&lt;/b&gt; &amp; [Annex 20 Century Avenue, Shanghai 200120";
    assert!(texts[2].contains(expected), "the address was not escaped: {:?}", texts[2]);
    harness.stop().await
}
