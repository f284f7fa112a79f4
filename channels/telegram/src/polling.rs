//! Long polling with `getUpdates`, for development and for servers without a
//! public HTTPS address.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::Update;
use teloxide::RequestError;

use crate::error::TelegramError;
use crate::TelegramChannel;

/// Maximum wait between two failed `getUpdates` calls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl TelegramChannel {
    /// Removes any webhook, then receives updates until `shutdown` completes.
    /// On shutdown it lets the queued updates finish and confirms the last
    /// offset, so Telegram does not send them again on the next start.
    pub async fn run_polling(&self, shutdown: impl Future<Output = ()>) -> Result<(), TelegramError> {
        self.bot().delete_webhook().send().await.map_err(TelegramError::api("deleteWebhook"))?;
        tracing::info!(bot = %self.identity().username, "receiving Telegram updates by long polling");

        tokio::pin!(shutdown);
        let mut offset = 0;
        let mut backoff = Duration::ZERO;
        loop {
            let timeout = self.config().poll_timeout.as_secs().min(u64::from(u32::MAX)) as u32;
            let request = self.bot().get_updates().offset(offset).timeout(timeout).allowed_updates(crate::ALLOWED_UPDATES.to_vec());
            let result = tokio::select! {
                () = &mut shutdown => break,
                result = request.send() => result,
            };
            match self.take_updates(result, &mut offset) {
                Ok(()) => backoff = Duration::ZERO,
                Err(error) => {
                    backoff = next_backoff(backoff, &error);
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "getUpdates failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }

        self.dispatcher().drain().await;
        if offset > 0 {
            let confirm = self.bot().get_updates().offset(offset).timeout(0).limit(1);
            if let Err(error) = confirm.send().await {
                tracing::warn!(%error, "cannot confirm the last update offset; Telegram may send some updates again");
            }
        }
        tracing::info!("stopped receiving Telegram updates");
        Ok(())
    }

    /// Queues the updates of one `getUpdates` response and moves `offset` past them.
    fn take_updates(&self, result: Result<Vec<Update>, RequestError>, offset: &mut i32) -> Result<(), RequestError> {
        match result {
            Ok(updates) => {
                *offset = self.accept_batch(updates, *offset);
                Ok(())
            }
            // One update teloxide cannot read must not stop the rest.
            Err(RequestError::InvalidJson { raw, source }) => {
                let next = self.accept_raw(&raw, *offset);
                if next > *offset {
                    *offset = next;
                    return Ok(());
                }
                Err(RequestError::InvalidJson { raw, source })
            }
            Err(error) => Err(error),
        }
    }

    fn accept_batch(&self, updates: Vec<Update>, mut offset: i32) -> i32 {
        for update in updates {
            offset = offset.max(update.id.as_offset());
            self.accept(update);
        }
        offset
    }

    /// Reads a `getUpdates` response that failed to parse as a whole, update by
    /// update, and returns the offset past the last one.
    fn accept_raw(&self, raw: &str, mut offset: i32) -> i32 {
        let value: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
        let Some(results) = value.get("result").and_then(serde_json::Value::as_array) else {
            tracing::warn!(bytes = raw.len(), "getUpdates returned a body that is not an update list; skipping it");
            return offset;
        };
        for item in results {
            let id = item.get("update_id").and_then(serde_json::Value::as_i64).unwrap_or_default();
            offset = offset.max(i32::try_from(id + 1).unwrap_or(offset));
            // Deserialized from a reference: from an owned `Value`, teloxide-core
            // 0.13 reads every update as `UpdateKind::Error`.
            match Update::deserialize(item) {
                Ok(update) => self.accept(update),
                Err(error) => tracing::warn!(update_id = id, %error, "skipping an update that cannot be read"),
            }
        }
        offset
    }
}

fn next_backoff(previous: Duration, error: &RequestError) -> Duration {
    if let RequestError::RetryAfter(seconds) = error {
        return seconds.duration();
    }
    (previous * 2).clamp(Duration::from_secs(1), MAX_BACKOFF)
}
