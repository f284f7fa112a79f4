//! The Telegram channel of the real `lepton serve`, pointed by
//! `LEPTON_TELEGRAM_API_URL` at a fake Bot API on 127.0.0.1 in this test process.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::harness::{demo_dir, shared_data_dir, Agent, Server, LEPTON};

/// The token the fake accepts; any other gets 401, as from Telegram.
const TOKEN: &str = "123:TEST";
const CHAT: i64 = 1001;
const BOT_USERNAME: &str = "LeptonE2eBot";
const WEBHOOK_URL: &str = "https://bot.example.com/telegram/webhook";
const WEBHOOK_SECRET: &str = "e2e_Secret-1";

/// How long a `getUpdates` call waits when no update is pending, so that the server stops fast.
const LONG_POLL_CAP: Duration = Duration::from_millis(200);

/// How long a test waits for the server to make the calls it expects before failing.
const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// One recorded Bot API call.
#[derive(Clone, Debug)]
struct Call {
    /// The method name in lowercase (`sendmessage`); teloxide sends PascalCase.
    method: String,
    /// The JSON parameters, or the raw body as a string for multipart calls such as `setWebhook`.
    params: Value,
}

impl Call {
    fn is_message_to(&self, chat_id: i64) -> bool {
        self.method == "sendmessage" && self.params["chat_id"].as_i64() == Some(chat_id)
    }

    fn text(&self) -> &str {
        self.params["text"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct FakeState {
    calls: Mutex<Vec<Call>>,
    /// Updates not yet confirmed by a `getUpdates` offset past them.
    updates: Mutex<Vec<Value>>,
}

/// A fake Telegram Bot API on 127.0.0.1; it stops when the test's runtime ends.
struct FakeBotApi {
    url: String,
    state: Arc<FakeState>,
}

impl FakeBotApi {
    async fn start() -> anyhow::Result<Self> {
        let state = Arc::new(FakeState::default());
        let app = Router::new().route("/{bot}/{method}", post(bot_api)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url: format!("http://{address}/"), state })
    }

    /// Queues an update for `getUpdates`.
    fn push_update(&self, update: Value) {
        self.state.updates.lock().expect("updates poisoned").push(update);
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
                let recorded: Vec<String> = calls.iter().map(|call| format!("{} {}", call.method, call.params)).collect();
                bail!("timed out after {WAIT_LIMIT:?} waiting for {expected}; calls so far: {recorded:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn bot_api(State(state): State<Arc<FakeState>>, Path((bot, method)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> (StatusCode, Json<Value>) {
    let method = method.to_ascii_lowercase();
    let params = parse_params(&headers, &body);
    state.calls.lock().expect("calls poisoned").push(Call { method: method.clone(), params: params.clone() });
    if bot != format!("bot{TOKEN}") {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "ok": false, "error_code": 401, "description": "Unauthorized" })));
    }

    let result = match method.as_str() {
        "getme" => json!({
            "id": 7000, "is_bot": true, "first_name": "Lepton E2E", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false, "has_main_web_app": false
        }),
        "getupdates" => Value::Array(pending_updates(&state, &params).await),
        "sendmessage" => sent_message(&params),
        _ => json!(true),
    };
    (StatusCode::OK, Json(json!({ "ok": true, "result": result })))
}

fn parse_params(headers: &HeaderMap, body: &Bytes) -> Value {
    let is_json = headers.get("content-type").and_then(|value| value.to_str().ok()).is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

/// Returns the updates at or after `offset`, forgetting older ones as Telegram
/// does; waits [`LONG_POLL_CAP`] first when none is pending.
async fn pending_updates(state: &FakeState, params: &Value) -> Vec<Value> {
    let offset = params["offset"].as_i64().unwrap_or(0);
    let pending = || {
        let mut updates = state.updates.lock().expect("updates poisoned");
        updates.retain(|update| update["update_id"].as_i64().unwrap_or(0) >= offset);
        updates.clone()
    };
    let ready = pending();
    if !ready.is_empty() || params["timeout"].as_u64().unwrap_or(0) == 0 {
        return ready;
    }
    tokio::time::sleep(LONG_POLL_CAP).await;
    pending()
}

fn sent_message(params: &Value) -> Value {
    json!({
        "message_id": 9000,
        "from": { "id": 7000, "is_bot": true, "first_name": "Lepton E2E", "username": BOT_USERNAME },
        "chat": { "id": params["chat_id"], "type": "private", "first_name": "Li" },
        "date": 1765000000,
        "text": params["text"],
    })
}

/// Builds a text message from the customer in their private chat.
fn private_text(update_id: i64, text: &str, language: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": { "id": CHAT, "is_bot": false, "first_name": "Li", "language_code": language },
            "chat": { "id": CHAT, "type": "private", "first_name": "Li" },
            "date": 1765000000,
            "text": text,
        }
    })
}

/// Starts `lepton serve` with the Telegram channel talking to `fake` only.
async fn start_server(fake: &FakeBotApi, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Server> {
    if !fake.url.starts_with("http://127.0.0.1:") {
        bail!("the fake Bot API must listen on 127.0.0.1, not {}", fake.url);
    }
    let store = crate::harness::temp_dir("telegram").join("sessions.redb");
    let mut owned_args: Vec<String> = vec!["--store".to_owned(), store.to_str().context("store path is not UTF-8")?.to_owned()];
    owned_args.extend(args.iter().map(|arg| (*arg).to_owned()));
    let mut owned_env: Vec<(String, String)> = vec![("LEPTON_TELEGRAM_TOKEN".to_owned(), TOKEN.to_owned()), ("LEPTON_TELEGRAM_API_URL".to_owned(), fake.url.clone())];
    owned_env.extend(env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));

    // Blocking: it trains the shared model on first use and reads the server's
    // output, while this runtime keeps serving the fake.
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = owned_args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = owned_env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        Server::start_with_args(&args, &env)
    })
    .await?
}

/// Runs `lepton serve --telegram` with the demo bot until it exits and returns its output.
async fn run_until_exit(env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let data = tokio::task::spawn_blocking(shared_data_dir).await??;
    let mut command = Command::new(LEPTON);
    command
        .args(["serve", "--port", "0", "--store", "memory", "--no-watch", "--telegram"])
        .arg(demo_dir())
        .arg("--data-dir")
        .arg(&data)
        .env("LEPTON_LOG", "info")
        .env_remove("LEPTON_TELEGRAM_TOKEN")
        .env_remove("LEPTON_TELEGRAM_API_URL")
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
async fn polling_answers_order_question() -> anyhow::Result<()> {
    let fake = FakeBotApi::start().await?;
    fake.push_update(private_text(1, "where is my order", "en"));
    let _server = start_server(&fake, &["--telegram"], &[]).await?;

    let reply = fake.wait_for("sendMessage to the customer", |call| call.is_message_to(CHAT)).await?;

    assert!(reply.text().contains("order number"), "expected the order-number prompt, got {:?}", reply.text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_delivers_agent_reply() -> anyhow::Result<()> {
    let fake = FakeBotApi::start().await?;
    let server = start_server(&fake, &["--telegram"], &[]).await?;
    let conversation = format!("telegram:{CHAT}");
    let agent_text = "您好，我是客服小李，马上为您查询订单。";

    fake.push_update(private_text(1, "我要转人工客服", "zh-hans"));
    let notice = fake.wait_for("the waiting-for-agent notice", |call| call.is_message_to(CHAT)).await?;
    let agent = Agent::new(&server, "li");
    let (claim_status, claim_body) = agent.act(&conversation, "claim", None).await?;
    let (reply_status, reply_body) = agent.act(&conversation, "messages", Some(agent_text)).await?;
    let delivered = fake.wait_for("the agent's message", |call| call.is_message_to(CHAT) && call.text() == agent_text).await;

    assert!(!notice.text().is_empty(), "the handoff notice was empty");
    assert_eq!(claim_status, 200, "claim failed: {claim_body}");
    assert_eq!(reply_status, 200, "agent message failed: {reply_body}");
    assert!(delivered.is_ok(), "{delivered:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_confirms_offset_on_stop() -> anyhow::Result<()> {
    let fake = FakeBotApi::start().await?;
    fake.push_update(private_text(41, "where is my order", "en"));
    let server = start_server(&fake, &["--telegram"], &[]).await?;
    fake.wait_for("sendMessage to the customer", |call| call.is_message_to(CHAT)).await?;

    server.stop()?;

    let confirmed = fake.calls().iter().any(|call| call.method == "getupdates" && call.params["offset"] == 42 && call.params["limit"] == 1);
    assert!(confirmed, "no getUpdates confirming offset 42 after SIGTERM: {:#?}", fake.calls());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_answers_update() -> anyhow::Result<()> {
    let fake = FakeBotApi::start().await?;
    let server = start_server(&fake, &["--telegram-webhook", WEBHOOK_URL], &[("LEPTON_TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET)]).await?;
    let route = format!("{}/telegram/webhook", server.url);
    let update = private_text(5, "where is my order", "en").to_string();
    let client = reqwest::Client::new();
    let post = |secret: Option<&str>| {
        let mut request = client.post(&route).header("content-type", "application/json").body(update.clone());
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };

    let registered = fake.wait_for("setWebhook", |call| call.method == "setwebhook").await?;
    let without_secret = post(None).await?.status();
    let wrong_secret = post(Some("wrong")).await?.status();
    let with_secret = post(Some(WEBHOOK_SECRET)).await?.status();
    let reply = fake.wait_for("sendMessage to the customer", |call| call.is_message_to(CHAT)).await?;

    let registration = registered.params.to_string();
    assert!(registration.contains(WEBHOOK_URL), "setWebhook without the URL: {registration}");
    assert!(registration.contains(WEBHOOK_SECRET), "setWebhook without the secret: {registration}");
    assert_eq!(without_secret, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_secret, StatusCode::UNAUTHORIZED);
    assert_eq!(with_secret, StatusCode::OK);
    assert!(reply.text().contains("order number"), "expected the order-number prompt, got {:?}", reply.text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_token_fails_start() -> anyhow::Result<()> {
    let output = run_until_exit(&[]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "lepton serve started without a token");
    assert!(stderr.contains("LEPTON_TELEGRAM_TOKEN"), "the error does not name the variable: {stderr}");
    assert!(stderr.contains("@BotFather"), "the error does not say where tokens come from: {stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_fails_start() -> anyhow::Result<()> {
    let fake = FakeBotApi::start().await?;
    let wrong = "123:WRONG-token-value";

    let output = run_until_exit(&[("LEPTON_TELEGRAM_TOKEN", wrong), ("LEPTON_TELEGRAM_API_URL", &fake.url)]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(!output.status.success(), "lepton serve started with a rejected token");
    assert!(stderr.contains("getMe"), "the error does not name the failed call: {stderr}");
    assert!(!stderr.contains("WRONG-token-value"), "the token was printed: {stderr}");
    assert!(!stdout.contains("WRONG-token-value"), "the token was printed: {stdout}");
    Ok(())
}
