//! The sign-in rate limit: attempts counted per client address and per agent
//! name in a sliding window, in memory, with a bounded number of keys. An
//! attempt counts from when it starts, and a successful one is taken back.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Sign-in attempts, failed or still being checked, allowed per key within [`WINDOW`].
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
    /// Counts an attempt for `key` before its password is checked, so that
    /// attempts sent at once cannot all pass the limit while the first ones
    /// are still being checked. Returns how long to wait when `key` is
    /// blocked, else the attempt's time for [`FailureLimit::forgive`].
    pub(crate) fn start_attempt(&self, key: &str) -> Result<Instant, Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("rate limit lock poisoned");
        if let Some(times) = failures.get_mut(key) {
            prune(times, now);
            if let (true, Some(oldest)) = (times.len() >= MAX_FAILURES, times.front()) {
                return Err((*oldest + WINDOW).saturating_duration_since(now).max(Duration::from_secs(1)));
            }
        }
        if !failures.contains_key(key) && failures.len() >= MAX_KEYS {
            make_room(&mut failures, now);
        }
        failures.entry(key.to_owned()).or_default().push_back(now);
        Ok(now)
    }

    /// Takes back an attempt of `key` started at `started` that succeeded.
    pub(crate) fn forgive(&self, key: &str, started: Instant) {
        let mut failures = self.failures.lock().expect("rate limit lock poisoned");
        let Some(times) = failures.get_mut(key) else {
            return;
        };
        if let Some(index) = times.iter().position(|time| *time == started) {
            times.remove(index);
        }
        if times.is_empty() {
            failures.remove(key);
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
            assert!(limit.start_attempt("alice").is_ok());
        }
        assert!(limit.start_attempt("alice").is_err());
        assert!(limit.start_attempt("bob").is_ok());

        tokio::time::advance(WINDOW).await;
        assert!(limit.start_attempt("alice").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn started_attempts_count_until_forgiven() {
        let limit = FailureLimit::default();
        let mut started = Vec::new();
        for _ in 0..MAX_FAILURES {
            started.extend(limit.start_attempt("alice").ok());
        }
        let blocked = limit.start_attempt("alice").is_err();
        for time in started {
            limit.forgive("alice", time);
        }

        assert!(blocked);
        assert!(limit.start_attempt("alice").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_at_most_max_keys() {
        let limit = FailureLimit::default();
        for index in 0..MAX_KEYS + 10 {
            let _ = limit.start_attempt(&format!("key-{index}"));
        }
        assert_eq!(limit.len(), MAX_KEYS);
    }
}
