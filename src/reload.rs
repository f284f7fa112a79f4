//! Reloading a running bot from its folder: on demand through
//! `POST /api/v1/admin/reload`, and when the folder's files change. A valid
//! folder is trained (only when its examples changed) and indexed, then swapped
//! into the engine as a whole; turns already running finish on the old bot, and
//! forms in progress go on as the engine decides (see `form_restarted`). An
//! invalid folder leaves the running bot as it was and returns its diagnostics.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bot_core::observe::{BotReload, Observer};
use bot_core::Engine;
use lepton_web::{BotReloader, ReloadReport};
use tokio::sync::Mutex;

use crate::app::{self, BotPaths, PrepareOptions};

/// How often the watcher compares the bot folder with the running bot.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Reloads one bot folder into one engine. Reloads run one at a time.
pub struct Reloader {
    engine: Engine,
    paths: BotPaths,
    /// The server URL, the configuration's encoder keys and the loaded
    /// encoder, which a reload reuses when the encoder settings stay the same.
    prepare: PrepareOptions,
    /// The fingerprint of the folder last loaded or rejected.
    loaded: Mutex<String>,
    last: std::sync::Mutex<Option<ReloadReport>>,
}

impl Reloader {
    /// `fingerprint` is that of the folder the running bot was loaded from;
    /// `prepare` contains the options the running bot was prepared with.
    pub fn new(engine: Engine, paths: BotPaths, prepare: PrepareOptions, fingerprint: String) -> Self {
        Self { engine, paths, prepare, loaded: Mutex::new(fingerprint), last: std::sync::Mutex::new(None) }
    }

    /// Reloads the folder and swaps the bot in when it is valid.
    pub async fn reload_now(&self) -> ReloadReport {
        let mut loaded = self.loaded.lock().await;
        let report = self.load_and_swap("api").await;
        if let Ok(fingerprint) = app::fingerprint(&self.paths.bot_dir) {
            *loaded = fingerprint;
        }
        report
    }

    /// Reloads when the folder's files differ from those last loaded or
    /// rejected; returns `None` when nothing changed.
    pub async fn reload_if_changed(&self) -> Option<ReloadReport> {
        let mut loaded = self.loaded.lock().await;
        let fingerprint = match app::fingerprint(&self.paths.bot_dir) {
            Ok(fingerprint) => fingerprint,
            Err(error) => {
                tracing::warn!(%error, "cannot read the bot folder to check for changes");
                return None;
            }
        };
        if fingerprint == *loaded {
            return None;
        }
        *loaded = fingerprint;
        Some(self.load_and_swap("watch").await)
    }

    /// Polls the folder every [`WATCH_INTERVAL`] and reloads it after a change.
    pub async fn watch(&self) {
        let mut interval = tokio::time::interval(WATCH_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Some(report) = self.reload_if_changed().await {
                log_report("bot folder changed", &report);
            }
        }
    }

    async fn load_and_swap(&self, cause: &'static str) -> ReloadReport {
        let mut report = self.load_and_swap_inner().await;
        let reload = BotReload { reloaded: report.reloaded, retrained: report.retrained, reindexed: report.reindexed };
        self.engine.observers().bot_reloaded(&reload);
        report.cause = cause;
        report.at = bot_core::message::now_millis();
        *self.last.lock().expect("reload report lock poisoned") = Some(report.clone());
        report
    }

    async fn load_and_swap_inner(&self) -> ReloadReport {
        let bot_dir = self.paths.bot_dir.clone();
        let validated = tokio::task::spawn_blocking(move || lepton_flows::validate(&bot_dir)).await;
        let report = match validated {
            Ok(report) => report,
            Err(error) => return failed(format!("validating the bot panicked: {error}")),
        };
        let diagnostics: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
        if report.has_errors() {
            return ReloadReport { diagnostics, ..ReloadReport::default() };
        }

        let (paths, options) = (self.paths.clone(), self.prepare.clone());
        let prepared = tokio::task::spawn_blocking(move || app::prepare_with(&paths, &options)).await;
        match prepared {
            Ok(Ok(prepared)) => {
                warn_about_restart_settings(&self.engine.bot().settings, &prepared.bot.settings);
                self.engine.replace_bot(prepared.bot, prepared.classifier, prepared.knowledge);
                ReloadReport { reloaded: true, retrained: prepared.trained, reindexed: prepared.indexed, diagnostics, ..ReloadReport::default() }
            }
            Ok(Err(error)) => ReloadReport { diagnostics, ..failed(format!("{error:#}")) },
            Err(error) => ReloadReport { diagnostics, ..failed(format!("loading the bot panicked: {error}")) },
        }
    }
}

/// Logs a warning when the edit changed settings that take effect only when
/// the server starts: where sessions are stored.
fn warn_about_restart_settings(running: &bot_core::bot::Settings, edited: &bot_core::bot::Settings) {
    let redis_changed = serde_json::to_value(&running.redis).ok() != serde_json::to_value(&edited.redis).ok();
    if running.session_store != edited.session_store || redis_changed {
        tracing::warn!("settings.session_store or settings.redis changed; the server keeps its session store until it is restarted");
    }
}

fn failed(error: String) -> ReloadReport {
    ReloadReport { error: Some(error), ..ReloadReport::default() }
}

/// Logs the outcome of a reload: INFO when it was swapped in, ERROR with the
/// diagnostics when the running bot was kept.
pub fn log_report(cause: &str, report: &ReloadReport) {
    if report.reloaded {
        tracing::info!(cause, retrained = report.retrained, reindexed = report.reindexed, warnings = report.diagnostics.len(), "bot reloaded");
        return;
    }
    let errors = report.diagnostics.join("\n");
    match &report.error {
        Some(error) => tracing::error!(cause, %error, "cannot reload the bot; keeping the running bot"),
        None => tracing::error!(cause, "the edited bot is invalid; keeping the running bot:\n{errors}"),
    }
}

impl BotReloader for Reloader {
    fn reload(&self) -> Pin<Box<dyn Future<Output = ReloadReport> + Send + '_>> {
        Box::pin(async move {
            let report = self.reload_now().await;
            log_report("reload requested through the admin api", &report);
            report
        })
    }

    fn last_report(&self) -> Option<ReloadReport> {
        self.last.lock().expect("reload report lock poisoned").clone()
    }
}
