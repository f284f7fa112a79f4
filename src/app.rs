//! Turning a bot folder into a running engine: load and validate the YAML,
//! train the intent model and build the knowledge index when they are stale.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bot_core::{BotDefinition, Classifier, KnowledgeSearch};

/// The folders of a bot's sources and of its trained model and index.
#[derive(Clone, Debug)]
pub struct BotPaths {
    pub bot_dir: PathBuf,
    /// Holds `model/` and `index/`; `BOT_DIR/.lepton` unless set.
    pub data_dir: PathBuf,
}

impl BotPaths {
    pub fn new(bot_dir: &Path, data_dir: Option<&Path>) -> Self {
        let data_dir = data_dir.map(Path::to_path_buf).unwrap_or_else(|| bot_dir.join(".lepton"));
        Self { bot_dir: bot_dir.to_path_buf(), data_dir }
    }

    pub fn model_dir(&self) -> PathBuf {
        self.data_dir.join("model")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

/// A loaded bot with its trained model and open index.
pub struct Prepared {
    pub bot: Arc<BotDefinition>,
    pub classifier: Arc<dyn Classifier>,
    pub knowledge: Arc<dyn KnowledgeSearch>,
    pub trained: bool,
    pub indexed: bool,
}

/// Loads and validates the bot; on errors, returns them all as one message.
pub fn load_bot(bot_dir: &Path) -> anyhow::Result<lepton_flows::LoadedBot> {
    match lepton_flows::load_bot(bot_dir) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            Ok(loaded)
        }
        Err(lepton_flows::LoadError::Invalid { diagnostics }) => {
            let listing: Vec<String> = diagnostics.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
            anyhow::bail!("the bot in {} has errors:\n{}", bot_dir.display(), listing.join("\n"))
        }
        Err(error) => Err(error).with_context(|| format!("cannot load the bot in {}", bot_dir.display())),
    }
}

/// Loads the bot, trains the intent model if its examples changed, and opens
/// (or rebuilds) the knowledge index. `server_url` becomes the `server_url`
/// variable unless the bot defines it.
pub fn prepare(paths: &BotPaths, server_url: Option<&str>) -> anyhow::Result<Prepared> {
    let loaded = load_bot(&paths.bot_dir)?;
    let mut bot = loaded.bot;
    if let Some(url) = server_url {
        bot.settings.variables.entry("server_url".to_owned()).or_insert_with(|| url.to_owned());
    }

    let (classifier, trained): (Arc<dyn Classifier>, bool) = if bot.intents.is_empty() && bot.faq.is_empty() {
        tracing::warn!("the bot has no intent examples and no FAQ entries; every message falls back");
        (Arc::new(bot_core::classify::NoIntents), false)
    } else {
        let (model, trained) = train(paths, &bot)?;
        (Arc::new(model), trained)
    };
    let (index, indexed) = index(paths, &bot)?;
    Ok(Prepared {
        bot: Arc::new(bot),
        classifier,
        knowledge: Arc::new(index),
        trained,
        indexed,
    })
}

/// Trains the intent model unless the stored one was trained on the same examples.
pub fn train(paths: &BotPaths, bot: &BotDefinition) -> anyhow::Result<(lepton_intents::IntentModel, bool)> {
    let started = Instant::now();
    let examples = bot.training_examples();
    let config = lepton_intents::TrainConfig { seed: bot.settings.classifier.seed, ..Default::default() };
    let dir = paths.model_dir();
    let (model, trained) = lepton_intents::IntentModel::load_or_train(&dir, &examples, &config)
        .with_context(|| format!("cannot train or load the intent model in {}", dir.display()))?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if trained {
        tracing::info!(examples = examples.len(), elapsed_ms, "trained the intent model");
    } else {
        tracing::debug!(elapsed_ms, "intent model is up to date");
    }
    Ok((model, trained))
}

/// Builds the knowledge index unless the stored one was built from the same sources.
pub fn index(paths: &BotPaths, bot: &BotDefinition) -> anyhow::Result<(lepton_knowledge::KnowledgeIndex, bool)> {
    let started = Instant::now();
    let dir = paths.index_dir();
    let (index, rebuilt) = lepton_knowledge::KnowledgeIndex::open_or_build(&dir, &bot.faq, &bot.articles)
        .with_context(|| format!("cannot build or open the knowledge index in {}", dir.display()))?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if rebuilt {
        tracing::info!(faq = bot.faq.len(), articles = bot.articles.len(), elapsed_ms, "built the knowledge index");
    }
    Ok((index, rebuilt))
}

/// Returns a fingerprint of the bot folder's sources (YAML, Markdown and JSON
/// files, outside `.lepton` and `tests/`): their paths and a hash of their
/// contents, so that saving a file unchanged does not count as an edit. The
/// hash is std's `DefaultHasher`, which is stable within one process only;
/// fingerprints are compared within one server process.
pub fn fingerprint(bot_dir: &Path) -> anyhow::Result<String> {
    let mut entries = Vec::new();
    collect_sources(bot_dir, bot_dir, &mut entries)?;
    entries.sort();
    Ok(entries.join("\n"))
}

/// Lists the sources under `dir`, except the conversation tests in
/// `BOT_DIR/tests/`, which are no part of the running bot.
fn collect_sources(bot_dir: &Path, dir: &Path, entries: &mut Vec<String>) -> anyhow::Result<()> {
    let listing = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in listing {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            if dir == bot_dir && name == lepton_flows::TESTS_FOLDER {
                continue;
            }
            collect_sources(bot_dir, &path, entries)?;
            continue;
        }
        let is_source = matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml" | "md" | "json"));
        if is_source {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&bytes, &mut hasher);
            entries.push(format!("{}\t{:016x}", path.display(), std::hash::Hasher::finish(&hasher)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_tests_and_resaves() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("lepton-fingerprint-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tests"))?;
        std::fs::write(dir.join("bot.yml"), "settings:\n  languages: [en]\n")?;
        std::fs::write(dir.join("tests/a.yml"), "tests: []\n")?;
        let before = fingerprint(&dir)?;

        std::fs::write(dir.join("tests/a.yml"), "tests: []\n# edited\n")?;
        let after_test_edit = fingerprint(&dir)?;
        std::fs::write(dir.join("bot.yml"), "settings:\n  languages: [en]\n")?;
        let after_same_save = fingerprint(&dir)?;
        std::fs::write(dir.join("bot.yml"), "settings:\n  languages: [en, zh]\n")?;
        let after_bot_edit = fingerprint(&dir)?;
        std::fs::remove_dir_all(&dir)?;

        assert_eq!(before, after_test_edit, "editing a conversation test changed the fingerprint");
        assert_eq!(before, after_same_save, "saving bot.yml unchanged changed the fingerprint");
        assert_ne!(before, after_bot_edit, "editing bot.yml left the fingerprint unchanged");
        Ok(())
    }
}
