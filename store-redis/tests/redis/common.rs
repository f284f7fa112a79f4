//! Sessions, events and waiting helpers shared by the tests.

use std::future::Future;
use std::time::Duration;

use bot_core::{Channel, ConversationId, Event, EventKind, Lang, Reply, Session};

/// A TTL no test outlives.
pub const TTL: Duration = Duration::from_secs(600);

/// How long a test waits for something that should happen at once, before it
/// fails instead of hanging. It bounds a wait; it asserts no speed.
pub const GUARD: Duration = Duration::from_secs(20);

pub fn session(id: &str) -> Session {
    Session::new(ConversationId::new(id), Channel::new("web"), Lang::new("en"), 1_767_225_600_000)
}

pub fn reply_event(id: &str, seq: u64) -> Event {
    Event { conversation_id: ConversationId::new(id), seq, at: 1_767_225_600_000 + seq, kind: EventKind::Reply(Reply::bot(format!("回复 {seq}"))) }
}

/// Awaits `future`, failing after [`GUARD`] with `what` in the error.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(GUARD, future).await.map_err(|_| anyhow::anyhow!("{what} did not finish within {} s", GUARD.as_secs()))
}
