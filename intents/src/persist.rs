//! Saving and loading models: the weights as safetensors (the large matrices in
//! half precision), and a JSON metadata file with the intents, the training
//! configuration, the training hash and a SHA-256 of the weights and the
//! metadata. A stored model whose hash differs from that of the bot's current
//! examples and configuration is stale. Files that differ from their SHA-256
//! are damaged or were edited, and are never used.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bot_core::IntentId;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::IntentError;
use crate::features::Vocabulary;
use crate::model::{IntentModel, Weights};
use crate::train::{self, TrainConfig};

/// File name of the weights inside a model folder.
pub const WEIGHTS_FILE: &str = "intent-model.safetensors";
/// File name of the metadata inside a model folder.
pub const METADATA_FILE: &str = "intent-model.json";

/// Version of the stored layout and of the feature extraction; bumping it makes
/// every stored model stale. Version 2 added `sha256`.
const FORMAT_VERSION: u32 = 2;

/// The start of the problem reported for metadata of another format version.
const OLD_FORMAT: &str = "format version";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    format_version: u32,
    training_hash: String,
    intents: Vec<IntentId>,
    feature_rows: usize,
    config: TrainConfig,
    /// See [`stored_sha256`].
    sha256: String,
}

/// Returns the hex SHA-256 of the examples (in order, because the order changes
/// the shuffles and so the weights), the configuration and the format version.
pub fn training_hash(examples: &[(String, IntentId)], config: &TrainConfig) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("lepton-intents format {FORMAT_VERSION}\n").as_bytes());
    hasher.update(serde_json::to_vec(config).expect("TrainConfig serialises to JSON"));
    for (text, intent) in examples {
        for field in [text.as_str(), intent.as_str()] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

impl IntentModel {
    /// Trains a model on `(text, intent)` examples. The same examples, in the same
    /// order, with the same configuration give the same weights.
    pub fn train(examples: &[(String, IntentId)], config: &TrainConfig) -> Result<IntentModel, IntentError> {
        train::train(examples, config, training_hash(examples, config))
    }

    /// Saves the model into `dir` (created if missing) as [`WEIGHTS_FILE`] and
    /// [`METADATA_FILE`]. The old metadata is deleted first, each file is written
    /// to a temporary name and renamed, and the new metadata goes last. So an
    /// interrupted save leaves a missing model, never new weights under old metadata.
    pub fn save(&self, dir: &Path) -> Result<(), IntentError> {
        fs::create_dir_all(dir).map_err(|source| io_error("create model folder", dir, source))?;
        let metadata_path = dir.join(METADATA_FILE);
        match fs::remove_file(&metadata_path) {
            Err(source) if source.kind() != ErrorKind::NotFound => {
                return Err(io_error("delete old model metadata", &metadata_path, source))
            }
            _ => {}
        }

        let weights_path = dir.join(WEIGHTS_FILE);
        let temporary = dir.join(format!("{WEIGHTS_FILE}.tmp"));
        candle_core::safetensors::save(&self.tensors()?, &temporary).map_err(|error| match error {
            candle_core::Error::Io(source) => io_error("write model weights", &temporary, source),
            other => IntentError::Candle(other),
        })?;
        let weights = fs::read(&temporary).map_err(|source| io_error("read back model weights", &temporary, source))?;
        rewrite_atomically(&temporary, &weights_path, &weights)?;

        let mut metadata = Metadata {
            format_version: FORMAT_VERSION,
            training_hash: self.training_hash.clone(),
            intents: self.intents.clone(),
            feature_rows: self.vocabulary.len(),
            config: self.config.clone(),
            sha256: String::new(),
        };
        metadata.sha256 = stored_sha256(&weights, &metadata);
        let json = serde_json::to_vec_pretty(&metadata).expect("metadata serialises to JSON");
        write_atomically(&metadata_path, &json)
    }

    /// Loads a model saved by [`IntentModel::save`]. A missing file gives
    /// [`IntentError::Io`]; a damaged or inconsistent one gives
    /// [`IntentError::InvalidModel`].
    pub fn load(dir: &Path) -> Result<IntentModel, IntentError> {
        let metadata = read_metadata(dir)?;
        load_weights(dir, metadata)
    }

    /// Loads the model in `dir` if it was trained on exactly these examples with
    /// this configuration. Otherwise, because the files are missing, unreadable or
    /// stale, trains a new model and saves it there. Returns the model and whether
    /// it was trained.
    pub fn load_or_train(dir: &Path, examples: &[(String, IntentId)], config: &TrainConfig) -> Result<(IntentModel, bool), IntentError> {
        let hash = training_hash(examples, config);

        match read_metadata(dir) {
            Ok(metadata) if metadata.training_hash == hash => match load_weights(dir, metadata) {
                Ok(model) => return Ok((model, false)),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), dir = %dir.display(), "stored intent model is unreadable; retraining")
                }
            },
            Ok(_) => tracing::info!(dir = %dir.display(), "intent examples or training config changed; retraining"),
            Err(error) if is_older_format(&error) => tracing::info!(dir = %dir.display(), "stored intent model has an older format; retraining"),
            Err(IntentError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                tracing::info!(dir = %dir.display(), "no stored intent model; training")
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), dir = %dir.display(), "stored intent model is unreadable; retraining")
            }
        }

        let model = train::train(examples, config, hash)?;
        model.save(dir)?;
        Ok((model, true))
    }

    fn tensors(&self) -> Result<HashMap<String, Tensor>, IntentError> {
        let device = Device::Cpu;
        let rows = self.vocabulary.len();
        let hidden = self.config.hidden;
        let classes = self.intents.len();
        let mut tensors = HashMap::from([
            ("buckets".to_owned(), Tensor::from_slice(self.vocabulary.buckets(), rows, &device)?),
            ("idf".to_owned(), Tensor::from_slice(self.vocabulary.idf(), rows, &device)?),
            ("unseen_idf".to_owned(), Tensor::from_slice(&[self.vocabulary.unseen_idf()], 1, &device)?),
        ]);
        for (i, member) in self.members.iter().enumerate() {
            let member_tensors = [
                ("embedding", Tensor::from_slice(&member.embedding, (rows, hidden), &device)?.to_dtype(DType::F16)?),
                ("output_weight", Tensor::from_slice(&member.output, (classes, hidden), &device)?.to_dtype(DType::F16)?),
            ];
            tensors.extend(member_tensors.into_iter().map(|(name, tensor)| (member_tensor(i, name), tensor)));
        }
        Ok(tensors)
    }
}

/// Reads the `format_version` field of the metadata file at `path` before its
/// other fields, so that metadata of an older layout is reported as such
/// ([`is_older_format`]) rather than as a field mismatch.
pub(crate) fn check_format_version(path: &Path, bytes: &[u8], expected: u32) -> Result<(), IntentError> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|error| invalid(path, error.to_string()))?;
    if version.format_version != expected {
        return Err(invalid(path, format!("{OLD_FORMAT} {} is not {expected}", version.format_version)));
    }
    Ok(())
}

/// Whether `error` comes from [`check_format_version`] finding another version.
pub(crate) fn is_older_format(error: &IntentError) -> bool {
    matches!(error, IntentError::InvalidModel { problem, .. } if problem.starts_with(OLD_FORMAT))
}

/// Returns the hex SHA-256 of `weights` followed by `metadata` as JSON, with
/// its own `sha256` field empty. It covers the intent names and shapes in the
/// metadata too, so an edited intent list is noticed, not used.
pub(crate) fn stored_sha256(weights: &[u8], metadata: &impl Serialize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(weights);
    hasher.update(serde_json::to_vec(metadata).expect("metadata serialises to JSON"));
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks the weights file at `path` and its `metadata` (with the `sha256`
/// field taken out) against `expected`.
pub(crate) fn check_sha256(path: &Path, weights: &[u8], metadata: &impl Serialize, expected: &str) -> Result<(), IntentError> {
    let actual = stored_sha256(weights, metadata);
    if actual != expected {
        return Err(invalid(path, format!("SHA-256 of the weights and metadata is {actual}, the metadata stores {expected}; the files are damaged or were edited")));
    }
    Ok(())
}

/// Returns the tensor name of ensemble member `member`'s parameter `name`.
pub(crate) fn member_tensor(member: usize, name: &str) -> String {
    format!("member{member}.{name}")
}

fn read_metadata(dir: &Path) -> Result<Metadata, IntentError> {
    let path = dir.join(METADATA_FILE);
    let bytes = fs::read(&path).map_err(|source| io_error("read model metadata", &path, source))?;
    check_format_version(&path, &bytes, FORMAT_VERSION)?;
    let metadata: Metadata = serde_json::from_slice(&bytes).map_err(|error| invalid(&path, error.to_string()))?;
    if metadata.intents.is_empty() {
        return Err(invalid(&path, "no intents".to_owned()));
    }
    if let Err(error) = metadata.config.validate() {
        return Err(invalid(&path, error.to_string()));
    }
    Ok(metadata)
}

fn load_weights(dir: &Path, mut metadata: Metadata) -> Result<IntentModel, IntentError> {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = fs::read(&path).map_err(|source| io_error("read model weights", &path, source))?;
    let expected = std::mem::take(&mut metadata.sha256);
    check_sha256(&path, &bytes, &metadata, &expected)?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|error| invalid(&path, error.to_string()))?;

    let rows = metadata.feature_rows;
    let hidden = metadata.config.hidden;
    let classes = metadata.intents.len();
    let read = TensorReader { path: &path, tensors: &tensors };

    let buckets = read.vector::<u32>("buckets", DType::U32, &[rows])?;
    let idf = read.vector::<f32>("idf", DType::F32, &[rows])?;
    let unseen_idf = read.vector::<f32>("unseen_idf", DType::F32, &[1])?[0];
    let mut members = Vec::with_capacity(metadata.config.members);
    for i in 0..metadata.config.members {
        members.push(Weights {
            hidden,
            embedding: read.vector(&member_tensor(i, "embedding"), DType::F16, &[rows, hidden])?,
            output: read.vector(&member_tensor(i, "output_weight"), DType::F16, &[classes, hidden])?,
        });
    }

    let vocabulary =
        Vocabulary::from_parts(metadata.config.features.clone(), buckets, idf, unseen_idf).map_err(|problem| invalid(&path, problem))?;
    Ok(IntentModel { intents: metadata.intents, vocabulary, config: metadata.config, training_hash: metadata.training_hash, members })
}

struct TensorReader<'a> {
    path: &'a Path,
    tensors: &'a HashMap<String, Tensor>,
}

impl TensorReader<'_> {
    /// Returns the named tensor's values as `T`, checking that it is stored as
    /// `dtype` with `shape`.
    fn vector<T: candle_core::WithDType>(&self, name: &str, dtype: DType, shape: &[usize]) -> Result<Vec<T>, IntentError> {
        let tensor = self.tensors.get(name).ok_or_else(|| invalid(self.path, format!("tensor `{name}` is missing")))?;
        if tensor.dtype() != dtype || tensor.dims() != shape {
            return Err(invalid(
                self.path,
                format!("tensor `{name}` is {:?} {:?}, expected {dtype:?} {shape:?}", tensor.dtype(), tensor.dims()),
            ));
        }
        let values = tensor.flatten_all()?.to_dtype(T::DTYPE)?.to_vec1::<T>()?;
        if values.iter().any(|v| !v.to_f64().is_finite()) {
            return Err(invalid(self.path, format!("tensor `{name}` holds a value that is not finite")));
        }
        Ok(values)
    }
}

/// Writes the bytes that safetensors wrote to `temporary` anew to `path`. The
/// safetensors writer creates its file with mode 0600, so a model's weights
/// would otherwise be readable by fewer users than the metadata beside them.
pub(crate) fn rewrite_atomically(temporary: &Path, path: &Path, bytes: &[u8]) -> Result<(), IntentError> {
    fs::remove_file(temporary).map_err(|source| io_error("delete", temporary, source))?;
    write_atomically(path, bytes)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IntentError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    fs::write(&temporary, bytes).map_err(|source| io_error("write", &temporary, source))?;
    rename_or_remove(&temporary, path, "rename file to")
}

/// Renames `temporary` to `path`; when that fails, removes `temporary` so that
/// no stray file is left in the model folder.
pub(crate) fn rename_or_remove(temporary: &Path, path: &Path, action: &'static str) -> Result<(), IntentError> {
    fs::rename(temporary, path).map_err(|source| {
        let _ = fs::remove_file(temporary);
        io_error(action, path, source)
    })
}

/// Returns `error`'s message followed by those of its sources, joined by `: `.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

pub(crate) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> IntentError {
    IntentError::Io { action, path: path.to_owned(), source }
}

pub(crate) fn invalid(path: &Path, problem: String) -> IntentError {
    IntentError::InvalidModel { path: path.to_owned(), problem }
}
