//! The engine, the fake helpdesk server and polling helpers shared by the tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::Router;
use bot_core::action::NoHttp;
use bot_core::knowledge::NoKnowledge;
use bot_core::{BotDefinition, Classification, Classifier, ConversationId, Engine, EngineParts, Event, HandoffState, InboundMessage, MemoryStore};

/// Understands nothing, so every message falls back and the second one hands off.
struct NoIntent;

impl Classifier for NoIntent {
    fn classify(&self, _text: &str) -> Classification {
        Classification::default()
    }
}

pub fn engine() -> Engine {
    let parts = EngineParts { classifier: Arc::new(NoIntent), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store: Arc::new(MemoryStore::new()) };
    Engine::new(Arc::new(BotDefinition::default()), parts)
}

/// Sends two messages the bot does not understand, which hands the conversation off.
pub async fn hand_off(engine: &Engine, id: &str) -> Result<()> {
    engine.handle(InboundMessage::text(id, "web", "blah")).await?;
    engine.handle(InboundMessage::text(id, "web", "my parcel is wet")).await?;
    let state = handoff_state(engine, id).await?;
    if state.name() != "waiting" {
        bail!("expected the conversation to wait for an agent, found {}", state.name());
    }
    Ok(())
}

pub async fn handoff_state(engine: &Engine, id: &str) -> Result<HandoffState> {
    let Some(session) = engine.session(&ConversationId::new(id)).await? else { bail!("conversation {id} has no session") };
    Ok(session.handoff)
}

pub async fn transcript(engine: &Engine, id: &str) -> Result<Vec<Event>> {
    Ok(engine.events(&ConversationId::new(id), 0, 1000).await?)
}

/// One request the fake helpdesk received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Answers every request with the JSON `answer` returns for its method and path,
/// and records it.
#[derive(Clone)]
pub struct FakeServer {
    pub received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<dyn Fn(&Method, &str) -> (u16, serde_json::Value) + Send + Sync>,
}

impl FakeServer {
    pub fn new(answers: impl Fn(&Method, &str) -> (u16, serde_json::Value) + Send + Sync + 'static) -> Self {
        Self { received: Arc::default(), answers: Arc::new(answers) }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("fake server poisoned").clone()
    }

    pub async fn start(&self) -> Result<SocketAddr> {
        let router = Router::new().fallback(record).with_state(self.clone());
        serve(router).await
    }

    /// Waits until `count` requests arrived, failing after five seconds.
    pub async fn wait_for(&self, count: usize) -> Result<Vec<Received>> {
        for _ in 0..500 {
            let received = self.received();
            if received.len() >= count {
                return Ok(received);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("expected {count} requests at the fake helpdesk, got {:#?}", self.received())
    }
}

async fn record(State(server): State<FakeServer>, request: Request) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let (status, answer) = (server.answers)(&parts.method, &path);
    server.received.lock().expect("fake server poisoned").push(Received { method: parts.method, path, query, headers: parts.headers, body });
    (axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR), axum::Json(answer))
}

/// Serves `router` on a free port of 127.0.0.1.
pub async fn serve(router: Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(address)
}

pub fn query_map(query: &str) -> HashMap<String, String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}
