//! The store against a three-node Redis Cluster: the shared store contract,
//! conversations on every node, leases and remote events between two stores
//! whose seed lists start at different nodes, a password written on one seed,
//! a node restart, and the settings that cluster mode rejects.

use std::collections::BTreeSet;
use std::time::Duration;

use bot_core::store::contract::run_all;
use bot_core::{ConversationId, Event, RemoteEvents, SessionStore, StoreError, TurnCommit};
use lepton_redis::{RedisConfig, RedisStore, RedisStoreError};
use tokio::sync::mpsc;

use crate::cluster_server::{TestCluster, NODES};
use crate::common::{reply_event, session, within, TTL};
use crate::remote::subscribed_feed;
use crate::server::TestRedis;

const PASSWORD: &str = "cluster-s3cret";

fn session_key(cluster: &TestCluster, id: &ConversationId) -> String {
    format!("{}:{{{}}}:session", cluster.prefix(), id.as_str())
}

/// Returns a conversation id whose keys are on node `node`.
fn id_on_node(cluster: &TestCluster, node: usize, name: &str) -> anyhow::Result<ConversationId> {
    for n in 0..1000 {
        let id = ConversationId::new(format!("web:{name}-{n}"));
        if cluster.node_of(&session_key(cluster, &id))? == node {
            return Ok(id);
        }
    }
    anyhow::bail!("no id among 1000 has its keys on node {node}")
}

/// Returns how many clients on node `node` subscribe to the events channel.
fn subscribers_on(cluster: &TestCluster, node: usize) -> anyhow::Result<i64> {
    let channel = format!("{}:events", cluster.prefix());
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query(&mut cluster.node_connection(node)?)?;
    Ok(counts.first().map_or(0, |(_, count)| *count))
}

/// Receives `count` committed event batches and returns them ordered by
/// conversation, because batches published on different nodes may arrive in
/// any order.
async fn receive_batches(feed: &mut mpsc::Receiver<RemoteEvents>, count: usize) -> anyhow::Result<Vec<Vec<Event>>> {
    let mut batches = Vec::new();
    while batches.len() < count {
        match within("remote events", feed.recv()).await? {
            Some(RemoteEvents::Committed(events)) => batches.push(events),
            other => anyhow::bail!("the feed sent {other:?} after {} batches, expected Committed", batches.len()),
        }
    }
    batches.sort_by(|a, b| a[0].conversation_id.as_str().cmp(b[0].conversation_id.as_str()));
    Ok(batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_store_passes_contract() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start("cluster_store_passes_contract")? else {
        return Ok(());
    };
    let store = RedisStore::connect(cluster.config("contract", 0)).await?;
    run_all(&store).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conversations_on_every_node() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start("cluster_conversations_on_every_node")? else {
        return Ok(());
    };
    let store = RedisStore::connect(cluster.config("spread", 0)).await?;
    let ids: Vec<ConversationId> = (0..24).map(|i| ConversationId::new(format!("web:spread-{i}"))).collect();
    let mut nodes = BTreeSet::new();
    for id in &ids {
        let key = session_key(&cluster, id);
        nodes.insert(cluster.node_of(&key)?);
        let transcript_slot = cluster.slot_of(&key.replace(":session", ":transcript"))?;
        let lease_slot = cluster.slot_of(&key.replace(":session", ":lease"))?;
        assert_eq!(transcript_slot, cluster.slot_of(&key)?, "transcript slot of {id}");
        assert_eq!(lease_slot, cluster.slot_of(&key)?, "lease slot of {id}");
    }
    assert_eq!(nodes.len(), NODES, "nodes serving the test conversations");

    for (i, id) in ids.iter().enumerate() {
        let events = [reply_event(id.as_str(), 1), reply_event(id.as_str(), 2)];
        let turn = TurnCommit { session: &session(id.as_str()), expected: 0, events: &events, waiting: Some(Some(1_000 + i as u64)), ttl: TTL };
        store.commit_turn(turn).await?;
    }
    for id in &ids {
        let loaded = store.load(id).await?.map(|v| (v.version, v.session));
        assert_eq!(loaded, Some((1, session(id.as_str()))), "session of {id}");
        let events = store.events(id, 0, 10).await?;
        assert_eq!(events, vec![reply_event(id.as_str(), 1), reply_event(id.as_str(), 2)], "events of {id}");
    }
    let queued: Vec<(ConversationId, u64)> = ids.iter().enumerate().map(|(i, id)| (id.clone(), 1_000 + i as u64)).collect();
    assert_eq!(store.waiting().await?, queued, "waiting queue");

    for id in ids.iter().step_by(2) {
        let events = [reply_event(id.as_str(), 3)];
        store.commit_turn(TurnCommit { session: &session(id.as_str()), expected: 1, events: &events, waiting: Some(None), ttl: TTL }).await?;
    }
    let still_queued: Vec<_> = queued.into_iter().skip(1).step_by(2).collect();
    assert_eq!(store.waiting().await?, still_queued, "waiting queue after every other conversation left it");
    for node in 0..NODES {
        let keys: u64 = redis::cmd("DBSIZE").query(&mut cluster.node_connection(node)?)?;
        assert!(keys > 0, "node {node} holds no keys");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lease_excludes_other_store() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start("cluster_lease_excludes_other_store")? else {
        return Ok(());
    };
    let first = RedisStore::connect(cluster.config("holder-a", 0)).await?;
    let second = RedisStore::connect(RedisConfig { lease_wait: Duration::from_millis(50), ..cluster.config("holder-b", 2) }).await?;
    let id = ConversationId::new("web:cluster-lease");

    let first_lease = first.lease(&id).await?;
    let while_held = second.lease(&id).await;
    first_lease.release().await;
    let after_release = second.lease(&id).await;

    let holder = match while_held {
        Err(StoreError::LeaseTimeout { holder, .. }) => holder,
        Err(other) => anyhow::bail!("lease returned {other}, expected LeaseTimeout"),
        Ok(_) => anyhow::bail!("lease succeeded while another store held it"),
    };
    assert!(holder.starts_with("holder-a/"), "holder {holder}");
    assert!(after_release.is_ok(), "lease after release: {:?}", after_release.err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_events_reach_store_on_other_node() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start("cluster_events_reach_store_on_other_node")? else {
        return Ok(());
    };
    let a = RedisStore::connect(cluster.config("instance-a", 0)).await?;
    let b = RedisStore::connect(cluster.config("instance-b", 2)).await?;
    let mut a_feed = subscribed_feed(&a).await?;
    let mut b_feed = subscribed_feed(&b).await?;
    let subscribers: Vec<i64> = (0..NODES).map(|node| subscribers_on(&cluster, node)).collect::<anyhow::Result<_>>()?;
    assert_eq!(subscribers, vec![1, 0, 1], "subscribers per node: A on its first seed, B on its first seed");

    // One conversation per node, so the scripts publish on every node.
    let mut from_a = Vec::new();
    for node in 0..NODES {
        let id = id_on_node(&cluster, node, "events")?;
        let events = vec![reply_event(id.as_str(), 1), reply_event(id.as_str(), 2)];
        a.commit_turn(TurnCommit { session: &session(id.as_str()), expected: 0, events: &events, waiting: None, ttl: TTL }).await?;
        from_a.push(events);
    }
    from_a.sort_by(|x, y| x[0].conversation_id.as_str().cmp(y[0].conversation_id.as_str()));
    let from_b = vec![reply_event("web:events-from-b", 1)];
    b.append_events(&ConversationId::new("web:events-from-b"), &from_b, TTL).await?;

    assert_eq!(receive_batches(&mut b_feed, NODES).await?, from_a, "A's events at B");
    let at_a = within("B's events at A", a_feed.recv()).await?;
    assert_eq!(at_a, Some(RemoteEvents::Committed(from_b)), "A's first message");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_password_on_one_seed() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start_with_password("cluster_password_on_one_seed", Some(PASSWORD))? else {
        return Ok(());
    };
    // A writes the password on its first seed, B only on its last one.
    let a_url = [cluster.node_url(0), cluster.node_url_without_password(1), cluster.node_url_without_password(2)].join(",");
    let b_url = [cluster.node_url_without_password(2), cluster.node_url_without_password(0), cluster.node_url(1)].join(",");
    let a = RedisStore::connect(RedisConfig { url: a_url, ..cluster.config("password-a", 0) }).await?;
    let b = RedisStore::connect(RedisConfig { url: b_url, ..cluster.config("password-b", 2) }).await?;
    let mut b_feed = subscribed_feed(&b).await?;

    let id = id_on_node(&cluster, 1, "password")?;
    let events = vec![reply_event(id.as_str(), 1)];
    a.commit_turn(TurnCommit { session: &session(id.as_str()), expected: 0, events: &events, waiting: None, ttl: TTL }).await?;

    assert_eq!(b.load(&id).await?.map(|v| v.version), Some(1), "version B loads");
    assert_eq!(subscribers_on(&cluster, 2)?, 1, "subscribers on B's first seed");
    let at_b = within("A's events at B", b_feed.recv()).await?;
    assert_eq!(at_b, Some(RemoteEvents::Committed(events)), "B's first message");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wrong_password_fails_connect() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start_with_password("cluster_wrong_password_fails_connect", Some(PASSWORD))? else {
        return Ok(());
    };
    let url = cluster.seeds_from(0).replace(PASSWORD, "wrong-password");

    let message = match RedisStore::connect(RedisConfig { url, ..cluster.config("wrong-password", 0) }).await {
        Err(error @ RedisStoreError::Connect { .. }) => error.to_string(),
        Err(other) => anyhow::bail!("connect returned {other}, expected Connect"),
        Ok(_) => anyhow::bail!("connect succeeded with a wrong password"),
    };
    assert!(!message.contains("wrong-password"), "message contains the password: {message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_restart_recovers() -> anyhow::Result<()> {
    let Some(mut cluster) = TestCluster::start("cluster_node_restart_recovers")? else {
        return Ok(());
    };
    let store = RedisStore::connect(cluster.config("restart", 0)).await?;
    // The listener subscribes on node 1, the node that dies.
    let listener = RedisStore::connect(cluster.config("listener", 1)).await?;
    let mut feed = subscribed_feed(&listener).await?;
    let on_killed = id_on_node(&cluster, 1, "killed")?;
    let on_other = id_on_node(&cluster, 2, "other")?;
    store.save(&session(on_killed.as_str()), 0, TTL).await?;

    cluster.kill(1)?;
    let notice = within("the feed's notice", feed.recv()).await?;
    let during = within("a load from the killed node", store.load(&on_killed)).await?;
    let other_node = within("a save on another node", store.save(&session(on_other.as_str()), 0, TTL)).await?;
    assert_eq!(notice, Some(RemoteEvents::MaybeMissed), "feed message after its node died");
    assert_eq!(subscribers_on(&cluster, 2)?, 1, "subscribers on the listener's next seed");
    assert!(matches!(during, Err(StoreError::Unavailable { .. })), "load from the killed node returned {during:?}");
    assert!(matches!(other_node, Ok(1)), "save on another node returned {other_node:?}");

    cluster.restart(1)?;
    // The restarted node kept nothing, so the session is gone.
    let after = within("a load after the restart", store.load(&on_killed)).await?;
    assert!(matches!(after, Ok(None)), "load after the restart returned {after:?}");
    let saved = within("a save after the restart", store.save(&session(on_killed.as_str()), 0, TTL)).await?;
    assert!(matches!(saved, Ok(1)), "save after the restart returned {saved:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_mode_rejects_cluster_node() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::start("single_mode_rejects_cluster_node")? else {
        return Ok(());
    };
    let config = RedisConfig { url: cluster.node_url(0), cluster: false, ..cluster.config("single", 0) };

    let result = RedisStore::connect(config).await;

    assert!(matches!(result, Err(RedisStoreError::InvalidSetting { setting: "cluster", .. })), "connect returned {:?}", result.err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_rejects_plain_server() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let config = RedisConfig { cluster: true, ..redis.config("not-a-cluster") };

    let result = RedisStore::connect(config).await;

    assert!(matches!(result, Err(RedisStoreError::InvalidSetting { setting: "cluster", .. })), "connect returned {:?}", result.err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_list_needs_cluster_mode() -> anyhow::Result<()> {
    let config = RedisConfig { url: "redis://127.0.0.1:7000,redis://127.0.0.1:7001".to_owned(), ..RedisConfig::default() };

    let message = match RedisStore::connect(config).await {
        Err(error @ RedisStoreError::InvalidUrl { .. }) => error.to_string(),
        Err(other) => anyhow::bail!("connect returned {other}, expected InvalidUrl"),
        Ok(_) => anyhow::bail!("connect accepted a list of URLs without cluster mode"),
    };
    assert!(message.contains("enable cluster mode"), "message: {message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_rejects_database() -> anyhow::Result<()> {
    let config = RedisConfig { url: "redis://127.0.0.1:7000/5".to_owned(), cluster: true, ..RedisConfig::default() };

    let message = match RedisStore::connect(config).await {
        Err(error @ RedisStoreError::InvalidUrl { .. }) => error.to_string(),
        Err(other) => anyhow::bail!("connect returned {other}, expected InvalidUrl"),
        Ok(_) => anyhow::bail!("connect accepted database 5 in cluster mode"),
    };
    assert!(message.contains("database 5"), "message: {message}");
    Ok(())
}
