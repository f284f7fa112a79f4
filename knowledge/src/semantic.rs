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
pub(crate) const SEMANTIC_FORMAT_VERSION: u32 = 2;

/// The owner of a background passage: it belongs to no document.
pub(crate) const BACKGROUND: usize = usize::MAX;

/// Everyday questions and remarks unrelated to any business, in English and
/// Chinese. They are embedded with every knowledge base, never answered, and
/// join the background that a query's best match is measured against (see
/// [`SemanticIndex::similarities`]), so that a knowledge base of one or two
/// entries still has one.
const BACKGROUND_TEXTS: [&str; 24] = [
    "What's the weather going to be like tomorrow?",
    "Can you recommend a good film for tonight?",
    "Who won the basketball game yesterday?",
    "How many kilometres is it from the Earth to the Moon?",
    "What is the capital city of Australia?",
    "How long should I boil an egg?",
    "My neighbour's dog barks all night.",
    "Which planet has the most moons?",
    "I love reading old novels on rainy days.",
    "How do you say good morning in Spanish?",
    "What's a good name for a goldfish?",
    "Remind me to water the plants.",
    "明天会下雨吗？",
    "推荐一部好看的电视剧",
    "长城有多长？",
    "红烧肉怎么做才好吃？",
    "你最喜欢什么颜色？",
    "周末去爬山怎么样",
    "世界上最高的树有多高？",
    "帮我想一个生日祝福",
    "猫为什么喜欢晒太阳？",
    "这首歌的歌词是什么意思",
    "地球上有多少种鸟？",
    "我今天心情不太好",
];

/// The maximum number of sentences in one article chunk.
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

        for text in BACKGROUND_TEXTS {
            passages.push(Passage { owner: BACKGROUND, text: text.to_owned(), kind: TextKind::Query });
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
    /// `owners[i]`: the document of vector `i`, or [`BACKGROUND`].
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

    /// Returns each document's cosine similarity to `query` (the best over its
    /// vectors, or `None` for a document without any) and the median cosine of
    /// `query` over the background passages and the vectors of all documents
    /// but the most similar one: the background that the hybrid search
    /// measures a match against, left unraised by the several variants of the
    /// matching entry itself. `None` when the query vector's length differs
    /// from the stored ones or the index holds no vectors.
    pub fn similarities(&self, query: &[f32]) -> Option<(Vec<Option<f32>>, f32)> {
        if query.len() != self.dimension || self.dimension == 0 || self.owners.is_empty() {
            return None;
        }
        let mut query = query.to_vec();
        normalize(&mut query);

        let mut best: Vec<Option<f32>> = vec![None; self.docs.len()];
        let mut all = Vec::with_capacity(self.owners.len());
        for (vector, &owner) in self.vectors.chunks_exact(self.dimension).zip(&self.owners) {
            let similarity = lepton_encoder::dot(&query, vector);
            all.push(similarity);
            if owner == BACKGROUND {
                continue;
            }
            if best[owner].is_none_or(|current| similarity > current) {
                best[owner] = Some(similarity);
            }
        }
        let top = best
            .iter()
            .enumerate()
            .filter_map(|(index, similarity)| Some((index, (*similarity)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(index, _)| index);
        let mut rest: Vec<f32> = all
            .iter()
            .zip(&self.owners)
            .filter(|(_, owner)| Some(**owner) != top)
            .map(|(similarity, _)| *similarity)
            .collect();
        let background = if rest.is_empty() { median(&mut all) } else { median(&mut rest) };
        Some((best, background))
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

/// The median of a non-empty slice; the mean of the middle two for an even count.
fn median(values: &mut [f32]) -> f32 {
    let count = values.len();
    let middle = count / 2;
    let (below, upper, _) = values.select_nth_unstable_by(middle, f32::total_cmp);
    let upper = *upper;
    if count % 2 == 1 {
        return upper;
    }
    let lower = below.iter().copied().max_by(f32::total_cmp).unwrap_or(upper);
    (lower + upper) / 2.0
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
        let texts: Vec<(&str, TextKind)> = sources
            .passages
            .iter()
            .filter(|passage| passage.owner != BACKGROUND)
            .map(|passage| (passage.text.as_str(), passage.kind))
            .collect();
        assert_eq!(texts, [("Returns", TextKind::Query), ("Can I send it back?", TextKind::Query)]);
        assert_eq!(sources.passages.len(), 2 + BACKGROUND_TEXTS.len());
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
        let (similarities, median) = index.similarities(&[0.0, 3.0]).expect("same dimension");
        assert_eq!(similarities, [Some(1.0), Some(0.8)]);
        assert!((median - 0.8).abs() < 1e-6, "the vectors of faq:1 alone, 0.8, not {median}");
    }

    #[test]
    fn top_applies_language_filter() {
        let index = two_doc_index().expect("vectors fit the passages");
        let (similarities, _) = index.similarities(&[0.6, 0.8]).expect("same dimension");
        let top: Vec<usize> = index.top(&similarities, LangFilter::Except("en"), 10).into_iter().map(|t| t.0).collect();
        assert_eq!(top, [1]);
    }

    #[test]
    fn background_joins_median_but_is_no_document() {
        let docs = vec![SemanticDoc { source: "faq:0".to_owned(), lang: "en".to_owned(), answer: String::new() }];
        let passages = [0, BACKGROUND, BACKGROUND, BACKGROUND]
            .iter()
            .map(|&owner| Passage { owner, text: String::new(), kind: TextKind::Query })
            .collect();
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.6, 0.8], vec![0.8, 0.6]];
        let index = SemanticIndex::new(SemanticSources { docs, passages }, vectors).expect("vectors fit the passages");
        let (similarities, median) = index.similarities(&[1.0, 0.0]).expect("same dimension");
        assert_eq!(similarities, [Some(1.0)]);
        assert!((median - 0.6).abs() < 1e-6, "the median of the background 0, 0.6, 0.8 is 0.6, not {median}");
    }

    #[test]
    fn median_even_count_averages_middle() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [0.5]), 0.5);
    }

    #[test]
    fn similarities_reject_other_dimension() {
        let index = two_doc_index().expect("vectors fit the passages");
        assert!(index.similarities(&[1.0, 0.0, 0.0]).is_none());
    }
}
