//! Lepton's Discord channel: receives messages and button presses from
//! Discord's gateway through serenity, turns each into the engine's
//! [`InboundMessage`](bot_core::InboundMessage), and sends the replies through
//! the REST API. serenity types stay inside this crate.
//!
//! ```no_run
//! # async fn example(engine: bot_core::Engine) -> Result<(), lepton_discord::DiscordError> {
//! use lepton_discord::DiscordConfig;
//!
//! let config = DiscordConfig::from_env()?; // LEPTON_DISCORD_TOKEN
//! lepton_discord::run(engine, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Behaviour:
//!
//! - Direct messages always reach the bot. In a guild, a message does when it
//!   mentions the bot, replies to one of its messages, or is posted in a
//!   support channel or a thread of one. See [`event`] for the conversation ids:
//!   a direct message channel, a thread, or one customer in a guild channel.
//! - With `thread_per_customer`, the bot opens a thread on a customer's first
//!   message in a support channel and talks there.
//! - Message content: on start the channel reads the application's flags. When
//!   the Message Content intent is not enabled it logs how to enable it, and
//!   messages that arrive without their text are skipped with a warning, never
//!   passed on as empty.
//! - Quick replies become buttons. A press is acknowledged at once, and a
//!   second press of the same button is dropped as a retry.
//! - Replies longer than 2,000 characters are split. Mentions in replies
//!   notify nobody, so a customer's text cannot ping `@everyone`; only an
//!   agent's message in a shared guild channel notifies its customer (see [`format`](mod@format)).
//! - A message without text (an image, a file, a sticker) is a non-text
//!   message. Edits follow the Telegram channel's policy: an edit is a new
//!   answer while a form waits for a slot, and is ignored otherwise.
//! - Agent replies after a handoff reach the Discord conversation.
//! - REST calls wait for Discord's rate limits in serenity's rate limiter, or
//!   in the API proxy when one is set. A failed call is retried a few times
//!   with backoff (a 429 after `retry_after`), then logged and dropped.

pub mod config;
mod dispatch;
pub mod error;
pub mod event;
pub mod format;
mod gateway;
mod handler;
mod places;
mod proactive;
mod send;
pub mod text;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bot_core::Engine;
use serenity::all::ApplicationFlags;

pub use config::{DiscordConfig, Secret, Sharding, TOKEN_ENV};
pub use error::{DiscordError, SendError};
pub use event::{BotIdentity, Place, CHANNEL};

use dispatch::Dispatcher;
use error::MESSAGE_CONTENT_HELP;
use event::Policy;
use places::Places;
use send::Outbox;

/// Connects, sends agent-side replies, and receives gateway events until
/// `shutdown` completes.
pub async fn run(engine: Engine, config: DiscordConfig, shutdown: impl Future<Output = ()>) -> Result<(), DiscordError> {
    let channel = DiscordChannel::connect(engine, config).await?;
    let proactive = channel.spawn_proactive_sender();
    let result = channel.run_gateway(shutdown).await;
    proactive.abort();
    result
}

/// A connected Discord bot in front of an engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct DiscordChannel {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: DiscordConfig,
    client: reqwest::Client,
    identity: BotIdentity,
    message_content: bool,
    outbox: Outbox,
    dispatcher: Dispatcher,
    places: Places,
    warned_withheld: AtomicBool,
}

impl DiscordChannel {
    /// Checks the token with `GET /users/@me`, learns the bot's user id (which
    /// mentions are matched against), and reads from the application's flags
    /// whether the Message Content intent is enabled.
    pub async fn connect(engine: Engine, config: DiscordConfig) -> Result<Self, DiscordError> {
        // serenity sets no timeout of its own, so without these a REST call to
        // an unresponsive Discord would hold a reply's task forever.
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|error| DiscordError::InvalidConfig { reason: format!("cannot create the HTTP client: {error}") })?;
        Self::connect_with_client(engine, config, client).await
    }

    /// Connects with a given HTTP client for the REST calls; tests pass one
    /// that can reach only 127.0.0.1.
    pub async fn connect_with_client(engine: Engine, config: DiscordConfig, client: reqwest::Client) -> Result<Self, DiscordError> {
        let outbox = Outbox::new(&config, client.clone(), engine.observers().clone());
        let me = outbox.http().get_current_user().await.map_err(DiscordError::api("GET /users/@me"))?;
        let identity = BotIdentity { id: me.id.get(), name: me.name.clone() };
        let application = outbox.http().get_current_application_info().await.map_err(DiscordError::api("GET /oauth2/applications/@me"))?;
        let flags = application.flags.unwrap_or_else(ApplicationFlags::empty);
        let message_content = flags.intersects(ApplicationFlags::GATEWAY_MESSAGE_CONTENT | ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED);

        if message_content {
            tracing::info!(bot = %identity.name, "connected to Discord");
        } else if config.support_channels.is_empty() {
            tracing::warn!(bot = %identity.name, "connected to Discord without the Message Content intent; direct messages and mentions still work, but not support channels: {MESSAGE_CONTENT_HELP}");
        } else {
            tracing::error!(bot = %identity.name, support_channels = config.support_channels.len(), "the Message Content intent is not enabled, so Discord sends messages in support channels without their text and the bot answers only mentions there: {MESSAGE_CONTENT_HELP}");
        }

        let inner = Inner {
            engine,
            config,
            client,
            identity,
            message_content,
            outbox,
            dispatcher: Dispatcher::default(),
            places: Places::default(),
            warned_withheld: AtomicBool::new(false),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn identity(&self) -> &BotIdentity {
        &self.inner.identity
    }

    pub fn config(&self) -> &DiscordConfig {
        &self.inner.config
    }

    /// Returns whether the application may receive message content (the privileged Message Content intent).
    pub fn message_content(&self) -> bool {
        self.inner.message_content
    }

    /// Returns the gateway address that REST `GET /gateway` names.
    pub async fn gateway_url(&self) -> Result<String, DiscordError> {
        self.outbox().gateway_url().await.map_err(DiscordError::api("GET /gateway"))
    }

    /// Waits until every queued event has been processed.
    pub async fn drain(&self) {
        self.inner.dispatcher.drain().await;
    }

    fn policy(&self) -> Policy<'_> {
        Policy { support_channels: &self.inner.config.support_channels, message_content: self.inner.message_content }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn http_client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    fn dispatcher(&self) -> &Dispatcher {
        &self.inner.dispatcher
    }

    fn places(&self) -> &Places {
        &self.inner.places
    }
}
