//! The customer WebSocket: every event of a conversation, in `seq` order, with
//! no gaps and no duplicates across reconnects.
//!
//! On connect the socket subscribes to the engine's live events first and reads
//! the transcript after `?after=SEQ` second, so an event written in between
//! arrives by one path or the other. From then on it sends each event whose
//! `seq` is greater than the last one sent. When the live receiver lags or
//! skips a `seq`, the missing events are read back from the transcript.
//! Agents' notes are passed over, so the client sees gaps in `seq` where they are.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bot_core::{ConversationId, EngineError, Event};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::client_ip::ClientAddress;
use crate::error::WebError;
use crate::input::{self, ConversationPath, QueryParams};
use crate::state::WebState;
use crate::view::customer_view;

/// Transcript events read per call while catching up.
const REPLAY_PAGE: usize = 200;

/// The largest frame a client may send; clients have nothing to send but pings.
const MAX_CLIENT_FRAME_BYTES: usize = 4096;

/// How long one frame may take to send before the client counts as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Query of `GET /api/v1/conversations/{id}/ws`.
#[derive(Debug, Deserialize)]
pub struct SocketQuery {
    /// Send events with a `seq` greater than this; 0 replays the whole transcript.
    #[serde(default)]
    pub after: u64,
}

pub(crate) async fn customer_socket(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    ConversationPath(id): ConversationPath,
    QueryParams(query): QueryParams<SocketQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, WebError> {
    input::web_conversation(&id)?;
    let upgrade = upgrade.map_err(|rejection| WebError::NotWebSocket { detail: rejection.body_text().to_lowercase() })?;
    state.check_rate(address, None)?;
    if *state.closing().borrow() {
        return Err(WebError::ShuttingDown);
    }
    let permit = state.sockets().clone().try_acquire_owned().map_err(|_| WebError::TooManySockets)?;

    let span = tracing::info_span!("websocket", conversation_id = %id);
    let upgrade = upgrade.max_message_size(MAX_CLIENT_FRAME_BYTES).max_frame_size(MAX_CLIENT_FRAME_BYTES);
    Ok(upgrade.on_upgrade(move |socket| {
        async move {
            // The console shows the customer as online while this guard lives.
            let presence = state.console().presence().opened(&id);
            let end = EventStream::new(state, id, query.after, socket).run().await;
            end.log();
            drop(presence);
            drop(permit);
        }
        .instrument(span)
    }))
}

/// The reason a socket ended.
enum End {
    ClientClosed,
    ServerClosing,
    ClientSilent,
    LiveEventsEnded,
    SendFailed,
    Engine(EngineError),
}

impl End {
    fn log(&self) {
        match self {
            Self::ClientClosed => tracing::debug!("websocket closed by the client"),
            Self::ServerClosing => tracing::debug!("websocket closed for shutdown"),
            Self::ClientSilent => tracing::debug!("websocket closed: client sent nothing for three ping intervals"),
            Self::LiveEventsEnded => tracing::warn!("websocket closed: the engine ended the live event stream"),
            Self::SendFailed => tracing::debug!("websocket closed: sending to the client failed"),
            Self::Engine(error) => tracing::error!(%error, "websocket closed: reading the transcript failed"),
        }
    }

    /// Returns the close frame to send, or `None` when the client is gone already.
    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::ClientClosed | Self::SendFailed => return None,
            Self::ServerClosing => (close_code::AWAY, "server shutting down; reconnect later"),
            Self::ClientSilent => (close_code::AWAY, "no answer to pings"),
            Self::LiveEventsEnded => (close_code::RESTART, "event stream restarted; reconnect with after"),
            Self::Engine(_) => (close_code::AGAIN, "transcript unavailable; reconnect with after"),
        };
        Some(CloseFrame { code, reason: reason.into() })
    }
}

struct EventStream {
    state: WebState,
    id: ConversationId,
    socket: SplitSink<WebSocket, Message>,
    frames: futures_util::stream::SplitStream<WebSocket>,
    /// The `seq` of the last event sent, or the client's `after`.
    last_sent: u64,
}

impl EventStream {
    fn new(state: WebState, id: ConversationId, after: u64, socket: WebSocket) -> Self {
        let (socket, frames) = socket.split();
        Self { state, id, socket, frames, last_sent: after }
    }

    async fn run(mut self) -> End {
        let end = self.stream().await;
        if let Some(frame) = end.close_frame() {
            let _ = timeout(SEND_TIMEOUT, self.socket.send(Message::Close(Some(frame)))).await;
        }
        end
    }

    async fn stream(&mut self) -> End {
        let mut live = self.state.engine().subscribe(&self.id);
        if let Err(end) = self.catch_up().await {
            return end;
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
            tokio::select! {
                _ = closing.changed() => return End::ServerClosing,
                received = live.recv() => {
                    if let Err(end) = self.forward(received).await {
                        return end;
                    }
                }
                frame = self.frames.next() => match frame {
                    None | Some(Err(_)) => return End::ClientClosed,
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                _ = pings.tick() => {
                    if last_heard.elapsed() > interval * 3 {
                        return End::ClientSilent;
                    }
                    if let Err(end) = self.send(Message::Ping(Default::default())).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Sends one live event, first reading back any events it skips.
    async fn forward(&mut self, received: Result<Event, RecvError>) -> Result<(), End> {
        let event = match received {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "live events lagged; reading them from the transcript");
                return self.catch_up().await;
            }
            Err(RecvError::Closed) => return Err(End::LiveEventsEnded),
        };

        if event.seq <= self.last_sent {
            return Ok(());
        }
        if event.seq > self.last_sent + 1 {
            self.catch_up().await?;
        }
        if event.seq > self.last_sent {
            self.send_event(&event).await?;
        }
        Ok(())
    }

    /// Sends every transcript event after the last one sent.
    async fn catch_up(&mut self) -> Result<(), End> {
        loop {
            let page = self.state.engine().events(&self.id, self.last_sent, REPLAY_PAGE).await.map_err(End::Engine)?;
            let complete = page.len() < REPLAY_PAGE;
            for event in &page {
                if event.seq > self.last_sent {
                    self.send_event(event).await?;
                }
            }
            if complete || page.is_empty() {
                return Ok(());
            }
        }
    }

    async fn send_event(&mut self, event: &Event) -> Result<(), End> {
        let Some(visible) = customer_view(event) else {
            // A note: the customer never gets it, but the stream has passed it.
            self.last_sent = event.seq;
            return Ok(());
        };
        let json = match serde_json::to_string(&visible) {
            Ok(json) => json,
            Err(error) => {
                // Events are plain data; failing to serialise one is a bug, not a reason to stall the socket.
                tracing::error!(seq = event.seq, %error, "event cannot be serialised; skipping it");
                self.last_sent = event.seq;
                return Ok(());
            }
        };
        self.send(Message::Text(json.into())).await?;
        self.last_sent = event.seq;
        Ok(())
    }

    async fn send(&mut self, message: Message) -> Result<(), End> {
        match timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(End::SendFailed),
        }
    }
}
