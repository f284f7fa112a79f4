//! Leases between two store instances sharing one server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bot_core::{ConversationId, SessionStore, StoreError};
use lepton_redis::{RedisConfig, RedisStore};

use crate::common::within;
use crate::server::TestRedis;

/// Shortens the lease wait of `config`, for checking that a lease is held.
fn impatient(config: RedisConfig) -> RedisConfig {
    RedisConfig { lease_wait: Duration::from_millis(50), ..config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_waits_for_release() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let first = RedisStore::connect(redis.config("first")).await?;
    let second = Arc::new(RedisStore::connect(redis.config("second")).await?);
    let id = ConversationId::new("web:lease");
    let released = Arc::new(AtomicBool::new(false));

    let first_lease = first.lease(&id).await?;
    let waiter = {
        let (second, id, released) = (second.clone(), id.clone(), released.clone());
        tokio::spawn(async move {
            let lease = second.lease(&id).await?;
            let after_release = released.load(Ordering::SeqCst);
            lease.release().await;
            Ok::<_, StoreError>(after_release)
        })
    };
    // Give the waiter time to find the lease taken; the order is checked either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    released.store(true, Ordering::SeqCst);
    first_lease.release().await;

    let after_release = within("the second lease", waiter).await???;
    assert!(after_release, "the second instance took the lease before the first released it");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_timeout_names_holder() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let first = RedisStore::connect(redis.config("holder-a")).await?;
    let second = RedisStore::connect(impatient(redis.config("holder-b"))).await?;
    let id = ConversationId::new("web:busy");

    let first_lease = first.lease(&id).await?;
    let result = second.lease(&id).await;
    first_lease.release().await;

    let (conversation_id, holder) = match result {
        Err(StoreError::LeaseTimeout { conversation_id, holder, .. }) => (conversation_id, holder),
        Err(other) => anyhow::bail!("lease returned {other}, expected LeaseTimeout"),
        Ok(_) => anyhow::bail!("lease succeeded while another instance held it"),
    };
    assert_eq!(conversation_id, id, "conversation in the error");
    assert!(holder.starts_with("holder-a/"), "holder {holder}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_holder_lease_expires() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let crashing = RedisStore::connect(RedisConfig { lease_ttl: Duration::from_secs(1), ..redis.config("crashing") }).await?;
    let probe = RedisStore::connect(impatient(redis.config("probe"))).await?;
    let next = RedisStore::connect(redis.config("next")).await?;
    let id = ConversationId::new("web:crash");

    // A crash runs no destructor and stops the renewer: forget the lease and
    // drop the store, which the renewer holds only weakly.
    std::mem::forget(crashing.lease(&id).await?);
    drop(crashing);

    let while_held = probe.lease(&id).await;
    assert!(matches!(while_held, Err(StoreError::LeaseTimeout { .. })), "lease right after the crash: {:?}", while_held.err());
    let after_expiry = within("the lease after expiry", next.lease(&id)).await?;
    assert!(after_expiry.is_ok(), "lease after the TTL: {:?}", after_expiry.err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_lease_past_ttl() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let holder = RedisStore::connect(RedisConfig { lease_ttl: Duration::from_millis(600), ..redis.config("renewing") }).await?;
    let probe = RedisStore::connect(impatient(redis.config("probe"))).await?;
    let id = ConversationId::new("web:renew");

    let first_lease = holder.lease(&id).await?;
    // Three times lease_ttl: without renewal the lease would be gone.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let while_held = probe.lease(&id).await;
    first_lease.release().await;

    assert!(matches!(while_held, Err(StoreError::LeaseTimeout { .. })), "lease past the TTL: {:?}", while_held.err());
    let after_release = probe.lease(&id).await;
    assert!(after_release.is_ok(), "lease after release: {:?}", after_release.err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_lease_is_released() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let long_ttl = |config: RedisConfig| RedisConfig { lease_ttl: Duration::from_secs(60), ..config };
    let first = RedisStore::connect(long_ttl(redis.config("dropping"))).await?;
    let second = RedisStore::connect(long_ttl(redis.config("next"))).await?;
    let id = ConversationId::new("web:drop");

    drop(first.lease(&id).await?);

    // The TTL is a minute and the wait 5 s, so only the release on drop lets this succeed.
    let next = within("the lease after drop", second.lease(&id)).await?;
    assert!(next.is_ok(), "lease after the holder dropped its lease: {:?}", next.err());
    Ok(())
}
