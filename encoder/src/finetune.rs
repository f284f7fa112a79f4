//! Contrastive fine-tuning in the style of SetFit: pairs of a bot's examples
//! are labelled 1 (same intent) or 0 (different intents), and the encoder's
//! transformer layers learn to give the cosine of each pair's vectors that
//! label. Few examples per intent become many pairs, so a pretrained encoder
//! learns which differences between sentences matter to this bot.
//!
//! The forward pass here is padded and built from differentiable candle
//! operations; the packed inference pass stays untouched. The result is a
//! new model folder that [`crate::Encoder::load`] reads like any other.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, IndexOp, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::Serialize;
use tokenizers::Encoding;

use crate::folder::{self, Architecture, ModelFiles, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::kernels::Activation;
use crate::packed::Shape;
use crate::{device, EncoderConfig, EncoderError, Pooling};

/// Files copied from the base model folder besides the weights, when present.
const COPIED_FILES: &[&str] = &[
    CONFIG_FILE,
    TOKENIZER_FILE,
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// Written into the fine-tuned folder: where it came from and how.
pub const PROVENANCE_FILE: &str = "lepton-finetune.json";

/// Settings of [`fine_tune`]. The defaults follow SetFit's, with fewer pairs
/// per example because two CPU cores train about 700 pairs a minute.
#[derive(Clone, Debug, Serialize)]
pub struct FineTuneConfig {
    /// Pair rounds: each round gives every example one pair with another
    /// example of its intent and one with an example of another intent
    /// (SetFit's `num_iterations`).
    pub rounds: usize,
    /// Passes over the pairs.
    pub epochs: usize,
    /// Pairs per optimiser step.
    pub batch_size: usize,
    /// Peak learning rate of AdamW, reached after the warm-up and decayed
    /// linearly to zero.
    pub learning_rate: f64,
    /// Share of the steps spent warming up.
    pub warmup: f64,
    /// How many of the top transformer layers are trained; `None` trains
    /// them all. The embeddings are never trained.
    pub layers: Option<usize>,
    /// Probability of zeroing each activation in training, at BERT's places
    /// (embeddings, attention weights, both residual branches); 0.1 in BERT.
    pub dropout: f32,
    pub seed: u64,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        Self { rounds: 5, epochs: 1, batch_size: 16, learning_rate: 2e-5, warmup: 0.1, layers: None, dropout: 0.1, seed: 42 }
    }
}

/// The outcome of [`fine_tune`]: sizes, losses and time.
#[derive(Clone, Debug, Serialize)]
pub struct FineTuneReport {
    pub examples: usize,
    pub intents: usize,
    pub pairs: usize,
    pub steps: usize,
    /// Mean loss of the first and the last tenth of the steps.
    pub first_loss: f32,
    pub last_loss: f32,
    pub seconds: f64,
}

/// One optimiser step's progress, for a progress line.
#[derive(Clone, Copy, Debug)]
pub struct FineTuneStep {
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
}

#[derive(Serialize)]
struct Provenance<'a> {
    base_model: String,
    settings: &'a FineTuneConfig,
    report: &'a FineTuneReport,
}

/// Fine-tunes the encoder named by `config.model` on `examples` (text,
/// intent) and writes the result as a complete model folder at `out`, which
/// must not exist yet. The texts get `config.query_prefix`, as a customer's
/// messages do. The folder appears only when everything is written.
pub fn fine_tune(
    config: &EncoderConfig,
    examples: &[(String, String)],
    settings: &FineTuneConfig,
    out: &Path,
    progress: impl FnMut(FineTuneStep),
) -> Result<FineTuneReport, EncoderError> {
    check_settings(settings)?;
    let pairs = make_pairs(examples, settings.rounds, settings.seed)?;
    let staging = staging_folder(out)?;
    let result = train_and_write(config, examples, &pairs, settings, &staging, out, progress);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Checks, from its `config.json` alone, that the model in `folder` is one
/// [`fine_tune`] can train, so that a command can report it before loading
/// the weights.
pub fn check_fine_tunable(folder: &Path) -> Result<(), EncoderError> {
    let files = ModelFiles::find(folder)?;
    let text = std::fs::read(&files.config).map_err(|source| EncoderError::Io { path: files.config.clone(), source })?;
    let architecture = folder::read_architecture(&files.config, &text)?;
    reject_unsupported(&files.config, &architecture)
}

fn reject_unsupported(config: &Path, architecture: &Architecture) -> Result<(), EncoderError> {
    if matches!(architecture, Architecture::MpNet(_)) {
        return Err(EncoderError::model(
            config,
            "fine-tuning supports BERT and XLM-RoBERTa encoders, not MPNet; \
             use the model without fine-tuning or pick a BERT-family one such as all-MiniLM-L6-v2",
        ));
    }
    Ok(())
}

fn train_and_write(
    config: &EncoderConfig,
    examples: &[(String, String)],
    pairs: &[Pair],
    settings: &FineTuneConfig,
    staging: &Path,
    out: &Path,
    mut progress: impl FnMut(FineTuneStep),
) -> Result<FineTuneReport, EncoderError> {
    let started = Instant::now();
    keep_freed_memory();

    let files = ModelFiles::find(&config.model)?;
    let config_text = std::fs::read(&files.config).map_err(|source| EncoderError::Io { path: files.config.clone(), source })?;
    let architecture = folder::read_architecture(&files.config, &config_text)?;
    reject_unsupported(&files.config, &architecture)?;
    let layer_count = architecture.layer_count();
    if let Some(layers) = settings.layers.filter(|&layers| layers > layer_count) {
        return Err(EncoderError::FineTune(format!(
            "invalid fine-tuning settings: layers {layers} is more than the model's {layer_count}"
        )));
    }
    let max_tokens = folder::resolve_max_tokens(config.max_tokens, &config.model, &architecture)?;
    let tokenizer = folder::read_tokenizer(&files.tokenizer, max_tokens)?;
    folder::check_limits(&files, &architecture, &tokenizer, max_tokens)?;
    let pooling = match config.pooling {
        Some(pooling) => pooling,
        None => folder::read_pooling(&config.model)?,
    };
    // NOTE: fine-tuning has only run on the CPU. On a CUDA device it uses the
    // same candle operations, but that path is untested.
    let device = device::open(config.device);
    let invalid = |error: candle_core::Error| EncoderError::model(&files.weights, format!("invalid weights: {error}"));
    let weights = candle_core::safetensors::load(&files.weights, &device).map_err(invalid)?;
    let network = Network::new(&architecture, weights, settings.layers).map_err(invalid)?
        .with_dropout(settings.dropout, settings.seed ^ 0xd0_0d);

    let inputs: Vec<String> = examples.iter().map(|(text, _)| format!("{}{text}", config.query_prefix)).collect();
    let encodings = tokenizer.encode_batch_fast(inputs, true).map_err(EncoderError::run)?;
    let pad_id = tokenizer.get_padding().map_or(architecture.pad_token_id(), |p| p.pad_id);

    let steps_per_epoch = pairs.len().div_ceil(settings.batch_size);
    let steps = steps_per_epoch * settings.epochs;
    let params = ParamsAdamW { lr: 0.0, weight_decay: 0.01, ..ParamsAdamW::default() };
    let mut optimizer = AdamW::new(network.trainable.clone(), params).map_err(EncoderError::run)?;
    let warmup_steps = ((steps as f64 * settings.warmup).ceil() as usize).max(1);

    let mut losses = Vec::with_capacity(steps);
    let mut rng = SplitMix(settings.seed ^ 0x5e7f_17);
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    for _ in 0..settings.epochs {
        rng.shuffle(&mut order);
        for batch in order.chunks(settings.batch_size) {
            let step = losses.len();
            optimizer.set_learning_rate(learning_rate(settings, step, steps, warmup_steps));
            let batch: Vec<&Pair> = batch.iter().map(|&index| &pairs[index]).collect();
            let loss = pair_loss(&network, &batch, &encodings, pad_id, pooling, &device).map_err(EncoderError::run)?;
            optimizer.backward_step(&loss).map_err(EncoderError::run)?;
            let loss = loss.to_scalar::<f32>().map_err(EncoderError::run)?;
            if !loss.is_finite() {
                return Err(EncoderError::FineTune(format!("the loss became {loss} at step {step}; lower the learning rate")));
            }
            losses.push(loss);
            progress(FineTuneStep { step: step + 1, steps, loss });
        }
    }

    let tenth = (losses.len() / 10).max(1);
    let mean = |values: &[f32]| values.iter().sum::<f32>() / values.len().max(1) as f32;
    let report = FineTuneReport {
        examples: examples.len(),
        intents: examples.iter().map(|(_, intent)| intent).collect::<std::collections::HashSet<_>>().len(),
        pairs: pairs.len(),
        steps,
        first_loss: mean(&losses[..tenth.min(losses.len())]),
        last_loss: mean(&losses[losses.len().saturating_sub(tenth)..]),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_folder(&config.model, staging, out, &network.weights, &Provenance {
        base_model: config.model.display().to_string(),
        settings,
        report: &report,
    })?;
    Ok(report)
}

/// Makes glibc keep freed memory for reuse. Every training step allocates and
/// frees tensors of a few megabytes. By default glibc returns such blocks to
/// the kernel and maps fresh zeroed pages on the next allocation. Those system
/// calls and page faults took about a third of a fine-tune's time here. This
/// changes the allocator of the whole process, which suits the commands that
/// fine-tune (`lepton model finetune`, `lepton eval --finetune`).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before the
    // training allocates, and an unsupported value is refused, not applied.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

fn check_settings(settings: &FineTuneConfig) -> Result<(), EncoderError> {
    let problem = if settings.rounds == 0 {
        "rounds must be at least 1"
    } else if settings.epochs == 0 {
        "epochs must be at least 1"
    } else if settings.batch_size == 0 {
        "batch size must be at least 1"
    } else if !(settings.learning_rate > 0.0 && settings.learning_rate < 1.0) {
        "learning rate must be above 0 and below 1"
    } else if !(0.0..1.0).contains(&settings.warmup) {
        "warm-up share must be from 0 to below 1"
    } else if settings.layers == Some(0) {
        "layers must be at least 1"
    } else if !(0.0..1.0).contains(&settings.dropout) {
        "dropout must be from 0 to below 1"
    } else {
        return Ok(());
    };
    Err(EncoderError::FineTune(format!("invalid fine-tuning settings: {problem}")))
}

/// Linear warm-up to the peak, then linear decay to zero.
fn learning_rate(settings: &FineTuneConfig, step: usize, steps: usize, warmup_steps: usize) -> f64 {
    if step < warmup_steps {
        return settings.learning_rate * (step + 1) as f64 / warmup_steps as f64;
    }
    let remaining = steps.saturating_sub(step) as f64 / steps.saturating_sub(warmup_steps).max(1) as f64;
    settings.learning_rate * remaining.clamp(0.0, 1.0)
}

/// Two example indices and the cosine their vectors should have.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Pair {
    left: usize,
    right: usize,
    target: f32,
}

/// SetFit's pair sampling: in each round every example is paired once with
/// another example of its intent (when it has one) and once with an example
/// of another intent.
fn make_pairs(examples: &[(String, String)], rounds: usize, seed: u64) -> Result<Vec<Pair>, EncoderError> {
    let mut by_intent: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, (_, intent)) in examples.iter().enumerate() {
        by_intent.entry(intent.as_str()).or_default().push(index);
    }
    if by_intent.len() < 2 {
        return Err(EncoderError::FineTune(format!(
            "fine-tuning needs examples of at least two intents; found {}",
            by_intent.len()
        )));
    }

    let mut rng = SplitMix(seed);
    let mut pairs = Vec::with_capacity(rounds * examples.len() * 2);
    for _ in 0..rounds {
        for (index, (_, intent)) in examples.iter().enumerate() {
            let same = &by_intent[intent.as_str()];
            if same.len() > 1 {
                let mut other = same[rng.below(same.len() - 1)];
                if other == index {
                    other = same[same.len() - 1];
                }
                pairs.push(Pair { left: index, right: other, target: 1.0 });
            }
            // Rejection sampling: most examples belong to other intents.
            loop {
                let other = rng.below(examples.len());
                if examples[other].1 != *intent {
                    pairs.push(Pair { left: index, right: other, target: 0.0 });
                    break;
                }
            }
        }
    }
    Ok(pairs)
}

/// Mean squared error between the pairs' cosines and their targets.
fn pair_loss(
    network: &Network,
    pairs: &[&Pair],
    encodings: &[Encoding],
    pad_id: u32,
    pooling: Pooling,
    device: &Device,
) -> candle_core::Result<Tensor> {
    // Each text of the batch is encoded once, however many pairs it is in.
    let mut slot_of: HashMap<usize, usize> = HashMap::new();
    let mut texts = Vec::new();
    for pair in pairs {
        for index in [pair.left, pair.right] {
            slot_of.entry(index).or_insert_with(|| {
                texts.push(index);
                texts.len() - 1
            });
        }
    }

    let width = texts.iter().map(|&index| encodings[index].len()).max().unwrap_or(1).max(1);
    let mut ids = Vec::with_capacity(texts.len() * width);
    let mut type_ids = Vec::with_capacity(texts.len() * width);
    let mut mask = Vec::with_capacity(texts.len() * width);
    for &index in &texts {
        let encoding = &encodings[index];
        let padding = width - encoding.len();
        ids.extend_from_slice(encoding.get_ids());
        ids.extend(std::iter::repeat_n(pad_id, padding));
        type_ids.extend_from_slice(encoding.get_type_ids());
        type_ids.extend(std::iter::repeat_n(0, padding));
        mask.extend(std::iter::repeat_n(1f32, encoding.len()));
        mask.extend(std::iter::repeat_n(0f32, padding));
    }
    let shape = (texts.len(), width);
    let ids = Tensor::from_vec(ids, shape, device)?;
    let type_ids = Tensor::from_vec(type_ids, shape, device)?;
    let mask = Tensor::from_vec(mask, shape, device)?;

    let tokens = network.forward(&ids, &type_ids, &mask)?;
    let pooled = match pooling {
        Pooling::Cls => tokens.i((.., 0))?,
        Pooling::Mean => {
            let mask = mask.unsqueeze(2)?;
            tokens.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?
        }
    };
    let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
    let unit = pooled.broadcast_div(&norm)?;

    let left: Vec<u32> = pairs.iter().map(|pair| slot_of[&pair.left] as u32).collect();
    let right: Vec<u32> = pairs.iter().map(|pair| slot_of[&pair.right] as u32).collect();
    let targets: Vec<f32> = pairs.iter().map(|pair| pair.target).collect();
    let left = unit.index_select(&Tensor::new(left, device)?, 0)?;
    let right = unit.index_select(&Tensor::new(right, device)?, 0)?;
    let cosine = (left * right)?.sum(1)?;
    let targets = Tensor::new(targets, device)?;
    (cosine - targets)?.sqr()?.mean_all()
}

struct Norm {
    gamma: Tensor,
    beta: Tensor,
}

struct Dense {
    weight: Tensor,
    bias: Tensor,
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    output_norm: Norm,
}

/// A padded BERT / XLM-RoBERTa forward pass whose trained weights are
/// candle [`Var`]s, so the loss can be differentiated.
struct Network {
    dropout: f32,
    /// Draws the dropout masks, so a fine-tune is reproducible.
    rng: std::cell::RefCell<SplitMix>,
    /// Every tensor of the weights file by name, trained ones included: the
    /// trained tensors share storage with their variables.
    weights: HashMap<String, Tensor>,
    trainable: Vec<Var>,
    words: Tensor,
    positions: Tensor,
    token_types: Tensor,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    eps: f64,
    activation: Activation,
    first_position: u32,
}

impl Network {
    fn new(architecture: &Architecture, weights: HashMap<String, Tensor>, layers: Option<usize>) -> candle_core::Result<Self> {
        let shape = Shape::of(architecture).map_err(candle_core::Error::msg)?;
        let count = shape.layers;
        let model_prefix = format!("{}.", shape.prefix);
        let prefix = if weights.contains_key(&format!("{model_prefix}embeddings.word_embeddings.weight")) {
            model_prefix
        } else {
            String::new()
        };
        let first_trained = count - layers.unwrap_or(count).min(count);

        let mut weights: HashMap<String, Tensor> = weights
            .into_iter()
            .map(|(name, tensor)| Ok((name, tensor.to_dtype(DType::F32)?)))
            .collect::<candle_core::Result<_>>()?;
        let mut trainable = Vec::new();
        let mut get = |name: &str, trained: bool| -> candle_core::Result<Tensor> {
            let full = format!("{prefix}{name}");
            let Some(tensor) = weights.get(&full) else {
                candle_core::bail!("missing tensor {full}");
            };
            if !trained {
                return Ok(tensor.clone());
            }
            let var = Var::from_tensor(tensor)?;
            let tensor = var.as_tensor().clone();
            weights.insert(full, tensor.clone());
            trainable.push(var);
            Ok(tensor)
        };

        let mut dense = |name: &str, trained: bool| -> candle_core::Result<Dense> {
            Ok(Dense { weight: get(&format!("{name}.weight"), trained)?, bias: get(&format!("{name}.bias"), trained)? })
        };
        let mut parsed_layers = Vec::with_capacity(count);
        for index in 0..count {
            let trained = index >= first_trained;
            let name = format!("encoder.layer.{index}");
            let query = dense(&format!("{name}.attention.self.query"), trained)?;
            let key = dense(&format!("{name}.attention.self.key"), trained)?;
            let value = dense(&format!("{name}.attention.self.value"), trained)?;
            let attention_out = dense(&format!("{name}.attention.output.dense"), trained)?;
            let attention_norm = dense(&format!("{name}.attention.output.LayerNorm"), trained)?;
            let up = dense(&format!("{name}.intermediate.dense"), trained)?;
            let down = dense(&format!("{name}.output.dense"), trained)?;
            let output_norm = dense(&format!("{name}.output.LayerNorm"), trained)?;
            parsed_layers.push(Layer {
                query,
                key,
                value,
                attention_out,
                attention_norm: Norm { gamma: attention_norm.weight, beta: attention_norm.bias },
                up,
                down,
                output_norm: Norm { gamma: output_norm.weight, beta: output_norm.bias },
            });
        }
        let embedding_norm = dense("embeddings.LayerNorm", false)?;

        Ok(Self {
            dropout: 0.0,
            rng: std::cell::RefCell::new(SplitMix(0)),
            words: get("embeddings.word_embeddings.weight", false)?,
            positions: get("embeddings.position_embeddings.weight", false)?,
            token_types: get("embeddings.token_type_embeddings.weight", false)?,
            embedding_norm: Norm { gamma: embedding_norm.weight, beta: embedding_norm.bias },
            layers: parsed_layers,
            heads: shape.heads,
            eps: shape.eps,
            activation: shape.activation,
            first_position: shape.first_position,
            trainable,
            weights,
        })
    }

    fn with_dropout(mut self, dropout: f32, seed: u64) -> Self {
        self.dropout = dropout;
        self.rng = std::cell::RefCell::new(SplitMix(seed));
        self
    }

    /// Zeroes each value with probability `self.dropout` and scales the rest
    /// up to keep the mean.
    fn drop(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.dropout == 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 / (1.0 - self.dropout);
        let cut = (f64::from(self.dropout) * (1u64 << 53) as f64) as u64;
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.next() >> 11 < cut { 0.0 } else { keep }).collect();
        x * Tensor::from_vec(mask, x.shape(), x.device())?
    }

    /// Token vectors `[texts, width, hidden]`; `mask` is 1 for tokens and 0 for padding.
    fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (texts, width) = ids.dims2()?;
        let hidden = self.words.dim(1)?;
        let words = self.words.index_select(&ids.flatten_all()?, 0)?;
        let types = self.token_types.index_select(&type_ids.flatten_all()?, 0)?;
        let positions = Tensor::arange(self.first_position, self.first_position + width as u32, ids.device())?;
        let positions = self.positions.index_select(&positions, 0)?;
        let embedded = (words + types)?.reshape((texts, width, hidden))?.broadcast_add(&positions)?;
        let mut x = self.drop(&self.norm(&embedded, &self.embedding_norm)?)?;

        // Padding gets a large negative score, so softmax gives it no weight.
        let bias = ((mask - 1.0)? * 1e4)?.reshape((texts, 1, 1, width))?;
        for layer in &self.layers {
            x = self.layer(&x, layer, &bias)?;
        }
        Ok(x)
    }

    fn layer(&self, x: &Tensor, layer: &Layer, bias: &Tensor) -> candle_core::Result<Tensor> {
        let (texts, width, hidden) = x.dims3()?;
        let head = hidden / self.heads;
        let split = |t: Tensor| t.reshape((texts, width, self.heads, head))?.transpose(1, 2)?.contiguous();
        let query = split(linear(x, &layer.query)?)?;
        let key = split(linear(x, &layer.key)?)?;
        let value = split(linear(x, &layer.value)?)?;

        let scores = (query.matmul(&key.t()?)? * (1.0 / (head as f64).sqrt()))?.broadcast_add(bias)?;
        let max = scores.max_keepdim(D::Minus1)?.detach();
        let exp = scores.broadcast_sub(&max)?.exp()?;
        let weights = self.drop(&exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)?)?;
        let context = weights.matmul(&value)?.transpose(1, 2)?.reshape((texts, width, hidden))?;

        let attended = self.drop(&linear(&context, &layer.attention_out)?)?;
        let x = self.norm(&(attended + x)?, &layer.attention_norm)?;
        let up = linear(&x, &layer.up)?;
        let up = match self.activation {
            Activation::GeluErf => up.gelu_erf()?,
            Activation::GeluTanh => up.gelu()?,
            Activation::Relu => up.relu()?,
        };
        let down = self.drop(&linear(&up, &layer.down)?)?;
        self.norm(&(down + x)?, &layer.output_norm)
    }

    fn norm(&self, x: &Tensor, norm: &Norm) -> candle_core::Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normalised = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normalised.broadcast_mul(&norm.gamma)?.broadcast_add(&norm.beta)
    }
}

/// `x @ weight.T + bias` over the last dimension of a `[texts, width, in]` tensor.
fn linear(x: &Tensor, dense: &Dense) -> candle_core::Result<Tensor> {
    let (texts, width, inputs) = x.dims3()?;
    let outputs = dense.weight.dim(0)?;
    x.reshape((texts * width, inputs))?
        .matmul(&dense.weight.t()?)?
        .broadcast_add(&dense.bias)?
        .reshape((texts, width, outputs))
}

/// Creates the temporary sibling folder that [`write_folder`] fills before
/// renaming it to `out`, and returns it. Runs before training, so an `out`
/// that cannot be written fails in milliseconds. Removes the staging folders
/// of earlier fine-tunes to `out` whose process has ended (interrupted ones).
fn staging_folder(out: &Path) -> Result<PathBuf, EncoderError> {
    if out.symlink_metadata().is_ok() {
        return Err(EncoderError::model(out, "the output folder already exists; choose a new folder or remove it"));
    }
    let name = out.file_name().ok_or_else(|| EncoderError::model(out, "the output path names no folder"))?;
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|source| EncoderError::Write { path: parent.clone(), source })?;

    let prefix = format!(".{}.incomplete-", name.to_string_lossy());
    if let Ok(listing) = std::fs::read_dir(&parent) {
        for entry in listing.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !process_alive(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    let staging = parent.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|source| EncoderError::Write { path: staging.clone(), source })?;
    Ok(staging)
}

/// Returns whether a process with this id is running. Off Linux it returns
/// `true`, so only folders of processes known to have ended are removed.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Writes the fine-tuned folder into `staging` and renames it to `out`.
fn write_folder(
    base: &Path,
    staging: &Path,
    out: &Path,
    weights: &HashMap<String, Tensor>,
    provenance: &Provenance,
) -> Result<(), EncoderError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| EncoderError::Write { path, source }
    };

    let result = (|| {
        for file in COPIED_FILES {
            let source = base.join(file);
            if !source.is_file() {
                continue;
            }
            let target = staging.join(file);
            if let Some(folder) = target.parent() {
                std::fs::create_dir_all(folder).map_err(io(folder))?;
            }
            std::fs::copy(&source, &target).map_err(io(&target))?;
        }
        let path = staging.join(WEIGHTS_FILE);
        let ordered: BTreeMap<&String, &Tensor> = weights.iter().collect();
        let owned: HashMap<String, Tensor> = ordered.into_iter().map(|(name, tensor)| (name.clone(), tensor.detach())).collect();
        candle_core::safetensors::save(&owned, &path).map_err(|error| EncoderError::model(&path, format!("cannot write weights: {error}")))?;
        // Readable like the copied files, for a server running as another user.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(io(&path))?;
        }
        let path = staging.join(PROVENANCE_FILE);
        let text = serde_json::to_vec_pretty(provenance).map_err(EncoderError::run)?;
        std::fs::write(&path, text).map_err(io(&path))?;
        if out.exists() {
            return Err(EncoderError::model(out, "the output folder appeared during the fine-tuning; the result was not written"));
        }
        std::fs::rename(staging, out).map_err(io(out))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(staging);
    }
    result
}

/// A small seeded generator (SplitMix64): pair sampling must be reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; `bound` must be positive.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            items.swap(index, self.below(index + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encoder, TextKind};

    fn examples() -> Vec<(String, String)> {
        let intents = [
            ("refund", ["I want my money back", "how do I get a refund", "refund my order please", "can I return this for a refund"]),
            ("track", ["where is my parcel", "track my order", "my package has not arrived", "when will my order be delivered"]),
            ("password", ["I forgot my password", "reset my password", "I cannot log in", "change the password of my account"]),
        ];
        intents
            .iter()
            .flat_map(|(intent, texts)| texts.iter().map(|text| (text.to_string(), intent.to_string())))
            .collect()
    }

    /// Mean cosine between examples of the same intent minus that between
    /// examples of different intents.
    fn separation(vectors: &[Vec<f32>], examples: &[(String, String)]) -> f32 {
        let (mut same, mut same_count, mut other, mut other_count) = (0.0, 0, 0.0, 0);
        for i in 0..vectors.len() {
            for j in i + 1..vectors.len() {
                let cosine = crate::dot(&vectors[i], &vectors[j]);
                if examples[i].1 == examples[j].1 {
                    same += cosine;
                    same_count += 1;
                } else {
                    other += cosine;
                    other_count += 1;
                }
            }
        }
        same / same_count as f32 - other / other_count as f32
    }

    #[test]
    fn make_pairs_labels_by_intent() {
        let examples = examples();
        let pairs = make_pairs(&examples, 3, 7).unwrap();
        assert_eq!(pairs.len(), 3 * examples.len() * 2);
        for pair in &pairs {
            assert_ne!(pair.left, pair.right);
            let same = examples[pair.left].1 == examples[pair.right].1;
            assert_eq!(pair.target, if same { 1.0 } else { 0.0 });
        }
        assert_eq!(pairs, make_pairs(&examples, 3, 7).unwrap());
    }

    #[test]
    fn one_intent_is_refused() {
        let examples = vec![("a".to_owned(), "x".to_owned()), ("b".to_owned(), "x".to_owned())];
        let error = make_pairs(&examples, 1, 1).unwrap_err().to_string();
        assert!(error.contains("at least two intents"), "{error}");
    }

    #[test]
    fn mpnet_fine_tune_rejected() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-mpnet");
        let out = std::env::temp_dir().join(format!("lepton-finetune-mpnet-{}", std::process::id()));
        let examples: Vec<(String, String)> = [("refund", "a"), ("where is my parcel", "a"), ("reset password", "b"), ("cancel it", "b")]
            .iter()
            .map(|(text, intent)| (text.to_string(), intent.to_string()))
            .collect();
        let error = fine_tune(&EncoderConfig::new(&model), &examples, &FineTuneConfig::default(), &out, |_| {})
            .unwrap_err()
            .to_string();
        assert!(error.contains("not MPNet"), "{error}");
        assert!(!out.exists(), "a refused fine-tune left {}", out.display());
    }

    #[test]
    fn invalid_settings_are_refused() {
        for settings in [
            FineTuneConfig { rounds: 0, ..FineTuneConfig::default() },
            FineTuneConfig { learning_rate: f64::NAN, ..FineTuneConfig::default() },
            FineTuneConfig { learning_rate: 0.0, ..FineTuneConfig::default() },
            FineTuneConfig { warmup: 1.0, ..FineTuneConfig::default() },
            FineTuneConfig { layers: Some(0), ..FineTuneConfig::default() },
            FineTuneConfig { dropout: 1.0, ..FineTuneConfig::default() },
        ] {
            let error = check_settings(&settings).unwrap_err().to_string();
            assert!(error.contains("invalid fine-tuning settings"), "{error}");
        }
    }

    #[test]
    fn learning_rate_warms_up_then_decays_to_zero() {
        let settings = FineTuneConfig { learning_rate: 1.0, ..FineTuneConfig::default() };
        assert_eq!(learning_rate(&settings, 0, 100, 10), 0.1);
        assert_eq!(learning_rate(&settings, 9, 100, 10), 1.0);
        assert_eq!(learning_rate(&settings, 10, 100, 10), 1.0);
        assert!(learning_rate(&settings, 99, 100, 10) < 0.02);
    }

    #[test]
    fn differentiable_pass_equals_the_encoder() -> Result<(), EncoderError> {
        let folder = match crate::test_model() {
            Ok(folder) => folder,
            Err(reason) => {
                eprintln!("skipped: no test model: {reason}");
                return Ok(());
            }
        };
        let config = EncoderConfig::new(&folder);
        let encoder = Encoder::load(&config)?;
        let files = ModelFiles::find(&folder)?;
        let architecture = folder::read_architecture(&files.config, &std::fs::read(&files.config).unwrap())?;
        let tokenizer = folder::read_tokenizer(&files.tokenizer, encoder.max_tokens())?;
        let weights = candle_core::safetensors::load(&files.weights, &Device::Cpu).unwrap();
        let network = Network::new(&architecture, weights, Some(2)).unwrap();

        let texts = ["hi", "a longer text about a parcel that never arrived at my door", "reset password"];
        let encodings = tokenizer.encode_batch_fast(texts.to_vec(), true).unwrap();
        let expected = encoder.embed(&texts, TextKind::Query)?;
        for (index, reference) in expected.iter().enumerate() {
            let width = encodings[index].len();
            let ids = Tensor::new(encodings[index].get_ids(), &Device::Cpu).unwrap().reshape((1, width)).unwrap();
            let types = ids.zeros_like().unwrap();
            let mask = Tensor::ones((1, width), DType::F32, &Device::Cpu).unwrap();
            let tokens = network.forward(&ids, &types, &mask).unwrap();
            let pooled: Vec<f32> = tokens.mean(1).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
            let norm = crate::dot(&pooled, &pooled).sqrt();
            let cosine = crate::dot(&pooled, reference) / norm;
            assert!(cosine > 0.9999, "{:?}: cosine {cosine}", texts[index]);
        }
        Ok(())
    }

    #[test]
    fn fine_tune_separates_intents() -> Result<(), EncoderError> {
        let folder = match crate::test_model() {
            Ok(folder) => folder,
            Err(reason) => {
                eprintln!("skipped: no test model: {reason}");
                return Ok(());
            }
        };
        let examples = examples();
        let texts: Vec<&str> = examples.iter().map(|(text, _)| text.as_str()).collect();
        let config = EncoderConfig::new(&folder);
        let before = separation(&Encoder::load(&config)?.embed(&texts, TextKind::Query)?, &examples);

        let scratch = std::env::temp_dir().join(format!("lepton-finetune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let out = scratch.join("tuned");
        // The staging folder of an interrupted fine-tune, whose process is gone.
        let stale = scratch.join(".tuned.incomplete-4000000000");
        std::fs::create_dir_all(&stale).unwrap();
        let too_deep = FineTuneConfig { layers: Some(7), ..FineTuneConfig::default() };
        let error = fine_tune(&config, &examples, &too_deep, &out, |_| panic!("trained")).unwrap_err().to_string();
        assert!(error.contains("layers 7 is more than the model's 6"), "{error}");
        let settings = FineTuneConfig { rounds: 4, batch_size: 8, learning_rate: 1e-4, ..FineTuneConfig::default() };
        let mut steps = 0;
        let report = fine_tune(&config, &examples, &settings, &out, |_| steps += 1)?;
        assert_eq!(report.pairs, 4 * examples.len() * 2);
        assert_eq!(steps, report.steps);
        assert!(report.last_loss < report.first_loss, "{report:?}");

        let tuned = Encoder::load(&EncoderConfig::new(&out))?;
        assert_ne!(tuned.fingerprint(), Encoder::load(&config)?.fingerprint());
        let after = separation(&tuned.embed(&texts, TextKind::Query)?, &examples);
        assert!(after > before + 0.1, "separation {before} -> {after}");
        assert!(out.join(PROVENANCE_FILE).is_file());
        assert!(!stale.exists(), "the interrupted fine-tune's staging folder is still there");

        let again = fine_tune(&config, &examples, &settings, &out, |_| {}).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        let nameless = fine_tune(&config, &examples, &settings, Path::new(""), |_| panic!("trained")).unwrap_err().to_string();
        assert!(nameless.contains("names no folder"), "{nameless}");
        let leftovers: Vec<_> = std::fs::read_dir(&scratch).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        std::fs::remove_dir_all(&scratch).unwrap();
        Ok(())
    }
}
