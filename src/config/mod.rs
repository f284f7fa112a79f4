//! The server's configuration file (TOML), its environment overrides and
//! `lepton config check|show`.
//!
//! Every key has a default, so a server runs without a file. A value comes from,
//! in this order of precedence: a command-line flag, an environment variable
//! (`LEPTON_<SECTION>_<KEY>`, such as `LEPTON_SERVER_PORT`, plus the older
//! names listed in [`ENV_ALIASES`]), the file given with `--config` or
//! `LEPTON_CONFIG`, and the default. The session store's keys that are unset
//! here fall back to the bot's `settings.session_store` and `settings.redis`.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! let text = "[server]\nport = 9000\n";
//! let loaded = lepton::config::load_str(text, "lepton.toml".as_ref(), &|_| None, &[])?;
//! assert_eq!(loaded.config.server.port, 9000);
//! # Ok(())
//! # }
//! ```
//!
//! To add a key, add the field to its section with a default and document it
//! in `docs/lepton.example.toml`, where a test checks that every key appears.
//! A secret's name ends in `token`, `secret` or `password`, so that
//! `lepton config show` redacts it.

mod channels;
mod load;
mod show;
mod validate;

use std::fmt;
use std::path::PathBuf;

use bot_core::bot::StoreKind;
use serde::{Deserialize, Serialize};

pub use channels::{discord_config, telegram_config};
pub use load::{load, load_str, ConfigError, Diagnostic, Loaded, Override, Source, CONFIG_ENV, ENV_ALIASES};
pub use show::render;

/// The whole configuration: one field per `[section]` of the file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub log: LogSection,
    pub store: StoreSection,
    pub redis: RedisSection,
    pub agent: AgentSection,
    pub web: WebSection,
    pub http: HttpSection,
    pub metrics: MetricsSection,
    pub telegram: TelegramSection,
    pub discord: DiscordSection,
    pub encoder: EncoderSection,
}

/// `[server]`: where the server listens, which bot it serves, its timers and shutdown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// The address to listen on.
    pub host: String,
    pub port: u16,
    /// The bot folder; `lepton serve DIR` overrides it, and one of them is required.
    pub bot: Option<PathBuf>,
    /// The folder for the model, the index and the embedded store [default: BOT/.lepton].
    pub data_dir: Option<PathBuf>,
    /// Reload the bot when its files change.
    pub watch: bool,
    /// Serve the demo orders endpoint from `orders.json` in the bot folder.
    pub demo_orders: bool,
    /// On SIGTERM or SIGINT, how long turns in flight may take to finish before the server exits anyway.
    pub shutdown_timeout_seconds: u64,
    /// How long a client may take to send a request's headers, and then its
    /// body, before the server closes the connection or fails the request.
    pub header_read_timeout_seconds: u64,
    /// How often the server checks for customers who have waited too long for an agent.
    pub handoff_timer_seconds: u64,
    /// Conversations this process serves at once; a message that would start
    /// another gets the `busy` reply. 0 removes the cap.
    pub max_active_conversations: usize,
    /// How long a conversation counts as active after its last turn.
    pub active_conversation_idle_seconds: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            bot: None,
            data_dir: None,
            watch: true,
            demo_orders: false,
            shutdown_timeout_seconds: 10,
            header_read_timeout_seconds: 10,
            handoff_timer_seconds: 5,
            max_active_conversations: bot_core::engine::ActiveLimit::default().max_conversations,
            active_conversation_idle_seconds: bot_core::engine::ActiveLimit::default().idle_window.as_secs(),
        }
    }
}

/// `[log]`: the log on standard error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,lepton_web=debug`; `LEPTON_LOG` sets it too.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".to_owned() }
    }
}

/// The log's format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[store]`: the session store. Unset keys fall back to the bot's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// `embedded`, `memory` or `redis` [default: the bot's `settings.session_store`, else embedded].
    pub kind: Option<StoreKind>,
    /// The embedded store's file [default: DATA_DIR/sessions.redb].
    pub path: Option<PathBuf>,
    /// For the embedded store: make writes durable this many milliseconds after
    /// they return instead of before; 0 keeps every write durable before it returns.
    pub flush_ms: u64,
}

/// `[redis]`: the Redis store. Unset keys fall back to the bot's `settings.redis`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://[:password@]host[:port][/db]`, `rediss://` for TLS, or several
    /// cluster nodes separated by commas. Its password is redacted in `config show`.
    pub url: Option<Secret>,
    pub key_prefix: Option<String>,
    pub cluster: Option<bool>,
    /// Transcript events kept per conversation.
    pub max_events: Option<usize>,
}

/// `[agent]`: the agent API and the support console.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// Bearer token the agent API requires; without it only loopback clients may use it.
    pub token: Option<Secret>,
    /// The console's accounts file, written by `lepton agent add` [default: DATA_DIR/agents.json].
    pub accounts_file: Option<PathBuf>,
}

/// `[web]`: limits of the web channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSection {
    /// The largest customer message text, in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// Customer WebSockets open at once; further upgrades get 503.
    pub max_sockets: usize,
    /// Page origins allowed to call the customer API from another origin; empty allows any.
    pub customer_origins: Vec<String>,
    /// Seconds between pings on an idle WebSocket.
    pub ping_interval_seconds: u64,
    /// `max-age` of `/widget.js` in seconds.
    pub widget_max_age_seconds: u32,
    /// Customer messages per conversation: `RATE/s,BURST` such as `1/s,5`, or `off`.
    pub rate_limit_conversation: String,
    /// Customer messages and WebSocket upgrades per client address (per /64 for IPv6), or `off`.
    pub rate_limit_address: String,
    /// Keys each rate limit tracks at most.
    pub rate_limit_max_keys: usize,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: Vec<String>,
}

impl Default for WebSection {
    fn default() -> Self {
        let web = lepton_web::WebConfig::default();
        Self {
            max_message_bytes: web.max_message_bytes,
            max_sockets: web.max_sockets,
            customer_origins: Vec::new(),
            ping_interval_seconds: web.ping_interval.as_secs(),
            widget_max_age_seconds: web.widget_max_age_seconds,
            rate_limit_conversation: rate_text(web.rate_limits.per_conversation),
            rate_limit_address: rate_text(web.rate_limits.per_address),
            rate_limit_max_keys: web.rate_limits.max_keys,
            trusted_proxies: Vec::new(),
        }
    }
}

fn rate_text(rate: Option<lepton_web::Rate>) -> String {
    rate.map_or_else(|| "off".to_owned(), |rate| rate.to_string())
}

/// `[http]`: the client of the flows' `http` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// The timeout of a step without `timeout_ms`, from connecting to reading the response.
    pub timeout_ms: u64,
    /// The time allowed to connect, within the request's timeout.
    pub connect_timeout_ms: u64,
    /// The largest response body read; a larger one fails the step.
    pub max_response_bytes: usize,
}

impl Default for HttpSection {
    fn default() -> Self {
        let http = crate::http_client::HttpClientConfig::default();
        Self {
            timeout_ms: http.default_timeout.as_millis() as u64,
            connect_timeout_ms: http.connect_timeout.as_millis() as u64,
            max_response_bytes: http.max_response_bytes,
        }
    }
}

/// `[telegram]`: the Telegram channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSection {
    /// Serve the bot on Telegram (long polling, or webhook when `webhook_url` is set).
    pub enabled: bool,
    /// The public HTTPS URL Telegram posts updates to, forwarded to this server.
    pub webhook_url: Option<String>,
    /// The token from @BotFather.
    pub token: Option<Secret>,
    /// The secret Telegram sends with each webhook call.
    pub webhook_secret: Option<Secret>,
    /// Another Bot API server, for tests and self-hosted Bot API servers.
    pub api_url: Option<String>,
}

/// `[discord]`: the Discord channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordSection {
    pub enabled: bool,
    /// The bot token from the developer portal.
    pub token: Option<Secret>,
    /// Channel ids where the bot answers every message without a mention.
    pub support_channels: Vec<u64>,
    /// In a support channel, open a thread for each customer.
    pub thread_per_customer: bool,
    /// `auto`, a count such as `4`, or `FIRST-LAST/TOTAL` such as `0-3/8` [default: one shard].
    pub shards: Option<String>,
    /// An HTTP proxy for the REST calls that applies Discord's rate limits.
    pub api_proxy: Option<String>,
}

/// `[encoder]`: the pretrained sentence encoder. Each key set here replaces the
/// bot's `settings.encoder` value, so that one bot folder runs on a laptop's
/// CPU and on a GPU server. A `model` here gives the bot an encoder even when
/// its settings have none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderSection {
    /// A model folder (relative to the bot folder, or absolute) or a Hugging Face id `org/name` in the local cache.
    pub model: Option<String>,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: Option<String>,
    /// The most texts in one forward pass.
    pub batch_size: Option<usize>,
    /// How long the batcher waits for more texts after the first, in milliseconds.
    pub batch_wait_ms: Option<u64>,
}

impl EncoderSection {
    /// Applies the keys set here over the bot's encoder settings. The values
    /// were validated when the configuration loaded.
    pub fn apply(&self, encoder: Option<bot_core::bot::EncoderSettings>) -> Option<bot_core::bot::EncoderSettings> {
        let mut encoder = match (encoder, &self.model) {
            (Some(mut encoder), Some(model)) => {
                encoder.model = model.clone();
                encoder
            }
            (Some(encoder), None) => encoder,
            (None, Some(model)) => bot_core::bot::EncoderSettings::new(model.clone()),
            (None, None) => return None,
        };
        if let Some(device) = self.device.as_deref().and_then(bot_core::bot::EncoderDevice::from_name) {
            encoder.device = device;
        }
        if let Some(batch_size) = self.batch_size {
            encoder.batch_size = batch_size;
        }
        if let Some(wait) = self.batch_wait_ms {
            encoder.batch_wait_ms = wait;
        }
        Some(encoder)
    }

    /// Whether any key is set.
    pub fn is_set(&self) -> bool {
        self != &Self::default()
    }
}

/// `[metrics]`: the Prometheus metrics route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve the metrics.
    pub enabled: bool,
    /// The route, outside `/api/` and `/console`.
    pub path: String,
    /// Bearer token scrapers must send; without it only loopback clients may read the metrics.
    pub token: Option<Secret>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        let access = crate::metrics::MetricsAccess::default();
        Self { enabled: true, path: access.path, token: None }
    }
}

impl MetricsSection {
    /// Returns where and to whom the server serves the metrics; `None` when they are off.
    pub fn access(&self) -> Option<crate::metrics::MetricsAccess> {
        let token = self.token.as_ref().map(|token| token.expose().trim().to_owned()).filter(|token| !token.is_empty());
        self.enabled.then(|| crate::metrics::MetricsAccess { path: self.path.clone(), token })
    }
}

/// A secret value: `Debug` never prints it, and `lepton config show` redacts it.
/// It serializes as itself, so that the configuration can be merged as a value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
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
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests;
