//! Tests of the embedded session store against a real file in a temporary
//! folder, and of the shared store contract on both stores.

mod common;
mod concurrency;
mod contract;
mod corruption;
mod crash;
mod persistence;
mod schema;
mod turns;
