//! Session stores for Lepton. [`EmbeddedStore`] is the default: it keeps
//! sessions, transcripts and the queue of conversations waiting for an agent in
//! one [redb](https://docs.rs/redb) file, so a bot runs with nothing else
//! installed and a server restarted after a clean shutdown loses no
//! conversation state.
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
//! # Durability
//!
//! Every write (`save`, `append_events`, `set_waiting`, and `commit_turn`, which
//! does all three for one turn in one transaction) is atomic and visible to
//! readers when it returns. Concurrent `commit_turn` calls are stored together:
//! one writer thread puts every turn that is waiting into one transaction,
//! and each turn still succeeds or fails on its own.
//!
//! Under the default [`SyncPolicy::EveryWrite`] each transaction is fsynced
//! before it returns, so a crash of the process or of the machine loses no
//! write that returned. Concurrent turns share one transaction and one fsync,
//! which is what keeps this fast under load; a lone writer waits for a whole
//! fsync per write.
//!
//! [`SyncPolicy::Periodic`] (open with [`EmbeddedStore::open_with`], or
//! `lepton serve --store-flush-ms N`) trades durability for latency on disks
//! with slow fsync: a write is not yet on disk when it returns, and a
//! background thread fsyncs the file one interval
//! ([`DEFAULT_FLUSH_INTERVAL`] is 50 ms) after the first write it has not
//! flushed, with one fsync for all the writes of that window.
//!
//! - A clean shutdown loses nothing. [`SessionStore::flush`](bot_core::SessionStore::flush),
//!   which the engine calls on shutdown, returns once every earlier write is on
//!   disk, and dropping the store stores the queued turns and flushes too (it
//!   logs a failure, because `Drop` cannot return it).
//! - A crash loses the writes since the last completed flush: about the last
//!   interval of turns, plus the turns made during up to two fsyncs and any
//!   delay in scheduling the flush thread. A lost turn is lost whole (session,
//!   events and queue change together), and the file reopens at the last
//!   flushed state, so those conversations continue from the turn before.
//! - While the flusher's fsync runs it holds redb's write lock, so turns
//!   arriving then wait for it; on the machine of `docs/benchmarks.md` this
//!   made the p99 latency through the REST API worse than `EveryWrite`.
//!
//! `docs/benchmarks.md` has the figures of both policies, measured with
//! `examples/store_bench.rs`.
//!
//! The file contains these tables (see `tables.rs`): `sessions` (conversation id to
//! a JSON record of the store version, expiry and the session with its schema
//! version), `transcript_events` (conversation id and sequence number to the
//! event JSON), `transcripts` (expiry per transcript), `waiting`, two indexes by
//! expiry that let the sweep find expired records without a full scan,
//! `unrecognised` with its index `unrecognised_index` (the newest customer
//! messages the bot did not recognise), and `meta` with the storage format version.

mod batch;
mod embedded;
mod error;
mod ops;
mod record;
mod sync;
mod tables;
mod unrecognised;

pub use embedded::EmbeddedStore;
pub use error::EmbeddedStoreError;
pub use ops::{SweepStats, SWEEP_EVERY_WRITES};
pub use sync::{SyncPolicy, DEFAULT_FLUSH_INTERVAL};
pub use tables::FORMAT_VERSION;
