//! The Chatwoot adapter against a fake Chatwoot API, and Chatwoot's webhook.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::Method;
use bot_core::handoff_adapter::{spawn_dispatcher, DispatcherConfig};
use bot_core::{Author, InboundMessage};
use lepton_handoff::chatwoot::callback_router;
use lepton_handoff::{ChatwootAdapter, ChatwootConfig, Secret};
use serde_json::{json, Value};

use crate::support::{self, FakeServer, Received};

const API_TOKEN: &str = "chatwoot-api-token";
const CALLBACK_TOKEN: &str = "callback-token-0123456789";
const ACCOUNT: u64 = 3;
const INBOX: u64 = 7;

fn config(url: String) -> ChatwootConfig {
    ChatwootConfig {
        url,
        account_id: ACCOUNT,
        inbox_id: INBOX,
        api_token: Secret::new(API_TOKEN),
        callback_token: Secret::new(CALLBACK_TOKEN),
        webhook_secret: None,
        timeout: Duration::from_secs(5),
    }
}

/// Builds a fake Chatwoot with no contacts, which creates contact 501 and conversation 900.
fn fake_chatwoot() -> FakeServer {
    FakeServer::new(|method, path| {
        let base = format!("/api/v1/accounts/{ACCOUNT}");
        let rest = path.strip_prefix(&base).unwrap_or(path);
        match (method.clone(), rest) {
            (Method::GET, "/contacts/search") => (200, json!({"meta": {"count": 0}, "payload": []})),
            (Method::POST, "/contacts") => (200, json!({"payload": {"contact": {"id": 501, "identifier": "web:c1", "contact_inboxes": []}, "contact_inbox": {"source_id": "src-501", "inbox": {"id": INBOX}}}})),
            (Method::POST, "/conversations") => (200, json!({"id": 900, "inbox_id": INBOX, "status": "open"})),
            (Method::POST, "/conversations/900/messages") => (200, json!({"id": 1})),
            (Method::POST, "/conversations/900/toggle_status") => (200, json!({"payload": {"success": true, "current_status": "open"}})),
            _ => (404, json!({"error": "not found"})),
        }
    })
}

fn path_of(request: &Received) -> String {
    format!("{} {}", request.method, request.path.trim_start_matches(&format!("/api/v1/accounts/{ACCOUNT}")))
}

#[tokio::test]
async fn handoff_creates_conversation_with_transcript() -> Result<()> {
    let chatwoot = fake_chatwoot();
    let address = chatwoot.start().await?;
    let engine = support::engine();
    let adapter = ChatwootAdapter::new(&config(format!("http://{address}")))?;
    spawn_dispatcher(engine.clone(), Arc::new(adapter), DispatcherConfig::default());

    support::hand_off(&engine, "web:c1").await?;

    // search, contact, conversation, context note, 4 transcript events, open.
    let received = chatwoot.wait_for(9).await?;
    let calls: Vec<String> = received.iter().map(path_of).collect();
    let mut expected = vec!["GET /contacts/search", "POST /contacts", "POST /conversations"];
    expected.extend(["POST /conversations/900/messages"; 5]);
    expected.push("POST /conversations/900/toggle_status");
    assert_eq!(calls, expected);
    for request in &received {
        assert_eq!(request.header("api_access_token"), Some(API_TOKEN), "{}", path_of(request));
    }
    assert_eq!(support::query_map(&received[0].query).get("q").map(String::as_str), Some("web%3Ac1"));

    let contact = received[1].json()?;
    assert_eq!(contact["inbox_id"], INBOX);
    assert_eq!(contact["identifier"], "web:c1");
    let conversation = received[2].json()?;
    assert_eq!(conversation["source_id"], "src-501");
    assert_eq!(conversation["contact_id"], 501);
    assert_eq!(conversation["inbox_id"], INBOX);
    assert_eq!(conversation["custom_attributes"]["lepton_conversation_id"], "web:c1");

    let messages: Vec<Value> = received[3..8].iter().map(Received::json).collect::<Result<_>>()?;
    assert_eq!(messages[0]["private"], true);
    assert!(messages[0]["content"].as_str().unwrap_or_default().contains("Reason / 原因"), "{}", messages[0]);
    assert_eq!(messages[1], json!({"content": "blah", "message_type": "incoming", "private": false}));
    assert_eq!(messages[2]["private"], true);
    assert_eq!(messages[2]["message_type"], "outgoing");
    assert!(messages[2]["content"].as_str().unwrap_or_default().starts_with("Bot / 机器人: "), "{}", messages[2]);
    assert_eq!(messages[3], json!({"content": "my parcel is wet", "message_type": "incoming", "private": false}));
    assert_eq!(messages[4]["private"], true);
    assert_eq!(received[8].json()?, json!({"status": "open"}));

    engine.handle(InboundMessage::text("web:c1", "web", "still there?")).await?;
    let received = chatwoot.wait_for(10).await?;
    assert_eq!(path_of(&received[9]), "POST /conversations/900/messages");
    assert_eq!(received[9].json()?, json!({"content": "still there?", "message_type": "incoming", "private": false}));
    Ok(())
}

/// Serves the Chatwoot callback; returns the engine and the callback URL with `token`.
async fn callback_server(token: &str) -> Result<(bot_core::Engine, String)> {
    let engine = support::engine();
    let address = support::serve(callback_router(engine.clone(), &config("http://127.0.0.1:9".to_owned()))).await?;
    Ok((engine, format!("http://{address}/api/v1/handoff/chatwoot/callback/{token}")))
}

async fn post(url: &str, body: &Value) -> Result<(u16, Value)> {
    let response = reqwest::Client::new().post(url).json(body).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

fn conversation(lepton_id: &str, status: &str) -> Value {
    json!({
        "id": 900,
        "inbox_id": INBOX,
        "status": status,
        "custom_attributes": {"lepton_conversation_id": lepton_id},
        "meta": {"sender": {"id": 501, "identifier": lepton_id, "type": "contact"}, "assignee": {"id": 4, "name": "John Smith", "type": "user"}},
    })
}

fn message_created(id: u64, lepton_id: &str, content: &str, message_type: &str, private: bool, sender_type: &str) -> Value {
    json!({
        "event": "message_created",
        "id": id,
        "content": content,
        "message_type": message_type,
        "private": private,
        "content_type": "text",
        "sender": {"id": 4, "name": "John Smith", "available_name": "John Smith", "type": sender_type},
        "inbox": {"id": INBOX, "name": "Lepton"},
        "conversation": conversation(lepton_id, "open"),
        "account": {"id": ACCOUNT},
    })
}

fn agent_replies(events: &[bot_core::Event]) -> Vec<(Author, String)> {
    events.iter().filter_map(|event| event.reply()).filter(|reply| matches!(reply.author, Author::Agent { .. })).map(|reply| (reply.author.clone(), reply.text.clone())).collect()
}

#[tokio::test]
async fn agent_message_reaches_customer() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c2").await?;

    let (status, body) = post(&url, &message_created(11, "web:c2", "Hello from Chatwoot", "outgoing", false, "user")).await?;

    assert_eq!(status, 200, "{body}");
    let replies = agent_replies(&support::transcript(&engine, "web:c2").await?);
    assert_eq!(replies, vec![(Author::Agent { id: "chatwoot:John_Smith".into() }, "Hello from Chatwoot".to_owned())]);
    assert_eq!(support::handoff_state(&engine, "web:c2").await?.name(), "agent");
    Ok(())
}

#[tokio::test]
async fn resolved_status_closes_conversation() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c3").await?;
    let mut resolved = conversation("web:c3", "resolved");
    resolved["event"] = json!("conversation_status_changed");

    let (status, body) = post(&url, &resolved).await?;
    let (again, _) = post(&url, &resolved).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(again, 200);
    assert_eq!(support::handoff_state(&engine, "web:c3").await?.name(), "closed");
    Ok(())
}

#[tokio::test]
async fn resolve_by_team_sends_no_transfer_notice() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c8").await?;
    post(&url, &message_created(21, "web:c8", "Hello from Chatwoot", "outgoing", false, "user")).await?;
    let before = support::transcript(&engine, "web:c8").await?.len();
    let mut resolved = conversation("web:c8", "resolved");
    resolved["event"] = json!("conversation_status_changed");
    resolved["meta"]["assignee"] = Value::Null;

    let (status, body) = post(&url, &resolved).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(support::transcript(&engine, "web:c8").await?.len(), before + 1, "only the closing notice is added");
    assert_eq!(support::handoff_state(&engine, "web:c8").await?.name(), "closed");
    Ok(())
}

#[tokio::test]
async fn resolve_of_waiting_sends_only_closing_notice() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c9").await?;
    let before = support::transcript(&engine, "web:c9").await?.len();
    let mut resolved = conversation("web:c9", "resolved");
    resolved["event"] = json!("conversation_status_changed");

    let (status, body) = post(&url, &resolved).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(support::transcript(&engine, "web:c9").await?.len(), before + 1, "only the closing notice is added");
    assert_eq!(support::handoff_state(&engine, "web:c9").await?.name(), "closed");
    Ok(())
}

#[tokio::test]
async fn events_without_configured_inbox_are_ignored() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c10").await?;
    let before = support::transcript(&engine, "web:c10").await?.len();

    let mut no_inbox = message_created(51, "web:c10", "no inbox", "outgoing", false, "user");
    no_inbox["conversation"].as_object_mut().context("conversation is no object")?.remove("inbox_id");
    no_inbox.as_object_mut().context("message is no object")?.remove("inbox");
    let mut other_inbox = message_created(52, "web:c10", "other inbox", "outgoing", false, "user");
    other_inbox["conversation"]["inbox_id"] = json!(INBOX + 1);
    other_inbox["inbox"]["id"] = json!(INBOX + 1);
    let mut status_no_inbox = conversation("web:c10", "resolved");
    status_no_inbox["event"] = json!("conversation_status_changed");
    status_no_inbox.as_object_mut().context("conversation is no object")?.remove("inbox_id");

    let cases = [(no_inbox, "event without inbox"), (other_inbox, "another inbox"), (status_no_inbox, "event without inbox")];
    for (case, reason) in &cases {
        let (status, body) = post(&url, case).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ignored"], *reason, "{body}");
    }

    assert_eq!(support::transcript(&engine, "web:c10").await?.len(), before);
    assert_eq!(support::handoff_state(&engine, "web:c10").await?.name(), "waiting");
    Ok(())
}

#[tokio::test]
async fn message_with_only_event_inbox_is_sent() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c11").await?;
    let mut message = message_created(61, "web:c11", "Hello", "outgoing", false, "user");
    message["conversation"].as_object_mut().context("conversation is no object")?.remove("inbox_id");

    let (status, body) = post(&url, &message).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(agent_replies(&support::transcript(&engine, "web:c11").await?).len(), 1);
    Ok(())
}

#[tokio::test]
async fn reply_to_bot_conversation_is_ignored() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    engine.handle(InboundMessage::text("web:c12", "web", "blah")).await?;

    let (status, body) = post(&url, &message_created(71, "web:c12", "Hello from Chatwoot", "outgoing", false, "user")).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ignored"], "conversation not handed off", "{body}");
    assert!(agent_replies(&support::transcript(&engine, "web:c12").await?).is_empty());
    assert_eq!(support::handoff_state(&engine, "web:c12").await?.name(), "bot");
    Ok(())
}

#[tokio::test]
async fn joined_notice_shows_agent_name() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c13").await?;

    post(&url, &message_created(81, "web:c13", "Hello from Chatwoot", "outgoing", false, "user")).await?;

    let texts: Vec<String> = support::transcript(&engine, "web:c13").await?.iter().filter_map(|event| event.reply()).map(|reply| reply.text.clone()).collect();
    assert!(texts.iter().any(|text| text == "John Smith from our support team has joined the conversation."), "{texts:#?}");
    assert!(!texts.iter().any(|text| text.contains("chatwoot:")), "{texts:#?}");
    Ok(())
}

#[tokio::test]
async fn pending_status_hands_back_to_bot() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c4").await?;
    let mut pending = conversation("web:c4", "pending");
    pending["event"] = json!("conversation_status_changed");

    let (status, body) = post(&url, &pending).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(support::handoff_state(&engine, "web:c4").await?.name(), "bot");
    Ok(())
}

#[tokio::test]
async fn own_and_private_messages_are_ignored() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c5").await?;
    let before = support::transcript(&engine, "web:c5").await?.len();

    let cases = [
        message_created(21, "web:c5", "Bot / 机器人: echo", "outgoing", true, "user"),
        message_created(22, "web:c5", "blah", "incoming", false, "contact"),
        message_created(23, "web:c5", "from a bot", "outgoing", false, "agent_bot"),
    ];
    for case in &cases {
        let (status, body) = post(&url, case).await?;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("ignored").is_some(), "{body}");
    }

    assert_eq!(support::transcript(&engine, "web:c5").await?.len(), before);
    assert_eq!(support::handoff_state(&engine, "web:c5").await?.name(), "waiting");
    Ok(())
}

#[tokio::test]
async fn repeated_delivery_is_sent_once() -> Result<()> {
    let (engine, url) = callback_server(CALLBACK_TOKEN).await?;
    support::hand_off(&engine, "web:c6").await?;
    let message = message_created(31, "web:c6", "only once", "outgoing", false, "user");

    post(&url, &message).await?;
    let (status, body) = post(&url, &message).await?;

    assert_eq!(status, 200);
    assert_eq!(body["ignored"], "message delivered before");
    assert_eq!(agent_replies(&support::transcript(&engine, "web:c6").await?).len(), 1);
    Ok(())
}

#[tokio::test]
async fn wrong_callback_token_is_rejected() -> Result<()> {
    let (engine, url) = callback_server("not-the-token").await?;
    support::hand_off(&engine, "web:c7").await?;

    let (status, body) = post(&url, &message_created(41, "web:c7", "sneaky", "outgoing", false, "user")).await?;

    assert_eq!(status, 401);
    assert_eq!(body.pointer("/error/code").and_then(Value::as_str), Some("invalid_token"));
    assert!(agent_replies(&support::transcript(&engine, "web:c7").await?).is_empty());
    Ok(())
}

#[tokio::test]
async fn hand_back_in_lepton_resolves_in_chatwoot() -> Result<()> {
    let chatwoot = fake_chatwoot();
    let address = chatwoot.start().await?;
    let engine = support::engine();
    let config = config(format!("http://{address}"));
    spawn_dispatcher(engine.clone(), Arc::new(ChatwootAdapter::new(&config)?), DispatcherConfig::default());
    support::hand_off(&engine, "web:c8").await?;
    chatwoot.wait_for(9).await?;

    let agent = bot_core::AgentId::new("alice");
    engine.claim(&"web:c8".into(), &agent).await?;
    engine.hand_back(&"web:c8".into(), &agent).await?;

    // claim notice note, hand-back note, resolve.
    let received = chatwoot.wait_for(12).await?;
    let last = received.last().context("no request")?;
    assert_eq!(path_of(last), "POST /conversations/900/toggle_status");
    assert_eq!(last.json()?, json!({"status": "resolved"}));
    Ok(())
}
