//! `lepton eval`: train the embedded intent model on one data set and score it
//! on another.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lepton_intents::eval::{run_eval, Clinc150, Dataset, EvalConfig, EvalReport};
use lepton_intents::TrainConfig;

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
}

/// Loads the data, trains a model and scores it.
pub fn run(options: &EvalOptions) -> anyhow::Result<EvalReport> {
    let mut config = EvalConfig::default();
    let (train, test) = load(options, &mut config)?;
    if let Some(threshold) = options.threshold {
        config.threshold = threshold;
    }
    if let Some(margin) = options.margin {
        config.margin = margin;
    }
    if let Some(seed) = options.seed {
        config.train.seed = seed;
    }
    if train.in_scope().is_empty() {
        bail!("the training data has no labelled examples");
    }

    tracing::info!(train = train.len(), test = test.len(), "training and evaluating");
    Ok(run_eval(&train, &test, &config)?)
}

fn load(options: &EvalOptions, config: &mut EvalConfig) -> anyhow::Result<(Dataset, Dataset)> {
    let is_clinc = options.test.extension().is_some_and(|e| e == "json");
    let (clinc_train, test) = if is_clinc {
        let data = Clinc150::load(&options.test)?;
        let test = match options.split.as_str() {
            "test" => data.test,
            "val" => data.val,
            other => bail!("unknown CLINC150 split {other:?}; use `test` or `val`"),
        };
        (Some(data.train), test)
    } else {
        (None, Dataset::load(&options.test)?)
    };

    let train = match (&options.train, clinc_train) {
        (Some(TrainingData::File(path)), _) => Dataset::load(path)?,
        (Some(TrainingData::Bot(dir)), _) => bot_dataset(dir, config)?,
        (None, Some(train)) => train,
        (None, None) => bail!("{} has no training split; pass --train FILE or --bot DIR", options.test.display()),
    };
    Ok((train, test))
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
