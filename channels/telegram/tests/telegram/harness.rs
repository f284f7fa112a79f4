//! The demo bot's engine behind a Telegram channel that talks to the fake Bot
//! API, and builders of update JSON.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use bot_core::{BotDefinition, Engine, EngineParts, HttpClient, HttpError, HttpRequest, HttpResponse, MemoryStore};
use lepton_intents::{IntentModel, TrainConfig};
use lepton_knowledge::KnowledgeIndex;
use lepton_telegram::{Mode, TelegramChannel, TelegramConfig, TelegramError};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fake::FakeApi;

pub type TestResult = anyhow::Result<()>;

/// A private chat's id (equal to the customer's user id) and a group's.
pub const CUSTOMER: i64 = 1001;
pub const GROUP: i64 = -1002000;

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo")
}

struct Demo {
    bot: BotDefinition,
    classifier: Arc<IntentModel>,
    knowledge: Arc<KnowledgeIndex>,
}

/// Loads the demo bot and trains its model once per test run.
fn demo() -> anyhow::Result<&'static Demo> {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    if let Some(demo) = DEMO.get() {
        return Ok(demo);
    }
    let bot = lepton_flows::load_bot(&demo_dir()).context("cannot load the demo bot")?.bot;
    let config = TrainConfig { seed: bot.settings.classifier.seed, ..Default::default() };
    let classifier = Arc::new(IntentModel::train(&bot.training_examples(), &config)?);
    let knowledge = Arc::new(KnowledgeIndex::in_memory(&bot.faq, &bot.articles)?);
    Ok(DEMO.get_or_init(|| Demo { bot, classifier, knowledge }))
}

/// Builds the demo engine with an in-memory store; its HTTP steps call `server_url`.
pub fn demo_engine(server_url: &str) -> anyhow::Result<Engine> {
    let demo = demo()?;
    let mut bot = demo.bot.clone();
    bot.settings.variables.insert("server_url".to_owned(), server_url.to_owned());
    let parts = EngineParts {
        classifier: demo.classifier.clone(),
        knowledge: demo.knowledge.clone(),
        http: Arc::new(LoopbackHttp(reqwest::Client::new())),
        store: Arc::new(MemoryStore::default()),
    };
    Ok(Engine::new(Arc::new(bot), parts))
}

/// Sends the flows' HTTP steps, to 127.0.0.1 only.
struct LoopbackHttp(reqwest::Client);

#[async_trait]
impl HttpClient for LoopbackHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let failed = |reason: String| HttpError::Failed { url: request.url.clone(), reason };
        let url = reqwest::Url::parse(&request.url).map_err(|e| failed(e.to_string()))?;
        if url.host_str() != Some("127.0.0.1") {
            return Err(HttpError::Invalid { reason: format!("tests call only 127.0.0.1, not {url}") });
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| failed(e.to_string()))?;
        let mut builder = self.0.request(method, url).timeout(request.timeout.unwrap_or(std::time::Duration::from_secs(5)));
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(HttpResponse { status, body })
    }
}

/// Returns settings that point the channel at the fake, and nowhere else.
pub fn test_config(fake: &FakeApi) -> anyhow::Result<TelegramConfig> {
    if fake.url.host_str() != Some("127.0.0.1") {
        bail!("the fake Bot API must listen on 127.0.0.1, not {}", fake.url);
    }
    Ok(TelegramConfig::new("123456:TEST-token").with_api_url(fake.url.clone()))
}

/// A channel polling the fake, with its proactive sender running.
pub struct Harness {
    pub fake: FakeApi,
    pub engine: Engine,
    pub channel: TelegramChannel,
    stop: Option<oneshot::Sender<()>>,
    polling: Option<JoinHandle<Result<(), TelegramError>>>,
}

impl Harness {
    pub async fn polling() -> anyhow::Result<Self> {
        Self::polling_with(|config| config).await
    }

    pub async fn polling_with(adjust: impl FnOnce(TelegramConfig) -> TelegramConfig) -> anyhow::Result<Self> {
        let fake = FakeApi::start().await?;
        let engine = demo_engine(&fake.server_url())?;
        let channel = TelegramChannel::connect(engine.clone(), adjust(test_config(&fake)?)).await?;
        channel.spawn_proactive_sender();
        let (stop, stopped) = oneshot::channel();
        let polling = tokio::spawn({
            let channel = channel.clone();
            async move {
                channel
                    .run_polling(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        Ok(Self { fake, engine, channel, stop: Some(stop), polling: Some(polling) })
    }

    /// Starts a channel in webhook mode, which does not poll.
    pub async fn webhook(secret: &str) -> anyhow::Result<Self> {
        let fake = FakeApi::start().await?;
        let engine = demo_engine(&fake.server_url())?;
        let webhook = lepton_telegram::WebhookConfig::new(reqwest::Url::parse("https://bot.example.com")?, "/telegram/webhook", secret)?;
        let config = test_config(&fake)?.with_mode(Mode::Webhook(webhook));
        let channel = TelegramChannel::connect(engine.clone(), config).await?;
        channel.spawn_proactive_sender();
        Ok(Self { fake, engine, channel, stop: None, polling: None })
    }

    /// Stops polling and returns its result.
    pub async fn stop(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(polling) = self.polling.take() {
            tokio::time::timeout(Duration::from_secs(30), polling).await.context("polling did not stop")???;
        }
        Ok(())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(polling) = self.polling.take() {
            polling.abort();
        }
    }
}

fn user(id: i64, lang: &str) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": "Li", "username": "li_wei", "language_code": lang })
}

fn private_chat(id: i64) -> Value {
    json!({ "id": id, "first_name": "Li", "type": "private" })
}

pub fn group_chat() -> Value {
    json!({ "id": GROUP, "title": "Lepton fans", "type": "supergroup" })
}

/// Builds a message update; `fields` adds the content (`text`, `photo`, `sticker`, ...).
pub fn message(update_id: i64, message_id: i64, chat: Value, lang: &str, fields: Value) -> Value {
    let from = user(CUSTOMER, lang);
    let mut message = json!({ "message_id": message_id, "from": from, "chat": chat, "date": 1765000000 });
    merge(&mut message, fields);
    json!({ "update_id": update_id, "message": message })
}

/// Builds a text message in the customer's private chat.
pub fn private_text(update_id: i64, message_id: i64, text: &str) -> Value {
    message(update_id, message_id, private_chat(CUSTOMER), "en", json!({ "text": text }))
}

/// Builds a command at the start of a text, with its `bot_command` entity.
pub fn command(update_id: i64, chat: Value, lang: &str, text: &str) -> Value {
    let length = text.split_whitespace().next().unwrap_or_default().encode_utf16().count();
    let fields = json!({ "text": text, "entities": [{ "type": "bot_command", "offset": 0, "length": length }] });
    message(update_id, update_id, chat, lang, fields)
}

/// Builds the customer's edit of an earlier private message.
pub fn edited_text(update_id: i64, message_id: i64, text: &str) -> Value {
    let mut update = private_text(update_id, message_id, text);
    let message = update["message"].take();
    let mut edited = json!({ "update_id": update_id, "edited_message": message });
    edited["edited_message"]["edit_date"] = json!(1765000100);
    edited
}

/// Builds a tap on a button of the bot's message `message_id`.
pub fn callback(update_id: i64, query_id: &str, message_id: i64, data: &str) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": user(CUSTOMER, "en"),
            "message": {
                "message_id": message_id,
                "from": { "id": crate::fake::BOT_ID, "is_bot": true, "first_name": "Lepton Shop", "username": crate::fake::BOT_USERNAME },
                "chat": private_chat(CUSTOMER),
                "date": 1765000000,
                "text": "How can I help?"
            },
            "chat_instance": "-8210000",
            "data": data
        }
    })
}

fn merge(target: &mut Value, fields: Value) {
    if let (Value::Object(target), Value::Object(fields)) = (target, fields) {
        target.extend(fields);
    }
}
