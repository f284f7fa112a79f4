//! The cap on active conversations: new conversations past it get the busy
//! reply while conversations already active go on.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use bot_core::action::NoHttp;
use bot_core::engine::ActiveLimit;
use bot_core::knowledge::NoKnowledge;
use bot_core::{BotDefinition, Classification, Classifier, Engine, EngineError, EngineParts, InboundMessage, Lang, ManualClock, MemoryStore};

/// Recognises nothing, so every message gets the fallback reply.
struct NoIntents;

impl Classifier for NoIntents {
    fn classify(&self, _text: &str) -> Classification {
        Classification { ranking: Vec::new() }
    }
}

const WINDOW: Duration = Duration::from_secs(60);

/// Builds an engine that serves at most `max_conversations` active conversations.
fn engine(max_conversations: usize) -> (Engine, Arc<ManualClock>) {
    let mut bot = BotDefinition::default();
    bot.settings.languages = vec![Lang::new("en"), Lang::new("zh")];
    let parts = EngineParts { classifier: Arc::new(NoIntents), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store: Arc::new(MemoryStore::new()) };
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::new(Arc::new(bot), parts).with_clock(clock.clone());
    engine.set_active_limit(Some(ActiveLimit { max_conversations, idle_window: WINDOW }));
    (engine, clock)
}

fn message(conversation: &str, text: &str) -> InboundMessage {
    InboundMessage::text(format!("web:{conversation}"), "web", text)
}

#[tokio::test]
async fn new_conversation_past_the_cap_is_rejected() -> Result<()> {
    let (engine, _clock) = engine(2);
    engine.handle(message("a", "hello")).await?;
    engine.handle(message("b", "hello")).await?;

    let result = engine.handle(message("c", "hello")).await;

    let Err(EngineError::TooManyConversations { max_conversations, retry_after, .. }) = result else {
        bail!("expected TooManyConversations, got {result:?}");
    };
    assert_eq!(max_conversations, 2);
    assert_eq!(retry_after, WINDOW);
    Ok(())
}

#[tokio::test]
async fn active_conversation_goes_on_at_the_cap() -> Result<()> {
    let (engine, clock) = engine(1);
    engine.handle(message("a", "hello")).await?;
    assert!(engine.handle(message("b", "hello")).await.is_err());

    clock.advance(WINDOW / 2);
    let outcome = engine.handle(message("a", "still there?")).await?;

    assert_eq!(outcome.events.len(), 2, "the customer's message and the fallback reply");
    assert_eq!(engine.active_conversations(), 1);
    Ok(())
}

#[tokio::test]
async fn rejected_message_stores_nothing() -> Result<()> {
    let (engine, _clock) = engine(1);
    engine.handle(message("a", "hello")).await?;

    let _ = engine.handle(message("b", "hello")).await;

    assert!(engine.events(&"web:b".into(), 0, 10).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn place_frees_after_the_idle_window() -> Result<()> {
    let (engine, clock) = engine(1);
    engine.handle(message("a", "hello")).await?;

    clock.advance(WINDOW);
    let outcome = engine.handle(message("b", "hello")).await;

    assert!(outcome.is_ok(), "{outcome:?}");
    Ok(())
}

#[tokio::test]
async fn failure_reply_is_busy_in_the_customer_language() -> Result<()> {
    let (engine, _clock) = engine(1);
    engine.handle(message("a", "hello")).await?;
    let chinese = message("b", "你好，我的订单呢");
    let Err(error) = engine.handle(chinese.clone()).await else { bail!("b was admitted past the cap") };

    let reply_zh = engine.failure_reply(&chinese, &error);
    let reply_en = engine.failure_reply(&message("c", "where is my order"), &error);

    assert!(reply_zh.text.contains("客户较多"), "{}", reply_zh.text);
    assert!(reply_en.text.contains("helping a lot of customers"), "{}", reply_en.text);
    Ok(())
}

#[tokio::test]
async fn no_cap_admits_every_conversation() -> Result<()> {
    let (engine, _clock) = engine(1);
    engine.set_active_limit(None);

    for index in 0..20 {
        engine.handle(message(&format!("free-{index}"), "hello")).await?;
    }

    assert_eq!(engine.active_conversations(), 0);
    Ok(())
}
