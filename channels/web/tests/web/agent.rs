//! The agent API: authentication, the waiting list, claiming, replying,
//! handing back and closing.

use std::time::Duration;

use anyhow::Result;
use bot_core::{Author, Event, HandoffState};
use lepton_web::WebConfig;
use serde_json::json;

use crate::support::{conversation, error_code, error_message, events_of, next_events, read_json, TestServer};

/// Sends the message that makes the test bot hand off to a person.
async fn hand_off(server: &TestServer, id: &str) -> Result<Vec<Event>> {
    server.say(id, "I want a person").await
}

fn handoff_state(event: &Event) -> Option<&HandoffState> {
    event.reply().and_then(|reply| reply.handoff.as_ref()).map(|notice| &notice.state)
}

#[tokio::test]
async fn waiting_list_shows_handed_off_conversation() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-waiting");
    hand_off(&server, &id).await?;

    let (status, body) = server.agent_get("").await?;
    let entry = &body["conversations"][0];
    assert_eq!(status, 200);
    assert_eq!(entry["conversation_id"], json!(id));
    assert_eq!(entry["channel"], json!("web"));
    assert_eq!(entry["lang"], json!("en"));
    assert_eq!(entry["reason"], json!("flow_step"));
    assert!(entry["since"].is_u64());
    assert!(entry["waiting_seconds"].is_u64());
    Ok(())
}

#[tokio::test]
async fn concurrent_claims_have_one_winner() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-race");
    hand_off(&server, &id).await?;

    let path = format!("/{id}/claim");
    let (alice, bob) = tokio::join!(
        server.agent_post(&path, json!({ "agent": "alice" })),
        server.agent_post(&path, json!({ "agent": "bob" })),
    );
    let (alice, bob) = (alice?, bob?);

    let mut statuses = [alice.0, bob.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let (loser_body, winner) = if alice.0 == 409 { (&alice.1, "bob") } else { (&bob.1, "alice") };
    assert_eq!(error_code(loser_body), "already_claimed");
    assert!(error_message(loser_body).contains(&format!("already claimed by {winner}")), "{loser_body}");
    Ok(())
}

#[tokio::test]
async fn claim_reply_handback_reach_customer_socket() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-flow");
    hand_off(&server, &id).await?;
    let mut socket = server.connect(&id, 2).await?;

    let (claim_status, claim) = server.agent_post(&format!("/{id}/claim"), json!({ "agent": "alice" })).await?;
    let joined = next_events(&mut socket, 1).await?;
    assert_eq!(claim_status, 200);
    assert_eq!(events_of(&claim)?, joined);
    assert!(matches!(handoff_state(&joined[0]), Some(HandoffState::Agent { agent, .. }) if agent.as_str() == "alice"));

    let body = json!({ "agent": "alice", "text": "Hi, I'm \u{0}Alice. 我来帮您。" });
    let (reply_status, reply) = server.agent_post(&format!("/{id}/messages"), body).await?;
    let received = next_events(&mut socket, 1).await?;
    assert_eq!(reply_status, 200);
    assert_eq!(serde_json::from_value::<Event>(reply["event"].clone())?, received[0]);
    let agent_reply = received[0].reply().map(|reply| (&reply.author, reply.text.as_str()));
    assert!(matches!(agent_reply, Some((Author::Agent { id }, "Hi, I'm Alice. 我来帮您。")) if id.as_str() == "alice"));

    let (back_status, _) = server.agent_post(&format!("/{id}/handback"), json!({ "agent": "alice" })).await?;
    let returned = next_events(&mut socket, 1).await?;
    assert_eq!(back_status, 200);
    assert!(matches!(handoff_state(&returned[0]), Some(HandoffState::Bot)));
    Ok(())
}

#[tokio::test]
async fn agent_reply_has_bidi_controls_stripped() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-bidi");
    hand_off(&server, &id).await?;
    server.agent_post(&format!("/{id}/claim"), json!({ "agent": "alice" })).await?;

    let body = json!({ "agent": "alice", "text": "refund \u{202E}00.05\u{202C} ok \u{2066}x\u{2069}" });
    let (status, reply) = server.agent_post(&format!("/{id}/messages"), body).await?;
    assert_eq!(status, 200);
    assert_eq!(reply["event"]["kind"]["text"], json!("refund 00.05 ok x"));
    Ok(())
}

#[tokio::test]
async fn close_ends_conversation() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-close");
    hand_off(&server, &id).await?;
    server.agent_post(&format!("/{id}/claim"), json!({ "agent": "alice" })).await?;

    let (status, body) = server.agent_post(&format!("/{id}/close"), json!({ "agent": "alice" })).await?;
    let events = events_of(&body)?;
    assert_eq!(status, 200);
    assert!(matches!(events.last().and_then(handoff_state), Some(HandoffState::Closed { .. })));
    Ok(())
}

#[tokio::test]
async fn reply_from_non_owner_is_rejected() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-owner");
    hand_off(&server, &id).await?;
    server.agent_post(&format!("/{id}/claim"), json!({ "agent": "alice" })).await?;

    let body = json!({ "agent": "bob", "text": "hello" });
    let (status, body) = server.agent_post(&format!("/{id}/messages"), body).await?;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "not_owner");
    Ok(())
}

#[tokio::test]
async fn agent_events_include_understanding() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-events");
    server.say(&id, "hello").await?;

    let (status, body) = server.agent_get(&format!("/{id}/events?after=0")).await?;
    assert_eq!(status, 200);
    assert_eq!(body["events"][0]["kind"]["understanding"]["intent"], json!("greet"));
    assert_eq!(events_of(&body)?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn agent_events_zero_limit_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-zero-limit");
    server.say(&id, "hello").await?;

    let (status, body) = server.agent_get(&format!("/{id}/events?limit=0")).await?;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_query");
    Ok(())
}

#[tokio::test]
async fn wrong_bearer_token_is_rejected() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url("/api/v1/agent/conversations");

    let wrong = server.http.get(&url).bearer_auth("not-the-token").send().await?;
    let www_authenticate = wrong.headers().get("www-authenticate").cloned();
    let (status, body) = read_json(wrong).await?;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "unauthorized");
    assert_eq!(www_authenticate.as_ref().and_then(|v| v.to_str().ok()), Some("Bearer"));

    let (missing_status, _) = read_json(server.http.get(&url).send().await?).await?;
    assert_eq!(missing_status, 401);
    Ok(())
}

#[tokio::test]
async fn wrong_token_cannot_claim() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-token-claim");
    hand_off(&server, &id).await?;

    let url = server.url(&format!("/api/v1/agent/conversations/{id}/claim"));
    let response = server.http.post(url).bearer_auth("guess").json(&json!({ "agent": "mallory" })).send().await?;
    let (status, _) = read_json(response).await?;
    assert_eq!(status, 401);

    let (_, waiting) = server.agent_get("").await?;
    assert_eq!(waiting["conversations"][0]["conversation_id"], json!(id));
    Ok(())
}

#[tokio::test]
async fn loopback_is_accepted_without_token() -> Result<()> {
    let server = TestServer::start_with(WebConfig::default()).await?;
    let response = server.http.get(server.url("/api/v1/agent/conversations")).send().await?;
    let (status, body) = read_json(response).await?;

    assert_eq!(status, 200);
    assert_eq!(body["conversations"], json!([]));
    Ok(())
}

#[tokio::test]
async fn invalid_agent_id_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-bad-name");
    hand_off(&server, &id).await?;

    let (status, body) = server.agent_post(&format!("/{id}/claim"), json!({ "agent": "" })).await?;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_agent_id");
    Ok(())
}

#[tokio::test]
async fn claim_of_closed_conversation_returns_409() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-closed");
    hand_off(&server, &id).await?;
    server.agent_post(&format!("/{id}/claim"), json!({ "agent": "alice" })).await?;
    server.agent_post(&format!("/{id}/close"), json!({ "agent": "alice" })).await?;

    let (status, body) = server.agent_post(&format!("/{id}/claim"), json!({ "agent": "bob" })).await?;
    assert_eq!(status, 409);
    assert_eq!(error_code(&body), "not_waiting");
    Ok(())
}

#[tokio::test]
async fn waiting_seconds_grow() -> Result<()> {
    let server = TestServer::start().await?;
    hand_off(&server, &conversation("agent-clock")).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (_, body) = server.agent_get("").await?;
    assert!(body["conversations"][0]["waiting_seconds"].as_u64() >= Some(1));
    Ok(())
}

#[tokio::test]
async fn reload_needs_agent_token() -> Result<()> {
    let server = TestServer::start().await?;

    let response = server.http.post(server.url("/api/v1/admin/reload")).send().await?;

    assert_eq!(response.status().as_u16(), 401);
    Ok(())
}

#[tokio::test]
async fn reload_without_reloader_is_not_found() -> Result<()> {
    let server = TestServer::start().await?;

    let response = server.http.post(server.url("/api/v1/admin/reload")).bearer_auth(crate::support::AGENT_TOKEN).send().await?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await?;

    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "reload_unavailable");
    Ok(())
}

#[tokio::test]
async fn notes_never_reach_the_customer() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-note");
    let handed_off = hand_off(&server, &id).await?;
    let mut socket = server.connect(&id, 0).await?;
    next_events(&mut socket, handed_off.len()).await?;
    let alice = bot_core::AgentId::new("alice");
    server.engine.claim(&id.as_str().into(), &alice).await?;
    let joined = next_events(&mut socket, 1).await?;

    let note = server.engine.add_note(&id.as_str().into(), &alice, "refund approved by Bob").await?;
    let reply = server.engine.agent_reply(&id.as_str().into(), &alice, "Your refund is on its way.").await?;
    let live = next_events(&mut socket, 1).await?;
    let mut replayed = server.connect(&id, joined[0].seq).await?;
    let after_reconnect = next_events(&mut replayed, 1).await?;
    let (status, transcript) = read_json(reqwest::get(server.url(&format!("/api/v1/conversations/{id}/events"))).await?).await?;

    assert_eq!(live, [reply.clone()], "the socket skips the note and goes on");
    assert_eq!(after_reconnect, [reply], "a replay skips the note too");
    assert_eq!(status, 200);
    let seqs: Vec<u64> = events_of(&transcript)?.iter().map(|event| event.seq).collect();
    assert!(!seqs.contains(&note.seq), "the transcript route returned the note: {seqs:?}");
    assert_eq!(seqs.last(), Some(&(note.seq + 1)), "events after the note are returned: {seqs:?}");
    Ok(())
}

#[tokio::test]
async fn transcript_page_reads_past_notes() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("agent-note-page");
    let handed_off = hand_off(&server, &id).await?;
    let alice = bot_core::AgentId::new("alice");
    server.engine.claim(&id.as_str().into(), &alice).await?;
    for i in 0..3 {
        server.engine.add_note(&id.as_str().into(), &alice, &format!("note {i}")).await?;
    }
    let reply = server.engine.agent_reply(&id.as_str().into(), &alice, "Back with an answer.").await?;
    let after = handed_off.last().map_or(0, |event| event.seq) + 1;

    let path = format!("/api/v1/conversations/{id}/events?after={after}&limit=2");
    let (status, body) = read_json(reqwest::get(server.url(&path)).await?).await?;

    assert_eq!(status, 200);
    assert_eq!(events_of(&body)?, [reply], "the page skips the three notes and ends at the reply");
    Ok(())
}
