//! The index schema, and the conversion of FAQ entries and article sections into
//! index documents.

use std::collections::HashSet;

use bot_core::{Article, FaqEntry};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, STORED, STRING};
use tantivy::{Index, TantivyDocument};

use crate::analysis::{bigram_analyzer, word_analyzer, BIGRAMS_TOKENIZER, WORDS_TOKENIZER};
use crate::error::KnowledgeBuildError;
use crate::markdown::split_sections;

/// The fields of a knowledge document.
///
/// "Title" text is what a customer would ask (FAQ question, variants and tags,
/// or an article section's headings); "body" text is the answer. The `all_*`
/// fields repeat both so that document frequencies and term presence are per
/// document, whatever field the term is in.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub source: Field,
    pub lang: Field,
    pub answer: Field,
    pub title_words: Field,
    pub body_words: Field,
    pub title_bigrams: Field,
    pub body_bigrams: Field,
    pub all_words: Field,
    pub all_bigrams: Field,
}

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let words = analysed(WORDS_TOKENIZER);
        let bigrams = analysed(BIGRAMS_TOKENIZER);

        let fields = Fields {
            source: builder.add_text_field("source", STRING | STORED),
            lang: builder.add_text_field("lang", STRING | STORED),
            answer: builder.add_text_field("answer", STORED),
            title_words: builder.add_text_field("title_words", words.clone()),
            body_words: builder.add_text_field("body_words", words.clone()),
            title_bigrams: builder.add_text_field("title_bigrams", bigrams.clone()),
            body_bigrams: builder.add_text_field("body_bigrams", bigrams.clone()),
            all_words: builder.add_text_field("all_words", words),
            all_bigrams: builder.add_text_field("all_bigrams", bigrams),
        };
        (builder.build(), fields)
    }

    /// Looks the fields up in an index opened from disk.
    pub fn from_schema(schema: &Schema) -> tantivy::Result<Fields> {
        Ok(Fields {
            source: schema.get_field("source")?,
            lang: schema.get_field("lang")?,
            answer: schema.get_field("answer")?,
            title_words: schema.get_field("title_words")?,
            body_words: schema.get_field("body_words")?,
            title_bigrams: schema.get_field("title_bigrams")?,
            body_bigrams: schema.get_field("body_bigrams")?,
            all_words: schema.get_field("all_words")?,
            all_bigrams: schema.get_field("all_bigrams")?,
        })
    }
}

/// Term frequencies are enough for BM25; positions would only serve phrase queries.
fn analysed(tokenizer: &str) -> TextOptions {
    let indexing = TextFieldIndexing::default().set_tokenizer(tokenizer).set_index_option(IndexRecordOption::WithFreqs);
    TextOptions::default().set_indexing_options(indexing)
}

/// Registers the analysers the schema names. Tantivy does not store analysers, so
/// every opened index needs this before it is searched or written.
pub(crate) fn register_analyzers(index: &Index) {
    index.tokenizers().register(WORDS_TOKENIZER, word_analyzer());
    index.tokenizers().register(BIGRAMS_TOKENIZER, bigram_analyzer());
}

/// One searchable unit: a FAQ entry or an article section.
#[derive(Debug)]
pub(crate) struct KnowledgeDoc {
    pub source: String,
    pub lang: String,
    pub titles: Vec<String>,
    pub answer: String,
}

impl KnowledgeDoc {
    pub fn to_document(&self, fields: &Fields) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_text(fields.source, &self.source);
        document.add_text(fields.lang, &self.lang);
        document.add_text(fields.answer, &self.answer);

        for title in &self.titles {
            document.add_text(fields.title_words, title);
            document.add_text(fields.title_bigrams, title);
            document.add_text(fields.all_words, title);
            document.add_text(fields.all_bigrams, title);
        }
        document.add_text(fields.body_words, &self.answer);
        document.add_text(fields.body_bigrams, &self.answer);
        document.add_text(fields.all_words, &self.answer);
        document.add_text(fields.all_bigrams, &self.answer);
        document
    }
}

/// Language codes are compared in lowercase, so `ZH` entries answer `zh` queries.
pub(crate) fn lang_key(lang: &bot_core::Lang) -> String {
    lang.as_str().to_ascii_lowercase()
}

/// Checks the sources and turns them into documents: one per FAQ entry and one
/// per non-empty article section.
pub(crate) fn documents(faq: &[FaqEntry], articles: &[Article]) -> Result<Vec<KnowledgeDoc>, KnowledgeBuildError> {
    let mut documents = Vec::with_capacity(faq.len() + articles.len());
    let mut ids = HashSet::new();
    let mut paths = HashSet::new();

    for entry in faq {
        if !ids.insert(entry.id.as_str()) {
            return Err(KnowledgeBuildError::DuplicateFaqId { id: entry.id.clone() });
        }
        documents.push(faq_document(entry)?);
    }

    for article in articles {
        if !paths.insert(article.path.as_str()) {
            return Err(KnowledgeBuildError::DuplicateArticlePath { path: article.path.clone() });
        }
        for section in split_sections(article) {
            documents.push(KnowledgeDoc {
                source: section.source,
                lang: lang_key(&article.lang),
                titles: section.headings,
                answer: section.text,
            });
        }
    }

    Ok(documents)
}

fn faq_document(entry: &FaqEntry) -> Result<KnowledgeDoc, KnowledgeBuildError> {
    let empty = |field| KnowledgeBuildError::EmptyFaqField { id: entry.id.clone(), field };
    if entry.question.trim().is_empty() {
        return Err(empty("question"));
    }
    if entry.answer.trim().is_empty() {
        return Err(empty("answer"));
    }

    let titles = [&entry.question].into_iter().chain(&entry.variants).chain(&entry.tags).cloned().collect();
    Ok(KnowledgeDoc {
        source: format!("faq:{}", entry.id),
        lang: lang_key(&entry.lang),
        titles,
        answer: entry.answer.clone(),
    })
}
