//! Lepton's Telegram channel: receives updates by long polling or a webhook,
//! turns each into the engine's [`InboundMessage`](bot_core::InboundMessage),
//! and sends the replies back. teloxide types stay inside this crate.
//!
//! ```no_run
//! # async fn example(engine: bot_core::Engine) -> Result<(), lepton_telegram::TelegramError> {
//! use lepton_telegram::{TelegramChannel, TelegramConfig};
//!
//! let config = TelegramConfig::from_env()?; // LEPTON_TELEGRAM_TOKEN
//! lepton_telegram::run_polling(engine, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! In webhook mode, connect with [`TelegramChannel::connect`], merge
//! [`TelegramChannel::webhook_router`] into the HTTPS server, call
//! [`TelegramChannel::register_webhook`] once it listens, and start
//! [`TelegramChannel::spawn_proactive_sender`] so that agent messages reach
//! the chats.
//!
//! Behaviour:
//!
//! - Conversation ids are `telegram:<chat_id>`, or `telegram:<chat_id>:<thread_id>`
//!   in forum topics. A group is one conversation; the sender is recorded as
//!   `user:<id>`, or `chat:<id>` for channel posts and anonymous admins.
//! - In groups and channels the bot responds only when mentioned, replied to or
//!   given a command (`/help`, `/help@ThisBot`); private chats always.
//! - `/start` selects the start intent (`greet` by default), in the language of
//!   the customer's Telegram app when the conversation is new.
//! - A photo or file with a caption is read as the caption. Without text it is
//!   a non-text message, which the engine answers by asking for words.
//! - Edited messages: an edit is a new answer while a form waits for a slot
//!   (the customer corrects an order number), and is ignored otherwise, since
//!   the bot has already replied to the original.
//! - Quick replies become inline keyboard buttons. A tap is answered at once,
//!   and a second tap on the same button is dropped as a retry.
//! - Updates are de-duplicated by `update_id`, and each message carries
//!   `tg-<update_id>` as its client message id so the engine drops retries too.
//! - Replies longer than 4096 characters are split; see [`format`] for how text
//!   is escaped. A 429 waits `retry_after`.
//! - Unknown update kinds are logged once per kind and skipped.

pub mod config;
mod dispatch;
pub mod error;
pub mod format;
mod handler;
mod polling;
mod proactive;
mod send;
pub mod text;
pub mod update;
pub mod webhook;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bot_core::Engine;
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::{AllowedUpdate, Update};
use teloxide::Bot;

pub use config::{Mode, Secret, TelegramConfig, WebhookConfig, TOKEN_ENV};
pub use error::TelegramError;
pub use update::{BotIdentity, ChatTarget, CHANNEL};

use dispatch::Dispatcher;
use send::Outbox;

/// The update kinds the channel requests from Telegram.
const ALLOWED_UPDATES: [AllowedUpdate; 5] =
    [AllowedUpdate::Message, AllowedUpdate::EditedMessage, AllowedUpdate::ChannelPost, AllowedUpdate::EditedChannelPost, AllowedUpdate::CallbackQuery];

/// Connects, sends agent-side replies, and receives updates by long polling
/// until `shutdown` completes.
pub async fn run_polling(engine: Engine, config: TelegramConfig, shutdown: impl Future<Output = ()>) -> Result<(), TelegramError> {
    let channel = TelegramChannel::connect(engine, config).await?;
    let proactive = channel.spawn_proactive_sender();
    let result = channel.run_polling(shutdown).await;
    proactive.abort();
    result
}

/// A connected Telegram bot in front of an engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct TelegramChannel {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: TelegramConfig,
    bot: Bot,
    identity: BotIdentity,
    outbox: Outbox,
    dispatcher: Dispatcher,
    logged_kinds: Mutex<HashSet<String>>,
}

impl TelegramChannel {
    /// Checks the token with `getMe` and learns the bot's username, which
    /// group mentions and `/command@name` are matched against.
    pub async fn connect(engine: Engine, config: TelegramConfig) -> Result<Self, TelegramError> {
        let mut bot = Bot::new(config.token.expose());
        if let Some(url) = &config.api_url {
            bot = bot.set_api_url(url.clone());
        }
        let me = bot.get_me().send().await.map_err(TelegramError::api("getMe"))?;
        let username = me.user.username.clone().ok_or(TelegramError::NoUsername)?;
        let identity = BotIdentity { id: me.user.id.0, username };
        tracing::info!(bot = %identity.username, "connected to Telegram");

        let outbox = Outbox::new(bot.clone(), config.max_send_retries, config.max_retry_after, engine.observers().clone());
        let inner = Inner { engine, config, bot, identity, outbox, dispatcher: Dispatcher::default(), logged_kinds: Mutex::default() };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn identity(&self) -> &BotIdentity {
        &self.inner.identity
    }

    pub fn config(&self) -> &TelegramConfig {
        &self.inner.config
    }

    /// Queues an update for processing, unless its `update_id` was seen before.
    pub(crate) fn accept(&self, update: Update) {
        let update_id = update.id.0;
        if !self.inner.dispatcher.push(self, update) {
            tracing::debug!(update_id, "update delivered again; dropped");
        }
    }

    /// Waits until every queued update has been processed. In webhook mode,
    /// call it on shutdown once the server accepts no more requests; polling
    /// does it by itself.
    pub async fn drain(&self) {
        self.inner.dispatcher.drain().await;
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    fn dispatcher(&self) -> &Dispatcher {
        &self.inner.dispatcher
    }

    fn logged_kinds(&self) -> &Mutex<HashSet<String>> {
        &self.inner.logged_kinds
    }
}
