//! `lepton model finetune DIR --out OUT`: fine-tunes the bot's sentence
//! encoder on its intents' examples (SetFit-style) into a new model folder,
//! which the bot then names as `settings.encoder.model`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lepton_encoder::{Encoder, FineTuneConfig, FineTuneReport};

use crate::app;

/// The outcome of [`finetune`], for the closing message.
pub struct FineTuned {
    pub report: FineTuneReport,
    pub base: PathBuf,
    /// Examples left out because the encoder's vocabulary lacks their script.
    pub uncovered: usize,
}

/// Fine-tunes the encoder that `dir`'s `settings.encoder` names (or `base`)
/// on the bot's training examples, writing the new folder to `out`.
/// `progress` gets the step, the step count and the loss after each step.
pub fn finetune(
    dir: &Path,
    base: Option<&Path>,
    out: &Path,
    settings: &FineTuneConfig,
    mut progress: impl FnMut(usize, usize, f32),
) -> anyhow::Result<FineTuned> {
    let bot = app::load_bot(dir)?.bot;
    let Some(encoder_settings) = &bot.settings.encoder else {
        bail!("{} has no settings.encoder; add one naming the model to fine-tune, such as `encoder: {{model: sentence-transformers/all-MiniLM-L6-v2}}`", dir.display());
    };
    let mut config = app::encoder_config(dir, encoder_settings)?;
    if let Some(base) = base {
        config.model = base.to_owned();
    }
    lepton_encoder::check_fine_tunable(&config.model)?;
    let encoder = Encoder::load(&config).with_context(|| format!("cannot load the encoder in {}", config.model.display()))?;

    let all = bot.training_examples();
    let examples: Vec<(String, String)> = all
        .iter()
        .filter(|(text, _)| encoder.covers(text))
        .map(|(text, intent)| (text.clone(), intent.as_str().to_owned()))
        .collect();
    let uncovered = all.len() - examples.len();
    if uncovered > 0 {
        tracing::warn!(
            uncovered,
            model = %config.model.display(),
            "examples whose script the encoder's vocabulary lacks are left out of the fine-tuning"
        );
    }
    drop(encoder);
    let intents: std::collections::BTreeSet<&str> = examples.iter().map(|(_, intent)| intent.as_str()).collect();
    if intents.len() < 2 {
        let plural = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
        bail!(
            "fine-tuning needs examples of at least two intents; {} has {} in {} \
             ({} left out because {} lacks their script)",
            dir.display(),
            plural(examples.len(), "usable example"),
            plural(intents.len(), "intent"),
            plural(uncovered, "example"),
            config.model.display()
        );
    }

    let report = lepton_encoder::fine_tune(&config, &examples, settings, out, |step| progress(step.step, step.steps, step.loss))
        .with_context(|| format!("cannot fine-tune {}", config.model.display()))?;
    Ok(FineTuned { report, base: config.model, uncovered })
}
