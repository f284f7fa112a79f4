//! The loaded encoder: tokenising, batching by length, the forward pass and
//! pooling.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, IndexOp, Tensor};
use sha2::{Digest, Sha256};
use tokenizers::{Encoding, Tokenizer};

use candle_nn::VarBuilder;

use crate::folder::{self, Architecture, ModelFiles};
use crate::network::Network;
use crate::packed::PackedEncoder;
use crate::{device, EncoderConfig, EncoderError, Pooling, TextKind};

/// The forward pass in use.
enum Backend {
    /// Own packed pass on the CPU: no padding, fused kernels.
    Packed(PackedEncoder),
    /// candle-transformers' padded pass: GPUs, and architectures the packed
    /// pass does not cover.
    Padded(Network),
}

/// Set to `padded` to run candle-transformers' padded forward pass on the
/// CPU too, for comparison in benchmarks and tests.
pub const FORWARD_ENV: &str = "LEPTON_ENCODER_FORWARD";

/// The largest share of unknown tokens in a text that [`Encoder::covers`]
/// accepts. A Chinese question has 50-100% unknown tokens under an English-only
/// vocabulary such as all-MiniLM-L6-v2's; an English sentence with one Chinese
/// word stays below it.
pub const MAX_UNKNOWN_SHARE: f32 = 0.3;

/// A loaded sentence encoder. `Send + Sync`; share it in an `Arc`.
pub struct Encoder {
    config: EncoderConfig,
    backend: Backend,
    tokenizer: Tokenizer,
    device: Device,
    pooling: Pooling,
    dimension: usize,
    pad_id: u32,
    fingerprint: String,
    /// `config.max_tokens`, or the folder's default when that is `None`.
    max_tokens: usize,
}

impl Encoder {
    /// Loads the model folder named by `config.model`.
    pub fn load(config: &EncoderConfig) -> Result<Self, EncoderError> {
        let padded = match std::env::var(FORWARD_ENV) {
            Ok(value) if value == "padded" => true,
            Ok(value) if value.is_empty() || value == "packed" => false,
            Ok(value) => {
                tracing::warn!(%value, "unknown {FORWARD_ENV}, expected packed or padded; using the packed pass");
                false
            }
            Err(_) => false,
        };
        Self::load_with(config, padded)
    }

    fn load_with(config: &EncoderConfig, padded: bool) -> Result<Self, EncoderError> {
        let started = Instant::now();
        let files = ModelFiles::find(&config.model)?;

        let config_text = read(&files.config)?;
        let architecture = folder::read_architecture(&files.config, &config_text)?;
        let tokenizer_text = read(&files.tokenizer)?;
        let max_tokens = folder::resolve_max_tokens(config.max_tokens, &config.model, &architecture)?;
        let tokenizer = folder::read_tokenizer(&files.tokenizer, max_tokens)?;
        folder::check_limits(&files, &architecture, &tokenizer, max_tokens)?;
        let pooling = match config.pooling {
            Some(pooling) => pooling,
            None => folder::read_pooling(&config.model)?,
        };

        let device = device::open(config.device);
        let backend = load_backend(&architecture, &files.weights, &device, padded)
            .map_err(|error| EncoderError::model(&files.weights, format!("invalid weights: {error}")))?;

        let fingerprint = fingerprint(config, max_tokens, pooling, &config_text, &tokenizer_text, &files.weights)?;
        let pad_id = tokenizer.get_padding().map_or(architecture.pad_token_id(), |p| p.pad_id);
        let encoder = Self {
            config: config.clone(),
            max_tokens,
            backend,
            tokenizer,
            device,
            pooling,
            dimension: architecture.hidden_size(),
            pad_id,
            fingerprint,
        };

        tracing::info!(
            model = %config.model.display(),
            device = %encoder.device_name(),
            dimension = encoder.dimension,
            pooling = ?pooling,
            forward = encoder.forward_name(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded sentence encoder"
        );
        Ok(encoder)
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Returns the tokens kept of a text: the configured `max_tokens`, else
    /// the folder's default (see [`EncoderConfig::max_tokens`]).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Length of every sentence vector.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The pooling in use: the configured one, else the model folder's.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// A hex digest that changes whenever the vectors could change: the model's
    /// files, pooling, prefixes, normalisation and `max_tokens`. Caches of
    /// embeddings and heads trained on them are keyed by it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `cpu` or `cuda:N`: where the forward pass actually runs.
    pub fn device_name(&self) -> String {
        device::name(&self.device)
    }

    /// `packed` or `padded`: which forward pass runs.
    pub fn forward_name(&self) -> &'static str {
        match self.backend {
            Backend::Packed(_) => "packed",
            Backend::Padded(_) => "padded",
        }
    }

    /// Returns the share of `text`'s tokens that the tokenizer maps to its
    /// unknown token (`[UNK]` or `<unk>`), from 0 to 1, and 0 for a text without
    /// tokens or a vocabulary without an unknown token. A high share means the
    /// vocabulary lacks the text's script, so its vector carries little meaning:
    /// all-MiniLM-L6-v2, for one, lacks most Chinese characters.
    pub fn unknown_share(&self, text: &str) -> f32 {
        let unknown: Vec<u32> = ["[UNK]", "<unk>"].iter().filter_map(|token| self.tokenizer.token_to_id(token)).collect();
        let Ok(encoding) = self.tokenizer.encode_fast(text, false) else {
            return 0.0;
        };
        let ids = encoding.get_ids();
        if ids.is_empty() || unknown.is_empty() {
            return 0.0;
        }
        let count = ids.iter().filter(|id| unknown.contains(id)).count();
        count as f32 / ids.len() as f32
    }

    /// Returns whether the vocabulary covers `text` well enough for its vector to
    /// mean something: at most [`MAX_UNKNOWN_SHARE`] of its tokens are unknown.
    pub fn covers(&self, text: &str) -> bool {
        self.unknown_share(text) <= MAX_UNKNOWN_SHARE
    }

    /// Encodes `texts` directly, in chunks of at most `max_batch` texts of
    /// similar length; one vector per text, in order.
    pub fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EncoderError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }

        let prefix = self.config.prefix(kind);
        let inputs: Vec<String> = texts.iter().map(|text| format!("{prefix}{text}")).collect();
        let encodings = self.tokenizer.encode_batch_fast(inputs, true).map_err(EncoderError::run)?;

        // Texts of similar length share a chunk, so little of each forward
        // pass is spent on padding.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&index| encodings[index].len());

        let mut vectors = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.config.max_batch.max(1)) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&index| &encodings[index]).collect();
            let pooled = self.embed_chunk(&batch).map_err(EncoderError::run)?;
            for (&index, vector) in chunk.iter().zip(pooled) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }

    fn embed_chunk(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        match &self.backend {
            Backend::Packed(model) => self.embed_packed(model, batch),
            Backend::Padded(network) => self.embed_padded(network, batch),
        }
    }

    /// Runs one packed forward pass over `batch` and pools each text's rows.
    fn embed_packed(&self, model: &PackedEncoder, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = batch.iter().map(|encoding| encoding.len()).collect();
        let ids = batch.iter().flat_map(|encoding| encoding.get_ids()).copied().collect();
        let type_ids = batch.iter().flat_map(|encoding| encoding.get_type_ids()).copied().collect();
        let tokens = model.forward(ids, type_ids, &lengths)?;
        let (storage, layout) = tokens.storage_and_layout();
        let candle_core::Storage::Cpu(storage) = &*storage else {
            candle_core::bail!("the packed forward pass ran off the CPU");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("the packed forward pass returned a strided tensor");
        };
        let rows = &storage.as_slice::<f32>()?[start..end];

        let mut pooled = Vec::with_capacity(batch.len());
        let mut first = 0;
        for &length in &lengths {
            let text = &rows[first * self.dimension..(first + length) * self.dimension];
            let mut vector = pool(text, self.dimension, self.pooling);
            if self.config.normalize {
                normalize(&mut vector);
            }
            pooled.push(vector);
            first += length;
        }
        Ok(pooled)
    }

    /// Runs one forward pass over `batch`, padded to its longest text.
    fn embed_padded(&self, network: &Network, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let width = batch.iter().map(|encoding| encoding.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * width);
        let mut type_ids = Vec::with_capacity(batch.len() * width);
        let mut mask = Vec::with_capacity(batch.len() * width);
        for encoding in batch {
            let padding = width - encoding.len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, padding));
            type_ids.extend_from_slice(encoding.get_type_ids());
            type_ids.extend(std::iter::repeat_n(0, padding));
            mask.extend_from_slice(encoding.get_attention_mask());
            mask.extend(std::iter::repeat_n(0, padding));
        }

        let shape = (batch.len(), width);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let tokens = network.forward(&ids, &type_ids, &mask)?;

        let pooled = match self.pooling {
            Pooling::Cls => tokens.i((.., 0))?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let sum = tokens.broadcast_mul(&mask)?.sum(1)?;
                sum.broadcast_div(&mask.sum(1)?)?
            }
        };
        let pooled = if self.config.normalize {
            let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
            pooled.broadcast_div(&norm)?
        } else {
            pooled
        };
        pooled.to_vec2()
    }
}

fn load_backend(architecture: &Architecture, weights: &Path, device: &Device, padded: bool) -> candle_core::Result<Backend> {
    // SAFETY: the weights file is mapped read-only; changing it while the
    // process runs is undefined behaviour, as for every mmap-based loader.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device)? };
    if device.is_cpu() && !padded {
        if let Some(model) = PackedEncoder::load(architecture, vb.clone())? {
            return Ok(Backend::Packed(model));
        }
    }
    Network::load(architecture, vb).map(Backend::Padded)
}

/// One sentence vector from a text's token rows, `width` values each.
fn pool(rows: &[f32], width: usize, pooling: Pooling) -> Vec<f32> {
    match pooling {
        Pooling::Cls => rows[..width].to_vec(),
        Pooling::Mean => {
            let mut sum = vec![0f32; width];
            for row in rows.chunks(width) {
                for (total, &x) in sum.iter_mut().zip(row) {
                    *total += x;
                }
            }
            let count = (rows.len() / width).max(1) as f32;
            sum.iter_mut().for_each(|x| *x /= count);
            sum
        }
    }
}

/// Scales `vector` to unit length; the epsilon matches PyTorch's `F.normalize`.
fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    vector.iter_mut().for_each(|x| *x /= norm);
}

fn read(path: &Path) -> Result<Vec<u8>, EncoderError> {
    std::fs::read(path).map_err(|source| EncoderError::Io { path: path.to_owned(), source })
}

/// Windows of the weights file hashed for the fingerprint; fine-tuning
/// changes every tensor, so a sample finds a changed model without reading
/// gigabytes on every start.
const SAMPLE_WINDOWS: u64 = 64;
const SAMPLE_BYTES: u64 = 64 * 1024;

fn fingerprint(
    config: &EncoderConfig,
    max_tokens: usize,
    pooling: Pooling,
    config_text: &[u8],
    tokenizer_text: &[u8],
    weights: &Path,
) -> Result<String, EncoderError> {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(b"lepton-encoder fingerprint 1");
    field(config_text);
    field(tokenizer_text);
    field(&sample_weights(weights)?);
    field(format!("{pooling:?}").as_bytes());
    field(config.query_prefix.as_bytes());
    field(config.passage_prefix.as_bytes());
    field(&[u8::from(config.normalize)]);
    field(&(max_tokens as u64).to_le_bytes());
    Ok(hex::encode(hash.finalize()))
}

/// The file's length followed by `SAMPLE_WINDOWS` evenly spaced windows.
fn sample_weights(path: &Path) -> Result<Vec<u8>, EncoderError> {
    let io = |source| EncoderError::Io { path: path.to_owned(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();

    let mut sample = length.to_le_bytes().to_vec();
    let step = (length / SAMPLE_WINDOWS).max(1);
    let mut window = vec![0; SAMPLE_BYTES as usize];
    for index in 0..SAMPLE_WINDOWS {
        let offset = index * step;
        if offset >= length {
            break;
        }
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let wanted = SAMPLE_BYTES.min(length - offset) as usize;
        file.read_exact(&mut window[..wanted]).map_err(io)?;
        sample.extend_from_slice(&window[..wanted]);
    }
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        crate::dot(a, b) / (crate::dot(a, a).sqrt() * crate::dot(b, b).sqrt())
    }

    #[test]
    fn packed_pass_equals_padded_pass() -> Result<(), EncoderError> {
        let folder = match crate::test_model() {
            Ok(folder) => folder,
            Err(reason) => {
                eprintln!("skipped: no test model: {reason}");
                return Ok(());
            }
        };
        let mut config = EncoderConfig::new(folder);
        config.pooling = Some(Pooling::Mean);
        let packed = Encoder::load_with(&config, false)?;
        let padded = Encoder::load_with(&config, true)?;
        let texts = ["", "hi", "a longer text about a parcel that never arrived at my door", "我想退款", "reset password"];

        assert_eq!(packed.forward_name(), "packed");
        assert_eq!(padded.forward_name(), "padded");
        for kind in [TextKind::Query, TextKind::Passage] {
            let by_packed = packed.embed(&texts, kind)?;
            let by_padded = padded.embed(&texts, kind)?;
            for (text, (a, b)) in texts.iter().zip(by_packed.iter().zip(&by_padded)) {
                let similarity = cosine(a, b);
                assert!(similarity > 0.99999, "{text:?}: cosine {similarity}");
            }
        }
        Ok(())
    }

    #[test]
    fn unknown_share_counts_unknown_tokens() -> Result<(), EncoderError> {
        let folder = match crate::test_model() {
            Ok(folder) => folder,
            Err(reason) => {
                eprintln!("skipped: no test model: {reason}");
                return Ok(());
            }
        };
        let encoder = Encoder::load(&EncoderConfig::new(folder))?;
        assert_eq!(encoder.unknown_share("how can I get my money back"), 0.0);
        assert_eq!(encoder.unknown_share(""), 0.0);
        let chinese = encoder.unknown_share("帮我取消刚才的订单");
        assert!(chinese > 0.3, "all-MiniLM-L6-v2 covers too much of 帮我取消刚才的订单: {chinese}");
        let mixed = encoder.unknown_share("I want to track where my order is 订单");
        assert!(mixed > 0.0, "two unknown tokens in ten: {mixed}");
        assert!(mixed < 0.3, "two unknown tokens in ten: {mixed}");
        assert!(encoder.covers("I want to track where my order is 订单"));
        assert!(!encoder.covers("今天天气怎么样"));
        Ok(())
    }

    /// Returns the tiny random MPNet of `tests/fixtures/tiny-mpnet` and the vectors
    /// Hugging Face transformers gives its texts (`tests/fixtures/tiny_mpnet.py`).
    fn tiny_mpnet() -> (std::path::PathBuf, Vec<(String, Vec<f32>)>) {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-mpnet");
        let text = std::fs::read_to_string(folder.join("reference.json")).expect("tiny-mpnet reference");
        let reference: serde_json::Value = serde_json::from_str(&text).expect("tiny-mpnet reference JSON");
        let cases = reference["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|case| {
                let vector =
                    case["vector"].as_array().expect("vector").iter().map(|x| x.as_f64().expect("number") as f32);
                (case["text"].as_str().expect("text").to_owned(), vector.collect())
            })
            .collect();
        (folder, cases)
    }

    #[test]
    fn mpnet_matches_transformers_in_both_passes() -> Result<(), EncoderError> {
        let (folder, cases) = tiny_mpnet();
        let texts: Vec<&str> = cases.iter().map(|(text, _)| text.as_str()).collect();
        let mut config = EncoderConfig::new(&folder);
        // 64 positions, numbered from pad_token_id + 1.
        config.max_tokens = Some(62);
        for padded in [false, true] {
            let encoder = Encoder::load_with(&config, padded)?;
            assert_eq!(encoder.forward_name(), if padded { "padded" } else { "packed" });
            assert_eq!(encoder.pooling(), Pooling::Mean);
            assert_eq!(encoder.dimension(), 16);
            // As a batch, and one text at a time.
            let batch = encoder.embed(&texts, TextKind::Query)?;
            for ((text, expected), vector) in cases.iter().zip(&batch) {
                let alone = &encoder.embed(&[text], TextKind::Query)?[0];
                for (how, got) in [("batch", vector), ("alone", alone)] {
                    let similarity = cosine(got, expected);
                    assert!(
                        similarity > 0.99999,
                        "{} pass, {how}, {text:?}: cosine {similarity}",
                        encoder.forward_name()
                    );
                }
            }
        }
        Ok(())
    }
}
