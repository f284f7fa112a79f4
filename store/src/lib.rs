//! Session stores for Lepton. [`EmbeddedStore`] is the default: it keeps
//! sessions, transcripts and the queue of conversations waiting for an agent in
//! one [redb](https://docs.rs/redb) file, so a bot runs with nothing else
//! installed and a restarted server loses no conversation state.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use bot_core::{ConversationId, SessionStore};
//! use lepton_store::EmbeddedStore;
//!
//! let store = Arc::new(EmbeddedStore::open(Path::new(".lepton/sessions.redb"))?);
//! let stored = store.load(&ConversationId::new("web:42")).await?;
//! println!("stored version: {:?}", stored.map(|s| s.version));
//! # Ok(()) }
//! ```
//!
//! The file contains these tables (see `tables.rs`): `sessions` (conversation id to
//! a JSON record of the store version, expiry and the session with its schema
//! version), `transcript_events` (conversation id and sequence number to the
//! event JSON), `transcripts` (expiry per transcript), `waiting`, two indexes by
//! expiry that let the sweep find expired records without a full scan, and
//! `meta` with the storage format version.

mod embedded;
mod error;
mod ops;
mod record;
mod tables;

pub use embedded::EmbeddedStore;
pub use error::EmbeddedStoreError;
pub use ops::{SweepStats, SWEEP_EVERY_WRITES};
pub use tables::FORMAT_VERSION;
