//! Conversation leases, which order turns across server processes.
//!
//! A lease is the key `{prefix}:{<conversation id>}:lease` holding a token
//! unique to one acquisition, `{instance_id}/{n}`, with a TTL of `lease_ttl`.
//! A task renews the TTL every `lease_ttl / 3` while the lease is held.
//! Release deletes the key only if it still holds the token, so the old holder
//! of a lease that expired and was taken by another process cannot delete it.
//! A holder that crashes stops renewing, and its lease expires.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bot_core::{ConversationId, Lease, LeaseHandle, StoreError};
use tokio::task::JoinHandle;

use crate::scripts;
use crate::store::{ttl_millis, Inner};

/// The first wait before trying a taken lease again; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// A turn that waited longer than this for its lease is logged at INFO.
const LOGGED_WAIT: Duration = Duration::from_millis(100);

/// Takes the lease of `id`, waiting up to `lease_wait` while another holder has it.
pub(crate) async fn acquire(inner: &Arc<Inner>, id: &ConversationId) -> Result<Lease, StoreError> {
    let key = inner.keys.lease(id);
    let token = inner.token();
    let started = Instant::now();
    let mut backoff = MIN_BACKOFF;
    let mut last_holder = None;

    while let Some(holder) = try_acquire(inner, &key, &token).await? {
        let waited = started.elapsed();
        if waited >= inner.config.lease_wait {
            let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            return Err(StoreError::LeaseTimeout { conversation_id: id.clone(), waited_ms, holder });
        }
        last_holder = Some(holder);
        tokio::time::sleep(backoff.min(inner.config.lease_wait - waited)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }

    let waited = started.elapsed();
    if waited > LOGGED_WAIT {
        let holder = last_holder.as_deref().unwrap_or("unknown");
        tracing::info!(conversation_id = %id, waited_ms = waited.as_millis() as u64, holder, "waited for the conversation lease");
    }

    let lost = Arc::new(AtomicBool::new(false));
    let renewer = spawn_renewer(Arc::downgrade(inner), id.clone(), key.clone(), token.clone(), lost.clone());
    let handle = RedisLease { inner: Arc::downgrade(inner), conversation_id: id.clone(), key, token, renewer, lost, released: false };
    Ok(Lease::new(Box::new(handle)))
}

/// Returns `None` when the lease was taken, else the current holder's token.
async fn try_acquire(inner: &Inner, key: &str, token: &str) -> Result<Option<String>, StoreError> {
    let mut invocation = scripts::acquire_lease().prepare_invoke();
    invocation.key(key).arg(token).arg(ttl_millis(inner.config.lease_ttl));
    let invocation = &invocation;
    let holder: String = inner.connection.call("lease", |mut con| async move { invocation.invoke_async(&mut con).await }).await?;
    Ok(Some(holder).filter(|holder| !holder.is_empty()))
}

/// A held lease. The renewer and a release started by `Drop` hold the store
/// weakly, so that dropping the store stops them as a crash would.
struct RedisLease {
    inner: Weak<Inner>,
    conversation_id: ConversationId,
    key: String,
    token: String,
    renewer: JoinHandle<()>,
    /// Set by the renewer when it found the lease gone.
    lost: Arc<AtomicBool>,
    released: bool,
}

#[async_trait]
impl LeaseHandle for RedisLease {
    async fn release(mut self: Box<Self>) {
        self.released = true;
        self.renewer.abort();
        if let Some(inner) = self.inner.upgrade() {
            release(&inner, &self.conversation_id, &self.key, &self.token, &self.lost).await;
        }
    }
}

impl Drop for RedisLease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.renewer.abort();
        // Without a runtime or a store there is nothing to release with, and the lease expires.
        let (Some(inner), Ok(runtime)) = (self.inner.upgrade(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let conversation_id = self.conversation_id.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        let lost = self.lost.clone();
        runtime.spawn(async move { release(&inner, &conversation_id, &key, &token, &lost).await });
    }
}

/// Deletes the lease if it still holds `token`. A failure is logged and left
/// to the lease's TTL.
async fn release(inner: &Inner, id: &ConversationId, key: &str, token: &str, lost: &AtomicBool) {
    let mut invocation = scripts::release_lease().prepare_invoke();
    invocation.key(key).arg(token);
    let invocation = &invocation;
    let released = inner.connection.call("release lease", |mut con| async move { invocation.invoke_async::<bool>(&mut con).await }).await;
    match released {
        Ok(true) => {}
        Ok(false) if lost.load(Ordering::Acquire) => {}
        Ok(false) => {
            tracing::warn!(conversation_id = %id, token, "the conversation lease expired before its turn ended, so another turn may have overlapped it");
        }
        Err(error) => tracing::debug!(conversation_id = %id, %error, "releasing the conversation lease failed; it expires after its TTL"),
    }
}

fn spawn_renewer(inner: Weak<Inner>, id: ConversationId, key: String, token: String, lost: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some(period) = inner.upgrade().map(|inner| inner.config.lease_ttl / 3) else {
                return;
            };
            tokio::time::sleep(period).await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            match renew(&inner, &key, &token).await {
                Ok(true) => {}
                Ok(false) => {
                    lost.store(true, Ordering::Release);
                    tracing::warn!(conversation_id = %id, token, "lost the conversation lease before renewing it, so another turn may overlap this one");
                    return;
                }
                // The connection logs outages; the next renewal tries again.
                Err(error) => tracing::debug!(conversation_id = %id, %error, "renewing the conversation lease failed"),
            }
        }
    })
}

async fn renew(inner: &Inner, key: &str, token: &str) -> Result<bool, StoreError> {
    let mut invocation = scripts::renew_lease().prepare_invoke();
    invocation.key(key).arg(token).arg(ttl_millis(inner.config.lease_ttl));
    let invocation = &invocation;
    inner.connection.call("renew lease", |mut con| async move { invocation.invoke_async(&mut con).await }).await
}
