//! Stored passage vectors, so that reopening a knowledge base skips the encoder.
//!
//! The vectors live next to the BM25 index in `embeddings-<first 16 hex digits
//! of the key>.bin`, where the key is the SHA-256 of the sources, the semantic
//! format version and the encoder's fingerprint. The file holds the magic bytes
//! `LPTNVEC2`, the full key as 64 ASCII hex digits, the dimension and the vector
//! count as little-endian `u32`, the vectors as little-endian `f32`, and last
//! the SHA-256 of everything before it, so a damaged file is never used. A new
//! file is written to a temporary name and renamed into place, then the other
//! `embeddings-*.bin` files are removed.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::KnowledgeBuildError;
use crate::semantic::SEMANTIC_FORMAT_VERSION;

const MAGIC: &[u8; 8] = b"LPTNVEC2";
/// The magic bytes of the first layout, which had no checksum.
const OLD_MAGIC: &[u8; 8] = b"LPTNVEC1";
const DIGEST_LEN: usize = 32;
const FILE_PREFIX: &str = "embeddings-";
const FILE_SUFFIX: &str = ".bin";
const KEY_LEN: usize = 64;
const HEADER_LEN: usize = MAGIC.len() + KEY_LEN + 8;

/// Returns the hex key of the vectors of these sources under this encoder.
pub(crate) fn vectors_key(sources_sha256: &str, encoder_fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(SEMANTIC_FORMAT_VERSION.to_le_bytes());
    hasher.update(sources_sha256.as_bytes());
    hasher.update([0]);
    hasher.update(encoder_fingerprint.as_bytes());
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn vectors_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{}{FILE_SUFFIX}", &key[..16]))
}

/// Reads the vectors stored under `key`, when there are exactly `count` of them.
/// A missing file returns `None`; an unreadable or damaged one also returns
/// `None`, with a warning, so that the caller embeds again.
pub(crate) fn read_vectors(dir: &Path, key: &str, count: usize) -> Option<Vec<Vec<f32>>> {
    let path = vectors_path(dir, key);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %error, "cannot read stored vectors; embedding again");
            return None;
        }
    };

    if bytes.starts_with(OLD_MAGIC) {
        tracing::info!(path = %path.display(), "stored vectors have an older format; embedding again");
        return None;
    }
    match decode(&bytes, key, count) {
        Ok(vectors) => Some(vectors),
        Err(reason) => {
            tracing::warn!(path = %path.display(), reason, "invalid stored vectors; embedding again");
            None
        }
    }
}

fn decode(bytes: &[u8], key: &str, count: usize) -> Result<Vec<Vec<f32>>, &'static str> {
    if !bytes.starts_with(MAGIC) {
        return Err("not a vectors file (unknown magic bytes)");
    }
    if bytes.len() < HEADER_LEN + DIGEST_LEN {
        return Err("file shorter than its header and checksum");
    }
    let (bytes, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if Sha256::digest(bytes).as_slice() != digest {
        return Err("checksum differs");
    }
    if &bytes[MAGIC.len()..MAGIC.len() + KEY_LEN] != key.as_bytes() {
        return Err("key differs");
    }
    let number = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    let dimension = number(MAGIC.len() + KEY_LEN);
    let stored_count = number(MAGIC.len() + KEY_LEN + 4);
    if stored_count != count {
        return Err("vector count differs from the passages");
    }
    if bytes.len() != HEADER_LEN + 4 * dimension * count {
        return Err("file length differs from the header");
    }

    let values: Vec<f32> = bytes[HEADER_LEN..]
        .chunks_exact(4)
        .map(|value| f32::from_le_bytes([value[0], value[1], value[2], value[3]]))
        .collect();
    if values.iter().any(|value| !value.is_finite()) {
        return Err("non-finite value");
    }
    if dimension == 0 {
        return Ok(vec![Vec::new(); count]);
    }
    Ok(values.chunks_exact(dimension).map(<[f32]>::to_vec).collect())
}

/// Writes `vectors` under `key` and removes vector files of other keys.
pub(crate) fn write_vectors(dir: &Path, key: &str, vectors: &[Vec<f32>]) -> Result<(), KnowledgeBuildError> {
    let dimension = vectors.first().map_or(0, Vec::len);
    let mut bytes = Vec::with_capacity(HEADER_LEN + 4 * dimension * vectors.len() + DIGEST_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&(dimension as u32).to_le_bytes());
    bytes.extend_from_slice(&(vectors.len() as u32).to_le_bytes());
    for value in vectors.iter().flatten() {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);

    let path = vectors_path(dir, key);
    let temporary = path.with_extension("bin.tmp");
    fs::create_dir_all(dir).map_err(KnowledgeBuildError::io("create the index folder", dir))?;
    fs::write(&temporary, bytes).map_err(KnowledgeBuildError::io("write", &temporary))?;
    if let Err(error) = fs::rename(&temporary, &path) {
        let _ = fs::remove_file(&temporary);
        return Err(KnowledgeBuildError::io("replace", &path)(error));
    }
    remove_stale_vectors(dir, &path);
    Ok(())
}

/// Removes `embeddings-*.bin` files other than `current`; failures are logged.
fn remove_stale_vectors(dir: &Path, current: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if path == current || !is_vectors_file_name(name) {
            continue;
        }
        if let Err(error) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %error, "cannot remove old stored vectors");
        }
    }
}

fn is_vectors_file_name(name: &str) -> bool {
    name.strip_prefix(FILE_PREFIX)
        .and_then(|rest| rest.strip_suffix(FILE_SUFFIX))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lepton-vectors-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn vectors_round_trip() -> Result<(), KnowledgeBuildError> {
        let dir = temp_dir("round-trip");
        let key = vectors_key("sources", "model");
        let vectors = vec![vec![0.5, -1.0], vec![2.0, 0.25]];
        write_vectors(&dir, &key, &vectors)?;
        assert_eq!(read_vectors(&dir, &key, 2), Some(vectors));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn vectors_of_other_key_or_count_are_not_read() -> Result<(), KnowledgeBuildError> {
        let dir = temp_dir("other-key");
        let key = vectors_key("sources", "model");
        write_vectors(&dir, &key, &[vec![1.0]])?;
        assert_eq!(read_vectors(&dir, &vectors_key("sources", "other model"), 1), None);
        assert_eq!(read_vectors(&dir, &key, 2), None);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn truncated_vectors_file_is_not_read() -> Result<(), KnowledgeBuildError> {
        let dir = temp_dir("truncated");
        let key = vectors_key("sources", "model");
        write_vectors(&dir, &key, &[vec![1.0, 2.0]])?;
        let path = vectors_path(&dir, &key);
        let bytes = fs::read(&path).map_err(KnowledgeBuildError::io("read", &path))?;
        fs::write(&path, &bytes[..bytes.len() - 2]).map_err(KnowledgeBuildError::io("write", &path))?;
        assert_eq!(read_vectors(&dir, &key, 1), None);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn changed_vector_value_is_not_read() -> Result<(), KnowledgeBuildError> {
        let dir = temp_dir("bit-flip");
        let key = vectors_key("sources", "model");
        write_vectors(&dir, &key, &[vec![1.0, 2.0]])?;
        let path = vectors_path(&dir, &key);
        let mut bytes = fs::read(&path).map_err(KnowledgeBuildError::io("read", &path))?;
        // The lowest mantissa bit of the first value: still finite, so only the checksum notices.
        bytes[HEADER_LEN] ^= 1;
        fs::write(&path, &bytes).map_err(KnowledgeBuildError::io("write", &path))?;
        assert_eq!(read_vectors(&dir, &key, 1), None);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn writing_new_vectors_removes_old_file() -> Result<(), KnowledgeBuildError> {
        let dir = temp_dir("stale");
        let old = vectors_key("old sources", "model");
        let new = vectors_key("new sources", "model");
        write_vectors(&dir, &old, &[vec![1.0]])?;
        write_vectors(&dir, &new, &[vec![1.0]])?;
        assert!(!vectors_path(&dir, &old).exists());
        assert!(vectors_path(&dir, &new).exists());
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn key_changes_with_fingerprint() {
        assert_ne!(vectors_key("sources", "a"), vectors_key("sources", "b"));
    }
}
