//! The Telegram and Discord channels' settings, built from their sections.

use anyhow::bail;
use lepton_discord::DiscordConfig;
use lepton_telegram::{Mode, TelegramConfig, WebhookConfig};
use reqwest::Url;

use super::{DiscordSection, TelegramSection};

/// The environment variable that contains the secret Telegram sends with each webhook call.
pub(crate) const WEBHOOK_SECRET_ENV: &str = "LEPTON_TELEGRAM_WEBHOOK_SECRET";

/// The environment variable that sends the Discord channel's REST calls to a proxy instead of Discord.
pub(crate) const DISCORD_API_PROXY_ENV: &str = "LEPTON_DISCORD_API_PROXY";

/// Builds the Telegram channel's settings; `None` when the channel is off.
pub fn telegram_config(section: &TelegramSection) -> anyhow::Result<Option<TelegramConfig>> {
    if !section.enabled {
        return Ok(None);
    }
    let mode = match &section.webhook_url {
        Some(url) => {
            let url = Url::parse(url).map_err(|error| anyhow::anyhow!("invalid `telegram.webhook_url` {url:?}: {error}"))?;
            let secret = section.webhook_secret.as_ref().map(|secret| secret.expose().to_owned());
            Mode::Webhook(webhook_config(&url, secret)?)
        }
        None => Mode::Polling,
    };
    let token = section.token.as_ref().map(|token| token.expose().trim()).unwrap_or_default();
    if token.is_empty() {
        let missing = lepton_telegram::TelegramError::MissingToken { variable: lepton_telegram::TOKEN_ENV };
        bail!("{missing} (or `telegram.token` in the configuration file)");
    }
    let mut config = TelegramConfig::new(token).with_mode(mode);
    if let Some(api_url) = section.api_url.as_deref().map(str::trim).filter(|url| !url.is_empty()) {
        let parsed = Url::parse(api_url).map_err(|_| anyhow::anyhow!("`telegram.api_url` {api_url:?} is not a URL; set it to a Bot API server such as http://127.0.0.1:8081/, or unset it"))?;
        config = config.with_api_url(parsed);
    }
    Ok(Some(config))
}

/// Splits the public webhook URL into the base Telegram posts to and the route
/// this server receives updates on, and checks the secret.
pub(crate) fn webhook_config(url: &Url, secret: Option<String>) -> anyhow::Result<WebhookConfig> {
    let path = url.path();
    if path == "/" || path.starts_with("/api/") {
        bail!("--telegram-webhook {url} needs a path of its own, outside / and /api/, such as https://bot.example.com/telegram/webhook");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--telegram-webhook {url} must not contain a query or fragment; pass the URL Telegram should post to, such as https://bot.example.com/telegram/webhook");
    }
    let Some(secret) = secret.filter(|secret| !secret.is_empty()) else {
        bail!("the Telegram webhook secret is missing; set {WEBHOOK_SECRET_ENV} to 1 to 256 characters from A-Z, a-z, 0-9, _ and -");
    };

    let mut base = url.clone();
    base.set_path("/");
    Ok(WebhookConfig::new(base, path, secret)?)
}

/// Builds the Discord channel's settings; `None` when the channel is off.
pub fn discord_config(section: &DiscordSection) -> anyhow::Result<Option<DiscordConfig>> {
    if !section.enabled {
        return Ok(None);
    }
    let token = section.token.as_ref().map(|token| token.expose().trim()).unwrap_or_default();
    if token.is_empty() {
        let missing = lepton_discord::DiscordError::MissingToken { variable: lepton_discord::TOKEN_ENV };
        bail!("{missing} (or `discord.token` in the configuration file)");
    }
    let mut config = DiscordConfig::new(token).with_support_channels(section.support_channels.iter().copied()).with_thread_per_customer(section.thread_per_customer);
    if let Some(shards) = &section.shards {
        config = config.with_sharding(shards.parse()?);
    }
    if let Some(proxy) = section.api_proxy.as_deref().map(str::trim).filter(|proxy| !proxy.is_empty()) {
        config = config.with_api_proxy(parse_api_proxy(proxy)?);
    }
    Ok(Some(config))
}

pub(crate) fn parse_api_proxy(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).ok().filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    url.ok_or_else(|| anyhow::anyhow!("{DISCORD_API_PROXY_ENV}={text:?} is not an http:// or https:// URL; set it to the proxy's address such as http://127.0.0.1:3000, or unset it"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn webhook_config_splits_url() -> anyhow::Result<()> {
        let url = Url::parse("https://bot.example.com/telegram/webhook")?;

        let config = webhook_config(&url, Some("abc_DEF-1".to_owned()))?;

        assert_eq!(config.path, "/telegram/webhook");
        assert_eq!(config.url()?, url);
        Ok(())
    }

    #[test]
    fn webhook_config_rejects_missing_secret() -> anyhow::Result<()> {
        let url = Url::parse("https://bot.example.com/telegram/webhook")?;

        for secret in [None, Some(String::new())] {
            let error = webhook_config(&url, secret.clone()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(WEBHOOK_SECRET_ENV), "{secret:?} gave {error:?}");
        }
        Ok(())
    }

    #[test]
    fn webhook_config_rejects_bad_urls() -> anyhow::Result<()> {
        let secret = Some("abc_DEF-1".to_owned());

        for url in ["https://bot.example.com", "https://bot.example.com/api/v1/hook", "https://bot.example.com/hook?a=1", "http://bot.example.com/hook"] {
            let url = Url::parse(url)?;
            assert!(webhook_config(&url, secret.clone()).is_err(), "{url} was accepted");
        }
        Ok(())
    }

    #[test]
    fn api_proxy_accepts_http_url() -> anyhow::Result<()> {
        let url = parse_api_proxy("http://127.0.0.1:3000")?;

        assert_eq!(url.as_str(), "http://127.0.0.1:3000/");
        Ok(())
    }

    #[test]
    fn api_proxy_rejects_other_values() {
        for text in ["127.0.0.1:3000", "proxy", "ftp://127.0.0.1/", "unix:/run/proxy.sock"] {
            let error = parse_api_proxy(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(DISCORD_API_PROXY_ENV), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn channels_off_unless_enabled() -> anyhow::Result<()> {
        let telegram = TelegramSection { token: Some(Secret::new("1:a")), ..Default::default() };
        let discord = DiscordSection { token: Some(Secret::new("t")), ..Default::default() };

        assert!(telegram_config(&telegram)?.is_none());
        assert!(discord_config(&discord)?.is_none());
        Ok(())
    }

    #[test]
    fn enabled_channel_without_token_names_variable() {
        let telegram = TelegramSection { enabled: true, ..Default::default() };
        let discord = DiscordSection { enabled: true, ..Default::default() };

        let telegram_error = telegram_config(&telegram).err().map(|e| e.to_string()).unwrap_or_default();
        let discord_error = discord_config(&discord).err().map(|e| e.to_string()).unwrap_or_default();

        assert!(telegram_error.contains("LEPTON_TELEGRAM_TOKEN"), "{telegram_error}");
        assert!(discord_error.contains("LEPTON_DISCORD_TOKEN"), "{discord_error}");
    }

    #[test]
    fn discord_section_sets_channel_options() -> anyhow::Result<()> {
        let section = DiscordSection {
            enabled: true,
            token: Some(Secret::new("t")),
            support_channels: vec![7, 8],
            thread_per_customer: true,
            shards: Some("0-1/4".to_owned()),
            api_proxy: Some("http://127.0.0.1:3000".to_owned()),
        };

        let config = discord_config(&section)?.ok_or_else(|| anyhow::anyhow!("channel off"))?;

        assert_eq!(config.support_channels, [7, 8]);
        assert!(config.thread_per_customer);
        assert_eq!(config.sharding, lepton_discord::Sharding::Range { first: 0, last: 1, total: 4 });
        assert!(config.api_proxy.is_some());
        Ok(())
    }
}
