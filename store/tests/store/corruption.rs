use std::time::Duration;

use bot_core::{ConversationId, SessionStore, StoreError};
use lepton_store::{EmbeddedStore, EmbeddedStoreError, FORMAT_VERSION};
use redb::{Database, TableDefinition};

use crate::common::{session, write_raw_event, write_raw_session, TempFolder};

const TTL: Duration = Duration::from_secs(600);
const FAR_FUTURE: u64 = 4_102_444_800_000;

fn record(version: u64, session: serde_json::Value) -> anyhow::Result<Vec<u8>> {
    let record = serde_json::json!({ "version": version, "expires_at": FAR_FUTURE, "session": session });
    Ok(serde_json::to_vec(&record)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_record_is_corrupt_at_version_zero() -> anyhow::Result<()> {
    let folder = TempFolder::new("garbage-record")?;
    let path = folder.store_path();
    drop(EmbeddedStore::open(&path)?);
    write_raw_session(&path, "web:garbage", b"{not json")?;
    let store = EmbeddedStore::open(&path)?;
    let id = ConversationId::new("web:garbage");

    let loaded = store.load(&id).await;
    assert!(matches!(loaded, Err(StoreError::Corrupt { version: 0, .. })), "load returned {loaded:?}");

    let fresh = session(id.as_str());
    let version = store.save(&fresh, 0, TTL).await?;
    let reloaded = store.load(&id).await?.map(|s| (s.version, s.session));
    assert_eq!(reloaded, Some((version, fresh)), "session after replacing the unreadable record");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_schema_version_is_corrupt_at_stored_version() -> anyhow::Result<()> {
    let folder = TempFolder::new("schema-99")?;
    let path = folder.store_path();
    drop(EmbeddedStore::open(&path)?);
    let mut newer = serde_json::to_value(session("web:newer"))?;
    newer["schema_version"] = 99.into();
    write_raw_session(&path, "web:newer", &record(5, newer)?)?;
    let store = EmbeddedStore::open(&path)?;
    let id = ConversationId::new("web:newer");

    let loaded = store.load(&id).await;
    let reason = match loaded {
        Err(StoreError::Corrupt { version: 5, reason, .. }) => reason,
        other => anyhow::bail!("load returned {other:?}, expected Corrupt at version 5"),
    };
    assert!(reason.contains("schema version 99"), "reason: {reason}");

    let at_zero = store.save(&session(id.as_str()), 0, TTL).await;
    assert!(matches!(at_zero, Err(StoreError::Conflict { actual: 5, .. })), "save at 0 returned {at_zero:?}");
    let replaced = store.save(&session(id.as_str()), 5, TTL).await?;
    assert_eq!(replaced, 6, "version after replacing the corrupt session");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_missing_fields_is_corrupt() -> anyhow::Result<()> {
    let folder = TempFolder::new("missing-fields")?;
    let path = folder.store_path();
    drop(EmbeddedStore::open(&path)?);
    let partial = serde_json::json!({ "schema_version": 1, "conversation_id": "web:partial" });
    write_raw_session(&path, "web:partial", &record(3, partial)?)?;
    let store = EmbeddedStore::open(&path)?;

    let loaded = store.load(&ConversationId::new("web:partial")).await;
    assert!(matches!(loaded, Err(StoreError::Corrupt { version: 3, .. })), "load returned {loaded:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_event_is_corrupt() -> anyhow::Result<()> {
    let folder = TempFolder::new("garbage-event")?;
    let path = folder.store_path();
    let id = ConversationId::new("web:events");
    {
        let store = EmbeddedStore::open(&path)?;
        store.append_events(&id, &[], TTL).await?;
    }
    write_raw_event(&path, id.as_str(), 1, b"\xff\xfe")?;
    let store = EmbeddedStore::open(&path)?;

    let events = store.events(&id, 0, 10).await;
    assert!(matches!(events, Err(StoreError::Corrupt { .. })), "events returned {events:?}");
    Ok(())
}

#[test]
fn non_database_file_is_corrupt_and_kept() -> anyhow::Result<()> {
    let folder = TempFolder::new("not-redb")?;
    let path = folder.store_path();
    let contents = b"this is a text file, not a session store\n".repeat(100);
    std::fs::create_dir_all(path.parent().ok_or_else(|| anyhow::anyhow!("no parent"))?)?;
    std::fs::write(&path, &contents)?;

    let opened = EmbeddedStore::open(&path);
    assert!(matches!(opened, Err(EmbeddedStoreError::Corrupt { .. })), "open returned {opened:?}");
    assert_eq!(std::fs::read(&path)?, contents, "file contents after the failed open");
    Ok(())
}

#[test]
fn locked_file_names_path_and_other_lepton() -> anyhow::Result<()> {
    let folder = TempFolder::new("locked")?;
    let path = folder.store_path();
    let _holder = EmbeddedStore::open(&path)?;

    // redb locks the file with flock, which is held per open file, so a second
    // open in this process is refused exactly as one from another process is.
    let second = EmbeddedStore::open(&path);
    let error = match second {
        Err(error @ EmbeddedStoreError::Locked { .. }) => error,
        other => anyhow::bail!("second open returned {other:?}, expected Locked"),
    };
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "message does not name the path: {message}");
    assert!(message.contains("another Lepton may be running"), "message: {message}");
    Ok(())
}

#[test]
fn newer_format_is_rejected() -> anyhow::Result<()> {
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let folder = TempFolder::new("format")?;
    let path = folder.store_path();
    drop(EmbeddedStore::open(&path)?);
    {
        let db = Database::create(&path)?;
        let txn = db.begin_write()?;
        txn.open_table(META)?.insert("format_version", FORMAT_VERSION + 1)?;
        txn.commit()?;
    }

    let opened = EmbeddedStore::open(&path);
    let found = match opened {
        Err(EmbeddedStoreError::UnsupportedFormat { found, .. }) => found,
        other => anyhow::bail!("open returned {other:?}, expected UnsupportedFormat"),
    };
    assert_eq!(found, FORMAT_VERSION + 1, "format version in the error");
    Ok(())
}
