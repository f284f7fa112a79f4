//! Ordering of updates: one queue per chat, worked through by one task, so a
//! chat's messages reach the engine in the order Telegram sent them while
//! different chats run in parallel. A queue's task ends when the queue is empty.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use teloxide::types::Update;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::TelegramChannel;

/// How many update ids the channel remembers to drop redeliveries.
const REMEMBERED_UPDATES: usize = 4096;

/// Updates queued per chat at most. A person sends a message every few
/// seconds and a turn takes milliseconds to a few seconds, so a chat with
/// this many waiting is a script flooding the bot; its further updates are
/// dropped until the queue drains, which keeps one chat from using up memory.
const CHAT_QUEUE_CAPACITY: usize = 64;

struct ChatQueue {
    sender: mpsc::Sender<Update>,
    /// Updates dropped because the queue was full, logged on the first.
    dropped: u64,
}

#[derive(Default)]
pub(crate) struct Dispatcher {
    queues: Mutex<HashMap<i64, ChatQueue>>,
    workers: Mutex<JoinSet<()>>,
    recent: Mutex<RecentUpdates>,
}

impl Dispatcher {
    /// Queues an update for its chat; returns false for an update id seen
    /// before, which is dropped.
    pub fn push(&self, channel: &TelegramChannel, update: Update) -> bool {
        if !self.recent.lock().expect("recent updates poisoned").insert(update.id.0) {
            return false;
        }
        // Updates without a chat (inline queries, polls) share queue 0; they are only logged.
        let key = update.chat().map_or(0, |chat| chat.id.0);

        let mut queues = self.queues.lock().expect("chat queues poisoned");
        let update = match queues.get_mut(&key) {
            Some(queue) => match queue.sender.try_send(update) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    queue.dropped += 1;
                    if queue.dropped == 1 {
                        tracing::warn!(chat_id = key, capacity = CHAT_QUEUE_CAPACITY, "chat has too many updates waiting; dropping new ones until it catches up");
                    }
                    return true;
                }
                // The worker ended without removing its queue, which only a panic does.
                Err(mpsc::error::TrySendError::Closed(update)) => update,
            },
            None => update,
        };
        let (sender, receiver) = mpsc::channel(CHAT_QUEUE_CAPACITY);
        sender.try_send(update).expect("a new queue has room");
        queues.insert(key, ChatQueue { sender, dropped: 0 });
        drop(queues);

        let mut workers = self.workers.lock().expect("chat workers poisoned");
        while workers.try_join_next().is_some() {}
        workers.spawn(work(channel.clone(), key, receiver));
        true
    }

    /// Waits until every queued update has been processed.
    pub async fn drain(&self) {
        let mut workers = std::mem::take(&mut *self.workers.lock().expect("chat workers poisoned"));
        while workers.join_next().await.is_some() {}
    }
}

async fn work(channel: TelegramChannel, key: i64, mut receiver: mpsc::Receiver<Update>) {
    loop {
        let update = match receiver.try_recv() {
            Ok(update) => update,
            Err(_) => {
                // Check again under the map's lock, so that a push cannot slip in
                // between the empty check and the removal.
                let mut queues = channel.dispatcher().queues.lock().expect("chat queues poisoned");
                match receiver.try_recv() {
                    Ok(update) => update,
                    Err(_) => {
                        if let Some(queue) = queues.remove(&key).filter(|queue| queue.dropped > 0) {
                            tracing::warn!(chat_id = key, dropped = queue.dropped, "chat caught up; updates dropped while its queue was full");
                        }
                        return;
                    }
                }
            }
        };
        channel.process(update).await;
    }
}

/// A bounded set of recent update ids, oldest dropped first.
#[derive(Default)]
pub(crate) struct RecentUpdates {
    seen: HashSet<u32>,
    order: VecDeque<u32>,
}

impl RecentUpdates {
    /// Records `id`; returns false when it was already recorded.
    pub fn insert(&mut self, id: u32) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED_UPDATES {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_updates_drops_repeats() {
        let mut recent = RecentUpdates::default();

        assert!(recent.insert(7));
        assert!(!recent.insert(7));
    }

    #[test]
    fn recent_updates_forgets_oldest() {
        let mut recent = RecentUpdates::default();
        for id in 0..=REMEMBERED_UPDATES as u32 {
            recent.insert(id);
        }

        assert!(recent.insert(0));
        assert!(!recent.insert(REMEMBERED_UPDATES as u32));
    }
}
