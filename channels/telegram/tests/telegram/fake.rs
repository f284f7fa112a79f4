//! A fake Telegram Bot API on 127.0.0.1: records every call with its
//! parameters, serves scripted updates to `getUpdates`, can answer the next
//! calls of a method with a scripted error, and serves the demo orders that the
//! demo bot's HTTP steps read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// Maximum wait of a `getUpdates` call for an update, so that tests stop fast.
const LONG_POLL_CAP: Duration = Duration::from_millis(200);

/// How long a test waits for the channel to make the calls it expects before failing.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The bot account `getMe` returns.
pub const BOT_ID: u64 = 5000;
pub const BOT_USERNAME: &str = "LeptonShopBot";

/// One recorded Bot API call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method name in lowercase (`sendmessage`): teloxide sends PascalCase.
    pub method: String,
    /// The JSON parameters, or the raw body as a string for multipart calls.
    pub params: Value,
    pub at: Instant,
}

impl Call {
    pub fn chat_id(&self) -> Option<i64> {
        self.params.get("chat_id").and_then(Value::as_i64)
    }

    pub fn text(&self) -> &str {
        self.params.get("text").and_then(Value::as_str).unwrap_or_default()
    }
}

#[derive(Default)]
struct FakeState {
    calls: Mutex<Vec<Call>>,
    called: Notify,
    updates: Mutex<Vec<Value>>,
    new_update: Notify,
    /// Responses (status and body) for the next calls of a method, in order.
    scripted: Mutex<HashMap<String, VecDeque<(StatusCode, Value)>>>,
    next_message_id: AtomicI64,
    orders: BTreeMap<String, Value>,
    /// While set, order lookups wait until the channel has sent a chat action.
    hold_orders_until_typing: AtomicBool,
}

/// The running fake; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct FakeApi {
    pub url: reqwest::Url,
    state: Arc<FakeState>,
}

impl FakeApi {
    pub async fn start() -> anyhow::Result<Self> {
        let orders_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/orders.json");
        let orders_text = std::fs::read_to_string(&orders_path).with_context(|| format!("cannot read {}", orders_path.display()))?;
        let orders: BTreeMap<String, Value> = serde_json::from_str(&orders_text)?;
        let state = Arc::new(FakeState { orders, next_message_id: AtomicI64::new(1000), ..FakeState::default() });

        let app = Router::new()
            .route("/{bot}/{method}", post(bot_api))
            .route("/demo/orders/{number}", get(order))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url: reqwest::Url::parse(&format!("http://{address}/"))?, state })
    }

    /// Returns the base URL of the demo orders, for the bot's `server_url` variable.
    pub fn server_url(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }

    /// Queues an update for `getUpdates`.
    pub fn push_update(&self, update: Value) {
        self.state.updates.lock().expect("updates poisoned").push(update);
        self.state.new_update.notify_waiters();
    }

    /// Makes the next call of `method` fail with this status and body.
    pub fn script(&self, method: &str, status: StatusCode, body: Value) {
        let mut scripted = self.state.scripted.lock().expect("scripted poisoned");
        scripted.entry(method.to_ascii_lowercase()).or_default().push_back((status, body));
    }

    pub fn hold_orders_until_typing(&self) {
        self.state.hold_orders_until_typing.store(true, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().expect("calls poisoned").clone()
    }

    /// Returns the calls of one method (lowercase name) to one chat.
    pub fn calls_to(&self, method: &str, chat_id: i64) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.method == method && call.chat_id() == Some(chat_id)).collect()
    }

    /// Returns the `sendMessage` texts sent to a chat, in order.
    pub fn texts_to(&self, chat_id: i64) -> Vec<String> {
        self.calls_to("sendmessage", chat_id).iter().map(|call| call.text().to_owned()).collect()
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
                let methods: Vec<String> = calls.iter().map(|call| format!("{} {}", call.method, call.text())).collect();
                bail!("timed out waiting for {expected}; calls so far: {methods:#?}");
            }
        }
    }

    /// Waits until `count` messages have been sent to the chat and returns their texts.
    pub async fn wait_texts(&self, chat_id: i64, count: usize) -> anyhow::Result<Vec<String>> {
        let expected = format!("{count} messages to chat {chat_id}");
        self.wait_until(&expected, |calls| calls.iter().filter(|c| c.method == "sendmessage" && c.chat_id() == Some(chat_id)).count() >= count).await?;
        Ok(self.texts_to(chat_id))
    }

}

impl FakeState {
    fn record(&self, method: &str, params: Value) {
        let call = Call { method: method.to_owned(), params, at: Instant::now() };
        self.calls.lock().expect("calls poisoned").push(call);
        self.called.notify_waiters();
    }
}

async fn bot_api(State(state): State<Arc<FakeState>>, Path((bot, method)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> (StatusCode, Json<Value>) {
    if !bot.starts_with("bot") {
        return (StatusCode::NOT_FOUND, Json(json!({ "ok": false, "error_code": 404, "description": "Not Found" })));
    }
    let method = method.to_ascii_lowercase();
    let params = parse_params(&headers, &body);
    state.record(&method, params.clone());

    let scripted = state.scripted.lock().expect("scripted poisoned").get_mut(&method).and_then(VecDeque::pop_front);
    if let Some((status, body)) = scripted {
        return (status, Json(body));
    }

    let result = match method.as_str() {
        "getme" => json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Lepton Shop", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false, "has_main_web_app": false
        }),
        "getupdates" => Value::Array(updates(&state, &params).await),
        "sendmessage" => sent_message(&state, &params),
        "answercallbackquery" | "sendchataction" | "deletewebhook" | "setwebhook" => json!(true),
        _ => return (StatusCode::NOT_FOUND, Json(json!({ "ok": false, "error_code": 404, "description": "Not Found: method not found" }))),
    };
    (StatusCode::OK, Json(json!({ "ok": true, "result": result })))
}

fn parse_params(headers: &HeaderMap, body: &Bytes) -> Value {
    let is_json = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    if body.is_empty() {
        return json!({});
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

/// Returns the updates at or after `offset`, forgetting older ones as Telegram
/// does; waits up to [`LONG_POLL_CAP`] when there are none.
async fn updates(state: &FakeState, params: &Value) -> Vec<Value> {
    let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let pending = || {
        let mut updates = state.updates.lock().expect("updates poisoned");
        updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
        updates.clone()
    };
    let new_update = state.new_update.notified();
    let ready = pending();
    if !ready.is_empty() || params.get("timeout").and_then(Value::as_u64).unwrap_or(0) == 0 {
        return ready;
    }
    let _ = tokio::time::timeout(LONG_POLL_CAP, new_update).await;
    pending()
}

fn sent_message(state: &FakeState, params: &Value) -> Value {
    let message_id = state.next_message_id.fetch_add(1, Ordering::SeqCst);
    let chat_id = params.get("chat_id").and_then(Value::as_i64).unwrap_or(0);
    json!({
        "message_id": message_id,
        "from": { "id": BOT_ID, "is_bot": true, "first_name": "Lepton Shop", "username": BOT_USERNAME },
        "chat": { "id": chat_id, "type": "private", "first_name": "Customer" },
        "date": 1765000000,
        "text": params.get("text").cloned().unwrap_or(Value::Null),
    })
}

async fn order(State(state): State<Arc<FakeState>>, Path(number): Path<String>) -> (StatusCode, Json<Value>) {
    if state.hold_orders_until_typing.load(Ordering::SeqCst) {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let called = state.called.notified();
            if state.calls.lock().expect("calls poisoned").iter().any(|call| call.method == "sendchataction") {
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
