//! End-to-end tests: the real `lepton serve` on 127.0.0.1 with the demo bot,
//! driven over HTTP and WebSocket as a customer and an agent would.

mod bad_input;
mod console;
mod conversation_test;
mod conversations;
mod diagnostics;
mod encoder;
mod discord;
mod handoff;
mod harness;
mod learning;
mod lifecycle;
mod limits;
mod load;
mod model_pull;
mod observability;
mod redis;
mod reload;
mod redis_harness;
mod telegram;
mod validate;
