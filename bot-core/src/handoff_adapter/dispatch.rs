//! The task that feeds a [`HandoffAdapter`] from the engine's event feed.
//!
//! It forwards only the events this server process committed, so that with
//! several servers sharing a store each event reaches the helpdesk once. Events
//! of one conversation go to one lane, a task that calls the adapter in order.
//! Lanes run concurrently, so a slow helpdesk call holds up only the
//! conversations hashed to its lane. Turns never wait for the dispatcher: the
//! feed is a broadcast channel, and a full lane drops the event with a warning.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::{AdapterError, HandoffAdapter, HandoffEnd, HandoffEnded, HandoffStarted};
use crate::engine::{Engine, EngineError, FeedEvent};
use crate::event::{Event, EventKind};
use crate::handoff::HandoffState;
use crate::ids::{ConversationId, IntentId};

/// Retry and buffer settings of the dispatcher.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// Calls per event, the first included, while the adapter reports a transient error.
    pub attempts: u32,
    /// The wait before the first retry; it doubles before each later one.
    pub retry_delay: Duration,
    /// Concurrent lanes; each conversation always uses the same one.
    pub lanes: usize,
    /// Events buffered per lane before new ones are dropped.
    pub lane_capacity: usize,
    /// The maximum number of transcript events sent when a handoff starts.
    pub transcript_limit: usize,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self { attempts: 4, retry_delay: Duration::from_millis(500), lanes: 8, lane_capacity: 512, transcript_limit: 200 }
    }
}

/// Subscribes to the engine's events and spawns the task that forwards them
/// to `adapter`. The task runs until it is aborted or the runtime stops.
pub fn spawn_dispatcher(engine: Engine, adapter: Arc<dyn HandoffAdapter>, config: DispatcherConfig) -> JoinHandle<()> {
    // Subscribing before the spawn means no event committed after this call is missed.
    let feed = engine.subscribe_all();
    tracing::info!(adapter = adapter.name(), lanes = config.lanes, "forwarding conversations with people to the helpdesk");
    tokio::spawn(run(engine, adapter, feed, config))
}

async fn run(engine: Engine, adapter: Arc<dyn HandoffAdapter>, mut feed: broadcast::Receiver<FeedEvent>, config: DispatcherConfig) {
    let lanes: Vec<mpsc::Sender<Event>> = (0..config.lanes.max(1))
        .map(|_| {
            let (sender, receiver) = mpsc::channel(config.lane_capacity.max(1));
            tokio::spawn(run_lane(engine.clone(), adapter.clone(), receiver, config.clone()));
            sender
        })
        .collect();

    loop {
        let event = match feed.recv().await {
            Ok(FeedEvent { event, local: true }) => event,
            Ok(FeedEvent { local: false, .. }) => continue,
            Err(RecvError::Lagged(skipped)) => {
                tracing::warn!(adapter = adapter.name(), skipped, "the handoff dispatcher fell behind the event feed; skipped events were not forwarded");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let lane = &lanes[lane_of(&event, lanes.len())];
        if let Err(mpsc::error::TrySendError::Full(event)) = lane.try_send(event) {
            tracing::warn!(adapter = adapter.name(), conversation_id = %event.conversation_id, seq = event.seq, "the helpdesk is behind and the conversation's lane is full; event not forwarded");
        }
    }
}

fn lane_of(event: &Event, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    event.conversation_id.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

async fn run_lane(engine: Engine, adapter: Arc<dyn HandoffAdapter>, mut events: mpsc::Receiver<Event>, config: DispatcherConfig) {
    let mut lane = Lane { engine, limit: config.transcript_limit, started: HashMap::new() };
    while let Some(event) = events.recv().await {
        match lane.delivery_for(&event).await {
            Ok(Some(delivery)) => deliver(adapter.as_ref(), &delivery, &event, &config).await,
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(adapter = adapter.name(), conversation_id = %event.conversation_id, seq = event.seq, %error, "cannot read the conversation to forward its event; event not forwarded");
            }
        }
    }
}

/// The number of handoff starts a lane keeps; when full, it clears them all.
const MAX_STARTED: usize = 100_000;

/// One lane's view of its conversations.
struct Lane {
    engine: Engine,
    limit: usize,
    /// The `seq` of the start notice of each conversation with people whose
    /// start this lane forwarded. A conversation handed off before this process
    /// started, or on another server, is not here and is decided from its session.
    started: HashMap<ConversationId, u64>,
}

/// The adapter call that one event leads to.
#[derive(Debug)]
enum Delivery {
    Started(HandoffStarted),
    Event,
    Ended(HandoffEnded),
}

impl Lane {
    /// Decides what, if anything, the adapter hears about `event`.
    async fn delivery_for(&mut self, event: &Event) -> Result<Option<Delivery>, EngineError> {
        let id = &event.conversation_id;
        let notice = event.reply().and_then(|reply| reply.handoff.as_ref());
        if let Some(notice) = notice {
            match (&notice.state, &notice.reason) {
                (HandoffState::WaitingForAgent { since, .. }, Some(reason)) => {
                    if self.started.len() >= MAX_STARTED {
                        self.started.clear();
                    }
                    self.started.insert(id.clone(), event.seq);
                    let started = handoff_started(&self.engine, event, *since, reason.clone(), self.limit).await?;
                    return Ok(started.map(Delivery::Started));
                }
                (HandoffState::Bot, _) => {
                    self.started.remove(id);
                    return Ok(Some(ended(event, HandoffEnd::HandedBack)));
                }
                (HandoffState::Closed { .. }, _) => {
                    self.started.remove(id);
                    return Ok(Some(ended(event, HandoffEnd::Closed)));
                }
                _ => return Ok(Some(Delivery::Event)),
            }
        }

        // Events before the start notice are part of the start's transcript.
        if let Some(start) = self.started.get(id) {
            return Ok((event.seq > *start).then_some(Delivery::Event));
        }
        let Some(session) = self.engine.session(id).await? else { return Ok(None) };
        let forward = match session.handoff {
            HandoffState::WaitingForAgent { since, .. } => event.at > since || !precedes_handoff(&self.engine, event).await?,
            HandoffState::Agent { .. } => true,
            HandoffState::Bot | HandoffState::Closed { .. } => false,
        };
        Ok(forward.then_some(Delivery::Event))
    }
}

fn ended(event: &Event, end: HandoffEnd) -> Delivery {
    Delivery::Ended(HandoffEnded { conversation_id: event.conversation_id.clone(), end, event: event.clone() })
}

/// Builds the start of a handoff from the session and the transcript up to `notice`.
async fn handoff_started(
    engine: &Engine,
    notice: &Event,
    since: crate::message::Timestamp,
    reason: crate::handoff::HandoffReason,
    limit: usize,
) -> Result<Option<HandoffStarted>, EngineError> {
    let id = &notice.conversation_id;
    let Some(session) = engine.session(id).await? else {
        tracing::warn!(conversation_id = %id, "the handed-off conversation has no session; not forwarding it");
        return Ok(None);
    };
    let limit = limit.max(1);
    let after = notice.seq.saturating_sub(limit as u64);
    let mut transcript = engine.events(id, after, limit).await?;
    transcript.retain(|event| event.seq <= notice.seq);
    if transcript.last().map(|event| event.seq) != Some(notice.seq) {
        transcript.push(notice.clone());
    }

    let mut intents: Vec<IntentId> = Vec::new();
    for event in &transcript {
        if let EventKind::Customer { understanding: Some(understanding), .. } = &event.kind {
            if let Some(intent) = understanding.intent.as_ref().filter(|intent| !intents.contains(intent)) {
                intents.push(intent.clone());
            }
        }
    }

    Ok(Some(HandoffStarted {
        conversation_id: id.clone(),
        channel: session.channel,
        lang: session.lang,
        reason,
        since,
        transcript,
        slots: session.slots.into_iter().collect(),
        intents,
    }))
}

/// True when a handoff start notice follows `event` closely: the event was
/// committed no later than the start and belongs to its transcript.
async fn precedes_handoff(engine: &Engine, event: &Event) -> Result<bool, EngineError> {
    /// Events a turn or two add after one event, at most, in practice.
    const FOLLOWING: usize = 32;
    let following = engine.events(&event.conversation_id, event.seq, FOLLOWING).await?;
    let is_start = |later: &Event| {
        let notice = later.reply().and_then(|reply| reply.handoff.as_ref());
        notice.is_some_and(|notice| matches!(notice.state, HandoffState::WaitingForAgent { .. }) && notice.reason.is_some())
    };
    Ok(following.iter().any(is_start))
}

/// Calls the adapter, retrying transient failures with a doubling delay.
async fn deliver(adapter: &dyn HandoffAdapter, delivery: &Delivery, event: &Event, config: &DispatcherConfig) {
    let mut delay = config.retry_delay;
    let attempts = config.attempts.max(1);
    for attempt in 1..=attempts {
        let result = match delivery {
            Delivery::Started(started) => adapter.handoff_started(started).await,
            Delivery::Event => adapter.conversation_event(event).await,
            Delivery::Ended(ended) => adapter.handoff_ended(ended).await,
        };
        let error = match result {
            Ok(()) => return,
            Err(error) => error,
        };
        let retry = error.is_transient() && attempt < attempts;
        let cause = error_chain(&error);
        if retry {
            tracing::warn!(adapter = adapter.name(), conversation_id = %event.conversation_id, seq = event.seq, attempt, error = %cause, "helpdesk call failed; retrying");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        } else {
            log_dropped(adapter, event, attempt, &error, &cause);
            return;
        }
    }
}

fn log_dropped(adapter: &dyn HandoffAdapter, event: &Event, attempts: u32, error: &AdapterError, cause: &str) {
    let transient = error.is_transient();
    tracing::error!(adapter = adapter.name(), conversation_id = %event.conversation_id, seq = event.seq, attempts, transient, error = %cause, "helpdesk call failed; the event is not forwarded");
}

/// Joins an error's messages with its sources' messages, for one log field.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
