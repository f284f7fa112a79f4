//! The web channel's inbound path: `POST /api/v1/conversations/{id}/messages`
//! through the real router (JSON body extractor, id, locale and text checks)
//! into a real engine running the demo bot on an in-memory store.
//!
//! The input's first line is the `{id}` path segment and the rest the request
//! body. An input without a newline is all body, sent to conversation `fuzz`,
//! so a JSON body on its own is a valid seed.
//!
//! Every answer must be JSON: the events for a 200, `{"error":{"code":...}}`
//! otherwise, and never a 500, since the store cannot fail here.

#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use bot_core::action::NoHttp;
use bot_core::{BotDefinition, Classification, Classifier, Engine, EngineParts, IntentId, MemoryStore, ScoredIntent};
use lepton_knowledge::KnowledgeIndex;
use lepton_web::{RateLimits, WebConfig, WebState};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Requests served by one engine before a fresh one replaces it, so that the
/// in-memory store does not grow without bound over a long run.
const REQUESTS_PER_ENGINE: u32 = 4096;

/// Picks the demo intent that has the message as one of its examples, ignoring
/// case: a real classifier's top answer for its own training data.
struct ExampleClassifier {
    examples: Vec<(String, IntentId)>,
}

impl ExampleClassifier {
    fn new(bot: &BotDefinition) -> Self {
        let mut examples = Vec::new();
        for (id, intent) in &bot.intents {
            for text in intent.examples.values().flatten() {
                examples.push((text.to_lowercase(), id.clone()));
            }
        }
        Self { examples }
    }
}

impl Classifier for ExampleClassifier {
    fn classify(&self, text: &str) -> Classification {
        let text = text.to_lowercase();
        let ranking = self
            .examples
            .iter()
            .filter(|(example, _)| *example == text)
            .map(|(_, intent)| ScoredIntent { intent: intent.clone(), confidence: 0.95 })
            .take(1)
            .collect();
        Classification { ranking }
    }
}

struct Demo {
    bot: Arc<BotDefinition>,
    classifier: Arc<ExampleClassifier>,
    knowledge: Arc<KnowledgeIndex>,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo");
        let bot = lepton_flows::load_bot(&dir).expect("the demo bot loads").bot;
        let knowledge = KnowledgeIndex::in_memory(&bot.faq, &bot.articles).expect("the demo index builds");
        Demo { classifier: Arc::new(ExampleClassifier::new(&bot)), bot: Arc::new(bot), knowledge: Arc::new(knowledge) }
    })
}

struct Server {
    runtime: tokio::runtime::Runtime,
    router: Router,
    served: u32,
}

impl Server {
    fn new(runtime: tokio::runtime::Runtime) -> Self {
        let demo = demo();
        let router = {
            let _entered = runtime.enter();
            let parts = EngineParts {
                classifier: demo.classifier.clone(),
                knowledge: demo.knowledge.clone(),
                http: Arc::new(NoHttp),
                store: Arc::new(MemoryStore::new()),
            };
            let engine = Engine::new(demo.bot.clone(), parts);
            // Every input comes from one address, so the rate limits would answer
            // nearly all of them with 429 before the body is read.
            let rate_limits = RateLimits { per_conversation: None, per_address: None, ..RateLimits::default() };
            let config = WebConfig { rate_limits, ..WebConfig::default() };
            lepton_web::router(WebState::new(engine, config))
        };
        Self { runtime, router, served: 0 }
    }

    fn renewed(self) -> Self {
        if self.served < REQUESTS_PER_ENGINE {
            return self;
        }
        Self::new(self.runtime)
    }
}

thread_local! {
    static SERVER: RefCell<Option<Server>> = const { RefCell::new(None) };
}

fn split_input(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|byte| *byte == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (b"fuzz", data),
    }
}

fn request(id: &[u8], body: &[u8]) -> Option<Request<Body>> {
    let id = std::str::from_utf8(id).ok()?;
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    Request::post(format!("/api/v1/conversations/{id}/messages"))
        .header(header::CONTENT_TYPE, "application/json")
        .extension(ConnectInfo(peer))
        .body(Body::from(body.to_vec()))
        .ok()
}

async fn send(router: Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router.oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the response body reads");
    (status, body.to_vec())
}

fn check(status: StatusCode, body: &[u8]) {
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500 for customer input: {}", String::from_utf8_lossy(body));
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|error| panic!("{status} with a body that is not JSON ({error})"));
    if status == StatusCode::OK {
        assert!(json["events"].is_array(), "200 without events: {json}");
    } else {
        assert!(json["error"]["code"].is_string(), "{status} without an error code: {json}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (id, body) = split_input(data);
    let Some(request) = request(id, body) else {
        return;
    };

    SERVER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let server = match slot.take() {
            Some(server) => server.renewed(),
            None => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
                Server::new(runtime)
            }
        };
        let (status, response) = server.runtime.block_on(send(server.router.clone(), request));
        check(status, &response);
        *slot = Some(Server { served: server.served + 1, ..server });
    });
});
