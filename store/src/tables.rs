//! The redb tables of the store file and its storage format version.
//!
//! Table names and key and value types are part of the file format: renaming a
//! table or changing its types makes existing files unreadable, so such a change
//! needs a new [`FORMAT_VERSION`] and a migration.

use bot_core::Timestamp;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// The storage format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// `"format_version"` → [`FORMAT_VERSION`] of the file.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const FORMAT_VERSION_KEY: &str = "format_version";

/// Conversation id → session record JSON (see the `record` module).
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// (expiry in Unix milliseconds, conversation id) of every session record, for the sweep.
pub(crate) const SESSIONS_BY_EXPIRY: TableDefinition<(Timestamp, &str), ()> = TableDefinition::new("sessions_by_expiry");

/// (conversation id, sequence number) → transcript event JSON.
pub(crate) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("transcript_events");

/// Conversation id → expiry in Unix milliseconds of its whole transcript.
pub(crate) const TRANSCRIPTS: TableDefinition<&str, Timestamp> = TableDefinition::new("transcripts");

/// (expiry in Unix milliseconds, conversation id) of every transcript, for the sweep.
pub(crate) const TRANSCRIPTS_BY_EXPIRY: TableDefinition<(Timestamp, &str), ()> =
    TableDefinition::new("transcripts_by_expiry");

/// Conversation id → Unix milliseconds since which it has waited for an agent.
pub(crate) const WAITING: TableDefinition<&str, Timestamp> = TableDefinition::new("waiting");

/// Insertion number → unrecognised customer message JSON ([`bot_core::UnrecognisedMessage`]).
/// The highest number is the newest message.
pub(crate) const UNRECOGNISED: TableDefinition<u64, &[u8]> = TableDefinition::new("unrecognised");

/// (conversation id, sequence number) → insertion number of its entry in [`UNRECOGNISED`].
pub(crate) const UNRECOGNISED_INDEX: TableDefinition<(&str, u64), u64> = TableDefinition::new("unrecognised_index");

/// The outcome of checking the format version of a file.
pub(crate) enum FormatCheck {
    Supported,
    Unsupported { found: u64 },
}

/// Creates every table that does not exist yet and records the format version
/// of a new file. Reports whether an existing file has a format this build reads.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<FormatCheck, redb::Error> {
    let mut meta = txn.open_table(META)?;
    let found = meta.get(FORMAT_VERSION_KEY)?.map(|v| v.value());
    match found {
        Some(found) if found != FORMAT_VERSION => return Ok(FormatCheck::Unsupported { found }),
        Some(_) => {}
        None => {
            meta.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
        }
    }

    txn.open_table(SESSIONS)?;
    txn.open_table(SESSIONS_BY_EXPIRY)?;
    txn.open_table(EVENTS)?;
    txn.open_table(TRANSCRIPTS)?;
    txn.open_table(TRANSCRIPTS_BY_EXPIRY)?;
    txn.open_table(WAITING)?;
    // Added after format version 1 without a new version: opening an older
    // file creates them empty, and older builds ignore them.
    txn.open_table(UNRECOGNISED)?;
    txn.open_table(UNRECOGNISED_INDEX)?;
    Ok(FormatCheck::Supported)
}
