//! The console WebSocket, `GET /console/api/ws`: the queue at connect and
//! after every change, the events of the conversations the client watches,
//! and customer presence changes.
//!
//! Server frames (JSON text):
//! - `{"type":"queue","waiting":[..],"mine":[..],"others":[..]}`
//! - `{"type":"event","event":EVENT}` for watched conversations, notes included
//! - `{"type":"presence","conversation_id":ID,"presence":"online"|"left"|"unknown"}`
//! - `{"type":"error","code":CODE,"message":TEXT}` for a client frame it cannot use
//!
//! Client frames: `{"type":"watch","conversation_id":ID,"after":SEQ}` (`after`
//! optional: without it, events from now on) and `{"type":"unwatch","conversation_id":ID}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bot_core::{ConversationId, Event};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tracing::Instrument;

use super::error::ConsoleError;
use super::presence::PresenceChange;
use super::queue::QueueSnapshot;
use super::session::{check_origin, now_seconds, verify_session, SignedIn};
use crate::error::WebError;
use crate::state::WebState;

/// The largest frame a client may send.
const MAX_CLIENT_FRAME_BYTES: usize = 4096;

/// How long one frame may take to send before the client counts as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Conversations one socket may watch at once.
pub const MAX_WATCHED: usize = 32;

/// Transcript events read per call while catching up a watched conversation.
const REPLAY_PAGE: usize = 200;

/// Events from watch tasks waiting to be sent.
const EVENT_BUFFER: usize = 256;

pub(crate) async fn console_socket(
    State(state): State<WebState>,
    agent: SignedIn,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ConsoleError> {
    check_origin(&headers)?;
    let upgrade = upgrade.map_err(|rejection| WebError::NotWebSocket { detail: rejection.body_text().to_lowercase() })?;
    if *state.closing().borrow() {
        return Err(WebError::ShuttingDown.into());
    }
    let permit = state.sockets().clone().try_acquire_owned().map_err(|_| WebError::TooManySockets)?;

    let span = tracing::info_span!("console_websocket", agent = %agent.name);
    let upgrade = upgrade.max_message_size(MAX_CLIENT_FRAME_BYTES).max_frame_size(MAX_CLIENT_FRAME_BYTES);
    Ok(upgrade.on_upgrade(move |socket| {
        async move {
            let mut console = ConsoleStream::new(state, agent, socket);
            let end = console.run().await;
            console.stop_watching();
            end.log();
            drop(permit);
        }
        .instrument(span)
    }))
}

enum End {
    ClientClosed,
    ServerClosing,
    ClientSilent,
    SignedOut,
    SendFailed,
}

impl End {
    fn log(&self) {
        match self {
            Self::ClientClosed => tracing::debug!("console websocket closed by the client"),
            Self::ServerClosing => tracing::debug!("console websocket closed for shutdown"),
            Self::ClientSilent => tracing::debug!("console websocket closed: client sent nothing for three ping intervals"),
            Self::SignedOut => tracing::info!("console websocket closed: the session ended"),
            Self::SendFailed => tracing::debug!("console websocket closed: sending to the client failed"),
        }
    }

    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::ClientClosed | Self::SendFailed => return None,
            Self::ServerClosing => (close_code::AWAY, "server shutting down; reconnect later"),
            Self::ClientSilent => (close_code::AWAY, "no answer to pings"),
            Self::SignedOut => (close_code::POLICY, "session ended; sign in again"),
        };
        Some(CloseFrame { code, reason: reason.into() })
    }
}

/// A client frame.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Watch {
        conversation_id: String,
        #[serde(default)]
        after: Option<u64>,
    },
    Unwatch {
        conversation_id: String,
    },
}

struct ConsoleStream {
    state: WebState,
    agent: SignedIn,
    socket: SplitSink<WebSocket, Message>,
    frames: SplitStream<WebSocket>,
    watched: HashMap<ConversationId, JoinHandle<()>>,
    events_in: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
}

impl ConsoleStream {
    fn new(state: WebState, agent: SignedIn, socket: WebSocket) -> Self {
        let (socket, frames) = socket.split();
        let (events_in, events) = mpsc::channel(EVENT_BUFFER);
        Self { state, agent, socket, frames, watched: HashMap::new(), events_in, events }
    }

    async fn run(&mut self) -> End {
        let end = self.stream().await;
        if let Some(frame) = end.close_frame() {
            let _ = timeout(SEND_TIMEOUT, self.socket.send(Message::Close(Some(frame)))).await;
        }
        end
    }

    async fn stream(&mut self) -> End {
        let mut queue = self.state.console().queue_feed().subscribe(&self.state);
        let mut presence = self.state.console().presence().subscribe();
        match QueueSnapshot::read(self.state.engine(), self.state.console().presence()).await {
            Ok(snapshot) => {
                if let Err(end) = self.send_queue(&snapshot).await {
                    return end;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the console queue; the socket sends it after the next change"),
        }

        let mut closing = self.state.closing();
        let interval = self.state.config().ping_interval;
        let mut pings = tokio::time::interval_at(Instant::now() + interval, interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();

        loop {
            if *closing.borrow_and_update() {
                return End::ServerClosing;
            }
            let step = tokio::select! {
                _ = closing.changed() => Err(End::ServerClosing),
                changed = queue.changed() => match changed {
                    Ok(()) => {
                        let snapshot = queue.borrow_and_update().clone();
                        self.send_queue(&snapshot).await
                    }
                    // The queue task stopped (shutdown); keep serving events.
                    Err(_) => {
                        queue = self.state.console().queue_feed().subscribe(&self.state);
                        Ok(())
                    }
                },
                Some(event) = self.events.recv() => self.send_json(&json!({ "type": "event", "event": event })).await,
                change = presence.recv() => self.forward_presence(change).await,
                frame = self.frames.next() => match frame {
                    None | Some(Err(_)) => Err(End::ClientClosed),
                    Some(Ok(frame)) => {
                        last_heard = Instant::now();
                        self.handle_frame(frame).await
                    }
                },
                _ = pings.tick() => self.tick(last_heard, interval).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn tick(&mut self, last_heard: Instant, interval: Duration) -> Result<(), End> {
        if last_heard.elapsed() > interval * 3 {
            return Err(End::ClientSilent);
        }
        if !self.still_signed_in().await {
            return Err(End::SignedOut);
        }
        self.send(Message::Ping(Default::default())).await
    }

    /// Checks the session again: it may have expired, or the agent's password
    /// changed or account gone. An unreadable accounts file keeps the socket.
    async fn still_signed_in(&self) -> bool {
        match self.state.console().accounts().current().await {
            Ok(Some(accounts)) => verify_session(&accounts, &self.agent.token, now_seconds()).is_some(),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    async fn forward_presence(&mut self, change: Result<PresenceChange, RecvError>) -> Result<(), End> {
        match change {
            Ok(change) => {
                let frame = json!({ "type": "presence", "conversation_id": change.conversation_id, "presence": change.presence });
                self.send_json(&frame).await
            }
            // Missed changes show in the next queue push.
            Err(RecvError::Lagged(_)) => Ok(()),
            Err(RecvError::Closed) => Ok(()),
        }
    }

    async fn handle_frame(&mut self, frame: Message) -> Result<(), End> {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => return Err(End::ClientClosed),
            _ => return Ok(()),
        };
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Watch { conversation_id, after }) => self.watch(&conversation_id, after).await,
            Ok(ClientFrame::Unwatch { conversation_id }) => {
                if let Some(task) = self.watched.remove(&ConversationId::new(conversation_id)) {
                    task.abort();
                }
                Ok(())
            }
            Err(error) => self.send_error("invalid_frame", &format!("cannot read the frame: {error}")).await,
        }
    }

    async fn watch(&mut self, raw: &str, after: Option<u64>) -> Result<(), End> {
        let id = match crate::input::conversation_id(raw) {
            Ok(id) => id,
            Err(error) => return self.send_error(error.code(), &error.to_string()).await,
        };
        if self.watched.contains_key(&id) {
            return Ok(());
        }
        if self.watched.len() >= MAX_WATCHED {
            return self.send_error("too_many_watched", &format!("a console socket watches at most {MAX_WATCHED} conversations: unwatch one first")).await;
        }
        let task = tokio::spawn(watch_conversation(self.state.clone(), id.clone(), after, self.events_in.clone()).in_current_span());
        self.watched.insert(id, task);
        Ok(())
    }

    fn stop_watching(&mut self) {
        for (_, task) in self.watched.drain() {
            task.abort();
        }
    }

    async fn send_queue(&mut self, snapshot: &QueueSnapshot) -> Result<(), End> {
        let view = snapshot.view_for(&self.agent.name);
        let frame = json!({ "type": "queue", "waiting": view.waiting, "mine": view.mine, "others": view.others });
        self.send_json(&frame).await
    }

    async fn send_error(&mut self, code: &str, message: &str) -> Result<(), End> {
        self.send_json(&json!({ "type": "error", "code": code, "message": message })).await
    }

    async fn send_json(&mut self, value: &serde_json::Value) -> Result<(), End> {
        self.send(Message::Text(value.to_string().into())).await
    }

    async fn send(&mut self, message: Message) -> Result<(), End> {
        match timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(End::SendFailed),
        }
    }
}

/// Passes the conversation's events after `after` (or from now on) to the
/// socket, in `seq` order with no gaps, reading skipped ones back from the store.
async fn watch_conversation(state: WebState, id: ConversationId, after: Option<u64>, out: mpsc::Sender<Event>) {
    let engine = state.engine();
    let mut live = engine.subscribe(&id);
    let mut last_sent = match after {
        Some(after) => after,
        None => match engine.session(&id).await {
            Ok(session) => session.map_or(0, |session| session.next_seq.saturating_sub(1)),
            Err(error) => {
                tracing::warn!(conversation_id = %id, %error, "cannot read the watched conversation");
                return;
            }
        },
    };
    if catch_up(&state, &id, &mut last_sent, &out).await.is_err() {
        return;
    }
    loop {
        let event = match live.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => {
                if catch_up(&state, &id, &mut last_sent, &out).await.is_err() {
                    return;
                }
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if event.seq <= last_sent {
            continue;
        }
        if event.seq > last_sent + 1 && catch_up(&state, &id, &mut last_sent, &out).await.is_err() {
            return;
        }
        if event.seq > last_sent {
            last_sent = event.seq;
            if out.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// Sends every stored event after `last_sent`; `Err` when the socket is gone or the store failed.
async fn catch_up(state: &WebState, id: &ConversationId, last_sent: &mut u64, out: &mpsc::Sender<Event>) -> Result<(), ()> {
    loop {
        let page = match state.engine().events(id, *last_sent, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(conversation_id = %id, %error, "cannot read the watched conversation's events");
                return Err(());
            }
        };
        let complete = page.len() < REPLAY_PAGE;
        for event in page {
            if event.seq > *last_sent {
                *last_sent = event.seq;
                out.send(event).await.map_err(|_| ())?;
            }
        }
        if complete {
            return Ok(());
        }
    }
}
