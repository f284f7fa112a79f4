//! Building, storing and opening the knowledge index.
//!
//! An index folder contains `lepton-knowledge.json` (format version, SHA-256 of the
//! sources, name of the current index) and one tantivy index in a sub-folder
//! `index-<first 16 hex digits of the hash>`. A rebuild writes a new sub-folder,
//! then replaces the JSON file by renaming a temporary file over it, then removes
//! older `index-*` sub-folders. A crash at any step leaves the previous index
//! usable, and other files in the folder are never touched.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use bot_core::{Article, FaqEntry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher};

use crate::analysis::{bigram_analyzer, word_analyzer};
use crate::error::KnowledgeBuildError;
use crate::schema::{documents, register_analyzers, Fields, KnowledgeDoc};

/// Version of the schema, the analysis and the way documents are built from the
/// sources (such as article sections). Bump it whenever one changes, so that
/// indexes written by older code are rebuilt rather than searched stale.
const FORMAT_VERSION: u32 = 2;

/// Name of the metadata file in the index folder.
const METADATA_FILE: &str = "lepton-knowledge.json";

/// Prefix of the sub-folders that hold tantivy indexes.
const INDEX_DIR_PREFIX: &str = "index-";

/// Memory for the index writer. Tantivy requires at least 15 MB per thread; a
/// knowledge base of a few thousand entries fits well within it.
const WRITER_MEMORY_BYTES: usize = 20_000_000;

/// A searchable index of FAQ entries and article sections.
///
/// The index is read-only once built. One searcher is kept and shared by all
/// queries, so searching takes `&self` and the index can be shared across threads.
pub struct KnowledgeIndex {
    pub(crate) searcher: Searcher,
    /// Keeps the segments the searcher reads open.
    _reader: IndexReader,
    pub(crate) fields: Fields,
    pub(crate) word_analyzer: TextAnalyzer,
    pub(crate) bigram_analyzer: TextAnalyzer,
    /// The panic message of the first read that found the files damaged; set,
    /// every later search fails at once, until the index is opened again.
    pub(crate) damaged: OnceLock<String>,
}

/// Contents of `lepton-knowledge.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    format: u32,
    sources_sha256: String,
    /// Name of the sub-folder holding the current index.
    index: String,
    documents: usize,
}

impl KnowledgeIndex {
    /// Builds an index of `faq` and `articles` in the folder `dir`, creating the
    /// folder if needed and replacing any index built there before.
    pub fn build(dir: &Path, faq: &[FaqEntry], articles: &[Article]) -> Result<KnowledgeIndex, KnowledgeBuildError> {
        let started = Instant::now();
        let documents = documents(faq, articles)?;
        let hash = sources_sha256(faq, articles);
        let index_name = format!("{INDEX_DIR_PREFIX}{}", &hash[..16]);
        let index_dir = dir.join(&index_name);

        fs::create_dir_all(dir).map_err(KnowledgeBuildError::io("create the index folder", dir))?;
        prepare_empty_index_dir(&index_dir)?;

        let (schema, fields) = Fields::schema();
        let index =
            Index::create_in_dir(&index_dir, schema).map_err(KnowledgeBuildError::index(display(&index_dir)))?;
        register_analyzers(&index);
        write_documents(&index, &fields, &documents).map_err(KnowledgeBuildError::index(display(&index_dir)))?;

        let metadata =
            Metadata { format: FORMAT_VERSION, sources_sha256: hash, index: index_name, documents: documents.len() };
        write_metadata(dir, &metadata)?;
        remove_stale_indexes(dir, &metadata.index);

        tracing::info!(
            path = %dir.display(),
            documents = documents.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built knowledge index"
        );
        Self::from_index(index, fields).map_err(KnowledgeBuildError::index(display(&index_dir)))
    }

    /// Builds an index held in memory only; nothing is written to disk.
    pub fn in_memory(faq: &[FaqEntry], articles: &[Article]) -> Result<KnowledgeIndex, KnowledgeBuildError> {
        let documents = documents(faq, articles)?;
        let (schema, fields) = Fields::schema();
        let index = Index::create_in_ram(schema);
        register_analyzers(&index);

        write_documents(&index, &fields, &documents).map_err(KnowledgeBuildError::index("memory"))?;
        Self::from_index(index, fields).map_err(KnowledgeBuildError::index("memory"))
    }

    /// Opens the index in `dir` when it was built from exactly these sources by
    /// this version of the crate, and builds it otherwise. Returns the index and
    /// whether it was (re)built.
    ///
    /// A missing, unreadable or corrupt index is rebuilt, with a warning logged
    /// for the last two.
    pub fn open_or_build(
        dir: &Path,
        faq: &[FaqEntry],
        articles: &[Article],
    ) -> Result<(KnowledgeIndex, bool), KnowledgeBuildError> {
        if let Some(index) = open_current(dir, &sources_sha256(faq, articles)) {
            return Ok((index, false));
        }

        let index = Self::build(dir, faq, articles)?;
        Ok((index, true))
    }

    /// Returns the number of indexed documents: FAQ entries plus article sections.
    pub fn document_count(&self) -> u64 {
        self.searcher.num_docs()
    }

    fn from_index(index: Index, fields: Fields) -> tantivy::Result<KnowledgeIndex> {
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let searcher = reader.searcher();
        Ok(KnowledgeIndex {
            searcher,
            _reader: reader,
            fields,
            word_analyzer: word_analyzer(),
            bigram_analyzer: bigram_analyzer(),
            damaged: OnceLock::new(),
        })
    }
}

/// Opens the index in `dir` if its metadata names this format and `hash`.
fn open_current(dir: &Path, hash: &str) -> Option<KnowledgeIndex> {
    let metadata = read_metadata(dir)?;
    if metadata.format != FORMAT_VERSION || metadata.sources_sha256 != hash {
        return None;
    }

    match open_dir(&dir.join(&metadata.index)) {
        Ok(index) => {
            tracing::debug!(path = %dir.display(), documents = metadata.documents, "opened knowledge index");
            Some(index)
        }
        Err(error) => {
            tracing::warn!(path = %dir.display(), error = %error, "cannot open knowledge index; rebuilding it");
            None
        }
    }
}

/// Opens a tantivy index written by [`KnowledgeIndex::build`].
fn open_dir(index_dir: &Path) -> tantivy::Result<KnowledgeIndex> {
    let index = Index::open_in_dir(index_dir)?;
    let (expected, _) = Fields::schema();
    if index.schema() != expected {
        return Err(tantivy::TantivyError::SchemaError(format!(
            "index schema in {} differs from this version's schema",
            index_dir.display()
        )));
    }

    register_analyzers(&index);
    let fields = Fields::from_schema(&index.schema())?;
    KnowledgeIndex::from_index(index, fields)
}

fn write_documents(index: &Index, fields: &Fields, documents: &[KnowledgeDoc]) -> tantivy::Result<()> {
    // One thread keeps document ids in source order and the build deterministic.
    let mut writer = index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
    for document in documents {
        writer.add_document(document.to_document(fields))?;
    }
    writer.commit()?;
    writer.wait_merging_threads()
}

/// Returns the hex SHA-256 of the sources and the format version: the index is
/// current exactly when this matches the hash stored next to it.
pub(crate) fn sources_sha256(faq: &[FaqEntry], articles: &[Article]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FORMAT_VERSION.to_le_bytes());
    // serde_json fails only on maps with non-string keys or on failing Serialize
    // impls, and these types have neither.
    hasher.update(serde_json::to_vec(&(faq, articles)).unwrap_or_default());
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn read_metadata(dir: &Path) -> Option<Metadata> {
    let path = dir.join(METADATA_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %error, "cannot read knowledge index metadata; rebuilding");
            return None;
        }
    };

    match serde_json::from_str::<Metadata>(&text) {
        Ok(metadata) if is_index_dir_name(&metadata.index) => Some(metadata),
        Ok(metadata) => {
            let index = metadata.index;
            tracing::warn!(path = %path.display(), index = %index, "invalid index name in metadata; rebuilding");
            None
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %error, "invalid knowledge index metadata; rebuilding");
            None
        }
    }
}

/// Writes the metadata to a temporary file, then renames it over the old one so
/// that readers see either the old or the new file, never a partial one.
fn write_metadata(dir: &Path, metadata: &Metadata) -> Result<(), KnowledgeBuildError> {
    let path = dir.join(METADATA_FILE);
    let temporary = dir.join(format!("{METADATA_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(metadata)
        .map_err(|source| KnowledgeBuildError::Metadata { path: path.clone(), source })?;

    fs::write(&temporary, json).map_err(KnowledgeBuildError::io("write", &temporary))?;
    fs::rename(&temporary, &path).map_err(KnowledgeBuildError::io("replace", &path))
}

/// Makes `index_dir` an empty folder. A folder of that name left by an earlier,
/// interrupted build is removed first; a folder holding anything else is an error.
fn prepare_empty_index_dir(index_dir: &Path) -> Result<(), KnowledgeBuildError> {
    if index_dir.exists() {
        if !looks_like_tantivy_index(index_dir) {
            return Err(KnowledgeBuildError::Io {
                action: "reuse the folder",
                path: index_dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "it exists and is not a tantivy index; move it away",
                ),
            });
        }
        fs::remove_dir_all(index_dir).map_err(KnowledgeBuildError::io("remove the unfinished index", index_dir))?;
    }
    fs::create_dir(index_dir).map_err(KnowledgeBuildError::io("create the index folder", index_dir))
}

/// Removes `index-*` sub-folders other than `current`. Failures are logged and
/// skipped: the new index is already complete and in use.
fn remove_stale_indexes(dir: &Path, current: &str) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(path = %dir.display(), error = %error, "cannot list the index folder to remove old indexes");
            return;
        }
    };

    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name == current || !is_index_dir_name(name) || !looks_like_tantivy_index(&path) {
            continue;
        }
        if let Err(error) = fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), error = %error, "cannot remove old knowledge index");
        }
    }
}

/// Returns whether `name` has the form `index-` followed by 16 lowercase hex digits.
fn is_index_dir_name(name: &str) -> bool {
    name.strip_prefix(INDEX_DIR_PREFIX)
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Returns whether `path` is a folder that is empty or contains tantivy's own
/// bookkeeping files, so that deleting it cannot lose anyone's data.
fn looks_like_tantivy_index(path: &Path) -> bool {
    let Ok(mut entries) = fs::read_dir(path) else {
        return false;
    };
    let empty = entries.next().is_none();
    empty || path.join("meta.json").is_file() || path.join(".managed.json").is_file()
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
