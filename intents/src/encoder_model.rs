//! The intent classifier on a pretrained sentence encoder: a small head
//! trained on the encoder's frozen, normalised query embeddings, optionally
//! blended with the embedded n-gram model.
//!
//! A head is stored in its folder as safetensors ([`HEAD_WEIGHTS_FILE`]) and
//! JSON metadata ([`HEAD_METADATA_FILE`]) holding a hash of the examples, the
//! [`HeadConfig`], the encoder's fingerprint and a SHA-256 of the weights and
//! the metadata, so damaged or edited files are retrained, never used. The n-gram model of a blend
//! is stored in the `ngram` subfolder. A stored head whose hash differs is stale.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bot_core::{BoxFuture, Classification, Classifier, IntentId};
use candle_core::{DType, Device, Tensor};
use lepton_encoder::{Batcher, EncoderError, TextKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encoder_head::{self, HeadConfig, HeadWeights};
use crate::error::IntentError;
use crate::model::{rank, IntentModel};
use crate::persist::{check_format_version, check_sha256, error_chain, invalid, io_error, is_older_format, member_tensor, rename_or_remove, rewrite_atomically, stored_sha256};

/// File name of the head's weights inside its folder.
pub const HEAD_WEIGHTS_FILE: &str = "encoder-head.safetensors";
/// File name of the head's metadata inside its folder.
pub const HEAD_METADATA_FILE: &str = "encoder-head.json";
/// Subfolder holding the n-gram model of a blend.
const NGRAM_DIR: &str = "ngram";

/// Version of the stored layout; bumping it makes every stored head stale.
/// Version 2 added `sha256`.
const FORMAT_VERSION: u32 = 2;

/// An intent classifier on sentence embeddings: the head's probabilities,
/// blended with those of an [`IntentModel`] when
/// [`HeadConfig::ngram_weight`] is above 0. Confidences sum to 1, so the
/// threshold and margin of [`Classification::decide`] apply as with the
/// embedded model.
pub struct EncoderIntentModel {
    intents: Vec<IntentId>,
    config: HeadConfig,
    training_hash: String,
    fingerprint: String,
    dimension: usize,
    members: Vec<HeadWeights>,
    /// The normalised mean embedding of each intent, `intents × dimension`.
    centroids: Vec<f32>,
    ngram: Option<IntentModel>,
    batcher: Batcher,
    /// Set after the first encoder failure was logged, so that an encoder that
    /// keeps failing logs one WARN line, not one a message.
    warned: AtomicBool,
}

/// Shows the model's shape, not its weights.
impl fmt::Debug for EncoderIntentModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncoderIntentModel")
            .field("intents", &self.intents.len())
            .field("dimension", &self.dimension)
            .field("members", &self.members.len())
            .field("hidden", &self.config.hidden)
            .field("ngram_weight", &self.config.ngram_weight)
            .field("training_hash", &self.training_hash)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    format_version: u32,
    training_hash: String,
    encoder_fingerprint: String,
    dimension: usize,
    intents: Vec<IntentId>,
    config: HeadConfig,
    /// See [`crate::persist::stored_sha256`].
    sha256: String,
}

/// Returns the hex SHA-256 of the encoder fingerprint, the configuration, the
/// format version and the examples (in order, because the order changes the
/// shuffles and so the weights).
pub fn head_training_hash(examples: &[(String, IntentId)], fingerprint: &str, config: &HeadConfig) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("lepton encoder head format {FORMAT_VERSION}\n").as_bytes());
    hasher.update((fingerprint.len() as u64).to_le_bytes());
    hasher.update(fingerprint.as_bytes());
    hasher.update(serde_json::to_vec(config).expect("HeadConfig serialises to JSON"));
    for (text, intent) in examples {
        for field in [text.as_str(), intent.as_str()] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

impl EncoderIntentModel {
    /// Embeds the examples' texts as queries and trains a head on them. The same
    /// examples, in the same order, with the same configuration and encoder give
    /// the same weights.
    pub fn train(examples: &[(String, IntentId)], batcher: &Batcher, config: &HeadConfig) -> Result<Self, IntentError> {
        config.validate()?;
        if examples.is_empty() {
            return Err(IntentError::NoExamples);
        }
        let texts: Vec<&str> = examples.iter().map(|(text, _)| text.as_str()).collect();
        let vectors = batcher.embed_many(&texts, TextKind::Query)?;
        Self::train_on_vectors(examples, &vectors, batcher, config)
    }

    /// Trains a head on `vectors`, the query embeddings of `examples` (in order)
    /// computed by `batcher`'s encoder, for callers that cache embeddings.
    pub fn train_on_vectors(
        examples: &[(String, IntentId)],
        vectors: &[Vec<f32>],
        batcher: &Batcher,
        config: &HeadConfig,
    ) -> Result<Self, IntentError> {
        config.validate()?;
        if examples.is_empty() {
            return Err(IntentError::NoExamples);
        }
        let dimension = vectors.first().map_or(0, Vec::len);
        if vectors.len() != examples.len() || dimension == 0 || vectors.iter().any(|v| v.len() != dimension) {
            return Err(IntentError::InvalidConfig {
                field: "vectors",
                problem: format!("{} vectors for {} examples, expected one of equal nonzero length each", vectors.len(), examples.len()),
            });
        }
        let started = Instant::now();
        let fingerprint = batcher.encoder().fingerprint().to_owned();

        let intents: Vec<IntentId> = examples.iter().map(|(_, intent)| intent.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let class_of: HashMap<&IntentId, u32> = intents.iter().enumerate().map(|(i, intent)| (intent, i as u32)).collect();
        let labels: Vec<u32> = examples.iter().map(|(_, intent)| class_of[intent]).collect();

        let members = encoder_head::train_members(vectors, &labels, intents.len(), config)?;
        let centroids = encoder_head::centroids(vectors, &labels, intents.len());
        let ngram = if config.ngram_weight > 0.0 { Some(IntentModel::train(examples, &config.ngram)?) } else { None };
        warn_unknown_examples(examples, batcher, ngram.is_some());

        tracing::info!(
            examples = examples.len(),
            intents = intents.len(),
            dimension,
            seconds = started.elapsed().as_secs_f64(),
            "trained encoder intent head"
        );
        Ok(Self {
            intents,
            config: config.clone(),
            training_hash: head_training_hash(examples, &fingerprint, config),
            fingerprint,
            dimension,
            members,
            centroids,
            ngram,
            batcher: batcher.clone(),
            warned: AtomicBool::new(false),
        })
    }

    /// Loads the head in `dir` if it was trained on exactly these examples with
    /// this configuration and an encoder of the same fingerprint. Otherwise,
    /// because the files are missing, unreadable or stale, trains a new head and
    /// saves it there. Returns the model and whether it was trained.
    pub fn load_or_train(dir: &Path, examples: &[(String, IntentId)], batcher: &Batcher, config: &HeadConfig) -> Result<(Self, bool), IntentError> {
        let hash = head_training_hash(examples, batcher.encoder().fingerprint(), config);

        match read_metadata(dir) {
            Err(error) if is_older_format(&error) => tracing::info!(dir = %dir.display(), "stored intent head has an older format; retraining"),
            Ok(metadata) if metadata.training_hash == hash => match load(dir, metadata, examples, batcher) {
                Ok(model) => return Ok((model, false)),
                Err(error) => tracing::warn!(error = %error_chain(&error), dir = %dir.display(), "stored intent head or its n-gram model is unreadable; retraining"),
            },
            Ok(_) => tracing::info!(dir = %dir.display(), "intent examples, head config or encoder changed; retraining"),
            Err(IntentError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                tracing::info!(dir = %dir.display(), "no stored intent head; training")
            }
            Err(error) => tracing::warn!(error = %error_chain(&error), dir = %dir.display(), "stored intent head or its n-gram model is unreadable; retraining"),
        }

        let model = Self::train(examples, batcher, config)?;
        model.save(dir)?;
        Ok((model, true))
    }

    /// Returns the intents this model ranks, sorted.
    pub fn intents(&self) -> &[IntentId] {
        &self.intents
    }

    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// Returns the hash of the examples, configuration and encoder fingerprint
    /// the head was trained on, as [`head_training_hash`] computes it.
    pub fn training_hash(&self) -> &str {
        &self.training_hash
    }

    /// Returns the probability of every intent, in the order of
    /// [`EncoderIntentModel::intents`], for `text` whose query embedding is
    /// `embedding`. The n-gram model of a blend reads `text`.
    pub fn probabilities(&self, text: &str, embedding: &[f32]) -> Vec<f32> {
        let gate = self.familiarity_gate(embedding);
        let mut mean = vec![0.0f32; self.intents.len()];
        for member in &self.members {
            for (m, p) in mean.iter_mut().zip(member.probabilities(embedding, gate)) {
                *m += p / self.members.len() as f32;
            }
        }
        if let Some(ngram) = &self.ngram {
            let weight = self.config.ngram_weight;
            for (m, p) in mean.iter_mut().zip(ngram.probabilities(text)) {
                *m = (1.0 - weight) * *m + weight * p;
            }
        }
        mean
    }

    /// Returns the cosine similarity of `embedding` to the nearest intent centroid.
    pub fn familiarity(&self, embedding: &[f32]) -> f32 {
        self.centroids.chunks_exact(self.dimension).map(|centroid| encoder_head::dot(centroid, embedding)).fold(f32::NEG_INFINITY, f32::max)
    }

    /// Returns the factor (0 to 1) the head's logits are multiplied by, from
    /// the familiarity and [`HeadConfig::familiar_similarity`].
    fn familiarity_gate(&self, embedding: &[f32]) -> f32 {
        let (low, high) = (self.config.unfamiliar_similarity, self.config.familiar_similarity);
        if high <= low {
            return 1.0;
        }
        ((self.familiarity(embedding) - low) / (high - low)).clamp(0.0, 1.0)
    }

    /// Ranks the intents for `text` whose query embedding is `embedding`. A
    /// blend ranks a text in a script outside the encoder's vocabulary with its
    /// n-gram model alone, as [`Classifier::classify`] does.
    pub fn classify_embedding(&self, text: &str, embedding: &[f32]) -> Classification {
        match self.ngram_alone(text) {
            Some(ngram) => ngram.classify(text),
            None => self.classify_vector(text, embedding),
        }
    }

    /// Ranks the intents by the blend of the head on `embedding` and the n-gram model.
    fn classify_vector(&self, text: &str, embedding: &[f32]) -> Classification {
        if embedding.len() != self.dimension {
            self.warn_once(&format!("embedding of length {}, expected {}", embedding.len(), self.dimension));
            return Classification::default();
        }
        rank(&self.intents, self.probabilities(text, embedding))
    }

    /// The n-gram model of a blend, when the encoder's vocabulary lacks `text`'s
    /// script (see [`lepton_encoder::Encoder::covers`]). Its vector would lie
    /// near every other unknown text, so the n-gram model classifies alone.
    fn ngram_alone(&self, text: &str) -> Option<&IntentModel> {
        let ngram = self.ngram.as_ref()?;
        if self.batcher.encoder().covers(text) {
            return None;
        }
        tracing::debug!(
            unknown_share = self.batcher.encoder().unknown_share(text),
            "the encoder's vocabulary lacks the message's script; classifying with the n-gram model alone"
        );
        Some(ngram)
    }

    fn classify_result(&self, text: &str, embedding: Result<Vec<f32>, EncoderError>) -> Classification {
        match embedding {
            Ok(embedding) => self.classify_vector(text, &embedding),
            Err(error) => {
                self.warn_once(&error_chain(&error));
                Classification::default()
            }
        }
    }

    /// Logs the first failure at WARN and later ones at DEBUG.
    fn warn_once(&self, error: &str) {
        if self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(error, "the sentence encoder failed; no intent for this message");
        } else {
            tracing::warn!(error, "the sentence encoder failed; messages get no intent (out of scope) until it recovers");
        }
    }

    /// Saves the head into `dir` (created if missing). The old metadata is
    /// deleted first and the new metadata written last, each file through a
    /// temporary name, so an interrupted save leaves no head, never new
    /// weights under old metadata.
    pub fn save(&self, dir: &Path) -> Result<(), IntentError> {
        fs::create_dir_all(dir).map_err(|source| io_error("create model folder", dir, source))?;
        let metadata_path = dir.join(HEAD_METADATA_FILE);
        match fs::remove_file(&metadata_path) {
            Err(source) if source.kind() != ErrorKind::NotFound => return Err(io_error("delete old head metadata", &metadata_path, source)),
            _ => {}
        }
        if let Some(ngram) = &self.ngram {
            ngram.save(&dir.join(NGRAM_DIR))?;
        }

        let weights_path = dir.join(HEAD_WEIGHTS_FILE);
        let temporary = dir.join(format!("{HEAD_WEIGHTS_FILE}.tmp"));
        candle_core::safetensors::save(&self.tensors()?, &temporary).map_err(|error| match error {
            candle_core::Error::Io(source) => io_error("write head weights", &temporary, source),
            other => IntentError::Candle(other),
        })?;
        let weights = fs::read(&temporary).map_err(|source| io_error("read back head weights", &temporary, source))?;
        rewrite_atomically(&temporary, &weights_path, &weights)?;

        let mut metadata = Metadata {
            format_version: FORMAT_VERSION,
            training_hash: self.training_hash.clone(),
            encoder_fingerprint: self.fingerprint.clone(),
            dimension: self.dimension,
            intents: self.intents.clone(),
            config: self.config.clone(),
            sha256: String::new(),
        };
        metadata.sha256 = stored_sha256(&weights, &metadata);
        let json = serde_json::to_vec_pretty(&metadata).expect("metadata serialises to JSON");
        let temporary = dir.join(format!("{HEAD_METADATA_FILE}.tmp"));
        fs::write(&temporary, json).map_err(|source| io_error("write", &temporary, source))?;
        rename_or_remove(&temporary, &metadata_path, "rename file to")
    }

    fn tensors(&self) -> Result<HashMap<String, Tensor>, IntentError> {
        let device = Device::Cpu;
        let mut tensors = HashMap::new();
        for (i, member) in self.members.iter().enumerate() {
            let parts = [
                ("hidden_weight", &member.hidden_weight),
                ("hidden_bias", &member.hidden_bias),
                ("output_weight", &member.output_weight),
                ("output_bias", &member.output_bias),
            ];
            for (name, values) in parts {
                if !values.is_empty() {
                    tensors.insert(member_tensor(i, name), Tensor::from_slice(values, values.len(), &device)?);
                }
            }
            tensors.insert(member_tensor(i, "scale"), Tensor::from_slice(&[member.scale], 1, &device)?);
        }
        tensors.insert("centroids".to_owned(), Tensor::from_slice(&self.centroids, self.centroids.len(), &device)?);
        Ok(tensors)
    }
}

impl Classifier for EncoderIntentModel {
    /// Embeds `text` with the batcher, blocking this thread; an encoder failure
    /// gives an empty ranking (out of scope).
    /// A blend classifies a text in a script outside the encoder's vocabulary
    /// with its n-gram model alone.
    fn classify(&self, text: &str) -> Classification {
        if let Some(ngram) = self.ngram_alone(text) {
            return ngram.classify(text);
        }
        self.classify_result(text, self.batcher.embed_blocking(text, TextKind::Query))
    }

    fn classify_async<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Classification> {
        Box::pin(async move {
            if let Some(ngram) = self.ngram_alone(text) {
                return ngram.classify(text);
            }
            let embedding = self.batcher.embed(text, TextKind::Query).await;
            self.classify_result(text, embedding)
        })
    }

    /// Fails when the encoder's batcher has stalled, as [`Batcher::check_progress`] decides.
    fn check_ready(&self) -> Result<(), String> {
        self.batcher.check_progress().map_err(|error| error.to_string())
    }
}

fn read_metadata(dir: &Path) -> Result<Metadata, IntentError> {
    let path = dir.join(HEAD_METADATA_FILE);
    let bytes = fs::read(&path).map_err(|source| io_error("read head metadata", &path, source))?;
    check_format_version(&path, &bytes, FORMAT_VERSION)?;
    let metadata: Metadata = serde_json::from_slice(&bytes).map_err(|error| invalid(&path, error.to_string()))?;
    if metadata.intents.is_empty() || metadata.dimension == 0 {
        return Err(invalid(&path, "no intents or a dimension of 0".to_owned()));
    }
    if let Err(error) = metadata.config.validate() {
        return Err(invalid(&path, error.to_string()));
    }
    Ok(metadata)
}

/// Loads the head described by `metadata`, and the n-gram model of a blend
/// when it matches `examples`.
fn load(dir: &Path, mut metadata: Metadata, examples: &[(String, IntentId)], batcher: &Batcher) -> Result<EncoderIntentModel, IntentError> {
    let path = dir.join(HEAD_WEIGHTS_FILE);
    let bytes = fs::read(&path).map_err(|source| io_error("read head weights", &path, source))?;
    let expected = std::mem::take(&mut metadata.sha256);
    check_sha256(&path, &bytes, &metadata, &expected)?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|error| invalid(&path, error.to_string()))?;

    let (input, hidden, classes) = (metadata.dimension, metadata.config.hidden, metadata.intents.len());
    let width = if hidden > 0 { hidden } else { input };
    let read = |name: String, length: usize| -> Result<Vec<f32>, IntentError> {
        let tensor = tensors.get(&name).ok_or_else(|| invalid(&path, format!("tensor `{name}` is missing")))?;
        if tensor.dtype() != DType::F32 || tensor.dims() != [length] {
            return Err(invalid(&path, format!("tensor `{name}` is {:?} {:?}, expected F32 [{length}]", tensor.dtype(), tensor.dims())));
        }
        let values = tensor.to_vec1::<f32>()?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid(&path, format!("tensor `{name}` holds a value that is not finite")));
        }
        Ok(values)
    };

    let mut members = Vec::with_capacity(metadata.config.members);
    for i in 0..metadata.config.members {
        let (hidden_weight, hidden_bias) = if hidden > 0 {
            (read(member_tensor(i, "hidden_weight"), hidden * input)?, read(member_tensor(i, "hidden_bias"), hidden)?)
        } else {
            (Vec::new(), Vec::new())
        };
        members.push(HeadWeights {
            hidden_weight,
            hidden_bias,
            output_weight: read(member_tensor(i, "output_weight"), classes * width)?,
            output_bias: read(member_tensor(i, "output_bias"), classes)?,
            scale: read(member_tensor(i, "scale"), 1)?[0],
        });
    }

    let centroids = read("centroids".to_owned(), classes * input)?;
    let ngram = if metadata.config.ngram_weight > 0.0 {
        let ngram_dir = dir.join(NGRAM_DIR);
        let model = IntentModel::load(&ngram_dir)?;
        if model.training_hash() != crate::training_hash(examples, &metadata.config.ngram) || model.intents() != metadata.intents.as_slice() {
            return Err(invalid(&ngram_dir, "the n-gram model was trained on other examples".to_owned()));
        }
        Some(model)
    } else {
        None
    };

    warn_unknown_examples(examples, batcher, ngram.is_some());
    Ok(EncoderIntentModel {
        intents: metadata.intents,
        config: metadata.config,
        training_hash: metadata.training_hash,
        fingerprint: metadata.encoder_fingerprint,
        dimension: metadata.dimension,
        members,
        centroids,
        ngram,
        batcher: batcher.clone(),
        warned: AtomicBool::new(false),
    })
}

/// Logs one WARN when the encoder's vocabulary lacks the script of some
/// examples (see [`lepton_encoder::Encoder::covers`]), as all-MiniLM-L6-v2's
/// lacks Chinese: such messages are classified by the n-gram model alone, or, without
/// one, by vectors that say little about them.
fn warn_unknown_examples(examples: &[(String, IntentId)], batcher: &Batcher, has_ngram: bool) {
    let encoder = batcher.encoder();
    let unknown: Vec<&str> = examples.iter().map(|(text, _)| text.as_str()).filter(|text| !encoder.covers(text)).collect();
    let Some(first) = unknown.first() else { return };
    let handled = if has_ngram {
        "messages like them are classified by the n-gram model alone"
    } else {
        "the head classifies messages like them from vectors that say little about them"
    };
    tracing::warn!(
        unknown = unknown.len(),
        examples = examples.len(),
        example = %first,
        "the encoder's vocabulary lacks the script of some examples; {handled}. Choose a multilingual encoder, such as intfloat/multilingual-e5-small, for these languages"
    );
}

