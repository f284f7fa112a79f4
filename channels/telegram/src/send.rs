//! Bot API calls that deliver replies: long text split, HTML with a fallback
//! to plain text, waits for `retry_after` on 429, callback answers and the
//! typing indicator.

use std::time::Duration;

use bot_core::observe::{Observer, Observers};
use bot_core::{Channel, Reply};
use teloxide::payloads::{SendChatActionSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::{CallbackQueryId, ChatAction, ChatId, InlineKeyboardMarkup, MessageId, ParseMode, ThreadId};
use teloxide::{Bot, RequestError};

use crate::format::{keyboard, split, to_html, MAX_MESSAGE_UNITS};
use crate::update::ChatTarget;

/// The first wait before retrying a call that could not connect; it doubles per attempt.
const CONNECT_RETRY_BASE: Duration = Duration::from_millis(500);

/// Sends messages through the Bot API with retries, and reports failed
/// replies and rate-limit waits to the engine's observers.
#[derive(Clone)]
pub(crate) struct Outbox {
    bot: Bot,
    max_retries: u32,
    max_retry_after: Duration,
    observers: Observers,
}

impl Outbox {
    pub fn new(bot: Bot, max_retries: u32, max_retry_after: Duration, observers: Observers) -> Self {
        Self { bot, max_retries, max_retry_after, observers }
    }

    /// Sends a reply, split into parts of at most 4096 characters; the quick
    /// replies go with the last part.
    pub async fn send_reply(&self, target: ChatTarget, reply: &Reply) -> Result<(), RequestError> {
        let parts = split(&reply.text, MAX_MESSAGE_UNITS);
        let count = parts.len();
        for (index, part) in parts.into_iter().enumerate() {
            let markup = if index + 1 == count { keyboard(&reply.quick_replies) } else { None };
            if let Err(error) = self.send_part(target, &part, markup).await {
                self.observers.send_failed(&Channel::new(crate::CHANNEL));
                return Err(error);
            }
        }
        Ok(())
    }

    /// Sends one part as HTML; when Telegram rejects it, sends the text again
    /// without any parse mode, so the customer still gets the words.
    async fn send_part(&self, target: ChatTarget, text: &str, markup: Option<InlineKeyboardMarkup>) -> Result<(), RequestError> {
        let mut request = self.bot.send_message(ChatId(target.chat_id), to_html(text)).parse_mode(ParseMode::Html);
        if let Some(thread) = target.thread_id {
            request = request.message_thread_id(ThreadId(MessageId(thread)));
        }
        if let Some(markup) = markup.clone() {
            request = request.reply_markup(markup);
        }
        let error = match self.with_retries("sendMessage", || request.send_ref()).await {
            Ok(_) => return Ok(()),
            Err(RequestError::Api(error)) => error,
            Err(other) => return Err(other),
        };

        tracing::warn!(chat_id = target.chat_id, %error, "Telegram rejected an HTML message; sending it as plain text");
        let mut plain = self.bot.send_message(ChatId(target.chat_id), text);
        if let Some(thread) = target.thread_id {
            plain = plain.message_thread_id(ThreadId(MessageId(thread)));
        }
        if let Some(markup) = markup {
            plain = plain.reply_markup(markup);
        }
        self.with_retries("sendMessage", || plain.send_ref()).await.map(drop)
    }

    /// Stops the spinner on a tapped button.
    pub async fn answer_callback(&self, query_id: &str) {
        let request = self.bot.answer_callback_query(CallbackQueryId(query_id.to_owned()));
        if let Err(error) = self.with_retries("answerCallbackQuery", || request.send_ref()).await {
            tracing::debug!(%error, "cannot answer the callback query; it may be too old");
        }
    }

    /// Shows "typing…" in the chat for about 5 s.
    pub async fn typing(&self, target: ChatTarget) {
        let mut request = self.bot.send_chat_action(ChatId(target.chat_id), ChatAction::Typing);
        if let Some(thread) = target.thread_id {
            request = request.message_thread_id(ThreadId(MessageId(thread)));
        }
        if let Err(error) = request.send().await {
            tracing::debug!(chat_id = target.chat_id, %error, "cannot send the typing indicator");
        }
    }

    /// Runs a call, waiting `retry_after` after a 429 and backing off after a
    /// failed connection, at most `max_retries` times. Other failures, and
    /// network errors after the request may have reached Telegram, are not
    /// retried, so a message is never sent twice by a retry.
    async fn with_retries<T, F, Fut>(&self, method: &'static str, call: F) -> Result<T, RequestError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        let mut attempt = 0;
        loop {
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let wait = match &error {
                RequestError::RetryAfter(seconds) if seconds.duration() <= self.max_retry_after => seconds.duration(),
                RequestError::Network(cause) if cause.is_connect() => CONNECT_RETRY_BASE * 2u32.pow(attempt.min(6)),
                _ => return Err(error),
            };
            if attempt >= self.max_retries {
                return Err(error);
            }
            attempt += 1;
            if matches!(error, RequestError::RetryAfter(_)) {
                self.observers.rate_limited(&Channel::new(crate::CHANNEL), wait);
            }
            tracing::info!(method, attempt, wait_ms = wait.as_millis() as u64, %error, "Bot API call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}
