//! Pick lists for the console: the agents (for transfers), canned
//! replies (the bot's own responses) and the intents (for learning).

use axum::extract::State;
use axum::Json;
use bot_core::bot::KNOWLEDGE_INTENT;
use bot_core::engine::RESERVED_RESPONSES;
use bot_core::text::interpolate;
use bot_core::{IntentId, Lang};
use serde::{Deserialize, Serialize};

use super::accounts::Role;
use super::error::ConsoleError;
use super::session::SignedIn;
use crate::input::{self, QueryParams};
use crate::state::WebState;

#[derive(Debug, Serialize)]
pub struct AgentEntry {
    pub name: bot_core::AgentId,
    pub role: Role,
}

#[derive(Debug, Serialize)]
pub struct AgentsResponse {
    pub agents: Vec<AgentEntry>,
}

/// `GET /console/api/agents`: every account, for the transfer menu.
pub(crate) async fn agents(State(state): State<WebState>, _agent: SignedIn) -> Result<Json<AgentsResponse>, ConsoleError> {
    let accounts = state.console().accounts().current().await?;
    let agents = accounts
        .iter()
        .flat_map(|accounts| accounts.agents())
        .map(|account| AgentEntry { name: account.name.clone(), role: account.role })
        .collect();
    Ok(Json(AgentsResponse { agents }))
}

/// Query of `GET /console/api/canned`.
#[derive(Debug, Deserialize)]
pub struct CannedQuery {
    #[serde(default)]
    pub lang: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CannedReply {
    /// The response's name in the bot's YAML.
    pub name: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct CannedResponse {
    pub lang: Lang,
    pub replies: Vec<CannedReply>,
}

/// `GET /console/api/canned?lang=en`: every variant of the bot's responses in
/// that language (the bot's default language for responses without one), with
/// the bot's variables filled in and `{slot}` placeholders left for the agent.
/// A language that the bot does not list in `settings.languages` gets the
/// default language, and `lang` in the response names the language used.
/// The engine's reserved responses (fallback, handoff notices) are left out.
pub(crate) async fn canned(State(state): State<WebState>, _agent: SignedIn, QueryParams(query): QueryParams<CannedQuery>) -> Result<Json<CannedResponse>, ConsoleError> {
    let bot = state.engine().bot();
    let default = bot.settings.default_language();
    let lang = match query.lang.as_deref() {
        Some(raw) => Lang::from_tag(raw).ok_or_else(|| ConsoleError::InvalidLang { lang: input::truncated(raw) })?,
        None => default.clone(),
    };
    let lang = if bot.settings.languages.contains(&lang) { lang } else { default.clone() };
    let variables = &bot.settings.variables;

    let mut replies = Vec::new();
    for (name, response) in &bot.responses {
        if RESERVED_RESPONSES.contains(&name.as_str()) {
            continue;
        }
        let Some(variants) = response.variants.get(&lang).or_else(|| response.variants.get(&default)) else {
            continue;
        };
        for variant in variants {
            let text = interpolate(&variant.text, |key| variables.get(key).cloned());
            replies.push(CannedReply { name: name.to_string(), text });
        }
    }
    Ok(Json(CannedResponse { lang, replies }))
}

#[derive(Debug, Serialize)]
pub struct IntentSummary {
    pub name: IntentId,
    /// Examples in every language.
    pub examples: usize,
}

#[derive(Debug, Serialize)]
pub struct IntentsResponse {
    pub intents: Vec<IntentSummary>,
}

/// `GET /console/api/intents`: the bot's intents, for picking the intent a
/// customer message should have matched.
pub(crate) async fn intents(State(state): State<WebState>, _agent: SignedIn) -> Json<IntentsResponse> {
    let bot = state.engine().bot();
    let intents = bot
        .intents
        .iter()
        .filter(|(name, _)| name.as_str() != KNOWLEDGE_INTENT)
        .map(|(name, intent)| IntentSummary { name: name.clone(), examples: intent.examples.values().map(Vec::len).sum() })
        .collect();
    Json(IntentsResponse { intents })
}
