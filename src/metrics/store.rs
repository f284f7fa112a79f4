//! [`MeasuredStore`]: a session store wrapper that times every operation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bot_core::store::{Lease, RemoteEvents, TurnCommit, UnrecognisedMessage};
use bot_core::{ConversationId, Event, Session, SessionStore, StoreError, Timestamp, Versioned};
use tokio::sync::mpsc;

use super::Metrics;

/// Passes every call to the wrapped store and records its duration and any
/// error in [`Metrics`] under the operation's name (`load`, `commit_turn`, ...).
pub struct MeasuredStore {
    store: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl MeasuredStore {
    pub fn new(store: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Self {
        Self { store, metrics }
    }

    fn record<T>(&self, operation: &'static str, started: Instant, result: &Result<T, StoreError>) {
        let elapsed: Duration = started.elapsed();
        self.metrics.store_operation(operation, elapsed, result.as_ref().err());
    }
}

#[async_trait]
impl SessionStore for MeasuredStore {
    async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError> {
        let started = Instant::now();
        let result = self.store.load(id).await;
        self.record("load", started, &result);
        result
    }

    async fn save(&self, session: &Session, expected: u64, ttl: Duration) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.store.save(session, expected, ttl).await;
        self.record("save", started, &result);
        result
    }

    async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: Duration) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.append_events(id, events, ttl).await;
        self.record("append_events", started, &result);
        result
    }

    async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let started = Instant::now();
        let result = self.store.events(id, after_seq, limit).await;
        self.record("events", started, &result);
        result
    }

    async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.set_waiting(id, since).await;
        self.record("set_waiting", started, &result);
        result
    }

    async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError> {
        let started = Instant::now();
        let result = self.store.waiting().await;
        self.record("waiting", started, &result);
        result
    }

    async fn commit_turn(&self, turn: TurnCommit<'_>) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.store.commit_turn(turn).await;
        self.record("commit_turn", started, &result);
        result
    }

    async fn lease(&self, id: &ConversationId) -> Result<Lease, StoreError> {
        let started = Instant::now();
        let result = self.store.lease(id).await;
        self.record("lease", started, &result);
        result
    }

    fn remote_events(&self) -> Option<mpsc::Receiver<RemoteEvents>> {
        self.store.remote_events()
    }

    async fn record_unrecognised(&self, message: &UnrecognisedMessage) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.record_unrecognised(message).await;
        self.record("record_unrecognised", started, &result);
        result
    }

    async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
        let started = Instant::now();
        let result = self.store.unrecognised(limit).await;
        self.record("unrecognised", started, &result);
        result
    }

    async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self.store.dismiss_unrecognised(id, seq).await;
        self.record("dismiss_unrecognised", started, &result);
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.ping().await;
        self.record("ping", started, &result);
        result
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.flush().await;
        self.record("flush", started, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use bot_core::{Channel, Lang, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn failed_operation_counted_by_error() -> anyhow::Result<()> {
        let metrics = Metrics::new(Duration::from_secs(60));
        let store = MeasuredStore::new(Arc::new(MemoryStore::new()), metrics.clone());
        let session = Session::new(ConversationId::new("web:1"), Channel::new("web"), Lang::new("en"), 0);

        store.save(&session, 0, Duration::from_secs(60)).await?;
        let conflict = store.save(&session, 7, Duration::from_secs(60)).await;
        let text = metrics.encode();

        assert!(matches!(conflict, Err(StoreError::Conflict { .. })), "{conflict:?}");
        assert!(text.contains(r#"lepton_store_operation_duration_seconds_count{operation="save"} 2"#), "{text}");
        assert!(text.contains(r#"lepton_store_errors_total{operation="save",error="conflict"} 1"#), "{text}");
        Ok(())
    }
}
