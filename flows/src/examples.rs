//! The places of intent examples and FAQ questions, so that tools outside this
//! crate (the model checks of `lepton validate`) can report a problem with one example
//! at its file, line and column.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use bot_core::IntentId;

use crate::diagnostic::{Diagnostic, Severity};

/// The place of one example in the bot folder, with its source line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExamplePlace {
    /// The file as reached from the bot folder the caller passed in, such as `demo/intents/orders.yml`.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Characters the example covers on that line.
    pub width: usize,
    /// The line's text, without its line break.
    pub source_line: String,
}

impl ExamplePlace {
    /// Creates a warning pointing at this example.
    pub fn warning(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, self.file.clone(), (self.line, self.column), self.width, message.into(), &self.source_line)
    }

    /// Creates an error pointing at this example or setting.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, self.file.clone(), (self.line, self.column), self.width, message.into(), &self.source_line)
    }
}

/// Renders as `file:line:column`.
impl fmt::Display for ExamplePlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The places of a bot's training examples, by intent and text: the intents' examples,
/// and the FAQ questions and variants under [`bot_core::bot::KNOWLEDGE_INTENT`].
/// Also the places of the settings that checks after loading report on, such as
/// `settings.encoder.max_tokens`, by their path.
#[derive(Clone, Debug, Default)]
pub struct ExamplePlaces {
    by_example: HashMap<(IntentId, String), ExamplePlace>,
    by_setting: HashMap<String, ExamplePlace>,
}

impl ExamplePlaces {
    /// Returns where `text` is written as an example of `intent`, as
    /// [`bot_core::BotDefinition::training_examples`] pairs them.
    pub fn get(&self, intent: &IntentId, text: &str) -> Option<&ExamplePlace> {
        self.by_example.get(&(intent.clone(), text.to_owned()))
    }

    /// Returns where the setting at `path`, such as `settings.encoder.max_tokens`,
    /// is written, or `None` when the bot does not set it.
    pub fn setting(&self, path: &str) -> Option<&ExamplePlace> {
        self.by_setting.get(path)
    }

    /// Returns the number of example places.
    pub fn len(&self) -> usize {
        self.by_example.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_example.is_empty()
    }

    /// Records a place, keeping the first one when the same text is written twice.
    pub(crate) fn insert(&mut self, intent: &str, text: &str, place: ExamplePlace) {
        self.by_example.entry((IntentId::new(intent), text.to_owned())).or_insert(place);
    }

    /// Records the place of the setting at `path`.
    pub(crate) fn insert_setting(&mut self, path: &str, place: ExamplePlace) {
        self.by_setting.insert(path.to_owned(), place);
    }
}
