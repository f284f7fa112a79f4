//! What each side sees of a transcript event.
//!
//! Events go over the wire in `bot_core`'s own serde form, so clients in Rust
//! can read them back as [`bot_core::Event`]. Customers get the same events
//! without the bot's reading of their messages (`understanding`), which is for
//! agents only, and without agents' internal notes, so the `seq`s a customer
//! receives can have gaps.

use bot_core::{Event, EventKind};

/// Returns the event as the customer may see it, or `None` for an agent's note.
pub fn customer_view(event: &Event) -> Option<Event> {
    if !event.is_customer_visible() {
        return None;
    }
    let mut event = event.clone();
    if let EventKind::Customer { understanding, .. } = &mut event.kind {
        *understanding = None;
    }
    Some(event)
}

/// Returns the events as the customer may see them: notes left out, the rest in order.
pub fn customer_views(events: &[Event]) -> Vec<Event> {
    events.iter().filter_map(customer_view).collect()
}
