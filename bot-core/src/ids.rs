//! Typed identifiers. Each wraps a string so that a conversation id cannot be
//! passed where an agent id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// A conversation, unique across channels (channels prefix their own ids).
    ConversationId
);
string_id!(
    /// A support agent who can claim conversations.
    AgentId
);

impl AgentId {
    /// Returns the name that customers read in notices such as "{agent} is now
    /// helping you". An id `PREFIX:NAME` with a prefix of lowercase ASCII
    /// letters comes from a helpdesk adapter (`chatwoot:John_Smith`,
    /// `webhook:alice`) and shows as NAME with each `_` as a space, because the
    /// adapters write spaces in agent names as `_`. Other ids, such as console
    /// agents' names, show unchanged, and so does an id whose NAME would be blank.
    pub fn display_name(&self) -> String {
        let Some((prefix, name)) = self.0.split_once(':') else {
            return self.0.clone();
        };
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_lowercase()) {
            return self.0.clone();
        }
        let spaced = name.replace('_', " ");
        let trimmed = spaced.trim();
        if trimmed.is_empty() {
            return self.0.clone();
        }
        trimmed.to_owned()
    }
}

string_id!(
    /// A flow defined in the bot's YAML.
    FlowId
);
string_id!(
    /// An intent defined in the bot's YAML.
    IntentId
);
string_id!(
    /// A response (a set of per-language message variants) defined in the YAML.
    ResponseId
);
string_id!(
    /// A slot: a named value collected from the customer or an HTTP action.
    SlotName
);
string_id!(
    /// A step of a flow that other steps can jump to.
    StepId
);
string_id!(
    /// The sender's own id for a message, used to drop a retried send.
    ClientMessageId
);
string_id!(
    /// The channel a message came in on: `web`, `telegram`, `discord`, ...
    Channel
);
string_id!(
    /// The person or account that sent a message, as the channel knows them.
    SenderId
);

/// A language code such as `en` or `zh`: the primary subtag of a BCP 47 tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lang(String);

impl Lang {
    /// Normalises a locale tag (`zh-CN`, `en_US`, `ZH`) to its lowercase primary subtag.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        let valid = (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_lowercase());
        valid.then_some(Self(primary))
    }

    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Lang {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}
