//! Turn counts of the last hours in memory, for the console's admin page.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use super::{Observer, TurnKind, TurnReport};
use crate::ids::IntentId;
use crate::message::Timestamp;

/// The length of one bucket: five minutes, in milliseconds.
pub const BUCKET_MS: u64 = 5 * 60 * 1000;

/// The number of buckets kept: six hours.
pub const BUCKETS_KEPT: usize = 72;

/// Turn counts of this server process over the last [`BUCKETS_KEPT`] buckets
/// of [`BUCKET_MS`]. Counts start at zero when the process starts and cover
/// only the turns this process ran.
#[derive(Default)]
pub struct RecentStats {
    buckets: Mutex<VecDeque<Bucket>>,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    start: Timestamp,
    counts: StatsBucket,
    intents: HashMap<IntentId, u64>,
}

/// The counts of one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsBucket {
    /// The start of the bucket, in milliseconds since the Unix epoch.
    pub start: Timestamp,
    /// Customer turns, retried messages left out.
    pub turns: u64,
    /// Turns that ended in the fallback.
    pub fallbacks: u64,
    /// Turns that handed the conversation to an agent.
    pub handoffs: u64,
    /// Turns answered from the knowledge base.
    pub knowledge: u64,
    /// Turns that failed, those rejected at the cap on active conversations included.
    pub errors: u64,
}

/// The buckets of the last hours, oldest first and with no gaps, and the
/// intents matched most often over all of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    pub bucket_seconds: u64,
    pub buckets: Vec<StatsBucket>,
    /// `(intent, turns)`, most turns first.
    pub top_intents: Vec<(IntentId, u64)>,
}

impl RecentStats {
    /// Returns the last [`BUCKETS_KEPT`] buckets up to the one containing
    /// `now`, with empty buckets filled in, and at most `top` intents.
    pub fn snapshot(&self, now: Timestamp, top: usize) -> StatsSnapshot {
        let current = bucket_start(now);
        let first = current.saturating_sub(BUCKET_MS * (BUCKETS_KEPT as u64 - 1));
        let buckets = self.buckets.lock().expect("recent stats lock poisoned");

        let mut intents: HashMap<&IntentId, u64> = HashMap::new();
        let mut filled = Vec::with_capacity(BUCKETS_KEPT);
        let mut stored = buckets.iter().filter(|bucket| bucket.start >= first && bucket.start <= current).peekable();
        let mut start = first;
        while start <= current {
            match stored.next_if(|bucket| bucket.start == start) {
                Some(bucket) => {
                    filled.push(StatsBucket { start, ..bucket.counts.clone() });
                    for (intent, count) in &bucket.intents {
                        *intents.entry(intent).or_default() += count;
                    }
                }
                None => filled.push(StatsBucket { start, ..StatsBucket::default() }),
            }
            start += BUCKET_MS;
        }

        let mut top_intents: Vec<(IntentId, u64)> = intents.into_iter().map(|(intent, count)| (intent.clone(), count)).collect();
        top_intents.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        top_intents.truncate(top);
        StatsSnapshot { bucket_seconds: BUCKET_MS / 1000, buckets: filled, top_intents }
    }

    fn record(&self, turn: &TurnReport<'_>) {
        let start = bucket_start(turn.at);
        let mut buckets = self.buckets.lock().expect("recent stats lock poisoned");
        if buckets.back().is_none_or(|last| last.start < start) {
            buckets.push_back(Bucket { start, ..Bucket::default() });
            while buckets.len() > BUCKETS_KEPT {
                buckets.pop_front();
            }
        }
        // A turn stamped before the newest bucket (a clock step back) counts
        // in the newest bucket rather than reopening an old one.
        let Some(bucket) = buckets.back_mut() else { return };

        bucket.counts.turns += 1;
        match turn.kind {
            TurnKind::Fallback => bucket.counts.fallbacks += 1,
            TurnKind::Handoff => bucket.counts.handoffs += 1,
            TurnKind::Knowledge => bucket.counts.knowledge += 1,
            TurnKind::Error | TurnKind::Busy => bucket.counts.errors += 1,
            _ => {}
        }
        if let Some(intent) = turn.intent {
            *bucket.intents.entry(intent.clone()).or_default() += 1;
        }
    }
}

impl Observer for RecentStats {
    fn turn_finished(&self, turn: &TurnReport<'_>) {
        if turn.kind != TurnKind::Duplicate {
            self.record(turn);
        }
    }
}

fn bucket_start(at: Timestamp) -> Timestamp {
    at - at % BUCKET_MS
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ids::{Channel, ConversationId};

    fn report<'a>(id: &'a ConversationId, channel: &'a Channel, kind: TurnKind, intent: Option<&'a IntentId>, at: Timestamp) -> TurnReport<'a> {
        TurnReport { conversation_id: id, channel, kind, intent, elapsed: Duration::from_millis(3), at }
    }

    #[test]
    fn snapshot_fills_gaps_and_counts_kinds() {
        let stats = RecentStats::default();
        let (id, channel, intent) = (ConversationId::new("web:1"), Channel::new("web"), IntentId::new("greet"));
        let now = 100 * BUCKET_MS + 10;
        stats.turn_finished(&report(&id, &channel, TurnKind::Intent, Some(&intent), now - 2 * BUCKET_MS));
        stats.turn_finished(&report(&id, &channel, TurnKind::Fallback, None, now));
        stats.turn_finished(&report(&id, &channel, TurnKind::Handoff, None, now));
        stats.turn_finished(&report(&id, &channel, TurnKind::Duplicate, None, now));

        let snapshot = stats.snapshot(now, 5);

        assert_eq!(snapshot.buckets.len(), BUCKETS_KEPT);
        let last = snapshot.buckets.last().cloned().unwrap_or_default();
        assert_eq!((last.turns, last.fallbacks, last.handoffs), (2, 1, 1));
        assert_eq!(snapshot.buckets[BUCKETS_KEPT - 3].turns, 1);
        assert_eq!(snapshot.buckets[BUCKETS_KEPT - 2].turns, 0);
        assert_eq!(snapshot.top_intents, vec![(intent, 1)]);
    }

    #[test]
    fn snapshot_drops_buckets_older_than_kept() {
        let stats = RecentStats::default();
        let (id, channel) = (ConversationId::new("web:1"), Channel::new("web"));
        let now = 1000 * BUCKET_MS;
        stats.turn_finished(&report(&id, &channel, TurnKind::Intent, None, now - BUCKETS_KEPT as u64 * BUCKET_MS));

        let snapshot = stats.snapshot(now, 5);

        assert_eq!(snapshot.buckets.iter().map(|bucket| bucket.turns).sum::<u64>(), 0);
        assert_eq!(snapshot.buckets.first().map(|bucket| bucket.start), Some(now - (BUCKETS_KEPT as u64 - 1) * BUCKET_MS));
    }
}
