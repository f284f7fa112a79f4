//! The list of unrecognised customer messages: one Redis list of JSON entries,
//! newest at the head, trimmed to [`MAX_UNRECOGNISED`].
//!
//! An entry is [`UnrecognisedMessage`] as serde writes it, which starts with
//! `{"conversation_id":...,"seq":...,`. The scripts find the entry of one
//! message by that prefix, so they need no JSON decoder.

use bot_core::store::MAX_UNRECOGNISED;
use bot_core::{ConversationId, StoreError, UnrecognisedMessage};

use crate::scripts;
use crate::store::Inner;

/// Returns the start of the entry of message `seq` of conversation `id`.
fn entry_prefix(id: &ConversationId, seq: u64) -> Result<String, StoreError> {
    let id = serde_json::to_string(id.as_str()).map_err(encode_error)?;
    Ok(format!("{{\"conversation_id\":{id},\"seq\":{seq},"))
}

fn encode_error(error: serde_json::Error) -> StoreError {
    StoreError::Unavailable { reason: format!("cannot encode an unrecognised message as JSON: {error}") }
}

pub(crate) async fn record(inner: &Inner, message: &UnrecognisedMessage) -> Result<(), StoreError> {
    let entry = serde_json::to_string(message).map_err(encode_error)?;
    let prefix = entry_prefix(&message.conversation_id, message.seq)?;
    if !entry.starts_with(&prefix) {
        let reason = "an unrecognised message encodes with its fields out of order; the list could not find it again".to_owned();
        return Err(StoreError::Unavailable { reason });
    }

    let mut invocation = scripts::record_unrecognised().prepare_invoke();
    invocation.key(inner.keys.unrecognised()).arg(prefix).arg(entry).arg(MAX_UNRECOGNISED);
    let invocation = &invocation;
    inner.connection.call("record_unrecognised", |mut con| async move { invocation.invoke_async::<()>(&mut con).await }).await
}

/// Lists up to `limit` entries, newest first, skipping (and logging) entries
/// this build cannot read.
pub(crate) async fn list(inner: &Inner, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let key = inner.keys.unrecognised();
    let last = isize::try_from(limit.min(MAX_UNRECOGNISED)).unwrap_or(isize::MAX) - 1;
    let entries: Vec<Vec<u8>> = inner
        .connection
        .call("unrecognised", |mut con| {
            let key = &key;
            async move { redis::cmd("LRANGE").arg(key).arg(0).arg(last).query_async(&mut con).await }
        })
        .await?;

    let mut listed = Vec::with_capacity(entries.len());
    for entry in entries {
        match serde_json::from_slice(&entry) {
            Ok(message) => listed.push(message),
            Err(error) => tracing::warn!(%error, "skipping an unreadable unrecognised message"),
        }
    }
    Ok(listed)
}

pub(crate) async fn dismiss(inner: &Inner, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
    let mut invocation = scripts::dismiss_unrecognised().prepare_invoke();
    invocation.key(inner.keys.unrecognised()).arg(entry_prefix(id, seq)?);
    let invocation = &invocation;
    let removed: u64 =
        inner.connection.call("dismiss_unrecognised", |mut con| async move { invocation.invoke_async(&mut con).await }).await?;
    Ok(removed > 0)
}
