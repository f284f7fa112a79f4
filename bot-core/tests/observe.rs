//! What the engine reports to its observers: each turn's kind and intent,
//! classifications, claims with their waiting time, and the recent stats.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_core::action::NoHttp;
use bot_core::bot::{Intent, IntentAction, Response, ResponseVariant};
use bot_core::knowledge::NoKnowledge;
use bot_core::observe::{Observer, TurnKind, TurnReport};
use bot_core::{AgentId, BotDefinition, Channel, Classification, Classifier, Engine, EngineParts, InboundMessage, IntentId, Lang, MemoryStore, ScoredIntent};

/// Classifies a message as the intent whose example it equals, with confidence 0.9.
struct ExactMatch(HashMap<String, IntentId>);

impl Classifier for ExactMatch {
    fn classify(&self, text: &str) -> Classification {
        let ranking = self.0.get(text).map(|intent| vec![ScoredIntent { intent: intent.clone(), confidence: 0.9 }]);
        Classification { ranking: ranking.unwrap_or_default() }
    }
}

#[derive(Default)]
struct Recorder {
    turns: Mutex<Vec<(TurnKind, Option<String>, String)>>,
    confidences: Mutex<Vec<Option<f32>>>,
    claims: Mutex<Vec<Duration>>,
}

impl Observer for Recorder {
    fn turn_finished(&self, turn: &TurnReport<'_>) {
        let intent = turn.intent.map(|intent| intent.as_str().to_owned());
        self.turns.lock().expect("lock").push((turn.kind, intent, turn.channel.as_str().to_owned()));
    }

    fn classified(&self, _elapsed: Duration, top_confidence: Option<f32>) {
        self.confidences.lock().expect("lock").push(top_confidence);
    }

    fn agent_claimed(&self, _channel: &Channel, waited: Duration) {
        self.claims.lock().expect("lock").push(waited);
    }
}

fn bot() -> BotDefinition {
    let mut bot = BotDefinition::default();
    bot.settings.languages = vec![Lang::new("en")];
    bot.settings.handoff.after_fallbacks = 2;
    let examples = BTreeMap::from([(Lang::new("en"), vec!["hello".to_owned()])]);
    bot.intents.insert("greet".into(), Intent { examples, action: IntentAction::Respond("greet".into()), interrupts: false });
    let variants = vec![ResponseVariant { text: "Hello!".to_owned(), buttons: Vec::new() }];
    bot.responses.insert("greet".into(), Response { variants: BTreeMap::from([(Lang::new("en"), variants)]) });
    bot
}

fn engine() -> Engine {
    let bot = bot();
    let examples = bot.training_examples().into_iter().collect();
    let parts = EngineParts { classifier: Arc::new(ExactMatch(examples)), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store: Arc::new(MemoryStore::new()) };
    Engine::new(Arc::new(bot), parts)
}

#[tokio::test]
async fn observer_receives_turn_kinds() -> anyhow::Result<()> {
    let engine = engine();
    let recorder = Arc::new(Recorder::default());
    engine.add_observer(recorder.clone());

    engine.handle(InboundMessage::text("web:1", "web", "hello")).await?;
    engine.handle(InboundMessage::text("web:1", "web", "qwerty asdf")).await?;
    engine.handle(InboundMessage::text("web:1", "web", "zxcv uiop")).await?;
    engine.handle(InboundMessage::text("web:1", "web", "still there?")).await?;

    let turns = recorder.turns.lock().expect("lock").clone();
    let kinds: Vec<TurnKind> = turns.iter().map(|turn| turn.0).collect();
    assert_eq!(kinds, vec![TurnKind::Intent, TurnKind::Fallback, TurnKind::Handoff, TurnKind::Human]);
    assert_eq!(turns[0].1.as_deref(), Some("greet"));
    assert_eq!(turns[0].2, "web");
    let confidences = recorder.confidences.lock().expect("lock").clone();
    assert_eq!(confidences, vec![Some(0.9), None, None]);
    Ok(())
}

#[tokio::test]
async fn observer_receives_claim_wait() -> anyhow::Result<()> {
    let engine = engine();
    let recorder = Arc::new(Recorder::default());
    engine.add_observer(recorder.clone());
    engine.handle(InboundMessage::text("web:2", "web", "nothing matches this")).await?;
    engine.handle(InboundMessage::text("web:2", "web", "nor this one")).await?;

    engine.claim(&"web:2".into(), &AgentId::new("alice")).await?;
    engine.claim(&"web:2".into(), &AgentId::new("alice")).await?;

    assert_eq!(recorder.claims.lock().expect("lock").len(), 1);
    Ok(())
}

#[tokio::test]
async fn recent_stats_count_turns() -> anyhow::Result<()> {
    let engine = engine();

    engine.handle(InboundMessage::text("web:3", "web", "hello")).await?;
    engine.handle(InboundMessage::text("web:3", "web", "hello")).await?;
    engine.handle(InboundMessage::text("web:3", "web", "what is this")).await?;

    let stats = engine.recent_stats(5);
    let turns: u64 = stats.buckets.iter().map(|bucket| bucket.turns).sum();
    let fallbacks: u64 = stats.buckets.iter().map(|bucket| bucket.fallbacks).sum();
    assert_eq!(turns, 3);
    assert_eq!(fallbacks, 1);
    assert_eq!(stats.top_intents, vec![(IntentId::new("greet"), 2)]);
    Ok(())
}

#[tokio::test]
async fn turn_over_cap_reported_busy() -> anyhow::Result<()> {
    let engine = engine();
    engine.set_active_limit(Some(bot_core::engine::ActiveLimit { max_conversations: 1, idle_window: Duration::from_secs(60) }));
    let recorder = Arc::new(Recorder::default());
    engine.add_observer(recorder.clone());

    engine.handle(InboundMessage::text("web:4", "web", "hello")).await?;
    let rejected = engine.handle(InboundMessage::text("web:5", "web", "hello")).await;

    let kinds: Vec<TurnKind> = recorder.turns.lock().expect("lock").iter().map(|turn| turn.0).collect();
    assert!(rejected.is_err(), "the second conversation was admitted over the cap");
    assert_eq!(kinds, vec![TurnKind::Intent, TurnKind::Busy]);
    Ok(())
}
