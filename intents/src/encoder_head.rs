//! Training the intent head on frozen sentence embeddings with candle.
//!
//! Each ensemble member is a softmax layer on the embedding, optionally behind
//! one hidden ReLU layer, whose logits are multiplied by a scale. The
//! embeddings are unit vectors, so without the scale the logits of a small
//! network stay near zero and the softmax stays flat; the scale starts at
//! [`HeadConfig::initial_scale`] and is learned when
//! [`HeadConfig::learn_scale`] is set (a learned temperature). Everything
//! runs on candle tensors and candle-nn's `AdamW`, with the learning rate
//! decaying linearly to 0. The result depends only on the seed.

use candle_core::{Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::error::IntentError;
use crate::rng::SplitMix64;
use crate::train::TrainConfig;

/// Hyperparameters of the encoder intent head. Part of the training hash:
/// changing any field retrains a stored head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// Missing fields take their default values.
#[serde(default, deny_unknown_fields)]
pub struct HeadConfig {
    /// Width of the hidden ReLU layer; 0 gives multinomial logistic regression.
    pub hidden: usize,
    /// Networks in the ensemble, each from its own seed; their probabilities are averaged.
    pub members: usize,
    /// Passes over the examples; raised when needed to reach `min_steps`.
    pub epochs: usize,
    /// Minimum number of optimiser steps, so that few-shot training converges.
    pub min_steps: usize,
    pub batch_size: usize,
    /// Peak learning rate; it decays linearly to 0.
    pub learning_rate: f64,
    /// Decoupled (AdamW) weight decay of the weight matrices (not of biases or the scale).
    pub weight_decay: f64,
    /// Probability of dropping each embedding component during training.
    pub input_dropout: f32,
    /// Probability of dropping each hidden unit during training.
    pub dropout: f32,
    /// Share of the target probability spread over all intents (0 = one-hot).
    pub label_smoothing: f32,
    /// The factor the logits are multiplied by at the start of training.
    pub initial_scale: f32,
    /// Whether training adjusts the logit scale (a learned temperature).
    pub learn_scale: bool,
    /// Familiarity gate: below this cosine similarity between a text's
    /// embedding and the nearest intent centroid (the normalised mean of an
    /// intent's example embeddings) the logits are scaled to 0, so the
    /// confidences become equal.
    pub unfamiliar_similarity: f32,
    /// At or above this similarity the logits keep their size; in between they
    /// are scaled linearly. A softmax head alone is confident about any text,
    /// in scope or not; the gate makes confidence follow familiarity, as in
    /// the n-gram model. Equal to `unfamiliar_similarity` (both 0, say)
    /// turns the gate off.
    pub familiar_similarity: f32,
    /// Weight of the embedded n-gram model ([`crate::IntentModel`]) in a
    /// blend of the two models' probabilities; 0 trains no n-gram model.
    pub ngram_weight: f32,
    /// Training configuration of the n-gram model when `ngram_weight` is above 0.
    pub ngram: TrainConfig,
    pub seed: u64,
}

/// The defaults were chosen on CLINC150 and BANKING77 with all-MiniLM-L6-v2:
/// the blend with the n-gram model and the weight decay each raised test
/// accuracy by about one point (docs/benchmarks.md has the figures).
impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            hidden: 0,
            members: 1,
            epochs: 30,
            min_steps: 600,
            batch_size: 32,
            learning_rate: 0.01,
            weight_decay: 0.05,
            input_dropout: 0.0,
            dropout: 0.0,
            label_smoothing: 0.0,
            initial_scale: 5.0,
            learn_scale: false,
            // NOTE: bounds measured with all-MiniLM-L6-v2. Any two e5 vectors have
            // a cosine of about 0.7 or more, so with e5 the gate never acts;
            // bounds derived from each encoder's similarity spread would fix that.
            unfamiliar_similarity: 0.2,
            familiar_similarity: 0.5,
            ngram_weight: 0.5,
            ngram: TrainConfig::default(),
            seed: 42,
        }
    }
}

impl HeadConfig {
    /// Returns the default configuration with `seed` (also the n-gram model's seed).
    pub fn with_seed(seed: u64) -> Self {
        let default = Self::default();
        Self { seed, ngram: TrainConfig { seed, ..default.ngram.clone() }, ..default }
    }

    pub(crate) fn validate(&self) -> Result<(), IntentError> {
        let invalid = |field: &'static str, problem: String| Err(IntentError::InvalidConfig { field, problem });

        for (field, value) in [("members", self.members), ("epochs", self.epochs), ("batch_size", self.batch_size)] {
            if value == 0 {
                return invalid(field, "is 0, expected at least 1".to_owned());
            }
        }
        for (field, value) in [
            ("input_dropout", self.input_dropout),
            ("dropout", self.dropout),
            ("label_smoothing", self.label_smoothing),
        ] {
            if !(0.0..1.0).contains(&value) {
                return invalid(field, format!("is {value}, expected at least 0 and below 1"));
            }
        }
        if !(0.0..=1.0).contains(&self.ngram_weight) {
            return invalid("ngram_weight", format!("is {}, expected 0 to 1", self.ngram_weight));
        }
        if !(-1.0..=1.0).contains(&self.unfamiliar_similarity) || !(self.unfamiliar_similarity..=1.0).contains(&self.familiar_similarity) {
            return invalid(
                "familiar_similarity",
                format!("is {} with unfamiliar_similarity {}, expected -1 <= unfamiliar <= familiar <= 1", self.familiar_similarity, self.unfamiliar_similarity),
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return invalid("learning_rate", format!("is {}, expected a positive number", self.learning_rate));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return invalid("weight_decay", format!("is {}, expected 0 or more", self.weight_decay));
        }
        if !(self.initial_scale > 0.0 && self.initial_scale.is_finite()) {
            return invalid("initial_scale", format!("is {}, expected a positive number", self.initial_scale));
        }
        if self.ngram_weight > 0.0 {
            self.ngram.validate()?;
        }
        Ok(())
    }
}

/// One trained member, row-major, ready for plain `f32` inference.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeadWeights {
    /// `hidden × input` (empty when `hidden` is 0).
    pub(crate) hidden_weight: Vec<f32>,
    pub(crate) hidden_bias: Vec<f32>,
    /// `classes × width`, where width is `hidden`, or the input dimension without a hidden layer.
    pub(crate) output_weight: Vec<f32>,
    pub(crate) output_bias: Vec<f32>,
    pub(crate) scale: f32,
}

impl HeadWeights {
    /// Returns the member's softmax output for one embedding, with the logits
    /// multiplied by `gate` (0 to 1).
    pub(crate) fn probabilities(&self, embedding: &[f32], gate: f32) -> Vec<f32> {
        let input = embedding.len();
        let hidden: Vec<f32>;
        let features = if self.hidden_bias.is_empty() {
            embedding
        } else {
            hidden = self
                .hidden_weight
                .chunks_exact(input)
                .zip(&self.hidden_bias)
                .map(|(row, bias)| (dot(row, embedding) + bias).max(0.0))
                .collect();
            &hidden
        };

        let width = features.len();
        let mut logits: Vec<f32> =
            self.output_weight.chunks_exact(width).zip(&self.output_bias).map(|(row, bias)| (dot(row, features) + bias) * self.scale * gate).collect();
        softmax_in_place(&mut logits);
        logits
    }
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn softmax_in_place(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for value in values.iter_mut() {
        *value = (*value - max).exp();
        sum += *value;
    }
    values.iter_mut().for_each(|v| *v /= sum);
}

/// Returns the normalised mean of each class's vectors, `classes × dimension`, row-major.
pub(crate) fn centroids(vectors: &[Vec<f32>], labels: &[u32], classes: usize) -> Vec<f32> {
    let dimension = vectors[0].len();
    let mut sums = vec![0.0f32; classes * dimension];
    for (vector, &label) in vectors.iter().zip(labels) {
        let row = &mut sums[label as usize * dimension..(label as usize + 1) * dimension];
        row.iter_mut().zip(vector).for_each(|(s, v)| *s += v);
    }
    for row in sums.chunks_exact_mut(dimension) {
        let norm = dot(row, row).sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
    sums
}

/// Trains `config.members` members on `vectors` (one embedding per example,
/// all of one length) with class indices `labels` below `classes`.
pub(crate) fn train_members(vectors: &[Vec<f32>], labels: &[u32], classes: usize, config: &HeadConfig) -> Result<Vec<HeadWeights>, IntentError> {
    let device = Device::Cpu;
    let input = vectors[0].len();
    let flat: Vec<f32> = vectors.iter().flat_map(|v| v.iter().copied()).collect();
    let inputs = Tensor::from_vec(flat, (vectors.len(), input), &device)?;

    // Members are independent, so they train on threads of their own; each one's
    // result depends only on its seed, not on scheduling.
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.members)
            .map(|member| {
                let inputs = &inputs;
                scope.spawn(move || Member::new(config, member_seed(config.seed, member), input, classes)?.run(inputs, labels))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// Returns the seed of ensemble member `member`, far apart for neighbouring members.
fn member_seed(seed: u64, member: usize) -> u64 {
    seed.wrapping_add((member as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

struct Member<'a> {
    config: &'a HeadConfig,
    device: Device,
    rng: SplitMix64,
    hidden: Option<(Var, Var)>,
    output: (Var, Var),
    log_scale: Var,
    weights_optimizer: AdamW,
    other_optimizer: AdamW,
}

impl<'a> Member<'a> {
    fn new(config: &'a HeadConfig, seed: u64, input: usize, classes: usize) -> Result<Self, IntentError> {
        let device = Device::Cpu;
        let mut rng = SplitMix64::new(seed);
        let mut uniform = |rows: usize, columns: usize| -> Result<Var, IntentError> {
            let limit = (6.0 / (rows + columns) as f32).sqrt();
            let values: Vec<f32> = (0..rows * columns).map(|_| rng.uniform(limit)).collect();
            Ok(Var::from_vec(values, (rows, columns), &device)?)
        };

        let hidden = if config.hidden > 0 {
            Some((uniform(input, config.hidden)?, Var::zeros(config.hidden, candle_core::DType::F32, &device)?))
        } else {
            None
        };
        let width = if config.hidden > 0 { config.hidden } else { input };
        let output = (uniform(width, classes)?, Var::zeros(classes, candle_core::DType::F32, &device)?);
        let log_scale = Var::from_vec(vec![config.initial_scale.ln()], 1, &device)?;

        let mut weights = vec![output.0.clone()];
        let mut others = vec![output.1.clone()];
        if let Some((weight, bias)) = &hidden {
            weights.push(weight.clone());
            others.push(bias.clone());
        }
        if config.learn_scale {
            others.push(log_scale.clone());
        }
        let params = ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..ParamsAdamW::default() };
        let weights_optimizer = AdamW::new(weights, params.clone())?;
        let other_optimizer = AdamW::new(others, ParamsAdamW { weight_decay: 0.0, ..params })?;

        Ok(Self { config, device, rng, hidden, output, log_scale, weights_optimizer, other_optimizer })
    }

    fn run(mut self, inputs: &Tensor, labels: &[u32]) -> Result<HeadWeights, IntentError> {
        let examples = labels.len();
        let steps_per_epoch = examples.div_ceil(self.config.batch_size);
        let epochs = self.config.epochs.max(self.config.min_steps.div_ceil(steps_per_epoch));
        let total_steps = epochs * steps_per_epoch;

        let mut order: Vec<usize> = (0..examples).collect();
        let mut step = 0;
        for epoch in 0..epochs {
            self.rng.shuffle(&mut order);
            let mut loss_sum = 0.0;
            for batch in order.chunks(self.config.batch_size) {
                let lr_scale = 1.0 - step as f64 / total_steps as f64;
                step += 1;
                loss_sum += self.step(inputs, labels, batch, lr_scale)?;
            }
            tracing::debug!(epoch, mean_loss = loss_sum / steps_per_epoch as f32, "intent head training epoch");
        }
        self.into_weights()
    }

    /// Runs one optimiser step on the examples `batch` and returns the batch loss.
    fn step(&mut self, inputs: &Tensor, labels: &[u32], batch: &[usize], lr_scale: f64) -> Result<f32, IntentError> {
        let indices: Vec<u32> = batch.iter().map(|&i| i as u32).collect();
        let indices = Tensor::from_vec(indices, batch.len(), &self.device)?;
        let mut features = inputs.index_select(&indices, 0)?;
        features = self.dropout(features, self.config.input_dropout)?;

        if let Some((weight, bias)) = &self.hidden {
            let hidden = features.matmul(weight.as_tensor())?.broadcast_add(bias.as_tensor())?.relu()?;
            features = self.dropout(hidden, self.config.dropout)?;
        }
        let (weight, bias) = &self.output;
        let logits = features.matmul(weight.as_tensor())?.broadcast_add(bias.as_tensor())?;
        let logits = logits.broadcast_mul(&self.log_scale.as_tensor().exp()?)?;

        let batch_labels: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
        let batch_labels = Tensor::from_vec(batch_labels, batch.len(), &self.device)?;
        let loss = self.loss(&logits, &batch_labels)?;
        let grads = loss.backward()?;

        for optimizer in [&mut self.weights_optimizer, &mut self.other_optimizer] {
            optimizer.set_learning_rate(self.config.learning_rate * lr_scale);
            optimizer.step(&grads)?;
        }
        Ok(loss.to_scalar::<f32>()?)
    }

    /// Zeroes each value with probability `rate` and scales the rest to keep the expectation.
    fn dropout(&mut self, values: Tensor, rate: f32) -> Result<Tensor, IntentError> {
        if rate == 0.0 {
            return Ok(values);
        }
        let keep = 1.0 - rate;
        let mask: Vec<f32> = (0..values.elem_count()).map(|_| if self.rng.next_f32() < keep { 1.0 / keep } else { 0.0 }).collect();
        Ok(values.mul(&Tensor::from_vec(mask, values.shape(), &self.device)?)?)
    }

    /// Returns the mean cross-entropy, with label smoothing when configured.
    fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor, IntentError> {
        let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        let nll = log_probs.gather(&labels.unsqueeze(1)?, 1)?.mean_all()?.neg()?;
        let smoothing = f64::from(self.config.label_smoothing);
        if smoothing == 0.0 {
            return Ok(nll);
        }
        let uniform = log_probs.mean_all()?.neg()?;
        Ok(((nll * (1.0 - smoothing))? + (uniform * smoothing)?)?)
    }

    fn into_weights(self) -> Result<HeadWeights, IntentError> {
        let rows = |var: &Var| -> Result<Vec<f32>, IntentError> { Ok(var.as_tensor().t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?) };
        let vector = |var: &Var| -> Result<Vec<f32>, IntentError> { Ok(var.as_tensor().to_vec1::<f32>()?) };

        let (hidden_weight, hidden_bias) = match &self.hidden {
            Some((weight, bias)) => (rows(weight)?, vector(bias)?),
            None => (Vec::new(), Vec::new()),
        };
        Ok(HeadWeights {
            hidden_weight,
            hidden_bias,
            output_weight: rows(&self.output.0)?,
            output_bias: vector(&self.output.1)?,
            scale: vector(&self.log_scale)?[0].exp(),
        })
    }
}
