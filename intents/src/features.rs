//! Hashed bag-of-n-gram features with TF-IDF weights.
//!
//! A text becomes word n-grams and character n-grams (taken inside word
//! boundaries for alphabetic scripts, inside runs of CJK characters for Chinese
//! and Japanese), each hashed into one of `2^hash_bits` buckets. Only buckets
//! seen in the training data get a row in the model; the others are dropped.

use serde::{Deserialize, Serialize};

use crate::text::{self, Word};

/// Settings of feature extraction. Part of the training hash: changing any
/// field retrains a stored model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Number of hash buckets as a power of two (8 to 24).
    pub hash_bits: u32,
    /// Maximum word n-gram length; 1 keeps unigrams only.
    pub word_ngram_max: usize,
    /// Minimum and maximum character n-gram length in alphabetic words, counted
    /// with one boundary marker on each side of the word.
    pub char_ngram_min: usize,
    pub char_ngram_max: usize,
    /// Minimum and maximum character n-gram length inside a run of CJK characters.
    pub cjk_ngram_min: usize,
    pub cjk_ngram_max: usize,
    /// Replace every ASCII digit (full-width digits included) with `0` before
    /// extracting features.
    pub fold_digits: bool,
    /// Minimum number of training texts a bucket must occur in to get a row.
    pub min_df: u32,
    /// Weight of features unseen in training, relative to the IDF of a bucket no
    /// training text contains, in a vector's length before normalising (0 leaves
    /// them out). A text made mostly of unfamiliar n-grams then gets a short
    /// vector and a low confidence.
    pub unseen_weight: f32,
    /// Add pairs of words one word apart (`how _ i` from `how do i`).
    pub skip_bigrams: bool,
    /// Add the first and the last word as features of their own.
    pub edge_words: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            hash_bits: 18,
            word_ngram_max: 2,
            char_ngram_min: 1,
            char_ngram_max: 4,
            cjk_ngram_min: 1,
            cjk_ngram_max: 3,
            fold_digits: true,
            min_df: 1,
            unseen_weight: 3.0,
            skip_bigrams: true,
            edge_words: true,
        }
    }
}

impl FeatureConfig {
    /// Returns a description of the first invalid field, if any.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(8..=24).contains(&self.hash_bits) {
            return Err(format!("hash_bits is {}, expected 8 to 24", self.hash_bits));
        }
        if self.word_ngram_max == 0 {
            return Err("word_ngram_max is 0, expected at least 1".to_owned());
        }
        if !(self.unseen_weight >= 0.0 && self.unseen_weight.is_finite()) {
            return Err(format!("unseen_weight is {}, expected 0 or more", self.unseen_weight));
        }
        if self.char_ngram_min == 0 || self.char_ngram_min > self.char_ngram_max {
            return Err(format!("char n-gram range {}..={} is empty or starts at 0", self.char_ngram_min, self.char_ngram_max));
        }
        if self.cjk_ngram_min == 0 || self.cjk_ngram_min > self.cjk_ngram_max {
            return Err(format!("CJK n-gram range {}..={} is empty or starts at 0", self.cjk_ngram_min, self.cjk_ngram_max));
        }
        Ok(())
    }

    fn bucket_mask(&self) -> u32 {
        (1u32 << self.hash_bits) - 1
    }

    /// Appends the bucket of every feature of `text` to `out`, one entry per
    /// occurrence, so that repeated n-grams count more than once.
    pub(crate) fn hashed_features(&self, text: &str, out: &mut Vec<u32>) {
        let normalized = text::normalize(text);
        let words = text::words(&normalized, self.fold_digits);
        let mask = self.bucket_mask();

        self.word_ngrams(&words, mask, out);
        self.char_ngrams(&words, mask, out);
    }

    fn word_ngrams(&self, words: &[Word], mask: u32, out: &mut Vec<u32>) {
        for n in 1..=self.word_ngram_max.min(words.len()) {
            for window in words.windows(n) {
                let mut hash = Fnv::new(Kind::Word, n);
                for (i, word) in window.iter().enumerate() {
                    if i > 0 {
                        hash.write(b" ");
                    }
                    hash.write(word.text.as_bytes());
                }
                out.push(hash.bucket(mask));
            }
        }
        if self.skip_bigrams {
            for window in words.windows(3) {
                let mut hash = Fnv::new(Kind::Skip, 2);
                hash.write(window[0].text.as_bytes());
                hash.write(b" ");
                hash.write(window[2].text.as_bytes());
                out.push(hash.bucket(mask));
            }
        }
        if self.edge_words && !words.is_empty() {
            let mut first = Fnv::new(Kind::Edge, 0);
            first.write(words[0].text.as_bytes());
            out.push(first.bucket(mask));
            let mut last = Fnv::new(Kind::Edge, 1);
            last.write(words[words.len() - 1].text.as_bytes());
            out.push(last.bucket(mask));
        }
    }

    fn char_ngrams(&self, words: &[Word], mask: u32, out: &mut Vec<u32>) {
        let mut chars: Vec<char> = Vec::new();
        let mut start = 0;

        while start < words.len() {
            chars.clear();
            if words[start].cjk {
                let end = words[start..].iter().position(|w| !w.cjk).map_or(words.len(), |p| start + p);
                chars.extend(words[start..end].iter().flat_map(|w| w.text.chars()));
                push_ngrams(&chars, Kind::Cjk, self.cjk_ngram_min, self.cjk_ngram_max, mask, out);
                start = end;
            } else {
                chars.push(WORD_BOUNDARY);
                chars.extend(words[start].text.chars());
                chars.push(WORD_BOUNDARY);
                push_ngrams(&chars, Kind::Char, self.char_ngram_min, self.char_ngram_max, mask, out);
                start += 1;
            }
        }
    }
}

const WORD_BOUNDARY: char = ' ';

fn push_ngrams(chars: &[char], kind: Kind, min: usize, max: usize, mask: u32, out: &mut Vec<u32>) {
    let mut utf8 = [0u8; 4];
    for n in min..=max.min(chars.len()) {
        for window in chars.windows(n) {
            if window.iter().all(|&c| c == WORD_BOUNDARY) {
                continue;
            }
            let mut hash = Fnv::new(kind, n);
            for ch in window {
                hash.write(ch.encode_utf8(&mut utf8).as_bytes());
            }
            out.push(hash.bucket(mask));
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Word = 1,
    Char = 2,
    Cjk = 3,
    Skip = 4,
    Edge = 5,
}

/// 64-bit FNV-1a, chosen because it is stable across platforms and releases,
/// unlike `std`'s `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new(kind: Kind, n: usize) -> Self {
        let mut hash = Self(0xCBF2_9CE4_8422_2325);
        hash.write(&[kind as u8, n as u8]);
        hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn bucket(&self, mask: u32) -> u32 {
        ((self.0 ^ (self.0 >> 32)) as u32) & mask
    }
}

/// A sparse feature vector: model rows and their weights, rows ascending.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SparseVector {
    pub(crate) rows: Vec<u32>,
    pub(crate) weights: Vec<f32>,
}

/// The buckets that have rows in a model, with their inverse document frequencies.
#[derive(Clone, Debug)]
pub(crate) struct Vocabulary {
    config: FeatureConfig,
    /// For every bucket, its row, or `NO_ROW`.
    bucket_rows: Vec<u32>,
    /// Bucket of each row, ascending.
    buckets: Vec<u32>,
    /// Smoothed IDF of each row: `ln((1 + n) / (1 + df)) + 1` for `n` training texts.
    idf: Vec<f32>,
    /// The IDF of a bucket with no training text: `ln(1 + n) + 1`.
    unseen_idf: f32,
}

const NO_ROW: u32 = u32::MAX;

impl Vocabulary {
    /// Counts document frequencies over `texts` and keeps the buckets that reach
    /// `min_df`.
    pub(crate) fn fit<'a>(config: &FeatureConfig, texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut df = vec![0u32; 1usize << config.hash_bits];
        let mut scratch = Vec::new();
        let mut documents = 0usize;

        for text in texts {
            documents += 1;
            scratch.clear();
            config.hashed_features(text, &mut scratch);
            scratch.sort_unstable();
            scratch.dedup();
            for &bucket in &scratch {
                df[bucket as usize] += 1;
            }
        }

        let mut buckets = Vec::new();
        let mut idf = Vec::new();
        for (bucket, &count) in df.iter().enumerate() {
            if count > 0 && count >= config.min_df {
                buckets.push(bucket as u32);
                idf.push(((1.0 + documents as f64) / (1.0 + f64::from(count))).ln() as f32 + 1.0);
            }
        }
        let unseen_idf = (1.0 + documents as f64).ln() as f32 + 1.0;
        Self::from_parts(config.clone(), buckets, idf, unseen_idf).expect("buckets are ascending and in range")
    }

    /// Rebuilds a vocabulary from stored rows; `buckets` must be strictly
    /// ascending, inside the hash range, and as long as `idf`.
    pub(crate) fn from_parts(config: FeatureConfig, buckets: Vec<u32>, idf: Vec<f32>, unseen_idf: f32) -> Result<Self, String> {
        if buckets.len() != idf.len() {
            return Err(format!("{} buckets but {} IDF values", buckets.len(), idf.len()));
        }
        let mut bucket_rows = vec![NO_ROW; 1usize << config.hash_bits];
        let mut previous = None;
        for (row, &bucket) in buckets.iter().enumerate() {
            if previous.is_some_and(|p| p >= bucket) {
                return Err(format!("bucket {bucket} at row {row} is not in ascending order"));
            }
            let slot = bucket_rows
                .get_mut(bucket as usize)
                .ok_or_else(|| format!("bucket {bucket} at row {row} exceeds 2^{}", config.hash_bits))?;
            *slot = row as u32;
            previous = Some(bucket);
        }
        if let Some(row) = idf.iter().position(|v| !v.is_finite()) {
            return Err(format!("IDF of row {row} is not finite"));
        }
        if !unseen_idf.is_finite() {
            return Err(format!("IDF of unseen buckets is {unseen_idf}, expected a finite number"));
        }
        Ok(Self { config, bucket_rows, buckets, idf, unseen_idf })
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    pub(crate) fn buckets(&self) -> &[u32] {
        &self.buckets
    }

    pub(crate) fn idf(&self) -> &[f32] {
        &self.idf
    }

    pub(crate) fn unseen_idf(&self) -> f32 {
        self.unseen_idf
    }

    /// Returns the L2-normalised TF-IDF vector of `text`, with sublinear term
    /// frequency `1 + ln(tf)`, keeping only buckets that have rows. Text with no
    /// known features gives an empty vector.
    pub(crate) fn vectorize(&self, text: &str) -> SparseVector {
        let mut buckets = Vec::new();
        self.config.hashed_features(text, &mut buckets);
        buckets.sort_unstable();

        let mut vector = SparseVector::default();
        let mut unseen_squared = 0.0;
        for group in buckets.chunk_by(|a, b| a == b) {
            let tf = 1.0 + (group.len() as f32).ln();
            let row = self.bucket_rows[group[0] as usize];
            if row == NO_ROW {
                unseen_squared += (tf * self.unseen_idf).powi(2);
                continue;
            }
            vector.rows.push(row);
            vector.weights.push(tf * self.idf[row as usize]);
        }

        let squared = vector.weights.iter().map(|w| w * w).sum::<f32>() + unseen_squared * self.config.unseen_weight.powi(2);
        let norm = squared.sqrt();
        if norm > 0.0 {
            vector.weights.iter_mut().for_each(|w| *w /= norm);
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::{FeatureConfig, Vocabulary};

    #[test]
    fn features_same_text_same_buckets() {
        let config = FeatureConfig::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        config.hashed_features("Where is my order?", &mut a);
        config.hashed_features("where  is my ORDER", &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn features_chinese_text_count() {
        let mut out = Vec::new();
        FeatureConfig::default().hashed_features("我要退款", &mut out);
        // 4 words, 3 word bigrams, 2 skip-bigrams, the first and last word, and
        // 4 + 3 + 2 CJK n-grams of lengths 1 to 3.
        assert_eq!(out.len(), 4 + 3 + 2 + 2 + 9);
    }

    #[test]
    fn vectorize_is_unit_length() {
        let vocabulary = Vocabulary::fit(&FeatureConfig::default(), ["track my order", "cancel my order"]);
        let vector = vocabulary.vectorize("track my order");
        let norm: f32 = vector.weights.iter().map(|w| w * w).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }

    #[test]
    fn vectorize_unseen_features_shorten_the_vector() {
        let vocabulary = Vocabulary::fit(&FeatureConfig::default(), ["track my order"]);
        let vector = vocabulary.vectorize("track zebra quokka");
        let norm: f32 = vector.weights.iter().map(|w| w * w).sum::<f32>().sqrt();
        assert!(norm < 0.8, "norm {norm}");
    }

    #[test]
    fn vectorize_unknown_text_is_empty() {
        let vocabulary = Vocabulary::fit(&FeatureConfig::default(), ["track my order"]);
        assert!(vocabulary.vectorize("😀").rows.is_empty());
    }

    #[test]
    fn vocabulary_rejects_unsorted_buckets() {
        let result = Vocabulary::from_parts(FeatureConfig::default(), vec![5, 3], vec![1.0, 1.0], 2.0);
        assert!(result.is_err());
    }
}
