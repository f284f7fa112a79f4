//! A fake Discord on 127.0.0.1. The REST API under `/api/v10` records every
//! request and can return scripted responses, such as a 429 with
//! `retry_after`, to the next requests of a route. The gateway at `/gw` sends
//! Hello, READY after Identify, heartbeat ACKs, and the dispatches a test
//! scripts (`MESSAGE_CREATE`, `INTERACTION_CREATE`). The fake also serves the
//! demo orders that the demo bot's HTTP steps read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// How long a test waits for the channel to make the calls it expects before failing.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The bot's user id and name, as `GET /users/@me` returns them.
pub const BOT_ID: u64 = 900000000000000001;
pub const BOT_NAME: &str = "LeptonShop";
pub const APPLICATION_ID: u64 = 900000000000000002;

/// `ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED`: the portal's Message Content switch.
const MESSAGE_CONTENT_LIMITED: u64 = 1 << 19;

/// One recorded REST request, or `WS /gw` for a gateway connection.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The path below `/api/v10`, such as `/channels/42/messages`.
    pub path: String,
    pub body: Value,
    /// The `Host` header, which shows where the client connected.
    pub host: String,
    pub at: Instant,
}

impl Call {
    pub fn content(&self) -> &str {
        self.body.get("content").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn is_message_to(&self, channel_id: u64) -> bool {
        self.method == "POST" && self.path == format!("/channels/{channel_id}/messages")
    }
}

/// A scripted response: status, extra headers and JSON body.
type Scripted = (StatusCode, Vec<(&'static str, String)>, Value);

#[derive(Default)]
struct FakeState {
    port: u16,
    calls: Mutex<Vec<Call>>,
    called: Notify,
    /// Responses for the next requests of a route (`POST /channels/{id}/messages`), in order.
    scripted: Mutex<HashMap<String, VecDeque<Scripted>>>,
    next_id: AtomicU64,
    /// Channel objects for `GET /channels/{id}`; others are guild text channels.
    channels: Mutex<HashMap<u64, Value>>,
    message_content: AtomicBool,
    /// Close code sent in answer to Identify, such as 4014 for disallowed intents.
    reject_identify: Mutex<Option<u16>>,
    gateway: Mutex<Option<mpsc::UnboundedSender<Value>>>,
    identifies: Mutex<Vec<Value>>,
    threads: Mutex<Vec<u64>>,
    ready: Notify,
    sequence: AtomicU64,
    orders: BTreeMap<String, Value>,
    /// While set, order lookups wait until the channel has sent a typing indicator.
    hold_orders_until_typing: AtomicBool,
}

/// The running fake; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct FakeDiscord {
    pub url: reqwest::Url,
    state: Arc<FakeState>,
}

impl FakeDiscord {
    pub async fn start(message_content: bool) -> anyhow::Result<Self> {
        let orders_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/orders.json");
        let orders_text = std::fs::read_to_string(&orders_path).with_context(|| format!("cannot read {}", orders_path.display()))?;
        let orders: BTreeMap<String, Value> = serde_json::from_str(&orders_text)?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = FakeState { port: address.port(), orders, next_id: AtomicU64::new(800000000000000001), ..FakeState::default() };
        state.message_content.store(message_content, Ordering::SeqCst);
        let state = Arc::new(state);

        let app = Router::new()
            .route("/api/v10/{*path}", any(rest))
            .route("/gw", get(gateway))
            .route("/demo/orders/{number}", get(order))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url: reqwest::Url::parse(&format!("http://{address}"))?, state })
    }

    /// Returns the base URL of the demo orders, for the bot's `server_url` variable.
    pub fn server_url(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }

    /// Makes the next request of `route` (such as `POST /channels/{id}/messages`) get this answer.
    pub fn script(&self, route: &str, status: StatusCode, headers: Vec<(&'static str, String)>, body: Value) {
        let mut scripted = self.state.scripted.lock().expect("scripted poisoned");
        scripted.entry(route.to_owned()).or_default().push_back((status, headers, body));
    }

    /// Makes `GET /channels/{id}` return a thread of `parent_id`.
    pub fn add_thread(&self, thread_id: u64, parent_id: u64) {
        let thread = json!({ "id": thread_id.to_string(), "type": 11, "parent_id": parent_id.to_string(), "guild_id": crate::harness::GUILD.to_string(), "name": "question" });
        self.state.channels.lock().expect("channels poisoned").insert(thread_id, thread);
    }

    /// Makes the gateway close the connection with `code` when the bot identifies.
    pub fn reject_identify(&self, code: u16) {
        *self.state.reject_identify.lock().expect("reject poisoned") = Some(code);
    }

    pub fn hold_orders_until_typing(&self) {
        self.state.hold_orders_until_typing.store(true, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().expect("calls poisoned").clone()
    }

    pub fn identifies(&self) -> Vec<Value> {
        self.state.identifies.lock().expect("identifies poisoned").clone()
    }

    /// Returns the ids of the threads the bot opened, in order.
    pub fn threads(&self) -> Vec<u64> {
        self.state.threads.lock().expect("threads poisoned").clone()
    }

    /// Returns the messages posted to a channel, in order.
    pub fn messages_to(&self, channel_id: u64) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.is_message_to(channel_id)).collect()
    }

    /// Returns the texts posted to a channel, in order.
    pub fn texts_to(&self, channel_id: u64) -> Vec<String> {
        self.messages_to(channel_id).iter().map(|call| call.content().to_owned()).collect()
    }

    /// Waits until the recorded calls satisfy `done`; fails after [`WAIT_LIMIT`].
    pub async fn wait_until(&self, expected: &str, done: impl Fn(&[Call]) -> bool) -> anyhow::Result<Vec<Call>> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let called = self.state.called.notified();
            let calls = self.calls();
            if done(&calls) {
                return Ok(calls);
            }
            if tokio::time::timeout_at(deadline, called).await.is_err() {
                let seen: Vec<String> = calls.iter().map(|call| format!("{} {} {}", call.method, call.path, call.content())).collect();
                bail!("timed out waiting for {expected}; calls so far: {seen:#?}");
            }
        }
    }

    /// Waits until `count` messages have been posted to the channel and returns their texts.
    pub async fn wait_texts(&self, channel_id: u64, count: usize) -> anyhow::Result<Vec<String>> {
        let expected = format!("{count} messages to channel {channel_id}");
        self.wait_until(&expected, |calls| calls.iter().filter(|call| call.is_message_to(channel_id)).count() >= count).await?;
        Ok(self.texts_to(channel_id))
    }

    /// Waits until a bot has identified on the gateway and received READY.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let ready = self.state.ready.notified();
            if self.state.gateway.lock().expect("gateway poisoned").is_some() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                bail!("timed out waiting for the bot to identify on the gateway");
            }
        }
    }

    /// Sends a dispatch event (`MESSAGE_CREATE`, `INTERACTION_CREATE`, ...) on the gateway.
    pub fn dispatch(&self, name: &str, data: Value) -> anyhow::Result<()> {
        let gateway = self.state.gateway.lock().expect("gateway poisoned");
        let sender = gateway.as_ref().context("no bot is connected to the gateway")?;
        let sequence = self.state.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        sender.send(json!({ "op": 0, "t": name, "s": sequence, "d": data })).ok().context("the gateway connection closed")?;
        Ok(())
    }
}

impl FakeState {
    fn record(&self, method: &str, path: &str, body: Value, headers: &HeaderMap) {
        let host = headers.get("host").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
        let call = Call { method: method.to_owned(), path: path.to_owned(), body, host, at: Instant::now() };
        self.calls.lock().expect("calls poisoned").push(call);
        self.called.notify_waiters();
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }
}

fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({ "id": id.to_string(), "username": name, "discriminator": "0", "global_name": name, "avatar": null, "bot": bot })
}

async fn rest(State(state): State<Arc<FakeState>>, Path(path): Path<String>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/{path}");
    let body: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())) };
    state.record(method.as_str(), &path, body.clone(), &headers);

    let route = route_name(method.as_str(), &path);
    let scripted = state.scripted.lock().expect("scripted poisoned").get_mut(&route).and_then(VecDeque::pop_front);
    if let Some((status, extra, body)) = scripted {
        let mut response = (status, Json(body)).into_response();
        for (name, value) in extra {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        return response;
    }
    answer(&state, &route, &path, &body)
}

/// Names the route of a path: its ids become `{id}` and an interaction token `{token}`.
fn route_name(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let interaction = segments.get(1) == Some(&"interactions");
    let named: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(index, segment)| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else if interaction && index == 3 {
                "{token}"
            } else {
                segment
            }
        })
        .collect();
    format!("{method} {}", named.join("/"))
}

fn answer(state: &FakeState, route: &str, path: &str, body: &Value) -> Response {
    let id_at = |index: usize| path.split('/').nth(index).and_then(|id| id.parse::<u64>().ok()).unwrap_or(0);
    match route {
        "GET /gateway" => Json(json!({ "url": format!("ws://127.0.0.1:{}/gw", state.port) })).into_response(),
        "GET /gateway/bot" => Json(json!({
            "url": format!("ws://127.0.0.1:{}/gw", state.port), "shards": 1,
            "session_start_limit": { "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1 }
        }))
        .into_response(),
        "GET /users/@me" => Json(user(BOT_ID, BOT_NAME, true)).into_response(),
        "GET /oauth2/applications/@me" => Json(application(state)).into_response(),
        "GET /channels/{id}" => {
            let channel_id = id_at(2);
            let known = state.channels.lock().expect("channels poisoned").get(&channel_id).cloned();
            let text = json!({ "id": channel_id.to_string(), "type": 0, "guild_id": crate::harness::GUILD.to_string(), "name": "general" });
            Json(known.unwrap_or(text)).into_response()
        }
        "POST /channels/{id}/messages" => Json(sent_message(state, id_at(2), body)).into_response(),
        "POST /channels/{id}/typing" | "POST /interactions/{id}/{token}/callback" => StatusCode::NO_CONTENT.into_response(),
        "POST /channels/{id}/messages/{id}/threads" => {
            let thread_id = state.next_id();
            state.threads.lock().expect("threads poisoned").push(thread_id);
            let parent_id = id_at(2);
            let name = body.get("name").cloned().unwrap_or(Value::Null);
            Json(json!({ "id": thread_id.to_string(), "type": 11, "parent_id": parent_id.to_string(), "guild_id": crate::harness::GUILD.to_string(), "name": name })).into_response()
        }
        _ => (StatusCode::NOT_FOUND, Json(json!({ "message": "404: Not Found", "code": 0 }))).into_response(),
    }
}

fn application(state: &FakeState) -> Value {
    let flags = if state.message_content.load(Ordering::SeqCst) { MESSAGE_CONTENT_LIMITED } else { 0 };
    json!({
        "id": APPLICATION_ID.to_string(), "name": "Lepton Shop", "icon": null, "description": "",
        "bot_public": true, "bot_require_code_grant": false, "verify_key": "00", "flags": flags,
        "bot": user(BOT_ID, BOT_NAME, true)
    })
}

fn sent_message(state: &FakeState, channel_id: u64, body: &Value) -> Value {
    json!({
        "id": state.next_id().to_string(), "channel_id": channel_id.to_string(), "author": user(BOT_ID, BOT_NAME, true),
        "content": body.get("content").cloned().unwrap_or(Value::Null), "timestamp": "2026-01-05T10:00:00.000000+00:00",
        "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0
    })
}

async fn gateway(State(state): State<Arc<FakeState>>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    state.record("WS", "/gw", Value::Null, &headers);
    upgrade.on_upgrade(move |socket| session(state, socket))
}

/// Runs one gateway connection: Hello, then READY after Identify, ACKs to
/// heartbeats, and the dispatches the test sends.
async fn session(state: Arc<FakeState>, mut socket: WebSocket) {
    let (sender, mut dispatches) = mpsc::unbounded_channel::<Value>();
    let hello = json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": 45000 } });
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            received = socket.recv() => {
                let Some(Ok(WsMessage::Text(text))) = received else {
                    return;
                };
                let payload: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                match payload["op"].as_u64() {
                    Some(1) if send(&mut socket, &json!({ "op": 11, "s": null, "t": null, "d": null })).await.is_err() => return,
                    Some(2) => {
                        state.identifies.lock().expect("identifies poisoned").push(payload["d"].clone());
                        let reject = *state.reject_identify.lock().expect("reject poisoned");
                        if let Some(code) = reject {
                            let frame = CloseFrame { code, reason: "Disallowed intent(s).".into() };
                            let _ = socket.send(WsMessage::Close(Some(frame))).await;
                            return;
                        }
                        if send(&mut socket, &ready(&state)).await.is_err() {
                            return;
                        }
                        *state.gateway.lock().expect("gateway poisoned") = Some(sender.clone());
                        state.ready.notify_waiters();
                    }
                    _ => {}
                }
            }
            Some(dispatch) = dispatches.recv() => {
                if send(&mut socket, &dispatch).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn ready(state: &FakeState) -> Value {
    let sequence = state.sequence.fetch_add(1, Ordering::SeqCst) + 1;
    let flags = if state.message_content.load(Ordering::SeqCst) { MESSAGE_CONTENT_LIMITED } else { 0 };
    json!({
        "op": 0, "t": "READY", "s": sequence,
        "d": {
            "v": 10, "user": user(BOT_ID, BOT_NAME, true), "guilds": [], "session_id": "fake-session",
            "resume_gateway_url": format!("ws://127.0.0.1:{}/gw", state.port), "shard": [0, 1],
            "application": { "id": APPLICATION_ID.to_string(), "flags": flags }
        }
    })
}

async fn send(socket: &mut WebSocket, payload: &Value) -> Result<(), axum::Error> {
    socket.send(WsMessage::Text(payload.to_string().into())).await
}

async fn order(State(state): State<Arc<FakeState>>, Path(number): Path<String>) -> (StatusCode, Json<Value>) {
    if state.hold_orders_until_typing.load(Ordering::SeqCst) {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let called = state.called.notified();
            if state.calls.lock().expect("calls poisoned").iter().any(|call| call.path.ends_with("/typing")) {
                break;
            }
            if tokio::time::timeout_at(deadline, called).await.is_err() {
                break;
            }
        }
    }
    match state.orders.get(&number) {
        Some(order) => (StatusCode::OK, Json(order.clone())),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": { "code": "order_not_found" } }))),
    }
}
