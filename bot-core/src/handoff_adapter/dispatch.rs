//! The task that feeds a [`HandoffAdapter`] from the engine's event feed.
//!
//! It forwards only the events this server process committed, so that with
//! several servers sharing a store each event reaches the helpdesk once. Events
//! of one conversation go to one lane, a task that calls the adapter in order;
//! lanes run concurrently, so a slow helpdesk call holds up only the
//! conversations hashed to its lane. Turns never wait for the dispatcher: the
//! feed is a broadcast channel, and a full lane drops the event with a warning.

use std::collections::hash_map::DefaultHasher;
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
use crate::ids::IntentId;

/// How the dispatcher retries and buffers.
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
    /// The most transcript events sent when a handoff starts.
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
    while let Some(event) = events.recv().await {
        match delivery_for(&engine, &event, config.transcript_limit).await {
            Ok(Some(delivery)) => deliver(adapter.as_ref(), &delivery, &event, &config).await,
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(adapter = adapter.name(), conversation_id = %event.conversation_id, seq = event.seq, %error, "cannot read the conversation to forward its event; event not forwarded");
            }
        }
    }
}

/// What the adapter hears about one event.
#[derive(Debug)]
enum Delivery {
    Started(HandoffStarted),
    Event,
    Ended(HandoffEnded),
}

/// Decides what, if anything, the adapter hears about `event`.
async fn delivery_for(engine: &Engine, event: &Event, transcript_limit: usize) -> Result<Option<Delivery>, EngineError> {
    let notice = event.reply().and_then(|reply| reply.handoff.as_ref());
    if let Some(notice) = notice {
        match (&notice.state, &notice.reason) {
            (HandoffState::WaitingForAgent { since, .. }, Some(reason)) => {
                let started = handoff_started(engine, event, *since, reason.clone(), transcript_limit).await?;
                return Ok(started.map(Delivery::Started));
            }
            (HandoffState::Bot, _) => return Ok(Some(ended(event, HandoffEnd::HandedBack))),
            (HandoffState::Closed { .. }, _) => return Ok(Some(ended(event, HandoffEnd::Closed))),
            _ => return Ok(Some(Delivery::Event)),
        }
    }

    let Some(session) = engine.session(&event.conversation_id).await? else { return Ok(None) };
    if !session.handoff.is_human() {
        return Ok(None);
    }
    if matches!(event.kind, EventKind::Customer { .. }) && started_handoff(engine, event).await? {
        // The message that made the bot hand off is part of the start's transcript.
        return Ok(None);
    }
    Ok(Some(Delivery::Event))
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

/// True when the turn of `customer` (a customer event) ended with the bot handing off.
async fn started_handoff(engine: &Engine, customer: &Event) -> Result<bool, EngineError> {
    /// Replies one turn can add after the customer's message, at most, in practice.
    const TURN_EVENTS: usize = 16;
    let following = engine.events(&customer.conversation_id, customer.seq, TURN_EVENTS).await?;
    for event in following {
        if matches!(event.kind, EventKind::Customer { .. }) {
            break;
        }
        let notice = event.reply().and_then(|reply| reply.handoff.as_ref());
        if notice.is_some_and(|notice| matches!(notice.state, HandoffState::WaitingForAgent { .. }) && notice.reason.is_some()) {
            return Ok(true);
        }
    }
    Ok(false)
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
