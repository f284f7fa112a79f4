//! Errors from opening the embedded store, and the mapping of redb's runtime
//! errors onto [`StoreError`].

use std::io;
use std::path::{Path, PathBuf};

use bot_core::StoreError;

/// Why [`EmbeddedStore::open`](crate::EmbeddedStore::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedStoreError {
    #[error("cannot create folder {} for the session store: {source}", path.display())]
    CreateFolder { path: PathBuf, source: io::Error },

    #[error(
        "session store {} is locked by another process: another Lepton may be running with the same store; \
         stop it or choose another store path",
        path.display()
    )]
    Locked { path: PathBuf },

    #[error(
        "session store {} is corrupt or not a Lepton session store ({reason}); \
         move the file aside to start with an empty store",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    #[error(
        "session store {} uses storage format {found}, but this build reads format {supported}; \
         open it with the Lepton version that wrote it, or move the file aside",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf, found: u64, supported: u64 },

    #[error("cannot open session store {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("cannot open session store {}: {source}", path.display())]
    Database { path: PathBuf, source: redb::Error },

    #[error("cannot start the writer threads of session store {}: {source}", path.display())]
    WriterThread { path: PathBuf, source: io::Error },
}

impl EmbeddedStoreError {
    /// Classifies an error from `redb::Database::create` for the file at `path`.
    pub(crate) fn from_open(path: &Path, error: redb::DatabaseError) -> Self {
        let path = path.to_path_buf();
        match error {
            redb::DatabaseError::DatabaseAlreadyOpen => Self::Locked { path },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => Self::Corrupt { path, reason },
            // redb reports a file that does not start with its magic number as InvalidData.
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) if source.kind() == io::ErrorKind::InvalidData => {
                Self::Corrupt { path, reason: "the file is not a redb database".to_owned() }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => Self::Io { path, source },
            other => Self::Database { path, source: other.into() },
        }
    }

    /// Wraps an error from the first transaction after opening, which creates the tables.
    pub(crate) fn from_setup(path: &Path, error: impl Into<redb::Error>) -> Self {
        let path = path.to_path_buf();
        match error.into() {
            redb::Error::Corrupted(reason) => Self::Corrupt { path, reason },
            redb::Error::TableTypeMismatch { table, .. } => {
                Self::Corrupt { path, reason: format!("table {table} has an unexpected key or value type") }
            }
            source => Self::Database { path, source },
        }
    }
}

/// Maps a redb error during a store operation to [`StoreError::Unavailable`].
pub(crate) fn unavailable(path: &Path, error: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable { reason: format!("session store {}: {}", path.display(), error.into()) }
}
