//! In-process coordination: one lock per conversation, so that its messages run
//! one at a time in arrival order, a broadcast hub for its new events, and the
//! feed of every conversation's events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, Mutex as AsyncMutex, OwnedMutexGuard};

use crate::event::Event;
use crate::ids::ConversationId;

/// Events kept per subscriber before a slow one lags and must re-read the transcript.
const HUB_CAPACITY: usize = 256;

#[derive(Default)]
pub(crate) struct ConversationLocks {
    locks: Mutex<HashMap<ConversationId, Arc<AsyncMutex<()>>>>,
}

impl ConversationLocks {
    /// Waits for the conversation's lock. tokio's mutex is fair, so waiters get it
    /// in the order they asked, which keeps one conversation's messages in order.
    pub async fn lock(&self, id: &ConversationId) -> ConversationGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().expect("conversation locks poisoned");
            locks.entry(id.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        ConversationGuard { owner: self, id: id.clone(), guard: Some(guard) }
    }
}

pub(crate) struct ConversationGuard<'a> {
    owner: &'a ConversationLocks,
    id: ConversationId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for ConversationGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().expect("conversation locks poisoned");
        // Only the map holds the lock now: nobody waits, so the entry can go.
        if locks.get(&self.id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(&self.id);
        }
    }
}

/// An event of any conversation, as [`Engine::subscribe_all`](super::Engine::subscribe_all) passes it on.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEvent {
    pub event: Event,
    /// True when this server process committed the event, false when another
    /// process sharing the store did.
    pub local: bool,
}

/// The hub drops senders nobody listens to once it holds this many, then again
/// at twice the number left, so pruning costs O(1) per subscription on average.
const HUB_PRUNE_MIN: usize = 64;

#[derive(Default)]
pub(crate) struct EventHub {
    senders: Mutex<Senders>,
}

#[derive(Default)]
struct Senders {
    by_conversation: HashMap<ConversationId, Watched>,
    prune_at: usize,
}

struct Watched {
    sender: broadcast::Sender<Event>,
    /// The highest `seq` published to the conversation's subscribers.
    last_seq: u64,
}

impl EventHub {
    pub fn subscribe(&self, id: &ConversationId) -> broadcast::Receiver<Event> {
        let mut senders = self.senders.lock().expect("event hub poisoned");
        if senders.by_conversation.len() >= senders.prune_at.max(HUB_PRUNE_MIN) {
            senders.by_conversation.retain(|_, watched| watched.sender.receiver_count() > 0);
            senders.prune_at = senders.by_conversation.len() * 2;
        }
        let watched = senders.by_conversation.entry(id.clone()).or_insert_with(|| Watched { sender: broadcast::channel(HUB_CAPACITY).0, last_seq: 0 });
        watched.sender.subscribe()
    }

    /// Lists the conversations someone subscribes to, with the last `seq` published to them.
    pub fn watched(&self) -> Vec<(ConversationId, u64)> {
        let senders = self.senders.lock().expect("event hub poisoned");
        senders
            .by_conversation
            .iter()
            .filter(|(_, watched)| watched.sender.receiver_count() > 0)
            .map(|(id, watched)| (id.clone(), watched.last_seq))
            .collect()
    }

    pub fn publish(&self, events: &[Event]) {
        let mut senders = self.senders.lock().expect("event hub poisoned");
        for event in events {
            let Some(watched) = senders.by_conversation.get_mut(&event.conversation_id) else {
                continue;
            };
            watched.last_seq = watched.last_seq.max(event.seq);
            if watched.sender.send(event.clone()).is_err() {
                senders.by_conversation.remove(&event.conversation_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_prunes_senders_without_receivers() {
        let hub = EventHub::default();
        for i in 0..1000 {
            drop(hub.subscribe(&ConversationId::new(format!("c{i}"))));
        }

        let kept = hub.senders.lock().unwrap().by_conversation.len();

        assert!(kept <= HUB_PRUNE_MIN, "kept {kept} senders that nobody listens to");
    }
}
