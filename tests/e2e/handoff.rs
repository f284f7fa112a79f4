//! Handoff: repeated fallbacks hand the conversation to an agent, whose reply
//! reaches the customer over WebSocket; the bot answers again after hand-back.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Agent, Customer, Server};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads WebSocket events until one matches, failing after 10 s.
async fn next_matching(socket: &mut Socket, matches: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.context("no matching event within 10 s")?;
        let frame = frame.context("socket closed")??;
        if let Message::Text(text) = frame {
            let event: Value = serde_json::from_str(&text)?;
            if matches(&event) {
                return Ok(event);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fallbacks_hand_off_to_an_agent_and_back() -> anyhow::Result<()> {
    let server = Server::start()?;
    let conversation = "handoff-1";
    let mut customer = Customer::new(&server, conversation);
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url(conversation, 0)).await?;

    let first = customer.send("blorf snarkle quux").await?;
    let second = customer.send("zibble wop frazz").await?;
    let notice = second["events"].as_array().and_then(|events| events.iter().find(|e| !e["kind"]["handoff"].is_null()));
    assert!(first["events"].as_array().is_some_and(|e| e.len() == 2), "expected one fallback reply, got {first}");
    assert!(notice.is_some(), "expected a handoff notice after the second fallback, got {second}");

    let alice = Agent::new(&server, "alice");
    let bob = Agent::new(&server, "bob");
    let waiting = alice.waiting().await?;
    assert!(waiting.to_string().contains(conversation), "expected {conversation} in the waiting list, got {waiting}");

    let (alice_claim, bob_claim) = tokio::join!(alice.act(conversation, "claim", None), bob.act(conversation, "claim", None));
    let statuses = [alice_claim?.0, bob_claim?.0];
    assert!(statuses.contains(&200), "expected one claim to win, got {statuses:?}");
    assert!(statuses.contains(&409), "expected one claim to get 409, got {statuses:?}");
    let owner = if statuses[0] == 200 { &alice } else { &bob };

    let silent = customer.send("hello? is anyone there").await?;
    assert_eq!(silent["events"].as_array().map(Vec::len), Some(1), "the bot must stay silent while an agent owns the chat: {silent}");

    let (status, _) = owner.act(conversation, "messages", Some("Hi, I'm here to help.")).await?;
    assert_eq!(status, 200);
    let agent_event = next_matching(&mut socket, |e| e["kind"]["text"] == "Hi, I'm here to help.").await?;
    assert_eq!(agent_event["kind"]["author"]["type"], "agent");

    let (status, _) = owner.act(conversation, "handback", None).await?;
    assert_eq!(status, 200);
    let replies = customer.say("where is my order").await?;
    assert!(replies.join("\n").contains("order number"), "expected the bot to answer after hand-back, got {replies:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn asking_for_a_person_hands_off() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "handoff-zh");

    let body = customer.send("我要转人工客服").await?;

    let events = body["events"].as_array().cloned().unwrap_or_default();
    let waiting = events.iter().any(|e| e["kind"]["handoff"]["state"]["state"] == "waiting_for_agent");
    assert!(waiting, "expected a waiting-for-agent notice, got {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_reconnect_replays_missed_events() -> anyhow::Result<()> {
    let server = Server::start()?;
    let conversation = "replay";
    let mut customer = Customer::new(&server, conversation);
    customer.say("hello").await?;
    customer.say("what are your opening hours").await?;

    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url(conversation, 2)).await?;
    let first = next_matching(&mut socket, |_| true).await?;

    assert_eq!(first["seq"], 3, "expected the replay to start after seq 2, got {first}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_customer_gets_no_agent_offer() -> anyhow::Result<()> {
    let root = crate::harness::temp_dir("no-agent-offer");
    let (bot, data) = (root.join("bot"), root.join("data"));
    crate::harness::copy_dir(&crate::harness::demo_dir(), &bot)?;
    crate::harness::copy_dir(&crate::harness::shared_data_dir()?, &data)?;
    let settings = std::fs::read_to_string(bot.join("bot.yml"))?;
    anyhow::ensure!(settings.contains("    after_fallbacks: 2\n"), "the demo's bot.yml changed: {settings}");
    std::fs::write(bot.join("bot.yml"), settings.replacen("    after_fallbacks: 2\n", "    after_fallbacks: 2\n    no_agent_after_seconds: 1\n", 1))?;
    let server = Server::start_bot(&bot, &data, &["--no-watch", "--store", "memory"], &[])?;
    let conversation = "no-agent";
    let mut customer = Customer::new(&server, conversation);
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url(conversation, 0)).await?;

    customer.send("我要转人工客服").await?;
    // The server checks every 5 s, so the offer comes within about 6 s.
    let offer = next_matching(&mut socket, |e| e["kind"]["text"].as_str().is_some_and(|text| text.contains("客服暂时都在忙"))).await?;

    assert_eq!(offer["kind"]["author"]["type"], "bot");
    Ok(())
}
