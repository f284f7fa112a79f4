//! The record format in Redis: sessions written by older builds, and records
//! that cannot be read.

use bot_core::session::{ProcessedMessage, SESSION_SCHEMA_VERSION};
use bot_core::{Channel, ConversationId, DialogState, HandoffReason, HandoffState, Lang, Session, SessionStore, StoreError};
use lepton_redis::RedisStore;
use redis::AsyncCommands;

use crate::common::{reply_event, session, TTL};
use crate::server::TestRedis;

const FIXTURE_V1: &str = include_str!("../../../bot-core/tests/fixtures/session-v1.json");

/// The session of the version-1 fixture, in the current shape.
fn fixture_session() -> Session {
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
    session.remember(ProcessedMessage { client_message_id: "m-6".into(), first_seq: 12, last_seq: 13 });
    session.updated_at = 1_767_225_660_000;
    session
}

/// Writes a session hash as the store lays it out.
async fn write_record(redis: &TestRedis, id: &str, version: &str, session: &str) -> anyhow::Result<()> {
    let key = format!("{}:{{{id}}}:session", redis.prefix());
    let _: () = redis.raw().await?.hset_multiple(&key, &[("version", version), ("session", session)]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_session_loads_migrated() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    write_record(&redis, "web:5b21e0", "7", FIXTURE_V1).await?;
    let store = RedisStore::connect(redis.config("schema")).await?;

    let loaded = store.load(&ConversationId::new("web:5b21e0")).await?;
    let loaded = loaded.ok_or_else(|| anyhow::anyhow!("the fixture session did not load"))?;
    assert_eq!(loaded.version, 7, "store version");
    assert_eq!(loaded.session, fixture_session(), "migrated session");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_record_has_documented_layout() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("layout")).await?;
    store.save(&session("web:layout"), 0, TTL).await?;

    let key = format!("{}:{{web:layout}}:session", redis.prefix());
    let fields: std::collections::HashMap<String, String> = redis.raw().await?.hgetall(&key).await?;
    let session: serde_json::Value = serde_json::from_str(fields.get("session").map_or("null", String::as_str))?;
    assert_eq!(fields.get("version").map(String::as_str), Some("1"), "version field");
    assert_eq!(session["schema_version"], SESSION_SCHEMA_VERSION, "schema version in the session field");
    assert!(fields.get("commit").is_some_and(|token| token.starts_with("layout/")), "commit field {:?}", fields.get("commit"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_schema_is_corrupt_at_stored_version() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let mut newer = serde_json::to_value(session("web:newer"))?;
    newer["schema_version"] = 99.into();
    write_record(&redis, "web:newer", "5", &newer.to_string()).await?;
    let store = RedisStore::connect(redis.config("corrupt")).await?;
    let id = ConversationId::new("web:newer");

    let reason = match store.load(&id).await {
        Err(StoreError::Corrupt { version: 5, reason, .. }) => reason,
        other => anyhow::bail!("load returned {other:?}, expected Corrupt at version 5"),
    };
    assert!(reason.contains("schema version 99"), "reason: {reason}");

    let at_zero = store.save(&session(id.as_str()), 0, TTL).await;
    assert!(matches!(at_zero, Err(StoreError::Conflict { actual: 5, .. })), "save at 0 returned {at_zero:?}");
    let replaced = store.save(&session(id.as_str()), 5, TTL).await?;
    assert_eq!(replaced, 6, "version after replacing the corrupt session");
    assert_eq!(store.load(&id).await?.map(|v| v.session), Some(session(id.as_str())), "session after replacing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_hash_key_is_corrupt_at_zero() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let key = format!("{}:{{web:string}}:session", redis.prefix());
    let _: () = redis.raw().await?.set(&key, "{not a hash").await?;
    let store = RedisStore::connect(redis.config("string")).await?;
    let id = ConversationId::new("web:string");

    let loaded = store.load(&id).await;
    assert!(matches!(loaded, Err(StoreError::Corrupt { version: 0, .. })), "load returned {loaded:?}");

    let version = store.save(&session(id.as_str()), 0, TTL).await?;
    assert_eq!(store.load(&id).await?.map(|v| v.version), Some(version), "version after replacing the key");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_version_is_corrupt_at_zero() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let json = serde_json::to_string(&session("web:bad-version"))?;
    write_record(&redis, "web:bad-version", "seven", &json).await?;
    let store = RedisStore::connect(redis.config("bad-version")).await?;
    let id = ConversationId::new("web:bad-version");

    let loaded = store.load(&id).await;
    assert!(matches!(loaded, Err(StoreError::Corrupt { version: 0, .. })), "load returned {loaded:?}");
    let saved = store.save(&session(id.as_str()), 0, TTL).await;
    assert!(matches!(saved, Ok(1)), "save at 0 returned {saved:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braced_id_round_trip() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("braces")).await?;
    let braced = session("web:{a}");
    let digest_twin = session("web:a");

    let braced_version = store.save(&braced, 0, TTL).await?;
    store.save(&digest_twin, 0, TTL).await?;

    let loaded = store.load(&braced.conversation_id).await?.map(|v| (v.version, v.session));
    assert_eq!(loaded, Some((braced_version, braced)), "session with braces in its id");
    let keys: Vec<String> = redis.raw().await?.keys(format!("{}:digest:*", redis.prefix())).await?;
    assert_eq!(keys.len(), 1, "digest keys {keys:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_event_is_skipped() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("bad-event")).await?;
    let id = ConversationId::new("web:bad-event");
    store.append_events(&id, &[reply_event(id.as_str(), 1), reply_event(id.as_str(), 3)], TTL).await?;
    let key = format!("{}:{{web:bad-event}}:transcript", redis.prefix());
    redis::cmd("ZADD").arg(&key).arg(2).arg("garbage event").query_async::<()>(&mut redis.raw().await?).await?;

    let events = store.events(&id, 0, 10).await?;

    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 3], "readable events around the unreadable one");
    Ok(())
}
