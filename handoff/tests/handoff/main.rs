//! The helpdesk adapters against a real engine (in-memory store, a bot that
//! understands nothing and hands off after two messages) and fake helpdesks
//! served by the tests on 127.0.0.1.

mod chatwoot;
mod support;
mod webhook;
