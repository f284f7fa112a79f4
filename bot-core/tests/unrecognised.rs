//! The engine's list of unrecognised customer messages, on a small bot built in
//! code with an exact-match classifier and the in-memory store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bot_core::action::NoHttp;
use bot_core::bot::{Intent, IntentAction, Response, ResponseVariant};
use bot_core::knowledge::NoKnowledge;
use bot_core::store::{StoreError, UnrecognisedMessage};
use bot_core::{
    BotDefinition, Classification, Classifier, ConversationId, Engine, EngineParts, Event, InboundMessage, IntentId, Lang, MemoryStore,
    ScoredIntent, SessionStore, Timestamp, Versioned,
};

/// Classifies a message as the intent whose example it equals, with confidence 1.
struct ExactMatch(HashMap<String, IntentId>);

impl Classifier for ExactMatch {
    fn classify(&self, text: &str) -> Classification {
        let ranking = self.0.get(text).map(|intent| vec![ScoredIntent { intent: intent.clone(), confidence: 1.0 }]);
        Classification { ranking: ranking.unwrap_or_default() }
    }
}

fn bot() -> BotDefinition {
    let mut bot = BotDefinition::default();
    bot.settings.languages = vec![Lang::new("en"), Lang::new("zh")];
    let examples = BTreeMap::from([(Lang::new("en"), vec!["hello".to_owned()]), (Lang::new("zh"), vec!["你好".to_owned()])]);
    bot.intents.insert("greet".into(), Intent { examples, action: IntentAction::Respond("greet".into()), interrupts: false });
    let variant = |text: &str| vec![ResponseVariant { text: text.to_owned(), buttons: Vec::new() }];
    let variants = BTreeMap::from([(Lang::new("en"), variant("Hello!")), (Lang::new("zh"), variant("你好！"))]);
    bot.responses.insert("greet".into(), Response { variants });
    bot
}

fn engine_with(store: Arc<dyn SessionStore>) -> Engine {
    let bot = bot();
    let examples = bot.training_examples().into_iter().collect();
    let parts = EngineParts { classifier: Arc::new(ExactMatch(examples)), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store };
    Engine::new(Arc::new(bot), parts)
}

async fn say(engine: &Engine, conversation: &str, text: &str) -> anyhow::Result<Vec<Event>> {
    Ok(engine.handle(InboundMessage::text(conversation, "test", text)).await?.events)
}

#[tokio::test]
async fn fallback_turn_is_recorded() -> anyhow::Result<()> {
    let engine = engine_with(Arc::new(MemoryStore::new()));

    say(&engine, "c1", "hello").await?;
    let events = say(&engine, "c1", "  能开发票吗  ").await?;
    say(&engine, "c2", "你好").await?;
    let listed = engine.unrecognised(10).await?;

    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].conversation_id, ConversationId::new("c1"));
    assert_eq!(listed[0].seq, events[0].seq);
    assert_eq!(listed[0].text, "能开发票吗");
    assert_eq!(listed[0].lang, Lang::new("zh"));
    assert_eq!(listed[0].channel.as_str(), "test");
    assert_eq!(listed[0].at, events[0].at);
    Ok(())
}

#[tokio::test]
async fn matched_turns_and_payloads_are_not_recorded() -> anyhow::Result<()> {
    let engine = engine_with(Arc::new(MemoryStore::new()));

    say(&engine, "c1", "hello").await?;
    say(&engine, "c1", "/no_such_intent").await?;

    assert_eq!(engine.unrecognised(10).await?, Vec::new());
    Ok(())
}

#[tokio::test]
async fn dismissed_message_leaves_the_list() -> anyhow::Result<()> {
    let engine = engine_with(Arc::new(MemoryStore::new()));
    let first = say(&engine, "c1", "blorp").await?;
    say(&engine, "c1", "zork").await?;

    let dismissed = engine.dismiss_unrecognised(&ConversationId::new("c1"), first[0].seq).await?;
    let listed: Vec<String> = engine.unrecognised(10).await?.into_iter().map(|m| m.text).collect();

    assert!(dismissed);
    assert_eq!(listed, ["zork"]);
    Ok(())
}

/// A memory store whose unrecognised list always fails.
#[derive(Default)]
struct FailingList(MemoryStore);

#[async_trait]
impl SessionStore for FailingList {
    async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError> {
        self.0.load(id).await
    }
    async fn save(&self, session: &bot_core::Session, expected: u64, ttl: std::time::Duration) -> Result<u64, StoreError> {
        self.0.save(session, expected, ttl).await
    }
    async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: std::time::Duration) -> Result<(), StoreError> {
        self.0.append_events(id, events, ttl).await
    }
    async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.0.events(id, after_seq, limit).await
    }
    async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError> {
        self.0.set_waiting(id, since).await
    }
    async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError> {
        self.0.waiting().await
    }
    async fn record_unrecognised(&self, _message: &UnrecognisedMessage) -> Result<(), StoreError> {
        Err(StoreError::Unavailable { reason: "test".to_owned() })
    }
    async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
        self.0.unrecognised(limit).await
    }
    async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
        self.0.dismiss_unrecognised(id, seq).await
    }
}

#[tokio::test]
async fn failed_record_keeps_the_turn() -> anyhow::Result<()> {
    let store = Arc::new(FailingList::default());
    let engine = engine_with(store.clone());

    let events = say(&engine, "c1", "blorp").await?;
    let stored = store.events(&ConversationId::new("c1"), 0, 10).await?;

    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(stored, events);
    Ok(())
}
