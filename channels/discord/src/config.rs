//! The channel's settings: the bot token, where REST calls go, the support
//! channels, threads per customer, sharding, and the timings of the typing
//! indicator and of retries.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bot_core::IntentId;
use reqwest::Url;

use crate::error::DiscordError;

/// The environment variable that holds the bot token.
pub const TOKEN_ENV: &str = "LEPTON_DISCORD_TOKEN";

/// The environment variable with the support channel ids, separated by commas.
pub const SUPPORT_CHANNELS_ENV: &str = "LEPTON_DISCORD_SUPPORT_CHANNELS";

/// The environment variable that turns threads per customer on (`true`) or off (`false`).
pub const THREADS_ENV: &str = "LEPTON_DISCORD_THREAD_PER_CUSTOMER";

/// The environment variable with the sharding: `auto`, a shard count, or `FIRST-LAST/TOTAL`.
pub const SHARDS_ENV: &str = "LEPTON_DISCORD_SHARDS";

/// A string that `Debug` never prints: the bot token.
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

/// The gateway shards this process runs. Discord requires sharding from
/// 2,500 guilds on, and one shard per 2,500 guilds at least.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharding {
    /// One shard for every guild.
    Single,
    /// As many shards as Discord recommends (`GET /gateway/bot`), all in this process.
    Auto,
    /// Shards `first` to `last`, both included, of `total`; other processes run the rest.
    Range { first: u32, last: u32, total: u32 },
}

impl FromStr for Sharding {
    type Err = DiscordError;

    /// Parses `auto`, a shard count such as `4` (shards 0 to 3 of 4), or
    /// `FIRST-LAST/TOTAL` such as `0-3/8`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let invalid = || DiscordError::InvalidConfig { reason: format!("shards {text:?} must be `auto`, a count such as `4`, or a range such as `0-3/8`") };
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        let (first, last, total) = match text.split_once('/') {
            Some((range, total)) => {
                let (first, last) = range.split_once('-').ok_or_else(invalid)?;
                (first.trim().parse().map_err(|_| invalid())?, last.trim().parse().map_err(|_| invalid())?, total.trim().parse().map_err(|_| invalid())?)
            }
            None => {
                let total: u32 = text.parse().map_err(|_| invalid())?;
                (0, total.saturating_sub(1), total)
            }
        };
        if total == 0 || first > last || last >= total {
            return Err(invalid());
        }
        if total == 1 {
            return Ok(Self::Single);
        }
        Ok(Self::Range { first, last, total })
    }
}

/// The Discord channel's settings.
#[derive(Clone, Debug)]
pub struct DiscordConfig {
    /// The bot token from the developer portal (Bot, Reset Token).
    pub token: Secret,
    /// Sends REST calls to this address instead of `https://discord.com`, with
    /// serenity's rate limiter off: for an HTTP proxy that applies Discord's
    /// rate limits for several processes (such as twilight-http-proxy), and for
    /// tests. The gateway address then comes from the proxy's `GET /gateway`.
    pub api_proxy: Option<Url>,
    /// Guild channels where the bot answers every message, without a mention.
    /// Threads in these channels count too.
    pub support_channels: Vec<u64>,
    /// In a support channel, open a thread for each customer and talk there.
    pub thread_per_customer: bool,
    pub sharding: Sharding,
    /// The intent a message that only mentions the bot selects, so that a new
    /// conversation opens with its reply.
    pub start_intent: IntentId,
    /// How long a turn may run before the channel shows "typing…".
    pub typing_delay: Duration,
    /// How often "typing…" is sent again; Discord shows it for about 10 s.
    pub typing_interval: Duration,
    /// How many times a call is retried after a 429, a 502-504 or a failed connection.
    pub max_send_retries: u32,
    /// The longest `retry_after` the channel waits for; a longer one drops the message.
    pub max_retry_after: Duration,
    /// The first wait before retrying after a 502-504 or a failed connection; it doubles per attempt.
    pub retry_backoff: Duration,
}

impl DiscordConfig {
    /// Settings with the defaults: no support channels, no threads, one shard.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Secret(token.into()),
            api_proxy: None,
            support_channels: Vec::new(),
            thread_per_customer: false,
            sharding: Sharding::Single,
            start_intent: IntentId::new("greet"),
            typing_delay: Duration::from_secs(1),
            typing_interval: Duration::from_secs(8),
            max_send_retries: 3,
            max_retry_after: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(500),
        }
    }

    /// Reads the token from `LEPTON_DISCORD_TOKEN`, and optionally the support
    /// channels, threads per customer and sharding from
    /// `LEPTON_DISCORD_SUPPORT_CHANNELS`, `LEPTON_DISCORD_THREAD_PER_CUSTOMER`
    /// and `LEPTON_DISCORD_SHARDS`.
    pub fn from_env() -> Result<Self, DiscordError> {
        let token = std::env::var(TOKEN_ENV).unwrap_or_default();
        let token = token.trim();
        if token.is_empty() {
            return Err(DiscordError::MissingToken { variable: TOKEN_ENV });
        }
        let mut config = Self::new(token);
        if let Some(channels) = env_value(SUPPORT_CHANNELS_ENV) {
            config.support_channels = parse_channel_ids(&channels)?;
        }
        if let Some(threads) = env_value(THREADS_ENV) {
            config.thread_per_customer = parse_bool(THREADS_ENV, &threads)?;
        }
        if let Some(shards) = env_value(SHARDS_ENV) {
            config.sharding = shards.parse()?;
        }
        Ok(config)
    }

    pub fn with_api_proxy(mut self, url: Url) -> Self {
        self.api_proxy = Some(url);
        self
    }

    pub fn with_support_channels(mut self, channels: impl IntoIterator<Item = u64>) -> Self {
        self.support_channels = channels.into_iter().collect();
        self
    }

    pub fn with_thread_per_customer(mut self, enabled: bool) -> Self {
        self.thread_per_customer = enabled;
        self
    }

    pub fn with_sharding(mut self, sharding: Sharding) -> Self {
        self.sharding = sharding;
        self
    }
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// Parses channel ids separated by commas or spaces.
pub fn parse_channel_ids(text: &str) -> Result<Vec<u64>, DiscordError> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse::<u64>().ok().filter(|&id| id > 0).ok_or_else(|| DiscordError::InvalidConfig {
                reason: format!("support channel id {id:?} is not a Discord id; copy it with Developer Mode on (right-click the channel, Copy Channel ID)"),
            })
        })
        .collect()
}

fn parse_bool(name: &str, text: &str) -> Result<bool, DiscordError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(DiscordError::InvalidConfig { reason: format!("{name}={other:?} must be true or false") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_token() {
        let config = DiscordConfig::new("MTIz.SECRET-token");

        let printed = format!("{config:?}");

        assert!(!printed.contains("SECRET"), "{printed}");
    }

    #[test]
    fn sharding_parses_forms() -> Result<(), DiscordError> {
        assert_eq!("auto".parse::<Sharding>()?, Sharding::Auto);
        assert_eq!("1".parse::<Sharding>()?, Sharding::Single);
        assert_eq!("4".parse::<Sharding>()?, Sharding::Range { first: 0, last: 3, total: 4 });
        assert_eq!("2-3/8".parse::<Sharding>()?, Sharding::Range { first: 2, last: 3, total: 8 });
        Ok(())
    }

    #[test]
    fn sharding_rejects_bad_ranges() {
        for text in ["0", "3-2/8", "0-8/8", "x", "1-2", "-1/4"] {
            assert!(text.parse::<Sharding>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn channel_ids_parse_list() -> Result<(), DiscordError> {
        assert_eq!(parse_channel_ids("111, 222 333")?, vec![111, 222, 333]);
        Ok(())
    }

    #[test]
    fn channel_ids_reject_names() {
        assert!(parse_channel_ids("111,#support").is_err());
    }
}
