//! The trained network and its inference, in plain `f32` loops over the sparse
//! features: one message costs a few row additions and one small matrix-vector
//! product, so candle tensors (which allocate per operation) are not used here.

use std::fmt;

use bot_core::{Classification, Classifier, IntentId, ScoredIntent};

use crate::features::{SparseVector, Vocabulary};
use crate::train::TrainConfig;

/// An intent classifier: hashed n-gram TF-IDF features, an embedding-bag
/// hidden layer with ReLU, and a softmax output layer.
///
/// The layers have no biases, so the network is positively homogeneous:
/// scaling the input scales the logits. Empty input gives equal confidences,
/// and a text made mostly of n-grams unseen in training (whose vector is short,
/// see [`crate::FeatureConfig::unseen_weight`]) gives flat, low confidences
/// while keeping its ranking.
#[derive(Clone)]
pub struct IntentModel {
    pub(crate) intents: Vec<IntentId>,
    pub(crate) vocabulary: Vocabulary,
    pub(crate) config: TrainConfig,
    pub(crate) training_hash: String,
    /// The ensemble: networks trained with different seeds on the same features.
    pub(crate) members: Vec<Weights>,
}

/// Shows the model's shape, not its millions of weights.
impl fmt::Debug for IntentModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntentModel")
            .field("intents", &self.intents.len())
            .field("feature_rows", &self.vocabulary.len())
            .field("members", &self.members.len())
            .field("hidden", &self.config.hidden)
            .field("training_hash", &self.training_hash)
            .finish()
    }
}

/// The network's parameters, row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Weights {
    pub(crate) hidden: usize,
    /// One row of `hidden` values per vocabulary row.
    pub(crate) embedding: Vec<f32>,
    /// One row of `hidden` values per intent.
    pub(crate) output: Vec<f32>,
}

impl IntentModel {
    /// Returns the intents this model ranks, sorted, in the order of its output layer.
    pub fn intents(&self) -> &[IntentId] {
        &self.intents
    }

    /// Returns the configuration the model was trained with.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Returns the hash of the examples and configuration the model was trained
    /// on, as [`crate::training_hash`] computes it.
    pub fn training_hash(&self) -> &str {
        &self.training_hash
    }

    /// Number of feature rows (hash buckets seen in training) in the first layer.
    pub fn feature_rows(&self) -> usize {
        self.vocabulary.len()
    }

    /// Returns the probability of every intent for `text`, in the order of
    /// [`IntentModel::intents`]: the mean of the ensemble members' softmax outputs.
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        let features = self.vocabulary.vectorize(text);
        let mut mean = vec![0.0f32; self.intents.len()];
        for member in &self.members {
            let hidden = member.hidden_activations(&features);
            let mut probabilities = member.logits(&hidden);
            softmax_in_place(&mut probabilities);
            for (m, p) in mean.iter_mut().zip(probabilities) {
                *m += p / self.members.len() as f32;
            }
        }
        mean
    }
}

impl Weights {
    fn hidden_activations(&self, features: &SparseVector) -> Vec<f32> {
        let mut hidden = vec![0.0f32; self.hidden];
        for (&row, &weight) in features.rows.iter().zip(&features.weights) {
            let start = row as usize * self.hidden;
            let embedding = &self.embedding[start..start + self.hidden];
            for (h, e) in hidden.iter_mut().zip(embedding) {
                *h += weight * e;
            }
        }
        hidden.iter_mut().for_each(|h| *h = h.max(0.0));
        hidden
    }

    fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        self.output.chunks_exact(self.hidden).map(|row| row.iter().zip(hidden).map(|(w, h)| w * h).sum::<f32>()).collect()
    }
}

fn softmax_in_place(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for value in values.iter_mut() {
        *value = (*value - max).exp();
        sum += *value;
    }
    values.iter_mut().for_each(|v| *v /= sum);
}

impl Classifier for IntentModel {
    fn classify(&self, text: &str) -> Classification {
        rank(&self.intents, self.probabilities(text))
    }
}

/// Ranks `intents` by their `probabilities`, given in the same order, highest first.
pub(crate) fn rank(intents: &[IntentId], probabilities: Vec<f32>) -> Classification {
    let mut ranking: Vec<ScoredIntent> = intents
        .iter()
        .zip(probabilities)
        .map(|(intent, confidence)| ScoredIntent { intent: intent.clone(), confidence })
        .collect();
    // Stable sort: ties keep the intents' sorted order, so ranking is deterministic.
    ranking.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    Classification { ranking }
}
