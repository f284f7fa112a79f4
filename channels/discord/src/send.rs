//! REST calls: replies split into messages with buttons, interaction
//! acknowledgements, the typing indicator, threads and channel lookups, each
//! retried a bounded number of times.
//!
//! With serenity's rate limiter (the default), calls wait for Discord's rate
//! limit buckets and a 429 is retried inside serenity. With an API proxy the
//! limiter is off, and a 429 reaches this module, which waits `retry_after`.

use std::time::Duration;

use bot_core::observe::{Observer, Observers};
use bot_core::{Channel, Reply};
use reqwest::StatusCode;
use serde::Serialize;
use serenity::all::{ChannelId, CreateInteractionResponse, CreateMessage, CreateThread, MessageId, MessageReference, UserId};
use serenity::http::{Http, HttpBuilder, HttpError, LightMethod, Request, Route};
use serenity::model::id::InteractionId;

use crate::config::DiscordConfig;
use crate::error::SendError;
use crate::event::ChannelKind;
use crate::format::{allowed_mentions, buttons, split, MAX_MESSAGE_CHARS};

/// Discord's maximum thread name, in characters.
const MAX_THREAD_NAME_CHARS: usize = 100;

/// The addressing of one reply: the message it answers and the user it may notify.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Delivery {
    /// The customer's message the first part replies to.
    pub reply_to: Option<u64>,
    /// The one user the message may notify.
    pub notify: Option<u64>,
}

/// Sends REST calls with retries. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbox {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    http: Http,
    client: reqwest::Client,
    max_retries: u32,
    max_retry_after: Duration,
    backoff: Duration,
    /// The engine's observers, told of failed replies and rate-limit waits.
    observers: Observers,
}

/// Builds serenity's REST client: through the proxy with the rate limiter off
/// when `api_proxy` is set, else to Discord with serenity's rate limiter.
pub(crate) fn build_http(config: &DiscordConfig, client: &reqwest::Client) -> Http {
    let builder = HttpBuilder::new(config.token.expose()).client(client.clone());
    match &config.api_proxy {
        Some(proxy) => builder.proxy(proxy.as_str().trim_end_matches('/')).ratelimiter_disabled(true).build(),
        None => builder.build(),
    }
}

impl Outbox {
    pub fn new(config: &DiscordConfig, client: reqwest::Client, observers: Observers) -> Self {
        let inner = Inner {
            http: build_http(config, &client),
            client,
            max_retries: config.max_send_retries,
            max_retry_after: config.max_retry_after,
            backoff: config.retry_backoff,
            observers,
        };
        Self { inner: std::sync::Arc::new(inner) }
    }

    pub fn http(&self) -> &Http {
        &self.inner.http
    }

    /// Sends a reply as messages of at most 2,000 characters; the first part
    /// replies to `delivery.reply_to`, and the buttons go with the last part.
    pub async fn send_reply(&self, channel_id: u64, reply: &Reply, delivery: Delivery) -> Result<(), SendError> {
        let text = match delivery.notify {
            Some(user) => format!("<@{user}> {}", reply.text),
            None => reply.text.clone(),
        };
        let parts = split(&text, MAX_MESSAGE_CHARS);
        let count = parts.len();
        for (index, part) in parts.into_iter().enumerate() {
            let mut message = CreateMessage::new().content(part).allowed_mentions(allowed_mentions(delivery.notify.map(UserId::new)));
            if let (0, Some(reply_to)) = (index, delivery.reply_to) {
                let mut reference = MessageReference::from((ChannelId::new(channel_id), MessageId::new(reply_to)));
                // A deleted customer message must not stop the reply.
                reference.fail_if_not_exists = Some(false);
                message = message.reference_message(reference);
            }
            if index + 1 == count && !reply.quick_replies.is_empty() {
                message = message.components(buttons(&reply.quick_replies));
            }
            let route = Route::ChannelMessages { channel_id: ChannelId::new(channel_id) };
            let sent = self.call("POST /channels/{id}/messages", Request::new(route, LightMethod::Post).body(Some(json(&message)?))).await;
            if let Err(error) = sent {
                self.inner.observers.send_failed(&Channel::new(crate::CHANNEL));
                return Err(error);
            }
        }
        Ok(())
    }

    /// Acknowledges a button press without changing the message, so Discord
    /// shows no error; the replies follow as messages.
    pub async fn acknowledge(&self, interaction_id: u64, token: &str) {
        let route = Route::InteractionResponse { interaction_id: InteractionId::new(interaction_id), token };
        let body = match json(&CreateInteractionResponse::Acknowledge) {
            Ok(body) => body,
            Err(error) => return tracing::error!(%error, "cannot encode an interaction response"),
        };
        if let Err(error) = self.call("POST /interactions/{id}/{token}/callback", Request::new(route, LightMethod::Post).body(Some(body))).await {
            tracing::warn!(interaction_id, %error, "cannot acknowledge a button press; Discord shows the customer that the interaction failed");
        }
    }

    /// Shows "typing…" in the channel for about 10 s.
    pub async fn typing(&self, channel_id: u64) {
        let route = Route::ChannelTyping { channel_id: ChannelId::new(channel_id) };
        if let Err(error) = self.call_once("POST /channels/{id}/typing", Request::new(route, LightMethod::Post)).await {
            tracing::debug!(channel_id, %error, "cannot send the typing indicator");
        }
    }

    /// Opens a public thread on a customer's message and returns its id.
    pub async fn start_thread(&self, channel_id: u64, message_id: u64, name: &str) -> Result<u64, SendError> {
        let name: String = name.chars().take(MAX_THREAD_NAME_CHARS).collect();
        let route = Route::ChannelMessageThreads { channel_id: ChannelId::new(channel_id), message_id: MessageId::new(message_id) };
        let call = "POST /channels/{id}/messages/{id}/threads";
        let body = self.call(call, Request::new(route, LightMethod::Post).body(Some(json(&CreateThread::new(name))?))).await?;
        let created: IdOnly = serde_json::from_slice(&body).map_err(|error| SendError::Response { call, error })?;
        created.id.parse().map_err(|_| SendError::Rejected { call, status: 200, code: -1, message: format!("thread id {:?} is not a number", created.id) })
    }

    /// Reads whether a channel is a thread, and of which channel.
    pub async fn channel_kind(&self, channel_id: u64) -> Result<ChannelKind, SendError> {
        let call = "GET /channels/{id}";
        let route = Route::Channel { channel_id: ChannelId::new(channel_id) };
        let body = self.call(call, Request::new(route, LightMethod::Get)).await?;
        let channel: ChannelFields = serde_json::from_slice(&body).map_err(|error| SendError::Response { call, error })?;
        let parent_id = channel.parent_id.and_then(|id| id.parse().ok());
        Ok(ChannelKind::from_type(channel.kind.into(), parent_id))
    }

    /// Returns the gateway address from `GET /gateway`.
    pub async fn gateway_url(&self) -> Result<String, serenity::Error> {
        Ok(self.inner.http.get_gateway().await?.url)
    }

    /// Runs a call, waiting `retry_after` after a 429 and backing off after a
    /// 502-504 or a failed connection, at most `max_retries` times. Other
    /// failures, and network errors after the request may have reached
    /// Discord, are not retried, so a message is never sent twice by a retry.
    async fn call(&self, call: &'static str, request: Request<'_>) -> Result<Vec<u8>, SendError> {
        let mut attempt = 0;
        loop {
            let (error, retry) = match self.attempt(call, request.clone()).await {
                Ok(body) => return Ok(body),
                Err(failure) => failure,
            };
            let wait = match retry {
                Retry::No => return Err(error),
                Retry::After(wait) if wait > self.inner.max_retry_after => return Err(SendError::RetryAfterTooLong { call, retry_after: wait }),
                Retry::After(wait) => wait,
                Retry::Backoff => self.inner.backoff.saturating_mul(2u32.pow(attempt.min(6))),
            };
            if attempt >= self.inner.max_retries {
                return Err(SendError::GaveUp { attempts: attempt + 1, last: Box::new(error) });
            }
            attempt += 1;
            if matches!(retry, Retry::After(_)) {
                self.inner.observers.rate_limited(&Channel::new(crate::CHANNEL), wait);
            }
            tracing::info!(call, attempt, wait_ms = wait.as_millis() as u64, %error, "Discord API call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn call_once(&self, call: &'static str, request: Request<'_>) -> Result<Vec<u8>, SendError> {
        self.attempt(call, request).await.map_err(|(error, _)| error)
    }

    /// Makes one attempt; a failure comes with whether and when to retry.
    async fn attempt(&self, call: &'static str, request: Request<'_>) -> Result<Vec<u8>, (SendError, Retry)> {
        let response = match self.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                let connect = matches!(&error, serenity::Error::Http(HttpError::Request(cause)) if cause.is_connect());
                let retry = if connect { Retry::Backoff } else { Retry::No };
                return Err((SendError::Network { call, error: Box::new(without_url(error)) }, retry));
            }
        };

        let status = response.status();
        let header_wait = retry_after_header(&response);
        let body = response.bytes().await.map_err(|error| (SendError::Network { call, error: Box::new(without_url(error.into())) }, Retry::No))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }

        let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let retry = match status {
            StatusCode::TOO_MANY_REQUESTS => error.retry_after.and_then(seconds).or(header_wait).map_or(Retry::Backoff, Retry::After),
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => Retry::Backoff,
            _ => Retry::No,
        };
        let rejected = SendError::Rejected { call, status: status.as_u16(), code: error.code.unwrap_or(-1), message: error.message.unwrap_or_default() };
        Err((rejected, retry))
    }

    /// Sends the request through serenity's rate limiter when it is on, else
    /// straight to the API address (the proxy).
    async fn execute(&self, request: Request<'_>) -> Result<reqwest::Response, serenity::Error> {
        let http = &self.inner.http;
        if let Some(limiter) = &http.ratelimiter {
            return limiter.perform(request).await;
        }
        let built = request.build(&self.inner.client, http.token(), http.proxy.as_deref())?.build().map_err(HttpError::from)?;
        Ok(self.inner.client.execute(built).await.map_err(HttpError::from)?)
    }

}

fn json(value: &impl Serialize) -> Result<Vec<u8>, SendError> {
    serde_json::to_vec(value).map_err(|error| SendError::Response { call: "encode request body", error })
}

/// Removes the URL from a request error, because an interaction's URL contains its token.
fn without_url(error: serenity::Error) -> serenity::Error {
    match error {
        serenity::Error::Http(HttpError::Request(cause)) => serenity::Error::Http(HttpError::Request(cause.without_url())),
        other => other,
    }
}

/// Whether and when a failed call is retried.
enum Retry {
    No,
    /// After the wait Discord asked for.
    After(Duration),
    /// After the configured backoff, doubled per attempt.
    Backoff,
}

fn retry_after_header(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<f64>().ok().and_then(seconds)
}

/// Converts seconds from Discord into a duration; `None` for negative or non-finite values.
fn seconds(value: f64) -> Option<Duration> {
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(86_400.0)))
}

/// The fields of Discord's JSON error body that the retry logic reads.
#[derive(Default, serde::Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
    /// Seconds to wait, on a 429.
    retry_after: Option<f64>,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(serde::Deserialize)]
struct ChannelFields {
    #[serde(rename = "type")]
    kind: u8,
    parent_id: Option<String>,
}
