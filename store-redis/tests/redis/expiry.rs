//! Session expiry through the engine on the Redis store, with a clock the test
//! moves: a customer who answers a form every 40 s keeps it under a 60 s TTL,
//! one who comes back after 61 s gets the expiry notice, and every turn
//! refreshes the keys' TTL in Redis.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bot_core::action::NoHttp;
use bot_core::bot::{AskStep, Flow, Intent, IntentAction, Response, ResponseVariant, SlotDefinition, SlotKind, Step, StepKind};
use bot_core::knowledge::NoKnowledge;
use bot_core::{BotDefinition, Classification, Classifier, Engine, EngineParts, InboundMessage, IntentId, Lang, ManualClock, ScoredIntent};
use lepton_redis::RedisStore;

use crate::server::TestRedis;

/// Classifies a message as the intent whose example it equals.
struct ExactMatch(HashMap<String, IntentId>);

impl Classifier for ExactMatch {
    fn classify(&self, text: &str) -> Classification {
        let ranking = self.0.get(text).map(|intent| vec![ScoredIntent { intent: intent.clone(), confidence: 1.0 }]);
        Classification { ranking: ranking.unwrap_or_default() }
    }
}

fn response(text: &str) -> Response {
    let variant = vec![ResponseVariant { text: text.to_owned(), buttons: Vec::new() }];
    Response { variants: BTreeMap::from([(Lang::new("en"), variant)]) }
}

/// A bot whose `order` flow asks for a six-digit number; sessions live 60 s.
fn bot() -> BotDefinition {
    let mut bot = BotDefinition::default();
    bot.settings.session.ttl_seconds = 60;
    let examples = BTreeMap::from([(Lang::new("en"), vec!["where is my order".to_owned()])]);
    bot.intents.insert("order".into(), Intent { examples, action: IntentAction::Flow("order".into()), interrupts: false });
    bot.responses.insert("ask_number".into(), response("Your order number?"));
    bot.responses.insert("bad_number".into(), response("Six digits, please."));
    bot.responses.insert("got_number".into(), response("Looking up {order_number}."));
    bot.slots.insert("order_number".into(), SlotDefinition { kind: SlotKind::Regex { pattern: "^[0-9]{6}$".to_owned() } });
    let ask = AskStep { slot: "order_number".into(), prompt: "ask_number".into(), invalid: Some("bad_number".into()), max_attempts: 5, on_exhausted: None };
    let steps = vec![Step { id: None, kind: StepKind::Ask(ask) }, Step { id: None, kind: StepKind::Say("got_number".into()) }];
    bot.flows.insert("order".into(), Flow { steps });
    bot
}

async fn engine_on(redis: &TestRedis) -> anyhow::Result<(Engine, Arc<ManualClock>)> {
    let bot = bot();
    let examples = bot.training_examples().into_iter().collect();
    let store = Arc::new(RedisStore::connect(redis.config("expiry")).await?);
    let parts = EngineParts { classifier: Arc::new(ExactMatch(examples)), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store };
    let clock = Arc::new(ManualClock::starting_now());
    Ok((Engine::new(Arc::new(bot), parts).with_clock(clock.clone()), clock))
}

async fn say(engine: &Engine, text: &str) -> anyhow::Result<Vec<String>> {
    let outcome = engine.handle(InboundMessage::text("web:expiry", "web", text)).await?;
    Ok(outcome.events.iter().filter_map(|e| e.reply()).map(|r| r.text.clone()).collect())
}

const SECONDS_40: Duration = Duration::from_secs(40);
const SECONDS_61: Duration = Duration::from_secs(61);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_answered_every_40s_survives_60s_ttl() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let (engine, clock) = engine_on(&redis).await?;
    say(&engine, "where is my order").await?;

    clock.advance(SECONDS_40);
    let invalid = say(&engine, "12345").await?;
    clock.advance(SECONDS_40);
    let also_invalid = say(&engine, "1234").await?;
    clock.advance(SECONDS_40);
    let valid = say(&engine, "123456").await?;

    assert_eq!(invalid, ["Six digits, please."]);
    assert_eq!(also_invalid, ["Six digits, please."]);
    assert_eq!(valid, ["Looking up 123456."]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_after_61s_starts_over_with_notice() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let (engine, clock) = engine_on(&redis).await?;
    say(&engine, "where is my order").await?;

    clock.advance(SECONDS_61);
    let late = say(&engine, "123456").await?;
    let session = engine.session(&"web:expiry".into()).await?.ok_or_else(|| anyhow::anyhow!("no session"))?;

    assert!(late[0].contains("timed out"), "expected the expiry notice first, got {late:?}");
    assert!(!late.iter().any(|t| t.contains("Looking up")), "the expired form took the answer: {late:?}");
    assert_eq!(session.dialog, bot_core::DialogState::Idle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_turn_refreshes_key_ttl() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let (engine, _clock) = engine_on(&redis).await?;
    let mut raw = redis.raw().await?;
    say(&engine, "where is my order").await?;
    let key = format!("{}:{{web:expiry}}:session", redis.prefix());
    redis::cmd("PEXPIRE").arg(&key).arg(5_000).query_async::<()>(&mut raw).await?;

    say(&engine, "12345").await?;
    let session_ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await?;
    let transcript_key = format!("{}:{{web:expiry}}:transcript", redis.prefix());
    let transcript_ttl: i64 = redis::cmd("PTTL").arg(&transcript_key).query_async(&mut raw).await?;

    // The store keeps a session for twice the 60 s TTL, so that a late
    // customer can get the expiry notice.
    assert!(session_ttl > 60_000, "session key TTL after a turn: {session_ttl} ms");
    assert!(transcript_ttl > 60_000, "transcript key TTL after a turn: {transcript_ttl} ms");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_session_keeps_transcript_numbering() -> anyhow::Result<()> {
    let redis = TestRedis::start()?;
    let (engine, _clock) = engine_on(&redis).await?;
    let first = engine.handle(InboundMessage::text("web:expiry", "web", "where is my order")).await?;
    // The session key is evicted or deleted while the transcript stays.
    let key = format!("{}:{{web:expiry}}:session", redis.prefix());
    redis::cmd("DEL").arg(&key).query_async::<()>(&mut redis.raw().await?).await?;

    let second = engine.handle(InboundMessage::text("web:expiry", "web", "where is my order")).await?;
    let transcript = engine.events(&"web:expiry".into(), 0, 100).await?;

    let last_first = first.events.last().map(|e| e.seq).unwrap_or_default();
    assert_eq!(second.events[0].seq, last_first + 1, "numbering continues after the lost session");
    let seqs: Vec<u64> = transcript.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "transcript is gap-free with nothing overwritten");
    assert_eq!(transcript.len(), first.events.len() + second.events.len(), "both turns are in the transcript");
    Ok(())
}
