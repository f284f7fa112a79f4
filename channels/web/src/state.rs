//! The state every handler shares.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bot_core::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};

use crate::admin::BotReloader;
use crate::client_ip::{self, rate_key};
use crate::config::WebConfig;
use crate::console::{AccountBook, ConsoleState, ExampleWriter};
use crate::error::{RateLimitScope, WebError};
use crate::rate_limit::RateLimiter;

/// The engine, the settings and the bookkeeping of open WebSockets. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: WebConfig,
    agent_token_digest: Option<[u8; 32]>,
    sockets: Arc<Semaphore>,
    closing: watch::Sender<bool>,
    reloader: Option<Arc<dyn BotReloader>>,
    console: ConsoleState,
    limits: Limits,
}

/// The customer API's rate limiters, built from [`WebConfig::rate_limits`].
struct Limits {
    conversations: Option<RateLimiter<bot_core::ConversationId>>,
    addresses: Option<RateLimiter<IpAddr>>,
    /// Set once a request from an untrusted peer carried `X-Forwarded-For`, so
    /// that the hint to configure trusted proxies is logged once.
    forwarded_for_seen: AtomicBool,
}

impl WebState {
    pub fn new(engine: Engine, config: WebConfig) -> Self {
        let agent_token_digest = config.agent_token.as_deref().map(digest);
        let sockets = Arc::new(Semaphore::new(config.max_sockets));
        let (closing, _) = watch::channel(false);
        let console = ConsoleState::new(AccountBook::new(None));
        let rates = &config.rate_limits;
        let limits = Limits {
            conversations: rates.per_conversation.map(|rate| RateLimiter::new(rate, rates.max_keys)),
            addresses: rates.per_address.map(|rate| RateLimiter::new(rate, rates.max_keys)),
            forwarded_for_seen: AtomicBool::new(false),
        };
        Self { inner: Arc::new(Inner { engine, config, agent_token_digest, sockets, closing, reloader: None, console, limits }) }
    }

    /// Serves `POST /api/v1/admin/reload` with `reloader`. Call it before the state is cloned.
    ///
    /// # Panics
    /// When the state has been cloned already.
    pub fn with_reloader(mut self, reloader: Arc<dyn BotReloader>) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("WebState::with_reloader called after the state was cloned");
        inner.reloader = Some(reloader);
        self
    }

    /// Signs console agents in with the accounts in `path` (written by `lepton
    /// agent add`), read again whenever the file changes. Without it nobody can
    /// sign in to the console. Call it before the state is cloned.
    ///
    /// # Panics
    /// When the state has been cloned already.
    pub fn with_accounts(mut self, path: std::path::PathBuf) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("WebState::with_accounts called after the state was cloned");
        inner.console = ConsoleState::new(AccountBook::new(Some(path)));
        self
    }

    /// Lets console agents add intent examples through `writer`. Call it before the state is cloned.
    ///
    /// # Panics
    /// When the state has been cloned already.
    pub fn with_example_writer(mut self, writer: Arc<dyn ExampleWriter>) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("WebState::with_example_writer called after the state was cloned");
        inner.console.set_example_writer(writer);
        self
    }

    pub(crate) fn console(&self) -> &ConsoleState {
        &self.inner.console
    }

    pub(crate) fn example_writer(&self) -> Option<&Arc<dyn ExampleWriter>> {
        self.inner.console.example_writer()
    }

    pub(crate) fn reloader(&self) -> Option<&Arc<dyn BotReloader>> {
        self.inner.reloader.as_ref()
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &WebConfig {
        &self.inner.config
    }

    /// Sends a close frame (1001, going away) on every open WebSocket and refuses
    /// new ones. Call it when graceful shutdown starts: `axum::serve` waits for
    /// open connections, and a WebSocket would otherwise keep it waiting.
    pub fn close_sockets(&self) {
        self.inner.closing.send_replace(true);
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    pub(crate) fn sockets(&self) -> &Arc<Semaphore> {
        &self.inner.sockets
    }

    /// Takes a token from the client address's bucket and, for a message, from
    /// the conversation's; either one empty rejects the request with 429.
    /// WebSocket upgrades (`conversation` is `None`) count per address only,
    /// so that a reconnecting widget does not use up its conversation's messages.
    pub(crate) fn check_rate(&self, address: Option<IpAddr>, conversation: Option<&bot_core::ConversationId>) -> Result<(), WebError> {
        let limits = &self.inner.limits;
        if let (Some(limiter), Some(address)) = (&limits.addresses, address) {
            limiter.check(&rate_key(address)).map_err(|wait| WebError::RateLimited { scope: RateLimitScope::Address, retry_after: wait })?;
        }
        if let (Some(limiter), Some(conversation)) = (&limits.conversations, conversation) {
            limiter.check(conversation).map_err(|wait| WebError::RateLimited { scope: RateLimitScope::Conversation, retry_after: wait })?;
        }
        Ok(())
    }

    /// Returns the client address of a request from `peer`, using
    /// `X-Forwarded-For` only when `peer` is a trusted proxy.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let trusted = &self.inner.config.trusted_proxies;
        let untrusted_forward = headers.contains_key("x-forwarded-for") && !trusted.contains(peer);
        if untrusted_forward && !self.inner.limits.forwarded_for_seen.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %peer,
                "a request carries X-Forwarded-For from a peer that is not a trusted proxy, so rate limits count the peer's address; list the reverse proxy in web.trusted_proxies (LEPTON_WEB_TRUSTED_PROXIES) if it is one"
            );
        }
        client_ip::client_ip(peer, headers, trusted)
    }

    /// SHA-256 of the configured agent token, compared in constant time so that
    /// neither the token's bytes nor its length leak through timing.
    pub(crate) fn agent_token_digest(&self) -> Option<&[u8; 32]> {
        self.inner.agent_token_digest.as_ref()
    }
}

pub(crate) fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}
