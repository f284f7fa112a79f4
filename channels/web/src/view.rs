//! What each side sees of a transcript event.
//!
//! Events go over the wire in `bot_core`'s own serde form, so clients in Rust
//! can read them back as [`bot_core::Event`]. Customers get the same events
//! without the bot's reading of their messages (`understanding`), which is for
//! agents only.

use bot_core::{Event, EventKind};

/// The event as the customer may see it.
pub fn customer_view(event: &Event) -> Event {
    let mut event = event.clone();
    if let EventKind::Customer { understanding, .. } = &mut event.kind {
        *understanding = None;
    }
    event
}

pub fn customer_views(events: &[Event]) -> Vec<Event> {
    events.iter().map(customer_view).collect()
}
