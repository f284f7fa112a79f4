//! Reading a Hugging Face model folder: which files it must have, the
//! architecture its `config.json` names, its tokenizer and its pooling.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::{EncoderError, Pooling};

pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const WEIGHTS_FILE: &str = "model.safetensors";
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";
const POOLING_FILE: &str = "1_Pooling/config.json";
const SENTENCE_BERT_FILE: &str = "sentence_bert_config.json";

/// The `max_tokens` used when neither the configuration nor the model folder sets one.
pub(crate) const DEFAULT_MAX_TOKENS: usize = 256;

/// The paths of a model folder's files, each checked to exist.
pub(crate) struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    pub fn find(folder: &Path) -> Result<Self, EncoderError> {
        if folder.is_file() {
            return Err(EncoderError::model(
                folder,
                "is a file; give the model folder that holds config.json, model.safetensors and tokenizer.json",
            ));
        }
        if !folder.is_dir() {
            return Err(EncoderError::model(
                folder,
                "model folder not found; download one with `lepton model pull REPO` \
                 or set encoder.model to a local Hugging Face folder",
            ));
        }
        Ok(Self {
            config: require(folder, CONFIG_FILE)?,
            weights: require(folder, WEIGHTS_FILE)?,
            tokenizer: require(folder, TOKENIZER_FILE)?,
        })
    }
}

fn require(folder: &Path, name: &str) -> Result<PathBuf, EncoderError> {
    let path = folder.join(name);
    if path.is_file() {
        return Ok(path);
    }
    Err(EncoderError::model(
        path,
        format!(
            "missing {name}: the folder needs config.json, model.safetensors and tokenizer.json; \
             download a complete one with `lepton model pull REPO`"
        ),
    ))
}

/// Returns the maximum `max_tokens` of the model in `folder`, read from its
/// `config.json` alone, for checks that load no weights.
pub fn token_limit(folder: &Path) -> Result<usize, EncoderError> {
    let config = require(folder, CONFIG_FILE)?;
    let text = std::fs::read(&config).map_err(|source| EncoderError::Io { path: config.clone(), source })?;
    Ok(read_architecture(&config, &text)?.max_tokens())
}

/// The encoder architectures this crate runs, with their parsed configuration.
pub(crate) enum Architecture {
    Bert(candle_transformers::models::bert::Config),
    XlmRoberta(candle_transformers::models::xlm_roberta::Config),
    MpNet(MpNetConfig),
}

/// An MPNet `config.json` (`model_type: mpnet`, as all-mpnet-base-v2 has):
/// BERT's layers without token types, plus a relative position bias that
/// every layer's attention adds to its scores.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MpNetConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default)]
    pub hidden_act: candle_nn::Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "mpnet_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "mpnet_pad_token_id")]
    pub pad_token_id: u32,
    #[serde(default = "mpnet_buckets")]
    pub relative_attention_num_buckets: usize,
}

// The defaults of Hugging Face transformers' `MPNetConfig`.
fn mpnet_layer_norm_eps() -> f64 {
    1e-12
}

fn mpnet_pad_token_id() -> u32 {
    1
}

fn mpnet_buckets() -> usize {
    32
}

impl Architecture {
    pub fn hidden_size(&self) -> usize {
        match self {
            Self::Bert(config) => config.hidden_size,
            Self::XlmRoberta(config) => config.hidden_size,
            Self::MpNet(config) => config.hidden_size,
        }
    }

    pub fn layer_count(&self) -> usize {
        match self {
            Self::Bert(config) => config.num_hidden_layers,
            Self::XlmRoberta(config) => config.num_hidden_layers,
            Self::MpNet(config) => config.num_hidden_layers,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Bert(config) => config.vocab_size,
            Self::XlmRoberta(config) => config.vocab_size,
            Self::MpNet(config) => config.vocab_size,
        }
    }

    pub fn max_positions(&self) -> usize {
        match self {
            Self::Bert(config) => config.max_position_embeddings,
            Self::XlmRoberta(config) => config.max_position_embeddings,
            Self::MpNet(config) => config.max_position_embeddings,
        }
    }

    /// Returns the position id of a text's first token: 0 for BERT, and
    /// `pad_token_id + 1` for XLM-RoBERTa and MPNet, whose position ids skip
    /// the padding index.
    pub fn first_position(&self) -> u32 {
        match self {
            Self::Bert(_) => 0,
            Self::XlmRoberta(config) => config.pad_token_id + 1,
            Self::MpNet(config) => config.pad_token_id + 1,
        }
    }

    /// Returns the maximum token count of a text: one per position embedding
    /// from the first position on.
    pub fn max_tokens(&self) -> usize {
        self.max_positions().saturating_sub(self.first_position() as usize)
    }

    pub fn pad_token_id(&self) -> u32 {
        match self {
            Self::Bert(config) => config.pad_token_id as u32,
            Self::XlmRoberta(config) => config.pad_token_id,
            Self::MpNet(config) => config.pad_token_id,
        }
    }
}

/// Parses `config.json`, dispatching on its `model_type`.
pub(crate) fn read_architecture(path: &Path, text: &[u8]) -> Result<Architecture, EncoderError> {
    let value: serde_json::Value = serde_json::from_slice(text)
        .map_err(|error| EncoderError::model(path, format!("invalid JSON: {error}")))?;
    let model_type = value.get("model_type").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
    let invalid =
        |error: serde_json::Error| EncoderError::model(path, format!("invalid {model_type} configuration: {error}"));

    let architecture = match model_type.as_str() {
        "bert" => serde_json::from_value(value).map(Architecture::Bert).map_err(invalid)?,
        "xlm-roberta" => serde_json::from_value(value).map(Architecture::XlmRoberta).map_err(invalid)?,
        "mpnet" => serde_json::from_value(value).map(Architecture::MpNet).map_err(invalid)?,
        "" => return Err(EncoderError::model(path, "missing model_type; expected bert, xlm-roberta or mpnet")),
        other => {
            return Err(EncoderError::model(
                path,
                format!("unsupported model_type {other:?}; expected bert, xlm-roberta or mpnet"),
            ));
        }
    };
    check_heads(path, &architecture)?;
    if let Architecture::MpNet(config) = &architecture {
        if config.relative_attention_num_buckets != crate::kernels::RELATIVE_BUCKETS {
            return Err(EncoderError::model(
                path,
                format!(
                    "relative_attention_num_buckets {} is not supported: MPNet's attention uses {} buckets; \
                     the file is damaged or not a standard MPNet configuration",
                    config.relative_attention_num_buckets,
                    crate::kernels::RELATIVE_BUCKETS
                ),
            ));
        }
    }
    Ok(architecture)
}

/// The attention splits each token vector into equal parts, one per head.
fn check_heads(path: &Path, architecture: &Architecture) -> Result<(), EncoderError> {
    let (hidden, heads) = match architecture {
        Architecture::Bert(config) => (config.hidden_size, config.num_attention_heads),
        Architecture::XlmRoberta(config) => (config.hidden_size, config.num_attention_heads),
        Architecture::MpNet(config) => (config.hidden_size, config.num_attention_heads),
    };
    if hidden == 0 || heads == 0 || hidden % heads != 0 {
        return Err(EncoderError::model(
            path,
            format!(
                "hidden_size {hidden} is not a positive multiple of num_attention_heads {heads}; \
                 the file is damaged or not an encoder's configuration"
            ),
        ));
    }
    Ok(())
}

/// The minimum token count a text may be cut to: the two special tokens
/// around it and one of its own.
pub(crate) const MIN_TOKENS: usize = 3;

/// Checks that the tokenizer and `max_tokens` fit the weights: every token id
/// the tokenizer gives needs a row of the word embeddings, and every position
/// up to `max_tokens` a row of the position embeddings.
pub(crate) fn check_limits(
    files: &ModelFiles,
    architecture: &Architecture,
    tokenizer: &Tokenizer,
    max_tokens: usize,
) -> Result<(), EncoderError> {
    let vocab_size = architecture.vocab_size();
    if let Some(largest) = tokenizer.get_vocab(true).values().max().filter(|&&id| id as usize >= vocab_size) {
        return Err(EncoderError::model(
            &files.tokenizer,
            format!(
                "the tokenizer has token ids up to {largest}, but vocab_size in config.json is {vocab_size}: \
                 it belongs to another model; use the tokenizer.json that came with the weights"
            ),
        ));
    }
    let limit = architecture.max_tokens();
    if max_tokens < MIN_TOKENS || max_tokens > limit {
        return Err(EncoderError::model(
            &files.config,
            format!(
                "encoder max_tokens {max_tokens} does not fit this model, which takes {MIN_TOKENS} to {limit} tokens \
                 (max_position_embeddings {}, pad_token_id {}); set settings.encoder.max_tokens \
                 (lepton eval: --max-tokens) to at most {limit}",
                architecture.max_positions(),
                architecture.pad_token_id()
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

/// Returns `max_tokens` when it is set, else the `max_seq_length` of the
/// folder's `sentence_bert_config.json`, else [`DEFAULT_MAX_TOKENS`]. A length
/// from the folder or the default is cut to the model's limit.
/// A `max_seq_length` below [`MIN_TOKENS`] is an error, as invalid JSON is.
pub(crate) fn resolve_max_tokens(max_tokens: Option<usize>, folder: &Path, architecture: &Architecture) -> Result<usize, EncoderError> {
    if let Some(max_tokens) = max_tokens {
        return Ok(max_tokens);
    }
    let path = folder.join(SENTENCE_BERT_FILE);
    let configured = match std::fs::read(&path) {
        Ok(text) => {
            let file: SentenceBertFile =
                serde_json::from_slice(&text).map_err(|error| EncoderError::model(&path, format!("invalid JSON: {error}")))?;
            file.max_seq_length
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(EncoderError::Io { path, source }),
    };
    if let Some(length) = configured.filter(|&length| length < MIN_TOKENS) {
        let message = format!(
            "max_seq_length {length} is below {MIN_TOKENS}, the fewest tokens a text can keep (two special tokens and one word piece); \
             correct the file, or set settings.encoder.max_tokens"
        );
        return Err(EncoderError::model(&path, message));
    }
    Ok(configured.unwrap_or(DEFAULT_MAX_TOKENS).min(architecture.max_tokens()))
}

/// Returns the number of tokens the encoder in `folder` keeps of a text when
/// `settings.encoder.max_tokens` is not set, reading `config.json` and
/// `sentence_bert_config.json` only, without loading the model.
pub fn default_max_tokens(folder: &Path) -> Result<usize, EncoderError> {
    let config = require(folder, CONFIG_FILE)?;
    let text = std::fs::read(&config).map_err(|source| EncoderError::Io { path: config.clone(), source })?;
    resolve_max_tokens(None, folder, &read_architecture(&config, &text)?)
}

/// Loads `tokenizer.json` with truncation at `max_tokens` and its own padding
/// switched off: batches are padded to their longest text when they are built.
pub(crate) fn read_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer, EncoderError> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|error| EncoderError::model(path, format!("invalid tokenizer: {error}")))?;
    let truncation = TruncationParams { max_length: max_tokens, ..TruncationParams::default() };
    tokenizer
        .with_truncation(Some(truncation))
        .map_err(|error| EncoderError::model(path, format!("invalid truncation: {error}")))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// The pooling sentence-transformers configured in `1_Pooling/config.json`;
/// mean when the folder has no such file.
pub(crate) fn read_pooling(folder: &Path) -> Result<Pooling, EncoderError> {
    let path = folder.join(POOLING_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Pooling::Mean),
        Err(source) => return Err(EncoderError::Io { path, source }),
    };
    let file: PoolingFile = serde_json::from_slice(&text)
        .map_err(|error| EncoderError::model(&path, format!("invalid JSON: {error}")))?;

    match (file.pooling_mode_cls_token, file.pooling_mode_mean_tokens) {
        (true, false) => Ok(Pooling::Cls),
        (false, true) => Ok(Pooling::Mean),
        _ => Err(EncoderError::model(
            &path,
            "unsupported pooling: exactly one of pooling_mode_cls_token and \
             pooling_mode_mean_tokens must be true; set encoder.pooling to override",
        )),
    }
}
