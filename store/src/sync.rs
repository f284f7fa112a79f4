//! When committed writes reach the disk: the [`SyncPolicy`] and the background
//! flusher thread that makes deferred commits durable.
//!
//! Under [`SyncPolicy::Periodic`] every write transaction commits with
//! `redb::Durability::None`: it is visible to readers at once, but the file's
//! header still points at the last durable commit. A commit with the default
//! `Durability::Immediate` (an fsync) makes every earlier commit durable too.
//! The flusher makes that commit at most one interval after the first write it
//! has not flushed yet, and sleeps while no writes arrive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ops::Inner;

/// A flush interval for [`SyncPolicy::Periodic`].
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// When the writes of an [`EmbeddedStore`](crate::EmbeddedStore) become durable,
/// that is, survive a crash of the process or of the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Each write transaction waits for an fsync before it returns, so a crash
    /// loses no write that returned. Concurrent `commit_turn` calls share one
    /// transaction and one fsync, but a single writer waits for a whole fsync
    /// per write.
    #[default]
    EveryWrite,
    /// Writes return before they are durable. A background thread makes them
    /// durable with one fsync this long after the first write it has not
    /// flushed. A crash loses the writes of about the last interval, plus those
    /// made during up to two fsyncs and any delay in scheduling that thread.
    /// A zero interval means [`EveryWrite`](Self::EveryWrite).
    Periodic(Duration),
}

impl SyncPolicy {
    /// Returns the flush interval, or `None` when every write is durable at once.
    pub(crate) fn interval(self) -> Option<Duration> {
        match self {
            Self::Periodic(interval) if !interval.is_zero() => Some(interval),
            _ => None,
        }
    }
}

/// The record of commits that are not durable yet, shared by the writers, `flush` and the flusher thread.
pub(crate) struct SyncState {
    /// True under [`SyncPolicy::Periodic`]: writes commit with `Durability::None`.
    pub deferred: bool,
    /// Set after a deferred commit, cleared by the flush that makes it durable.
    dirty: AtomicBool,
    /// Held for a whole flush, so that a flush that finds `dirty` clear cannot
    /// return while another flush that cleared it is still writing.
    flush_lock: Mutex<()>,
    signal: Mutex<Signal>,
    wake: Condvar,
}

#[derive(Default)]
struct Signal {
    /// Set when `dirty` goes from clear to set, so that the flusher wakes up.
    pending: bool,
    stop: bool,
}

impl SyncState {
    pub fn new(policy: SyncPolicy) -> Self {
        Self {
            deferred: policy.interval().is_some(),
            dirty: AtomicBool::new(false),
            flush_lock: Mutex::new(()),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
        }
    }

    /// Records a deferred commit and wakes the flusher if it was idle.
    pub fn mark_dirty(&self) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            self.wake_flusher();
        }
    }

    /// Returns whether a flush is needed, clearing the mark. The caller must
    /// hold the guard of [`lock_flush`](Self::lock_flush) until its durable
    /// commit has finished, and call [`mark_dirty`](Self::mark_dirty) if it failed.
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    pub fn lock_flush(&self) -> MutexGuard<'_, ()> {
        self.flush_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_flusher(&self) {
        let mut signal = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
        signal.pending = true;
        self.wake.notify_one();
    }

    fn stop(&self) {
        let mut signal = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
        signal.stop = true;
        self.wake.notify_one();
    }

    /// Blocks until a write is pending and `interval` has passed since the
    /// flusher woke for it. Returns false when the flusher must stop.
    fn wait_for_writes(&self, interval: Duration) -> bool {
        let mut signal = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
        while !signal.pending && !signal.stop {
            signal = self.wake.wait(signal).unwrap_or_else(PoisonError::into_inner);
        }

        // Collect the writes of one interval into one fsync.
        let deadline = Instant::now() + interval;
        while !signal.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            signal = self.wake.wait_timeout(signal, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        signal.pending = false;
        !signal.stop
    }
}

/// The background thread that flushes deferred commits every interval.
pub(crate) struct Flusher {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub fn start(inner: Arc<Inner>, interval: Duration) -> std::io::Result<Self> {
        let shared = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("lepton-store-flush".to_owned())
            .spawn(move || run(&shared, interval))?;
        Ok(Self { inner, thread: Some(thread) })
    }

    /// Stops the thread and waits for it; a flush in progress finishes first.
    /// Writes it has not flushed stay dirty for the caller's final flush.
    pub fn stop(&mut self) {
        self.inner.sync.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(path = %self.inner.path.display(), "the session store flush thread panicked");
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(inner: &Inner, interval: Duration) {
    while inner.sync.wait_for_writes(interval) {
        let started = Instant::now();
        match inner.flush() {
            Ok(()) => tracing::trace!(elapsed_us = started.elapsed().as_micros() as u64, "flushed the session store to disk"),
            // The failed flush marked the store dirty again, which schedules the retry.
            Err(error) => {
                let error = error.into_store_error(&inner.path);
                tracing::warn!(%error, "flushing the session store to disk failed; retrying after the next interval");
            }
        }
    }
}
