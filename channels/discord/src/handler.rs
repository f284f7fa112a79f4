//! One event through the engine: translate or skip it, apply the edit policy,
//! open the customer's thread, show "typing…" while a slow turn runs, and
//! send the replies.

use std::sync::atomic::Ordering;

use bot_core::{Content, DialogState, EngineError, Event, InboundMessage, Reply};
use tracing::Instrument;

use crate::dispatch::Incoming;
use crate::error::MESSAGE_CONTENT_HELP;
use crate::event::{translate_edit, translate_interaction, translate_message, Origin, Place, Skip, Translation, Turn};
use crate::send::Delivery;
use crate::DiscordChannel;

impl DiscordChannel {
    /// Processes one event to the end. It returns nothing, so every error is logged here.
    pub(crate) async fn process(&self, event: Incoming) {
        let Some(translation) = self.translate(&event).await else {
            return;
        };
        match translation {
            Translation::Skip(skip) => self.skip(skip),
            Translation::Turn(turn) => {
                let span = tracing::info_span!("discord_turn", conversation_id = %turn.message.conversation_id, origin = ?turn.origin);
                self.run_turn(*turn).instrument(span).await;
            }
        }
    }

    async fn translate(&self, event: &Incoming) -> Option<Translation> {
        let policy = self.policy();
        let translation = match event {
            Incoming::Message(message) => translate_message(message, self.message_channel_kind(message).await?, self.identity(), &policy),
            Incoming::Edit(edit) => {
                let kind = match edit.guild_id {
                    None => crate::event::ChannelKind::Direct,
                    Some(_) => self.channel_kind(edit.channel_id.get()).await?,
                };
                translate_edit(edit, kind, self.identity(), &policy)
            }
            Incoming::Interaction(interaction) => translate_interaction(interaction, self.interaction_channel_kind(interaction).await?),
        };
        Some(translation)
    }

    fn skip(&self, skip: Skip) {
        match skip {
            Skip::ContentWithheld => {
                if !self.inner.warned_withheld.swap(true, Ordering::Relaxed) {
                    tracing::warn!("a message in a support channel arrived without text because the Message Content intent is off; {MESSAGE_CONTENT_HELP}. Later ones are logged at debug");
                } else {
                    tracing::debug!("skipping a support channel message without text; the Message Content intent is off");
                }
            }
            Skip::Unsupported { kind } => tracing::debug!(kind, "skipping an interaction the Discord channel does not handle"),
            other => tracing::debug!(reason = ?other, "skipping event"),
        }
    }

    async fn run_turn(&self, mut turn: Turn) {
        if turn.origin == Origin::Edit && !self.form_waiting(&turn.message).await {
            tracing::debug!("edited message while no form waits for an answer; ignored");
            return;
        }
        if turn.thread_candidate && self.config().thread_per_customer {
            self.move_to_customer_thread(&mut turn).await;
        }
        if turn.start {
            self.rewrite_start(&mut turn.message);
        }

        let typing = self.start_typing(turn.place.channel_id());
        let result = self.engine().handle(turn.message.clone()).await;
        drop(typing);

        let delivery = Delivery { reply_to: turn.reply_to, notify: None };
        match result {
            // A second press of the same button: the engine dropped it, and so does the channel.
            Ok(outcome) if outcome.duplicate && turn.origin == Origin::Button => {
                tracing::debug!("repeated press of a quick-reply button; nothing to send");
            }
            // Any other duplicate is an event Discord delivered again (a gateway
            // resume replays events) before this process saw it: the replies may
            // never have gone out, so they are sent again.
            Ok(outcome) => self.send_events(turn.place, delivery, &outcome.events).await,
            Err(error) => {
                log_engine_error(&error);
                let reply = self.engine().failure_reply(&turn.message, &error);
                self.send_replies(turn.place, delivery, std::iter::once(&reply)).await;
            }
        }
    }

    /// The edit policy: an edited message counts as a new answer while a form
    /// waits for a slot, and is ignored otherwise, since the bot has already
    /// answered the original.
    async fn form_waiting(&self, message: &InboundMessage) -> bool {
        match self.engine().session(&message.conversation_id).await {
            Ok(Some(session)) => matches!(session.dialog, DialogState::AwaitingSlot { .. }),
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "cannot read the session to decide on an edited message; ignoring the edit");
                false
            }
        }
    }

    /// Turns a bare mention of the bot into the start intent's payload when the bot defines it.
    fn rewrite_start(&self, message: &mut InboundMessage) {
        let intent = &self.config().start_intent;
        if self.engine().bot().intents.contains_key(intent) {
            message.content = Content::Text(format!("/{intent}"));
        } else {
            tracing::debug!(%intent, "the bot has no start intent; a bare mention is answered as a message without text");
        }
    }

    /// Starts sending "typing…" after `typing_delay`, repeated every
    /// `typing_interval`, until the returned guard is dropped.
    fn start_typing(&self, channel_id: u64) -> TypingGuard {
        let outbox = self.outbox().clone();
        let (delay, interval) = (self.config().typing_delay, self.config().typing_interval);
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            loop {
                outbox.typing(channel_id).await;
                tokio::time::sleep(interval).await;
            }
        });
        TypingGuard(task)
    }

    async fn send_events(&self, place: Place, delivery: Delivery, events: &[Event]) {
        self.send_replies(place, delivery, events.iter().filter_map(Event::reply)).await;
    }

    /// Sends replies in order; the first replies to the customer's message
    /// when the delivery names one. Stops at the first reply that cannot be
    /// delivered, since the next ones would fail the same way (blocked bot,
    /// deleted channel, missing permission).
    pub(crate) async fn send_replies(&self, place: Place, mut delivery: Delivery, replies: impl Iterator<Item = &Reply>) {
        let channel_id = place.channel_id();
        for reply in replies {
            if reply.text.trim().is_empty() {
                continue;
            }
            if let Err(error) = self.outbox().send_reply(channel_id, reply, delivery).await {
                tracing::warn!(channel_id, %error, "cannot deliver a reply to Discord; dropping it and the rest of the turn's replies");
                return;
            }
            delivery.reply_to = None;
        }
    }
}

/// Stops the typing task when the turn ends, however it ends.
struct TypingGuard(tokio::task::JoinHandle<()>);

impl Drop for TypingGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn log_engine_error(error: &EngineError) {
    match error {
        EngineError::Contended { .. } => tracing::warn!(%error, "turn failed; asking the customer to try again"),
        // The engine logs the first rejection at the cap, then a count at most once a minute.
        EngineError::TooManyConversations { .. } => tracing::debug!(%error, "new conversation rejected at the cap; sending the busy reply"),
        _ => tracing::error!(%error, "turn failed; asking the customer to try again"),
    }
}
