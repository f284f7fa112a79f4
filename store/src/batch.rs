//! Group commit of turns: one writer thread takes every `commit_turn` request
//! that is waiting and stores them in one write transaction.
//!
//! redb runs write transactions one at a time and each commit has a fixed cost
//! (and an fsync under [`SyncPolicy::EveryWrite`](crate::SyncPolicy::EveryWrite)),
//! so concurrent turns share that cost instead of queueing for the write lock.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use bot_core::message::now_millis;
use bot_core::StoreError;
use tokio::sync::oneshot;

use crate::ops::{self, EncodedTurn, Inner};

/// The maximum number of turns in one transaction, which bounds its size.
const MAX_BATCH: usize = 128;

struct Request {
    turn: EncodedTurn,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// The queue of turns to store and the thread that stores them.
pub(crate) struct TurnWriter {
    inner: Arc<Inner>,
    /// `None` once [`stop`](Self::stop) has run.
    sender: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl TurnWriter {
    pub fn start(inner: Arc<Inner>) -> std::io::Result<Self> {
        // Unbounded, because `commit` runs on async threads and must not block
        // on a full queue. Each request is a turn waiting for its reply, or one
        // whose caller was cancelled while waiting, so the queue grows only
        // while turns arrive faster than the writer commits them; the rate
        // limits of the channels and the engine's cap on active conversations
        // bound that rate.
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("lepton-store-writer".to_owned())
            .spawn(move || run(&shared, &receiver))?;
        Ok(Self { inner, sender: Some(sender), thread: Some(thread) })
    }

    /// Queues `turn` and waits until its batch is committed. A turn whose
    /// caller stops waiting is still stored.
    pub async fn commit(&self, turn: EncodedTurn) -> Result<u64, StoreError> {
        let (reply, result) = oneshot::channel();
        let sent = match &self.sender {
            Some(sender) => sender.send(Request { turn, reply }).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.stopped());
        }
        result.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    /// Stores every queued turn, then stops the thread and waits for it.
    pub fn stop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(path = %self.inner.path.display(), "the session store writer thread panicked");
            }
        }
    }

    fn stopped(&self) -> StoreError {
        StoreError::Unavailable {
            reason: format!(
                "session store {}: the writer thread stopped, so the store is closing or failed; see the error logged before",
                self.inner.path.display()
            ),
        }
    }
}

impl Drop for TurnWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stores batches until every sender is gone and the queue is empty.
fn run(inner: &Inner, receiver: &Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        commit_batch(inner, batch);
    }
}

fn commit_batch(inner: &Inner, batch: Vec<Request>) {
    let (turns, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|request| (request.turn, request.reply)).unzip();
    match ops::commit_turns(inner, &turns, now_millis()) {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // The caller may have stopped waiting; its turn is stored anyway.
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            let reason = match error.into_store_error(&inner.path) {
                StoreError::Unavailable { reason } => reason,
                other => other.to_string(),
            };
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable { reason: reason.clone() }));
            }
        }
    }

    // One sweep at most per batch, when the batch crossed the sweep threshold.
    let due = turns.iter().fold(false, |due, _| inner.count_write() || due);
    if due {
        ops::sweep_after_write(inner);
    }
}
