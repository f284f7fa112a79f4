//! Hybrid knowledge search: BM25 from the tantivy index and cosine similarity
//! of sentence-encoder vectors, fused by reciprocal rank.

use std::collections::HashMap;
use std::path::Path;

use bot_core::knowledge::KnowledgeError;
use bot_core::{Article, BoxFuture, FaqEntry, KnowledgeAnswer, KnowledgeSearch, Lang};
use lepton_encoder::{Batcher, EncoderError, TextKind};

use crate::error::KnowledgeBuildError;
use crate::index::{sources_sha256, KnowledgeIndex};
use crate::schema::lang_key;
use crate::search::{truncate, LangFilter, MAX_QUERY_BYTES};
use crate::semantic::{SemanticIndex, SemanticSources};
use crate::vectors::{read_vectors, vectors_key, write_vectors};

/// The constant of reciprocal rank fusion: a document at rank `r` (from 1) on
/// one side earns `1 / (RRF_K + r)`. 60 is the value of Cormack et al. (SIGIR
/// 2009), which damps the difference between the first few ranks.
const RRF_K: f32 = 60.0;

/// Documents taken from each side before fusion.
const SIDE_CANDIDATES: usize = 10;

/// The signals the hybrid search uses, and the lift that qualifies a document alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HybridConfig {
    /// Rank with BM25 and let its relevance reach `min_score`.
    pub bm25: bool,
    /// Rank by cosine similarity to the encoder's vectors; used only when a
    /// batcher is given.
    pub embeddings: bool,
    /// The lift (see [`HybridHit::lift`]) from which a document is answered
    /// even when its BM25 relevance is below `min_score`. A lift, not a raw
    /// cosine, so that one value suits encoders whose cosines spread
    /// differently.
    pub min_similarity: f32,
}

/// The default of [`HybridConfig::min_similarity`], measured with
/// all-MiniLM-L6-v2 and multilingual-e5-small; see the crate documentation.
pub const DEFAULT_MIN_SIMILARITY: f32 = 0.6;

impl Default for HybridConfig {
    fn default() -> Self {
        Self { bm25: true, embeddings: true, min_similarity: DEFAULT_MIN_SIMILARITY }
    }
}

/// One fused result.
#[derive(Clone, Debug, PartialEq)]
pub struct HybridHit {
    /// `faq:ID`, `PATH#SLUG` or `PATH`.
    pub source: String,
    pub answer: String,
    pub lang: Lang,
    /// BM25 relevance in [0, 1]; 0 for a document outside BM25's top 10, and
    /// `None` when the BM25 side is off.
    pub relevance: Option<f32>,
    /// Cosine similarity, the best over the document's vectors; `None` when the
    /// embedding side is off or unavailable.
    pub similarity: Option<f32>,
    /// How far the similarity is above the query's background `m` (the median
    /// cosine over the background sentences and the vectors of every document
    /// but the most similar one), as a share of the room above it:
    /// `(similarity − m) / (1 − m)`, at most 1. `None` with `similarity`.
    pub lift: Option<f32>,
    /// The reciprocal-rank-fusion score that orders the hits.
    pub fused: f32,
}

impl HybridHit {
    /// Returns whether the hit may be returned as the answer: its relevance reaches
    /// `min_score` or its lift reaches `min_similarity`.
    pub fn qualifies(&self, min_score: f32, min_similarity: f32) -> bool {
        self.relevance.is_some_and(|relevance| relevance >= min_score)
            || self.lift.is_some_and(|lift| lift >= min_similarity)
    }

    /// Returns the answer's score: the larger of the relevance and the lift
    /// mapped onto the relevance scale, linearly with `min_similarity` at
    /// `min_score` and 1 at 1 (and 0 at 0 below it). So the score reaches
    /// `min_score` exactly when the hit qualifies.
    fn score(&self, min_score: f32, min_similarity: f32) -> f32 {
        let relevance = self.relevance.unwrap_or(0.0);
        let similarity = self.lift.map_or(0.0, |similarity| {
            let similarity = similarity.clamp(0.0, 1.0);
            let threshold = min_similarity.clamp(f32::EPSILON, 1.0);
            if similarity >= threshold && threshold < 1.0 {
                min_score + (1.0 - min_score) * (similarity - threshold) / (1.0 - threshold)
            } else if similarity >= threshold {
                1.0
            } else {
                min_score * similarity / threshold
            }
        });
        relevance.max(similarity).clamp(0.0, 1.0)
    }
}

/// A knowledge base searched by BM25 and by sentence-encoder similarity.
///
/// Without a batcher, or with [`HybridConfig::embeddings`] off, it answers
/// exactly as [`KnowledgeIndex`] does. See the crate documentation for the
/// fusion, the answer rule and the score.
pub struct HybridKnowledge {
    index: KnowledgeIndex,
    semantic: Option<(SemanticIndex, Batcher)>,
    config: HybridConfig,
}

impl HybridKnowledge {
    /// Opens or builds the BM25 index in `dir` (see
    /// [`KnowledgeIndex::open_or_build`]) and, with a batcher and embeddings on,
    /// reuses the vectors stored there for these sources and this encoder or
    /// embeds the passages and stores them. Returns whether anything was rebuilt.
    pub fn open_or_build(
        dir: &Path,
        faq: &[FaqEntry],
        articles: &[Article],
        batcher: Option<&Batcher>,
        config: &HybridConfig,
    ) -> Result<(Self, bool), KnowledgeBuildError> {
        let (index, mut rebuilt) = KnowledgeIndex::open_or_build(dir, faq, articles)?;
        let Some(batcher) = batcher.filter(|_| config.embeddings) else {
            return Ok((Self { index, semantic: None, config: *config }, rebuilt));
        };

        let sources = SemanticSources::new(faq, articles);
        let key = vectors_key(&sources_sha256(faq, articles), batcher.encoder().fingerprint());
        let vectors = match read_vectors(dir, &key, sources.passages.len()) {
            Some(vectors) => vectors,
            None => {
                let vectors = embed(&sources, batcher)?;
                write_vectors(dir, &key, &vectors)?;
                rebuilt = true;
                vectors
            }
        };

        let semantic = semantic_index(sources, vectors)?;
        Ok((Self { index, semantic: Some((semantic, batcher.clone())), config: *config }, rebuilt))
    }

    /// Builds everything in memory; nothing is written to disk.
    pub fn in_memory(
        faq: &[FaqEntry],
        articles: &[Article],
        batcher: Option<&Batcher>,
        config: &HybridConfig,
    ) -> Result<Self, KnowledgeBuildError> {
        let index = KnowledgeIndex::in_memory(faq, articles)?;
        let Some(batcher) = batcher.filter(|_| config.embeddings) else {
            return Ok(Self { index, semantic: None, config: *config });
        };

        let sources = SemanticSources::new(faq, articles);
        let vectors = embed(&sources, batcher)?;
        let semantic = semantic_index(sources, vectors)?;
        Ok(Self { index, semantic: Some((semantic, batcher.clone())), config: *config })
    }

    pub fn config(&self) -> &HybridConfig {
        &self.config
    }

    /// Replaces the configuration. Turning embeddings on has no effect when the
    /// knowledge base was built without them.
    pub fn set_config(&mut self, config: HybridConfig) {
        self.config = config;
    }

    /// Returns whether the embedding side is in use.
    pub fn uses_embeddings(&self) -> bool {
        self.config.embeddings && self.semantic.is_some()
    }

    /// The BM25 index underneath.
    pub fn index(&self) -> &KnowledgeIndex {
        &self.index
    }

    /// Returns up to `limit` documents for `query` in fused order, best first.
    /// With `lang`, only documents in that language are ranked. Blocks on the
    /// encoder; an encoder failure is returned, not papered over.
    pub fn rank(&self, query: &str, lang: Option<&Lang>, limit: usize) -> Result<Vec<HybridHit>, KnowledgeError> {
        let vector = match self.embedding_side() {
            Some((_, batcher)) => embed_query(batcher, query).map_err(encoder_error)?,
            None => None,
        };
        let key = lang.map(lang_key);
        let filter = key.as_deref().map_or(LangFilter::Any, LangFilter::Only);
        let mut hits = self.fused(query, vector.as_deref(), filter, limit.max(SIDE_CANDIDATES))?;
        hits.truncate(limit);
        Ok(hits)
    }

    fn embedding_side(&self) -> Option<&(SemanticIndex, Batcher)> {
        self.semantic.as_ref().filter(|_| self.config.embeddings)
    }

    /// Answers from the query's vector, or from BM25 alone without one.
    fn answer(
        &self,
        query: &str,
        vector: Option<Vec<f32>>,
        lang: &Lang,
        min_score: f32,
    ) -> Result<Option<KnowledgeAnswer>, KnowledgeError> {
        let Some(vector) = vector else {
            return self.index.search(query, lang, min_score);
        };

        let key = lang_key(lang);
        let min_similarity = self.config.min_similarity;
        let mut best = None;
        for filter in [LangFilter::Only(&key), LangFilter::Except(&key)] {
            let hits = self.fused(query, Some(&vector), filter, SIDE_CANDIDATES)?;
            best = hits.into_iter().find(|hit| hit.qualifies(min_score, min_similarity));
            if best.is_some() {
                break;
            }
        }

        tracing::debug!(
            lang = %lang,
            min_score,
            min_similarity,
            source = best.as_ref().map(|hit| hit.source.as_str()),
            relevance = best.as_ref().and_then(|hit| hit.relevance),
            similarity = best.as_ref().and_then(|hit| hit.similarity),
            lift = best.as_ref().and_then(|hit| hit.lift),
            "hybrid knowledge search"
        );
        Ok(best.map(|hit| KnowledgeAnswer {
            score: hit.score(min_score, min_similarity),
            answer: hit.answer,
            source: hit.source,
        }))
    }

    /// Fuses BM25's and the embeddings' top `limit` documents passing `filter`.
    fn fused(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        filter: LangFilter,
        limit: usize,
    ) -> Result<Vec<HybridHit>, KnowledgeError> {
        let semantic = self.embedding_side().map(|(semantic, _)| semantic);
        let (similarities, median) = match (semantic, vector) {
            (Some(semantic), Some(vector)) => semantic.similarities(vector).unzip(),
            _ => (None, None),
        };
        let lift = |similarity: Option<f32>| Some(lift(similarity?, median?));

        let mut hits: Vec<HybridHit> = Vec::new();
        let mut by_source: HashMap<String, usize> = HashMap::new();

        if self.config.bm25 {
            for (rank, hit) in self.index.rank_filtered(query, filter, limit)?.into_iter().enumerate() {
                let similarity = match (semantic, &similarities) {
                    (Some(semantic), Some(similarities)) => {
                        semantic.doc_index(&hit.source).and_then(|index| similarities[index])
                    }
                    _ => None,
                };
                by_source.insert(hit.source.clone(), hits.len());
                hits.push(HybridHit {
                    source: hit.source,
                    answer: hit.answer,
                    lang: hit.lang,
                    relevance: Some(hit.relevance),
                    similarity,
                    lift: lift(similarity),
                    fused: rrf(rank),
                });
            }
        }

        if let (Some(semantic), Some(similarities)) = (semantic, &similarities) {
            for (rank, (index, similarity)) in semantic.top(similarities, filter, limit).into_iter().enumerate() {
                let doc = semantic.doc(index);
                if let Some(&position) = by_source.get(&doc.source) {
                    hits[position].fused += rrf(rank);
                    continue;
                }
                hits.push(HybridHit {
                    source: doc.source.clone(),
                    answer: doc.answer.clone(),
                    lang: Lang::new(doc.lang.clone()),
                    relevance: self.config.bm25.then_some(0.0),
                    similarity: Some(similarity),
                    lift: lift(Some(similarity)),
                    fused: rrf(rank),
                });
            }
        }

        sort_fused(&mut hits);
        Ok(hits)
    }
}

impl KnowledgeSearch for HybridKnowledge {
    /// Searches, embedding the query with [`Batcher::embed_blocking`]. Call it
    /// off the async runtime; the engine uses `search_async`.
    fn search(&self, query: &str, lang: &Lang, min_score: f32) -> Result<Option<KnowledgeAnswer>, KnowledgeError> {
        let vector = match self.embedding_side() {
            Some((_, batcher)) => query_vector_or_warn(embed_query(batcher, query)),
            None => None,
        };
        self.answer(query, vector, lang, min_score)
    }

    /// Searches, embedding the query with the batcher's async path, so the
    /// runtime thread is free while the forward pass runs.
    fn search_async<'a>(
        &'a self,
        query: &'a str,
        lang: &'a Lang,
        min_score: f32,
    ) -> BoxFuture<'a, Result<Option<KnowledgeAnswer>, KnowledgeError>> {
        Box::pin(async move {
            let vector = match self.embedding_side() {
                Some((_, batcher)) => {
                    let embedded = match query_text(batcher, query) {
                        Some(text) => batcher.embed(text, TextKind::Query).await.map(Some),
                        None => Ok(None),
                    };
                    query_vector_or_warn(embedded)
                }
                None => None,
            };
            self.answer(query, vector, lang, min_score)
        })
    }

    /// Searches the index without embedding the text, and fails when the
    /// encoder's batcher has stalled, as [`Batcher::check_progress`] decides.
    fn check_ready(&self, lang: &Lang) -> Result<(), KnowledgeError> {
        self.answer(bot_core::knowledge::READINESS_QUERY, None, lang, f32::MAX)?;
        match self.embedding_side() {
            Some((_, batcher)) => batcher.check_progress().map_err(|error| KnowledgeError { message: error.to_string() }),
            None => Ok(()),
        }
    }
}

/// Orders hits by fused score, then similarity, then relevance.
fn sort_fused(hits: &mut [HybridHit]) {
    let key = |value: Option<f32>| value.unwrap_or(f32::NEG_INFINITY);
    hits.sort_by(|a, b| {
        b.fused
            .total_cmp(&a.fused)
            .then(key(b.similarity).total_cmp(&key(a.similarity)))
            .then(key(b.relevance).total_cmp(&key(a.relevance)))
    });
}

/// How far `similarity` is above `median` as a share of the room above
/// `median`; 0 when there is no room or either value is not finite (a NaN
/// vector must not qualify every document).
fn lift(similarity: f32, median: f32) -> f32 {
    let room = 1.0 - median;
    if !similarity.is_finite() || !median.is_finite() || room <= f32::EPSILON {
        return 0.0;
    }
    ((similarity - median) / room).min(1.0)
}

/// The reciprocal-rank-fusion share of a document at 0-based `rank`.
fn rrf(rank: usize) -> f32 {
    1.0 / (RRF_K + rank as f32 + 1.0)
}

/// Embeds the query's first [`MAX_QUERY_BYTES`]; `None` for a blank query or
/// one in a script outside the encoder's vocabulary (see [`query_text`]).
fn embed_query(batcher: &Batcher, query: &str) -> Result<Option<Vec<f32>>, EncoderError> {
    match query_text(batcher, query) {
        Some(text) => batcher.embed_blocking(text, TextKind::Query).map(Some),
        None => Ok(None),
    }
}

/// The part of `query` to embed, or `None` when it is blank or its script is
/// outside the encoder's vocabulary (too many unknown tokens, see
/// [`lepton_encoder::Encoder::covers`]): such a vector lies near every other
/// unknown text, so the embedding side would vote for noise.
fn query_text<'a>(batcher: &Batcher, query: &'a str) -> Option<&'a str> {
    let text = truncate(query, MAX_QUERY_BYTES);
    if text.trim().is_empty() {
        return None;
    }
    if !batcher.encoder().covers(text) {
        tracing::debug!(
            unknown_share = batcher.encoder().unknown_share(text),
            "the encoder's vocabulary lacks the query's script; searching with BM25 alone"
        );
        return None;
    }
    Some(text)
}

/// Returns the query vector, or `None` after a WARN log so that the search
/// goes on with BM25 alone.
fn query_vector_or_warn(embedded: Result<Option<Vec<f32>>, EncoderError>) -> Option<Vec<f32>> {
    match embedded {
        Ok(vector) => vector,
        Err(error) => {
            tracing::warn!(error = %error, "embedding the query failed; answering with BM25 alone");
            None
        }
    }
}

fn encoder_error(error: EncoderError) -> KnowledgeError {
    KnowledgeError { message: format!("embedding the query failed: {error}") }
}

fn embed(sources: &SemanticSources, batcher: &Batcher) -> Result<Vec<Vec<f32>>, KnowledgeBuildError> {
    let started = std::time::Instant::now();
    let passages = sources.passages.len();
    let vectors = sources.embed(batcher).map_err(|source| KnowledgeBuildError::Embed { passages, source })?;
    tracing::info!(passages, elapsed_ms = started.elapsed().as_millis() as u64, "embedded knowledge passages");
    Ok(vectors)
}

fn semantic_index(sources: SemanticSources, vectors: Vec<Vec<f32>>) -> Result<SemanticIndex, KnowledgeBuildError> {
    let passages = sources.passages.len();
    SemanticIndex::new(sources, vectors).ok_or(KnowledgeBuildError::VectorShape { passages })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hit whose lift equals its similarity, as against a median of 0.
    fn hit(source: &str, relevance: Option<f32>, similarity: Option<f32>, fused: f32) -> HybridHit {
        HybridHit {
            source: source.to_owned(),
            answer: String::new(),
            lang: Lang::new("en"),
            relevance,
            similarity,
            lift: similarity,
            fused,
        }
    }

    #[test]
    fn lift_is_share_of_room_above_median() {
        assert!((lift(0.9, 0.8) - 0.5).abs() < 1e-6);
        assert!((lift(0.6, 0.0) - 0.6).abs() < 1e-6);
        assert!(lift(0.7, 0.8) < 0.0);
        assert_eq!(lift(1.0, 1.0), 0.0);
        assert_eq!(lift(f32::NAN, 0.1), 0.0);
        assert_eq!(lift(0.9, f32::NAN), 0.0);
    }

    #[test]
    fn high_cosine_with_high_median_does_not_qualify() {
        let mut crowded = hit("a", Some(0.0), Some(0.85), 0.0);
        crowded.lift = Some(lift(0.85, 0.8));
        assert!(!crowded.qualifies(0.5, 0.6));
    }

    #[test]
    fn rrf_favours_documents_on_both_sides() {
        let both = rrf(2) + rrf(2);
        assert!(both > rrf(0));
    }

    #[test]
    fn sort_breaks_fused_ties_by_similarity() {
        let mut hits = vec![hit("a", Some(0.9), Some(0.2), rrf(0)), hit("b", Some(0.1), Some(0.7), rrf(0))];
        sort_fused(&mut hits);
        assert_eq!(hits[0].source, "b");
    }

    #[test]
    fn hit_qualifies_on_either_signal() {
        assert!(hit("a", Some(0.5), Some(0.1), 0.0).qualifies(0.5, 0.6));
        assert!(hit("a", Some(0.0), Some(0.6), 0.0).qualifies(0.5, 0.6));
        assert!(!hit("a", Some(0.4), Some(0.59), 0.0).qualifies(0.5, 0.6));
        assert!(!hit("a", None, None, 0.0).qualifies(0.0, 0.0));
    }

    #[test]
    fn score_maps_min_similarity_to_min_score() {
        let at_threshold = hit("a", Some(0.0), Some(0.6), 0.0).score(0.5, 0.6);
        assert!((at_threshold - 0.5).abs() < 1e-6);
        let full = hit("a", None, Some(1.0), 0.0).score(0.5, 0.6);
        assert!((full - 1.0).abs() < 1e-6);
        let below = hit("a", None, Some(0.3), 0.0).score(0.5, 0.6);
        assert!((below - 0.25).abs() < 1e-6);
    }

    #[test]
    fn score_takes_larger_signal() {
        let score = hit("a", Some(0.9), Some(0.6), 0.0).score(0.5, 0.6);
        assert!((score - 0.9).abs() < 1e-6);
    }
}
