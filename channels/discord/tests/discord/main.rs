//! End-to-end tests of the Discord channel: the demo bot's engine behind the
//! channel, and a fake Discord (REST API and gateway) on 127.0.0.1 in place of
//! Discord. No test reaches any other host. REST calls go to the fake through
//! serenity's proxy setting. The gateway address comes from the fake and is
//! checked to be on 127.0.0.1 before the channel connects. The HTTP client
//! resolves Discord's host names to a closed port of 127.0.0.1, and the flows'
//! HTTP client rejects anything but 127.0.0.1.

mod conversation;
mod delivery;
mod fake;
mod handoff;
mod harness;
mod logs;
