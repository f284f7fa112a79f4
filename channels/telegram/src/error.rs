//! The channel's error type.

use teloxide::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("the Telegram bot token is missing; set {variable} to the token from @BotFather")]
    MissingToken { variable: &'static str },
    #[error("invalid Telegram channel settings: {reason}")]
    InvalidConfig { reason: String },
    /// A Bot API call failed. teloxide removes the URL, and with it the token,
    /// from network errors, so the message is safe to log. `error` is part of
    /// the message and not reported again by `Error::source`.
    #[error("Telegram Bot API call {method} failed: {error}; check the token and the network")]
    Api { method: &'static str, error: RequestError },
    #[error("the bot account has no username; Telegram gives every bot one, so check the API URL")]
    NoUsername,
}

impl TelegramError {
    pub(crate) fn api(method: &'static str) -> impl FnOnce(RequestError) -> Self {
        move |error| Self::Api { method, error }
    }
}
