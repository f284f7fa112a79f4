//! Outage logging: one ERROR when calls start failing and one WARN when they
//! succeed again. The failed calls in between are counted and logged at DEBUG,
//! so that a Redis outage under load does not write a WARN line per failed call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub(crate) struct Health {
    /// The redacted URL, for the log lines.
    url: String,
    /// Set while `outage` is `Some`, so that a successful call need not lock.
    failing: AtomicBool,
    outage: Mutex<Option<Outage>>,
}

struct Outage {
    started: Instant,
    failed_calls: u64,
}

impl Health {
    pub fn new(url: String) -> Self {
        Self { url, failing: AtomicBool::new(false), outage: Mutex::new(None) }
    }

    pub fn record_failure(&self, operation: &'static str, reason: &str) {
        let mut outage = self.outage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match outage.as_mut() {
            Some(outage) => {
                outage.failed_calls += 1;
                tracing::debug!(operation, error = reason, failed_calls = outage.failed_calls, "redis call failed during an outage");
            }
            None => {
                tracing::error!(
                    url = %self.url,
                    operation,
                    error = reason,
                    "redis session store calls are failing; turns fail until Redis responds again"
                );
                *outage = Some(Outage { started: Instant::now(), failed_calls: 1 });
                self.failing.store(true, Ordering::Release);
            }
        }
    }

    pub fn record_success(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut outage = self.outage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(ended) = outage.take() {
            self.failing.store(false, Ordering::Release);
            let outage_ms = u64::try_from(ended.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(url = %self.url, failed_calls = ended.failed_calls, outage_ms, "redis session store calls succeed again");
        }
    }
}
