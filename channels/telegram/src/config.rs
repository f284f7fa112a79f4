//! The channel's settings: the bot token, the Bot API address, polling or
//! webhook mode, and the timings of the typing indicator and of retries.

use std::fmt;
use std::time::Duration;

use bot_core::IntentId;
use reqwest::Url;

use crate::error::TelegramError;

/// The environment variable that holds the bot token.
pub const TOKEN_ENV: &str = "LEPTON_TELEGRAM_TOKEN";

/// The way the channel receives updates.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// `getUpdates` long polling; for development, needs no public address.
    Polling,
    /// Telegram posts each update to `public_url` + `path`; for production.
    Webhook(WebhookConfig),
}

/// The address Telegram posts updates to, and the secret it sends with each one.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    /// The public HTTPS base address of this server, such as `https://bot.example.com`.
    pub public_url: Url,
    /// The route of the webhook on this server, such as `/telegram/webhook`.
    pub path: String,
    /// Sent by Telegram in `X-Telegram-Bot-Api-Secret-Token`: 1 to 256 characters
    /// from `A-Z`, `a-z`, `0-9`, `_` and `-`.
    pub secret_token: Secret,
}

impl WebhookConfig {
    /// Checks the address and the secret: Telegram only posts to HTTPS and only
    /// accepts secrets of its own character set.
    pub fn new(public_url: Url, path: impl Into<String>, secret_token: impl Into<String>) -> Result<Self, TelegramError> {
        let path = path.into();
        if public_url.scheme() != "https" {
            return Err(TelegramError::InvalidConfig { reason: format!("webhook URL {public_url} must use https") });
        }
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
            return Err(TelegramError::InvalidConfig { reason: format!("webhook path {path:?} must start with / and hold no query or spaces") });
        }
        let secret_token = secret_token.into();
        let valid = (1..=256).contains(&secret_token.len()) && secret_token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(TelegramError::InvalidConfig {
                reason: "webhook secret token must be 1 to 256 characters from A-Z, a-z, 0-9, _ and -".to_owned(),
            });
        }
        Ok(Self { public_url, path, secret_token: Secret(secret_token) })
    }

    /// The full address Telegram posts to.
    pub fn url(&self) -> Result<Url, TelegramError> {
        let base = self.public_url.as_str().trim_end_matches('/');
        let joined = format!("{base}{}", self.path);
        Url::parse(&joined).map_err(|error| TelegramError::InvalidConfig { reason: format!("webhook URL {joined:?} is invalid: {error}") })
    }
}

/// A string that `Debug` never prints: the bot token or the webhook secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The Telegram channel's settings.
#[derive(Clone, Debug)]
pub struct TelegramConfig {
    /// The token from @BotFather.
    pub token: Secret,
    /// The Bot API server; `None` for Telegram's own. Tests and self-hosted Bot
    /// API servers set it.
    pub api_url: Option<Url>,
    pub mode: Mode,
    /// The intent `/start` selects, so that a new chat opens with its reply.
    pub start_intent: IntentId,
    /// How long a turn may run before the chat shows "typing…".
    pub typing_delay: Duration,
    /// How often "typing…" is sent again; Telegram shows it for about 5 s.
    pub typing_interval: Duration,
    /// How long one `getUpdates` call waits for updates.
    pub poll_timeout: Duration,
    /// How many times a send is retried after a 429 or a network error.
    pub max_send_retries: u32,
    /// The longest `retry_after` the channel waits for; a longer one drops the message.
    pub max_retry_after: Duration,
}

impl TelegramConfig {
    /// Polling settings with the defaults.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Secret(token.into()),
            api_url: None,
            mode: Mode::Polling,
            start_intent: IntentId::new("greet"),
            typing_delay: Duration::from_secs(1),
            typing_interval: Duration::from_secs(4),
            poll_timeout: Duration::from_secs(10),
            max_send_retries: 3,
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Reads the token from `LEPTON_TELEGRAM_TOKEN`.
    pub fn from_env() -> Result<Self, TelegramError> {
        let token = std::env::var(TOKEN_ENV).unwrap_or_default();
        let token = token.trim();
        if token.is_empty() {
            return Err(TelegramError::MissingToken { variable: TOKEN_ENV });
        }
        Ok(Self::new(token))
    }

    pub fn with_api_url(mut self, url: Url) -> Self {
        self.api_url = Some(url);
        self
    }

    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_token() {
        let config = TelegramConfig::new("123456:SECRET-token");

        let printed = format!("{config:?}");

        assert!(!printed.contains("SECRET"), "{printed}");
    }

    #[test]
    fn webhook_rejects_http() -> Result<(), Box<dyn std::error::Error>> {
        let url = Url::parse("http://bot.example.com")?;

        assert!(WebhookConfig::new(url, "/telegram", "s3cret").is_err());
        Ok(())
    }

    #[test]
    fn webhook_rejects_bad_secret() -> Result<(), Box<dyn std::error::Error>> {
        let url = Url::parse("https://bot.example.com")?;

        for secret in ["", "has space", "ümlaut", &"a".repeat(257)] {
            assert!(WebhookConfig::new(url.clone(), "/telegram", secret).is_err(), "{secret:?} was accepted");
        }
        Ok(())
    }

    #[test]
    fn webhook_url_joins_path() -> Result<(), Box<dyn std::error::Error>> {
        let config = WebhookConfig::new(Url::parse("https://bot.example.com/base/")?, "/telegram/hook", "abc_DEF-1")?;

        assert_eq!(config.url()?.as_str(), "https://bot.example.com/base/telegram/hook");
        Ok(())
    }
}
