//! Temporary store folders and direct access to the store file's tables.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bot_core::{Channel, ConversationId, Lang, Session};
use redb::{Database, TableDefinition};

/// The tables as the store defines them; writing through these definitions
/// also checks that their names and types did not change.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("transcript_events");

/// A folder under the system temporary folder, deleted on drop.
pub struct TempFolder {
    path: PathBuf,
}

impl TempFolder {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let unique = format!("lepton-store-{name}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    /// Returns the path of the store file, one folder below the temporary folder so that
    /// `open` has to create a parent folder.
    pub fn store_path(&self) -> PathBuf {
        self.path.join("data").join("sessions.redb")
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn session(id: &str) -> Session {
    Session::new(ConversationId::new(id), Channel::new("web"), Lang::new("en"), 1_767_225_600_000)
}

/// Writes `bytes` as the raw session record of `id`, with the store closed.
pub fn write_raw_session(path: &Path, id: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(SESSIONS)?.insert(id, bytes)?;
    txn.commit()?;
    Ok(())
}

/// Writes `bytes` as the raw transcript event `seq` of `id`, with the store closed.
pub fn write_raw_event(path: &Path, id: &str, seq: u64, bytes: &[u8]) -> anyhow::Result<()> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(EVENTS)?.insert((id, seq), bytes)?;
    txn.commit()?;
    Ok(())
}
