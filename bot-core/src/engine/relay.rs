//! Passes events committed by other server processes (through a shared store)
//! to this process's subscribers, such as a customer's WebSocket.

use std::sync::Weak;

use tokio::sync::{mpsc, oneshot};

use crate::event::Event;
use crate::store::RemoteEvents;

use super::{FeedEvent, Inner};

/// Events read back from the transcript per conversation after a gap in the feed.
const CATCH_UP_LIMIT: usize = 500;

/// Runs until the engine is dropped (`stop` closes) or the store ends the feed.
pub(super) async fn run(engine: Weak<Inner>, mut feed: mpsc::Receiver<RemoteEvents>, mut stop: oneshot::Receiver<()>) {
    loop {
        let item = tokio::select! {
            item = feed.recv() => item,
            _ = &mut stop => return,
        };
        let Some(item) = item else {
            tracing::warn!("the session store ended its feed of other servers' events; their replies reach this server's subscribers only after a reconnect");
            return;
        };
        let Some(inner) = engine.upgrade() else { return };
        match item {
            RemoteEvents::Committed(events) => publish_remote(&inner, &events),
            RemoteEvents::MaybeMissed => catch_up(&inner).await,
        }
    }
}

/// Reads the transcript of every watched conversation after the last event
/// this process published, so that subscribers miss nothing a gap dropped.
async fn catch_up(inner: &Inner) {
    let watched = inner.hub.watched();
    tracing::debug!(conversations = watched.len(), "reading transcripts after a gap in the feed of other servers' events");
    for (id, last_seq) in watched {
        match inner.store.events(&id, last_seq, CATCH_UP_LIMIT).await {
            Ok(events) => publish_remote(inner, &events),
            Err(error) => tracing::warn!(conversation_id = %id, %error, "cannot read the transcript after a gap in the event feed"),
        }
    }
}

/// Passes other processes' events to this process's subscribers of the
/// conversation and of the feed of every conversation.
fn publish_remote(inner: &Inner, events: &[Event]) {
    inner.hub.publish(events);
    for event in events {
        // An error only means that no receiver exists.
        let _ = inner.feed.send(FeedEvent { event: event.clone(), local: false });
    }
}
