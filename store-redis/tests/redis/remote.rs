//! Events one store instance commits reach the other instances' feeds.

use bot_core::{ConversationId, RemoteEvents, SessionStore, TurnCommit};
use lepton_redis::RedisStore;
use tokio::sync::mpsc;

use crate::common::{reply_event, session, within, TTL};
use crate::server::TestRedis;

/// Takes a store's feed and waits until it is subscribed, which it reports
/// with a first `MaybeMissed`.
pub async fn subscribed_feed(store: &RedisStore) -> anyhow::Result<mpsc::Receiver<RemoteEvents>> {
    let mut feed = store.remote_events().ok_or_else(|| anyhow::anyhow!("remote_events returned None on the first call"))?;
    let first = within("the subscription", feed.recv()).await?;
    anyhow::ensure!(first == Some(RemoteEvents::MaybeMissed), "the feed started with {first:?}, expected MaybeMissed");
    Ok(feed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_reach_other_instance() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let a = RedisStore::connect(redis.config("instance-a")).await?;
    let b = RedisStore::connect(redis.config("instance-b")).await?;
    let mut a_feed = subscribed_feed(&a).await?;
    let mut b_feed = subscribed_feed(&b).await?;

    let session = session("web:remote");
    let id = session.conversation_id.clone();
    let from_a = vec![reply_event(id.as_str(), 1), reply_event(id.as_str(), 2)];
    a.commit_turn(TurnCommit { session: &session, expected: 0, events: &from_a, waiting: None, ttl: TTL }).await?;
    let from_b = vec![reply_event(id.as_str(), 3)];
    b.append_events(&id, &from_b, TTL).await?;

    let at_b = within("A's events at B", b_feed.recv()).await?;
    assert_eq!(at_b, Some(RemoteEvents::Committed(from_a)), "B's first message");
    // A's feed would have got its own events before B's, which were published later.
    let at_a = within("B's events at A", a_feed.recv()).await?;
    assert_eq!(at_a, Some(RemoteEvents::Committed(from_b)), "A's first message");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_events_given_once() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let store = RedisStore::connect(redis.config("once")).await?;

    let first = store.remote_events();
    let second = store.remote_events();

    assert!(first.is_some(), "first call");
    assert!(second.is_none(), "second call");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_publishes_nothing() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let a = RedisStore::connect(redis.config("saver")).await?;
    let b = RedisStore::connect(redis.config("listener")).await?;
    let mut b_feed = subscribed_feed(&b).await?;
    let id = ConversationId::new("web:quiet");

    a.save(&session(id.as_str()), 0, TTL).await?;
    let marker = vec![reply_event(id.as_str(), 1)];
    a.append_events(&id, &marker, TTL).await?;

    let first = within("the marker events", b_feed.recv()).await?;
    assert_eq!(first, Some(RemoteEvents::Committed(marker)), "B's first message after a save and an append");
    Ok(())
}
