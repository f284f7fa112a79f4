use bot_core::{ConversationId, SessionStore, StoreError, TurnCommit};
use lepton_redis::{RedisConfig, RedisStore};

use crate::common::{reply_event, session, TTL};
use crate::server::TestRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_bound_drops_oldest() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(RedisConfig { max_events: 1000, ..redis.config("bound") }).await?;
    let id = ConversationId::new("web:long");
    for batch in 0..12 {
        let events: Vec<_> = (1..=100).map(|i| reply_event(id.as_str(), batch * 100 + i)).collect();
        store.append_events(&id, &events, TTL).await?;
    }

    let kept = store.events(&id, 0, 5000).await?;
    let seqs: Vec<u64> = kept.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 1000, "events kept");
    assert_eq!(seqs, (201..=1200).collect::<Vec<_>>(), "sequence numbers kept");
    assert_eq!(kept[0], reply_event(id.as_str(), 201), "oldest kept event");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_replaces_same_seq() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("same-seq")).await?;
    let id = ConversationId::new("web:same-seq");
    let mut second = reply_event(id.as_str(), 1);
    second.at += 1;

    store.append_events(&id, &[reply_event(id.as_str(), 1)], TTL).await?;
    store.append_events(&id, &[second.clone()], TTL).await?;

    assert_eq!(store.events(&id, 0, 10).await?, vec![second], "events after appending seq 1 twice");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_turn_stores_everything() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("commit")).await?;
    let session = session("web:commit");
    let id = session.conversation_id.clone();
    let events = vec![reply_event(id.as_str(), 1), reply_event(id.as_str(), 2)];

    let turn = TurnCommit { session: &session, expected: 0, events: &events, waiting: Some(Some(1_000)), ttl: TTL };
    let version = store.commit_turn(turn).await?;

    let loaded = store.load(&id).await?.map(|v| (v.version, v.session));
    assert_eq!(loaded, Some((version, session.clone())), "stored session");
    assert_eq!(store.events(&id, 0, 10).await?, events, "stored events");
    assert_eq!(store.waiting().await?, vec![(id.clone(), 1_000)], "waiting queue");

    let leave = TurnCommit { session: &session, expected: version, events: &[], waiting: Some(None), ttl: TTL };
    store.commit_turn(leave).await?;
    assert_eq!(store.waiting().await?, vec![], "waiting queue after leaving it");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_commit_stores_nothing() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("conflict")).await?;
    let session = session("web:conflict");
    let id = session.conversation_id.clone();
    let version = store.save(&session, 0, TTL).await?;

    let events = [reply_event(id.as_str(), 1)];
    let stale = TurnCommit { session: &session, expected: version + 7, events: &events, waiting: Some(Some(1_000)), ttl: TTL };
    let result = store.commit_turn(stale).await;

    assert!(matches!(result, Err(StoreError::Conflict { actual, .. }) if actual == version), "commit returned {result:?}");
    assert_eq!(store.events(&id, 0, 10).await?, vec![], "events after the conflict");
    assert_eq!(store.waiting().await?, vec![], "waiting queue after the conflict");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_refreshes_transcript_ttl() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("refresh")).await?;
    let session = session("web:refresh");
    let id = session.conversation_id.clone();
    store.append_events(&id, &[reply_event(id.as_str(), 1)], std::time::Duration::from_secs(5)).await?;

    store.save(&session, 0, TTL).await?;

    let key = format!("{}:{{web:refresh}}:transcript", redis.prefix());
    let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut redis.raw().await?).await?;
    assert!(ttl_ms > 5_000, "transcript TTL after a save with a 600 s TTL: {ttl_ms} ms");
    Ok(())
}
