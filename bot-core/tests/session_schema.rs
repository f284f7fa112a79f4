//! Stored sessions of every schema version decode into the current shape.

use bot_core::session::{decode_session, SessionDecodeError, SESSION_SCHEMA_VERSION};
use bot_core::{Channel, ConversationId, DialogState, HandoffReason, HandoffState, Lang, Session};

const FIXTURE_V1: &str = include_str!("fixtures/session-v1.json");
const FIXTURE_V2: &str = include_str!("fixtures/session-v2.json");
const FIXTURE_V3: &str = include_str!("fixtures/session-v3.json");

/// The session every fixture contains, in the current shape.
fn expected_session() -> Session {
    let mut session = Session::new(ConversationId::new("web:5b21e0"), Channel::new("web"), Lang::new("zh"), 1_767_225_300_000);
    session.slots.insert("order_number".into(), "100003".to_owned());
    session.dialog = DialogState::Idle;
    session.handoff = HandoffState::WaitingForAgent {
        since: 1_767_225_600_000,
        reason: HandoffReason::RepeatedFallback,
        reminded_at: Some(1_767_225_660_000),
        no_agent_offered_at: None,
    };
    session.turns = 6;
    session.next_seq = 14;
    session.remember(bot_core::session::ProcessedMessage { client_message_id: "m-6".into(), first_seq: 12, last_seq: 13 });
    session.updated_at = 1_767_225_660_000;
    session
}

#[test]
fn version_1_fixture_migrates() -> anyhow::Result<()> {
    let session = decode_session(serde_json::from_str(FIXTURE_V1)?)?;

    assert_eq!(session, expected_session());
    Ok(())
}

#[test]
fn version_2_fixture_decodes() -> anyhow::Result<()> {
    let session = decode_session(serde_json::from_str(FIXTURE_V2)?)?;

    assert_eq!(session, expected_session());
    Ok(())
}

#[test]
fn version_3_fixture_decodes() -> anyhow::Result<()> {
    let session = decode_session(serde_json::from_str(FIXTURE_V3)?)?;

    assert_eq!(session, expected_session());
    Ok(())
}

#[test]
fn version_2_form_gets_unknown_slot() -> anyhow::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(FIXTURE_V2)?;
    value["dialog"] = serde_json::json!({ "state": "awaiting_slot", "flow": "order_status", "step": 1, "attempts": 0 });

    let session = decode_session(value)?;

    let expected = DialogState::AwaitingSlot { flow: "order_status".into(), step: 1, slot: None, attempts: 0 };
    assert_eq!(session.dialog, expected);
    Ok(())
}

#[test]
fn current_version_writes_latest_fixture() -> anyhow::Result<()> {
    // A change to Session's JSON without a new schema version fails here.
    let written = serde_json::to_value(expected_session())?;
    let fixture: serde_json::Value = serde_json::from_str(FIXTURE_V3)?;

    assert_eq!(SESSION_SCHEMA_VERSION, 3, "add a fixture for the new schema version and compare with it here");
    assert_eq!(written, fixture);
    Ok(())
}

#[test]
fn version_1_not_waiting_drops_reminder() -> anyhow::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(FIXTURE_V1)?;
    value["handoff"] = serde_json::json!({ "state": "bot" });

    let session = decode_session(value)?;

    assert_eq!(session.handoff, HandoffState::Bot);
    Ok(())
}

#[test]
fn unknown_schema_version_rejected() -> anyhow::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(FIXTURE_V3)?;
    value["schema_version"] = serde_json::json!(99);

    let error = decode_session(value).expect_err("version 99 decoded");

    assert!(matches!(error, SessionDecodeError::UnknownSchemaVersion { found: 99 }), "{error}");
    Ok(())
}

#[test]
fn missing_schema_version_rejected() -> anyhow::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(FIXTURE_V2)?;
    value.as_object_mut().expect("fixture is an object").remove("schema_version");

    let error = decode_session(value).expect_err("a session without schema_version decoded");

    assert!(matches!(error, SessionDecodeError::MissingSchemaVersion), "{error}");
    Ok(())
}

#[test]
fn invalid_version_1_reports_version() -> anyhow::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(FIXTURE_V1)?;
    value["turns"] = serde_json::json!("six");

    let error = decode_session(value).expect_err("a session with text turns decoded");

    assert!(matches!(error, SessionDecodeError::Invalid { schema_version: 1, .. }), "{error}");
    Ok(())
}
