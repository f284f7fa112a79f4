//! Ordering of events: one queue per channel and author, worked through by
//! one task, so that a customer's messages reach the engine in the order the
//! gateway sent them while other customers run in parallel. A queue's task
//! ends when the queue is empty.
//!
//! serenity runs each event handler call in a task of its own, which loses the
//! gateway's order. So the channel takes events from a shard collector, which
//! serenity calls in order. The handler calls are only a fallback for events
//! that arrive before the collector is registered. Both paths go through
//! [`Dispatcher::push`], which drops the second copy.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use serenity::all::{Interaction, Message, MessageUpdateEvent};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::DiscordChannel;

/// How many event keys the channel remembers to drop second copies and redeliveries.
const REMEMBERED_EVENTS: usize = 4096;

/// An event the channel acts on.
#[derive(Clone, Debug)]
pub(crate) enum Incoming {
    Message(Box<Message>),
    Edit(Box<MessageUpdateEvent>),
    Interaction(Box<Interaction>),
}

impl Incoming {
    /// Identifies the event: a message, one edit of it, or an interaction.
    fn key(&self) -> String {
        match self {
            Self::Message(message) => format!("message:{}", message.id),
            Self::Edit(edit) => {
                let edited = edit.edited_timestamp.map(|at| at.unix_timestamp_nanos()).unwrap_or_default();
                format!("edit:{}:{edited}", edit.id)
            }
            Self::Interaction(interaction) => format!("interaction:{}", interaction.id()),
        }
    }

    /// Returns the queue of the event: its channel and author.
    fn queue(&self) -> (u64, u64) {
        match self {
            Self::Message(message) => (message.channel_id.get(), message.author.id.get()),
            Self::Edit(edit) => (edit.channel_id.get(), edit.author.as_ref().map_or(0, |author| author.id.get())),
            Self::Interaction(interaction) => match interaction.as_ref() {
                Interaction::Component(component) => (component.channel_id.get(), component.user.id.get()),
                _ => (0, 0),
            },
        }
    }
}

type QueueKey = (u64, u64);

/// Events queued per conversation at most. A person sends a message every
/// few seconds and a turn takes milliseconds to a few seconds, so a queue this
/// long is a flood; further events are dropped until it drains, which keeps
/// one user from using up memory.
const QUEUE_CAPACITY: usize = 64;

struct EventQueue {
    sender: mpsc::Sender<Incoming>,
    /// Events dropped because the queue was full, logged on the first.
    dropped: u64,
}

#[derive(Default)]
pub(crate) struct Dispatcher {
    queues: Mutex<HashMap<QueueKey, EventQueue>>,
    workers: Mutex<JoinSet<()>>,
    recent: Mutex<RecentEvents>,
}

impl Dispatcher {
    /// Queues an event; returns false for an event seen before, which is dropped.
    pub fn push(&self, channel: &DiscordChannel, event: Incoming) -> bool {
        if !self.recent.lock().expect("recent events poisoned").insert(event.key()) {
            return false;
        }
        let key = event.queue();

        let mut queues = self.queues.lock().expect("event queues poisoned");
        let event = match queues.get_mut(&key) {
            Some(queue) => match queue.sender.try_send(event) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    queue.dropped += 1;
                    if queue.dropped == 1 {
                        tracing::warn!(queue = ?key, capacity = QUEUE_CAPACITY, "too many events waiting for one conversation; dropping new ones until it catches up");
                    }
                    return true;
                }
                // The worker ended without removing its queue, which only a panic does.
                Err(mpsc::error::TrySendError::Closed(event)) => event,
            },
            None => event,
        };
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        sender.try_send(event).expect("a new queue has room");
        queues.insert(key, EventQueue { sender, dropped: 0 });
        drop(queues);

        let mut workers = self.workers.lock().expect("event workers poisoned");
        while workers.try_join_next().is_some() {}
        workers.spawn(work(channel.clone(), key, receiver));
        true
    }

    /// Waits until every queued event has been processed.
    pub async fn drain(&self) {
        let mut workers = std::mem::take(&mut *self.workers.lock().expect("event workers poisoned"));
        while workers.join_next().await.is_some() {}
    }
}

async fn work(channel: DiscordChannel, key: QueueKey, mut receiver: mpsc::Receiver<Incoming>) {
    loop {
        let event = match receiver.try_recv() {
            Ok(event) => event,
            Err(_) => {
                // Check again under the map's lock, so that a push cannot slip in
                // between the empty check and the removal.
                let mut queues = channel.dispatcher().queues.lock().expect("event queues poisoned");
                match receiver.try_recv() {
                    Ok(event) => event,
                    Err(_) => {
                        if let Some(queue) = queues.remove(&key).filter(|queue| queue.dropped > 0) {
                            tracing::warn!(queue = ?key, dropped = queue.dropped, "conversation caught up; events dropped while its queue was full");
                        }
                        return;
                    }
                }
            }
        };
        channel.process(event).await;
    }
}

/// A bounded set of recent event keys, oldest dropped first.
#[derive(Default)]
pub(crate) struct RecentEvents {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentEvents {
    /// Records `key`; returns false when it was already recorded.
    pub fn insert(&mut self, key: String) -> bool {
        if self.seen.contains(&key) {
            return false;
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        if self.order.len() > REMEMBERED_EVENTS {
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
    fn recent_events_drop_repeats() {
        let mut recent = RecentEvents::default();

        assert!(recent.insert("message:7".to_owned()));
        assert!(!recent.insert("message:7".to_owned()));
    }

    #[test]
    fn recent_events_forget_oldest() {
        let mut recent = RecentEvents::default();
        for id in 0..=REMEMBERED_EVENTS {
            recent.insert(format!("message:{id}"));
        }

        assert!(recent.insert("message:0".to_owned()));
        assert!(!recent.insert(format!("message:{REMEMBERED_EVENTS}")));
    }
}
