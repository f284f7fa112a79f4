//! Checks of values that have the right type but may still be wrong, such as
//! a URL that does not parse or a shard range outside its total.

use reqwest::Url;

use super::Config;

/// Routes of `lepton_web::router` outside /api/ and /console; the metrics
/// route may not be one of them (`/demo/` belongs to the demo orders).
const OTHER_ROUTES: &[&str] = &["/", "/widget.js", "/healthz", "/readyz"];

/// Returns each invalid key with the reason, in the order of the sections.
pub(super) fn validate(config: &Config) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, reason: String| problems.push((key.to_owned(), reason));

    if config.server.handoff_timer_seconds == 0 {
        problem("server.handoff_timer_seconds", "must be at least 1".to_owned());
    }
    if config.server.header_read_timeout_seconds == 0 {
        problem("server.header_read_timeout_seconds", "must be at least 1".to_owned());
    }
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        problem("log.level", format!("{:?} is not a log filter such as `info` or `info,lepton_web=debug`: {error}", config.log.level));
    } else if let Some(word) = bare_target(&config.log.level) {
        problem(
            "log.level",
            format!("{word:?} is not a level: use trace, debug, info, warn, error or off, or TARGET=LEVEL such as `lepton_web=debug`"),
        );
    }
    if let Some(url) = &config.redis.url {
        let url = url.expose();
        let schemes_ok = url.split(',').map(str::trim).all(|one| one.starts_with("redis://") || one.starts_with("rediss://"));
        if !schemes_ok {
            problem("redis.url", "must start with redis:// or rediss:// (several cluster nodes are separated by commas)".to_owned());
        }
    }
    if config.web.max_message_bytes == 0 {
        problem("web.max_message_bytes", "must be at least 1".to_owned());
    }
    if config.web.ping_interval_seconds == 0 {
        problem("web.ping_interval_seconds", "must be at least 1".to_owned());
    }
    if let Err(error) = lepton_web::AllowedOrigins::parse(&config.web.customer_origins.join(",")) {
        problem("web.customer_origins", error.to_string());
    }
    for (key, text) in [("web.rate_limit_conversation", &config.web.rate_limit_conversation), ("web.rate_limit_address", &config.web.rate_limit_address)] {
        if let Err(error) = crate::limits::parse_rate(text) {
            problem(key, error.to_string());
        }
    }
    if config.web.rate_limit_max_keys == 0 {
        problem("web.rate_limit_max_keys", "must be at least 1".to_owned());
    }
    if let Err(error) = lepton_web::TrustedProxies::parse(&config.web.trusted_proxies.join(",")) {
        problem("web.trusted_proxies", error.to_string());
    }
    if config.server.active_conversation_idle_seconds == 0 {
        problem("server.active_conversation_idle_seconds", "must be at least 1".to_owned());
    }
    for (key, value) in [("http.timeout_ms", config.http.timeout_ms), ("http.connect_timeout_ms", config.http.connect_timeout_ms)] {
        if value == 0 {
            problem(key, "must be at least 1".to_owned());
        }
    }
    if config.http.max_response_bytes == 0 {
        problem("http.max_response_bytes", "must be at least 1".to_owned());
    }
    let path = &config.metrics.path;
    if !path.starts_with('/') || path.starts_with("/api/") || path.starts_with("/console") || path.contains(['{', '}', '*']) {
        problem("metrics.path", format!("{path:?} must start with / and lie outside /api/ and /console, such as /metrics"));
    } else if OTHER_ROUTES.contains(&path.as_str()) || path.starts_with("/demo/") {
        problem("metrics.path", format!("{path:?} is a route the server already serves: choose another, such as /metrics"));
    }
    if let Some(url) = &config.telegram.webhook_url {
        if !Url::parse(url).is_ok_and(|url| url.scheme() == "https") {
            problem("telegram.webhook_url", format!("{:?} is not an https:// URL such as https://bot.example.com/telegram/webhook", lepton_redis::redact_url(url)));
        }
    }
    if let Some(url) = &config.telegram.api_url {
        if !is_http_url(url) {
            problem("telegram.api_url", format!("{:?} is not an http:// or https:// URL such as http://127.0.0.1:8081/", lepton_redis::redact_url(url)));
        }
    }
    if let Some(shards) = &config.discord.shards {
        if let Err(error) = shards.parse::<lepton_discord::Sharding>() {
            problem("discord.shards", error.to_string());
        }
    }
    if let Some(url) = &config.discord.api_proxy {
        if !is_http_url(url) {
            problem("discord.api_proxy", format!("{:?} is not an http:// or https:// URL such as http://127.0.0.1:3000", lepton_redis::redact_url(url)));
        }
    }
    if let Some(device) = config.encoder.device.as_deref().filter(|name| bot_core::bot::EncoderDevice::from_name(name).is_none()) {
        problem("encoder.device", format!("{device:?} is not a device: use cpu, cuda or cuda:N such as cuda:1"));
    }
    if config.encoder.model.as_deref().is_some_and(|model| model.trim().is_empty()) {
        problem("encoder.model", "is empty: give a model folder or a Hugging Face id such as sentence-transformers/all-MiniLM-L6-v2".to_owned());
    }
    if let Some(size) = config.encoder.batch_size.filter(|size| !(1..=4096).contains(size)) {
        problem("encoder.batch_size", format!("{size} must be from 1 to 4096"));
    }
    if let Some(wait) = config.encoder.batch_wait_ms.filter(|wait| *wait > 1000) {
        problem("encoder.batch_wait_ms", format!("{wait} must be from 0 to 1000"));
    }
    problems
}

fn is_http_url(text: &str) -> bool {
    Url::parse(text).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

/// Returns the first directive of a log filter that is a bare word but not a
/// level. `EnvFilter` reads such a word (`inof`, `verbose`) as a target name
/// that enables everything for that target only, so a typo silently turns
/// logging off.
fn bare_target(filter: &str) -> Option<&str> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    filter
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .filter(|directive| !directive.contains(['=', '[', '{']))
        .find(|directive| !LEVELS.iter().any(|level| level.eq_ignore_ascii_case(directive)))
}
