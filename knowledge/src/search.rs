//! Query construction, ranking and the relevance score.
//!
//! The customer's message is analysed like the indexed text and turned into a
//! `BooleanQuery` of `Should` term queries built in code. It never passes through
//! tantivy's `QueryParser`, so query syntax in a message is plain text.

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;

use bot_core::knowledge::KnowledgeError;
use bot_core::{KnowledgeAnswer, KnowledgeSearch, Lang};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, DocId, DocSet, TantivyDocument, Term};

use crate::analysis::{han_bigrams, terms};
use crate::index::KnowledgeIndex;
use crate::schema::lang_key;

/// Only the first this many bytes of a message are analysed. Customer questions
/// are far shorter, and the cap bounds the work a pasted 100 KB text causes.
pub(crate) const MAX_QUERY_BYTES: usize = 4096;

/// At most this many distinct words of a message become query terms.
const MAX_QUERY_WORDS: usize = 32;

/// At most this many distinct Han bigrams of a message become query terms.
const MAX_QUERY_BIGRAMS: usize = 32;

/// BM25 candidates whose relevance is computed before the best is chosen.
const CANDIDATES: usize = 10;

/// A match in a question, variant, tag or heading counts this much more than a
/// match in the answer text.
const TITLE_BOOST: f32 = 2.0;

/// Weight of Han-bigram matches relative to word matches: they only back up
/// jieba when a query and an entry are segmented differently.
const BIGRAM_BOOST: f32 = 0.5;

/// One ranked document.
#[derive(Clone, Debug, PartialEq)]
pub struct KnowledgeHit {
    /// `faq:ID`, `PATH#SLUG` or `PATH`.
    pub source: String,
    pub answer: String,
    pub lang: Lang,
    /// Relevance in [0, 1], as described in the crate documentation.
    pub relevance: f32,
    /// The raw BM25 score, comparable only between hits of the same query.
    pub bm25: f32,
}

/// A query word with its weight in the relevance score.
struct QueryWord {
    text: String,
    /// BM25 inverse document frequency over the whole index.
    idf: f32,
    /// Han bigrams of the word, for partial credit when the word itself is missing.
    bigrams: Vec<String>,
}

/// The analysed message, ready to search in any language.
struct PreparedQuery {
    words: Vec<QueryWord>,
    bigrams: Vec<String>,
}

/// Language filter of one search pass.
#[derive(Clone, Copy)]
pub(crate) enum LangFilter<'a> {
    Any,
    Only(&'a str),
    Except(&'a str),
}

impl LangFilter<'_> {
    /// Returns whether a document in the language `key` (lowercase) passes.
    pub(crate) fn accepts(&self, key: &str) -> bool {
        match self {
            LangFilter::Any => true,
            LangFilter::Only(only) => key == *only,
            LangFilter::Except(except) => key != *except,
        }
    }
}

/// A candidate before its stored fields are loaded.
struct Candidate {
    address: DocAddress,
    bm25: f32,
    relevance: f32,
}

impl KnowledgeIndex {
    /// Returns up to `limit` documents for `query` in BM25 order, best first, with
    /// their relevance. With `lang`, only documents in that language are ranked.
    pub fn rank(&self, query: &str, lang: Option<&Lang>, limit: usize) -> Result<Vec<KnowledgeHit>, KnowledgeError> {
        let lang_key = lang.map(lang_key);
        let filter = match &lang_key {
            Some(key) => LangFilter::Only(key),
            None => LangFilter::Any,
        };
        self.rank_filtered(query, filter, limit)
    }

    /// Returns up to `limit` documents passing `filter` in BM25 order, best first,
    /// with their relevance.
    pub(crate) fn rank_filtered(
        &self,
        query: &str,
        filter: LangFilter,
        limit: usize,
    ) -> Result<Vec<KnowledgeHit>, KnowledgeError> {
        self.guarded(|| {
            let Some(prepared) = self.prepare(query).map_err(search_error)? else {
                return Ok(Vec::new());
            };

            let candidates = self.candidates(&prepared, &filter, limit.max(CANDIDATES)).map_err(search_error)?;
            candidates.into_iter().take(limit).map(|candidate| self.hit(candidate).map_err(search_error)).collect()
        })
    }

    /// Runs `read` on the index and turns a panic into an error. The files are
    /// memory-mapped, so a change on disk reaches a running server, and tantivy
    /// panics on some damaged files. After the first such panic the index
    /// counts as damaged and every search fails at once with the same message.
    fn guarded<T>(&self, read: impl FnOnce() -> Result<T, KnowledgeError>) -> Result<T, KnowledgeError> {
        if let Some(message) = self.damaged.get() {
            return Err(damaged_error(message));
        }
        match std::panic::catch_unwind(AssertUnwindSafe(read)) {
            Ok(result) => result,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(error = %message, "the knowledge index files are damaged; knowledge searches fail until the server restarts or reloads, which rebuilds the index");
                let message = self.damaged.get_or_init(|| message);
                Err(damaged_error(message))
            }
        }
    }

    /// Returns the document of highest BM25 among the top candidates whose
    /// relevance reaches `min_score`, searching `lang` first and the other
    /// languages only when no document in `lang` qualifies.
    fn best(&self, query: &str, lang: &Lang, min_score: f32) -> tantivy::Result<Option<KnowledgeHit>> {
        let Some(prepared) = self.prepare(query)? else {
            return Ok(None);
        };

        let key = lang_key(lang);
        for filter in [LangFilter::Only(&key), LangFilter::Except(&key)] {
            let candidates = self.candidates(&prepared, &filter, CANDIDATES)?;
            if let Some(best) = candidates.into_iter().find(|candidate| candidate.relevance >= min_score) {
                return self.hit(best).map(Some);
            }
        }
        Ok(None)
    }

    /// Analyses the message; `None` when no word in it can match anything.
    fn prepare(&self, query: &str) -> tantivy::Result<Option<PreparedQuery>> {
        let text = truncate(query, MAX_QUERY_BYTES);
        let words = distinct(terms(&mut self.word_analyzer.clone(), text), MAX_QUERY_WORDS);
        if words.is_empty() {
            return Ok(None);
        }
        let bigrams = distinct(terms(&mut self.bigram_analyzer.clone(), text), MAX_QUERY_BIGRAMS);

        let total = self.searcher.num_docs() as f32;
        let mut weighted = Vec::with_capacity(words.len());
        for word in words {
            let frequency = self.searcher.doc_freq(&Term::from_field_text(self.fields.all_words, &word))? as f32;
            let idf = (1.0 + (total - frequency + 0.5) / (frequency + 0.5)).ln();
            let bigrams = distinct(han_bigrams(&word), usize::MAX);
            weighted.push(QueryWord { text: word, idf, bigrams });
        }
        Ok(Some(PreparedQuery { words: weighted, bigrams }))
    }

    /// Returns the top BM25 matches passing `filter`, best first, with their relevance.
    fn candidates(
        &self,
        prepared: &PreparedQuery,
        filter: &LangFilter,
        limit: usize,
    ) -> tantivy::Result<Vec<Candidate>> {
        let query = self.boolean_query(prepared, filter);
        let top = self.searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let addresses: Vec<DocAddress> = top.iter().map(|(_, address)| *address).collect();
        let relevance = self.relevance(prepared, &addresses)?;

        let candidates = top
            .into_iter()
            .zip(relevance)
            .map(|((bm25, address), relevance)| Candidate { address, bm25, relevance })
            .collect();
        Ok(candidates)
    }

    fn boolean_query(&self, prepared: &PreparedQuery, filter: &LangFilter) -> BooleanQuery {
        let fields = &self.fields;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in &prepared.words {
            should.push((Occur::Should, term_query(fields.title_words, &word.text, TITLE_BOOST)));
            should.push((Occur::Should, term_query(fields.body_words, &word.text, 1.0)));
        }
        for bigram in &prepared.bigrams {
            should.push((Occur::Should, term_query(fields.title_bigrams, bigram, TITLE_BOOST * BIGRAM_BOOST)));
            should.push((Occur::Should, term_query(fields.body_bigrams, bigram, BIGRAM_BOOST)));
        }
        let terms: Box<dyn Query> = Box::new(BooleanQuery::new(should));

        let lang = |key: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(fields.lang, key), IndexRecordOption::Basic))
        };
        match filter {
            LangFilter::Any => BooleanQuery::new(vec![(Occur::Must, terms)]),
            LangFilter::Only(key) => BooleanQuery::new(vec![
                (Occur::Must, terms),
                (Occur::Must, Box::new(ConstScoreQuery::new(lang(key), 0.0))),
            ]),
            LangFilter::Except(key) => BooleanQuery::new(vec![(Occur::Must, terms), (Occur::MustNot, lang(key))]),
        }
    }

    /// Computes the relevance of each document in `addresses`: the IDF-weighted
    /// share of the query words it contains (see the crate documentation).
    fn relevance(&self, prepared: &PreparedQuery, addresses: &[DocAddress]) -> tantivy::Result<Vec<f32>> {
        let words: Vec<&str> = prepared.words.iter().map(|word| word.text.as_str()).collect();
        let word_presence = self.presence(self.fields.all_words, &words, addresses)?;

        let bigrams: Vec<&str> = distinct_refs(prepared.words.iter().flat_map(|word| &word.bigrams));
        let bigram_presence = self.presence(self.fields.all_bigrams, &bigrams, addresses)?;
        let bigram_index = |bigram: &str| bigrams.iter().position(|candidate| *candidate == bigram);

        let total_weight: f32 = prepared.words.iter().map(|word| word.idf).sum();
        let mut scores = Vec::with_capacity(addresses.len());
        for doc in 0..addresses.len() {
            let mut matched = 0.0;
            for (index, word) in prepared.words.iter().enumerate() {
                let credit = if word_presence[index][doc] {
                    1.0
                } else if word.bigrams.is_empty() {
                    0.0
                } else {
                    let found = word
                        .bigrams
                        .iter()
                        .filter_map(|bigram| bigram_index(bigram))
                        .filter(|&i| bigram_presence[i][doc]);
                    found.count() as f32 / word.bigrams.len() as f32
                };
                matched += word.idf * credit;
            }
            scores.push(if total_weight > 0.0 { (matched / total_weight).clamp(0.0, 1.0) } else { 0.0 });
        }
        Ok(scores)
    }

    /// Returns `presence[term][doc]`: whether document `addresses[doc]` has `term`
    /// in `field`. Each term's posting list is read once per segment.
    fn presence(&self, field: Field, terms: &[&str], addresses: &[DocAddress]) -> tantivy::Result<Vec<Vec<bool>>> {
        let mut presence = vec![vec![false; addresses.len()]; terms.len()];

        let mut by_segment: BTreeMap<u32, Vec<(DocId, usize)>> = BTreeMap::new();
        for (index, address) in addresses.iter().enumerate() {
            by_segment.entry(address.segment_ord).or_default().push((address.doc_id, index));
        }

        for (segment, mut docs) in by_segment {
            docs.sort_unstable();
            let inverted_index = self.searcher.segment_reader(segment).inverted_index(field)?;
            for (term_index, text) in terms.iter().enumerate() {
                let term = Term::from_field_text(field, text);
                let Some(mut postings) = inverted_index.read_postings(&term, IndexRecordOption::Basic)? else {
                    continue;
                };
                for &(doc, index) in &docs {
                    if postings.doc() < doc {
                        postings.seek(doc);
                    }
                    presence[term_index][index] = postings.doc() == doc;
                }
            }
        }
        Ok(presence)
    }

    fn hit(&self, candidate: Candidate) -> tantivy::Result<KnowledgeHit> {
        let document: TantivyDocument = self.searcher.doc(candidate.address)?;
        let text =
            |field: Field| document.get_first(field).and_then(|value| value.as_str()).unwrap_or_default().to_owned();
        Ok(KnowledgeHit {
            source: text(self.fields.source),
            answer: text(self.fields.answer),
            lang: Lang::new(text(self.fields.lang)),
            relevance: candidate.relevance,
            bm25: candidate.bm25,
        })
    }
}

impl KnowledgeSearch for KnowledgeIndex {
    fn search(&self, query: &str, lang: &Lang, min_score: f32) -> Result<Option<KnowledgeAnswer>, KnowledgeError> {
        let best = self.guarded(|| self.best(query, lang, min_score).map_err(search_error))?;
        tracing::debug!(
            lang = %lang,
            min_score,
            source = best.as_ref().map(|hit| hit.source.as_str()),
            relevance = best.as_ref().map(|hit| hit.relevance),
            "knowledge search"
        );
        Ok(best.map(|hit| KnowledgeAnswer { answer: hit.answer, source: hit.source, score: hit.relevance }))
    }
}

fn term_query(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
    let query = TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::WithFreqs);
    Box::new(BoostQuery::new(Box::new(query), boost))
}

/// Returns the longest prefix of `text` of at most `max_bytes` bytes that ends on
/// a character boundary.
pub(crate) fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Returns the first `limit` distinct items, in first-seen order.
fn distinct(items: Vec<String>, limit: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|item| seen.insert(item.clone())).take(limit).collect()
}

fn distinct_refs<'a>(items: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    items.map(String::as_str).filter(|item| seen.insert(*item)).collect()
}

fn search_error(error: tantivy::TantivyError) -> KnowledgeError {
    KnowledgeError { message: format!("index read failed: {error}") }
}

fn damaged_error(message: &str) -> KnowledgeError {
    KnowledgeError { message: format!("the index files are damaged ({message}); restart or reload to rebuild them") }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (None, Some(text)) => text.clone(),
        (None, None) => "a read of the index panicked".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_stops_at_char_boundary() {
        assert_eq!(truncate("退款退款", 4), "退");
    }

    #[test]
    fn truncate_short_text_unchanged() {
        assert_eq!(truncate("refund", 4096), "refund");
    }

    #[test]
    fn distinct_keeps_first_seen_order() {
        let items = ["b", "a", "b", "c"].map(String::from).to_vec();
        assert_eq!(distinct(items, 2), ["b", "a"]);
    }
}
