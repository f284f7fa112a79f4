//! The cap on conversations one server process serves at once, so that past
//! it new customers get a short "busy, please retry" reply while the
//! conversations already going on keep their speed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::ids::ConversationId;
use crate::message::Timestamp;

/// The maximum number of conversations this process serves at once. A conversation is
/// *active* while one of its turns runs on this process and for `idle_window`
/// after its last turn here ended. A turn of an active conversation always
/// runs. A turn of any other conversation runs only while fewer than
/// `max_conversations` are active, and otherwise fails with
/// [`EngineError::TooManyConversations`](super::EngineError::TooManyConversations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveLimit {
    pub max_conversations: usize,
    pub idle_window: Duration,
}

impl Default for ActiveLimit {
    // NOTE: 10,000 conversations within 5 minutes is a starting point, not a
    // measured capacity. Size it from the turn rate that a load test of your
    // bot and hardware sustains.
    fn default() -> Self {
        Self { max_conversations: 10_000, idle_window: Duration::from_secs(300) }
    }
}

/// The conversations active on this process, under [`ActiveLimit`]. It
/// tracks at most `max_conversations` of them, which bounds its memory.
pub(crate) struct ActiveConversations {
    state: Mutex<State>,
}

struct State {
    limit: Option<ActiveLimit>,
    conversations: HashMap<ConversationId, Activity>,
    /// No idle conversation expires before this time, so a rejection before
    /// it skips the scan for expired ones. `None` when none is idle.
    earliest_expiry: Option<Timestamp>,
    /// Rejections since the last warning. The warning, with this count, is
    /// logged at most once per `WARNING_INTERVAL_MS` (a minute) of clock time.
    rejected_since_warning: u64,
    last_warning: Option<Timestamp>,
}

#[derive(Clone, Copy)]
struct Activity {
    running: u32,
    last_ended: Timestamp,
}

/// A turn rejected at the cap, with the time until a place may free up.
pub(crate) struct Rejected {
    pub max_conversations: usize,
    pub retry_after: Duration,
}

const WARNING_INTERVAL_MS: u64 = 60_000;

impl ActiveConversations {
    pub fn new(limit: Option<ActiveLimit>) -> Self {
        let state = State { limit, conversations: HashMap::new(), earliest_expiry: None, rejected_since_warning: 0, last_warning: None };
        Self { state: Mutex::new(state) }
    }

    pub fn set_limit(&self, limit: Option<ActiveLimit>) {
        let mut state = self.state.lock().expect("active conversations lock poisoned");
        state.limit = limit;
        if limit.is_none() {
            state.conversations.clear();
            state.earliest_expiry = None;
        }
    }

    pub fn limit(&self) -> Option<ActiveLimit> {
        self.state.lock().expect("active conversations lock poisoned").limit
    }

    /// Returns the number of conversations tracked, expired ones included
    /// until a scan removes them.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.state.lock().expect("active conversations lock poisoned").conversations.len()
    }

    /// Removes the expired conversations and returns the number of active ones.
    pub fn count_active(&self, now: Timestamp) -> usize {
        let mut state = self.state.lock().expect("active conversations lock poisoned");
        if let Some(limit) = state.limit {
            state.remove_expired(now, limit.idle_window);
        }
        state.conversations.len()
    }

    /// Admits a turn of `id` at `clock`'s time, or rejects it when `id` is not
    /// active and the limit is reached. The returned guard marks the turn as
    /// ended when dropped, also when the turn's future is cancelled.
    pub fn admit(self: &Arc<Self>, id: &ConversationId, clock: Arc<dyn Clock>) -> Result<Admitted, Rejected> {
        let now = clock.now();
        let mut state = self.state.lock().expect("active conversations lock poisoned");
        let Some(limit) = state.limit else {
            return Ok(Admitted { owner: None, id: id.clone(), clock });
        };

        if let Some(activity) = state.conversations.get_mut(id) {
            activity.running += 1;
            return Ok(Admitted { owner: Some(self.clone()), id: id.clone(), clock });
        }
        if state.conversations.len() >= limit.max_conversations {
            state.remove_expired(now, limit.idle_window);
        }
        if state.conversations.len() >= limit.max_conversations {
            return Err(state.reject(now, limit));
        }

        state.conversations.insert(id.clone(), Activity { running: 1, last_ended: now });
        Ok(Admitted { owner: Some(self.clone()), id: id.clone(), clock })
    }

    fn end(&self, id: &ConversationId, now: Timestamp) {
        let mut state = self.state.lock().expect("active conversations lock poisoned");
        let Some(limit) = state.limit else { return };
        let Some(activity) = state.conversations.get_mut(id) else { return };
        activity.running = activity.running.saturating_sub(1);
        activity.last_ended = activity.last_ended.max(now);
        if activity.running == 0 && state.earliest_expiry.is_none() {
            // Every other idle conversation ended earlier, so this one expires last.
            state.earliest_expiry = Some(now.saturating_add(window_ms(limit.idle_window)));
        }
    }
}

impl State {
    /// Removes the idle conversations whose window has passed, when any may have.
    fn remove_expired(&mut self, now: Timestamp, window: Duration) {
        if self.earliest_expiry.is_none_or(|expiry| now < expiry) {
            return;
        }
        let window = window_ms(window);
        self.conversations.retain(|_, activity| activity.running > 0 || activity.last_ended.saturating_add(window) > now);
        self.earliest_expiry = self
            .conversations
            .values()
            .filter(|activity| activity.running == 0)
            .map(|activity| activity.last_ended.saturating_add(window))
            .min();
    }

    fn reject(&mut self, now: Timestamp, limit: ActiveLimit) -> Rejected {
        let retry_after = match self.earliest_expiry {
            Some(expiry) => Duration::from_millis(expiry.saturating_sub(now)),
            None => limit.idle_window,
        };

        self.rejected_since_warning += 1;
        let warn = self.last_warning.is_none_or(|last| now.saturating_sub(last) >= WARNING_INTERVAL_MS);
        if warn {
            tracing::warn!(
                max_conversations = limit.max_conversations,
                rejected = self.rejected_since_warning,
                "too many active conversations: new conversations get the busy reply until one has been idle long enough"
            );
            self.rejected_since_warning = 0;
            self.last_warning = Some(now);
        }
        Rejected { max_conversations: limit.max_conversations, retry_after: retry_after.max(Duration::from_secs(1)) }
    }
}

fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
}

/// A turn admitted by [`ActiveConversations::admit`]. Dropping it ends the turn.
pub(crate) struct Admitted {
    /// `None` when no limit applied at admission.
    owner: Option<Arc<ActiveConversations>>,
    id: ConversationId,
    clock: Arc<dyn Clock>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            owner.end(&self.id, self.clock.now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn limit(max_conversations: usize) -> Arc<ActiveConversations> {
        Arc::new(ActiveConversations::new(Some(ActiveLimit { max_conversations, idle_window: Duration::from_secs(60) })))
    }

    fn id(name: &str) -> ConversationId {
        ConversationId::new(name)
    }

    #[test]
    fn admit_rejects_new_conversation_at_the_limit() {
        let active = limit(2);
        let clock: Arc<ManualClock> = Arc::new(ManualClock::new(1_000_000));
        drop(active.admit(&id("a"), clock.clone()).ok());
        drop(active.admit(&id("b"), clock.clone()).ok());

        let rejected = active.admit(&id("c"), clock.clone()).err().expect("c admitted past the limit");

        assert_eq!(rejected.max_conversations, 2);
        assert_eq!(rejected.retry_after, Duration::from_secs(60));
        assert!(active.admit(&id("a"), clock.clone()).is_ok(), "an active conversation goes on");
    }

    #[test]
    fn admit_frees_a_place_after_the_idle_window() {
        let active = limit(1);
        let clock = Arc::new(ManualClock::new(1_000_000));
        drop(active.admit(&id("a"), clock.clone()).ok());
        clock.advance(Duration::from_secs(59));
        assert!(active.admit(&id("b"), clock.clone()).is_err());

        clock.advance(Duration::from_secs(1));

        assert!(active.admit(&id("b"), clock.clone()).is_ok());
        assert_eq!(active.tracked(), 1);
    }

    #[test]
    fn running_turn_keeps_its_conversation_active() {
        let active = limit(1);
        let clock = Arc::new(ManualClock::new(1_000_000));
        let running = active.admit(&id("a"), clock.clone()).ok();
        clock.advance(Duration::from_secs(600));

        let rejected = active.admit(&id("b"), clock.clone()).err().expect("b admitted while a runs");

        assert_eq!(rejected.retry_after, Duration::from_secs(60), "a frees its place a window after it ends");
        drop(running);
        clock.advance(Duration::from_secs(60));
        assert!(active.admit(&id("b"), clock.clone()).is_ok());
    }

    #[test]
    fn tracked_conversations_stay_within_the_limit() {
        let active = limit(100);
        let clock = Arc::new(ManualClock::new(1_000_000));

        for index in 0..1000 {
            drop(active.admit(&id(&format!("c{index}")), clock.clone()));
            clock.advance(Duration::from_secs(1));
        }

        assert!(active.tracked() <= 100, "{} conversations tracked", active.tracked());
    }

    #[test]
    fn no_limit_admits_everything_and_tracks_nothing() {
        let active = Arc::new(ActiveConversations::new(None));
        let clock = Arc::new(ManualClock::new(1_000_000));

        for index in 0..100 {
            assert!(active.admit(&id(&format!("c{index}")), clock.clone()).is_ok());
        }

        assert_eq!(active.tracked(), 0);
    }

    #[test]
    fn count_active_leaves_out_expired_conversations() {
        let active = limit(10);
        let clock = Arc::new(ManualClock::new(1_000_000));
        drop(active.admit(&id("a"), clock.clone()));
        clock.advance(Duration::from_secs(30));
        drop(active.admit(&id("b"), clock.clone()));

        clock.advance(Duration::from_secs(31));

        assert_eq!(active.count_active(clock.now()), 1);
    }
}
