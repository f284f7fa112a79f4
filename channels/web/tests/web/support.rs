//! A test server: the web router on 127.0.0.1:0 over a real engine, plus small
//! HTTP and WebSocket helpers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bot_core::action::NoHttp;
use bot_core::bot::{Button, Flow, Intent, IntentAction, Response, ResponseVariant, Step, StepKind};
use bot_core::knowledge::NoKnowledge;
use bot_core::{
    BotDefinition, Classification, Classifier, Engine, EngineParts, Event, FlowId, HandoffReason, IntentId, Lang, MemoryStore,
    ResponseId, ScoredIntent,
};
use futures_util::StreamExt;
use lepton_web::{router, WebConfig, WebState};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for a frame that should arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

pub const AGENT_TOKEN: &str = "test-agent-token";

/// Picks intents by keywords, so that tests know which reply a message gets.
struct KeywordClassifier;

impl Classifier for KeywordClassifier {
    fn classify(&self, text: &str) -> Classification {
        let text = text.to_lowercase();
        let keywords = [("hello", "greet"), ("你好", "greet"), ("order", "order"), ("person", "human")];
        let ranking = keywords
            .iter()
            .filter(|(keyword, _)| text.contains(keyword))
            .map(|(_, intent)| ScoredIntent { intent: IntentId::new(*intent), confidence: 0.9 })
            .take(1)
            .collect();
        Classification { ranking }
    }
}

/// Quick replies as `(title, payload)`.
type Buttons<'a> = &'a [(&'a str, &'a str)];

/// Builds a response from `(language, text, buttons)` variants.
fn response(variants: &[(&str, &str, Buttons)]) -> Response {
    let variants = variants
        .iter()
        .map(|(lang, text, buttons)| {
            let buttons = buttons
                .iter()
                .map(|(title, payload)| Button { title: (*title).to_owned(), payload: (*payload).to_owned() })
                .collect();
            (Lang::new(*lang), vec![ResponseVariant { text: (*text).to_owned(), buttons }])
        })
        .collect();
    Response { variants }
}

fn intent(example: &str, action: IntentAction) -> Intent {
    let examples = BTreeMap::from([(Lang::new("en"), vec![example.to_owned()])]);
    Intent { examples, action, interrupts: true }
}

/// Builds a bot that greets with two quick replies, reports an order status, and hands
/// off to a person on request.
pub fn test_bot() -> BotDefinition {
    let mut bot = BotDefinition::default();
    bot.settings.languages = vec![Lang::new("en"), Lang::new("zh")];

    let greet_buttons: Buttons = &[("Track my order", "/order"), ("Talk to a person", "/human")];
    let greet_buttons_zh: Buttons = &[("查询订单", "/order"), ("转人工", "/human")];
    bot.responses.insert(
        ResponseId::new("greet"),
        response(&[("en", "Hello! How can I help?", greet_buttons), ("zh", "您好！有什么可以帮您？", greet_buttons_zh)]),
    );
    bot.responses.insert(
        ResponseId::new("order_status"),
        response(&[("en", "Your order is on its way.", &[]), ("zh", "您的订单正在配送中。", &[])]),
    );

    bot.intents.insert(IntentId::new("greet"), intent("hello", IntentAction::Respond(ResponseId::new("greet"))));
    bot.intents.insert(IntentId::new("order"), intent("where is my order", IntentAction::Respond(ResponseId::new("order_status"))));
    bot.intents.insert(IntentId::new("human"), intent("talk to a person", IntentAction::Flow(FlowId::new("human"))));
    bot.flows.insert(FlowId::new("human"), Flow { steps: vec![Step { id: None, kind: StepKind::Handoff { reason: HandoffReason::FlowStep } }] });
    bot
}

pub struct TestServer {
    pub base: String,
    pub engine: Engine,
    pub state: WebState,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a server with an agent token.
    pub async fn start() -> Result<Self> {
        let config = WebConfig { agent_token: Some(AGENT_TOKEN.to_owned()), ..WebConfig::default() };
        Self::start_with(config).await
    }

    /// Starts a server with an agent token and no per-conversation rate limit.
    pub async fn start_without_conversation_limit() -> Result<Self> {
        let mut config = WebConfig { agent_token: Some(AGENT_TOKEN.to_owned()), ..WebConfig::default() };
        config.rate_limits.per_conversation = None;
        Self::start_with(config).await
    }

    pub async fn start_with(config: WebConfig) -> Result<Self> {
        Self::start_configured(config, |state| state).await
    }

    /// Starts a server whose state `configure` finishes (accounts, writers).
    pub async fn start_configured(config: WebConfig, configure: impl FnOnce(WebState) -> WebState) -> Result<Self> {
        let parts = EngineParts {
            classifier: Arc::new(KeywordClassifier),
            knowledge: Arc::new(NoKnowledge),
            http: Arc::new(NoHttp),
            store: Arc::new(MemoryStore::new()),
        };
        let engine = Engine::new(Arc::new(test_bot()), parts);
        let state = configure(WebState::new(engine.clone(), config));
        let app = router(state.clone());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                eprintln!("test server stopped: {error}");
            }
        });

        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { base: format!("http://{address}"), engine, state, http })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a customer message and returns the status and the JSON body.
    pub async fn send(&self, conversation: &str, body: Value) -> Result<(u16, Value)> {
        let url = self.url(&format!("/api/v1/conversations/{conversation}/messages"));
        let response = self.http.post(url).json(&body).send().await?;
        read_json(response).await
    }

    /// Sends a customer text and returns the events, failing on any status but 200.
    pub async fn say(&self, conversation: &str, text: &str) -> Result<Vec<Event>> {
        let (status, body) = self.send(conversation, serde_json::json!({ "text": text })).await?;
        if status != 200 {
            bail!("sending {text:?} returned {status}: {body}");
        }
        events_of(&body)
    }

    pub async fn agent_post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        let url = self.url(&format!("/api/v1/agent/conversations{path}"));
        let response = self.http.post(url).bearer_auth(AGENT_TOKEN).json(&body).send().await?;
        read_json(response).await
    }

    pub async fn agent_get(&self, path: &str) -> Result<(u16, Value)> {
        let url = self.url(&format!("/api/v1/agent/conversations{path}"));
        let response = self.http.get(url).bearer_auth(AGENT_TOKEN).send().await?;
        read_json(response).await
    }

    pub async fn connect(&self, conversation: &str, after: u64) -> Result<Socket> {
        let url = format!("ws{}/api/v1/conversations/{conversation}/ws?after={after}", self.base.trim_start_matches("http"));
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(socket)
    }
}

pub async fn read_json(response: reqwest::Response) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).with_context(|| format!("status {status}, body is not JSON: {text:?}"))?;
    Ok((status, body))
}

pub fn events_of(body: &Value) -> Result<Vec<Event>> {
    let events = body.get("events").cloned().ok_or_else(|| anyhow!("no events in {body}"))?;
    Ok(serde_json::from_value(events)?)
}

/// Returns the `error.code` of an error body.
pub fn error_code(body: &Value) -> &str {
    body.pointer("/error/code").and_then(Value::as_str).unwrap_or("<no error code>")
}

pub fn error_message(body: &Value) -> &str {
    body.pointer("/error/message").and_then(Value::as_str).unwrap_or("<no error message>")
}

/// Reads the next text frame as an event, skipping pings and pongs.
pub async fn next_event(socket: &mut Socket) -> Result<Event> {
    loop {
        let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await.context("no frame in time")?;
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => bail!("expected an event, got {other:?}"),
            Some(Err(error)) => bail!("websocket failed: {error}"),
            None => bail!("websocket ended"),
        }
    }
}

/// Reads `count` events.
pub async fn next_events(socket: &mut Socket, count: usize) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(next_event(socket).await?);
    }
    Ok(events)
}

/// Fails when a frame other than a ping or pong arrives within `wait`.
pub async fn expect_silence(socket: &mut Socket, wait: Duration) -> Result<()> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Err(_) => return Ok(()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => bail!("expected no frame, got {other:?}"),
        }
    }
}

pub fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

/// Returns the text of a reply event, a customer's text message or a note.
pub fn text_of(event: &Event) -> Option<&str> {
    match &event.kind {
        bot_core::EventKind::Reply(reply) => Some(&reply.text),
        bot_core::EventKind::Customer { content: bot_core::Content::Text(text), .. } => Some(text),
        bot_core::EventKind::Customer { .. } => None,
        bot_core::EventKind::Note { text, .. } => Some(text),
    }
}

/// Returns a web conversation id for one test's `name`.
pub fn conversation(name: &str) -> String {
    format!("web:{name}")
}
