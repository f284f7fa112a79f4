//! The push channels that `lepton serve` runs beside the web channel, Telegram
//! and Discord: each is started after the engine is built and stopped after
//! the HTTP server, before the session store is flushed.

use anyhow::Context;
use axum::Router;
use bot_core::Engine;
use lepton_discord::{DiscordChannel, DiscordConfig, DiscordError};
use lepton_telegram::{Mode, TelegramChannel, TelegramConfig, TelegramError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::wait_for_stop;

/// The channels a server runs beside the web channel; each is `None` when not configured.
pub(crate) struct Channels {
    telegram: Option<Telegram>,
    discord: Option<Discord>,
}

impl Channels {
    /// Connects the configured channels, which checks their tokens, and starts
    /// receiving. The Telegram webhook route, if any, is added to `router`.
    /// `stop` turns `true` when a channel fails while running.
    pub(crate) async fn start(engine: &Engine, telegram: Option<TelegramConfig>, discord: Option<DiscordConfig>, router: Router, stop: &watch::Sender<bool>) -> anyhow::Result<(Router, Self)> {
        // Connecting spawns no task, so a failed Telegram start below leaves
        // nothing of Discord running.
        let discord = match discord {
            Some(config) => Some(DiscordChannel::connect(engine.clone(), config).await.context("cannot start the Discord channel")?),
            None => None,
        };
        let (router, telegram) = match telegram {
            Some(config) => {
                let (merged, telegram) = start_telegram(engine.clone(), config, router, stop).await?;
                (merged, Some(telegram))
            }
            None => (router, None),
        };
        let discord = discord.map(|channel| Discord::spawn(channel, stop));
        Ok((router, Self { telegram, discord }))
    }

    /// Stops every channel, once `stop` is `true` and the HTTP server has
    /// stopped; returns the first failure.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let telegram = async {
            match self.telegram {
                Some(telegram) => telegram.stop().await,
                None => Ok(()),
            }
        };
        let discord = async {
            match self.discord {
                Some(discord) => discord.stop().await,
                None => Ok(()),
            }
        };
        let (telegram, discord) = tokio::join!(telegram, discord);
        telegram.and(discord)
    }
}

/// A started Telegram channel and the tasks that serve it.
struct Telegram {
    channel: TelegramChannel,
    proactive: JoinHandle<()>,
    /// The long-polling task; `None` in webhook mode.
    polling: Option<JoinHandle<Result<(), TelegramError>>>,
}

/// Connects the Telegram channel (checking the token with `getMe`), adds the
/// webhook route to `router` and registers it, or starts long polling.
async fn start_telegram(engine: Engine, config: TelegramConfig, router: Router, stop: &watch::Sender<bool>) -> anyhow::Result<(Router, Telegram)> {
    let channel = TelegramChannel::connect(engine, config).await.context("cannot start the Telegram channel")?;

    let webhook = matches!(channel.config().mode, Mode::Webhook(_));
    let router = if webhook {
        let router = router.merge(channel.webhook_router()?);
        channel.register_webhook().await.context("cannot start the Telegram channel")?;
        router
    } else {
        router
    };
    let proactive = channel.spawn_proactive_sender();
    let polling = (!webhook).then(|| spawn_polling(channel.clone(), stop.clone()));

    let mode = if webhook { "webhook" } else { "polling" };
    let username = &channel.identity().username;
    tracing::info!(mode, bot = %username, "Telegram channel started");
    println!("Telegram bot: https://t.me/{username} ({mode})");
    Ok((router, Telegram { channel, proactive, polling }))
}

/// Receives updates until the server stops; when polling fails, stops the server.
fn spawn_polling(channel: TelegramChannel, stop: watch::Sender<bool>) -> JoinHandle<Result<(), TelegramError>> {
    let stopped = stop.subscribe();
    tokio::spawn(async move {
        let result = channel.run_polling(wait_for_stop(stopped)).await;
        if result.is_err() {
            tracing::warn!("Telegram long polling failed; stopping the server");
            stop.send_replace(true);
        }
        result
    })
}

impl Telegram {
    /// Lets the updates already received finish. Polling does this by itself
    /// and confirms the last offset. In webhook mode the queue is drained here,
    /// after the HTTP server has stopped accepting requests.
    async fn stop(self) -> anyhow::Result<()> {
        let result = match self.polling {
            Some(polling) => polling.await.context("the Telegram polling task panicked")?.context("the Telegram channel failed"),
            None => {
                self.channel.drain().await;
                Ok(())
            }
        };
        self.proactive.abort();
        result
    }
}

/// A connected Discord channel and the tasks that serve it.
struct Discord {
    channel: DiscordChannel,
    proactive: JoinHandle<()>,
    gateway: JoinHandle<Result<(), DiscordError>>,
}

impl Discord {
    /// Starts sending agent-side replies and receiving gateway events until
    /// the server stops; when the gateway fails, stops the server.
    fn spawn(channel: DiscordChannel, stop: &watch::Sender<bool>) -> Self {
        let proactive = channel.spawn_proactive_sender();
        let gateway = tokio::spawn({
            let channel = channel.clone();
            let stop = stop.clone();
            let stopped = stop.subscribe();
            async move {
                let result = channel.run_gateway(wait_for_stop(stopped)).await;
                if result.is_err() {
                    tracing::warn!("the Discord gateway connection failed; stopping the server");
                    stop.send_replace(true);
                }
                result
            }
        });

        let identity = channel.identity();
        tracing::info!(bot = %identity.name, bot_id = identity.id, message_content = channel.message_content(), "Discord channel started");
        println!("Discord bot: {} (user id {})", identity.name, identity.id);
        Self { channel, proactive, gateway }
    }

    /// Waits until the gateway has closed its shards, then lets the events
    /// already received finish.
    async fn stop(self) -> anyhow::Result<()> {
        let result = self.gateway.await.context("the Discord gateway task panicked")?.context("the Discord channel failed");
        self.channel.drain().await;
        self.proactive.abort();
        result
    }
}
