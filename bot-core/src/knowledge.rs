//! The knowledge-search boundary: FAQ entries and articles in, best answer out.

use serde::{Deserialize, Serialize};

use crate::classify::BoxFuture;
use crate::ids::Lang;

/// One FAQ entry: a question, its variants and the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaqEntry {
    /// Stable id, unique in the bot (from the YAML key).
    pub id: String,
    pub lang: Lang,
    pub question: String,
    #[serde(default)]
    pub variants: Vec<String>,
    pub answer: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A Markdown article; the knowledge index splits it into sections at headings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// Path relative to the bot folder, used as the answer's source.
    pub path: String,
    pub lang: Lang,
    pub markdown: String,
}

/// The best knowledge answer for a query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeAnswer {
    pub answer: String,
    /// The origin: `faq:ID`, or `PATH#SLUG` for an article section (`PATH`
    /// alone for text before the first heading).
    pub source: String,
    pub score: f32,
}

/// The text that readiness checks search for: it only has to run the index's
/// read path, so any text will do.
pub const READINESS_QUERY: &str = "readiness probe";

/// Searches the knowledge base. Implementations must treat `query` as plain text
/// (no query syntax) and return `None` when nothing scores at least `min_score`.
pub trait KnowledgeSearch: Send + Sync {
    fn search(&self, query: &str, lang: &Lang, min_score: f32) -> Result<Option<KnowledgeAnswer>, KnowledgeError>;

    /// The same search for a caller on an async runtime; the engine calls this
    /// one. The default runs [`KnowledgeSearch::search`] in place.
    fn search_async<'a>(
        &'a self,
        query: &'a str,
        lang: &'a Lang,
        min_score: f32,
    ) -> BoxFuture<'a, Result<Option<KnowledgeAnswer>, KnowledgeError>> {
        Box::pin(std::future::ready(self.search(query, lang, min_score)))
    }

    /// Checks that the knowledge base can be searched now, for readiness
    /// probes, without waiting behind other conversations. The default
    /// searches for a fixed text. An implementation that embeds queries on a
    /// shared model overrides it to search without the embedding.
    fn check_ready(&self, lang: &Lang) -> Result<(), KnowledgeError> {
        self.search(READINESS_QUERY, lang, f32::MAX).map(|_| ())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("knowledge search failed: {message}")]
pub struct KnowledgeError {
    pub message: String,
}

/// A knowledge base with no entries; it never answers.
pub struct NoKnowledge;

impl KnowledgeSearch for NoKnowledge {
    fn search(&self, _query: &str, _lang: &Lang, _min_score: f32) -> Result<Option<KnowledgeAnswer>, KnowledgeError> {
        Ok(None)
    }
}
