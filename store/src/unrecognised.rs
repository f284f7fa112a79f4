//! The list of unrecognised customer messages as redb transactions.
//!
//! Entries are keyed by an insertion number that only grows, so the newest entry
//! has the highest key. An index by conversation and sequence number finds an
//! entry to replace or dismiss without a scan.

use bot_core::store::MAX_UNRECOGNISED;
use bot_core::{ConversationId, StoreError, UnrecognisedMessage};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::ops::{Inner, OpError};
use crate::tables::{UNRECOGNISED, UNRECOGNISED_INDEX};

/// Adds `message` as the newest entry, replacing an entry for the same message,
/// and drops the oldest entries beyond [`MAX_UNRECOGNISED`].
pub(crate) fn record(inner: &Inner, message: &UnrecognisedMessage, bytes: &[u8]) -> Result<(), OpError> {
    let id = message.conversation_id.as_str();
    let txn = inner.begin_write()?;
    {
        let mut entries = txn.open_table(UNRECOGNISED)?;
        let mut index = txn.open_table(UNRECOGNISED_INDEX)?;
        if let Some(old) = index.remove((id, message.seq))? {
            entries.remove(old.value())?;
        }
        let next = entries.last()?.map_or(0, |(key, _)| key.value() + 1);
        entries.insert(next, bytes)?;
        index.insert((id, message.seq), next)?;

        while entries.len()? > MAX_UNRECOGNISED as u64 {
            let Some((_, oldest)) = entries.pop_first()? else { break };
            // An entry that cannot be decoded leaves a stale index row, which
            // `dismiss` tolerates.
            if let Ok(oldest) = decode(oldest.value()) {
                index.remove((oldest.conversation_id.as_str(), oldest.seq))?;
            }
        }
    }
    inner.commit(txn)
}

/// Lists up to `limit` entries, newest first. An entry that cannot be decoded is
/// logged and skipped.
pub(crate) fn list(inner: &Inner, limit: usize) -> Result<Vec<UnrecognisedMessage>, OpError> {
    let txn = inner.db.begin_read()?;
    let entries = txn.open_table(UNRECOGNISED)?;
    let mut listed = Vec::new();
    for entry in entries.iter()?.rev() {
        if listed.len() >= limit {
            break;
        }
        let (key, bytes) = entry?;
        match decode(bytes.value()) {
            Ok(message) => listed.push(message),
            Err(error) => tracing::warn!(entry = key.value(), %error, "skipping an unreadable unrecognised message"),
        }
    }
    Ok(listed)
}

/// Removes the entry of message `seq` of conversation `id`; returns false when there is none.
pub(crate) fn dismiss(inner: &Inner, id: &ConversationId, seq: u64) -> Result<bool, OpError> {
    let txn = inner.begin_write()?;
    let removed = {
        let mut entries = txn.open_table(UNRECOGNISED)?;
        let mut index = txn.open_table(UNRECOGNISED_INDEX)?;
        let key = index.remove((id.as_str(), seq))?.map(|key| key.value());
        match key {
            Some(key) => entries.remove(key)?.is_some(),
            None => false,
        }
    };
    inner.commit(txn)?;
    Ok(removed)
}

pub(crate) fn encode(message: &UnrecognisedMessage) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(message).map_err(|e| StoreError::Unavailable { reason: format!("cannot encode an unrecognised message as JSON: {e}") })
}

fn decode(bytes: &[u8]) -> Result<UnrecognisedMessage, serde_json::Error> {
    serde_json::from_slice(bytes)
}
