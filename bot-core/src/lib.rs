//! The core of Lepton: the dialog engine, its domain types, and the traits that
//! the other crates implement.
//!
//! A channel turns a platform update into an [`InboundMessage`] and calls
//! [`Engine::handle`]; the engine runs the turn against the bot's
//! [`BotDefinition`] using a [`Classifier`], a [`KnowledgeSearch`], an
//! [`HttpClient`] and a [`SessionStore`], and returns the replies as transcript
//! [`Event`]s. This crate depends on no network, ML, index or database crate.
//!
//! ```no_run
//! # async fn example(engine: bot_core::Engine) -> Result<(), bot_core::EngineError> {
//! use bot_core::InboundMessage;
//!
//! let outcome = engine.handle(InboundMessage::text("web:42", "web", "where is my order?")).await?;
//! for event in &outcome.events {
//!     if let Some(reply) = event.reply() {
//!         println!("{}", reply.text);
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod action;
pub mod bot;
pub mod classify;
pub mod clock;
pub mod engine;
pub mod event;
pub mod handoff;
pub mod handoff_adapter;
pub mod ids;
pub mod knowledge;
pub mod message;
pub mod observe;
pub mod session;
pub mod store;
pub mod text;

pub use action::{HttpClient, HttpError, HttpRequest, HttpResponse};
pub use bot::BotDefinition;
pub use classify::{BoxFuture, Classification, Classifier, ScoredIntent};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, EngineError, EngineParts, FeedEvent, HandoffEntry, TurnOutcome};
pub use event::{Event, EventKind, Understanding};
pub use handoff::{HandoffReason, HandoffState};
pub use handoff_adapter::{AdapterError, HandoffAdapter, HandoffEnd, HandoffEnded, HandoffStarted, RecordingAdapter};
pub use ids::{AgentId, Channel, ClientMessageId, ConversationId, FlowId, IntentId, Lang, ResponseId, SenderId, SlotName, StepId};
pub use knowledge::{Article, FaqEntry, KnowledgeAnswer, KnowledgeSearch};
pub use message::{Author, Content, InboundMessage, QuickReply, Reply, Timestamp};
pub use observe::{Observer, TurnKind, TurnReport};
pub use session::{DialogState, Session};
pub use store::{Lease, LeaseHandle, MemoryStore, RemoteEvents, SessionStore, StoreError, TurnCommit, UnrecognisedMessage, Versioned};
