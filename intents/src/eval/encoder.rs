//! Evaluating the encoder intent head: every text is embedded once (through
//! the disk cache when one is given), the head is trained on the training
//! embeddings, and the test texts are classified from their stored vectors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use bot_core::{Classification, Classifier};
use lepton_encoder::{Batcher, TextKind};

use crate::encoder_head::HeadConfig;
use crate::encoder_model::EncoderIntentModel;
use crate::error::IntentError;
use crate::eval::dataset::Dataset;
use crate::eval::embedding_cache::EmbeddingCache;
use crate::eval::report::{evaluate, validated_threshold, EvalReport};

/// Settings of [`run_encoder_eval`].
#[derive(Clone, Debug)]
pub struct EncoderEvalConfig {
    pub head: HeadConfig,
    pub threshold: f32,
    pub margin: f32,
    /// Share of in-scope queries the calibrated thresholds keep, such as 0.95.
    pub keep_in_scope: f64,
    /// Folder of the embedding cache; `None` encodes every text on every run.
    pub cache_dir: Option<PathBuf>,
}

/// Trains an [`EncoderIntentModel`] on the in-scope examples of `train` and
/// scores it on `test`. With `validation` holding out-of-scope examples, the
/// report's `validated` scores use the threshold chosen on it. The report's
/// `classify_micros` covers the head only, because the vectors are computed
/// before classification.
pub fn run_encoder_eval(
    train: &Dataset,
    validation: Option<&Dataset>,
    test: &Dataset,
    batcher: &Batcher,
    config: &EncoderEvalConfig,
) -> Result<EvalReport, IntentError> {
    let examples = train.in_scope();
    let mut texts: Vec<&str> = examples.iter().map(|(text, _)| text.as_str()).collect();
    let training_texts = texts.len();
    for data in validation.into_iter().chain([test]) {
        texts.extend(data.examples.iter().map(|e| e.text.as_str()));
    }

    let vectors = match &config.cache_dir {
        Some(dir) => EmbeddingCache::open(dir, batcher, TextKind::Query)?.embed_all(batcher, &texts, TextKind::Query)?,
        None => batcher.embed_many(&texts, TextKind::Query)?,
    };

    let started = Instant::now();
    let model = EncoderIntentModel::train_on_vectors(&examples, &vectors[..training_texts], batcher, &config.head)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let classifier = Precomputed { model: &model, vectors: texts.iter().copied().zip(vectors.iter().map(Vec::as_slice)).collect() };
    let mut report = evaluate(&classifier, test, config.threshold, config.margin, config.keep_in_scope);
    report.train_examples = Some(examples.len());
    report.train_seconds = Some(train_seconds);
    if let Some(validation) = validation.filter(|v| v.out_of_scope_count() > 0) {
        report.validated = Some(validated_threshold(&classifier, validation, test, config.keep_in_scope));
    }
    Ok(report)
}

/// The model with the vectors of known texts; any other text is embedded.
struct Precomputed<'a> {
    model: &'a EncoderIntentModel,
    vectors: HashMap<&'a str, &'a [f32]>,
}

impl Classifier for Precomputed<'_> {
    fn classify(&self, text: &str) -> Classification {
        match self.vectors.get(text) {
            Some(vector) => self.model.classify_embedding(text, vector),
            None => self.model.classify(text),
        }
    }
}
