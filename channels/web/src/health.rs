//! `GET /readyz`: whether this server can take turns now, for load balancers
//! and orchestrators. `GET /healthz` (in `assets.rs`) only reports that the process is up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::state::WebState;

/// The maximum time the readiness check waits for the session store's reply to a ping.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The outcome of the last check, so that a failure is logged when it starts
/// and a recovery when it ends, not on every probe.
static WAS_READY: AtomicBool = AtomicBool::new(true);

/// The readiness report: `ready`, each check's result (`ok` or `failed`), and
/// the names of the failed checks. The reasons go to the log only, because the
/// route needs no credentials and a store error names its host and database.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    checks: Checks,
    not_ready: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct Checks {
    /// The result of checking the intent model and the knowledge index.
    models: &'static str,
    /// The result of pinging the session store.
    store: &'static str,
}

fn check_result(outcome: &str) -> &'static str {
    if outcome == "ok" {
        "ok"
    } else {
        "failed"
    }
}

/// `GET /readyz`: returns 200 when the models pass their checks and the session
/// store replies to a ping within [`STORE_PING_TIMEOUT`], else 503. The body
/// names what failed.
pub(crate) async fn readyz(State(state): State<WebState>) -> Response {
    let engine = state.engine();
    let mut not_ready = Vec::new();

    let models = match engine.check_models() {
        Ok(()) => "ok".to_owned(),
        Err(error) => {
            not_ready.push("models");
            error.to_string()
        }
    };
    let store = match engine.ping_store(STORE_PING_TIMEOUT).await {
        Ok(()) => "ok".to_owned(),
        Err(error) => {
            not_ready.push("store");
            error.to_string()
        }
    };

    let ready = not_ready.is_empty();
    let was_ready = WAS_READY.swap(ready, Ordering::Relaxed);
    if was_ready && !ready {
        tracing::warn!(?not_ready, %store, %models, "readiness check failed; /readyz returns 503 until it passes");
    } else if ready && !was_ready {
        tracing::info!("readiness check passed again");
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let checks = Checks { models: check_result(&models), store: check_result(&store) };
    let body = Readiness { ready, checks, not_ready };
    (status, [(CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
