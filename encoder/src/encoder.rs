//! The loaded encoder: tokenising, batching by length, the forward pass and
//! pooling.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, IndexOp, Tensor};
use sha2::{Digest, Sha256};
use tokenizers::{Encoding, Tokenizer};

use crate::folder::{self, ModelFiles};
use crate::network::Network;
use crate::{device, EncoderConfig, EncoderError, Pooling, TextKind};

/// A loaded sentence encoder. `Send + Sync`; share it in an `Arc`.
pub struct Encoder {
    config: EncoderConfig,
    network: Network,
    tokenizer: Tokenizer,
    device: Device,
    pooling: Pooling,
    dimension: usize,
    pad_id: u32,
    fingerprint: String,
}

impl Encoder {
    /// Loads the model folder named by `config.model`.
    pub fn load(config: &EncoderConfig) -> Result<Self, EncoderError> {
        let started = Instant::now();
        let files = ModelFiles::find(&config.model)?;

        let config_text = read(&files.config)?;
        let architecture = folder::read_architecture(&files.config, &config_text)?;
        let tokenizer_text = read(&files.tokenizer)?;
        let tokenizer = folder::read_tokenizer(&files.tokenizer, config.max_tokens)?;
        let pooling = match config.pooling {
            Some(pooling) => pooling,
            None => folder::read_pooling(&config.model)?,
        };

        let device = device::open(config.device);
        let network = Network::load(&architecture, &files.weights, &device)
            .map_err(|error| EncoderError::model(&files.weights, format!("invalid weights: {error}")))?;

        let fingerprint = fingerprint(config, pooling, &config_text, &tokenizer_text, &files.weights)?;
        let pad_id = tokenizer.get_padding().map_or(architecture.pad_token_id(), |p| p.pad_id);
        let encoder = Self {
            config: config.clone(),
            network,
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
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded sentence encoder"
        );
        Ok(encoder)
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
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

    /// Runs one forward pass over `batch`, padded to its longest text.
    fn embed_chunk(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
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
        let tokens = self.network.forward(&ids, &type_ids, &mask)?;

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
    field(&(config.max_tokens as u64).to_le_bytes());
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
