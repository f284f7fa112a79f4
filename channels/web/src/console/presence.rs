//! Customer presence: whether a web-widget customer has the chat open, as far
//! as this server process sees, from the customer WebSockets it serves.

use std::collections::HashMap;
use std::sync::Mutex;

use bot_core::message::now_millis;
use bot_core::{ConversationId, Timestamp};
use serde::Serialize;
use tokio::sync::broadcast;

/// Conversations whose customer left that are remembered at most; the oldest go first.
const MAX_LEFT: usize = 10_000;

/// Presence changes kept for a slow console socket.
const CHANGES_CAPACITY: usize = 256;

/// Whether the customer is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// A web-widget customer with an open WebSocket.
    Online,
    /// A web-widget customer whose WebSockets all closed.
    Left,
    /// No WebSocket seen on this server: another channel, or another server.
    Unknown,
}

/// A presence change, pushed to console sockets.
#[derive(Clone, Debug)]
pub struct PresenceChange {
    pub conversation_id: ConversationId,
    pub presence: Presence,
}

enum Seen {
    Open(usize),
    LeftAt(Timestamp),
}

/// Open customer sockets per conversation.
pub(crate) struct PresenceBook {
    seen: Mutex<HashMap<ConversationId, Seen>>,
    changes: broadcast::Sender<PresenceChange>,
}

impl Default for PresenceBook {
    fn default() -> Self {
        Self { seen: Mutex::new(HashMap::new()), changes: broadcast::channel(CHANGES_CAPACITY).0 }
    }
}

impl PresenceBook {
    pub(crate) fn get(&self, id: &ConversationId) -> Presence {
        match self.seen.lock().expect("presence lock poisoned").get(id) {
            Some(Seen::Open(_)) => Presence::Online,
            Some(Seen::LeftAt(_)) => Presence::Left,
            None => Presence::Unknown,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<PresenceChange> {
        self.changes.subscribe()
    }

    /// Counts a customer socket that opened; the returned guard counts it closed when dropped.
    pub(crate) fn opened(self: &std::sync::Arc<Self>, id: &ConversationId) -> SocketPresence {
        let came_online = {
            let mut seen = self.seen.lock().expect("presence lock poisoned");
            let entry = seen.entry(id.clone()).or_insert(Seen::Open(0));
            match entry {
                Seen::Open(count) => {
                    *count += 1;
                    *count == 1
                }
                Seen::LeftAt(_) => {
                    *entry = Seen::Open(1);
                    true
                }
            }
        };
        if came_online {
            self.announce(id, Presence::Online);
        }
        SocketPresence { book: self.clone(), id: id.clone() }
    }

    fn closed(&self, id: &ConversationId) {
        let left = {
            let mut seen = self.seen.lock().expect("presence lock poisoned");
            let left = match seen.get_mut(id) {
                Some(Seen::Open(count)) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(entry @ Seen::Open(_)) => {
                    *entry = Seen::LeftAt(now_millis());
                    true
                }
                _ => false,
            };
            if left && seen.len() > MAX_LEFT {
                forget_oldest_left(&mut seen);
            }
            left
        };
        if left {
            self.announce(id, Presence::Left);
        }
    }

    fn announce(&self, id: &ConversationId, presence: Presence) {
        // An error only means that no console socket listens.
        let _ = self.changes.send(PresenceChange { conversation_id: id.clone(), presence });
    }
}

fn forget_oldest_left(seen: &mut HashMap<ConversationId, Seen>) {
    let oldest = seen
        .iter()
        .filter_map(|(id, entry)| match entry {
            Seen::LeftAt(at) => Some((*at, id)),
            Seen::Open(_) => None,
        })
        .min()
        .map(|(_, id)| id.clone());
    if let Some(id) = oldest {
        seen.remove(&id);
    }
}

/// Held by a customer socket while it is open.
pub(crate) struct SocketPresence {
    book: std::sync::Arc<PresenceBook>,
    id: ConversationId,
}

impl Drop for SocketPresence {
    fn drop(&mut self) {
        self.book.closed(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn online_while_any_socket_is_open_then_left() {
        let book = Arc::new(PresenceBook::default());
        let id = ConversationId::new("c1");
        assert_eq!(book.get(&id), Presence::Unknown);

        let first = book.opened(&id);
        let second = book.opened(&id);
        drop(first);
        assert_eq!(book.get(&id), Presence::Online);

        drop(second);
        assert_eq!(book.get(&id), Presence::Left);
    }

    #[test]
    fn announces_changes_only() {
        let book = Arc::new(PresenceBook::default());
        let mut changes = book.subscribe();
        let id = ConversationId::new("c1");

        let first = book.opened(&id);
        let second = book.opened(&id);
        drop((first, second));

        assert_eq!(changes.try_recv().map(|change| change.presence).ok(), Some(Presence::Online));
        assert_eq!(changes.try_recv().map(|change| change.presence).ok(), Some(Presence::Left));
        assert!(changes.try_recv().is_err());
    }
}
