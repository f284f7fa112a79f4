//! Settings of the web channel.

use std::fmt;
use std::time::Duration;

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
            .finish()
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
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(origins) => origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)),
        }
    }
}
