//! The server's cached copy of the accounts file: read at first use and read again
//! whenever it changes on disk, so that `lepton agent` edits apply at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::accounts::{Accounts, AccountsError, FileStamp};

/// The accounts file of a server. Cheap to share.
pub struct AccountBook {
    path: Option<PathBuf>,
    cached: Mutex<Option<(FileStamp, Arc<Accounts>)>>,
}

impl AccountBook {
    /// Creates a book that reads accounts from `path` on first use. With `None`,
    /// no agent can sign in to the console.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path, cached: Mutex::new(None) }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Returns the accounts as the file contains them now, or `None` when there is no
    /// file. Costs a `stat` when the file did not change since the last call.
    pub async fn current(&self) -> Result<Option<Arc<Accounts>>, AccountsError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let metadata = match tokio::fs::metadata(path).await {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(AccountsError::Read { path: path.clone(), source }),
        };
        let stamp = FileStamp::of(&metadata);
        if let Some((cached_stamp, accounts)) = self.cached.lock().expect("account cache lock poisoned").as_ref() {
            if *cached_stamp == stamp {
                return Ok(Some(accounts.clone()));
            }
        }

        let owned = path.clone();
        let loaded = tokio::task::spawn_blocking(move || Accounts::load(&owned)).await;
        let loaded = loaded.map_err(|error| AccountsError::Read { path: path.clone(), source: std::io::Error::other(error) })??;
        let Some(accounts) = loaded else {
            return Ok(None);
        };
        let accounts = Arc::new(accounts);
        tracing::info!(path = %path.display(), agents = accounts.agents().len(), "console accounts loaded");
        *self.cached.lock().expect("account cache lock poisoned") = Some((stamp, accounts.clone()));
        Ok(Some(accounts))
    }
}
