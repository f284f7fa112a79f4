//! The webhook adapter and its signed callback.

use std::sync::Arc;

use anyhow::{Context, Result};
use bot_core::handoff_adapter::{spawn_dispatcher, DispatcherConfig};
use bot_core::{Author, EventKind, InboundMessage};
use lepton_handoff::signature::{self, Verifier, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use lepton_handoff::webhook::{callback_router, CALLBACK_PATH};
use lepton_handoff::{Secret, WebhookAdapter, WebhookConfig};
use serde_json::{json, Value};

use crate::support::{self, FakeServer};

const SECRET: &str = "test-secret-0123456789";

fn secret() -> Secret {
    Secret::new(SECRET)
}

/// Starts a fake helpdesk and a dispatcher that posts to it.
async fn forwarding_engine() -> Result<(bot_core::Engine, FakeServer)> {
    let helpdesk = FakeServer::new(|_, _| (200, json!({})));
    let address = helpdesk.start().await?;
    let engine = support::engine();
    let adapter = WebhookAdapter::new(WebhookConfig::new(format!("http://{address}/lepton"), secret()))?;
    spawn_dispatcher(engine.clone(), Arc::new(adapter), DispatcherConfig::default());
    Ok((engine, helpdesk))
}

/// Serves the callback route; returns the engine and the callback URL.
async fn callback_server() -> Result<(bot_core::Engine, String)> {
    let engine = support::engine();
    let address = support::serve(callback_router(engine.clone(), secret())).await?;
    Ok((engine, format!("http://{address}{CALLBACK_PATH}")))
}

async fn post_signed(url: &str, body: &Value, timestamp: u64) -> Result<(u16, Value)> {
    let body = serde_json::to_vec(body)?;
    let signed = signature::sign(&secret(), timestamp, &body);
    post_raw(url, body, &timestamp.to_string(), &signed).await
}

async fn post_raw(url: &str, body: Vec<u8>, timestamp: &str, signed: &str) -> Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(url)
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signed)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

fn error_code(body: &Value) -> &str {
    body.pointer("/error/code").and_then(Value::as_str).unwrap_or_default()
}

#[tokio::test]
async fn handoff_posts_signed_transcript() -> Result<()> {
    let (engine, helpdesk) = forwarding_engine().await?;

    support::hand_off(&engine, "web:w1").await?;

    let received = helpdesk.wait_for(1).await?;
    let request = &received[0];
    let verified = Verifier::new().verify(&secret(), request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER), &request.body, signature::unix_now());
    assert_eq!(verified, Ok(()));
    assert_eq!(request.path, "/lepton");
    let body = request.json()?;
    assert_eq!(body["type"], "handoff_started");
    assert_eq!(body["conversation_id"], "web:w1");
    assert_eq!(body["channel"], "web");
    assert_eq!(body["lang"], "en");
    assert_eq!(body["reason"], "repeated_fallback");
    let transcript = body["transcript"].as_array().context("transcript is not a list")?;
    assert_eq!(transcript.len(), 4, "{transcript:#?}");
    assert_eq!(transcript[2]["kind"]["content"]["value"], "my parcel is wet");
    assert!(body["context"]["slots"].is_object());
    Ok(())
}

#[tokio::test]
async fn later_customer_message_is_forwarded_once() -> Result<()> {
    let (engine, helpdesk) = forwarding_engine().await?;
    support::hand_off(&engine, "web:w2").await?;
    helpdesk.wait_for(1).await?;

    engine.handle(InboundMessage::text("web:w2", "web", "hello? anyone?")).await?;

    let received = helpdesk.wait_for(2).await?;
    let body = received[1].json()?;
    assert_eq!(body["type"], "event");
    assert_eq!(body["event"]["kind"]["content"]["value"], "hello? anyone?");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(helpdesk.received().len(), 2, "{:#?}", helpdesk.received());
    Ok(())
}

#[tokio::test]
async fn helpdesk_failure_is_retried() -> Result<()> {
    let failures = Arc::new(std::sync::atomic::AtomicU32::new(2));
    let left = failures.clone();
    let helpdesk = FakeServer::new(move |_, _| {
        let failing = left.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing { (503, json!({})) } else { (200, json!({})) }
    });
    let address = helpdesk.start().await?;
    let engine = support::engine();
    let adapter = WebhookAdapter::new(WebhookConfig::new(format!("http://{address}/lepton"), secret()))?;
    let config = DispatcherConfig { retry_delay: std::time::Duration::from_millis(10), ..Default::default() };
    spawn_dispatcher(engine.clone(), Arc::new(adapter), config);

    support::hand_off(&engine, "web:w3").await?;

    let received = helpdesk.wait_for(3).await?;
    let types: Vec<Value> = received.iter().map(|r| r.json().map(|b| b["type"].clone())).collect::<Result<_>>()?;
    assert_eq!(types, vec![json!("handoff_started"); 3]);
    Ok(())
}

#[tokio::test]
async fn signed_reply_reaches_customer_then_close() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w4").await?;
    let now = signature::unix_now();

    let reply = json!({"type": "reply", "conversation_id": "web:w4", "agent": "alice", "text": "Hi, I'm Alice."});
    let (status, body) = post_signed(&url, &reply, now).await?;
    assert_eq!(status, 200, "{body}");
    let close = json!({"type": "close", "conversation_id": "web:w4", "agent": "alice"});
    let (status, body) = post_signed(&url, &close, now).await?;
    assert_eq!(status, 200, "{body}");

    let transcript = support::transcript(&engine, "web:w4").await?;
    let agent_reply = transcript.iter().filter_map(|event| event.reply()).find(|reply| reply.text == "Hi, I'm Alice.").context("agent reply missing")?;
    assert_eq!(agent_reply.author, Author::Agent { id: "webhook:alice".into() });
    assert_eq!(support::handoff_state(&engine, "web:w4").await?.name(), "closed");
    Ok(())
}

fn replies_by_agents(events: &[bot_core::Event]) -> usize {
    events.iter().filter_map(|event| event.reply()).filter(|reply| matches!(reply.author, Author::Agent { .. })).count()
}

#[tokio::test]
async fn reply_to_bot_conversation_is_rejected() -> Result<()> {
    let (engine, url) = callback_server().await?;
    engine.handle(InboundMessage::text("web:w10", "web", "blah")).await?;

    let reply = json!({"type": "reply", "conversation_id": "web:w10", "agent": "alice", "text": "Hi, I'm Alice."});
    let (status, body) = post_signed(&url, &reply, signature::unix_now()).await?;

    assert_eq!(status, 409, "{body}");
    assert_eq!(error_code(&body), "not_handed_off");
    assert_eq!(support::handoff_state(&engine, "web:w10").await?.name(), "bot");
    assert_eq!(replies_by_agents(&support::transcript(&engine, "web:w10").await?), 0);
    Ok(())
}

#[tokio::test]
async fn reply_after_hand_back_takes_over() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w11").await?;
    let now = signature::unix_now();
    let hand_back = json!({"type": "hand_back", "conversation_id": "web:w11", "agent": "alice"});
    post_signed(&url, &hand_back, now).await?;

    let reply = json!({"type": "reply", "conversation_id": "web:w11", "agent": "alice", "text": "One more thing."});
    let (status, body) = post_signed(&url, &reply, now).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(support::handoff_state(&engine, "web:w11").await?.name(), "agent");
    Ok(())
}

#[tokio::test]
async fn close_of_waiting_sends_only_closing_notice() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w12").await?;
    let before = support::transcript(&engine, "web:w12").await?.len();

    let close = json!({"type": "close", "conversation_id": "web:w12", "agent": "alice"});
    let (status, body) = post_signed(&url, &close, signature::unix_now()).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1), "only the closing notice: {body}");
    assert_eq!(support::transcript(&engine, "web:w12").await?.len(), before + 1);
    assert_eq!(support::handoff_state(&engine, "web:w12").await?.name(), "closed");
    Ok(())
}

#[tokio::test]
async fn hand_back_of_waiting_sends_only_return_notice() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w13").await?;

    let hand_back = json!({"type": "hand_back", "conversation_id": "web:w13", "agent": "alice"});
    let (status, body) = post_signed(&url, &hand_back, signature::unix_now()).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1), "only the hand-back notice: {body}");
    assert_eq!(support::handoff_state(&engine, "web:w13").await?.name(), "bot");
    Ok(())
}

#[tokio::test]
async fn joined_notice_shows_agent_name() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w14").await?;

    let claim = json!({"type": "claim", "conversation_id": "web:w14", "agent": "Mary_Ann"});
    let (status, body) = post_signed(&url, &claim, signature::unix_now()).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"][0]["kind"]["text"], "Mary Ann from our support team has joined the conversation.", "{body}");
    Ok(())
}

#[tokio::test]
async fn wrong_signature_is_rejected() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w5").await?;
    let now = signature::unix_now();
    let body = serde_json::to_vec(&json!({"type": "claim", "conversation_id": "web:w5", "agent": "mallory"}))?;
    let forged = signature::sign(&Secret::new("another-secret-0123456"), now, &body);

    let (status, answer) = post_raw(&url, body, &now.to_string(), &forged).await?;

    assert_eq!(status, 401);
    assert_eq!(error_code(&answer), "invalid_signature");
    assert_eq!(support::handoff_state(&engine, "web:w5").await?.name(), "waiting");
    Ok(())
}

#[tokio::test]
async fn stale_timestamp_is_rejected() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w6").await?;
    let claim = json!({"type": "claim", "conversation_id": "web:w6", "agent": "alice"});

    let (old_status, old) = post_signed(&url, &claim, signature::unix_now() - 301).await?;
    let (future_status, future) = post_signed(&url, &claim, signature::unix_now() + 400).await?;

    assert_eq!(old_status, 401);
    assert_eq!(error_code(&old), "stale_timestamp");
    assert_eq!(future_status, 401);
    assert_eq!(error_code(&future), "stale_timestamp");
    assert_eq!(support::handoff_state(&engine, "web:w6").await?.name(), "waiting");
    Ok(())
}

#[tokio::test]
async fn replayed_request_is_rejected() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w7").await?;
    let body = serde_json::to_vec(&json!({"type": "reply", "conversation_id": "web:w7", "agent": "alice", "text": "once"}))?;
    let now = signature::unix_now();
    let signed = signature::sign(&secret(), now, &body);

    let (first, _) = post_raw(&url, body.clone(), &now.to_string(), &signed).await?;
    let (second, answer) = post_raw(&url, body, &now.to_string(), &signed).await?;

    assert_eq!(first, 200);
    assert_eq!(second, 401);
    assert_eq!(error_code(&answer), "replayed_request");
    let replies = support::transcript(&engine, "web:w7").await?.iter().filter(|e| e.reply().is_some_and(|r| r.text == "once")).count();
    assert_eq!(replies, 1);
    Ok(())
}

#[tokio::test]
async fn invalid_agent_name_is_rejected() -> Result<()> {
    let (engine, url) = callback_server().await?;
    support::hand_off(&engine, "web:w8").await?;
    let claim = json!({"type": "claim", "conversation_id": "web:w8", "agent": "bob:admin"});

    let (status, answer) = post_signed(&url, &claim, signature::unix_now()).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&answer), "invalid_agent");
    Ok(())
}

#[tokio::test]
async fn helpdesk_note_is_not_sent_back() -> Result<()> {
    let helpdesk = FakeServer::new(|_, _| (200, json!({})));
    let address = helpdesk.start().await?;
    let engine = support::engine();
    let adapter = WebhookAdapter::new(WebhookConfig::new(format!("http://{address}/lepton"), secret()))?;
    spawn_dispatcher(engine.clone(), Arc::new(adapter), DispatcherConfig::default());
    let callback = support::serve(callback_router(engine.clone(), secret())).await?;
    support::hand_off(&engine, "web:w9").await?;
    helpdesk.wait_for(1).await?;

    let note = json!({"type": "note", "conversation_id": "web:w9", "agent": "alice", "text": "VIP customer"});
    let (status, _) = post_signed(&format!("http://{callback}{CALLBACK_PATH}"), &note, signature::unix_now()).await?;

    assert_eq!(status, 200);
    let noted = support::transcript(&engine, "web:w9").await?.iter().any(|e| matches!(&e.kind, EventKind::Note { text, .. } if text == "VIP customer"));
    assert!(noted);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(helpdesk.received().len(), 1, "{:#?}", helpdesk.received());
    Ok(())
}
