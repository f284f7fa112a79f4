//! The sign-in rate limit: failed attempts counted per client address and per
//! agent name in a sliding window, in memory, with a bounded number of keys.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Failed sign-ins allowed per key within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;

/// The window over which failures count.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Keys tracked at most per kind; past it, expired keys go first, then the oldest.
const MAX_KEYS: usize = 10_000;

/// Failures per key, for one kind of key (addresses or names).
#[derive(Default)]
pub(crate) struct FailureLimit {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimit {
    /// Returns how long until `key` may try again, or `None` when it may now.
    pub(crate) fn blocked_for(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("rate limit lock poisoned");
        let times = failures.get_mut(key)?;
        prune(times, now);
        if times.len() < MAX_FAILURES {
            return None;
        }
        let oldest = *times.front()?;
        Some((oldest + WINDOW).saturating_duration_since(now).max(Duration::from_secs(1)))
    }

    pub(crate) fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("rate limit lock poisoned");
        if !failures.contains_key(key) && failures.len() >= MAX_KEYS {
            make_room(&mut failures, now);
        }
        let times = failures.entry(key.to_owned()).or_default();
        prune(times, now);
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    pub(crate) fn clear(&self, key: &str) {
        self.failures.lock().expect("rate limit lock poisoned").remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.lock().expect("rate limit lock poisoned").len()
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|time| now.saturating_duration_since(*time) >= WINDOW) {
        times.pop_front();
    }
}

fn make_room(failures: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
    failures.retain(|_, times| {
        prune(times, now);
        !times.is_empty()
    });
    if failures.len() < MAX_KEYS {
        return;
    }
    let oldest = failures.iter().min_by_key(|(_, times)| times.back().copied()).map(|(key, _)| key.clone());
    if let Some(key) = oldest {
        failures.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn blocks_after_max_failures_until_the_window_passes() {
        let limit = FailureLimit::default();
        for _ in 0..MAX_FAILURES {
            assert_eq!(limit.blocked_for("alice"), None);
            limit.record_failure("alice");
        }
        assert!(limit.blocked_for("alice").is_some());
        assert_eq!(limit.blocked_for("bob"), None);

        tokio::time::advance(WINDOW).await;
        assert_eq!(limit.blocked_for("alice"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_at_most_max_keys() {
        let limit = FailureLimit::default();
        for index in 0..MAX_KEYS + 10 {
            limit.record_failure(&format!("key-{index}"));
        }
        assert_eq!(limit.len(), MAX_KEYS);
    }
}
