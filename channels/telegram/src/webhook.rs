//! Webhook mode: Telegram posts each update to an HTTPS route of this server.
//!
//! The route responds 401 when the `X-Telegram-Bot-Api-Secret-Token` header is
//! missing or wrong, and 200 to everything else, including updates it cannot
//! read or skips: any other status makes Telegram deliver the update again and
//! again. Updates are queued and processed after the answer, so a slow turn
//! never makes Telegram time out and redeliver.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use sha2::{Digest, Sha256};
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::requests::Request;

use crate::config::{Mode, WebhookConfig};
use crate::error::TelegramError;
use crate::update::parse_update;
use crate::TelegramChannel;

/// The header Telegram sends the webhook's secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

impl TelegramChannel {
    /// Builds the webhook route, to merge into the server's router. Fails unless
    /// the channel is configured for webhook mode.
    pub fn webhook_router(&self) -> Result<Router, TelegramError> {
        let webhook = self.webhook_config()?;
        Ok(Router::new().route(&webhook.path, post(receive)).with_state(self.clone()))
    }

    /// Tells Telegram to post updates to the configured HTTPS address with the secret token.
    pub async fn register_webhook(&self) -> Result<(), TelegramError> {
        let webhook = self.webhook_config()?;
        let url = webhook.url()?;
        let request = self.bot().set_webhook(url).secret_token(webhook.secret_token.expose()).allowed_updates(crate::ALLOWED_UPDATES.to_vec());
        request.send().await.map_err(TelegramError::api("setWebhook"))?;
        tracing::info!(bot = %self.identity().username, path = %webhook.path, "registered the Telegram webhook");
        Ok(())
    }

    fn webhook_config(&self) -> Result<&WebhookConfig, TelegramError> {
        match &self.config().mode {
            Mode::Webhook(webhook) => Ok(webhook),
            Mode::Polling => Err(TelegramError::InvalidConfig { reason: "the webhook needs webhook mode; set a public HTTPS URL and a secret token".to_owned() }),
        }
    }
}

async fn receive(State(channel): State<TelegramChannel>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(webhook) = channel.webhook_config() else {
        return StatusCode::NOT_FOUND;
    };
    let presented = headers.get(SECRET_HEADER).map(|value| value.as_bytes()).unwrap_or_default();
    if !secrets_match(presented, webhook.secret_token.expose().as_bytes()) {
        tracing::warn!("webhook call with a missing or wrong secret token; rejected with 401");
        return StatusCode::UNAUTHORIZED;
    }

    match parse_update(&body) {
        Ok(update) => channel.accept(update),
        Err(error) => tracing::warn!(bytes = body.len(), %error, "webhook body is not a Telegram update; responding 200 so that Telegram does not send it again"),
    }
    StatusCode::OK
}

/// Compares the SHA-256 digests of both secrets in constant time, so neither
/// the content nor the length of the expected secret shows in the timing.
fn secrets_match(presented: &[u8], expected: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    let expected = Sha256::digest(expected);
    presented.iter().zip(expected.iter()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_equal() {
        assert!(secrets_match(b"abc_DEF-1", b"abc_DEF-1"));
    }

    #[test]
    fn secrets_match_rejects_others() {
        for presented in [&b""[..], b"abc_DEF-", b"abc_DEF-2", b"abc_DEF-1x"] {
            assert!(!secrets_match(presented, b"abc_DEF-1"), "{presented:?} matched");
        }
    }
}
