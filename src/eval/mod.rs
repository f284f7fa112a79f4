//! `lepton eval`: train the embedded intent model, or the intent head on a
//! pretrained sentence encoder, on one data set and score it on another, or
//! cross-validate the embedded model on a bot's own examples and write a report
//! folder with images.

mod charts;
pub mod cross_validation;
pub mod page;
pub mod scores;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lepton_encoder::{Batcher, DeviceChoice, Encoder, EncoderConfig, FineTuneConfig, Pooling};
use lepton_intents::eval::{run_encoder_eval, run_eval, Clinc150, Dataset, EncoderEvalConfig, EvalConfig, EvalReport};
use lepton_intents::{HeadConfig, TrainConfig};

use scores::CrossValidationReport;

/// The source of an evaluation's training data.
pub enum TrainingData {
    /// A `.jsonl` or `.csv` file of labelled texts.
    File(PathBuf),
    /// The intents' examples of a bot folder.
    Bot(PathBuf),
}

pub struct EvalOptions {
    /// A CLINC150 `data_full.json` (its own train split is used unless `train`
    /// is set), or a `.jsonl` / `.csv` test set.
    pub test: PathBuf,
    pub train: Option<TrainingData>,
    /// The CLINC150 split to score: `test` or `val`.
    pub split: String,
    pub threshold: Option<f32>,
    pub margin: Option<f32>,
    pub seed: Option<u64>,
    /// Train on this many examples of each intent, drawn with the seed from the training data.
    pub shots: Option<usize>,
    /// Classify with a sentence encoder instead of the embedded model.
    pub encoder: Option<EncoderOptions>,
}

/// The sentence encoder of `lepton eval --encoder` and its intent head.
pub struct EncoderOptions {
    /// A Hugging Face model folder.
    pub model: PathBuf,
    /// Tokens kept of a text, the two special ones included. `None` takes the
    /// folder's sentence-transformers `max_seq_length`, else 256.
    pub max_tokens: Option<usize>,
    pub pooling: Option<Pooling>,
    pub query_prefix: String,
    pub device: DeviceChoice,
    /// The intent head's configuration as JSON; missing fields keep their
    /// defaults, and the seeds are those of the evaluation.
    pub head: Option<String>,
    /// Folder of the embedding cache; fine-tuned encoders are kept in it too.
    pub cache_dir: PathBuf,
    /// Fine-tune the encoder on the training examples first (SetFit-style).
    pub finetune: Option<FineTuneConfig>,
}

/// Returns the encoder options of the classifier the bot in `dir` uses: the
/// intent head on its settings.encoder, or `None` for the embedded model.
pub fn bot_encoder(dir: &Path, cache_dir: PathBuf) -> anyhow::Result<Option<EncoderOptions>> {
    let bot = crate::app::load_bot(dir).with_context(|| format!("cannot load the bot in {}", dir.display()))?.bot;
    let Some(settings) = &bot.settings.encoder else { return Ok(None) };
    if !bot.settings.classifier.model.uses_encoder(true) {
        return Ok(None);
    }

    let config = crate::app::encoder_config(dir, settings)?;
    Ok(Some(EncoderOptions {
        model: config.model,
        max_tokens: config.max_tokens,
        pooling: config.pooling,
        query_prefix: config.query_prefix,
        device: config.device,
        head: None,
        cache_dir,
        finetune: None,
    }))
}

/// Loads the data, trains a model and scores it.
pub fn run(options: &EvalOptions) -> anyhow::Result<EvalReport> {
    let mut config = EvalConfig::default();
    let (mut train, validation, test) = load(options, &mut config)?;
    if let Some(threshold) = options.threshold {
        config.threshold = threshold;
    }
    if let Some(margin) = options.margin {
        config.margin = margin;
    }
    if let Some(seed) = options.seed {
        config.train.seed = seed;
    }
    if let Some(shots) = options.shots {
        train = train.sample_per_intent(shots, config.train.seed);
    }
    if train.in_scope().is_empty() {
        bail!("the training data has no labelled examples");
    }

    tracing::info!(train = train.len(), test = test.len(), "training and evaluating");
    match &options.encoder {
        None => Ok(run_eval(&train, &test, &config)?),
        Some(encoder) => run_with_encoder(encoder, &train, validation.as_ref(), &test, &config),
    }
}

/// Loads the encoder, embeds the data (through the cache) and scores the intent head.
fn run_with_encoder(
    options: &EncoderOptions,
    train: &Dataset,
    validation: Option<&Dataset>,
    test: &Dataset,
    config: &EvalConfig,
) -> anyhow::Result<EvalReport> {
    let mut encoder_config = EncoderConfig::new(&options.model);
    encoder_config.pooling = options.pooling;
    encoder_config.query_prefix = options.query_prefix.clone();
    encoder_config.device = options.device;
    encoder_config.max_tokens = options.max_tokens;
    if options.finetune.is_some() {
        lepton_encoder::check_fine_tunable(&options.model)?;
    }
    let mut encoder = Encoder::load(&encoder_config).with_context(|| format!("cannot load the encoder in {}", options.model.display()))?;
    if let Some(settings) = &options.finetune {
        encoder_config.model = fine_tuned(&encoder, &encoder_config, train, settings, &options.cache_dir)?;
        encoder = Encoder::load(&encoder_config)
            .with_context(|| format!("cannot load the fine-tuned encoder in {}", encoder_config.model.display()))?;
    }
    tracing::info!(model = %options.model.display(), device = %encoder.device_name(), dimension = encoder.dimension(), "loaded the encoder");

    let mut head = match &options.head {
        Some(json) => serde_json::from_str::<HeadConfig>(json).context("invalid --head JSON")?,
        None => HeadConfig::default(),
    };
    head.seed = config.train.seed;
    head.ngram.seed = config.train.seed;
    let eval_config = EncoderEvalConfig {
        head,
        threshold: config.threshold,
        margin: config.margin,
        keep_in_scope: config.keep_in_scope,
        cache_dir: Some(options.cache_dir.clone()),
    };
    let batcher = Batcher::new(std::sync::Arc::new(encoder));
    Ok(run_encoder_eval(train, validation, test, &batcher, &eval_config)?)
}

/// Returns the folder of `encoder` fine-tuned on `train`'s examples with
/// `settings`, kept in `cache_dir` under a digest of all three, so a rerun
/// with the same inputs skips the training.
fn fine_tuned(
    encoder: &Encoder,
    config: &EncoderConfig,
    train: &Dataset,
    settings: &FineTuneConfig,
    cache_dir: &Path,
) -> anyhow::Result<PathBuf> {
    use sha2::{Digest, Sha256};

    let examples: Vec<(String, String)> =
        train.in_scope().into_iter().map(|(text, intent)| (text, intent.as_str().to_owned())).collect();
    let mut hash = Sha256::new();
    hash.update(encoder.fingerprint().as_bytes());
    hash.update(serde_json::to_vec(settings)?);
    hash.update(serde_json::to_vec(&examples)?);
    let digest: String = hash.finalize()[..8].iter().map(|byte| format!("{byte:02x}")).collect();
    let folder = cache_dir.join(format!("finetuned-{digest}"));
    if folder.join(lepton_encoder::PROVENANCE_FILE).is_file() {
        tracing::info!(folder = %folder.display(), "reusing the fine-tuned encoder");
        return Ok(folder);
    }

    // Progress goes to standard error: fine-tuning takes minutes, and eval
    // logs only warnings by default.
    eprintln!("fine-tuning the encoder on {} examples ({} rounds)", examples.len(), settings.rounds);
    let report = lepton_encoder::fine_tune(config, &examples, settings, &folder, |step| {
        if step.step % (step.steps / 10).max(1) == 0 || step.step == step.steps {
            eprintln!("step {}/{}: loss {:.4}", step.step, step.steps, step.loss);
        }
    })
    .context("fine-tuning failed")?;
    eprintln!(
        "fine-tuned on {} pairs in {:.0} s, loss {:.4} -> {:.4}; kept in {}",
        report.pairs,
        report.seconds,
        report.first_loss,
        report.last_loss,
        folder.display()
    );
    Ok(folder)
}

/// Returns the training data, the validation data (CLINC150's `val` when scoring
/// `test`) and the test data.
fn load(options: &EvalOptions, config: &mut EvalConfig) -> anyhow::Result<(Dataset, Option<Dataset>, Dataset)> {
    let is_clinc = options.test.extension().is_some_and(|e| e == "json");
    let (clinc_train, validation, test) = if is_clinc {
        let data = Clinc150::load(&options.test)?;
        let (validation, test) = match options.split.as_str() {
            "test" => (Some(data.val), data.test),
            "val" => (None, data.val),
            other => bail!("unknown CLINC150 split {other:?}; use `test` or `val`"),
        };
        (Some(data.train), validation, test)
    } else {
        (None, None, Dataset::load(&options.test)?)
    };

    let train = match (&options.train, clinc_train) {
        (Some(TrainingData::File(path)), _) => Dataset::load(path)?,
        (Some(TrainingData::Bot(dir)), _) => bot_dataset(dir, config)?,
        (None, Some(train)) => train,
        (None, None) => bail!("{} has no training split; pass --train FILE or --bot DIR", options.test.display()),
    };
    Ok((train, validation, test))
}

/// Turns a bot's intent examples into a training set and takes its classifier settings.
fn bot_dataset(dir: &Path, config: &mut EvalConfig) -> anyhow::Result<Dataset> {
    let bot = crate::app::load_bot(dir).with_context(|| format!("cannot load the bot in {}", dir.display()))?.bot;
    let settings = &bot.settings.classifier;
    config.threshold = settings.threshold;
    config.margin = settings.margin;
    config.train = TrainConfig { seed: settings.seed, ..config.train.clone() };
    let examples = bot
        .training_examples()
        .into_iter()
        .map(|(text, intent)| lepton_intents::eval::LabeledText { text, intent: Some(intent) })
        .collect();
    Ok(Dataset { examples })
}

/// Settings of `lepton eval DIR --cross-validation K`.
pub struct CrossValidationOptions {
    pub bot_dir: PathBuf,
    pub folds: usize,
    /// The output folder [default: `BOT_DIR/.lepton/eval`].
    pub out: Option<PathBuf>,
    pub threshold: Option<f32>,
    pub margin: Option<f32>,
    pub seed: Option<u64>,
}

/// Cross-validates the intent model on the bot's examples (FAQ questions included,
/// as the `_knowledge` intent) with the configuration the bot trains with, and
/// writes the report folder. Returns the report and the path of its `index.html`.
pub fn run_cross_validation(options: &CrossValidationOptions) -> anyhow::Result<(CrossValidationReport, PathBuf)> {
    let loaded = crate::app::load_bot(&options.bot_dir)?;
    let settings = &loaded.bot.settings.classifier;
    let config = TrainConfig { seed: options.seed.unwrap_or(settings.seed), ..TrainConfig::default() };
    let threshold = options.threshold.unwrap_or(settings.threshold);
    let margin = options.margin.unwrap_or(settings.margin);
    let examples = loaded.bot.training_examples();
    // Create the output folder first, so that a wrong --out fails before minutes of training.
    let out = options.out.clone().unwrap_or_else(|| crate::app::BotPaths::new(&options.bot_dir, None).data_dir.join("eval"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create the output folder {}", out.display()))?;

    let paths = crate::app::BotPaths::new(&options.bot_dir, None);
    let batcher = match settings.model.uses_encoder(loaded.bot.settings.encoder.is_some()) {
        true => crate::app::load_encoder(&paths, &loaded.bot, &crate::app::EncoderSlot::default())?,
        false => None,
    };
    let model = match &batcher {
        Some(batcher) => cross_validation::FoldModel::encoder(batcher, HeadConfig::with_seed(config.seed), &examples)?,
        None => cross_validation::FoldModel::Embedded(config),
    };
    let name = if batcher.is_some() { "the intent head on the encoder" } else { "the embedded intent model" };
    tracing::info!(examples = examples.len(), folds = options.folds, model = name, "cross-validating");
    let run = cross_validation::cross_validate(&examples, options.folds, &model)?;
    let report = CrossValidationReport::new(&loaded.bot.settings.name, &examples, &run, threshold, margin);

    let index = page::write(&report, &out)?;
    Ok((report, index))
}
