//! Console sessions: sign-in, the signed session cookie, the CSRF token, and
//! the [`SignedIn`] and [`Admin`] extractors every console route uses.
//!
//! The cookie is stateless: `v1:NAME:ROLE:EXPIRES:GENERATION:MAC`, where MAC
//! is HMAC-SHA256 with the accounts file's secret over everything before it.
//! Any server reading the same accounts file accepts it. A new password or a
//! removed account changes the generation the cookie must match, which signs
//! the agent out everywhere. The CSRF token is an HMAC of the cookie, so it
//! needs no storage either.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bot_core::message::now_millis;
use bot_core::observe::{Observer, SignInOutcome};
use bot_core::AgentId;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::accounts::{hex, Accounts, Role};
use super::error::ConsoleError;
use crate::client_ip::{rate_key, ClientAddress};
use crate::input::{truncated, JsonBody};
use crate::state::WebState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "lepton_console";

/// The request header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

const COOKIE_VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// A signed-in agent, checked against the accounts file on every request.
/// For requests that change something it also checks the CSRF token and the
/// `Origin`.
#[derive(Clone)]
pub struct SignedIn {
    pub name: AgentId,
    /// The role in the accounts file now, not the one at sign-in.
    pub role: Role,
    pub csrf: String,
    /// The cookie value, for checking the session again later (the console WebSocket does).
    pub(crate) token: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// A signed-in admin; other agents get 403 `forbidden`.
#[derive(Clone, Debug)]
pub struct Admin(pub SignedIn);

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let token = session_cookie(&parts.headers).ok_or(ConsoleError::NotSignedIn)?;
        let accounts = state.console().accounts().current().await?.ok_or(ConsoleError::NotSignedIn)?;
        let signed_in = verify_session(&accounts, token, now_seconds()).ok_or(ConsoleError::NotSignedIn)?;

        if !is_safe(&parts.method) {
            check_origin(&parts.headers)?;
            let presented = parts.headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
            if !presented.is_some_and(|presented| verify_csrf(&accounts, token, presented)) {
                return Err(ConsoleError::CsrfInvalid);
            }
        }
        Ok(signed_in)
    }
}

impl FromRequestParts<WebState> for Admin {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if signed_in.role != Role::Admin {
            return Err(ConsoleError::Forbidden);
        }
        Ok(Self(signed_in))
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Rejects a request whose `Origin` names another site than the `Host` it was sent to.
pub(crate) fn check_origin(headers: &HeaderMap) -> Result<(), ConsoleError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    if authority.is_some_and(|authority| !host.is_empty() && authority.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    Err(ConsoleError::CrossOrigin { origin: truncated(origin) })
}

/// Returns the value of the session cookie, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(name, value)| (name == COOKIE_NAME).then_some(value))
}

pub(crate) fn now_seconds() -> u64 {
    now_millis() / 1000
}

fn mac(accounts: &Accounts, purpose: &str, message: &str) -> Option<HmacSha256> {
    let secret = accounts.secret_bytes()?;
    let mut mac = HmacSha256::new_from_slice(&secret).ok()?;
    mac.update(purpose.as_bytes());
    mac.update(b"\n");
    mac.update(message.as_bytes());
    Some(mac)
}

/// Builds the cookie value for `name`, valid until `expires` (Unix seconds).
pub fn sign_session(accounts: &Accounts, name: &AgentId, role: Role, generation: u64, expires: u64) -> Option<String> {
    let payload = format!("{COOKIE_VERSION}:{name}:{}:{expires}:{generation}", role.as_str());
    let tag = mac(accounts, "session", &payload)?.finalize().into_bytes();
    Some(format!("{payload}:{}", hex(&tag)))
}

/// Checks a cookie value's MAC, expiry and generation; `None` when any fails.
pub(crate) fn verify_session(accounts: &Accounts, token: &str, now: u64) -> Option<SignedIn> {
    let (payload, tag) = token.rsplit_once(':')?;
    let tag = unhex(tag)?;
    mac(accounts, "session", payload)?.verify_slice(&tag).ok()?;

    let mut fields = payload.split(':');
    let (version, name, _role, expires, generation) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    if version != COOKIE_VERSION || fields.next().is_some() {
        return None;
    }
    let expires: u64 = expires.parse().ok()?;
    let generation: u64 = generation.parse().ok()?;
    if expires <= now {
        return None;
    }
    let account = accounts.find(name).filter(|account| account.generation == generation)?;
    Some(SignedIn { name: account.name.clone(), role: account.role, csrf: csrf_token(accounts, token)?, token: token.to_owned() })
}

fn csrf_token(accounts: &Accounts, token: &str) -> Option<String> {
    Some(hex(&mac(accounts, "csrf", token)?.finalize().into_bytes()))
}

/// Compares the presented CSRF token with the session's in constant time.
fn verify_csrf(accounts: &Accounts, token: &str, presented: &str) -> bool {
    let Some(presented) = unhex(presented) else {
        return false;
    };
    mac(accounts, "csrf", token).is_some_and(|mac| mac.verify_slice(&presented).is_ok())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    text.as_bytes().chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect()
}

/// Body of `POST /console/api/session`.
#[derive(Deserialize)]
pub struct SignInRequest {
    pub name: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct AgentView {
    pub name: AgentId,
    pub role: Role,
}

/// The body of sign-in and `GET /console/api/me`.
#[derive(Debug, Serialize)]
pub struct SessionResponse {
    pub agent: AgentView,
    /// Send it as `X-CSRF-Token` with every request that changes something.
    pub csrf: String,
}

impl From<SignedIn> for SessionResponse {
    fn from(signed_in: SignedIn) -> Self {
        Self { agent: AgentView { name: signed_in.name, role: signed_in.role }, csrf: signed_in.csrf }
    }
}

/// `POST /console/api/session`: checks the password and sets the session cookie.
pub(crate) async fn sign_in(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignInRequest>,
) -> Result<Response, ConsoleError> {
    check_origin(&headers)?;
    let console = state.console();
    // Behind a reverse proxy listed in `trusted_proxies` this is the client's
    // address; behind another proxy every client shares the proxy's count.
    let address_key = address.map(|address| rate_key(address).to_string()).unwrap_or_default();
    let name_key = body.name.chars().take(super::accounts::MAX_NAME_CHARS + 1).collect::<String>();
    let address_attempt = match console.address_failures().start_attempt(&address_key) {
        Ok(started) => started,
        Err(retry_after) => {
            state.engine().observers().sign_in(SignInOutcome::RateLimited);
            return Err(ConsoleError::RateLimited { retry_after });
        }
    };
    if let Err(retry_after) = console.name_failures().start_attempt(&name_key) {
        console.address_failures().forgive(&address_key, address_attempt);
        state.engine().observers().sign_in(SignInOutcome::RateLimited);
        return Err(ConsoleError::RateLimited { retry_after });
    }

    let accounts = console.accounts().current().await?;
    let verified = match accounts {
        Some(accounts) => check_password(accounts, body.name, body.password).await,
        None => None,
    };
    let Some((accounts, name)) = verified else {
        tracing::info!(agent = %truncated(&name_key), "console sign-in failed");
        state.engine().observers().sign_in(SignInOutcome::Rejected);
        return Err(ConsoleError::InvalidCredentials);
    };
    console.address_failures().forgive(&address_key, address_attempt);
    console.name_failures().clear(&name_key);

    let account = accounts.find(&name).ok_or(ConsoleError::InvalidCredentials)?;
    let expires = now_seconds() + SESSION_LIFETIME.as_secs();
    let token = sign_session(&accounts, &account.name, account.role, account.generation, expires).ok_or(ConsoleError::InvalidCredentials)?;
    let signed_in = verify_session(&accounts, &token, now_seconds()).ok_or(ConsoleError::InvalidCredentials)?;
    tracing::info!(agent = %signed_in.name, role = signed_in.role.as_str(), "agent signed in to the console");
    state.engine().observers().sign_in(SignInOutcome::Succeeded);

    let cookie = format!("{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}{}", SESSION_LIFETIME.as_secs(), secure_suffix(&headers));
    Ok(session_response(StatusCode::OK, cookie, Some(signed_in.into())))
}

/// Verifies the password off the async threads; returns the accounts it was
/// checked against with the agent's name.
async fn check_password(accounts: Arc<Accounts>, name: String, password: String) -> Option<(Arc<Accounts>, String)> {
    let checked = tokio::task::spawn_blocking(move || {
        let matches = accounts.verify(&name, &password).is_some();
        matches.then_some((accounts, name))
    });
    checked.await.ok().flatten()
}

/// `GET /console/api/me`: the signed-in agent, or 401 `not_signed_in`.
pub(crate) async fn me(signed_in: SignedIn) -> Response {
    let mut response = Json(SessionResponse::from(signed_in)).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `DELETE /console/api/session`: clears the cookie in the browser. The cookie
/// itself stays valid until it expires; `lepton agent passwd` ends it everywhere.
pub(crate) async fn sign_out(signed_in: SignedIn, headers: HeaderMap) -> Response {
    tracing::info!(agent = %signed_in.name, "agent signed out of the console");
    let cookie = format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0{}", secure_suffix(&headers));
    session_response(StatusCode::NO_CONTENT, cookie, None)
}

fn session_response(status: StatusCode, cookie: String, body: Option<SessionResponse>) -> Response {
    let mut response = match body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(SET_COOKIE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `; Secure` when the browser reached this server over HTTPS, directly or through a proxy.
fn secure_suffix(headers: &HeaderMap) -> &'static str {
    let forwarded = headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok());
    let https = forwarded.is_some_and(|proto| proto.split(',').next().is_some_and(|first| first.trim().eq_ignore_ascii_case("https")));
    if https {
        "; Secure"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::accounts::AccountsError;

    fn accounts() -> Result<Accounts, AccountsError> {
        let mut accounts = Accounts::new()?;
        accounts.add("alice", Role::Agent, "password-1")?;
        Ok(accounts)
    }

    fn alice_token(accounts: &Accounts, expires: u64) -> Option<String> {
        let account = accounts.find("alice")?;
        sign_session(accounts, &account.name, account.role, account.generation, expires)
    }

    #[test]
    fn session_round_trips_until_it_expires() -> Result<(), AccountsError> {
        let accounts = accounts()?;
        let token = alice_token(&accounts, 1000).unwrap_or_default();

        assert_eq!(verify_session(&accounts, &token, 999).map(|s| s.name), Some(AgentId::new("alice")));
        assert!(verify_session(&accounts, &token, 1000).is_none());
        Ok(())
    }

    #[test]
    fn session_rejects_tampering_and_other_secrets() -> Result<(), AccountsError> {
        let accounts = accounts()?;
        let token = alice_token(&accounts, 1000).unwrap_or_default();
        let promoted = token.replace(":agent:", ":admin:");
        let other = Accounts::new()?;

        assert!(verify_session(&accounts, &promoted, 0).is_none());
        assert!(verify_session(&other, &token, 0).is_none());
        Ok(())
    }

    #[test]
    fn new_password_ends_old_sessions() -> Result<(), AccountsError> {
        let mut accounts = accounts()?;
        let token = alice_token(&accounts, 1000).unwrap_or_default();

        accounts.set_password("alice", "password-2")?;

        assert!(verify_session(&accounts, &token, 0).is_none());
        Ok(())
    }

    #[test]
    fn csrf_token_is_tied_to_the_session() -> Result<(), AccountsError> {
        let accounts = accounts()?;
        let token = alice_token(&accounts, 1000).unwrap_or_default();
        let other = alice_token(&accounts, 2000).unwrap_or_default();
        let csrf = csrf_token(&accounts, &token).unwrap_or_default();

        assert!(verify_csrf(&accounts, &token, &csrf));
        assert!(!verify_csrf(&accounts, &other, &csrf));
        assert!(!verify_csrf(&accounts, &token, "zz"));
        Ok(())
    }

    #[test]
    fn session_cookie_finds_the_console_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; lepton_console=v1:x; b=2"));
        assert_eq!(session_cookie(&headers), Some("v1:x"));
    }
}
