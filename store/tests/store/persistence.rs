use std::path::Path;
use std::time::Duration;

use bot_core::event::{Event, EventKind};
use bot_core::message::{now_millis, Reply};
use bot_core::session::DialogState;
use bot_core::{ConversationId, MemoryStore, SessionStore, StoreError};
use lepton_store::{EmbeddedStore, SweepStats, SWEEP_EVERY_WRITES};
use redb::{Database, ReadableTableMetadata};

use crate::common::{session, TempFolder, EVENTS, SESSIONS};

const TTL: Duration = Duration::from_secs(600);
const SHORT: Duration = Duration::from_millis(50);

fn reply_event(id: &str, seq: u64) -> Event {
    Event { conversation_id: ConversationId::new(id), seq, at: now_millis(), kind: EventKind::Reply(Reply::bot(format!("reply {seq}"))) }
}

/// Counts the rows of the session and transcript event tables, with the store closed.
fn count_rows(path: &Path) -> anyhow::Result<(u64, u64)> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    let sessions = txn.open_table(SESSIONS)?.len()?;
    let events = txn.open_table(EVENTS)?.len()?;
    Ok((sessions, events))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_form_in_progress() -> anyhow::Result<()> {
    let folder = TempFolder::new("reopen")?;
    let path = folder.store_path();
    let id = ConversationId::new("web:reopen");
    let mut saved = session(id.as_str());
    saved.dialog = DialogState::AwaitingSlot { flow: "change_address".into(), step: 1, slot: Some("address".into()), attempts: 0 };
    saved.slots.insert("order_number".into(), "123456".to_owned());
    let events: Vec<Event> = (1..=3).map(|seq| reply_event(id.as_str(), seq)).collect();

    let version = {
        let store = EmbeddedStore::open(&path)?;
        let version = store.save(&saved, 0, TTL).await?;
        store.append_events(&id, &events, TTL).await?;
        store.set_waiting(&id, Some(1_000)).await?;
        version
    };
    let store = EmbeddedStore::open(&path)?;

    let loaded = store.load(&id).await?.ok_or_else(|| anyhow::anyhow!("no session after reopening"))?;
    assert_eq!(loaded.version, version, "version after reopening");
    assert_eq!(loaded.session, saved, "session after reopening");
    assert_eq!(store.events(&id, 0, 10).await?, events, "transcript after reopening");
    assert_eq!(store.waiting().await?, vec![(id.clone(), 1_000)], "waiting queue after reopening");

    let stale = store.save(&saved, version - 1, TTL).await;
    assert!(matches!(stale, Err(StoreError::Conflict { actual, .. }) if actual == version), "stale save returned {stale:?}");
    let next = store.save(&saved, version, TTL).await?;
    assert_eq!(next, version + 1, "version of the first save after reopening");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_only_expired_records() -> anyhow::Result<()> {
    let folder = TempFolder::new("sweep")?;
    let path = folder.store_path();
    {
        let store = EmbeddedStore::open(&path)?;
        for n in 0..3 {
            let id = format!("web:expiring-{n}");
            store.save(&session(&id), 0, SHORT).await?;
            let events: Vec<Event> = (1..=2).map(|seq| reply_event(&id, seq)).collect();
            store.append_events(&ConversationId::new(id.as_str()), &events, SHORT).await?;
        }
        store.save(&session("web:live"), 0, TTL).await?;
        store.append_events(&ConversationId::new("web:live"), &[reply_event("web:live", 1)], TTL).await?;
        tokio::time::sleep(Duration::from_millis(150)).await;

        let stats = store.sweep_expired().await?;
        assert_eq!(stats, SweepStats { sessions: 3, transcripts: 3, events: 6 }, "first sweep");
        let again = store.sweep_expired().await?;
        assert_eq!(again, SweepStats::default(), "second sweep");
        let live = store.load(&ConversationId::new("web:live")).await?;
        assert!(live.is_some(), "the live session was swept");
    }

    let (sessions, events) = count_rows(&path)?;
    assert_eq!(sessions, 1, "session records left in the file");
    assert_eq!(events, 1, "transcript events left in the file");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sweeps_expired_records() -> anyhow::Result<()> {
    let folder = TempFolder::new("open-sweep")?;
    let path = folder.store_path();
    {
        let store = EmbeddedStore::open(&path)?;
        store.save(&session("web:expiring"), 0, SHORT).await?;
        store.append_events(&ConversationId::new("web:expiring"), &[reply_event("web:expiring", 1)], SHORT).await?;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;

    drop(EmbeddedStore::open(&path)?);

    let (sessions, events) = count_rows(&path)?;
    assert_eq!(sessions, 0, "session records left after opening");
    assert_eq!(events, 0, "transcript events left after opening");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_trigger_sweep() -> anyhow::Result<()> {
    let folder = TempFolder::new("write-sweep")?;
    let path = folder.store_path();
    {
        let store = EmbeddedStore::open(&path)?;
        store.save(&session("web:expiring"), 0, SHORT).await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let waiting = ConversationId::new("web:waiting");
        for n in 1..SWEEP_EVERY_WRITES {
            store.set_waiting(&waiting, Some(n)).await?;
        }
    }

    let (sessions, _) = count_rows(&path)?;
    assert_eq!(sessions, 0, "session records left after {SWEEP_EVERY_WRITES} writes");
    Ok(())
}

/// A new session for a conversation whose session and transcript expired must
/// not bring the old transcript back.
async fn check_expired_transcript_stays_gone(store: &dyn SessionStore) -> anyhow::Result<()> {
    let id = ConversationId::new("web:returning");
    store.save(&session(id.as_str()), 0, SHORT).await?;
    store.append_events(&id, &[reply_event(id.as_str(), 1)], SHORT).await?;
    tokio::time::sleep(Duration::from_millis(150)).await;

    store.save(&session(id.as_str()), 0, TTL).await?;
    let events = store.events(&id, 0, 10).await?;
    assert_eq!(events, Vec::new(), "events of the expired transcript");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_save_keeps_expired_transcript_gone() -> anyhow::Result<()> {
    let folder = TempFolder::new("expired-transcript")?;
    let store = EmbeddedStore::open(&folder.store_path())?;
    check_expired_transcript_stays_gone(&store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_save_keeps_expired_transcript_gone() -> anyhow::Result<()> {
    check_expired_transcript_stays_gone(&MemoryStore::new()).await
}
