use std::sync::Arc;
use std::time::Duration;

use bot_core::{ConversationId, SessionStore, SlotName, StoreError};
use lepton_store::EmbeddedStore;
use tokio::task::JoinSet;

use crate::common::{session, TempFolder};

const TTL: Duration = Duration::from_secs(600);
const WRITERS: usize = 16;

/// Starts `WRITERS` tasks that each save the conversation at `expected`, marking
/// the session with their number; returns the winners' numbers and new versions.
async fn race(store: &Arc<EmbeddedStore>, id: &str, expected: u64) -> anyhow::Result<Vec<(usize, u64)>> {
    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(store);
        let mut candidate = session(id);
        candidate.slots.insert("writer".into(), writer.to_string());
        tasks.spawn(async move { (writer, store.save(&candidate, expected, TTL).await) });
    }

    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            (writer, Ok(version)) => winners.push((writer, version)),
            (_, Err(StoreError::Conflict { .. })) => {}
            (writer, Err(other)) => anyhow::bail!("writer {writer} failed: {other}"),
        }
    }
    Ok(winners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_have_one_winner_per_version() -> anyhow::Result<()> {
    let folder = TempFolder::new("cas")?;
    let store = Arc::new(EmbeddedStore::open(&folder.store_path())?);
    let id = ConversationId::new("web:contended");

    let mut expected = 0;
    for round in 0..8 {
        let winners = race(&store, id.as_str(), expected).await?;
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (writer, version) = winners[0];
        assert_eq!(version, expected + 1, "round {round}: new version");

        let stored = store.load(&id).await?.ok_or_else(|| anyhow::anyhow!("round {round}: no session stored"))?;
        assert_eq!(stored.version, version, "round {round}: stored version");
        let marker = stored.session.slots.get(&SlotName::new("writer")).cloned();
        assert_eq!(marker, Some(writer.to_string()), "round {round}: stored writer");
        expected = version;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_conversations_all_succeed() -> anyhow::Result<()> {
    const CONVERSATIONS: usize = 24;
    const UPDATES: u64 = 5;
    let folder = TempFolder::new("parallel")?;
    let store = Arc::new(EmbeddedStore::open(&folder.store_path())?);

    let mut tasks = JoinSet::new();
    for n in 0..CONVERSATIONS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut current = session(&format!("web:parallel-{n}"));
            let mut version = 0;
            for turn in 1..=UPDATES {
                current.turns = turn;
                version = store.save(&current, version, TTL).await?;
            }
            anyhow::Ok((current, version))
        });
    }

    while let Some(joined) = tasks.join_next().await {
        let (expected, version) = joined??;
        assert_eq!(version, UPDATES, "final version of {}", expected.conversation_id);
        let stored = store.load(&expected.conversation_id).await?;
        assert_eq!(stored.map(|s| s.session), Some(expected.clone()), "stored session of {}", expected.conversation_id);
    }
    Ok(())
}
