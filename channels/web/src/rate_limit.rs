//! Token-bucket rate limits of the customer API, per conversation and per
//! client address, in memory and with a bounded number of tracked keys.
//!
//! Each key has a bucket of `burst` tokens that refills at `per_second`. A
//! request takes one token, and a request that finds the bucket empty is
//! rejected with the time until a token is back. A bucket that has refilled
//! completely carries no state, so it may be dropped at any time, which keeps
//! the map within [`RateLimiter::max_keys`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::SettingError;

/// The rate and burst of one kind of limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Requests per second allowed over time. Fractions such as `0.5` are valid.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

impl Rate {
    /// Builds a rate: `per_second` must be a positive finite number and
    /// `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> Result<Self, SettingError> {
        let invalid = |reason| SettingError::InvalidRate { text: format!("{per_second}/s,{burst}"), reason };
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(invalid("the rate must be a positive number"));
        }
        if burst == 0 {
            return Err(invalid("the burst must be 1 or more"));
        }
        Ok(Self { per_second, burst })
    }

    /// Parses `RATE/s` or `RATE/s,BURST`, such as `1/s,5` or `0.5/s`; without a
    /// burst it is the rate rounded up.
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let invalid = |reason| SettingError::InvalidRate { text: text.to_owned(), reason };
        let (rate, burst) = match text.split_once(',') {
            Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
            None => (text.trim(), None),
        };
        let number = rate.strip_suffix("/s").ok_or_else(|| invalid("the rate must end in /s"))?;
        let per_second = number.trim().parse::<f64>().map_err(|_| invalid("the rate is not a number"))?;
        let burst = match burst {
            Some(burst) => burst.parse::<u32>().map_err(|_| invalid("the burst is not a whole number"))?,
            None => per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
        };
        Self::new(per_second, burst).map_err(|error| match error {
            SettingError::InvalidRate { reason, .. } => invalid(reason),
            other => other,
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s,{}", self.per_second, self.burst)
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// Returns the tokens in the bucket at `now`, refilled since its last update.
    fn tokens_at(&self, now: Instant, rate: &Rate) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst))
    }
}

/// Token buckets for one kind of key (conversations or client addresses).
pub struct RateLimiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// Builds a limiter that tracks at most `max_keys` keys (at least 1).
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self { rate, max_keys: max_keys.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Returns the maximum number of keys tracked at once.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Takes a token for `key`, or returns how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock poisoned");
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.make_room(&mut buckets, now);
        }

        let full = f64::from(self.rate.burst);
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: full, updated: now });
        let tokens = bucket.tokens_at(now, &self.rate);
        if tokens < 1.0 {
            let missing = 1.0 - tokens;
            return Err(Duration::from_secs_f64(missing / self.rate.per_second));
        }
        *bucket = Bucket { tokens: tokens - 1.0, updated: now };
        Ok(())
    }

    /// Returns the number of keys tracked now.
    pub fn len(&self) -> usize {
        self.buckets.lock().expect("rate limiter lock poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every refilled bucket. When that frees too little, it also drops
    /// the eighth of the buckets updated longest ago, which are the fullest. Dropping a
    /// bucket that is not full forgives its key the missing tokens, so this
    /// happens only when more than `max_keys` keys were busy within one refill
    /// time (`burst / per_second`). Freeing an eighth at once keeps the cost of
    /// this scan at O(1) per new key on average.
    fn make_room(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let full = f64::from(self.rate.burst);
        buckets.retain(|_, bucket| bucket.tokens_at(now, &self.rate) < full);

        let target = self.max_keys - self.max_keys / 8 - 1;
        if buckets.len() <= target {
            return;
        }
        let mut updated: Vec<Instant> = buckets.values().map(|bucket| bucket.updated).collect();
        let excess = buckets.len() - target;
        let (_, cutoff, _) = updated.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        let mut removed = 0;
        buckets.retain(|_, bucket| {
            let drop = removed < excess && bucket.updated <= cutoff;
            removed += usize::from(drop);
            !drop
        });
        tracing::warn!(max_keys = self.max_keys, evicted = removed, "rate limiter is full of busy keys, so it dropped the least recently updated buckets");
    }
}

/// Rounds a wait up to whole seconds for `Retry-After`, at least 1.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, max_keys: usize) -> RateLimiter<String> {
        RateLimiter::new(Rate::new(per_second, burst).unwrap(), max_keys)
    }

    #[tokio::test(start_paused = true)]
    async fn check_allows_burst_then_rejects() {
        let limit = limiter(1.0, 5, 100);
        for _ in 0..5 {
            assert_eq!(limit.check(&"a".to_owned()), Ok(()));
        }

        let wait = limit.check(&"a".to_owned()).unwrap_err();

        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(limit.check(&"b".to_owned()), Ok(()), "another key has its own bucket");
    }

    #[tokio::test(start_paused = true)]
    async fn check_refills_at_the_rate() {
        let limit = limiter(2.0, 1, 100);
        assert_eq!(limit.check(&"a".to_owned()), Ok(()));
        assert!(limit.check(&"a".to_owned()).is_err());

        tokio::time::advance(Duration::from_millis(500)).await;

        assert_eq!(limit.check(&"a".to_owned()), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn rejected_request_takes_no_token() {
        let limit = limiter(1.0, 1, 100);
        limit.check(&"a".to_owned()).unwrap();
        tokio::time::advance(Duration::from_millis(600)).await;

        let wait = limit.check(&"a".to_owned()).unwrap_err();

        assert_eq!(wait, Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_stay_within_max_keys() {
        let limit = limiter(1.0, 5, 64);

        for index in 0..1000 {
            limit.check(&format!("key-{index}")).unwrap();
            assert!(limit.len() <= 64, "{} keys tracked after {index} requests", limit.len());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn make_room_drops_refilled_buckets_first() {
        let limit = limiter(1.0, 2, 4);
        for key in ["old-1", "old-2", "old-3"] {
            limit.check(&key.to_owned()).unwrap();
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        // Two tokens taken: this bucket stays short of full for two seconds.
        limit.check(&"busy".to_owned()).unwrap();
        limit.check(&"busy".to_owned()).unwrap();

        limit.check(&"new".to_owned()).unwrap();

        assert_eq!(limit.len(), 2);
        assert!(limit.check(&"busy".to_owned()).is_err(), "the busy key kept its empty bucket");
    }

    #[test]
    fn rate_parse_reads_rate_and_burst() {
        assert_eq!(Rate::parse("1/s,5"), Ok(Rate { per_second: 1.0, burst: 5 }));
        assert_eq!(Rate::parse(" 0.5/s "), Ok(Rate { per_second: 0.5, burst: 1 }));
        assert_eq!(Rate::parse("10/s"), Ok(Rate { per_second: 10.0, burst: 10 }));
    }

    #[test]
    fn rate_parse_rejects_bad_values() {
        for text in ["", "5", "0/s,5", "-1/s", "1/s,0", "x/s", "1/s,y", "inf/s", "NaN/s"] {
            assert!(Rate::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(2001)), 3);
    }
}
