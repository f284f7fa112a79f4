//! Settings of the web channel.

use std::fmt;
use std::time::Duration;

use crate::client_ip::TrustedProxies;
use crate::rate_limit::Rate;

/// Settings of the web channel. `WebConfig::default()` suits a local demo.
#[derive(Clone)]
pub struct WebConfig {
    /// The largest customer message text in bytes (UTF-8), after control characters
    /// are removed. Request bodies may be somewhat larger to leave room for JSON
    /// escaping; see [`WebConfig::max_body_bytes`].
    pub max_message_bytes: usize,

    /// The bearer token the agent API requires. When `None`, the agent API accepts
    /// only requests from loopback addresses, which needs the server to be started
    /// with `into_make_service_with_connect_info::<SocketAddr>()`. Those requests
    /// must also name a loopback `Host` and, with an `Origin`, that same origin.
    pub agent_token: Option<String>,

    /// Page origins whose scripts may call the customer API from another origin
    /// (CORS) and open its WebSocket.
    pub customer_origins: AllowedOrigins,

    /// Maximum number of customer WebSockets open at once; further upgrades get 503.
    pub max_sockets: usize,

    /// How often an idle WebSocket gets a ping. A socket that sends nothing for
    /// three intervals is closed.
    pub ping_interval: Duration,

    /// `max-age` of `/widget.js` in seconds; clients revalidate with its ETag.
    pub widget_max_age_seconds: u32,

    /// Limits on customer messages and WebSocket upgrades, per conversation and
    /// per client address.
    pub rate_limits: RateLimits,

    /// Reverse proxies whose `X-Forwarded-For` names the client address that
    /// the per-address limits count. None by default, so the TCP peer counts.
    pub trusted_proxies: TrustedProxies,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 * 1024,
            agent_token: None,
            customer_origins: AllowedOrigins::Any,
            max_sockets: 10_000,
            ping_interval: Duration::from_secs(20),
            widget_max_age_seconds: 300,
            rate_limits: RateLimits::default(),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl WebConfig {
    /// Returns the request body limit of the JSON endpoints: room for the largest
    /// message with every non-ASCII character written as a `\uXXXX` escape (at
    /// most 3 times its UTF-8 size), plus the other fields.
    pub fn max_body_bytes(&self) -> usize {
        self.max_message_bytes.saturating_mul(3).saturating_add(4096)
    }
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.agent_token.as_ref().map(|_| "<redacted>");
        f.debug_struct("WebConfig")
            .field("max_message_bytes", &self.max_message_bytes)
            .field("agent_token", &token)
            .field("customer_origins", &self.customer_origins)
            .field("max_sockets", &self.max_sockets)
            .field("ping_interval", &self.ping_interval)
            .field("widget_max_age_seconds", &self.widget_max_age_seconds)
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// Token-bucket limits of `POST /api/v1/conversations/{id}/messages` and of
/// WebSocket upgrades; `None` turns a limit off. A request over a limit gets
/// 429 `rate_limited` with `Retry-After`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// Per conversation id. The default, 1 per second with a burst of 5, leaves
    /// a person typing fast room and stops a script flooding one conversation.
    pub per_conversation: Option<Rate>,
    /// Per client address (per /64 network for IPv6). The default, 10 per second
    /// with a burst of 30, fits a few people behind one NAT. Behind a reverse
    /// proxy, set [`WebConfig::trusted_proxies`], or every customer shares the
    /// proxy's address and this limit.
    pub per_address: Option<Rate>,
    /// Keys tracked per kind of limit. Past it, refilled buckets are dropped
    /// first, then the least recently used; a key costs roughly 200 bytes.
    pub max_keys: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_conversation: Some(Rate { per_second: 1.0, burst: 5 }),
            per_address: Some(Rate { per_second: 10.0, burst: 30 }),
            max_keys: 100_000,
        }
    }
}

/// The page origins allowed to use the customer API across origins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any page, so the widget works when embedded anywhere. The customer API uses
    /// no cookies, so a foreign page gains nothing it could not do with curl.
    Any,
    /// Only these origins, written as `https://shop.example` (scheme, host and
    /// port, no path). Requests without an `Origin` header, or whose origin names
    /// the request's `Host`, always work.
    // NOTE: behind a proxy that rewrites `Host`, the widget's own page counts as
    // another origin and must be listed too.
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses `*` (any origin) or a comma-separated list of origins such as
    /// `https://shop.example, https://www.shop.example:8443`.
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        if text.trim() == "*" {
            return Ok(Self::Any);
        }
        let mut origins = Vec::new();
        for origin in text.split(',').map(str::trim).filter(|origin| !origin.is_empty()) {
            check_origin(origin)?;
            origins.push(origin.to_owned());
        }
        Ok(Self::List(origins))
    }

    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(origins) => origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)),
        }
    }
}

/// A setting of the web channel written as text (a flag or a configuration
/// value) that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("invalid rate {text:?}: {reason}; write requests per second and an optional burst, such as 1/s,5")]
    InvalidRate { text: String, reason: &'static str },

    #[error("invalid trusted proxy {text:?}: write an IP address such as 10.0.0.5 or a network such as 10.0.0.0/8")]
    InvalidTrustedProxy { text: String },

    #[error("invalid origin {text:?}: write scheme and host with an optional port and no path, such as https://shop.example, or * for any page")]
    InvalidOrigin { text: String },
}

/// Checks that `origin` is `http://` or `https://` with a host, an optional
/// port and nothing after it, which is how browsers send `Origin`.
fn check_origin(origin: &str) -> Result<(), SettingError> {
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    let valid = authority.is_some_and(|authority| {
        !authority.is_empty() && !authority.contains(['/', '?', '#', '@', ' ']) && authority.split(':').nth(2).is_none_or(|_| authority.starts_with('['))
    });
    if valid {
        return Ok(());
    }
    Err(SettingError::InvalidOrigin { text: origin.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_origins_parse_star_as_any() {
        assert_eq!(AllowedOrigins::parse("*"), Ok(AllowedOrigins::Any));
    }

    #[test]
    fn allowed_origins_parse_reads_a_list() {
        let parsed = AllowedOrigins::parse("https://shop.example, http://localhost:8080,").unwrap();

        assert_eq!(parsed, AllowedOrigins::List(vec!["https://shop.example".to_owned(), "http://localhost:8080".to_owned()]));
    }

    #[test]
    fn allowed_origins_parse_rejects_paths_and_schemes() {
        for text in ["shop.example", "https://shop.example/", "ftp://shop.example", "https://", "https://a:1:2"] {
            assert!(AllowedOrigins::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn empty_list_allows_no_foreign_origin() {
        let parsed = AllowedOrigins::parse("").unwrap();

        assert!(!parsed.allows("https://shop.example"));
    }
}
