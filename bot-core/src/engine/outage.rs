//! Logging of session-store outages: one line when turns start failing and one
//! when they succeed again, with the number of turns that failed in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct OutageLog {
    /// True while an outage is logged, so that a successful turn outside an
    /// outage, the common case, takes no lock.
    in_outage: AtomicBool,
    current: Mutex<Option<Outage>>,
}

struct Outage {
    started: Instant,
    failed_turns: u64,
}

impl OutageLog {
    /// Records a turn that failed because the store was unavailable.
    pub fn turn_failed(&self, error: &dyn std::fmt::Display) {
        let mut current = self.current.lock().expect("outage log poisoned");
        match current.as_mut() {
            Some(outage) => {
                outage.failed_turns += 1;
                tracing::debug!(%error, failed_turns = outage.failed_turns, "turn failed: session store still unavailable");
            }
            None => {
                tracing::error!(%error, "session store unavailable: turns fail and customers are asked to retry until it is back");
                *current = Some(Outage { started: Instant::now(), failed_turns: 1 });
                self.in_outage.store(true, Ordering::Release);
            }
        }
    }

    /// Records a turn that reached the store, ending an outage if one is logged.
    pub fn turn_succeeded(&self) {
        if !self.in_outage.load(Ordering::Acquire) {
            return;
        }
        let mut current = self.current.lock().expect("outage log poisoned");
        self.in_outage.store(false, Ordering::Release);
        if let Some(outage) = current.take() {
            let seconds = outage.started.elapsed().as_secs_f64();
            tracing::warn!(failed_turns = outage.failed_turns, outage_seconds = format_args!("{seconds:.1}"), "session store available again");
        }
    }
}
