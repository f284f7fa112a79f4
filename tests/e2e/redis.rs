//! Several `lepton serve` processes sharing one Redis: conversations whose
//! messages alternate between them, concurrent messages of one conversation,
//! an agent on one server answering a customer connected to the other, and
//! Redis crashing in the middle of traffic.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{reply_texts, Agent, Customer, Server};
use crate::redis_harness::{serve_on_redis, RedisServer};

fn joined(replies: &[String]) -> String {
    replies.join("\n")
}

/// Reads the whole transcript of a conversation from a server.
async fn transcript(server: &Server, conversation: &str) -> anyhow::Result<Vec<Value>> {
    let url = format!("{}/api/v1/conversations/{conversation}/events?after=0&limit=500", server.url);
    let body: Value = reqwest::get(url).await?.json().await?;
    Ok(body["events"].as_array().cloned().unwrap_or_default())
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().filter_map(|e| e["seq"].as_u64()).collect()
}

/// Runs the order form with its messages alternating between `a` and `b`.
async fn order_form_across(a: &Server, b: &Server, conversation: String) -> anyhow::Result<()> {
    let mut customer = Customer::new(a, &conversation);
    let prompt = customer.say("where is my order?").await?;
    customer.base = b.url.clone();
    let invalid = customer.say("12345").await?;
    customer.base = a.url.clone();
    let found = customer.say("it's 100001").await?;
    customer.base = b.url.clone();
    let thanks = customer.say("thank you").await?;

    assert!(joined(&prompt).contains("order number"), "{conversation}: expected the order-number prompt, got {prompt:?}");
    assert!(joined(&invalid).contains("6 digits"), "{conversation}: expected the invalid-number message, got {invalid:?}");
    assert!(joined(&found).contains("shipped"), "{conversation}: expected order 100001 shipped, got {found:?}");
    assert!(!thanks.is_empty(), "{conversation}: no reply to thanks");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn conversations_alternate_between_instances() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let a = serve_on_redis(&redis, "alternate")?;
    let b = serve_on_redis(&redis, "alternate")?;

    let runs = (0..20).map(|i| order_form_across(&a, &b, format!("alternate-{i}")));
    for result in futures_util::future::join_all(runs).await {
        result?;
    }

    for i in 0..20 {
        let events = transcript(&b, &format!("alternate-{i}")).await?;
        let expected: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(seqs(&events), expected, "alternate-{i}: transcript seqs are not gap-free and ordered");
        let customer_messages = events.iter().filter(|e| e["kind"]["type"] == "customer").count();
        assert_eq!(customer_messages, 4, "alternate-{i}: customer messages in the transcript");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn simultaneous_messages_on_two_instances_both_run() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let a = serve_on_redis(&redis, "simultaneous")?;
    let b = serve_on_redis(&redis, "simultaneous")?;

    for i in 0..10 {
        let conversation = format!("simultaneous-{i}");
        let mut on_a = Customer::new(&a, &conversation);
        let mut on_b = Customer::new(&b, &conversation);
        on_b.sent = 100;
        on_a.say("where is my order?").await?;

        // The order number and a question reach the two servers at once.
        let (number, question) = tokio::join!(on_a.send("100001"), on_b.send("what are your opening hours"));
        let (number, question) = (number?, question?);

        let events = transcript(&a, &conversation).await?;
        let expected: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(seqs(&events), expected, "{conversation}: transcript seqs are not gap-free and ordered");
        let number_seqs = seqs(number["events"].as_array().context("events")?);
        let question_seqs = seqs(question["events"].as_array().context("events")?);
        let disjoint = number_seqs.last() < question_seqs.first() || question_seqs.last() < number_seqs.first();
        assert!(disjoint, "{conversation}: the two turns interleaved: {number_seqs:?} and {question_seqs:?}");
        let all = format!("{}\n{}", joined(&reply_texts(&number)), joined(&reply_texts(&question)));
        assert!(all.contains("shipped"), "{conversation}: the order number was lost: {all}");
    }
    Ok(())
}

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
async fn agent_on_other_instance_reaches_customer() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let a = serve_on_redis(&redis, "agent-across")?;
    let b = serve_on_redis(&redis, "agent-across")?;
    let conversation = "agent-across-1";
    let (mut socket, _) = tokio_tungstenite::connect_async(a.ws_url(conversation, 0)).await?;
    let mut customer = Customer::new(&a, conversation);
    customer.say("我要转人工客服").await?;

    let alice = Agent::new(&b, "alice");
    let waiting = alice.waiting().await?;
    let (claimed, _) = alice.act(conversation, "claim", None).await?;
    let (replied, _) = alice.act(conversation, "messages", Some("你好，我是客服 Alice。")).await?;
    let event = next_matching(&mut socket, |e| e["kind"]["text"] == "你好，我是客服 Alice。").await?;

    assert!(waiting.to_string().contains(conversation), "server B does not list {conversation} as waiting: {waiting}");
    assert_eq!(claimed, 200, "claim on server B");
    assert_eq!(replied, 200, "agent reply on server B");
    assert_eq!(event["kind"]["author"]["type"], "agent");
    Ok(())
}

/// One customer's traffic: `count` messages, each sent until the server
/// accepts it. Returns the client message ids the server acknowledged and how
/// many attempts failed, checking that every failure is a JSON 503.
async fn send_until_accepted(server_urls: [String; 2], conversation: String, count: usize) -> anyhow::Result<(Vec<String>, usize)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    for n in 0..count {
        let id = format!("{conversation}-m{n}");
        let mut attempt = 0;
        loop {
            let base = &server_urls[(n + attempt) % 2];
            let url = format!("{base}/api/v1/conversations/{conversation}/messages");
            let body = json!({ "text": if n % 2 == 0 { "where is my order?" } else { "100001" }, "client_message_id": id });
            let response = client.post(url).json(&body).send().await.context("a request hung or the server closed the connection")?;
            let status = response.status();
            let body: Value = response.json().await.context("the response is not JSON")?;
            if status == reqwest::StatusCode::OK {
                anyhow::ensure!(!reply_texts(&body).is_empty(), "{conversation}: accepted {id} without a reply: {body}");
                acknowledged.push(id);
                break;
            }
            anyhow::ensure!(status == reqwest::StatusCode::SERVICE_UNAVAILABLE, "{conversation}: {id} failed with {status}: {body}");
            let code = body["error"]["code"].as_str().unwrap_or_default();
            anyhow::ensure!(code == "unavailable" || code == "busy", "{conversation}: 503 with code {code:?}: {body}");
            failures += 1;
            attempt += 1;
            anyhow::ensure!(attempt < 200, "{conversation}: {id} still failing after 200 attempts");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok((acknowledged, failures))
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_crash_during_traffic_recovers() -> anyhow::Result<()> {
    let mut redis = RedisServer::start()?;
    let a = serve_on_redis(&redis, "crash")?;
    let b = serve_on_redis(&redis, "crash")?;
    let urls = [a.url.clone(), b.url.clone()];

    let traffic: Vec<_> = (0..8).map(|i| tokio::spawn(send_until_accepted(urls.clone(), format!("crash-{i}"), 40))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart()?;

    let mut failures = 0;
    for (i, run) in traffic.into_iter().enumerate() {
        let (acknowledged, failed) = run.await??;
        failures += failed;
        let events = transcript(&a, &format!("crash-{i}")).await?;
        let stored: Vec<&str> = events.iter().filter_map(|e| e["kind"]["client_message_id"].as_str()).collect();
        assert_eq!(stored, acknowledged, "crash-{i}: the transcript lost or repeated an acknowledged message");
        let expected: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(seqs(&events), expected, "crash-{i}: transcript seqs are not gap-free and ordered");
    }
    assert!(failures > 0, "no message failed while Redis was down, so the test did not exercise the outage");
    Ok(())
}
