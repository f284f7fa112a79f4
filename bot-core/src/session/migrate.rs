//! Decoding of stored sessions of every schema version this build has written.
//!
//! A store keeps a session as the JSON that serde writes for [`Session`], with
//! its `schema_version`. [`decode_session`] upgrades an older version one step
//! at a time on the JSON value and then decodes the current shape, so a store
//! never needs to know what changed between versions.
//!
//! Versions:
//! - 1: the waiting-reminder time is a top-level `waiting_reminded_at`, present
//!   only when set.
//! - 2: it moved into the waiting state, `handoff.reminded_at`, because it
//!   means nothing in any other state.
//! - 3: a form's state names the slot it asks for, `dialog.slot`, so that the
//!   step can be found again after an edit of the flow moved it. Upgraded
//!   sessions get `null`, and the engine then trusts the step index.
//!
//! Each version has a committed fixture in `bot-core/tests/fixtures/`, loaded
//! by `tests/session_schema.rs`.

use serde_json::{Map, Value};

use super::{Session, SESSION_SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum SessionDecodeError {
    #[error("the stored session is not a JSON object")]
    NotAnObject,
    #[error("the stored session has no numeric schema_version")]
    MissingSchemaVersion,
    #[error("unknown session schema version {found}: this build reads versions 1 to {SESSION_SCHEMA_VERSION}; run a newer build or reset the session")]
    UnknownSchemaVersion { found: u64 },
    #[error("invalid session with schema version {schema_version}: {source}")]
    Invalid { schema_version: u64, source: serde_json::Error },
}

/// Decodes a stored session of any known schema version into the current shape.
pub fn decode_session(value: Value) -> Result<Session, SessionDecodeError> {
    let Value::Object(mut object) = value else {
        return Err(SessionDecodeError::NotAnObject);
    };
    let found = object.get("schema_version").and_then(Value::as_u64).ok_or(SessionDecodeError::MissingSchemaVersion)?;
    if found == 0 || found > u64::from(SESSION_SCHEMA_VERSION) {
        return Err(SessionDecodeError::UnknownSchemaVersion { found });
    }

    let mut version = found;
    while version < u64::from(SESSION_SCHEMA_VERSION) {
        let upgrade = match version {
            1 => upgrade_1_to_2,
            2 => upgrade_2_to_3,
            _ => unreachable!("every version below the current one has an upgrade"),
        };
        upgrade(&mut object).map_err(|source| SessionDecodeError::Invalid { schema_version: version, source })?;
        version += 1;
        object.insert("schema_version".to_owned(), Value::from(version));
    }

    serde_json::from_value(Value::Object(object)).map_err(|source| SessionDecodeError::Invalid { schema_version: found, source })
}

/// Moves `waiting_reminded_at` into the waiting state as `reminded_at`.
fn upgrade_1_to_2(session: &mut Map<String, Value>) -> Result<(), serde_json::Error> {
    let reminded_at = session.remove("waiting_reminded_at").unwrap_or(Value::Null);
    let Some(Value::Object(handoff)) = session.get_mut("handoff") else {
        return Err(serde::de::Error::missing_field("handoff"));
    };
    if handoff.get("state").and_then(Value::as_str) == Some("waiting_for_agent") {
        handoff.insert("reminded_at".to_owned(), reminded_at);
    }
    Ok(())
}

/// Adds `slot: null` to a form's state.
fn upgrade_2_to_3(session: &mut Map<String, Value>) -> Result<(), serde_json::Error> {
    let Some(Value::Object(dialog)) = session.get_mut("dialog") else {
        return Err(serde::de::Error::missing_field("dialog"));
    };
    if dialog.get("state").and_then(Value::as_str) == Some("awaiting_slot") {
        dialog.entry("slot").or_insert(Value::Null);
    }
    Ok(())
}
