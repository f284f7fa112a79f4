//! The estimate of active conversations: those with a customer turn on this
//! server process within the session TTL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bot_core::ConversationId;

/// The maximum number of conversations tracked at once, about 20 MB of ids and times.
// NOTE: beyond this many active conversations on one process, new ones are
// not counted until older ones expire, so the gauge stops at this value.
const MAX_TRACKED: usize = 200_000;

pub(super) struct ActiveConversations {
    last_turn: Mutex<HashMap<ConversationId, Instant>>,
    ttl_ms: AtomicU64,
}

impl ActiveConversations {
    pub fn new(ttl: Duration) -> Self {
        Self { last_turn: Mutex::default(), ttl_ms: AtomicU64::new(millis(ttl)) }
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(millis(ttl), Ordering::Relaxed);
    }

    /// Records a turn of `id` now.
    pub fn touch(&self, id: &ConversationId) {
        let now = Instant::now();
        let mut last_turn = self.last_turn.lock().expect("active conversations lock poisoned");
        if let Some(at) = last_turn.get_mut(id) {
            *at = now;
            return;
        }
        if last_turn.len() >= MAX_TRACKED {
            self.remove_expired(&mut last_turn, now);
        }
        if last_turn.len() < MAX_TRACKED {
            last_turn.insert(id.clone(), now);
        }
    }

    /// Forgets conversations idle longer than the TTL and counts the rest.
    pub fn count(&self) -> usize {
        let mut last_turn = self.last_turn.lock().expect("active conversations lock poisoned");
        self.remove_expired(&mut last_turn, Instant::now());
        last_turn.len()
    }

    fn remove_expired(&self, last_turn: &mut HashMap<ConversationId, Instant>, now: Instant) {
        let ttl = Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed));
        last_turn.retain(|_, at| now.duration_since(*at) < ttl);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_forgets_idle_conversations() {
        let active = ActiveConversations::new(Duration::from_secs(60));
        active.touch(&ConversationId::new("web:1"));
        active.touch(&ConversationId::new("web:2"));
        active.touch(&ConversationId::new("web:1"));

        assert_eq!(active.count(), 2);

        active.set_ttl(Duration::ZERO);
        assert_eq!(active.count(), 0);
    }
}
