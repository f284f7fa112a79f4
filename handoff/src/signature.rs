//! HMAC-SHA256 request signatures over `timestamp + "." + body`, with the
//! timestamp window and replay check that the callback routes apply.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// The header with the request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-lepton-timestamp";
/// The header with `sha256=` and the lowercase hex HMAC-SHA256 of `timestamp.body`.
pub const SIGNATURE_HEADER: &str = "x-lepton-signature";

/// How far a request's timestamp may be from this server's clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// Signatures remembered for the replay check before new requests are rejected.
const MAX_REMEMBERED: usize = 100_000;

/// The reason a signed request was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the {header} header is missing")]
    MissingHeader { header: &'static str },
    #[error("the timestamp header is not a whole number of seconds since the Unix epoch")]
    InvalidTimestamp,
    #[error("the request timestamp is {skew_secs} s away from the server's clock; at most {MAX_CLOCK_SKEW_SECS} s is accepted")]
    StaleTimestamp { skew_secs: u64 },
    #[error("the signature does not match the body and timestamp; sign `timestamp.body` with HMAC-SHA256 and the shared secret")]
    Mismatch,
    #[error("this signature was already used; sign each request anew")]
    Replayed,
    #[error("too many signed requests in the last {MAX_CLOCK_SKEW_SECS} s; retry later")]
    TooMany,
}

/// Returns the signature header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let mac = mac_of(secret, timestamp.to_string().as_bytes(), body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac_of(secret: &Secret, timestamp: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks signed requests: signature, clock skew, and that no signature is
/// used twice within the window. One per callback route.
///
/// NOTE: the replay memory is per server process. With several servers behind
/// a load balancer, a replay sent to another server within the window passes
/// this check. A shared store for used signatures would close that gap.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Signature digest → the Unix time after which it may be forgotten.
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `signature` (a header value, `sha256=<hex>`) over `timestamp`
    /// and `body`, compared in constant time, then records it against replays.
    pub fn verify(&self, secret: &Secret, timestamp: Option<&str>, signature: Option<&str>, body: &[u8], now_secs: u64) -> Result<(), SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader { header: TIMESTAMP_HEADER })?.trim();
        let signature = signature.ok_or(SignatureError::MissingHeader { header: SIGNATURE_HEADER })?.trim();
        let sent_at: u64 = timestamp.parse().map_err(|_| SignatureError::InvalidTimestamp)?;
        let skew_secs = now_secs.abs_diff(sent_at);
        if skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(SignatureError::StaleTimestamp { skew_secs });
        }

        let digest = signature.strip_prefix("sha256=").and_then(|hex| hex::decode(hex).ok()).ok_or(SignatureError::Mismatch)?;
        mac_of(secret, timestamp.as_bytes(), body).verify_slice(&digest).map_err(|_| SignatureError::Mismatch)?;

        let key: [u8; 32] = digest.try_into().map_err(|_| SignatureError::Mismatch)?;
        self.remember(key, sent_at + MAX_CLOCK_SKEW_SECS, now_secs)
    }

    fn remember(&self, key: [u8; 32], forget_after: u64, now_secs: u64) -> Result<(), SignatureError> {
        let mut seen = self.seen.lock().expect("signature verifier poisoned");
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, expires| *expires >= now_secs);
        }
        if seen.contains_key(&key) {
            return Err(SignatureError::Replayed);
        }
        if seen.len() >= MAX_REMEMBERED {
            return Err(SignatureError::TooMany);
        }
        seen.insert(key, forget_after);
        Ok(())
    }
}

/// Returns the current Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("s3cret")
    }

    #[test]
    fn signed_request_verifies_once() {
        let verifier = Verifier::new();
        let signature = sign(&secret(), 1_000, b"{}");

        let first = verifier.verify(&secret(), Some("1000"), Some(&signature), b"{}", 1_010);
        let second = verifier.verify(&secret(), Some("1000"), Some(&signature), b"{}", 1_020);

        assert_eq!(first, Ok(()));
        assert_eq!(second, Err(SignatureError::Replayed));
    }

    #[test]
    fn changed_body_is_a_mismatch() {
        let signature = sign(&secret(), 1_000, b"{}");
        let result = Verifier::new().verify(&secret(), Some("1000"), Some(&signature), b"{ }", 1_000);
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn timestamps_outside_window_are_stale() {
        let verifier = Verifier::new();
        let old = sign(&secret(), 1_000, b"{}");
        let future = sign(&secret(), 2_000, b"{}");

        let late = verifier.verify(&secret(), Some("1000"), Some(&old), b"{}", 1_301);
        let early = verifier.verify(&secret(), Some("2000"), Some(&future), b"{}", 1_699);

        assert_eq!(late, Err(SignatureError::StaleTimestamp { skew_secs: 301 }));
        assert_eq!(early, Err(SignatureError::StaleTimestamp { skew_secs: 301 }));
    }

    #[test]
    fn missing_prefix_is_a_mismatch() {
        let signature = sign(&secret(), 1_000, b"{}");
        let bare = signature.trim_start_matches("sha256=");
        let result = Verifier::new().verify(&secret(), Some("1000"), Some(bare), b"{}", 1_000);
        assert_eq!(result, Err(SignatureError::Mismatch));
    }
}
