//! The JSON records the store writes: a session under its store version and
//! expiry, and transcript events.
//!
//! A session record looks like
//! `{"version": 3, "expires_at": 1767225600000, "session": {"schema_version": 1, ...}}`.
//! `version` and `expires_at` belong to the store. `session` is
//! [`bot_core::Session`] as serde writes it, and its `schema_version` selects
//! how it is decoded.

use bot_core::session::SESSION_SCHEMA_VERSION;
use bot_core::{ConversationId, Event, Session, StoreError, Timestamp};
use serde::{Deserialize, Serialize};

/// The store-owned fields of a session record, readable even when the session
/// inside has a schema this build does not know.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub version: u64,
    pub expires_at: Timestamp,
    pub session: serde_json::Value,
}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    version: u64,
    expires_at: Timestamp,
    session: &'a Session,
}

/// Encodes a session record that replaces the one stored under `stored_version`
/// (0: none), giving it version `stored_version + 1`.
pub(crate) fn encode_session(session: &Session, stored_version: u64, expires_at: Timestamp) -> Result<Vec<u8>, StoreError> {
    let id = &session.conversation_id;
    if session.schema_version != SESSION_SCHEMA_VERSION {
        let reason = format!(
            "cannot store a session with schema version {}: this build writes and reads version {SESSION_SCHEMA_VERSION}",
            session.schema_version
        );
        return Err(corrupt(id, stored_version, reason));
    }
    let record = EnvelopeRef { version: stored_version + 1, expires_at, session };
    serde_json::to_vec(&record).map_err(|e| corrupt(id, stored_version, format!("cannot encode the session as JSON: {e}")))
}

/// Decodes the store-owned fields of a session record. When they cannot be
/// read, the error has version 0, so a save at version 0 replaces the record.
pub(crate) fn decode_envelope(id: &ConversationId, bytes: &[u8]) -> Result<Envelope, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(id, 0, format!("invalid session record: {e}")))
}

/// Decodes the session inside an envelope, migrating an older schema version.
pub(crate) fn decode_session(id: &ConversationId, envelope: Envelope) -> Result<Session, StoreError> {
    let version = envelope.version;
    bot_core::session::decode_session(envelope.session).map_err(|e| corrupt(id, version, e.to_string()))
}

// NOTE: StoreError::Corrupt describes a session; an unreadable transcript event
// reuses it with version 0 because the trait has no variant for events.
pub(crate) fn encode_event(event: &Event) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(event).map_err(|e| {
        corrupt(&event.conversation_id, 0, format!("cannot encode transcript event {} as JSON: {e}", event.seq))
    })
}

pub(crate) fn decode_event(id: &ConversationId, seq: u64, bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(id, 0, format!("invalid transcript event {seq}: {e}")))
}

fn corrupt(id: &ConversationId, version: u64, reason: String) -> StoreError {
    StoreError::Corrupt { conversation_id: id.clone(), version, reason }
}
