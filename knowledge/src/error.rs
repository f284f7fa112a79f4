//! Errors from building or opening a knowledge index.

use std::io;
use std::path::PathBuf;

/// Error from building a knowledge index.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeBuildError {
    #[error("faq id `{id}` is used by more than one entry; give each entry a unique id")]
    DuplicateFaqId { id: String },

    #[error("faq entry `{id}` has an empty {field}; write one or remove the entry")]
    EmptyFaqField { id: String, field: &'static str },

    #[error("article `{path}` is listed more than once; list each Markdown file once")]
    DuplicateArticlePath { path: String },

    #[error("failed to {action} {}; check that its folder is writable", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to write the search index at {location}")]
    Index {
        /// The index folder, or `memory` for an in-memory index.
        location: String,
        #[source]
        source: tantivy::TantivyError,
    },

    #[error(
        "failed to embed {passages} knowledge passages; check settings.encoder or set settings.knowledge.embeddings to false"
    )]
    Embed {
        passages: usize,
        #[source]
        source: lepton_encoder::EncoderError,
    },

    #[error("the encoder returned vectors of different lengths for {passages} knowledge passages")]
    VectorShape { passages: usize },

    #[error("failed to write the index metadata {}", path.display())]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl KnowledgeBuildError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }

    pub(crate) fn index(location: impl Into<String>) -> impl FnOnce(tantivy::TantivyError) -> Self {
        let location = location.into();
        move |source| Self::Index { location, source }
    }
}
