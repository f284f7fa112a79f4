//! One update through the engine: skip or answer it, apply the edit policy,
//! show "typing…" while a slow turn runs, and send the replies.

use bot_core::{Content, DialogState, EngineError, Event, InboundMessage, Reply};
use teloxide::types::Update;
use tracing::Instrument;

use crate::update::{translate, ChatTarget, Origin, Skip, Translation, Turn};
use crate::TelegramChannel;

/// How many distinct unsupported update kinds are logged at INFO; later ones go to DEBUG.
const LOGGED_KINDS: usize = 64;

impl TelegramChannel {
    /// Processes one update to the end. It returns nothing, so every error is logged here.
    pub(crate) async fn process(&self, update: Update) {
        let update_id = update.id.0;
        match translate(&update, self.identity()) {
            Translation::Skip(skip) => self.skip(update_id, skip).await,
            Translation::Turn(turn) => {
                let span = tracing::info_span!("telegram_turn", update_id, conversation_id = %turn.message.conversation_id);
                self.run_turn(*turn).instrument(span).await;
            }
        }
    }

    async fn skip(&self, update_id: u32, skip: Skip) {
        match skip {
            Skip::EmptyCallback { query_id } => self.outbox().answer_callback(&query_id).await,
            Skip::Unsupported { kind } => {
                let first = {
                    let mut logged = self.logged_kinds().lock().expect("logged kinds poisoned");
                    logged.len() < LOGGED_KINDS && logged.insert(kind.clone())
                };
                if first {
                    tracing::info!(update_id, kind, "skipping an update kind the Telegram channel does not handle; later ones are logged at debug");
                } else {
                    tracing::debug!(update_id, kind, "skipping an unsupported update kind");
                }
            }
            other => tracing::debug!(update_id, reason = ?other, "skipping update"),
        }
    }

    async fn run_turn(&self, mut turn: Turn) {
        if let Origin::Callback { query_id } = &turn.origin {
            // Answer first, so that the button stops spinning even if the turn is slow.
            self.outbox().answer_callback(query_id).await;
        }
        if turn.origin == Origin::Edit && !self.form_waiting(&turn.message).await {
            tracing::debug!("edited message while no form waits for an answer; ignored");
            return;
        }
        if turn.start {
            self.rewrite_start(&mut turn.message);
        }

        let typing = self.start_typing(turn.target);
        let result = self.engine().handle(turn.message.clone()).await;
        drop(typing);

        match result {
            // A second tap on the same button: the engine dropped it, and so does the chat.
            Ok(outcome) if outcome.duplicate && matches!(turn.origin, Origin::Callback { .. }) => {
                tracing::debug!("repeated tap on a quick-reply button; nothing to send");
            }
            // Any other duplicate is an update Telegram delivered again after a
            // restart, before this process saw it: the replies may never have
            // gone out, so they are sent again.
            Ok(outcome) => self.send_events(turn.target, &outcome.events).await,
            Err(error) => {
                log_engine_error(&error);
                let reply = self.engine().failure_reply(&turn.message, &error);
                self.send_replies(turn.target, std::iter::once(&reply)).await;
            }
        }
    }

    /// The edit policy: an edited message counts as a new answer while a form
    /// waits for a slot, and is ignored otherwise.
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

    /// Turns `/start` into the start intent's payload when the bot defines it.
    fn rewrite_start(&self, message: &mut InboundMessage) {
        let intent = &self.config().start_intent;
        if self.engine().bot().intents.contains_key(intent) {
            message.content = Content::Text(format!("/{intent}"));
        } else {
            tracing::debug!(%intent, "the bot has no start intent; /start goes to the classifier");
        }
    }

    /// Starts sending "typing…" after `typing_delay`, repeated every
    /// `typing_interval`, until the returned guard is dropped.
    fn start_typing(&self, target: ChatTarget) -> TypingGuard {
        let outbox = self.outbox().clone();
        let (delay, interval) = (self.config().typing_delay, self.config().typing_interval);
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            loop {
                outbox.typing(target).await;
                tokio::time::sleep(interval).await;
            }
        });
        TypingGuard(task)
    }

    pub(crate) async fn send_events(&self, target: ChatTarget, events: &[Event]) {
        self.send_replies(target, events.iter().filter_map(Event::reply)).await;
    }

    /// Sends replies in order; stops at the first that cannot be delivered,
    /// since the next ones would fail the same way (blocked bot, deleted chat).
    pub(crate) async fn send_replies(&self, target: ChatTarget, replies: impl Iterator<Item = &Reply>) {
        for reply in replies {
            if reply.text.trim().is_empty() {
                continue;
            }
            if let Err(error) = self.outbox().send_reply(target, reply).await {
                tracing::warn!(chat_id = target.chat_id, %error, "cannot deliver a reply to Telegram; dropping it and the rest of the turn's replies");
                return;
            }
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
