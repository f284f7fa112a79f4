//! End-to-end tests of the Telegram channel: the demo bot's engine behind the
//! channel, and a fake Bot API on 127.0.0.1 in place of Telegram. No test
//! reaches any other host: the channel's API URL and the demo's order server
//! are the fake, and the flows' HTTP client refuses anything but 127.0.0.1.

mod conversation;
mod delivery;
mod fake;
mod handoff;
mod harness;
mod webhook;
