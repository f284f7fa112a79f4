//! Lepton's web channel: a JSON API and a WebSocket for customers, the
//! embeddable chat widget, a demo shop page, and a minimal agent API, all on axum.
//!
//! [`router`] returns a finished [`axum::Router`]. The binary may merge routes
//! of its own into it, without a fallback because this router already returns
//! a JSON 404 for unknown routes, and serves it. Serve it with the peer address available, since the
//! agent API uses it when no agent token is configured:
//!
//! ```no_run
//! # async fn example(engine: bot_core::Engine) -> std::io::Result<()> {
//! use std::net::SocketAddr;
//! use lepton_web::{router, WebConfig, WebState};
//!
//! let state = WebState::new(engine, WebConfig::default());
//! let app = router(state.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         state.close_sockets();
//!     })
//!     .await
//! # }
//! ```
//!
//! Routes (`{id}` is a conversation id: 1 to 128 characters from `[A-Za-z0-9_.:-]`):
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | demo shop page with the widget |
//! | `GET /widget.js` | the chat widget script |
//! | `GET /healthz` | `ok` while the process runs |
//! | `GET /readyz` | 200 when the index can be read, the encoder (if any) is not stalled and the session store is reachable, else 503 naming what is not |
//! | `POST /api/v1/conversations/{id}/messages` | send a customer message, get the replies |
//! | `GET /api/v1/conversations/{id}/events?after=SEQ` | the transcript, customer view |
//! | `GET /api/v1/conversations/{id}/ws?after=SEQ` | WebSocket of every event after `SEQ` |
//! | `GET /api/v1/agent/conversations` | conversations waiting for an agent |
//! | `POST /api/v1/agent/conversations/{id}/claim` | take a waiting conversation |
//! | `POST /api/v1/agent/conversations/{id}/messages` | reply as the agent |
//! | `POST /api/v1/agent/conversations/{id}/handback` | give the conversation back to the bot |
//! | `POST /api/v1/agent/conversations/{id}/close` | close the conversation |
//! | `GET /api/v1/agent/conversations/{id}/events?after=SEQ` | the transcript, agent view |
//! | `POST /api/v1/admin/reload` | load the bot folder again ([`WebState::with_reloader`]) |
//! | `GET /api/v1/admin/reload` | the last reload's report, with a rejected edit's diagnostics |
//! | `GET /console` | the support console ([`console`]); its API under `/console/api` is in `docs/console-api.md` |
//!
//! Every error is `{"error":{"code":"...","message":"..."}}` with a fitting status.

pub mod admin;
pub mod agent;
mod assets;
mod auth;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod customer;
pub mod error;
mod health;
pub mod input;
pub mod rate_limit;
pub mod socket;
pub mod state;
pub mod view;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

pub use admin::{BotReloader, ReloadReport};
pub use assets::{DEMO_HTML, WIDGET_JS};
pub use client_ip::TrustedProxies;
pub use config::{AllowedOrigins, RateLimits, SettingError, WebConfig};
pub use rate_limit::Rate;
pub use console::{ExampleAdded, ExampleError, ExampleWriter};
pub use customer::CHANNEL;
pub use error::WebError;
pub use state::WebState;

/// Builds the web channel's routes with their state applied.
pub fn router(state: WebState) -> Router {
    let body_limit = DefaultBodyLimit::max(state.config().max_body_bytes());

    let customer = Router::new()
        .route("/api/v1/conversations/{id}/messages", post(customer::send_message))
        .route("/api/v1/conversations/{id}/events", get(customer::customer_events))
        .route("/api/v1/conversations/{id}/ws", get(socket::customer_socket))
        .method_not_allowed_fallback(assets::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth::customer_origin));

    let agent = Router::new()
        .route("/api/v1/agent/conversations", get(agent::waiting))
        .route("/api/v1/agent/conversations/{id}/claim", post(agent::claim))
        .route("/api/v1/agent/conversations/{id}/messages", post(agent::reply))
        .route("/api/v1/agent/conversations/{id}/handback", post(agent::hand_back))
        .route("/api/v1/agent/conversations/{id}/close", post(agent::close))
        .route("/api/v1/agent/conversations/{id}/events", get(agent::events))
        .route("/api/v1/admin/reload", post(admin::reload).get(admin::last_reload))
        .method_not_allowed_fallback(assets::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth::require_agent));

    // Each part gets its JSON 405 before its middleware, so that the middleware
    // still receives requests with other methods (CORS preflights use OPTIONS).
    Router::new()
        .route("/", get(assets::demo_page))
        .route("/widget.js", get(assets::widget))
        .route("/healthz", get(assets::healthz))
        .route("/readyz", get(health::readyz))
        .method_not_allowed_fallback(assets::method_not_allowed)
        .merge(customer)
        .merge(agent)
        .merge(console::routes())
        .fallback(assets::not_found)
        .layer(body_limit)
        .with_state(state)
}
