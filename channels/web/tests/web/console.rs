//! The console API: sign-in, sessions, CSRF, roles, the agent operations and
//! the console WebSocket, over real HTTP against a real engine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use bot_core::message::now_millis;
use futures_util::{SinkExt, StreamExt};
use lepton_web::console::session::sign_session;
use lepton_web::console::{Accounts, Role};
use lepton_web::WebConfig;
use reqwest::header::{COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{conversation, error_code, read_json, Socket, TestServer, FRAME_TIMEOUT};

const ALICE: &str = "alice";
const BOB: &str = "bob";
const ROOT: &str = "root";
const PASSWORD: &str = "correct horse battery";

/// A server with agents alice and bob and admin root, and the accounts file's path.
struct Console {
    server: TestServer,
    accounts: PathBuf,
}

/// A signed-in agent's cookie and CSRF token.
#[derive(Clone)]
struct Agent {
    cookie: String,
    csrf: String,
}

fn accounts_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let index = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("lepton-console-test-{}-{index}", std::process::id())).join("agents.json")
}

impl Console {
    async fn start() -> Result<Self> {
        let path = accounts_path();
        let mut accounts = Accounts::new()?;
        accounts.add(ALICE, Role::Agent, PASSWORD)?;
        accounts.add(BOB, Role::Agent, PASSWORD)?;
        accounts.add(ROOT, Role::Admin, PASSWORD)?;
        accounts.save(&path)?;

        let state_path = path.clone();
        let server = TestServer::start_configured(WebConfig::default(), move |state| state.with_accounts(state_path)).await?;
        Ok(Self { server, accounts: path })
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    async fn sign_in_raw(&self, name: &str, password: &str) -> Result<reqwest::Response> {
        let body = json!({ "name": name, "password": password });
        Ok(self.server.http.post(self.url("/console/api/session")).json(&body).send().await?)
    }

    async fn sign_in(&self, name: &str) -> Result<Agent> {
        let response = self.sign_in_raw(name, PASSWORD).await?;
        let cookie = session_cookie(&response)?;
        let (status, body) = read_json(response).await?;
        if status != 200 {
            bail!("sign-in of {name} returned {status}: {body}");
        }
        let csrf = body["csrf"].as_str().ok_or_else(|| anyhow!("no csrf in {body}"))?.to_owned();
        Ok(Agent { cookie, csrf })
    }

    async fn request(&self, agent: Option<&Agent>, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let mut request = self.server.http.request(method, self.url(path));
        if let Some(agent) = agent {
            request = request.header(COOKIE, format!("lepton_console={}", agent.cookie)).header("x-csrf-token", &agent.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).with_context(|| format!("{status}: {text}"))? };
        Ok((status, body))
    }

    async fn get(&self, agent: &Agent, path: &str) -> Result<(u16, Value)> {
        self.request(Some(agent), Method::GET, path, None).await
    }

    async fn post(&self, agent: &Agent, path: &str, body: Value) -> Result<(u16, Value)> {
        self.request(Some(agent), Method::POST, path, Some(body)).await
    }

    /// Makes a customer request a person, so that the conversation waits for an agent.
    async fn waiting_conversation(&self, name: &str) -> Result<String> {
        let id = conversation(name);
        self.server.say(&id, "hello").await?;
        self.server.say(&id, "I want a person").await?;
        Ok(id)
    }

    async fn connect(&self, agent: &Agent) -> Result<Socket> {
        let url = format!("ws{}/console/api/ws", self.server.base.trim_start_matches("http"));
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("cookie", format!("lepton_console={}", agent.cookie).parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(socket)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(folder) = self.accounts.parent() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

fn session_cookie(response: &reqwest::Response) -> Result<String> {
    let header = response.headers().get(SET_COOKIE).ok_or_else(|| anyhow!("no set-cookie"))?.to_str()?;
    let value = header.split(';').next().and_then(|pair| pair.strip_prefix("lepton_console="));
    Ok(value.ok_or_else(|| anyhow!("no console cookie in {header}"))?.to_owned())
}

/// Lists every API route with a body that would be valid.
fn api_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let id = "/console/api/conversations/web:x";
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    let path = |suffix: &str| -> &'static str { Box::leak(format!("{leaked}{suffix}").into_boxed_str()) };
    vec![
        (Method::GET, "/console/api/me", None),
        (Method::DELETE, "/console/api/session", None),
        (Method::GET, "/console/api/queue", None),
        (Method::GET, "/console/api/ws", None),
        (Method::GET, leaked, None),
        (Method::POST, path("/claim"), None),
        (Method::POST, path("/messages"), Some(json!({ "text": "hi" }))),
        (Method::POST, path("/notes"), Some(json!({ "text": "hi" }))),
        (Method::POST, path("/transfer"), Some(json!({ "to": BOB }))),
        (Method::POST, path("/handback"), None),
        (Method::POST, path("/close"), None),
        (Method::GET, "/console/api/agents", None),
        (Method::GET, "/console/api/canned?lang=en", None),
        (Method::GET, "/console/api/intents", None),
        (Method::POST, "/console/api/examples", Some(json!({ "conversation_id": "web:x", "seq": 1, "intent": "greet", "new_intent": false }))),
        (Method::GET, "/console/api/unrecognised", None),
        (Method::DELETE, "/console/api/unrecognised/web:x/1", None),
        (Method::GET, "/console/api/admin/reload", None),
        (Method::POST, "/console/api/admin/reload", None),
    ]
}

#[tokio::test]
async fn api_routes_need_a_session() -> Result<()> {
    let console = Console::start().await?;

    for (method, path, body) in api_routes() {
        let (status, body) = console.request(None, method.clone(), path, body).await?;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(error_code(&body), "not_signed_in", "{method} {path}");
    }
    Ok(())
}

#[tokio::test]
async fn page_and_assets_have_policy() -> Result<()> {
    let console = Console::start().await?;

    let page = console.server.http.get(console.url("/console")).send().await?;
    let csp = page.headers().get("content-security-policy").map(|value| value.to_str().unwrap_or_default().to_owned());
    let script = console.server.http.get(console.url("/console/assets/console.js")).send().await?;
    let etag = script.headers().get("etag").cloned().ok_or_else(|| anyhow!("no etag"))?;
    let revalidated = console.server.http.get(console.url("/console/assets/console.js")).header("if-none-match", etag).send().await?;
    let missing = console.server.http.get(console.url("/console/assets/nope.js")).send().await?;

    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(csp.as_deref(), Some(lepton_web::console::CONTENT_SECURITY_POLICY_VALUE));
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn sign_in_sets_strict_cookie() -> Result<()> {
    let console = Console::start().await?;

    let plain = console.sign_in_raw(ALICE, PASSWORD).await?;
    let plain_cookie = plain.headers().get(SET_COOKIE).map(|value| value.to_str().unwrap_or_default().to_owned()).unwrap_or_default();
    let body = json!({ "name": ALICE, "password": PASSWORD });
    let proxied = console.server.http.post(console.url("/console/api/session")).header("x-forwarded-proto", "https").json(&body).send().await?;
    let proxied_cookie = proxied.headers().get(SET_COOKIE).map(|value| value.to_str().unwrap_or_default().to_owned()).unwrap_or_default();
    let (status, body) = read_json(plain).await?;

    assert_eq!(status, 200);
    assert_eq!(body["agent"], json!({ "name": ALICE, "role": "agent" }));
    assert!(plain_cookie.contains("HttpOnly"), "{plain_cookie}");
    assert!(plain_cookie.contains("SameSite=Strict"), "{plain_cookie}");
    assert!(plain_cookie.contains("Path=/console"), "{plain_cookie}");
    assert!(!plain_cookie.contains("Secure"), "{plain_cookie}");
    assert!(proxied_cookie.contains("; Secure"), "{proxied_cookie}");
    Ok(())
}

#[tokio::test]
async fn me_and_sign_out_use_cookie() -> Result<()> {
    let console = Console::start().await?;
    let root = console.sign_in(ROOT).await?;

    let (me_status, me) = console.get(&root, "/console/api/me").await?;
    let response = console
        .server
        .http
        .delete(console.url("/console/api/session"))
        .header(COOKIE, format!("lepton_console={}", root.cookie))
        .header("x-csrf-token", &root.csrf)
        .send()
        .await?;
    let cleared = response.headers().get(SET_COOKIE).map(|value| value.to_str().unwrap_or_default().to_owned()).unwrap_or_default();

    assert_eq!(me_status, 200);
    assert_eq!(me["agent"], json!({ "name": ROOT, "role": "admin" }));
    assert_eq!(me["csrf"].as_str(), Some(root.csrf.as_str()));
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(cleared.starts_with("lepton_console=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    Ok(())
}

#[tokio::test]
async fn sign_in_rejects_credentials_alike() -> Result<()> {
    let console = Console::start().await?;

    let (wrong_status, wrong) = read_json(console.sign_in_raw(ALICE, "not the password").await?).await?;
    let (unknown_status, unknown) = read_json(console.sign_in_raw("nobody", PASSWORD).await?).await?;

    assert_eq!(wrong_status, 401);
    assert_eq!(unknown_status, 401);
    assert_eq!(error_code(&wrong), "invalid_credentials");
    assert_eq!(wrong, unknown);
    Ok(())
}

#[tokio::test]
async fn sign_in_limited_after_failures() -> Result<()> {
    let console = Console::start().await?;

    for attempt in 0..5 {
        let response = console.sign_in_raw(BOB, "wrong password").await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let limited = console.sign_in_raw(BOB, PASSWORD).await?;
    let retry_after = limited.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let (status, body) = read_json(limited).await?;

    assert_eq!(status, 429);
    assert_eq!(error_code(&body), "rate_limited");
    assert!(retry_after.is_some_and(|seconds| (1..=300).contains(&seconds)), "retry-after {retry_after:?}");
    Ok(())
}

#[tokio::test]
async fn sign_in_limit_holds_for_attempts_at_once() -> Result<()> {
    let console = Console::start().await?;

    let attempts = (0..20).map(|_| console.sign_in_raw(BOB, "wrong password"));
    let responses = futures_util::future::join_all(attempts).await;
    let checked = responses.into_iter().filter(|response| response.as_ref().is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED)).count();

    assert_eq!(checked, 5);
    Ok(())
}

#[tokio::test]
async fn sign_in_success_leaves_address_limit_alone() -> Result<()> {
    let console = Console::start().await?;

    for _ in 0..6 {
        console.sign_in(ALICE).await?;
    }
    let wrong = console.sign_in_raw(BOB, "wrong password").await?;

    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn dismiss_bad_seq_is_json_error() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;

    let (status, body) = console.request(Some(&alice), Method::DELETE, "/console/api/unrecognised/web:x/-1", None).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_path");
    Ok(())
}

#[tokio::test]
async fn changes_need_csrf_token() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let id = console.waiting_conversation("csrf").await?;
    let claim = format!("/console/api/conversations/{id}/claim");

    let missing = Agent { csrf: String::new(), ..alice.clone() };
    let wrong = Agent { csrf: "00".repeat(32), ..alice.clone() };
    let (missing_status, missing_body) = console.post(&missing, &claim, json!({})).await?;
    let (wrong_status, wrong_body) = console.post(&wrong, &claim, json!({})).await?;
    let (queue_status, queue) = console.get(&alice, "/console/api/queue").await?;

    assert_eq!(missing_status, 403);
    assert_eq!(error_code(&missing_body), "csrf_invalid");
    assert_eq!(wrong_status, 403);
    assert_eq!(error_code(&wrong_body), "csrf_invalid");
    assert_eq!(queue_status, 200);
    assert_eq!(queue["waiting"][0]["conversation_id"], json!(id), "the conversation must still wait: {queue}");
    Ok(())
}

#[tokio::test]
async fn changes_from_other_origin_rejected() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let id = console.waiting_conversation("origin").await?;

    let response = console
        .server
        .http
        .post(console.url(&format!("/console/api/conversations/{id}/claim")))
        .header(COOKIE, format!("lepton_console={}", alice.cookie))
        .header("x-csrf-token", &alice.csrf)
        .header(ORIGIN, "https://evil.example")
        .send()
        .await?;
    let (status, body) = read_json(response).await?;

    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "origin_not_allowed");
    Ok(())
}

#[tokio::test]
async fn admin_routes_forbid_agents() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let root = console.sign_in(ROOT).await?;

    let (get_status, get_body) = console.get(&alice, "/console/api/admin/reload").await?;
    let (post_status, _) = console.post(&alice, "/console/api/admin/reload", json!({})).await?;
    let (admin_status, admin_body) = console.get(&root, "/console/api/admin/reload").await?;

    assert_eq!(get_status, 403);
    assert_eq!(error_code(&get_body), "forbidden");
    assert_eq!(post_status, 403);
    // The test server has no reloader, so the admin passes the role check and gets that error.
    assert_eq!(admin_status, 404);
    assert_eq!(error_code(&admin_body), "reload_unavailable");
    Ok(())
}

#[tokio::test]
async fn foreign_tampered_expired_cookies_rejected() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let accounts = Accounts::load(&console.accounts)?.ok_or_else(|| anyhow!("no accounts file"))?;
    let account = accounts.find(ALICE).ok_or_else(|| anyhow!("no alice"))?;
    let mut other = Accounts::new()?;
    other.add(ALICE, Role::Admin, PASSWORD)?;
    let foreign_account = other.find(ALICE).ok_or_else(|| anyhow!("no alice"))?;

    let now = now_millis() / 1000;
    let expired = sign_session(&accounts, &account.name, account.role, account.generation, now - 1).unwrap_or_default();
    let foreign = sign_session(&other, &foreign_account.name, Role::Admin, account.generation, now + 600).unwrap_or_default();
    let promoted = alice.cookie.replace(":agent:", ":admin:");
    let mut last_digit_changed = alice.cookie.clone();
    let last = if last_digit_changed.ends_with('0') { '1' } else { '0' };
    last_digit_changed.pop();
    last_digit_changed.push(last);

    for (case, cookie) in [("expired", expired), ("other secret", foreign), ("role changed", promoted), ("mac changed", last_digit_changed)] {
        let agent = Agent { cookie, csrf: alice.csrf.clone() };
        let (status, body) = console.get(&agent, "/console/api/me").await?;
        assert_eq!(status, 401, "{case}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn new_password_ends_sessions() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;

    let mut accounts = Accounts::load(&console.accounts)?.ok_or_else(|| anyhow!("no accounts file"))?;
    accounts.set_password(ALICE, "another password")?;
    accounts.save(&console.accounts)?;
    let (status, _) = console.get(&alice, "/console/api/me").await?;

    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test]
async fn concurrent_claims_have_one_winner() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let bob = console.sign_in(BOB).await?;
    let id = console.waiting_conversation("race").await?;
    let path = format!("/console/api/conversations/{id}/claim");

    let (first, second) = tokio::join!(console.post(&alice, &path, json!({})), console.post(&bob, &path, json!({})));
    let results = [(ALICE, first?), (BOB, second?)];

    let winners: Vec<&str> = results.iter().filter(|(_, (status, _))| *status == 200).map(|(name, _)| *name).collect();
    let losers: Vec<&Value> = results.iter().filter(|(_, (status, _))| *status == 409).map(|(_, (_, body))| body).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(losers.len(), 1, "{results:?}");
    assert_eq!(error_code(losers[0]), "already_claimed");
    assert_eq!(losers[0]["error"]["agent"], json!(winners[0]));
    Ok(())
}

#[tokio::test]
async fn agent_operations_change_conversation() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let bob = console.sign_in(BOB).await?;
    let id = console.waiting_conversation("ops").await?;
    let base = format!("/console/api/conversations/{id}");

    let (claim, _) = console.post(&alice, &format!("{base}/claim"), json!({})).await?;
    let (reply, reply_body) = console.post(&alice, &format!("{base}/messages"), json!({ "text": "Hi, I'm Alice." })).await?;
    let (bob_reply, bob_reply_body) = console.post(&bob, &format!("{base}/messages"), json!({ "text": "Not mine." })).await?;
    let (note, note_body) = console.post(&bob, &format!("{base}/notes"), json!({ "text": "VIP customer" })).await?;
    let (unknown, unknown_body) = console.post(&alice, &format!("{base}/transfer"), json!({ "to": "nobody" })).await?;
    let (transfer, _) = console.post(&alice, &format!("{base}/transfer"), json!({ "to": BOB })).await?;
    let (queue_status, queue) = console.get(&bob, "/console/api/queue").await?;
    let (hand_back, _) = console.post(&bob, &format!("{base}/handback"), json!({})).await?;
    let (detail_status, detail) = console.get(&alice, &base).await?;

    assert_eq!(claim, 200);
    assert_eq!(reply, 200);
    assert_eq!(reply_body["event"]["kind"]["author"], json!({ "type": "agent", "id": ALICE }), "{reply_body}");
    assert_eq!(bob_reply, 403);
    assert_eq!(error_code(&bob_reply_body), "not_owner");
    assert_eq!(note, 200);
    assert_eq!(note_body["event"]["kind"], json!({ "type": "note", "agent": BOB, "text": "VIP customer" }));
    assert_eq!(unknown, 422);
    assert_eq!(error_code(&unknown_body), "unknown_agent");
    assert_eq!(transfer, 200);
    assert_eq!(queue_status, 200);
    assert_eq!(queue["mine"][0]["conversation_id"], json!(id), "{queue}");
    assert_eq!(queue["mine"][0]["agent"], json!(BOB), "{queue}");
    assert_eq!(hand_back, 200);
    assert_eq!(detail_status, 200);
    assert_eq!(detail["state"]["name"], json!("bot"), "{detail}");
    let kinds: Vec<&str> = detail["events"].as_array().into_iter().flatten().filter_map(|event| event["kind"]["type"].as_str()).collect();
    assert!(kinds.contains(&"note"), "{kinds:?}");

    let (claim_again, _) = console.post(&alice, &format!("{base}/claim"), json!({})).await?;
    let (close, close_body) = console.post(&alice, &format!("{base}/close"), json!({})).await?;
    let (_, closed) = console.get(&alice, &base).await?;
    assert_eq!(claim_again, 200);
    assert_eq!(close, 200, "{close_body}");
    assert_eq!(closed["state"]["name"], json!("closed"), "{closed}");
    Ok(())
}

#[tokio::test]
async fn admins_transfer_others_conversations() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let bob = console.sign_in(BOB).await?;
    let root = console.sign_in(ROOT).await?;
    let id = console.waiting_conversation("force").await?;
    let base = format!("/console/api/conversations/{id}");
    console.post(&alice, &format!("{base}/claim"), json!({})).await?;

    let (agent_status, _) = console.post(&bob, &format!("{base}/transfer"), json!({ "to": BOB })).await?;
    let (admin_status, _) = console.post(&root, &format!("{base}/transfer"), json!({ "to": BOB })).await?;

    assert_eq!(agent_status, 403);
    assert_eq!(admin_status, 200);
    Ok(())
}

#[tokio::test]
async fn notes_hidden_from_customer_api() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let id = console.waiting_conversation("notes").await?;
    console.post(&alice, &format!("/console/api/conversations/{id}/claim"), json!({})).await?;
    console.post(&alice, &format!("/console/api/conversations/{id}/notes"), json!({ "text": "secret note" })).await?;
    console.post(&alice, &format!("/console/api/conversations/{id}/messages"), json!({ "text": "visible reply" })).await?;

    let response = console.server.http.get(console.url(&format!("/api/v1/conversations/{id}/events"))).send().await?;
    let text = response.text().await?;

    assert!(text.contains("visible reply"), "{text}");
    assert!(!text.contains("secret note"), "{text}");
    assert!(!text.contains("\"note\""), "{text}");
    Ok(())
}

#[tokio::test]
async fn pick_lists_come_from_bot() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;

    let (canned_status, canned) = console.get(&alice, "/console/api/canned?lang=zh").await?;
    let (intents_status, intents) = console.get(&alice, "/console/api/intents").await?;
    let (agents_status, agents) = console.get(&alice, "/console/api/agents").await?;

    assert_eq!(canned_status, 200);
    assert!(canned["replies"].as_array().into_iter().flatten().any(|reply| reply["text"] == json!("您的订单正在配送中。")), "{canned}");
    assert_eq!(intents_status, 200);
    assert!(intents["intents"].as_array().into_iter().flatten().any(|intent| intent == &json!({ "name": "greet", "examples": 1 })), "{intents}");
    assert_eq!(agents_status, 200);
    assert_eq!(agents["agents"].as_array().map(Vec::len), Some(3), "{agents}");
    Ok(())
}

#[tokio::test]
async fn canned_for_unknown_language_uses_default() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;

    let (status, canned) = console.get(&alice, "/console/api/canned?lang=fr").await?;
    let (invalid_status, invalid) = console.get(&alice, "/console/api/canned?lang=f").await?;

    assert_eq!(status, 200, "{canned}");
    assert_eq!(canned["lang"], json!("en"), "{canned}");
    assert!(canned["replies"].as_array().into_iter().flatten().any(|reply| reply["text"] == json!("Your order is on its way.")), "{canned}");
    assert_eq!(invalid_status, 422, "{invalid}");
    assert_eq!(error_code(&invalid), "invalid_lang");
    Ok(())
}

/// Reads text frames until one of `kind` arrives.
async fn next_frame_of(socket: &mut Socket, kind: &str) -> Result<Value> {
    loop {
        let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await.with_context(|| format!("no {kind} frame in time"))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str())?;
                if value["type"] == json!(kind) {
                    return Ok(value);
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => bail!("websocket failed: {error}"),
            None => bail!("websocket ended"),
        }
    }
}

#[tokio::test]
async fn socket_pushes_queue_on_handoff() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let mut socket = console.connect(&alice).await?;
    let first = next_frame_of(&mut socket, "queue").await?;

    let id = console.waiting_conversation("live").await?;
    let pushed = loop {
        let frame = next_frame_of(&mut socket, "queue").await?;
        if !frame["waiting"].as_array().is_none_or(Vec::is_empty) {
            break frame;
        }
    };

    assert_eq!(first["waiting"], json!([]));
    assert_eq!(pushed["waiting"][0]["conversation_id"], json!(id));
    assert_eq!(pushed["waiting"][0]["reason"], json!("flow_step"));
    assert_eq!(pushed["waiting"][0]["state"], json!("waiting"));
    Ok(())
}

#[tokio::test]
async fn socket_sends_watched_events() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let id = console.waiting_conversation("watch").await?;
    let mut socket = console.connect(&alice).await?;
    next_frame_of(&mut socket, "queue").await?;

    let (_, detail) = console.get(&alice, &format!("/console/api/conversations/{id}")).await?;
    let last_seq = detail["events"].as_array().and_then(|events| events.last()).and_then(|event| event["seq"].as_u64()).unwrap_or(0);

    console.post(&alice, &format!("/console/api/conversations/{id}/notes"), json!({ "text": "looking" })).await?;
    // Watching from the last seq seen delivers what happened in between.
    socket.send(Message::Text(json!({ "type": "watch", "conversation_id": id, "after": last_seq }).to_string().into())).await?;
    let note = next_frame_of(&mut socket, "event").await?;
    console.post(&alice, &format!("/console/api/conversations/{id}/claim"), json!({})).await?;
    let claim = next_frame_of(&mut socket, "event").await?;

    assert_eq!(note["event"]["seq"], json!(last_seq + 1));
    assert_eq!(note["event"]["kind"], json!({ "type": "note", "agent": ALICE, "text": "looking" }));
    assert_eq!(claim["event"]["seq"], json!(last_seq + 2));
    Ok(())
}

#[tokio::test]
async fn socket_sends_customer_presence() -> Result<()> {
    let console = Console::start().await?;
    let alice = console.sign_in(ALICE).await?;
    let id = console.waiting_conversation("presence").await?;
    let mut agent_socket = console.connect(&alice).await?;
    next_frame_of(&mut agent_socket, "queue").await?;

    let customer = console.server.connect(&id, 0).await?;
    let online = next_frame_of(&mut agent_socket, "presence").await?;
    drop(customer);
    let left = next_frame_of(&mut agent_socket, "presence").await?;

    assert_eq!(online, json!({ "type": "presence", "conversation_id": id, "presence": "online" }));
    assert_eq!(left["presence"], json!("left"));
    Ok(())
}
