//! Turning a bot folder into a running engine: load and validate the YAML,
//! load the pretrained encoder when one is configured, train the intent model
//! and build the knowledge index when they are stale.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bot_core::bot::{EncoderDevice, EncoderPooling, EncoderSettings};
use bot_core::{BotDefinition, Classifier, KnowledgeSearch};
use lepton_encoder::{Batcher, DeviceChoice, Encoder, EncoderConfig, Pooling};
use lepton_knowledge::{HybridConfig, HybridKnowledge};

use crate::config::EncoderSection;

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

/// The inputs of [`prepare_with`] besides the bot folder.
#[derive(Clone, Default)]
pub struct PrepareOptions {
    /// Becomes the `server_url` variable unless the bot defines it.
    pub server_url: Option<String>,
    /// The server configuration's `[encoder]` keys, applied over the bot's.
    pub encoder: EncoderSection,
    /// The encoder loaded by an earlier preparation, reused while its
    /// configuration stays the same.
    pub encoders: EncoderSlot,
}

/// The encoder in use and its batcher, shared by every preparation of one
/// server, so that a reload that keeps the encoder settings does not load the
/// model again.
#[derive(Clone, Default)]
pub struct EncoderSlot {
    current: Arc<Mutex<Option<Batcher>>>,
}

impl EncoderSlot {
    /// Returns the batcher in use, if an encoder is loaded.
    pub fn current(&self) -> Option<Batcher> {
        self.current.lock().ok().and_then(|current| current.clone())
    }

    /// Returns a batcher for `config`: the current one when its encoder was
    /// loaded with the same configuration, else a newly loaded one. The bool
    /// is true when the model was loaded now. A new batcher becomes the
    /// current one only through [`EncoderSlot::keep`], once the bot that uses
    /// it is ready, so a reload that fails later leaves the slot on the
    /// encoder still serving.
    pub fn batcher(&self, config: &EncoderConfig) -> anyhow::Result<(Batcher, bool)> {
        if let Some(batcher) = self.current().filter(|batcher| batcher.encoder().config() == config) {
            return Ok((batcher, false));
        }

        let started = Instant::now();
        let encoder = Encoder::load(config).with_context(|| format!("cannot load the encoder in {}", config.model.display()))?;
        tracing::info!(
            model = %config.model.display(),
            device = %encoder.device_name(),
            dimension = encoder.dimension(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the sentence encoder"
        );
        Ok((Batcher::new(Arc::new(encoder)), true))
    }

    /// Makes `batcher` the current one (`None`: the bot has no encoder).
    pub fn keep(&self, batcher: Option<&Batcher>) {
        if let Ok(mut current) = self.current.lock() {
            *current = batcher.cloned();
        }
    }
}

/// Loads the bot, trains the intent model if its examples changed, and opens
/// (or rebuilds) the knowledge index. `server_url` becomes the `server_url`
/// variable unless the bot defines it. The encoder, when the bot has one, is
/// loaded from its own settings only; see [`prepare_with`].
pub fn prepare(paths: &BotPaths, server_url: Option<&str>) -> anyhow::Result<Prepared> {
    let options = PrepareOptions { server_url: server_url.map(str::to_owned), ..PrepareOptions::default() };
    prepare_with(paths, &options)
}

/// Like [`prepare`], with the server configuration's encoder keys and an
/// encoder kept from an earlier preparation.
pub fn prepare_with(paths: &BotPaths, options: &PrepareOptions) -> anyhow::Result<Prepared> {
    let loaded = load_bot(&paths.bot_dir)?;
    let mut bot = loaded.bot;
    if let Some(url) = &options.server_url {
        bot.settings.variables.entry("server_url".to_owned()).or_insert_with(|| url.clone());
    }
    bot.settings.encoder = options.encoder.apply(bot.settings.encoder.take());

    let batcher = load_encoder(paths, &bot, &options.encoders)?;
    let (classifier, trained) = train(paths, &bot, batcher.as_ref())?;
    let (index, indexed) = index(paths, &bot, batcher.as_ref())?;
    options.encoders.keep(batcher.as_ref());
    Ok(Prepared {
        bot: Arc::new(bot),
        classifier,
        knowledge: Arc::new(index),
        trained,
        indexed,
    })
}

/// Loads the encoder the bot's settings name, or takes it from `slot` when it
/// is loaded already; `None` when the bot has no encoder.
pub fn load_encoder(paths: &BotPaths, bot: &BotDefinition, slot: &EncoderSlot) -> anyhow::Result<Option<Batcher>> {
    let Some(settings) = &bot.settings.encoder else { return Ok(None) };
    let config = encoder_config(&paths.bot_dir, settings)?;
    let (batcher, loaded) = slot.batcher(&config)?;
    if !loaded {
        tracing::info!(model = %config.model.display(), device = %batcher.encoder().device_name(), "reusing the loaded sentence encoder");
    }
    Ok(Some(batcher))
}

/// Turns the bot's encoder settings into the encoder's configuration, finding
/// the model folder (a path, or a Hugging Face id in the local cache).
pub fn encoder_config(bot_dir: &Path, settings: &EncoderSettings) -> anyhow::Result<EncoderConfig> {
    let cache = lepton_flows::HubCache::from_env();
    let folder = lepton_flows::resolve_model(bot_dir, &settings.model, &cache)?;
    let mut config = EncoderConfig::new(folder);
    config.pooling = settings.pooling.map(|pooling| match pooling {
        EncoderPooling::Mean => Pooling::Mean,
        EncoderPooling::Cls => Pooling::Cls,
    });
    config.query_prefix.clone_from(&settings.query_prefix);
    config.passage_prefix.clone_from(&settings.passage_prefix);
    config.device = match settings.device {
        EncoderDevice::Cpu => DeviceChoice::Cpu,
        EncoderDevice::Cuda(ordinal) => DeviceChoice::Cuda(ordinal),
    };
    config.max_tokens = settings.max_tokens;
    config.max_batch = settings.batch_size;
    config.max_wait = Duration::from_millis(settings.batch_wait_ms);
    Ok(config)
}

/// Trains the intent classifier that `settings.classifier.model` chooses
/// unless the stored one was trained on the same examples (and encoder).
/// Returns it and whether it was trained now.
pub fn train(paths: &BotPaths, bot: &BotDefinition, batcher: Option<&Batcher>) -> anyhow::Result<(Arc<dyn Classifier>, bool)> {
    if bot.intents.is_empty() && bot.faq.is_empty() {
        tracing::warn!("the bot has no intent examples and no FAQ entries; every message falls back");
        return Ok((Arc::new(bot_core::classify::NoIntents), false));
    }
    let started = Instant::now();
    let examples = bot.training_examples();
    let dir = paths.model_dir();
    let seed = bot.settings.classifier.seed;
    let on_encoder = batcher.filter(|_| bot.settings.classifier.model.uses_encoder(true));

    let (classifier, trained, model): (Arc<dyn Classifier>, bool, &str) = match on_encoder {
        Some(batcher) => {
            let config = lepton_intents::HeadConfig::with_seed(seed);
            let (head, trained) = lepton_intents::EncoderIntentModel::load_or_train(&dir, &examples, batcher, &config)
                .with_context(|| format!("cannot train or load the encoder's intent head in {}", dir.display()))?;
            (Arc::new(head), trained, "encoder")
        }
        None => {
            let config = lepton_intents::TrainConfig { seed, ..Default::default() };
            let (model, trained) = lepton_intents::IntentModel::load_or_train(&dir, &examples, &config)
                .with_context(|| format!("cannot train or load the intent model in {}", dir.display()))?;
            (Arc::new(model), trained, "embedded")
        }
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if trained {
        tracing::info!(model, examples = examples.len(), elapsed_ms, "trained the intent model");
    } else {
        tracing::info!(model, elapsed_ms, "reusing the stored intent model");
    }
    Ok((classifier, trained))
}

/// Builds the knowledge index, and the encoder's vectors of the FAQ and
/// articles when there is an encoder, unless the stored ones were built from
/// the same sources (and encoder).
pub fn index(paths: &BotPaths, bot: &BotDefinition, batcher: Option<&Batcher>) -> anyhow::Result<(HybridKnowledge, bool)> {
    let started = Instant::now();
    let dir = paths.index_dir();
    let config = hybrid_config(&bot.settings.knowledge);
    let (index, rebuilt) = HybridKnowledge::open_or_build(&dir, &bot.faq, &bot.articles, batcher, &config)
        .with_context(|| format!("cannot build or open the knowledge index in {}", dir.display()))?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let embeddings = index.uses_embeddings();
    if rebuilt {
        tracing::info!(faq = bot.faq.len(), articles = bot.articles.len(), embeddings, elapsed_ms, "built the knowledge index");
    } else {
        tracing::info!(embeddings, elapsed_ms, "reusing the stored knowledge index");
    }
    Ok((index, rebuilt))
}

fn hybrid_config(settings: &bot_core::bot::KnowledgeSettings) -> HybridConfig {
    let default = HybridConfig::default();
    HybridConfig {
        bm25: settings.bm25,
        embeddings: settings.embeddings,
        min_similarity: settings.min_similarity.unwrap_or(default.min_similarity),
    }
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

    #[test]
    fn encoder_slot_changes_only_on_keep() -> anyhow::Result<()> {
        let Ok(model) = lepton_encoder::test_model() else {
            eprintln!("skipped: no test model");
            return Ok(());
        };
        let slot = EncoderSlot::default();
        let config = EncoderConfig::new(model);

        let (first, loaded) = slot.batcher(&config)?;
        assert!(loaded);
        assert!(slot.current().is_none(), "loading replaced the current encoder before keep");
        slot.keep(Some(&first));
        let (again, loaded) = slot.batcher(&config)?;
        assert!(!loaded, "the kept encoder was loaded again");
        assert!(Arc::ptr_eq(again.encoder(), first.encoder()));
        slot.keep(None);
        assert!(slot.current().is_none());
        Ok(())
    }
}
