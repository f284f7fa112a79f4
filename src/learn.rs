//! Learning from handoffs in the server: the console's [`ExampleWriter`] over
//! the bot folder. An example is appended to the folder's YAML by
//! [`lepton_flows::append_example`], then the bot is reloaded, which retrains
//! the intent model because its examples changed.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bot_core::Lang;
use lepton_flows::{AppendError, LoadError, NewExample};
use lepton_web::{ExampleAdded, ExampleError, ExampleWriter, ReloadReport};
use tracing::instrument;

use crate::reload::{log_report, Reloader};

/// Appends examples to one bot folder and reloads it into the running engine.
pub struct FolderExampleWriter {
    bot_dir: PathBuf,
    reloader: Arc<Reloader>,
}

impl FolderExampleWriter {
    pub fn new(bot_dir: PathBuf, reloader: Arc<Reloader>) -> Self {
        Self { bot_dir, reloader }
    }

    /// Reloads the edited folder. When the folder watcher reloaded it first,
    /// returns the watcher's report.
    async fn reload(&self) -> Option<ReloadReport> {
        match self.reloader.reload_if_changed().await {
            Some(report) => {
                log_report("an example was added from the console", &report);
                Some(report)
            }
            None => lepton_web::BotReloader::last_report(self.reloader.as_ref()),
        }
    }
}

#[async_trait]
impl ExampleWriter for FolderExampleWriter {
    #[instrument(skip_all, fields(intent = %intent, new_intent = new_intent, lang = %lang))]
    async fn add_example(&self, intent: &str, new_intent: bool, lang: &Lang, text: &str) -> Result<ExampleAdded, ExampleError> {
        let (bot_dir, owned_intent, owned_lang, owned_text) = (self.bot_dir.clone(), intent.to_owned(), lang.clone(), text.to_owned());
        let appended = tokio::task::spawn_blocking(move || {
            let example = NewExample { intent: &owned_intent, new_intent, lang: &owned_lang, text: &owned_text };
            lepton_flows::append_example(&bot_dir, example)
        })
        .await
        .map_err(|error| ExampleError::Io { path: self.bot_dir.clone(), source: io::Error::other(format!("adding the example failed: {error}")) })?
        .map_err(|error| example_error(&self.bot_dir, error))?;
        tracing::info!(file = %appended.file.display(), line = appended.line, created = appended.created, "example appended to the bot folder");

        let report = self.reload().await;
        Ok(ExampleAdded { intent: appended.intent.to_string(), file: appended.file, line: appended.line, reload: describe(report.as_ref()) })
    }
}

/// Describes the reload after an example was added, for the agent.
fn describe(report: Option<&ReloadReport>) -> String {
    let Some(report) = report else {
        return "not reloaded: the bot folder did not change".to_owned();
    };
    if report.reloaded {
        return if report.retrained { "reloaded; the intent model was retrained".to_owned() } else { "reloaded".to_owned() };
    }
    match &report.error {
        Some(error) => format!("not reloaded, the running bot is kept: {error}"),
        None => format!("not reloaded, the running bot is kept: the bot folder has errors: {}", report.diagnostics.join("; ")),
    }
}

fn example_error(bot_dir: &std::path::Path, error: AppendError) -> ExampleError {
    match error {
        AppendError::UnknownIntent { intent } => ExampleError::UnknownIntent { intent },
        AppendError::InvalidName { name, reason } => ExampleError::InvalidName { name, reason },
        AppendError::Duplicate { intent } => ExampleError::Duplicate { intent },
        AppendError::Rejected { diagnostics, .. } => {
            let diagnostics = diagnostics.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
            ExampleError::Rejected { diagnostics }
        }
        AppendError::Load(LoadError::Invalid { diagnostics }) => {
            let mut listed = vec!["the bot folder has errors, so nothing was written; fix them first".to_owned()];
            listed.extend(diagnostics.iter().filter(|d| d.is_error()).map(ToString::to_string));
            ExampleError::Rejected { diagnostics: listed }
        }
        AppendError::Load(LoadError::Io { path, source }) | AppendError::Io { path, source } => ExampleError::Io { path, source },
        AppendError::Load(error @ (LoadError::NotFound { .. } | LoadError::NotAFolder { .. })) => {
            ExampleError::Io { path: bot_dir.to_path_buf(), source: io::Error::new(io::ErrorKind::NotFound, error.to_string()) }
        }
        error @ (AppendError::UnsupportedLanguage { .. } | AppendError::InvalidText { .. } | AppendError::Unplaceable { .. }) => {
            ExampleError::Rejected { diagnostics: vec![error.to_string()] }
        }
    }
}
