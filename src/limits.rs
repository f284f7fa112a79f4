//! The server's limits from its configuration: the web channel's rate limits
//! and trusted proxies, the cap on active conversations, and the timeouts of
//! the flows' HTTP actions.

use std::time::Duration;

use anyhow::Context;
use bot_core::engine::ActiveLimit;
use lepton_web::{Rate, RateLimits, SettingError, TrustedProxies};

use crate::config::Config;
use crate::http_client::HttpClientConfig;

/// The limits `lepton serve` applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub rate_limits: RateLimits,
    pub trusted_proxies: TrustedProxies,
    /// `None` serves any number of conversations.
    pub active: Option<ActiveLimit>,
    pub http: HttpClientConfig,
}

impl Default for Limits {
    fn default() -> Self {
        let web = lepton_web::WebConfig::default();
        Self {
            rate_limits: web.rate_limits,
            trusted_proxies: web.trusted_proxies,
            active: Some(ActiveLimit::default()),
            http: HttpClientConfig::default(),
        }
    }
}

impl Limits {
    /// Builds the limits from a loaded configuration.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let web = &config.web;
        let rate_limits = RateLimits {
            per_conversation: parse_rate(&web.rate_limit_conversation).context("invalid web.rate_limit_conversation")?,
            per_address: parse_rate(&web.rate_limit_address).context("invalid web.rate_limit_address")?,
            max_keys: web.rate_limit_max_keys.max(1),
        };
        let trusted_proxies = TrustedProxies::parse(&web.trusted_proxies.join(",")).context("invalid web.trusted_proxies")?;

        let server = &config.server;
        let active = (server.max_active_conversations > 0).then(|| ActiveLimit {
            max_conversations: server.max_active_conversations,
            idle_window: Duration::from_secs(server.active_conversation_idle_seconds.max(1)),
        });
        let http = HttpClientConfig {
            default_timeout: Duration::from_millis(config.http.timeout_ms.max(1)),
            connect_timeout: Duration::from_millis(config.http.connect_timeout_ms.max(1)),
            max_response_bytes: config.http.max_response_bytes.max(1),
        };
        Ok(Self { rate_limits, trusted_proxies, active, http })
    }

    /// Logs the limits once at startup.
    pub fn log(&self) {
        let rate = |rate: Option<Rate>| rate.map_or_else(|| "off".to_owned(), |rate| rate.to_string());
        tracing::info!(
            rate_limit_conversation = %rate(self.rate_limits.per_conversation),
            rate_limit_address = %rate(self.rate_limits.per_address),
            trusted_proxies = self.trusted_proxies.networks().len(),
            max_active_conversations = self.active.map_or(0, |active| active.max_conversations),
            http_timeout_ms = self.http.default_timeout.as_millis() as u64,
            "limits"
        );
    }
}

/// Parses a rate limit written `RATE/s,BURST`, or `off` for none.
pub fn parse_rate(text: &str) -> Result<Option<Rate>, SettingError> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    Rate::parse(text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_gives_default_limits() -> anyhow::Result<()> {
        let limits = Limits::from_config(&Config::default())?;

        assert_eq!(limits, Limits::default());
        Ok(())
    }

    #[test]
    fn from_config_reads_every_key() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.web.rate_limit_conversation = "off".to_owned();
        config.web.rate_limit_address = "2/s,4".to_owned();
        config.web.trusted_proxies = vec!["10.0.0.0/8".to_owned()];
        config.server.max_active_conversations = 0;
        config.http.timeout_ms = 250;

        let limits = Limits::from_config(&config)?;

        assert_eq!(limits.rate_limits.per_conversation, None);
        assert_eq!(limits.rate_limits.per_address, Some(Rate::new(2.0, 4)?));
        assert!(limits.trusted_proxies.contains("10.1.2.3".parse()?));
        assert_eq!(limits.active, None);
        assert_eq!(limits.http.default_timeout, Duration::from_millis(250));
        Ok(())
    }

    #[test]
    fn parse_rate_reads_off() {
        assert_eq!(parse_rate("OFF"), Ok(None));
        assert_eq!(parse_rate("1/s,5"), Ok(Some(Rate { per_second: 1.0, burst: 5 })));
        assert!(parse_rate("fast").is_err());
    }
}
