//! Building the adapter that `settings.handoff.adapter` names, with its
//! secrets from the environment.

use std::sync::Arc;

use axum::Router;
use bot_core::bot::HandoffAdapterSettings;
use bot_core::{Engine, HandoffAdapter};

use crate::chatwoot::{self, ChatwootAdapter, ChatwootConfig};
use crate::secret::Secret;
use crate::webhook::{self, ClientError, WebhookAdapter, WebhookConfig};

/// The webhook adapter's signing secret, for both directions.
pub const WEBHOOK_SECRET_ENV: &str = "LEPTON_HANDOFF_WEBHOOK_SECRET";
/// The Chatwoot access token of an agent or agent bot with access to the inbox.
pub const CHATWOOT_API_TOKEN_ENV: &str = "LEPTON_CHATWOOT_API_TOKEN";
/// The token in the path of the Chatwoot callback URL.
pub const CHATWOOT_CALLBACK_TOKEN_ENV: &str = "LEPTON_CHATWOOT_CALLBACK_TOKEN";
/// Optional: the signing secret of a Chatwoot version that signs webhooks.
pub const CHATWOOT_WEBHOOK_SECRET_ENV: &str = "LEPTON_CHATWOOT_WEBHOOK_SECRET";

/// The shortest secret or callback token accepted, in bytes.
const MIN_SECRET_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("settings.handoff.adapter is `{adapter}` but {variable} is not set; set it to a random string of at least {MIN_SECRET_BYTES} characters")]
    MissingSecret { adapter: &'static str, variable: &'static str },
    #[error("{variable} is shorter than {MIN_SECRET_BYTES} characters; use a longer random string")]
    ShortSecret { variable: &'static str },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A configured helpdesk: the adapter to feed, and its callback routes.
pub struct Helpdesk {
    pub adapter: Arc<dyn HandoffAdapter>,
    callback: Callback,
}

enum Callback {
    Webhook(Secret),
    Chatwoot(ChatwootConfig),
}

impl Helpdesk {
    /// Builds the callback routes, to be merged into the web channel's router.
    pub fn router(&self, engine: Engine) -> Router {
        match &self.callback {
            Callback::Webhook(secret) => webhook::callback_router(engine, secret.clone()),
            Callback::Chatwoot(config) => chatwoot::callback_router(engine, config),
        }
    }

    /// Returns the callback route's path pattern, for the startup log.
    pub fn callback_path(&self) -> &'static str {
        match &self.callback {
            Callback::Webhook(_) => webhook::CALLBACK_PATH,
            Callback::Chatwoot(_) => chatwoot::CALLBACK_PATH,
        }
    }
}

/// Builds the helpdesk that `settings` names, reading secrets through `env`;
/// `None` for the built-in console alone.
pub fn from_settings(settings: &HandoffAdapterSettings, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Helpdesk>, ConfigError> {
    match settings {
        HandoffAdapterSettings::Console => Ok(None),
        HandoffAdapterSettings::Webhook { url } => {
            let secret = required(env, "webhook", WEBHOOK_SECRET_ENV)?;
            let adapter = WebhookAdapter::new(WebhookConfig::new(url.clone(), secret.clone()))?;
            Ok(Some(Helpdesk { adapter: Arc::new(adapter), callback: Callback::Webhook(secret) }))
        }
        HandoffAdapterSettings::Chatwoot { url, account_id, inbox_id } => {
            let config = ChatwootConfig {
                url: url.clone(),
                account_id: *account_id,
                inbox_id: *inbox_id,
                api_token: secret_from(env, "chatwoot", CHATWOOT_API_TOKEN_ENV, 1)?,
                callback_token: required(env, "chatwoot", CHATWOOT_CALLBACK_TOKEN_ENV)?,
                webhook_secret: env(CHATWOOT_WEBHOOK_SECRET_ENV).filter(|value| !value.is_empty()).map(Secret::new),
                timeout: chatwoot::REQUEST_TIMEOUT,
            };
            let adapter = ChatwootAdapter::new(&config)?;
            Ok(Some(Helpdesk { adapter: Arc::new(adapter), callback: Callback::Chatwoot(config) }))
        }
    }
}

fn required(env: &dyn Fn(&str) -> Option<String>, adapter: &'static str, variable: &'static str) -> Result<Secret, ConfigError> {
    secret_from(env, adapter, variable, MIN_SECRET_BYTES)
}

fn secret_from(env: &dyn Fn(&str) -> Option<String>, adapter: &'static str, variable: &'static str, min_bytes: usize) -> Result<Secret, ConfigError> {
    let value = env(variable).filter(|value| !value.is_empty()).ok_or(ConfigError::MissingSecret { adapter, variable })?;
    if value.len() < min_bytes {
        return Err(ConfigError::ShortSecret { variable });
    }
    Ok(Secret::new(value))
}
