//! Helpdesk adapters for Lepton's human handoff.
//!
//! Each adapter implements [`bot_core::HandoffAdapter`], which the engine's
//! dispatcher ([`bot_core::handoff_adapter::spawn_dispatcher`]) calls for the
//! conversations people handle, and has a callback route through which the
//! helpdesk's agents reply, claim, hand back and close:
//!
//! - [`webhook`]: signed JSON POSTs to any URL, and a signed callback.
//! - [`chatwoot`]: a Chatwoot inbox of type API, and Chatwoot's webhook.
//!
//! [`from_settings`] builds the adapter that `settings.handoff.adapter` names,
//! with its secrets from the environment:
//!
//! ```no_run
//! # fn example(engine: bot_core::Engine) -> Result<(), lepton_handoff::ConfigError> {
//! let settings = engine.bot().settings.handoff.adapter.clone();
//! if let Some(helpdesk) = lepton_handoff::from_settings(&settings, &|name| std::env::var(name).ok())? {
//!     bot_core::handoff_adapter::spawn_dispatcher(engine.clone(), helpdesk.adapter.clone(), Default::default());
//!     let callback_routes = helpdesk.router(engine);
//!     # let _ = callback_routes;
//! }
//! # Ok(()) }
//! ```

pub mod chatwoot;
mod config;
mod http;
pub mod ops;
pub mod secret;
pub mod signature;
pub mod webhook;

pub use chatwoot::{ChatwootAdapter, ChatwootConfig};
pub use config::{from_settings, ConfigError, Helpdesk, CHATWOOT_API_TOKEN_ENV, CHATWOOT_CALLBACK_TOKEN_ENV, CHATWOOT_WEBHOOK_SECRET_ENV, WEBHOOK_SECRET_ENV};
pub use secret::Secret;
pub use webhook::{WebhookAdapter, WebhookConfig};
