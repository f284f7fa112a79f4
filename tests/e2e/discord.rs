//! The Discord channel of the real `lepton serve`, pointed by
//! `LEPTON_DISCORD_API_PROXY` at a fake Discord on 127.0.0.1 in this test
//! process: the REST API under `/api/v10` and the gateway at `/gw`. The
//! channel takes the gateway address from the fake's `GET /gateway` and
//! refuses to run on any other, so no call leaves 127.0.0.1.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::harness::{demo_dir, shared_data_dir, Agent, Server, LEPTON};

/// The token the fake accepts; any other gets 401, as from Discord.
const TOKEN: &str = "test-token";
const BOT_ID: u64 = 900000000000000001;
const BOT_NAME: &str = "LeptonE2e";
const APPLICATION_ID: u64 = 900000000000000002;
const CUSTOMER: u64 = 300000000000000001;
/// The customer's direct message channel with the bot.
const DM: u64 = 400000000000000001;

/// `ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED`: the portal's Message Content switch.
const MESSAGE_CONTENT_LIMITED: u64 = 1 << 19;

/// How long a test waits for the server to make the calls it expects before failing.
const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// One recorded REST request.
#[derive(Clone, Debug)]
struct Call {
    method: String,
    /// The path below `/api/v10`, such as `/channels/42/messages`.
    path: String,
    body: Value,
}

impl Call {
    fn is_message_to(&self, channel_id: u64) -> bool {
        self.method == "POST" && self.path == format!("/channels/{channel_id}/messages")
    }

    fn content(&self) -> &str {
        self.body["content"].as_str().unwrap_or_default()
    }
}

struct FakeState {
    port: u16,
    calls: Mutex<Vec<Call>>,
    /// `MESSAGE_CREATE` payloads sent on the gateway right after READY.
    messages: Vec<Value>,
    /// Close codes of the Close frames the bot sent on the gateway.
    closes: Mutex<Vec<u16>>,
    next_id: AtomicU64,
    sequence: AtomicU64,
}

/// A fake Discord on 127.0.0.1; it stops when the test's runtime ends.
struct FakeDiscord {
    url: String,
    state: Arc<FakeState>,
}

impl FakeDiscord {
    /// Starts the fake; `messages` reach the bot once it has identified on the gateway.
    async fn start(messages: Vec<Value>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(FakeState {
            port: address.port(),
            calls: Mutex::default(),
            messages,
            closes: Mutex::default(),
            next_id: AtomicU64::new(800000000000000001),
            sequence: AtomicU64::new(0),
        });
        let app = Router::new().route("/api/v10/{*path}", any(rest)).route("/gw", get(gateway)).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url: format!("http://{address}"), state })
    }

    fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().expect("calls poisoned").clone()
    }

    /// Waits until a recorded call satisfies `matches` and returns it; fails
    /// after [`WAIT_LIMIT`] with every call recorded so far.
    async fn wait_for(&self, expected: &str, matches: impl Fn(&Call) -> bool) -> anyhow::Result<Call> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let calls = self.calls();
            if let Some(call) = calls.iter().find(|call| matches(call)) {
                return Ok(call.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                let recorded: Vec<String> = calls.iter().map(|call| format!("{} {} {}", call.method, call.path, call.body)).collect();
                bail!("timed out after {WAIT_LIMIT:?} waiting for {expected}; calls so far: {recorded:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({ "id": id.to_string(), "username": name, "discriminator": "0", "global_name": name, "avatar": null, "bot": bot })
}

async fn rest(State(state): State<Arc<FakeState>>, Path(path): Path<String>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/{path}");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.calls.lock().expect("calls poisoned").push(Call { method: method.to_string(), path: path.clone(), body: body.clone() });
    let authorized = headers.get("authorization").and_then(|value| value.to_str().ok()) == Some(&format!("Bot {TOKEN}"));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "message": "401: Unauthorized", "code": 0 }))).into_response();
    }

    let segments: Vec<&str> = path.split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["", "gateway"]) => Json(json!({ "url": format!("ws://127.0.0.1:{}/gw", state.port) })).into_response(),
        ("GET", ["", "users", "@me"]) => Json(user(BOT_ID, BOT_NAME, true)).into_response(),
        ("GET", ["", "oauth2", "applications", "@me"]) => Json(json!({
            "id": APPLICATION_ID.to_string(), "name": "Lepton E2E", "icon": null, "description": "",
            "bot_public": true, "bot_require_code_grant": false, "verify_key": "00", "flags": MESSAGE_CONTENT_LIMITED,
            "bot": user(BOT_ID, BOT_NAME, true)
        }))
        .into_response(),
        ("POST", ["", "channels", channel_id, "messages"]) => Json(sent_message(&state, channel_id, &body)).into_response(),
        ("POST", ["", "channels", _, "typing"]) => StatusCode::NO_CONTENT.into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({ "message": "404: Not Found", "code": 0 }))).into_response(),
    }
}

fn sent_message(state: &FakeState, channel_id: &str, body: &Value) -> Value {
    json!({
        "id": state.next_id.fetch_add(1, Ordering::SeqCst).to_string(), "channel_id": channel_id, "author": user(BOT_ID, BOT_NAME, true),
        "content": body["content"], "timestamp": "2026-01-05T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0
    })
}

async fn gateway(State(state): State<Arc<FakeState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(state, socket))
}

/// Runs one gateway connection: Hello, then READY and the queued messages
/// after Identify, and an ACK to each heartbeat. Records the bot's Close frame.
async fn session(state: Arc<FakeState>, mut socket: WebSocket) {
    let hello = json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": 45000 } });
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    while let Some(Ok(received)) = socket.recv().await {
        let text = match received {
            WsMessage::Text(text) => text,
            WsMessage::Close(frame) => {
                state.closes.lock().expect("closes poisoned").push(frame.map_or(1005, |frame| frame.code));
                // The next read sends the answering Close frame and ends the loop.
                continue;
            }
            _ => continue,
        };
        let payload: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        let answers = match payload["op"].as_u64() {
            Some(1) => vec![json!({ "op": 11, "s": null, "t": null, "d": null })],
            Some(2) => identified(&state),
            _ => Vec::new(),
        };
        for answer in answers {
            if send(&mut socket, &answer).await.is_err() {
                return;
            }
        }
    }
}

/// Returns READY followed by a `MESSAGE_CREATE` dispatch for each queued message.
fn identified(state: &FakeState) -> Vec<Value> {
    let dispatch = |name: &str, data: Value| {
        let sequence = state.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        json!({ "op": 0, "t": name, "s": sequence, "d": data })
    };
    let ready = json!({
        "v": 10, "user": user(BOT_ID, BOT_NAME, true), "guilds": [], "session_id": "fake-session",
        "resume_gateway_url": format!("ws://127.0.0.1:{}/gw", state.port), "shard": [0, 1],
        "application": { "id": APPLICATION_ID.to_string(), "flags": MESSAGE_CONTENT_LIMITED }
    });
    let mut answers = vec![dispatch("READY", ready)];
    answers.extend(state.messages.iter().map(|message| dispatch("MESSAGE_CREATE", message.clone())));
    answers
}

async fn send(socket: &mut WebSocket, payload: &Value) -> Result<(), axum::Error> {
    socket.send(WsMessage::Text(payload.to_string().into())).await
}

/// Builds a direct message from the customer to the bot.
fn dm(id: u64, content: &str) -> Value {
    json!({
        "id": id.to_string(), "channel_id": DM.to_string(), "author": user(CUSTOMER, "li_wei", false), "content": content,
        "timestamp": "2026-01-05T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": 0
    })
}

/// Starts `lepton serve --discord` talking to `fake` only.
async fn start_server(fake: &FakeDiscord) -> anyhow::Result<Server> {
    if !fake.url.starts_with("http://127.0.0.1:") {
        bail!("the fake Discord must listen on 127.0.0.1, not {}", fake.url);
    }
    let store = crate::harness::temp_dir("discord").join("sessions.redb");
    let store = store.to_str().context("store path is not UTF-8")?.to_owned();
    let proxy = fake.url.clone();

    // Blocking: it trains the shared model on first use and reads the server's
    // output, while this runtime keeps serving the fake.
    tokio::task::spawn_blocking(move || Server::start_with_args(&["--store", &store, "--discord"], &[("LEPTON_DISCORD_TOKEN", TOKEN), ("LEPTON_DISCORD_API_PROXY", &proxy)])).await?
}

/// Runs `lepton serve --discord` with the demo bot until it exits and returns its output.
async fn run_until_exit(env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let data = tokio::task::spawn_blocking(shared_data_dir).await??;
    let mut command = Command::new(LEPTON);
    command
        .args(["serve", "--port", "0", "--store", "memory", "--no-watch", "--discord"])
        .arg(demo_dir())
        .arg("--data-dir")
        .arg(&data)
        .env("LEPTON_LOG", "info")
        .env_remove("LEPTON_DISCORD_TOKEN")
        .env_remove("LEPTON_DISCORD_API_PROXY")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().context("cannot start lepton serve")?;
    let pid = child.id().to_string();

    let output = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || child.wait_with_output())).await;
    match output {
        Ok(output) => Ok(output??),
        Err(_) => {
            Command::new("kill").args(["-KILL", &pid]).status()?;
            bail!("lepton serve was expected to fail at start but still ran after 120 s")
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dm_answers_order_question() -> anyhow::Result<()> {
    let fake = FakeDiscord::start(vec![dm(1, "where is my order")]).await?;
    let _server = start_server(&fake).await?;

    let reply = fake.wait_for("a message to the customer's DM", |call| call.is_message_to(DM)).await?;

    assert!(reply.content().contains("order number"), "expected the order-number prompt, got {:?}", reply.content());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dm_delivers_agent_reply() -> anyhow::Result<()> {
    let fake = FakeDiscord::start(vec![dm(1, "我要转人工客服")]).await?;
    let server = start_server(&fake).await?;
    let conversation = format!("discord:dm:{DM}");
    let agent_text = "您好，我是客服小李，马上为您查询订单。";

    let notice = fake.wait_for("the waiting-for-agent notice", |call| call.is_message_to(DM)).await?;
    let agent = Agent::new(&server, "li");
    let (claim_status, claim_body) = agent.act(&conversation, "claim", None).await?;
    let (reply_status, reply_body) = agent.act(&conversation, "messages", Some(agent_text)).await?;
    let delivered = fake.wait_for("the agent's message", |call| call.is_message_to(DM) && call.content() == agent_text).await;

    assert!(!notice.content().is_empty(), "the handoff notice was empty");
    assert_eq!(claim_status, 200, "claim failed: {claim_body}");
    assert_eq!(reply_status, 200, "agent message failed: {reply_body}");
    assert!(delivered.is_ok(), "{delivered:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_gateway() -> anyhow::Result<()> {
    let fake = FakeDiscord::start(vec![dm(1, "where is my order")]).await?;
    let server = start_server(&fake).await?;
    fake.wait_for("a message to the customer's DM", |call| call.is_message_to(DM)).await?;

    tokio::task::spawn_blocking(move || server.stop()).await??;

    let closes = fake.state.closes.lock().expect("closes poisoned").clone();
    assert_eq!(closes, vec![1000], "expected one normal close of the gateway connection");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_token_fails_start() -> anyhow::Result<()> {
    let output = run_until_exit(&[]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "lepton serve started without a token");
    assert!(stderr.contains("LEPTON_DISCORD_TOKEN"), "the error does not name the variable: {stderr}");
    assert!(stderr.contains("developer portal"), "the error does not say where tokens come from: {stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_fails_start() -> anyhow::Result<()> {
    let fake = FakeDiscord::start(Vec::new()).await?;
    let wrong = "WRONG-token-value";

    let output = run_until_exit(&[("LEPTON_DISCORD_TOKEN", wrong), ("LEPTON_DISCORD_API_PROXY", &fake.url)]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(!output.status.success(), "lepton serve started with a rejected token");
    assert!(stderr.contains("GET /users/@me"), "the error does not name the failed call: {stderr}");
    assert!(!stderr.contains(wrong), "the token was printed: {stderr}");
    assert!(!stdout.contains(wrong), "the token was printed: {stdout}");
    Ok(())
}
