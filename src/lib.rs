//! The `lepton` command line and server: glue that loads a bot folder, trains
//! and indexes it, and runs the engine behind the web, Telegram and Discord channels.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use lepton::app::BotPaths;
//! use lepton::server::{run, ServeOptions};
//!
//! let paths = BotPaths::new("demo".as_ref(), None);
//! let options = ServeOptions {
//!     store: Default::default(),
//!     redis: Default::default(),
//!     web: Default::default(),
//!     encoder: Default::default(),
//!     paths,
//!     host: "127.0.0.1".to_owned(),
//!     port: 8080,
//!     agent_token: None,
//!     accounts: "demo/.lepton/agents.json".into(),
//!     demo_account: false,
//!     demo_orders: true,
//!     watch: true,
//!     telegram: None,
//!     discord: None,
//!     shutdown_timeout: std::time::Duration::from_secs(10),
//!     header_read_timeout: std::time::Duration::from_secs(10),
//!     handoff_timer_period: std::time::Duration::from_secs(5),
//!     metrics: Some(Default::default()),
//!     limits: Default::default(),
//! };
//! run(options, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod agent_cmd;
pub mod app;
mod channels;
pub mod config;
pub mod chat;
pub mod conversation_test;
pub mod demo_orders;
pub mod diagnostics;
pub mod eval;
pub mod finetune_cmd;
pub mod http_client;
pub mod learn;
pub mod limits;
pub mod metrics;
pub mod model_cmd;
pub mod reload;
pub mod server;
pub mod store_config;
#[cfg(feature = "otel")]
pub mod telemetry;
