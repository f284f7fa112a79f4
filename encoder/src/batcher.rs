//! Collecting single-text requests from concurrent conversations into one
//! forward pass.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Encoder, EncoderError, TextKind};

type Answer = Result<Vec<f32>, EncoderError>;

/// Where a request's vector goes: a blocked thread or an awaiting task.
enum Responder {
    Blocking(Sender<Answer>),
    Async(tokio::sync::oneshot::Sender<Answer>),
}

impl Responder {
    fn send(self, answer: Answer) {
        // A caller that stopped waiting dropped its receiver; nothing to do.
        match self {
            Self::Blocking(sender) => drop(sender.send(answer)),
            Self::Async(sender) => drop(sender.send(answer)),
        }
    }
}

struct Request {
    text: String,
    kind: TextKind,
    responder: Responder,
}

/// Counts of the forward passes the batcher ran, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Forward passes run (one per text kind present in a batch).
    pub batches: u64,
    /// Texts encoded in them.
    pub texts: u64,
}

/// How long texts may wait while the batcher thread neither starts nor
/// finishes a forward pass before [`Batcher::check_progress`] reports it
/// stalled. A large `max_batch` on a CPU can make one pass longer, so the limit
/// grows to [`SLOW_PASS_FACTOR`] times the longest pass seen.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// The multiple of the longest forward pass so far that texts may wait with no
/// progress, when that is longer than [`STALL_LIMIT`].
pub const SLOW_PASS_FACTOR: u32 = 4;

/// The time a running forward pass may take per text in it, on top of the
/// limit. A first pass over a large batch of long texts on a CPU has no
/// longest pass to go by, and takes well under a second per text.
pub const PASS_TIME_PER_TEXT: Duration = Duration::from_secs(1);

struct Counters {
    batches: AtomicU64,
    texts: AtomicU64,
    /// Texts submitted and not yet encoded.
    waiting: AtomicU64,
    /// Milliseconds after `epoch` of the last sign of progress: the batcher
    /// thread taking a batch or finishing one, or a first text arriving at an
    /// empty queue.
    progress_ms: AtomicU64,
    /// Milliseconds of the longest forward pass of the batcher thread.
    longest_pass_ms: AtomicU64,
    /// Texts in the forward pass running now, 0 between passes.
    in_pass: AtomicU64,
    epoch: Instant,
}

impl Counters {
    fn new() -> Self {
        Self {
            batches: AtomicU64::new(0),
            texts: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            progress_ms: AtomicU64::new(0),
            longest_pass_ms: AtomicU64::new(0),
            in_pass: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn mark_progress(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.progress_ms.fetch_max(now, Ordering::Relaxed);
    }

    fn progress(&self) -> Progress {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.progress_ms.load(Ordering::Relaxed);
        Progress {
            waiting: self.waiting.load(Ordering::Relaxed),
            in_pass: self.in_pass.load(Ordering::Relaxed),
            since_progress: Duration::from_millis(now.saturating_sub(last)),
            longest_pass: Duration::from_millis(self.longest_pass_ms.load(Ordering::Relaxed)),
        }
    }
}

/// The state of the batcher's queue, read for readiness checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Texts submitted and not yet encoded, those in the running pass included.
    pub waiting: u64,
    /// Texts in the forward pass running now, 0 between passes.
    pub in_pass: u64,
    /// Time since the batcher thread last took or finished a batch, or since
    /// a text arrived at an empty queue, whichever came last.
    pub since_progress: Duration,
    /// The duration of the slowest forward pass of the batcher thread so far.
    pub longest_pass: Duration,
}

impl Progress {
    /// Returns whether texts wait and nothing has moved for longer than
    /// `limit`, or than [`SLOW_PASS_FACTOR`] times the longest pass when that
    /// is longer. A running pass gets [`PASS_TIME_PER_TEXT`] per text on top.
    pub fn is_stalled(&self, limit: Duration) -> bool {
        let pass_texts = u32::try_from(self.in_pass).unwrap_or(u32::MAX);
        let limit = limit.max(self.longest_pass * SLOW_PASS_FACTOR) + PASS_TIME_PER_TEXT.saturating_mul(pass_texts);
        self.waiting > 0 && self.since_progress > limit
    }
}

/// Collects single-text requests from many callers for up to `max_wait` or
/// `max_batch` texts and encodes them in one forward pass on its own thread.
/// Cheap to clone; the thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct Batcher {
    encoder: Arc<Encoder>,
    requests: Sender<Request>,
    counters: Arc<Counters>,
}

impl Batcher {
    pub fn new(encoder: Arc<Encoder>) -> Self {
        let (requests, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::new());
        let worker = Worker { encoder: encoder.clone(), counters: counters.clone() };
        std::thread::Builder::new()
            .name("lepton-encoder-batcher".to_owned())
            .spawn(move || worker.run(receiver))
            .expect("failed to spawn the encoder's batcher thread");
        Self { encoder, requests, counters }
    }

    pub fn encoder(&self) -> &Arc<Encoder> {
        &self.encoder
    }

    /// Forward passes and texts run so far, over every clone.
    pub fn stats(&self) -> BatcherStats {
        BatcherStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            texts: self.counters.texts.load(Ordering::Relaxed),
        }
    }

    /// Returns the texts waiting now and the time since the last progress,
    /// read without joining the queue.
    pub fn progress(&self) -> Progress {
        self.counters.progress()
    }

    /// Returns [`EncoderError::Stalled`] when texts have waited longer than
    /// [`STALL_LIMIT`] (or [`SLOW_PASS_FACTOR`] times the longest pass) with
    /// no forward pass started or finished. It submits
    /// nothing, so it returns at once however long the queue is.
    pub fn check_progress(&self) -> Result<(), EncoderError> {
        let progress = self.progress();
        if progress.is_stalled(STALL_LIMIT) {
            let seconds = progress.since_progress.as_secs();
            return Err(match progress.in_pass {
                0 => EncoderError::Stalled { waiting: progress.waiting, seconds },
                texts => EncoderError::PassStalled { texts, seconds },
            });
        }
        Ok(())
    }

    /// Encodes one text with the next batch, blocking the calling thread.
    /// Never call it on an async runtime's thread; use [`Batcher::embed`] there.
    pub fn embed_blocking(&self, text: &str, kind: TextKind) -> Result<Vec<f32>, EncoderError> {
        let (sender, receiver) = mpsc::channel();
        self.submit(text, kind, Responder::Blocking(sender))?;
        receiver.recv().map_err(|_| EncoderError::Closed)?
    }

    /// Encodes one text with the next batch without blocking the runtime.
    pub async fn embed(&self, text: &str, kind: TextKind) -> Result<Vec<f32>, EncoderError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.submit(text, kind, Responder::Async(sender))?;
        receiver.await.map_err(|_| EncoderError::Closed)?
    }

    /// Encodes many texts at once (an index, a training set), bypassing the
    /// batching window.
    pub fn embed_many(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EncoderError> {
        self.encoder.embed(texts, kind)
    }

    fn submit(&self, text: &str, kind: TextKind, responder: Responder) -> Result<(), EncoderError> {
        let request = Request { text: text.to_owned(), kind, responder };
        // The stall clock starts when a text arrives at an empty queue, not
        // at the last pass before an idle spell.
        if self.counters.waiting.fetch_add(1, Ordering::Relaxed) == 0 {
            self.counters.mark_progress();
        }
        self.requests.send(request).map_err(|_| {
            self.counters.waiting.fetch_sub(1, Ordering::Relaxed);
            EncoderError::Closed
        })
    }
}

/// The batcher thread's state.
struct Worker {
    encoder: Arc<Encoder>,
    counters: Arc<Counters>,
}

impl Worker {
    /// Blocks for a first request, gathers more until the batch is full or
    /// `max_wait` has passed, encodes them; ends when every sender is gone.
    fn run(self, receiver: Receiver<Request>) {
        let max_batch = self.encoder.config().max_batch.max(1);
        let max_wait = self.encoder.config().max_wait;

        while let Ok(first) = receiver.recv() {
            self.counters.mark_progress();
            let deadline = Instant::now() + max_wait;
            let mut batch = vec![first];
            while batch.len() < max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(left) {
                    Ok(request) => batch.push(request),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            for kind in [TextKind::Query, TextKind::Passage] {
                let (same, rest): (Vec<_>, Vec<_>) = batch.into_iter().partition(|r| r.kind == kind);
                batch = rest;
                if !same.is_empty() {
                    self.answer(same, kind);
                }
            }
        }
        tracing::debug!("encoder batcher stopped: every sender dropped");
    }

    fn answer(&self, batch: Vec<Request>, kind: TextKind) {
        let texts: Vec<&str> = batch.iter().map(|request| request.text.as_str()).collect();
        let started = Instant::now();
        self.counters.in_pass.store(batch.len() as u64, Ordering::Relaxed);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.encoder.embed(&texts, kind)))
            .unwrap_or_else(|_| Err(EncoderError::Run("the forward pass panicked".to_owned())));
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.texts.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.counters.in_pass.store(0, Ordering::Relaxed);
        self.counters.waiting.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        self.counters.longest_pass_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.counters.mark_progress();

        match result {
            Ok(vectors) => {
                for (request, vector) in batch.into_iter().zip(vectors) {
                    request.responder.send(Ok(vector));
                }
            }
            Err(error) => {
                tracing::warn!(%error, texts = batch.len(), "encoder batch failed");
                let message = error.to_string();
                for request in batch {
                    request.responder.send(Err(EncoderError::Run(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_needs_waiting_texts() {
        let limit = Duration::from_secs(30);
        let pass = Duration::from_millis(200);
        let idle = Progress { waiting: 0, in_pass: 0, since_progress: Duration::from_secs(3_600), longest_pass: pass };
        let busy = Progress { waiting: 12, in_pass: 0, since_progress: Duration::from_secs(2), longest_pass: pass };
        let stuck = Progress { waiting: 1, in_pass: 0, since_progress: Duration::from_secs(31), longest_pass: pass };

        assert!(!idle.is_stalled(limit), "an idle batcher is not stalled");
        assert!(!busy.is_stalled(limit));
        assert!(stuck.is_stalled(limit));
    }

    #[test]
    fn slow_passes_extend_the_limit() {
        let limit = Duration::from_secs(30);
        let slow = Duration::from_secs(20);
        let within = Progress { waiting: 5, in_pass: 0, since_progress: Duration::from_secs(79), longest_pass: slow };
        let beyond = Progress { waiting: 5, in_pass: 0, since_progress: Duration::from_secs(81), longest_pass: slow };

        assert!(!within.is_stalled(limit), "a wait under four slow passes is not a stall");
        assert!(beyond.is_stalled(limit));
    }

    #[test]
    fn running_pass_gets_time_per_text() {
        let limit = Duration::from_secs(30);
        let first = Duration::ZERO;
        let long_first_pass = Progress { waiting: 200, in_pass: 200, since_progress: Duration::from_secs(31), longest_pass: first };
        let hung_pass = Progress { waiting: 3, in_pass: 1, since_progress: Duration::from_secs(32), longest_pass: first };

        assert!(!long_first_pass.is_stalled(limit), "a first pass over 200 texts may take 31 s");
        assert!(hung_pass.is_stalled(limit));
    }

    #[test]
    fn stalled_error_counts_texts() {
        let single = EncoderError::Stalled { waiting: 1, seconds: 31 }.to_string();
        let many = EncoderError::Stalled { waiting: 7, seconds: 45 }.to_string();

        assert_eq!(single, "the encoder has run no forward pass for 31 s while 1 text waits");
        assert_eq!(many, "the encoder has run no forward pass for 45 s while 7 texts wait");
    }

    #[test]
    fn pass_stalled_error_names_the_pass() {
        let message = EncoderError::PassStalled { texts: 2, seconds: 40 }.to_string();

        assert_eq!(message, "the encoder's forward pass over 2 texts has run for 40 s");
    }
}
