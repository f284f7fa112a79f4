//! The JSON the store writes: sessions, transcript events, and the message
//! published for committed events.

use bot_core::session::SESSION_SCHEMA_VERSION;
use bot_core::{ConversationId, Event, Session, StoreError};
use serde::Deserialize;

/// Encodes a session for the `session` field of its hash. `expected` is only
/// reported in the error.
pub(crate) fn encode_session(session: &Session, expected: u64) -> Result<String, StoreError> {
    let id = &session.conversation_id;
    if session.schema_version != SESSION_SCHEMA_VERSION {
        let reason = format!(
            "cannot store a session with schema version {}: this build writes and reads version {SESSION_SCHEMA_VERSION}",
            session.schema_version
        );
        return Err(corrupt(id, expected, reason));
    }
    serde_json::to_string(session).map_err(|e| corrupt(id, expected, format!("cannot encode the session as JSON: {e}")))
}

/// Decodes the fields `version` and `session` of a session hash, migrating an
/// older schema version. An unreadable `version` makes the record corrupt at
/// version 0, so that a save at 0 replaces it.
pub(crate) fn decode_session(id: &ConversationId, version: Option<String>, session: Option<Vec<u8>>) -> Result<(u64, Session), StoreError> {
    let Some(version) = version.as_deref().and_then(|v| v.parse::<u64>().ok()) else {
        return Err(corrupt(id, 0, format!("invalid session record: version field is {version:?}")));
    };
    let Some(session) = session else {
        return Err(corrupt(id, version, "invalid session record: no session field".to_owned()));
    };

    let value: serde_json::Value =
        serde_json::from_slice(&session).map_err(|e| corrupt(id, version, format!("the session is not JSON: {e}")))?;
    let session = bot_core::session::decode_session(value).map_err(|e| corrupt(id, version, e.to_string()))?;
    Ok((version, session))
}

/// Encodes events as (sequence number, JSON) pairs for a script's arguments.
pub(crate) fn encode_events(events: &[Event]) -> Result<Vec<(u64, String)>, StoreError> {
    events.iter().map(|event| Ok((event.seq, encode_event(event)?))).collect()
}

// NOTE: StoreError::Corrupt describes a session, but the trait has no variant for
// events, so an event that cannot be encoded or read reuses it with version 0.
fn encode_event(event: &Event) -> Result<String, StoreError> {
    serde_json::to_string(event)
        .map_err(|e| corrupt(&event.conversation_id, 0, format!("cannot encode transcript event {} as JSON: {e}", event.seq)))
}

pub(crate) fn decode_event(id: &ConversationId, seq: f64, bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(id, 0, format!("invalid transcript event {seq}: {e}")))
}

/// Encodes the pub/sub message for committed events:
/// `{"instance": "<instance id>", "events": [<event JSON>, ...]}`.
pub(crate) fn encode_published(instance_id: &str, encoded: &[(u64, String)]) -> String {
    let instance = serde_json::Value::from(instance_id).to_string();
    let events: Vec<&str> = encoded.iter().map(|(_, json)| json.as_str()).collect();
    format!(r#"{{"instance":{instance},"events":[{}]}}"#, events.join(","))
}

/// A decoded pub/sub message.
#[derive(Debug, Deserialize)]
pub(crate) struct Published {
    pub instance: String,
    pub events: Vec<Event>,
}

fn corrupt(id: &ConversationId, version: u64, reason: String) -> StoreError {
    StoreError::Corrupt { conversation_id: id.clone(), version, reason }
}

#[cfg(test)]
mod tests {
    use bot_core::{EventKind, Reply};

    use super::*;

    #[test]
    fn published_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let event = Event { conversation_id: "web:1".into(), seq: 3, at: 5, kind: EventKind::Reply(Reply::bot("你好 \"quoted\"")) };
        let encoded = encode_events(std::slice::from_ref(&event))?;
        let message = encode_published("host-1-\"x\"", &encoded);

        let decoded: Published = serde_json::from_str(&message)?;
        assert_eq!(decoded.instance, "host-1-\"x\"", "instance");
        assert_eq!(decoded.events, vec![event], "events");
        Ok(())
    }

    #[test]
    fn decode_session_unreadable_version() {
        let decoded = decode_session(&"web:1".into(), Some("x".to_owned()), Some(b"{}".to_vec()));
        assert!(matches!(decoded, Err(StoreError::Corrupt { version: 0, .. })), "decoded {decoded:?}");
    }
}
