//! The server's Prometheus metrics: a registry fed by the engine's
//! [`Observer`] hooks and by a measuring wrapper around the session store
//! ([`MeasuredStore`]), served at `GET /metrics` ([`route`]).
//!
//! Every metric is per server process; with several servers, Prometheus sums them.

mod active;
mod route;
mod store;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bot_core::observe::{BotReload, Observer, SignInOutcome, TurnReport};
use bot_core::{Channel, StoreError};
use lepton_encoder::{Batcher, BatcherStats, Encoder};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use route::{router, MetricsAccess};
pub use store::MeasuredStore;

use active::ActiveConversations;

/// Latency buckets in seconds, from 0.5 ms to about 16 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 16)
}

/// Queue waiting-time buckets in seconds, from 5 s to about 5.7 hours.
fn wait_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(5.0, 2.0, 12)
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

fn wait_histogram() -> Histogram {
    Histogram::new(wait_buckets())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TurnLabels {
    channel: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SearchLabels {
    answered: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreErrorLabels {
    operation: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The registry and its metrics. Register it with
/// [`Engine::add_observer`](bot_core::Engine::add_observer), wrap the store in
/// [`MeasuredStore`], and serve it with [`router`].
pub struct Metrics {
    registry: Registry,
    turns: Family<TurnLabels, Counter>,
    turn_duration: HistogramFamily<ChannelLabels>,
    classification_duration: Histogram,
    search_duration: HistogramFamily<SearchLabels>,
    intent_confidence: Histogram,
    queue_length: Gauge,
    queue_oldest_wait: Gauge<f64, AtomicU64>,
    queue_wait: HistogramFamily<ChannelLabels>,
    active: ActiveConversations,
    active_gauge: Gauge,
    admitted: Gauge,
    admitted_max: Gauge,
    store_duration: HistogramFamily<OperationLabels>,
    store_errors: Family<StoreErrorLabels, Counter>,
    send_failures: Family<ChannelLabels, Counter>,
    rate_limit_waits: Family<ChannelLabels, Counter>,
    rate_limit_wait_seconds: Family<ChannelLabels, Counter<f64, AtomicU64>>,
    reloads: Family<OutcomeLabels, Counter>,
    retrains: Counter,
    reindexes: Counter,
    sign_ins: Family<OutcomeLabels, Counter>,
    encoder_batches: Counter,
    encoder_texts: Counter,
    /// The encoder at the last scrape and its batcher's counts then. A weak
    /// reference, so that a later encoder cannot reuse its address.
    encoder_seen: Mutex<Option<(Weak<Encoder>, BatcherStats)>>,
}

impl Metrics {
    /// Creates the registry. `session_ttl` is how long a conversation counts
    /// as active after its last turn; [`set_session_ttl`](Self::set_session_ttl) changes it.
    pub fn new(session_ttl: Duration) -> Arc<Self> {
        let mut metrics = Self {
            registry: Registry::with_prefix("lepton"),
            turns: Family::default(),
            turn_duration: Family::new_with_constructor(latency_histogram),
            classification_duration: latency_histogram(),
            search_duration: Family::new_with_constructor(latency_histogram),
            intent_confidence: Histogram::new((1..=10).map(|tenths| f64::from(tenths) / 10.0)),
            queue_length: Gauge::default(),
            queue_oldest_wait: Gauge::default(),
            queue_wait: Family::new_with_constructor(wait_histogram),
            active: ActiveConversations::new(session_ttl),
            active_gauge: Gauge::default(),
            admitted: Gauge::default(),
            admitted_max: Gauge::default(),
            store_duration: Family::new_with_constructor(latency_histogram),
            store_errors: Family::default(),
            send_failures: Family::default(),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            reloads: Family::default(),
            retrains: Counter::default(),
            reindexes: Counter::default(),
            sign_ins: Family::default(),
            encoder_batches: Counter::default(),
            encoder_texts: Counter::default(),
            encoder_seen: Mutex::new(None),
        };
        metrics.register();
        Arc::new(metrics)
    }

    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register("turns", "Customer turns by channel and outcome (intent, knowledge, form, fallback, handoff, human, other, duplicate, error, busy)", self.turns.clone());
        registry.register("turn_duration_seconds", "Time from receiving a customer message to storing its replies, waits for earlier turns of the conversation included", self.turn_duration.clone());
        registry.register("classification_duration_seconds", "Time the intent classifier took per message", self.classification_duration.clone());
        registry.register("knowledge_search_duration_seconds", "Time a knowledge base search took, by whether an entry scored high enough", self.search_duration.clone());
        registry.register("intent_confidence", "Confidence of the top-ranked intent per classified message", self.intent_confidence.clone());
        registry.register("handoff_queue_length", "Conversations waiting for an agent, read from the store at scrape time", self.queue_length.clone());
        registry.register("handoff_queue_oldest_wait_seconds", "How long the longest-waiting conversation has waited for an agent, at scrape time", self.queue_oldest_wait.clone());
        registry.register("handoff_wait_seconds", "Time a conversation waited in the queue until an agent claimed it", self.queue_wait.clone());
        registry.register(
            "active_conversations",
            "Estimate: conversations with a customer turn on this server process within the session TTL (other processes' conversations are not seen)",
            self.active_gauge.clone(),
        );
        registry.register(
            "admitted_conversations",
            "Conversations counted against this process's cap on active conversations (a turn running, or one ended within the cap's idle window); 0 without a cap",
            self.admitted.clone(),
        );
        registry.register("admitted_conversations_max", "The cap on active conversations of this process; 0 when there is none", self.admitted_max.clone());
        registry.register("store_operation_duration_seconds", "Time a session store operation took, by operation", self.store_duration.clone());
        registry.register("store_errors", "Failed session store operations, by operation and error (conflict, unavailable, lease_timeout, corrupt)", self.store_errors.clone());
        registry.register("channel_send_failures", "Messages a channel could not deliver to its platform after its retries", self.send_failures.clone());
        registry.register("channel_rate_limit_waits", "Times a channel waited because its platform rate-limited it", self.rate_limit_waits.clone());
        registry.register("channel_rate_limit_wait_seconds", "Seconds channels spent waiting for their platform's rate limits", self.rate_limit_wait_seconds.clone());
        registry.register("bot_reloads", "Reloads of the bot folder, by outcome (reloaded, rejected)", self.reloads.clone());
        registry.register("model_trainings", "Reloads that trained the intent model again", self.retrains.clone());
        registry.register("knowledge_index_builds", "Reloads that built the knowledge index again", self.reindexes.clone());
        registry.register("encoder_batches", "Forward passes of the sentence encoder's batcher, counted at scrape time", self.encoder_batches.clone());
        registry.register("encoder_texts", "Texts encoded by the sentence encoder's batcher, counted at scrape time; divided by encoder_batches, the mean batch size", self.encoder_texts.clone());
        registry.register("console_sign_ins", "Sign-in attempts to the support console, by outcome (succeeded, rejected, rate_limited)", self.sign_ins.clone());
    }

    /// Creates the turn counters of `channel` at zero for every outcome, so
    /// that dashboards and `rate()` see the series before the first turn.
    pub fn expect_channel(&self, channel: &str) {
        for kind in bot_core::observe::TurnKind::ALL {
            let labels = TurnLabels { channel: channel.to_owned(), outcome: kind.as_str() };
            drop(self.turns.get_or_create(&labels));
        }
        drop(self.turn_duration.get_or_create(&ChannelLabels { channel: channel.to_owned() }));
    }

    /// Changes how long a conversation counts as active, after a reload changed the session TTL.
    pub fn set_session_ttl(&self, ttl: Duration) {
        self.active.set_ttl(ttl);
    }

    /// Sets the gauges of the engine's cap on active conversations: the
    /// conversations it counts and its maximum (`None`: no cap).
    fn set_admission(&self, admitted: usize, max: Option<usize>) {
        self.admitted.set(i64::try_from(admitted).unwrap_or(i64::MAX));
        self.admitted_max.set(max.map_or(0, |max| i64::try_from(max).unwrap_or(i64::MAX)));
    }

    /// Sets the gauges read at scrape time: the queue for agents and the active conversations.
    fn set_gauges(&self, queue: Option<(usize, Duration)>) {
        if let Some((length, oldest)) = queue {
            self.queue_length.set(i64::try_from(length).unwrap_or(i64::MAX));
            self.queue_oldest_wait.set(oldest.as_secs_f64());
        }
        self.active_gauge.set(i64::try_from(self.active.count()).unwrap_or(i64::MAX));
    }

    /// Adds the batcher's forward passes and texts since the last scrape to the
    /// encoder counters. After a reload replaced the encoder, the new batcher's
    /// counts are added whole, and the old one's passes since the last scrape
    /// are not counted.
    fn record_encoder(&self, batcher: Option<&Batcher>) {
        let Some(batcher) = batcher else { return };
        let Ok(mut seen) = self.encoder_seen.lock() else { return };
        let encoder = Arc::downgrade(batcher.encoder());
        let now = batcher.stats();
        let before = match seen.as_ref() {
            Some((seen_encoder, stats)) if Weak::ptr_eq(seen_encoder, &encoder) => *stats,
            _ => BatcherStats::default(),
        };
        self.encoder_batches.inc_by(now.batches.saturating_sub(before.batches));
        self.encoder_texts.inc_by(now.texts.saturating_sub(before.texts));
        *seen = Some((encoder, now));
    }

    /// Encodes every metric in the OpenMetrics text format, which Prometheus reads.
    fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }

    fn store_operation(&self, operation: &'static str, elapsed: Duration, error: Option<&StoreError>) {
        self.store_duration.get_or_create(&OperationLabels { operation }).observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            let error = match error {
                StoreError::Conflict { .. } => "conflict",
                StoreError::Unavailable { .. } => "unavailable",
                StoreError::LeaseTimeout { .. } => "lease_timeout",
                StoreError::Corrupt { .. } => "corrupt",
            };
            self.store_errors.get_or_create(&StoreErrorLabels { operation, error }).inc();
        }
    }
}

fn channel_labels(channel: &Channel) -> ChannelLabels {
    ChannelLabels { channel: channel.as_str().to_owned() }
}

impl Observer for Metrics {
    fn turn_finished(&self, turn: &TurnReport<'_>) {
        let labels = TurnLabels { channel: turn.channel.as_str().to_owned(), outcome: turn.kind.as_str() };
        self.turns.get_or_create(&labels).inc();
        self.turn_duration.get_or_create(&channel_labels(turn.channel)).observe(turn.elapsed.as_secs_f64());
        self.active.touch(turn.conversation_id);
    }

    fn classified(&self, elapsed: Duration, top_confidence: Option<f32>) {
        self.classification_duration.observe(elapsed.as_secs_f64());
        if let Some(confidence) = top_confidence {
            self.intent_confidence.observe(f64::from(confidence));
        }
    }

    fn knowledge_searched(&self, elapsed: Duration, answered: bool) {
        self.search_duration.get_or_create(&SearchLabels { answered }).observe(elapsed.as_secs_f64());
    }

    fn agent_claimed(&self, channel: &Channel, waited: Duration) {
        self.queue_wait.get_or_create(&channel_labels(channel)).observe(waited.as_secs_f64());
    }

    fn send_failed(&self, channel: &Channel) {
        self.send_failures.get_or_create(&channel_labels(channel)).inc();
    }

    fn rate_limited(&self, channel: &Channel, wait: Duration) {
        self.rate_limit_waits.get_or_create(&channel_labels(channel)).inc();
        self.rate_limit_wait_seconds.get_or_create(&channel_labels(channel)).inc_by(wait.as_secs_f64());
    }

    fn sign_in(&self, outcome: SignInOutcome) {
        self.sign_ins.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).inc();
    }

    fn bot_reloaded(&self, reload: &BotReload) {
        let outcome = if reload.reloaded { "reloaded" } else { "rejected" };
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
        if reload.retrained {
            self.retrains.inc();
        }
        if reload.reindexed {
            self.reindexes.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use bot_core::observe::TurnKind;
    use bot_core::{ConversationId, IntentId};

    use super::*;

    #[test]
    fn observer_events_reach_text() {
        let metrics = Metrics::new(Duration::from_secs(60));
        let (id, channel, intent) = (ConversationId::new("telegram:1"), Channel::new("telegram"), IntentId::new("greet"));
        let turn = TurnReport { conversation_id: &id, channel: &channel, kind: TurnKind::Knowledge, intent: Some(&intent), elapsed: Duration::from_millis(20), at: 0 };

        metrics.turn_finished(&turn);
        metrics.classified(Duration::from_millis(1), Some(0.85));
        metrics.agent_claimed(&channel, Duration::from_secs(40));
        metrics.sign_in(SignInOutcome::Rejected);
        metrics.bot_reloaded(&BotReload { reloaded: true, retrained: true, reindexed: false });
        metrics.set_gauges(Some((3, Duration::from_secs(90))));
        let text = metrics.encode();

        for expected in [
            r#"lepton_turns_total{channel="telegram",outcome="knowledge"} 1"#,
            r#"lepton_turn_duration_seconds_count{channel="telegram"} 1"#,
            r#"lepton_intent_confidence_bucket{le="0.9"} 1"#,
            r#"lepton_handoff_wait_seconds_count{channel="telegram"} 1"#,
            r#"lepton_console_sign_ins_total{outcome="rejected"} 1"#,
            r#"lepton_bot_reloads_total{outcome="reloaded"} 1"#,
            "lepton_model_trainings_total 1",
            "lepton_knowledge_index_builds_total 0",
            "lepton_handoff_queue_length 3",
            "lepton_handoff_queue_oldest_wait_seconds 90.0",
            "lepton_active_conversations 1",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
    }
}
