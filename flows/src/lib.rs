//! Loads a bot folder written in YAML into a [`bot_core::BotDefinition`] and
//! validates it, reporting every problem at once with its file, line and column.
//!
//! The YAML is read with `saphyr-parser`'s event stream into a tree that keeps the
//! position of every key and value. From that tree the loader reports, in one run,
//! duplicate keys, unknown fields (with the closest valid name), YAML 1.1 booleans
//! such as an unquoted `no` where text is expected, undefined references,
//! unreachable steps and missing translations. The format is described in
//! `docs/bot-format.md`.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let report = lepton_flows::validate(Path::new("demo"));
//! println!("{report}");
//!
//! match lepton_flows::load_bot(Path::new("demo")) {
//!     Ok(loaded) => println!("{} intents, sources {}", loaded.bot.intents.len(), loaded.sources_hash),
//!     Err(error) => eprintln!("{error}"),
//! }
//! ```

mod conversation_tests;
mod convert;
mod cx;
mod diagnostic;
mod examples;
mod flows;
mod handoff_adapter;
mod http;
mod intents;
mod knowledge;
mod learn;
mod load;
mod loops;
mod model_folder;
mod reach;
mod responses;
mod sections;
mod settings;
mod slots;
mod source;
mod tree;

use std::fmt;
use std::path::{Path, PathBuf};

use bot_core::BotDefinition;

pub use conversation_tests::{
    knowledge_source_matches, load_conversation_tests, Check, ConversationTests, Expectation, ReplyPattern, SourcePosition, TestCase,
    TestFile, TestStep, DEFAULT_TEST_CHANNEL, TESTS_FOLDER,
};
pub use diagnostic::{Diagnostic, Report, Severity, MAX_SNIPPET_CHARS};
pub use examples::{ExamplePlace, ExamplePlaces};
pub use learn::{append_example, AppendError, AppendedExample, NewExample, LEARNED_FILE, LEARNED_FLOW, MAX_EXAMPLE_CHARS, MAX_INTENT_NAME_CHARS};
pub use model_folder::{is_hub_id, resolve_model, HubCache, ModelLookupError, MODEL_FILES};
pub use source::MAX_FILE_BYTES;
pub use tree::MAX_NODES;
pub use intents::MIN_EXAMPLES;

/// A bot that loaded without errors.
#[derive(Clone, Debug)]
pub struct LoadedBot {
    pub bot: BotDefinition,
    /// Problems that do not stop the bot from running (few examples, unused definitions).
    pub warnings: Vec<Diagnostic>,
    /// Lowercase hex SHA-256 over the relative path and bytes of every YAML file and
    /// article, in sorted path order. Equal hashes mean equal sources. A cache built from
    /// the bot (a trained classifier, a search index) can store it to detect staleness.
    pub sources_hash: String,
    /// The file, line and column of each intent example and FAQ question.
    pub example_places: ExamplePlaces,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bot folder has errors. `diagnostics` contains all of them and the warnings.
    #[error("{}", InvalidSummary(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
    #[error("bot folder {} not found; check the path", path.display())]
    NotFound { path: PathBuf },
    #[error("{} is not a folder; give the path of the bot folder", path.display())]
    NotAFolder { path: PathBuf },
    #[error("failed to read {}; check that it exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct InvalidSummary<'a>(&'a [Diagnostic]);

impl fmt::Display for InvalidSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&Diagnostic> = self.0.iter().filter(|d| d.is_error()).collect();
        let noun = diagnostic::plural(errors.len(), "error");
        write!(f, "the bot definition has {} {noun}; fix them and load it again", errors.len())?;
        for error in errors {
            write!(f, "\n{error}")?;
        }
        Ok(())
    }
}

/// Loads the bot in `dir`, failing with every error found when there is one.
pub fn load_bot(dir: &Path) -> Result<LoadedBot, LoadError> {
    let analysis = load::analyse(dir)?;
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(LoadError::Invalid { diagnostics: analysis.diagnostics });
    }
    Ok(loaded(analysis))
}

fn loaded(analysis: load::Analysis) -> LoadedBot {
    LoadedBot {
        bot: analysis.bot,
        warnings: analysis.diagnostics,
        sources_hash: analysis.sources_hash,
        example_places: analysis.example_places,
    }
}

/// Checks the bot in `dir` and returns every error and warning. A folder or file that
/// cannot be read is reported as an error at that path.
pub fn validate(dir: &Path) -> Report {
    validate_and_load(dir).0
}

/// Checks the bot in `dir` like [`validate`], and also returns the loaded bot when the
/// report has no errors, so that a caller can run further checks without loading twice.
pub fn validate_and_load(dir: &Path) -> (Report, Option<LoadedBot>) {
    match load::analyse(dir) {
        Ok(analysis) if analysis.diagnostics.iter().any(Diagnostic::is_error) => (Report { diagnostics: analysis.diagnostics }, None),
        Ok(analysis) => {
            let report = Report { diagnostics: analysis.diagnostics.clone() };
            (report, Some(loaded(analysis)))
        }
        Err(LoadError::Invalid { diagnostics }) => (Report { diagnostics }, None),
        Err(LoadError::Io { path, source }) => {
            let diagnostic = Diagnostic::error_at_path(path, format!("failed to read: {source}"));
            (Report { diagnostics: vec![diagnostic] }, None)
        }
        Err(error @ (LoadError::NotFound { .. } | LoadError::NotAFolder { .. })) => {
            let diagnostic = Diagnostic::error_at_path(dir.to_path_buf(), error.to_string());
            (Report { diagnostics: vec![diagnostic] }, None)
        }
    }
}
