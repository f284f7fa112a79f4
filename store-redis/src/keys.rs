//! The names of the store's Redis keys and its pub/sub channel.
//!
//! A conversation's keys are `{prefix}:{<conversation id>}:session`,
//! `...:transcript` and `...:lease`. The braces make the id a Redis Cluster
//! hash tag, so the keys of one conversation share a hash slot and one Lua
//! script may touch them all. An id that contains a brace, or is empty, cannot
//! be a hash tag: its keys are `{prefix}:digest:{<SHA-256 of the id in hex>}:...`
//! instead, which no plain id's keys can equal because those continue with
//! `{` after the prefix.

use bot_core::ConversationId;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    pub fn session(&self, id: &ConversationId) -> String {
        self.conversation_key(id, "session")
    }

    pub fn transcript(&self, id: &ConversationId) -> String {
        self.conversation_key(id, "transcript")
    }

    pub fn lease(&self, id: &ConversationId) -> String {
        self.conversation_key(id, "lease")
    }

    /// Returns the key of the sorted set of conversations waiting for an
    /// agent, scored by the time they started waiting in milliseconds.
    pub fn waiting(&self) -> String {
        format!("{}:waiting", self.prefix)
    }

    /// Returns the key of the list of unrecognised customer messages, newest
    /// first. Its scripts touch only this one key, so it needs no hash tag in
    /// a Redis Cluster.
    pub fn unrecognised(&self) -> String {
        format!("{}:unrecognised", self.prefix)
    }

    /// Returns the pub/sub channel of committed transcript events.
    pub fn events_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    fn conversation_key(&self, id: &ConversationId, kind: &str) -> String {
        let id = id.as_str();
        if id.is_empty() || id.contains(['{', '}']) {
            let digest: String = Sha256::digest(id.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
            return format!("{}:digest:{{{digest}}}:{kind}", self.prefix);
        }
        format!("{}:{{{id}}}:{kind}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_plain_id_is_hash_tag() {
        let keys = Keys::new("lepton");
        assert_eq!(keys.session(&ConversationId::new("web:42")), "lepton:{web:42}:session");
    }

    #[test]
    fn keys_braced_id_uses_digest() {
        let keys = Keys::new("lepton");
        let key = keys.transcript(&ConversationId::new("web:{x}"));
        let tag = key.strip_prefix("lepton:digest:{").and_then(|rest| rest.strip_suffix("}:transcript"));
        assert_eq!(tag.map(str::len), Some(64), "key {key}");
    }

    #[test]
    fn keys_chinese_id_kept() {
        let keys = Keys::new("lepton");
        assert_eq!(keys.lease(&ConversationId::new("web:会话")), "lepton:{web:会话}:lease");
    }
}
