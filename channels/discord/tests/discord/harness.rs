//! The demo bot's engine behind a Discord channel that talks to the fake
//! Discord, and builders of gateway event JSON.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use bot_core::{BotDefinition, Engine, EngineParts, HttpClient, HttpError, HttpRequest, HttpResponse, MemoryStore};
use lepton_discord::{DiscordChannel, DiscordConfig, DiscordError};
use lepton_intents::{IntentModel, TrainConfig};
use lepton_knowledge::KnowledgeIndex;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fake::{FakeDiscord, BOT_ID, BOT_NAME};

pub type TestResult = anyhow::Result<()>;

/// The customer, their direct message channel, a guild, a plain channel, a
/// support channel and a thread in the support channel.
pub const CUSTOMER: u64 = 300000000000000001;
pub const OTHER_CUSTOMER: u64 = 300000000000000002;
pub const DM: u64 = 400000000000000001;
pub const GUILD: u64 = 500000000000000001;
pub const CHANNEL: u64 = 600000000000000001;
pub const SUPPORT: u64 = 600000000000000002;
pub const THREAD: u64 = 700000000000000001;

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
        http: Arc::new(LoopbackHttp(loopback_client()?)),
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

/// Builds an HTTP client that cannot leave 127.0.0.1. It ignores proxy
/// settings from the environment, and Discord's host names resolve to the
/// discard port of 127.0.0.1, where nothing listens.
pub fn loopback_client() -> anyhow::Result<reqwest::Client> {
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
    let client = reqwest::Client::builder()
        .no_proxy()
        .resolve("discord.com", nowhere)
        .resolve("gateway.discord.gg", nowhere)
        .resolve("cdn.discordapp.com", nowhere)
        .build()?;
    Ok(client)
}

/// Returns settings that send every REST call to the fake, and nowhere else.
pub fn test_config(fake: &FakeDiscord) -> anyhow::Result<DiscordConfig> {
    if fake.url.host_str() != Some("127.0.0.1") {
        bail!("the fake Discord must listen on 127.0.0.1, not {}", fake.url);
    }
    let mut config = DiscordConfig::new("MTAwMDAw.TEST.token").with_api_proxy(fake.url.clone()).with_support_channels([SUPPORT]);
    config.retry_backoff = Duration::from_millis(10);
    Ok(config)
}

/// A channel connected to the fake's gateway, with its proactive sender running.
pub struct Harness {
    pub fake: FakeDiscord,
    pub engine: Engine,
    pub channel: DiscordChannel,
    stop: Option<oneshot::Sender<()>>,
    gateway: Option<JoinHandle<Result<(), DiscordError>>>,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(true, |config| config).await
    }

    /// Starts with or without the Message Content intent granted, and adjusted settings.
    pub async fn start_with(message_content: bool, adjust: impl FnOnce(DiscordConfig) -> DiscordConfig) -> anyhow::Result<Self> {
        let fake = FakeDiscord::start(message_content).await?;
        let engine = demo_engine(&fake.server_url())?;
        let channel = DiscordChannel::connect_with_client(engine.clone(), adjust(test_config(&fake)?), loopback_client()?).await?;
        ensure_loopback_gateway(&channel).await?;
        channel.spawn_proactive_sender();

        let (stop, stopped) = oneshot::channel();
        let gateway = tokio::spawn({
            let channel = channel.clone();
            async move {
                channel
                    .run_gateway(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        let harness = Self { fake, engine, channel, stop: Some(stop), gateway: Some(gateway) };
        harness.fake.wait_ready().await?;
        Ok(harness)
    }

    /// Stops the gateway and returns its result.
    pub async fn stop(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(gateway) = self.gateway.take() {
            tokio::time::timeout(Duration::from_secs(30), gateway).await.context("the gateway did not stop")???;
        }
        Ok(())
    }

    /// Sends a `MESSAGE_CREATE`.
    pub fn send(&self, message: Value) -> TestResult {
        self.fake.dispatch("MESSAGE_CREATE", message)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.abort();
        }
    }
}

/// Fails unless the gateway address is on 127.0.0.1: serenity would otherwise
/// connect to Discord's own gateway.
pub async fn ensure_loopback_gateway(channel: &DiscordChannel) -> TestResult {
    let url = reqwest::Url::parse(&channel.gateway_url().await?)?;
    if url.host_str() != Some("127.0.0.1") {
        bail!("the gateway address {url} is not on 127.0.0.1");
    }
    Ok(())
}

pub fn user(id: u64, name: &str) -> Value {
    json!({ "id": id.to_string(), "username": name, "discriminator": "0", "global_name": name, "avatar": null })
}

fn bot_user() -> Value {
    json!({ "id": BOT_ID.to_string(), "username": BOT_NAME, "discriminator": "0", "global_name": BOT_NAME, "avatar": null, "bot": true })
}

/// Builds a message object from the customer; `guild` adds the guild fields.
pub fn message(id: u64, channel_id: u64, author: u64, guild: bool, content: &str) -> Value {
    let mut message = json!({
        "id": id.to_string(), "channel_id": channel_id.to_string(), "author": user(author, "li_wei"), "content": content,
        "timestamp": "2026-01-05T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": 0
    });
    if guild {
        message["guild_id"] = json!(GUILD.to_string());
        message["member"] = json!({ "roles": [], "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0 });
    }
    message
}

/// Builds a direct message from the customer.
pub fn dm(id: u64, content: &str) -> Value {
    message(id, DM, CUSTOMER, false, content)
}

/// Builds a guild message that mentions the bot, in the `<@id>` or the `<@!id>` form.
pub fn mention(id: u64, channel_id: u64, nickname_form: bool, text: &str) -> Value {
    let tag = if nickname_form { format!("<@!{BOT_ID}>") } else { format!("<@{BOT_ID}>") };
    let mut mentioned = message(id, channel_id, CUSTOMER, true, &format!("{tag} {text}"));
    mentioned["mentions"] = json!([bot_user()]);
    mentioned
}

/// Builds the customer's edit of an earlier direct message.
pub fn edited_dm(id: u64, content: &str) -> Value {
    let mut edited = dm(id, content);
    edited["edited_timestamp"] = json!("2026-01-05T10:05:00.000000+00:00");
    edited
}

/// Builds a press of the button `custom_id` under the bot's message `message_id` in a direct message.
pub fn button_press(interaction_id: u64, message_id: u64, custom_id: &str) -> Value {
    let mut bot_message = message(message_id, DM, BOT_ID, false, "How can I help?");
    bot_message["author"] = bot_user();
    json!({
        "id": interaction_id.to_string(), "application_id": crate::fake::APPLICATION_ID.to_string(), "type": 3,
        "data": { "custom_id": custom_id, "component_type": 2 },
        "channel_id": DM.to_string(), "channel": { "id": DM.to_string(), "type": 1 },
        "user": user(CUSTOMER, "li_wei"), "token": format!("token-{interaction_id}"), "version": 1,
        "message": bot_message, "locale": "en-US", "app_permissions": "0", "entitlements": [],
        "authorizing_integration_owners": { "1": CUSTOMER.to_string() }, "context": 1, "attachment_size_limit": 10485760
    })
}
