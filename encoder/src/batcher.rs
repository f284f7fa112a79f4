//! Collecting single-text requests from concurrent conversations into one
//! forward pass.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

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

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    texts: AtomicU64,
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
        let counters = Arc::new(Counters::default());
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
        self.requests.send(request).map_err(|_| EncoderError::Closed)
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
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.encoder.embed(&texts, kind)))
            .unwrap_or_else(|_| Err(EncoderError::Run("the forward pass panicked".to_owned())));
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.texts.fetch_add(batch.len() as u64, Ordering::Relaxed);

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
