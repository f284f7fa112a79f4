//! `GET /console/api/admin/stats`: this server process's turn counts of the
//! last six hours in five-minute buckets, the intents matched most often, and
//! the unrecognised questions asked most often, for the console's admin page.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use bot_core::observe::StatsBucket;
use bot_core::store::MAX_UNRECOGNISED;
use bot_core::{Lang, Timestamp};
use serde::Serialize;
use tracing::instrument;

use super::error::ConsoleError;
use super::session::Admin;
use crate::state::WebState;

/// How many intents and unrecognised questions the response lists.
const TOP: usize = 10;

#[derive(Debug, Serialize)]
pub(crate) struct StatsResponse {
    bucket_seconds: u64,
    /// Oldest first, one per bucket with no gaps; the last one is still filling.
    buckets: Vec<StatsBucket>,
    top_intents: Vec<IntentCount>,
    top_unrecognised: Vec<UnrecognisedCount>,
}

#[derive(Debug, Serialize)]
struct IntentCount {
    intent: String,
    turns: u64,
}

/// Unrecognised messages with the same text, compared without case and surrounding space.
#[derive(Debug, Serialize)]
struct UnrecognisedCount {
    /// The text of the newest of them.
    text: String,
    lang: Lang,
    count: u64,
    last_at: Timestamp,
}

#[instrument(skip_all, fields(agent = %admin.0.name))]
pub(crate) async fn stats(State(state): State<WebState>, admin: Admin) -> Result<Json<StatsResponse>, ConsoleError> {
    let engine = state.engine();
    let snapshot = engine.recent_stats(TOP);
    let since = snapshot.buckets.first().map_or(0, |bucket| bucket.start);

    let messages = engine.unrecognised(MAX_UNRECOGNISED).await.map_err(|source| crate::WebError::Engine { conversation_id: None, source })?;
    let top_unrecognised = count_unrecognised(messages.into_iter().filter(|message| message.at >= since).map(|message| (message.text, message.lang, message.at)));

    let top_intents = snapshot.top_intents.into_iter().map(|(intent, turns)| IntentCount { intent: intent.as_str().to_owned(), turns }).collect();
    Ok(Json(StatsResponse { bucket_seconds: snapshot.bucket_seconds, buckets: snapshot.buckets, top_intents, top_unrecognised }))
}

/// Groups messages (newest first) by their text without case and surrounding
/// space, and returns the [`TOP`] groups with the most messages.
fn count_unrecognised(messages: impl Iterator<Item = (String, Lang, Timestamp)>) -> Vec<UnrecognisedCount> {
    let mut groups: HashMap<String, UnrecognisedCount> = HashMap::new();
    for (text, lang, at) in messages {
        let key = text.trim().to_lowercase();
        let group = groups.entry(key).or_insert_with(|| UnrecognisedCount { text: text.clone(), lang: lang.clone(), count: 0, last_at: at });
        group.count += 1;
        if at > group.last_at {
            *group = UnrecognisedCount { text, lang, count: group.count, last_at: at };
        }
    }
    let mut counts: Vec<UnrecognisedCount> = groups.into_values().collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_at.cmp(&a.last_at)));
    counts.truncate(TOP);
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrecognised_grouped_by_text() {
        let messages = vec![
            ("Do you ship to Mars?".to_owned(), Lang::new("en"), 30),
            ("do you ship to mars? ".to_owned(), Lang::new("en"), 20),
            ("火星发货吗".to_owned(), Lang::new("zh"), 10),
        ];

        let counts = count_unrecognised(messages.into_iter());

        assert_eq!(counts.len(), 2);
        assert_eq!(counts[0].count, 2);
        assert_eq!(counts[0].text, "Do you ship to Mars?");
        assert_eq!(counts[0].last_at, 30);
        assert_eq!(counts[1].text, "火星发货吗");
    }
}
