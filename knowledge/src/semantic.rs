//! The embedding side of the hybrid search: the texts that get a vector, and
//! exact cosine similarity of a query against all of them.
//!
//! Each FAQ entry gets one vector for its question and one per variant, embedded
//! as [`TextKind::Query`] because they are questions like the customer's (e5's
//! convention for symmetric matching). Each article section is split into chunks
//! of a few sentences, each prefixed with the section's headings and embedded as
//! [`TextKind::Passage`]. A document's similarity is the best of its vectors.

use std::collections::HashMap;

use bot_core::{Article, FaqEntry};
use lepton_encoder::{Batcher, EncoderError, TextKind};

use crate::markdown::split_sections;
use crate::schema::lang_key;
use crate::search::LangFilter;

/// Version of the way texts are chosen, chunked and embedded. Bump it whenever
/// that changes, so that stored vectors written by older code are rebuilt.
pub(crate) const SEMANTIC_FORMAT_VERSION: u32 = 1;

/// The most sentences in one article chunk.
const CHUNK_SENTENCES: usize = 3;

/// A chunk stops growing past this many bytes, about 150 English tokens, so
/// that it fits the encoder's token limit with its headings.
const CHUNK_BYTES: usize = 600;

/// A document that can be returned: a FAQ entry or an article section.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SemanticDoc {
    pub source: String,
    /// Lowercase language code.
    pub lang: String,
    pub answer: String,
}

/// One text to embed and the document it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Passage {
    /// Index into [`SemanticSources::docs`].
    pub owner: usize,
    pub text: String,
    pub kind: TextKind,
}

/// The documents and the texts to embed for them, in a deterministic order.
#[derive(Debug)]
pub(crate) struct SemanticSources {
    pub docs: Vec<SemanticDoc>,
    pub passages: Vec<Passage>,
}

impl SemanticSources {
    /// Collects the texts of `faq` and `articles`. The sources are expected to be
    /// valid already (unique ids and paths), as the BM25 index build checks them.
    pub fn new(faq: &[FaqEntry], articles: &[Article]) -> Self {
        let mut docs = Vec::new();
        let mut passages = Vec::new();

        for entry in faq {
            let owner = docs.len();
            docs.push(SemanticDoc {
                source: format!("faq:{}", entry.id),
                lang: lang_key(&entry.lang),
                answer: entry.answer.clone(),
            });
            for text in [&entry.question].into_iter().chain(&entry.variants) {
                if !text.trim().is_empty() {
                    passages.push(Passage { owner, text: text.trim().to_owned(), kind: TextKind::Query });
                }
            }
        }

        for article in articles {
            for section in split_sections(article) {
                let owner = docs.len();
                let context = section.headings.join(" > ");
                for chunk in chunks(&section.text) {
                    let text = if context.is_empty() { chunk } else { format!("{context}: {chunk}") };
                    passages.push(Passage { owner, text, kind: TextKind::Passage });
                }
                docs.push(SemanticDoc { source: section.source, lang: lang_key(&article.lang), answer: section.text });
            }
        }

        Self { docs, passages }
    }

    /// Embeds every passage with [`Batcher::embed_many`], one call per text kind,
    /// and returns the vectors in passage order.
    pub fn embed(&self, batcher: &Batcher) -> Result<Vec<Vec<f32>>, EncoderError> {
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); self.passages.len()];
        for kind in [TextKind::Query, TextKind::Passage] {
            let positions: Vec<usize> = (0..self.passages.len()).filter(|&i| self.passages[i].kind == kind).collect();
            if positions.is_empty() {
                continue;
            }

            let texts: Vec<&str> = positions.iter().map(|&i| self.passages[i].text.as_str()).collect();
            let embedded = batcher.embed_many(&texts, kind)?;
            if embedded.len() != texts.len() {
                return Err(EncoderError::Run(format!(
                    "the encoder returned {} vectors for {} texts",
                    embedded.len(),
                    texts.len()
                )));
            }
            for (position, vector) in positions.into_iter().zip(embedded) {
                vectors[position] = vector;
            }
        }
        Ok(vectors)
    }
}

/// Unit-length vectors of every passage, with the document each belongs to.
pub(crate) struct SemanticIndex {
    docs: Vec<SemanticDoc>,
    /// `owners[i]`: the document of vector `i`.
    owners: Vec<usize>,
    /// All vectors back to back, `dimension` values each.
    vectors: Vec<f32>,
    dimension: usize,
    by_source: HashMap<String, usize>,
}

impl SemanticIndex {
    /// Takes the vectors of `sources.passages`, in the same order. Vectors are
    /// scaled to unit length here, so a dot product is a cosine whatever the
    /// encoder's `normalize` setting. Returns `None` when the count or the
    /// lengths do not fit.
    pub fn new(sources: SemanticSources, vectors: Vec<Vec<f32>>) -> Option<Self> {
        if vectors.len() != sources.passages.len() {
            return None;
        }
        let dimension = vectors.first().map_or(0, Vec::len);
        if vectors.iter().any(|vector| vector.len() != dimension) {
            return None;
        }

        let mut flat = Vec::with_capacity(vectors.len() * dimension);
        for mut vector in vectors {
            normalize(&mut vector);
            flat.extend_from_slice(&vector);
        }
        let owners = sources.passages.iter().map(|passage| passage.owner).collect();
        let by_source = sources.docs.iter().enumerate().map(|(index, doc)| (doc.source.clone(), index)).collect();
        Some(Self { docs: sources.docs, owners, vectors: flat, dimension, by_source })
    }

    pub fn doc(&self, index: usize) -> &SemanticDoc {
        &self.docs[index]
    }

    pub fn doc_index(&self, source: &str) -> Option<usize> {
        self.by_source.get(source).copied()
    }

    /// Returns each document's cosine similarity to `query`: the best over its
    /// vectors, or `None` for a document without any. `None` overall when the
    /// query vector's length differs from the stored ones.
    pub fn similarities(&self, query: &[f32]) -> Option<Vec<Option<f32>>> {
        if query.len() != self.dimension || self.dimension == 0 {
            return None;
        }
        let mut query = query.to_vec();
        normalize(&mut query);

        let mut best: Vec<Option<f32>> = vec![None; self.docs.len()];
        for (vector, &owner) in self.vectors.chunks_exact(self.dimension).zip(&self.owners) {
            let similarity = lepton_encoder::dot(&query, vector);
            if best[owner].is_none_or(|current| similarity > current) {
                best[owner] = Some(similarity);
            }
        }
        Some(best)
    }

    /// Returns up to `limit` documents passing `filter`, most similar first.
    pub fn top(&self, similarities: &[Option<f32>], filter: LangFilter, limit: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = similarities
            .iter()
            .enumerate()
            .filter_map(|(index, similarity)| similarity.map(|similarity| (index, similarity)))
            .filter(|(index, _)| filter.accepts(&self.docs[*index].lang))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        ranked
    }
}

fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
}

/// Splits section text into chunks of at most [`CHUNK_SENTENCES`] sentences
/// that stop growing past [`CHUNK_BYTES`].
pub(crate) fn chunks(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut count = 0;

    for sentence in sentences(text) {
        let full = count == CHUNK_SENTENCES || (count > 0 && current.len() + sentence.len() > CHUNK_BYTES);
        if full {
            chunks.push(std::mem::take(&mut current));
            count = 0;
        }
        if count > 0 {
            current.push(' ');
        }
        current.push_str(&sentence);
        count += 1;
    }
    if count > 0 {
        chunks.push(current);
    }
    chunks
}

/// Splits text into sentences. Blank lines and Markdown list items start a new
/// sentence; other line breaks are spaces. A sentence ends after `.`, `!` or
/// `?` followed by white space, or after the Chinese full stop, exclamation or
/// question mark.
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current = String::new();

    let mut flush = |current: &mut String| {
        let sentence = current.trim();
        if !sentence.is_empty() {
            sentences.push(sentence.to_owned());
        }
        current.clear();
    };

    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || is_list_item(trimmed) {
            flush(&mut current);
        }
        if trimmed.is_empty() {
            continue;
        }

        let mut chars = trimmed.chars().peekable();
        while let Some(ch) = chars.next() {
            current.push(ch);
            let ends = match ch {
                '。' | '！' | '？' => true,
                '.' | '!' | '?' => chars.peek().is_none_or(|next| next.is_whitespace()),
                _ => false,
            };
            if ends {
                flush(&mut current);
            }
        }
        current.push(' ');
    }
    flush(&mut current);
    sentences
}

fn is_list_item(line: &str) -> bool {
    if line.starts_with("- ") || line.starts_with("* ") || line.starts_with("+ ") {
        return true;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") "))
}

#[cfg(test)]
mod tests {
    use bot_core::Lang;

    use super::*;

    #[test]
    fn sentences_split_at_terminators() {
        let split = sentences("Returns are free. Refunds take 5 days! Why? See v1.2 notes");
        assert_eq!(split, ["Returns are free.", "Refunds take 5 days!", "Why?", "See v1.2 notes"]);
    }

    #[test]
    fn sentences_split_chinese_without_spaces() {
        assert_eq!(sentences("退款在5个工作日内退回。请保留发票！"), ["退款在5个工作日内退回。", "请保留发票！"]);
    }

    #[test]
    fn sentences_join_wrapped_lines_and_split_list_items() {
        let split = sentences("Send us a photo\nof the damage\n\n- first item\n- second item");
        assert_eq!(split, ["Send us a photo of the damage", "- first item", "- second item"]);
    }

    #[test]
    fn chunks_hold_at_most_three_sentences() {
        let split = chunks("One. Two. Three. Four. Five.");
        assert_eq!(split, ["One. Two. Three.", "Four. Five."]);
    }

    #[test]
    fn chunks_stop_growing_past_byte_limit() {
        let long = "word ".repeat(100);
        let text = format!("{long}. {long}.");
        assert_eq!(chunks(&text).len(), 2);
    }

    #[test]
    fn sources_embed_faq_questions_and_variants_as_queries() {
        let entry = FaqEntry {
            id: "returns".to_owned(),
            lang: Lang::new("EN"),
            question: "Returns".to_owned(),
            variants: vec!["Can I send it back?".to_owned()],
            answer: "Within 30 days.".to_owned(),
            tags: vec!["returns".to_owned()],
        };
        let sources = SemanticSources::new(&[entry], &[]);
        let texts: Vec<(&str, TextKind)> =
            sources.passages.iter().map(|passage| (passage.text.as_str(), passage.kind)).collect();
        assert_eq!(texts, [("Returns", TextKind::Query), ("Can I send it back?", TextKind::Query)]);
        assert_eq!(sources.docs[0].lang, "en");
    }

    #[test]
    fn sources_prefix_article_chunks_with_headings() {
        let article = Article {
            path: "help/returns.md".to_owned(),
            lang: Lang::new("en"),
            markdown: "# Returns\n\n## Damaged items\n\nSend a photo. We replace it.\n".to_owned(),
        };
        let sources = SemanticSources::new(&[], &[article]);
        assert_eq!(sources.docs[0].source, "help/returns.md#damaged-items");
        assert_eq!(sources.passages[0].text, "Returns > Damaged items: Send a photo. We replace it.");
        assert_eq!(sources.passages[0].kind, TextKind::Passage);
    }

    fn two_doc_index() -> Option<SemanticIndex> {
        let docs = ["en", "zh"]
            .iter()
            .enumerate()
            .map(|(index, lang)| SemanticDoc {
                source: format!("faq:{index}"),
                lang: (*lang).to_owned(),
                answer: String::new(),
            })
            .collect();
        let passages =
            [0, 0, 1].iter().map(|&owner| Passage { owner, text: String::new(), kind: TextKind::Query }).collect();
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 2.0], vec![0.6, 0.8]];
        SemanticIndex::new(SemanticSources { docs, passages }, vectors)
    }

    #[test]
    fn similarity_is_best_vector_of_document() {
        let index = two_doc_index().expect("vectors fit the passages");
        let similarities = index.similarities(&[0.0, 3.0]).expect("same dimension");
        assert_eq!(similarities, [Some(1.0), Some(0.8)]);
    }

    #[test]
    fn top_applies_language_filter() {
        let index = two_doc_index().expect("vectors fit the passages");
        let similarities = index.similarities(&[0.6, 0.8]).expect("same dimension");
        let top: Vec<usize> = index.top(&similarities, LangFilter::Except("en"), 10).into_iter().map(|t| t.0).collect();
        assert_eq!(top, [1]);
    }

    #[test]
    fn similarities_reject_other_dimension() {
        let index = two_doc_index().expect("vectors fit the passages");
        assert!(index.similarities(&[1.0, 0.0, 0.0]).is_none());
    }
}
