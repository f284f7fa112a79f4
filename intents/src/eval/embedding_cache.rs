//! A disk cache of sentence embeddings for evaluation runs, so that a data set
//! of tens of thousands of texts is encoded once per encoder.
//!
//! One file per encoder fingerprint and text kind holds fixed-size records: the
//! SHA-256 of the text, then the vector as little-endian `f32`. New vectors are
//! appended after each chunk, so an interrupted run keeps its progress; a
//! trailing partial record is ignored.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use lepton_encoder::{Batcher, TextKind};
use sha2::{Digest, Sha256};

use crate::error::IntentError;

/// Texts encoded per call of the encoder, and per append to the cache file.
const CHUNK: usize = 512;

/// The cached vectors of one encoder and text kind.
pub struct EmbeddingCache {
    path: PathBuf,
    dimension: usize,
    vectors: HashMap<[u8; 32], Vec<f32>>,
}

impl EmbeddingCache {
    /// Opens (or starts) the cache file of `batcher`'s encoder for `kind` in `dir`.
    pub fn open(dir: &Path, batcher: &Batcher, kind: TextKind) -> Result<Self, IntentError> {
        let encoder = batcher.encoder();
        let dimension = encoder.dimension();
        let kind_name = match kind {
            TextKind::Query => "query",
            TextKind::Passage => "passage",
        };
        let path = dir.join(format!("{}-{kind_name}.f32", encoder.fingerprint()));

        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(source) if source.kind() == ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(IntentError::Io { action: "read embedding cache", path, source }),
        };
        let record = 32 + dimension * 4;
        let mut vectors = HashMap::new();
        for chunk in bytes.chunks_exact(record) {
            let key: [u8; 32] = chunk[..32].try_into().expect("32-byte key");
            let vector = chunk[32..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            vectors.insert(key, vector);
        }
        Ok(Self { path, dimension, vectors })
    }

    /// Returns the vectors of `texts`, in order, encoding and appending the
    /// ones the cache lacks.
    pub fn embed_all(&mut self, batcher: &Batcher, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, IntentError> {
        let mut missing: Vec<&str> = texts.iter().copied().filter(|text| !self.vectors.contains_key(&key(text))).collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            self.encode(batcher, &missing, kind)?;
        }
        Ok(texts.iter().map(|text| self.vectors[&key(text)].clone()).collect())
    }

    fn encode(&mut self, batcher: &Batcher, texts: &[&str], kind: TextKind) -> Result<(), IntentError> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent).map_err(|source| io_error("create embedding cache folder", parent, source))?;
        }
        let mut file =
            OpenOptions::new().create(true).append(true).open(&self.path).map_err(|source| io_error("open embedding cache", &self.path, source))?;

        let started = Instant::now();
        for (i, chunk) in texts.chunks(CHUNK).enumerate() {
            let vectors = batcher.embed_many(chunk, kind)?;
            let mut bytes = Vec::with_capacity(chunk.len() * (32 + self.dimension * 4));
            for (text, vector) in chunk.iter().zip(vectors) {
                let key = key(text);
                bytes.extend_from_slice(&key);
                vector.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
                self.vectors.insert(key, vector);
            }
            file.write_all(&bytes).map_err(|source| io_error("append to embedding cache", &self.path, source))?;
            tracing::info!(done = (i * CHUNK + chunk.len()), total = texts.len(), seconds = started.elapsed().as_secs_f64(), "encoding texts");
        }
        Ok(())
    }
}

fn key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> IntentError {
    IntentError::Io { action, path: path.to_owned(), source }
}
