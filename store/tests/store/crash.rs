//! What survives a crash. Each test runs its writes in a copy of this test
//! process that ends with `std::process::exit`, which skips every destructor:
//! neither the store nor redb gets to flush, as when the process is killed.
//! The test then reopens the file and checks what is on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bot_core::event::{Event, EventKind};
use bot_core::message::{now_millis, Reply};
use bot_core::session::DialogState;
use bot_core::{ConversationId, Session, SessionStore, TurnCommit};
use lepton_store::{EmbeddedStore, SyncPolicy};

use crate::common::{session, TempFolder};

/// Set in the child process to the path of the store file it writes.
const CHILD_STORE_ENV: &str = "LEPTON_STORE_CRASH_CHILD";
/// The exit status of a child that reached its crash.
const CRASH_STATUS: i32 = 86;
const TTL: Duration = Duration::from_secs(600);
const ID: &str = "web:crash";
/// A flush interval far longer than a test, so that only `flush` writes to disk.
const NEVER: Duration = Duration::from_secs(3600);

/// Returns the store path when this process is the child of a crash test.
fn child_store_path() -> Option<PathBuf> {
    std::env::var_os(CHILD_STORE_ENV).map(PathBuf::from)
}

/// Ends the child process without dropping `store`.
fn crash(store: EmbeddedStore) -> ! {
    std::mem::forget(store);
    std::process::exit(CRASH_STATUS)
}

/// Runs the test `name` of this binary in a child process that writes the store at `path`.
fn run_child(name: &str, path: &Path) -> anyhow::Result<()> {
    let output = Command::new(std::env::current_exe()?)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_STORE_ENV, path)
        .output()?;
    if output.status.code() != Some(CRASH_STATUS) {
        anyhow::bail!(
            "the child process of {name} ended with {} instead of crashing on purpose\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Builds the session after turn `n` of a form that requests an order number, then an address.
fn form_session(n: u64) -> Session {
    let mut session = session(ID);
    session.dialog = DialogState::AwaitingSlot { flow: "change_address".into(), step: 1, slot: Some("address".into()), attempts: 0 };
    session.slots.insert("order_number".into(), "123456".to_owned());
    session.turns = n;
    session
}

fn turn_events(n: u64) -> Vec<Event> {
    let id = ConversationId::new(ID);
    let event = |seq, text: &str| Event { conversation_id: id.clone(), seq, at: now_millis(), kind: EventKind::Reply(Reply::bot(text.to_owned())) };
    vec![event(2 * n - 1, "customer message"), event(2 * n, "bot reply")]
}

/// Stores `count` turns of the form from turn `first`, each with two events and a waiting-queue entry.
async fn write_turns(store: &EmbeddedStore, first: u64, count: u64) -> anyhow::Result<()> {
    for n in first..first + count {
        let session = form_session(n);
        let events = turn_events(n);
        let turn = TurnCommit { session: &session, expected: n - 1, events: &events, waiting: Some(Some(n)), ttl: TTL };
        store.commit_turn(turn).await?;
    }
    Ok(())
}

/// Checks that the store at `path` contains exactly turns `1..=turns`.
async fn assert_turns_stored(path: &Path, turns: u64) -> anyhow::Result<()> {
    let store = EmbeddedStore::open(path)?;
    let id = ConversationId::new(ID);

    let loaded = store.load(&id).await?.map(|stored| (stored.version, stored.session));
    assert_eq!(loaded, Some((turns, form_session(turns))), "session after the crash");
    let events = store.events(&id, 0, 100).await?;
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (1..=2 * turns).collect::<Vec<_>>(), "event numbers after the crash");
    assert_eq!(store.waiting().await?, vec![(id, turns)], "waiting queue after the crash");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_flushed_turns_and_loses_later_ones() -> anyhow::Result<()> {
    if let Some(path) = child_store_path() {
        let store = EmbeddedStore::open_with(&path, SyncPolicy::Periodic(NEVER))?;
        write_turns(&store, 1, 3).await?;
        store.flush().await?;
        write_turns(&store, 4, 2).await?;
        crash(store);
    }

    let folder = TempFolder::new("crash-flushed")?;
    run_child("crash::crash_keeps_flushed_turns_and_loses_later_ones", &folder.store_path())?;
    // Turns 4 and 5 were committed with `Durability::None` and never flushed:
    // the documented loss of a crash under `SyncPolicy::Periodic`.
    assert_turns_stored(&folder.store_path(), 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_flush_interval_keeps_every_turn() -> anyhow::Result<()> {
    if let Some(path) = child_store_path() {
        let store = EmbeddedStore::open_with(&path, SyncPolicy::Periodic(Duration::from_millis(20)))?;
        write_turns(&store, 1, 4).await?;
        // Far longer than the interval, so that even a busy machine runs the flusher.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        crash(store);
    }

    let folder = TempFolder::new("crash-interval")?;
    run_child("crash::crash_after_flush_interval_keeps_every_turn", &folder.store_path())?;
    assert_turns_stored(&folder.store_path(), 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_every_write_keeps_every_turn() -> anyhow::Result<()> {
    if let Some(path) = child_store_path() {
        let store = EmbeddedStore::open_with(&path, SyncPolicy::EveryWrite)?;
        write_turns(&store, 1, 4).await?;
        crash(store);
    }

    let folder = TempFolder::new("crash-every-write")?;
    run_child("crash::crash_under_every_write_keeps_every_turn", &folder.store_path())?;
    assert_turns_stored(&folder.store_path(), 4).await
}
