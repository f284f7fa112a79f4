//! The channel's error types: [`DiscordError`] for starting and running the
//! channel, [`SendError`] for one REST call.

use std::time::Duration;

/// The steps that enable the Message Content intent, for error and log messages.
pub const MESSAGE_CONTENT_HELP: &str =
    "enable it in the Discord developer portal under Applications, your application, Bot, Privileged Gateway Intents, Message Content Intent, then restart";

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("the Discord bot token is missing; set {variable} to the token from the developer portal (Applications, your application, Bot, Reset Token)")]
    MissingToken { variable: &'static str },
    #[error("invalid Discord channel settings: {reason}")]
    InvalidConfig { reason: String },
    /// A REST call made while starting failed. serenity's messages name the
    /// route and status, never the token. `error` is part of the message and
    /// not reported again by `Error::source`.
    #[error("Discord API call {call} failed: {error}; check the token and the network")]
    Api { call: &'static str, error: Box<serenity::Error> },
    /// With an API proxy, the gateway address must come from the proxy, or
    /// serenity would connect to Discord's own gateway.
    #[error("the gateway address is {url}, not the one the API proxy returned; check that the proxy serves GET /api/v10/gateway")]
    GatewayFallback { url: String },
    #[error("Discord closed the gateway because the bot requested the Message Content intent without permission; {MESSAGE_CONTENT_HELP}")]
    MessageContentDisallowed,
    #[error("the Discord gateway connection failed: {error}")]
    Gateway { error: Box<serenity::Error> },
}

/// A REST call that did not succeed, after any retries.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("Discord rejected {call} with status {status} (JSON error code {code}): {message}")]
    Rejected { call: &'static str, status: u16, code: i64, message: String },
    #[error("Discord rate-limited {call} for {retry_after:?}, longer than the configured max_retry_after")]
    RetryAfterTooLong { call: &'static str, retry_after: Duration },
    /// The request may not have reached Discord. URLs are removed from the
    /// error, since an interaction's URL contains its token.
    #[error("{call} failed: {error}")]
    Network { call: &'static str, error: Box<serenity::Error> },
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: Box<SendError> },
    #[error("the response to {call} cannot be read: {error}")]
    Response { call: &'static str, error: serde_json::Error },
}

impl DiscordError {
    pub(crate) fn api(call: &'static str) -> impl FnOnce(serenity::Error) -> Self {
        move |error| Self::Api { call, error: Box::new(error) }
    }
}
