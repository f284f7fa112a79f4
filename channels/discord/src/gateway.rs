//! The gateway connection: intents, shards, the event handler and collector
//! that feed the dispatcher, and shutdown.

use std::future::Future;

use serenity::all::{CollectorCallback, Context, EventHandler, GatewayIntents, Interaction, Message, MessageUpdateEvent, Ready};
use serenity::gateway::GatewayError;
use serenity::model::event::Event as GatewayEvent;
use serenity::client::ClientBuilder;

use crate::config::Sharding;
use crate::dispatch::Incoming;
use crate::error::DiscordError;
use crate::send::build_http;
use crate::DiscordChannel;

impl DiscordChannel {
    /// Returns the gateway intents the channel requests: messages in guilds and
    /// direct messages, and their content when the application may receive it.
    pub fn intents(&self) -> GatewayIntents {
        let intents = GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES;
        if self.message_content() {
            intents | GatewayIntents::MESSAGE_CONTENT
        } else {
            intents
        }
    }

    /// Connects the configured shards to the gateway and processes events
    /// until `shutdown` completes; then closes the shards and lets the queued
    /// events finish.
    pub async fn run_gateway(&self, shutdown: impl Future<Output = ()>) -> Result<(), DiscordError> {
        let expected_url = match self.config().api_proxy {
            // serenity falls back to Discord's own gateway when `GET /gateway`
            // fails; through a proxy that must be an error instead.
            Some(_) => Some(self.outbox().gateway_url().await.map_err(DiscordError::api("GET /gateway"))?),
            None => None,
        };

        let http = build_http(self.config(), self.http_client());
        let handler = Handler { channel: self.clone() };
        let mut client = ClientBuilder::new_with_http(http, self.intents())
            .event_handler(handler)
            .await
            .map_err(|error| DiscordError::Gateway { error: Box::new(error) })?;
        let url = client.ws_url.lock().await.clone();
        if expected_url.as_ref().is_some_and(|expected| *expected != url) {
            return Err(DiscordError::GatewayFallback { url });
        }

        let shards = client.shard_manager.clone();
        let sharding = self.config().sharding;
        tracing::info!(bot = %self.identity().name, ?sharding, "connecting to the Discord gateway");
        let run = async move {
            match sharding {
                Sharding::Single => client.start().await,
                Sharding::Auto => client.start_autosharded().await,
                // serenity reads the range's end as the last shard, included.
                Sharding::Range { first, last, total } => client.start_shard_range(first..last, total).await,
            }
        };
        tokio::pin!(run, shutdown);
        let result = tokio::select! {
            result = &mut run => result,
            () = &mut shutdown => {
                shards.shutdown_all().await;
                run.await
            }
        };

        self.dispatcher().drain().await;
        tracing::info!("disconnected from the Discord gateway");
        result.map_err(gateway_error)
    }

    /// Queues an event, unless it was seen before. A button press is
    /// acknowledged here, before it waits in its queue, because Discord
    /// expects the acknowledgement within 3 s.
    pub(crate) fn accept(&self, event: Incoming) {
        let press = match &event {
            Incoming::Interaction(interaction) => match interaction.as_ref() {
                Interaction::Component(component) => Some((component.id.get(), component.token.clone())),
                _ => None,
            },
            _ => None,
        };
        if !self.dispatcher().push(self, event) {
            tracing::trace!("event received twice; dropped the second copy");
            return;
        }
        if let Some((interaction_id, token)) = press {
            let outbox = self.outbox().clone();
            tokio::spawn(async move { outbox.acknowledge(interaction_id, &token).await });
        }
    }

    /// Feeds the shard's events to the dispatcher in gateway order.
    fn register_collector(&self, context: &Context) {
        let channel = self.clone();
        let callback = move |event: &GatewayEvent| {
            let incoming = match event {
                GatewayEvent::MessageCreate(created) => Incoming::Message(Box::new(created.message.clone())),
                GatewayEvent::MessageUpdate(update) => Incoming::Edit(Box::new(update.clone())),
                GatewayEvent::InteractionCreate(created) => Incoming::Interaction(Box::new(created.interaction.clone())),
                _ => return true,
            };
            channel.accept(incoming);
            true
        };
        context.shard.add_collector(CollectorCallback(Box::new(callback)));
    }
}

fn gateway_error(error: serenity::Error) -> DiscordError {
    match error {
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => DiscordError::MessageContentDisallowed,
        error => DiscordError::Gateway { error: Box::new(error) },
    }
}

/// The receiver of serenity's events. serenity runs each call in a task of its
/// own, so these calls do not keep the gateway's order. The collector
/// registered on `ready` delivers events in order, and the other calls only
/// catch events that came before it was registered.
struct Handler {
    channel: DiscordChannel,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, context: Context, ready: Ready) {
        // serenity starts a new shard runner, with no collectors, for every
        // identify, so each READY registers exactly one collector.
        self.channel.register_collector(&context);
        tracing::info!(shard = context.shard_id.get(), guilds = ready.guilds.len(), "Discord gateway ready");
    }

    async fn message(&self, _context: Context, message: Message) {
        self.channel.accept(Incoming::Message(Box::new(message)));
    }

    async fn message_update(&self, _context: Context, _old: Option<Message>, _new: Option<Message>, event: MessageUpdateEvent) {
        self.channel.accept(Incoming::Edit(Box::new(event)));
    }

    async fn interaction_create(&self, _context: Context, interaction: Interaction) {
        self.channel.accept(Incoming::Interaction(Box::new(interaction)));
    }
}
