//! K-fold cross-validation of a bot's intent model (the embedded model or the
//! intent head on its encoder) on the bot's own examples. Every example is
//! classified by a model trained on the other folds. So a bot without a
//! separate test set still learns which intents its model mixes up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bot_core::{Classifier, IntentId, ScoredIntent};
use anyhow::{bail, Context};
use lepton_encoder::{Batcher, TextKind};
use lepton_intents::{EncoderIntentModel, HeadConfig, IntentModel, TrainConfig};
use serde::Serialize;

/// Intents kept in each held-out prediction's ranking.
const RANKING_LENGTH: usize = 3;

/// An example's prediction by the model trained without the example's fold.
#[derive(Clone, Debug, Serialize)]
pub struct HeldOut {
    /// Index of the example in the list passed to [`cross_validate`].
    pub example: usize,
    pub fold: usize,
    /// The best few intents, most confident first.
    pub ranking: Vec<ScoredIntent>,
    /// Whether the other folds contained an example of this example's intent. When they
    /// did not, the model could not have predicted it.
    pub intent_trained: bool,
}

impl HeldOut {
    pub fn top(&self) -> Option<&ScoredIntent> {
        self.ranking.first()
    }
}

/// The held-out predictions of one cross-validation run, in example order.
#[derive(Clone, Debug)]
pub struct CrossValidation {
    pub folds: usize,
    pub predictions: Vec<HeldOut>,
    /// Wall time of training and classifying all folds, in seconds.
    pub seconds: f64,
}

/// The model trained on each fold.
pub enum FoldModel<'a> {
    /// The embedded model.
    Embedded(TrainConfig),
    /// The intent head on the batcher's encoder, with every example's vector
    /// (in example order) computed once for all folds.
    Encoder { batcher: &'a Batcher, head: HeadConfig, vectors: Vec<Vec<f32>> },
}

impl<'a> FoldModel<'a> {
    /// Embeds `examples` with `batcher` and returns the intent head model on them.
    pub fn encoder(batcher: &'a Batcher, head: HeadConfig, examples: &[(String, IntentId)]) -> anyhow::Result<Self> {
        let texts: Vec<&str> = examples.iter().map(|(text, _)| text.as_str()).collect();
        let vectors = batcher.embed_many(&texts, TextKind::Query).context("cannot embed the examples")?;
        Ok(Self::Encoder { batcher, head, vectors })
    }

    fn seed(&self) -> u64 {
        match self {
            Self::Embedded(config) => config.seed,
            Self::Encoder { head, .. } => head.seed,
        }
    }
}

/// Splits `examples` into `folds` folds, trains one model per fold on the other
/// folds (in parallel) and classifies the fold's examples with it.
///
/// The split is stratified: each intent's examples are spread over the folds in an
/// order fixed by the model's seed and the texts, so the same examples give the same folds.
pub fn cross_validate(examples: &[(String, IntentId)], folds: usize, model: &FoldModel) -> anyhow::Result<CrossValidation> {
    if folds < 2 {
        bail!("cross-validation needs at least 2 folds, got {folds}");
    }
    if examples.len() < folds {
        bail!("{folds}-fold cross-validation needs at least {folds} examples, found {}; add examples or use fewer folds", examples.len());
    }
    let started = Instant::now();
    if let FoldModel::Encoder { vectors, .. } = model {
        if vectors.len() != examples.len() {
            bail!("{} vectors for {} examples", vectors.len(), examples.len());
        }
    }
    let fold_of = assign_folds(examples, folds, model.seed());

    let results: Vec<anyhow::Result<Vec<HeldOut>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..folds)
            .map(|fold| {
                let fold_of = &fold_of;
                scope.spawn(move || run_fold(examples, fold_of, fold, model))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });

    let mut predictions = Vec::with_capacity(examples.len());
    for result in results {
        predictions.extend(result?);
    }
    predictions.sort_by_key(|prediction| prediction.example);
    Ok(CrossValidation { folds, predictions, seconds: started.elapsed().as_secs_f64() })
}

/// Returns each example's fold. Within an intent, examples are ordered by a hash of
/// the seed and their text, and dealt round-robin from a fold chosen by a hash of the
/// intent. So an intent's folds differ in size by at most one, and they depend only on
/// the seed and that intent's examples: an edit of one intent leaves the others' folds alone.
fn assign_folds(examples: &[(String, IntentId)], folds: usize, seed: u64) -> Vec<usize> {
    let mut by_intent: BTreeMap<&IntentId, Vec<usize>> = BTreeMap::new();
    for (index, (_, intent)) in examples.iter().enumerate() {
        by_intent.entry(intent).or_default().push(index);
    }

    let mut fold_of = vec![0; examples.len()];
    for (intent, indices) in &mut by_intent {
        indices.sort_by_key(|&index| (text_hash(seed, &examples[index].0), index));
        let first = (text_hash(seed, intent.as_str()) % folds as u64) as usize;
        for (rank, &index) in indices.iter().enumerate() {
            fold_of[index] = (first + rank) % folds;
        }
    }
    fold_of
}

/// FNV-1a over the seed and the text: a fixed, well-mixed order with no dependency.
fn text_hash(seed: u64, text: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in seed.to_le_bytes().iter().chain(text.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn run_fold(examples: &[(String, IntentId)], fold_of: &[usize], fold: usize, model: &FoldModel) -> anyhow::Result<Vec<HeldOut>> {
    let in_training: Vec<usize> = (0..examples.len()).filter(|&index| fold_of[index] != fold).collect();
    let training: Vec<(String, IntentId)> = in_training.iter().map(|&index| examples[index].clone()).collect();
    let trained: BTreeSet<&IntentId> = training.iter().map(|(_, intent)| intent).collect();
    let held_out = examples.iter().enumerate().zip(fold_of).filter(|(_, &f)| f == fold);
    if training.is_empty() {
        // Every example fell into this fold, as can happen to a bot with one
        // example per intent. No model can be trained, so nothing is predicted.
        return Ok(held_out.map(|((example, _), _)| HeldOut { example, fold, ranking: Vec::new(), intent_trained: false }).collect());
    }

    // The model logs each training at INFO; one line per fold would only repeat the summary.
    let quiet = || tracing::subscriber::NoSubscriber::default();
    let classify: Box<dyn Fn(usize, &str) -> bot_core::Classification + '_> = match model {
        FoldModel::Embedded(config) => {
            let trained = tracing::subscriber::with_default(quiet(), || IntentModel::train(&training, config))
                .with_context(|| format!("training the model of fold {fold} failed"))?;
            Box::new(move |_, text| trained.classify(text))
        }
        FoldModel::Encoder { batcher, head, vectors } => {
            let training_vectors: Vec<Vec<f32>> = in_training.iter().map(|&index| vectors[index].clone()).collect();
            let trained = tracing::subscriber::with_default(quiet(), || {
                EncoderIntentModel::train_on_vectors(&training, &training_vectors, batcher, head)
            })
            .with_context(|| format!("training the intent head of fold {fold} failed"))?;
            Box::new(move |index, text| trained.classify_embedding(text, &vectors[index]))
        }
    };

    Ok(held_out
        .map(|((example, (text, intent)), _)| {
            let mut ranking = classify(example, text).ranking;
            ranking.truncate(RANKING_LENGTH);
            HeldOut { example, fold, ranking, intent_trained: trained.contains(intent) }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(counts: &[(&str, usize)]) -> Vec<(String, IntentId)> {
        counts.iter().flat_map(|(intent, count)| (0..*count).map(move |i| (format!("{intent} {i}"), IntentId::new(*intent)))).collect()
    }

    #[test]
    fn folds_split_each_intent_evenly() {
        let examples = examples(&[("a", 7), ("b", 5)]);

        let fold_of = assign_folds(&examples, 3, 42);

        for (intent, range) in [("a", 0..7), ("b", 7..12)] {
            let sizes: Vec<usize> = (0..3).map(|fold| range.clone().filter(|&i| fold_of[i] == fold).count()).collect();
            let spread = sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0);
            assert!(spread <= 1, "intent {intent}: {sizes:?}");
        }
    }

    #[test]
    fn folds_of_one_intent_ignore_others() {
        let before = examples(&[("a", 6), ("b", 4)]);
        let after = examples(&[("a", 6), ("b", 5)]);

        assert_eq!(assign_folds(&before, 3, 42)[..6], assign_folds(&after, 3, 42)[..6]);
    }

    #[test]
    fn folds_depend_on_seed_only() {
        let examples = examples(&[("a", 9), ("b", 9)]);

        assert_eq!(assign_folds(&examples, 3, 1), assign_folds(&examples, 3, 1));
        assert_ne!(assign_folds(&examples, 3, 1), assign_folds(&examples, 3, 2));
    }

    #[test]
    fn fold_holding_every_example_predicts_nothing() {
        // With 2 folds, FNV-1a's parity puts "a" and "b" in different folds
        // under every seed, but "a" and "c" can share one.
        let examples = examples(&[("a", 1), ("c", 1)]);
        let shared_fold = |seed: u64| {
            let fold_of = assign_folds(&examples, 2, seed);
            fold_of[0] == fold_of[1]
        };
        let seed = (0..100).find(|&seed| shared_fold(seed)).expect("a seed dealing both examples to one fold");

        let run = cross_validate(&examples, 2, &FoldModel::Embedded(TrainConfig { seed, ..TrainConfig::default() })).expect("cross-validation runs");

        assert_eq!(run.predictions.len(), 2);
        assert!(run.predictions.iter().all(|p| p.ranking.is_empty() && !p.intent_trained), "{:?}", run.predictions);
    }

    #[test]
    fn cross_validate_rejects_one_fold() {
        let result = cross_validate(&examples(&[("a", 4)]), 1, &FoldModel::Embedded(TrainConfig::default()));

        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("at least 2 folds"), "{error}");
    }

    #[test]
    fn cross_validate_rejects_fewer_examples_than_folds() {
        let result = cross_validate(&examples(&[("a", 2)]), 3, &FoldModel::Embedded(TrainConfig::default()));

        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("found 2"), "{error}");
    }
}
