//! The queue: conversations waiting for an agent and those agents handle,
//! for `GET /console/api/queue` and the console WebSocket's pushes.
//!
//! One task per server builds the queue after changes and shares it with
//! every console socket, so that a busy server reads the store once per
//! change, not once per agent. It runs while a console socket is open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use bot_core::engine::{FeedEvent, HandoffEntry};
use bot_core::message::now_millis;
use bot_core::{AgentId, Channel, ConversationId, Engine, EngineError, HandoffReason, HandoffState, Lang, Timestamp};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::error::ConsoleError;
use super::presence::{Presence, PresenceBook};
use super::session::SignedIn;
use crate::error::WebError;
use crate::state::WebState;

/// How long the queue task waits after a change for more changes before it reads the queue.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// How often the queue task reads the queue without a change, to catch changes
/// whose events it missed (another server's, after a gap in the store's feed).
const REFRESH: Duration = Duration::from_secs(15);

/// One conversation in the queue.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueItem {
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    /// `waiting` or `agent`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<HandoffReason>,
    /// When the conversation joined the queue or its agent took it, in ms since the Unix epoch.
    pub since: Timestamp,
    pub waiting_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_customer_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    pub presence: Presence,
}

/// The queue as one agent sees it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueView {
    /// Waiting for an agent, longest-waiting first.
    pub waiting: Vec<QueueItem>,
    /// Handled by the agent asking.
    pub mine: Vec<QueueItem>,
    /// Handled by other agents.
    pub others: Vec<QueueItem>,
}

/// Every conversation with people, as the engine listed it.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueueSnapshot {
    pub items: Vec<QueueItem>,
}

impl QueueSnapshot {
    pub(crate) async fn read(engine: &Engine, presence: &PresenceBook) -> Result<Self, EngineError> {
        let now = now_millis();
        let entries = engine.handoffs().await?;
        let items = entries.into_iter().filter_map(|entry| item(entry, now, presence)).collect();
        Ok(Self { items })
    }

    pub(crate) fn contains(&self, id: &ConversationId) -> bool {
        self.items.iter().any(|item| &item.conversation_id == id)
    }

    /// Splits the queue into waiting, the agent's own and others'.
    pub(crate) fn view_for(&self, agent: &AgentId) -> QueueView {
        let mut view = QueueView::default();
        for item in &self.items {
            match &item.agent {
                None => view.waiting.push(item.clone()),
                Some(owner) if owner == agent => view.mine.push(item.clone()),
                Some(_) => view.others.push(item.clone()),
            }
        }
        view.waiting.sort_by_key(|item| item.since);
        view
    }
}

fn item(entry: HandoffEntry, now: Timestamp, presence: &PresenceBook) -> Option<QueueItem> {
    let (state, agent) = match &entry.state {
        HandoffState::WaitingForAgent { .. } => ("waiting", None),
        HandoffState::Agent { agent, .. } => ("agent", Some(agent.clone())),
        HandoffState::Bot | HandoffState::Closed { .. } => return None,
    };
    Some(QueueItem {
        presence: presence.get(&entry.conversation_id),
        conversation_id: entry.conversation_id,
        channel: entry.channel,
        lang: entry.lang,
        state,
        agent,
        reason: entry.reason,
        since: entry.since,
        waiting_seconds: now.saturating_sub(entry.since) / 1000,
        last_customer_at: entry.last_customer_at,
        preview: entry.preview,
    })
}

/// `GET /console/api/queue`.
pub(crate) async fn queue(State(state): State<WebState>, agent: SignedIn) -> Result<Json<QueueView>, ConsoleError> {
    let snapshot = QueueSnapshot::read(state.engine(), state.console().presence()).await;
    let snapshot = snapshot.map_err(|source| WebError::Engine { conversation_id: None, source })?;
    Ok(Json(snapshot.view_for(&agent.name)))
}

/// The shared queue task and the latest queue it read.
#[derive(Default)]
pub(crate) struct QueueFeed {
    sender: Mutex<Option<watch::Sender<Arc<QueueSnapshot>>>>,
}

impl QueueFeed {
    /// Returns a receiver of the queue, starting the queue task when none runs.
    /// The receiver holds the queue as last read, or an empty one until the
    /// task's first read.
    pub(crate) fn subscribe(&self, state: &WebState) -> watch::Receiver<Arc<QueueSnapshot>> {
        let mut sender = self.sender.lock().expect("queue feed lock poisoned");
        if let Some(sender) = sender.as_ref() {
            return sender.subscribe();
        }
        let (new_sender, receiver) = watch::channel(Arc::new(QueueSnapshot::default()));
        *sender = Some(new_sender.clone());
        tokio::spawn(run(state.clone(), new_sender));
        receiver
    }

    /// Called by the task when no socket listens: stops it unless one just subscribed.
    fn stop_if_unused(&self, sender: &watch::Sender<Arc<QueueSnapshot>>) -> bool {
        let mut shared = self.sender.lock().expect("queue feed lock poisoned");
        if sender.receiver_count() > 0 {
            return false;
        }
        *shared = None;
        true
    }
}

async fn run(state: WebState, sender: watch::Sender<Arc<QueueSnapshot>>) {
    let mut feed = state.engine().subscribe_all();
    let mut presence = state.console().presence().subscribe();
    let mut closing = state.closing();
    tracing::debug!("console queue task started");

    let mut dirty = true;
    loop {
        if dirty {
            tokio::time::sleep(DEBOUNCE).await;
            drain(&mut feed);
            match QueueSnapshot::read(state.engine(), state.console().presence()).await {
                Ok(snapshot) => {
                    sender.send_replace(Arc::new(snapshot));
                }
                Err(error) => tracing::warn!(%error, "cannot read the console queue; retrying on the next change"),
            }
            dirty = false;
        }

        tokio::select! {
            received = feed.recv() => match received {
                Ok(FeedEvent { event, .. }) => dirty = changes_queue(&event, &sender.borrow()),
                Err(RecvError::Lagged(_)) => dirty = true,
                Err(RecvError::Closed) => break,
            },
            changed = presence.recv() => dirty = !matches!(changed, Err(RecvError::Closed)),
            () = tokio::time::sleep(REFRESH) => dirty = true,
            () = sender.closed() => {
                if state.console().queue_feed().stop_if_unused(&sender) {
                    break;
                }
            }
            _ = closing.changed() => break,
        }
    }
    tracing::debug!("console queue task stopped");
}

/// Skips the events already waiting; the read that follows covers them.
fn drain(feed: &mut tokio::sync::broadcast::Receiver<FeedEvent>) {
    use tokio::sync::broadcast::error::TryRecvError;
    while matches!(feed.try_recv(), Ok(_) | Err(TryRecvError::Lagged(_))) {}
}

/// True when the event may change the queue: a change of who handles a
/// conversation, or anything in a conversation already in the queue.
fn changes_queue(event: &bot_core::Event, snapshot: &QueueSnapshot) -> bool {
    let handoff_notice = event.reply().is_some_and(|reply| reply.handoff.is_some());
    handoff_notice || snapshot.contains(&event.conversation_id)
}
