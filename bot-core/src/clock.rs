//! The engine's source of the current time, replaceable so that tests can
//! move time forward without waiting (session expiry, waiting reminders).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::message::{now_millis, Timestamp};

pub trait Clock: Send + Sync {
    /// Returns the current time in milliseconds since the Unix epoch.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        now_millis()
    }
}

/// A clock that stands still until it is moved, for tests.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// Starts at `start` milliseconds since the Unix epoch.
    pub fn new(start: Timestamp) -> Self {
        Self { millis: AtomicU64::new(start) }
    }

    /// Starts at the system's current time.
    pub fn starting_now() -> Self {
        Self::new(now_millis())
    }

    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.millis.load(Ordering::SeqCst)
    }
}
