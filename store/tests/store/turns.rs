//! `commit_turn`: one transaction for the session, its events and the waiting queue.

use std::sync::Arc;
use std::time::Duration;

use bot_core::event::{Event, EventKind};
use bot_core::message::{now_millis, Reply};
use bot_core::session::DialogState;
use bot_core::store::contract::run_all;
use bot_core::{ConversationId, Session, SessionStore, StoreError, TurnCommit};
use lepton_store::{EmbeddedStore, SyncPolicy};
use tokio::task::JoinSet;

use crate::common::{session, TempFolder};

const TTL: Duration = Duration::from_secs(600);

fn reply_event(id: &str, seq: u64, text: &str) -> Event {
    Event { conversation_id: ConversationId::new(id), seq, at: now_millis(), kind: EventKind::Reply(Reply::bot(text.to_owned())) }
}

fn turn<'a>(session: &'a Session, expected: u64, events: &'a [Event], waiting: Option<Option<u64>>) -> TurnCommit<'a> {
    TurnCommit { session, expected, events, waiting, ttl: TTL }
}

/// Builds a session in the middle of a form, with `turns` turns taken.
fn form_session(id: &str, turns: u64) -> Session {
    let mut session = session(id);
    session.dialog = DialogState::AwaitingSlot { flow: "change_address".into(), step: 1, slot: Some("address".into()), attempts: 0 };
    session.slots.insert("order_number".into(), "123456".to_owned());
    session.turns = turns;
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_turn_stores_session_events_and_queue() -> anyhow::Result<()> {
    let folder = TempFolder::new("turn")?;
    let store = EmbeddedStore::open(&folder.store_path())?;
    let id = ConversationId::new("web:turn");
    let saved = form_session(id.as_str(), 1);
    let events = vec![reply_event(id.as_str(), 1, "hello"), reply_event(id.as_str(), 2, "which order?")];

    let version = store.commit_turn(turn(&saved, 0, &events, Some(Some(1_000)))).await?;

    let loaded = store.load(&id).await?.map(|stored| (stored.version, stored.session));
    assert_eq!(loaded, Some((version, saved)), "stored session");
    assert_eq!(store.events(&id, 0, 10).await?, events, "stored events");
    assert_eq!(store.waiting().await?, vec![(id.clone(), 1_000)], "waiting queue");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_turn_conflict_stores_nothing() -> anyhow::Result<()> {
    let folder = TempFolder::new("turn-conflict")?;
    let store = EmbeddedStore::open(&folder.store_path())?;
    let id = ConversationId::new("web:turn-conflict");
    let first = form_session(id.as_str(), 1);
    let first_events = vec![reply_event(id.as_str(), 1, "first")];
    let version = store.commit_turn(turn(&first, 0, &first_events, None)).await?;

    let stale = form_session(id.as_str(), 2);
    let stale_events = vec![reply_event(id.as_str(), 1, "overwritten"), reply_event(id.as_str(), 2, "stale")];
    let result = store.commit_turn(turn(&stale, 0, &stale_events, Some(Some(2_000)))).await;

    assert!(matches!(result, Err(StoreError::Conflict { actual, .. }) if actual == version), "stale turn returned {result:?}");
    let loaded = store.load(&id).await?.map(|stored| (stored.version, stored.session));
    assert_eq!(loaded, Some((version, first)), "session after the conflict");
    assert_eq!(store.events(&id, 0, 10).await?, first_events, "events after the conflict");
    assert_eq!(store.waiting().await?, Vec::new(), "waiting queue after the conflict");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_turn_changes_waiting_queue() -> anyhow::Result<()> {
    let folder = TempFolder::new("turn-queue")?;
    let store = EmbeddedStore::open(&folder.store_path())?;
    let waiting = ConversationId::new("web:waiting");
    let other = ConversationId::new("web:other");
    store.set_waiting(&other, Some(500)).await?;

    let version = store.commit_turn(turn(&session(waiting.as_str()), 0, &[], Some(Some(1_000)))).await?;
    let version = store.commit_turn(turn(&session(waiting.as_str()), version, &[], None)).await?;
    assert_eq!(store.waiting().await?, vec![(other.clone(), 500), (waiting.clone(), 1_000)], "queue after a turn without change");

    store.commit_turn(turn(&session(waiting.as_str()), version, &[], Some(None))).await?;
    assert_eq!(store.waiting().await?, vec![(other, 500)], "queue after the removing turn");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_turn_without_events_creates_no_transcript() -> anyhow::Result<()> {
    let folder = TempFolder::new("turn-no-events")?;
    let store = EmbeddedStore::open(&folder.store_path())?;
    let id = ConversationId::new("web:no-events");

    let version = store.commit_turn(turn(&session(id.as_str()), 0, &[], None)).await?;

    assert_eq!(version, 1, "version of the first turn");
    assert_eq!(store.events(&id, 0, 10).await?, Vec::new(), "events of a turn without events");
    Ok(())
}

/// Sixteen turns race on one conversation from the same version: one wins, and
/// the transcript holds only the winner's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_turns_store_only_the_winners_events() -> anyhow::Result<()> {
    const WRITERS: usize = 16;
    let folder = TempFolder::new("turn-race")?;
    let store = Arc::new(EmbeddedStore::open(&folder.store_path())?);
    let id = "web:turn-race";

    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let events = vec![reply_event(id, 1, &format!("writer {writer}")), reply_event(id, 2, &format!("writer {writer} again"))];
            let result = store.commit_turn(turn(&session(id), 0, &events, Some(Some(writer as u64)))).await;
            (events, result)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            (events, Ok(_)) => winners.push(events),
            (_, Err(StoreError::Conflict { .. })) => {}
            (_, Err(other)) => anyhow::bail!("a writer failed: {other}"),
        }
    }

    assert_eq!(winners.len(), 1, "number of winning turns");
    let stored = store.events(&ConversationId::new(id), 0, 10).await?;
    assert_eq!(stored, winners[0], "stored events");
    Ok(())
}

/// Turns of many conversations at once share transactions; each keeps its own
/// version sequence and transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conversations_store_every_turn() -> anyhow::Result<()> {
    const CONVERSATIONS: usize = 16;
    const TURNS: u64 = 10;
    let folder = TempFolder::new("turn-parallel")?;
    let store = Arc::new(EmbeddedStore::open(&folder.store_path())?);

    let mut tasks = JoinSet::new();
    for n in 0..CONVERSATIONS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let id = format!("web:parallel-{n}");
            let mut version = 0;
            let mut events = Vec::new();
            for t in 1..=TURNS {
                let new = [reply_event(&id, t, &format!("turn {t}"))];
                version = store.commit_turn(turn(&form_session(&id, t), version, &new, None)).await?;
                events.extend(new);
            }
            anyhow::Ok((ConversationId::new(id), version, events))
        });
    }

    while let Some(joined) = tasks.join_next().await {
        let (id, version, events) = joined??;
        assert_eq!(version, TURNS, "final version of {id}");
        assert_eq!(store.events(&id, 0, 100).await?, events, "transcript of {id}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_turn_flush_reopen_keeps_everything() -> anyhow::Result<()> {
    let folder = TempFolder::new("turn-reopen")?;
    let path = folder.store_path();
    let id = ConversationId::new("web:turn-reopen");
    let mut events = Vec::new();
    let mut version = 0;
    let mut last = session(id.as_str());
    {
        // An interval far longer than the test, so only `flush` and drop write to disk.
        let store = EmbeddedStore::open_with(&path, SyncPolicy::Periodic(Duration::from_secs(3600)))?;
        for n in 1..=5 {
            last = form_session(id.as_str(), n);
            let new = [reply_event(id.as_str(), 2 * n - 1, "question"), reply_event(id.as_str(), 2 * n, "answer")];
            version = store.commit_turn(turn(&last, version, &new, Some(Some(n)))).await?;
            events.extend(new);
        }
        store.flush().await?;
    }
    let store = EmbeddedStore::open(&path)?;

    let loaded = store.load(&id).await?.map(|stored| (stored.version, stored.session));
    assert_eq!(loaded, Some((version, last)), "session after reopening");
    assert_eq!(store.events(&id, 0, 100).await?, events, "events after reopening");
    assert_eq!(store.waiting().await?, vec![(id, 5)], "waiting queue after reopening");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_policy_passes_contract() -> anyhow::Result<()> {
    let folder = TempFolder::new("contract-every-write")?;
    let store = EmbeddedStore::open_with(&folder.store_path(), SyncPolicy::EveryWrite)?;
    run_all(&store).await?;
    Ok(())
}
