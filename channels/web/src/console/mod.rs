//! The support-staff console at `/console`: a page of plain HTML, CSS and
//! JavaScript modules, and the JSON API and WebSocket it uses. Agents sign in
//! with accounts from the accounts file (`lepton agent add`), get a signed
//! session cookie, and claim, answer, annotate, transfer, hand back and close
//! conversations with people. See `docs/console-api.md` for the API.

pub mod accounts;
mod assets;
mod book;
mod catalog;
mod conversation;
pub mod error;
pub mod learning;
mod limit;
pub mod presence;
pub mod queue;
pub mod session;
mod socket;
mod stats;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

pub use accounts::{Account, Accounts, AccountsError, Role};
pub use assets::CONTENT_SECURITY_POLICY_VALUE;
pub use book::AccountBook;
pub use error::ConsoleError;
pub use learning::{ExampleAdded, ExampleError, ExampleWriter};
pub use presence::Presence;

use crate::admin;
use crate::state::WebState;
use limit::FailureLimit;
use presence::PresenceBook;
use queue::QueueFeed;
use session::Admin;

/// The console's share of the web channel's state.
pub(crate) struct ConsoleState {
    accounts: AccountBook,
    address_failures: FailureLimit,
    name_failures: FailureLimit,
    presence: Arc<PresenceBook>,
    queue_feed: QueueFeed,
    example_writer: Option<Arc<dyn ExampleWriter>>,
}

impl ConsoleState {
    pub(crate) fn new(accounts: AccountBook) -> Self {
        Self {
            accounts,
            address_failures: FailureLimit::default(),
            name_failures: FailureLimit::default(),
            presence: Arc::default(),
            queue_feed: QueueFeed::default(),
            example_writer: None,
        }
    }

    pub(crate) fn accounts(&self) -> &AccountBook {
        &self.accounts
    }

    pub(crate) fn address_failures(&self) -> &FailureLimit {
        &self.address_failures
    }

    pub(crate) fn name_failures(&self) -> &FailureLimit {
        &self.name_failures
    }

    pub(crate) fn presence(&self) -> &Arc<PresenceBook> {
        &self.presence
    }

    pub(crate) fn queue_feed(&self) -> &QueueFeed {
        &self.queue_feed
    }

    pub(crate) fn example_writer(&self) -> Option<&Arc<dyn ExampleWriter>> {
        self.example_writer.as_ref()
    }

    pub(crate) fn set_example_writer(&mut self, writer: Arc<dyn ExampleWriter>) {
        self.example_writer = Some(writer);
    }
}

/// The console's routes, for [`crate::router`] to merge.
pub(crate) fn routes() -> Router<WebState> {
    let api = Router::new()
        .route("/console/api/session", post(session::sign_in).delete(session::sign_out))
        .route("/console/api/me", get(session::me))
        .route("/console/api/queue", get(queue::queue))
        .route("/console/api/ws", get(socket::console_socket))
        .route("/console/api/conversations/{id}", get(conversation::detail))
        .route("/console/api/conversations/{id}/claim", post(conversation::claim))
        .route("/console/api/conversations/{id}/messages", post(conversation::reply))
        .route("/console/api/conversations/{id}/notes", post(conversation::note))
        .route("/console/api/conversations/{id}/transfer", post(conversation::transfer))
        .route("/console/api/conversations/{id}/handback", post(conversation::hand_back))
        .route("/console/api/conversations/{id}/close", post(conversation::close))
        .route("/console/api/agents", get(catalog::agents))
        .route("/console/api/canned", get(catalog::canned))
        .route("/console/api/intents", get(catalog::intents))
        .route("/console/api/examples", post(learning::add_example))
        .route("/console/api/unrecognised", get(learning::unrecognised))
        .route("/console/api/unrecognised/{id}/{seq}", delete(learning::dismiss))
        .route("/console/api/admin/reload", get(last_reload).post(reload))
        .route("/console/api/admin/stats", get(stats::stats));

    Router::new()
        .route("/console", get(assets::page))
        .route("/console/", get(assets::page))
        .route("/console/assets/{file}", get(assets::file))
        .merge(api)
        .method_not_allowed_fallback(crate::assets::method_not_allowed)
}

/// `GET /console/api/admin/reload`: the last reload's report, for admins.
async fn last_reload(state: State<WebState>, _admin: Admin) -> Response {
    admin::last_reload(state).await.into_response()
}

/// `POST /console/api/admin/reload`: reloads the bot folder, for admins.
async fn reload(state: State<WebState>, _admin: Admin) -> Response {
    admin::reload(state).await.into_response()
}
