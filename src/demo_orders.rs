//! The small orders service the demo bot's HTTP actions call, served by the
//! demo server itself from `orders.json` in the bot folder.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

type Orders = Arc<Mutex<BTreeMap<String, Value>>>;

/// Reads `orders.json` (an object of order number to order) from the bot folder.
pub fn load(bot_dir: &Path) -> anyhow::Result<Orders> {
    let path = bot_dir.join("orders.json");
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let orders: BTreeMap<String, Value> =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a JSON object of orders: {e}", path.display()))?;
    Ok(Arc::new(Mutex::new(orders)))
}

/// `GET /demo/orders/{number}` and `POST /demo/orders/{number}/address`.
pub fn router(orders: Orders) -> Router {
    Router::new()
        .route("/demo/orders/{number}", get(get_order))
        .route("/demo/orders/{number}/address", post(change_address))
        .with_state(orders)
}

async fn get_order(State(orders): State<Orders>, UrlPath(number): UrlPath<String>) -> (StatusCode, Json<Value>) {
    let orders = orders.lock().expect("orders lock poisoned");
    match orders.get(&number) {
        Some(order) => {
            let mut order = order.clone();
            if let Value::Object(map) = &mut order {
                map.insert("order_number".to_owned(), Value::String(number));
            }
            (StatusCode::OK, Json(order))
        }
        None => not_found(&number),
    }
}

fn error(status: StatusCode, code: &str, message: String) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": { "code": code, "message": message } })))
}

fn not_found(number: &str) -> (StatusCode, Json<Value>) {
    error(StatusCode::NOT_FOUND, "order_not_found", format!("order {number} not found"))
}

async fn change_address(
    State(orders): State<Orders>,
    UrlPath(number): UrlPath<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, "invalid_json", rejection.body_text()),
    };
    let Some(address) = body.get("address").and_then(Value::as_str).filter(|a| !a.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "missing_address", "the body needs a non-empty \"address\" string".to_owned());
    };
    let mut orders = orders.lock().expect("orders lock poisoned");
    match orders.get_mut(&number) {
        Some(Value::Object(order)) => {
            order.insert("address".to_owned(), Value::String(address.to_owned()));
            (StatusCode::OK, Json(json!({ "ok": true })))
        }
        _ => not_found(&number),
    }
}
