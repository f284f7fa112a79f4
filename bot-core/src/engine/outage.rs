//! Logging of session-store outages: one line when turns start failing and one
//! when they succeed again, with the number of turns that failed in between.

use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct OutageLog {
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
            }
        }
    }

    /// Records a turn that reached the store, ending an outage if one is logged.
    pub fn turn_succeeded(&self) {
        let mut current = self.current.lock().expect("outage log poisoned");
        if let Some(outage) = current.take() {
            let seconds = outage.started.elapsed().as_secs_f64();
            tracing::warn!(failed_turns = outage.failed_turns, outage_seconds = format_args!("{seconds:.1}"), "session store available again");
        }
    }
}
