//! End-to-end tests of the web channel over real HTTP and WebSocket on loopback,
//! against a real engine with an in-memory store and a small bot built in Rust.

mod agent;
mod assets;
mod browser;
mod console;
mod console_browser;
mod customer;
mod limits;
mod loopback;
mod socket;
mod support;
