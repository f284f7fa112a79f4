//! Captures the store's log events in a test, for checks on what an outage logs.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One captured event: its level and its fields as `name=value` pairs.
#[derive(Clone, Debug)]
pub struct Captured {
    pub level: Level,
    pub fields: String,
}

#[derive(Clone, Default)]
pub struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    /// Installs the capture for the current thread until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    /// Returns the captured events at `level` or more severe.
    pub fn at_least(&self, level: Level) -> Vec<Captured> {
        let events = self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        events.iter().filter(|event| event.level <= level).cloned().collect()
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        if !event.metadata().target().starts_with("lepton_redis") {
            return;
        }
        let mut visitor = FieldText::default();
        event.record(&mut visitor);
        let captured = Captured { level: *event.metadata().level(), fields: visitor.0 };
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(captured);
    }
}

#[derive(Default)]
struct FieldText(String);

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}
