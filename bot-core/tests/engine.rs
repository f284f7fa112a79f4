//! Engine behaviour on a small bot built in code, with an exact-match classifier
//! standing in for a trained model and the in-memory store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bot_core::action::NoHttp;
use bot_core::bot::{AskStep, Choice, Flow, Intent, IntentAction, Response, ResponseVariant, SlotDefinition, SlotKind, Step, StepKind};
use bot_core::knowledge::NoKnowledge;
use bot_core::{
    AgentId, BotDefinition, Classification, Classifier, Engine, EngineError, EngineParts, HandoffState, InboundMessage, IntentId, Lang,
    MemoryStore, ScoredIntent, SessionStore,
};

/// Classifies a message as the intent whose example it equals, with confidence 1.
struct ExactMatch(HashMap<String, IntentId>);

impl Classifier for ExactMatch {
    fn classify(&self, text: &str) -> Classification {
        let ranking = self.0.get(text).map(|intent| vec![ScoredIntent { intent: intent.clone(), confidence: 1.0 }]);
        Classification { ranking: ranking.unwrap_or_default() }
    }
}

fn response(en: &str, zh: &str) -> Response {
    let variant = |text: &str| vec![ResponseVariant { text: text.to_owned(), buttons: Vec::new() }];
    Response { variants: BTreeMap::from([(Lang::new("en"), variant(en)), (Lang::new("zh"), variant(zh))]) }
}

fn intent(example: &str, action: IntentAction, interrupts: bool) -> Intent {
    Intent { examples: BTreeMap::from([(Lang::new("en"), vec![example.to_owned()])]), action, interrupts }
}

/// A bot with `greet`, `hours` (interrupts forms) and `order` (asks a 6-digit number).
fn bot() -> BotDefinition {
    let mut bot = BotDefinition::default();
    bot.settings.languages = vec![Lang::new("en"), Lang::new("zh")];
    bot.intents.insert("greet".into(), intent("hello", IntentAction::Respond("greet".into()), false));
    bot.intents.insert("hours".into(), intent("opening hours", IntentAction::Respond("hours".into()), true));
    bot.intents.insert("order".into(), intent("where is my order", IntentAction::Flow("order".into()), false));
    bot.intents.get_mut(&IntentId::new("order")).expect("order intent").examples.insert(Lang::new("zh"), vec!["track 123456".to_owned()]);
    bot.responses.insert("greet".into(), response("Hello!", "你好！"));
    bot.responses.insert("hours".into(), response("We open at 9.", "我们九点开门。"));
    bot.responses.insert("ask_number".into(), response("Your order number?", "您的订单号？"));
    bot.responses.insert("bad_number".into(), response("Six digits, please.", "请输入六位数字。"));
    bot.responses.insert("got_number".into(), response("Looking up {order_number}.", "正在查询 {order_number}。"));
    let pattern = "^[0-9]{6}$".to_owned();
    bot.slots.insert("order_number".into(), SlotDefinition { kind: SlotKind::Regex { pattern } });
    let ask = AskStep {
        slot: "order_number".into(),
        prompt: "ask_number".into(),
        invalid: Some("bad_number".into()),
        max_attempts: 2,
        on_exhausted: None,
    };
    let steps = vec![Step { id: None, kind: StepKind::Ask(ask) }, Step { id: None, kind: StepKind::Say("got_number".into()) }];
    bot.flows.insert("order".into(), Flow { steps });

    // `no` is both an answer to the choice slot and an example of `stop`.
    bot.intents.insert("stop".into(), intent("no", IntentAction::Flow("stop".into()), true));
    bot.intents.insert("confirm".into(), intent("confirm it", IntentAction::Flow("confirm".into()), false));
    bot.responses.insert("stopped".into(), response("Stopped.", "已停止。"));
    bot.responses.insert("ask_confirm".into(), response("Sure?", "确定吗？"));
    bot.responses.insert("answered".into(), response("You said {confirm}.", "您选择了 {confirm}。"));
    let choices = ["yes", "no"].map(|value| Choice { value: value.to_owned(), synonyms: BTreeMap::new() }).to_vec();
    bot.slots.insert("confirm".into(), SlotDefinition { kind: SlotKind::Choice { choices } });
    let ask = AskStep { slot: "confirm".into(), prompt: "ask_confirm".into(), invalid: None, max_attempts: 3, on_exhausted: None };
    let steps = vec![Step { id: None, kind: StepKind::Ask(ask) }, Step { id: None, kind: StepKind::Say("answered".into()) }];
    bot.flows.insert("confirm".into(), Flow { steps });
    bot.flows.insert("stop".into(), Flow { steps: vec![Step { id: None, kind: StepKind::Say("stopped".into()) }] });
    bot
}

fn engine_with(store: Arc<dyn SessionStore>) -> Engine {
    let bot = bot();
    let examples = bot.training_examples().into_iter().collect();
    let parts = EngineParts { classifier: Arc::new(ExactMatch(examples)), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store };
    Engine::new(Arc::new(bot), parts)
}

fn engine() -> Engine {
    engine_with(Arc::new(MemoryStore::new()))
}

async fn say(engine: &Engine, conversation: &str, text: &str) -> anyhow::Result<Vec<String>> {
    let outcome = engine.handle(InboundMessage::text(conversation, "test", text)).await?;
    Ok(outcome.events.iter().filter_map(|e| e.reply()).map(|r| r.text.clone()).collect())
}

#[tokio::test]
async fn form_rejects_then_accepts_the_slot() -> anyhow::Result<()> {
    let engine = engine();

    let prompt = say(&engine, "c1", "where is my order").await?;
    let invalid = say(&engine, "c1", "12345").await?;
    let valid = say(&engine, "c1", "it is 123456").await?;

    assert_eq!(prompt, ["Your order number?"]);
    assert_eq!(invalid, ["Six digits, please."]);
    assert_eq!(valid, ["Looking up 123456."]);
    Ok(())
}

#[tokio::test]
async fn interrupting_intent_answers_and_asks_again() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "where is my order").await?;

    let interrupted = say(&engine, "c1", "opening hours").await?;
    let resumed = say(&engine, "c1", "654321").await?;

    assert_eq!(interrupted, ["We open at 9.", "Your order number?"]);
    assert_eq!(resumed, ["Looking up 654321."]);
    Ok(())
}

#[tokio::test]
async fn exhausted_form_hands_off() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "where is my order").await?;
    say(&engine, "c1", "no idea").await?;

    say(&engine, "c1", "still no idea").await?;

    let waiting = engine.waiting().await?;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].reason, bot_core::HandoffReason::FormExhausted);
    Ok(())
}

#[tokio::test]
async fn fallbacks_hand_off_then_silence() -> anyhow::Result<()> {
    let engine = engine();

    let first = say(&engine, "c1", "blah").await?;
    let second = say(&engine, "c1", "blah blah").await?;
    let third = say(&engine, "c1", "hello").await?;

    assert_eq!(first.len(), 1);
    assert!(second[0].contains("support team"), "expected the waiting notice, got {second:?}");
    assert!(third.is_empty(), "the bot answered while waiting for an agent: {third:?}");
    Ok(())
}

#[tokio::test]
async fn chinese_message_gets_chinese_reply() -> anyhow::Result<()> {
    let engine = engine();

    let replies = say(&engine, "c1", "啊啊啊").await?;

    assert!(replies[0].contains("抱歉"), "expected the Chinese fallback, got {replies:?}");
    Ok(())
}

#[tokio::test]
async fn only_one_of_two_agents_claims() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "blah").await?;
    say(&engine, "c1", "blah").await?;
    let id = "c1".into();
    let (alice, bob) = (AgentId::new("alice"), AgentId::new("bob"));

    let (a, b) = tokio::join!(engine.claim(&id, &alice), engine.claim(&id, &bob));

    let lost = [&a, &b].iter().filter(|r| matches!(r, Err(EngineError::AlreadyClaimed { .. }))).count();
    assert_eq!(lost, 1, "results: {a:?} {b:?}");
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1);
    Ok(())
}

#[tokio::test]
async fn owner_replies_and_hands_back() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "blah").await?;
    say(&engine, "c1", "blah").await?;
    let id = "c1".into();
    let (alice, bob) = (AgentId::new("alice"), AgentId::new("bob"));
    engine.claim(&id, &alice).await?;

    let intruder = engine.agent_reply(&id, &bob, "hi").await;
    engine.agent_reply(&id, &alice, "hi, Alice here").await?;
    engine.hand_back(&id, &alice).await?;
    let after = say(&engine, "c1", "hello").await?;

    assert!(matches!(intruder, Err(EngineError::NotOwner { .. })), "got {intruder:?}");
    assert_eq!(after, ["Hello!"]);
    let session = engine.session(&id).await?.expect("session");
    assert_eq!(session.handoff, HandoffState::Bot);
    Ok(())
}

#[tokio::test]
async fn retried_client_message_id_is_not_run_twice() -> anyhow::Result<()> {
    let engine = engine();
    let message = InboundMessage::text("c1", "test", "where is my order").with_client_message_id("m1");

    let first = engine.handle(message.clone()).await?;
    let second = engine.handle(message).await?;

    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.events, second.events);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_of_one_conversation_run_in_order() -> anyhow::Result<()> {
    let engine = engine();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move { engine.handle(InboundMessage::text("c1", "test", format!("hello {i}"))).await }));
    }
    for task in tasks {
        task.await??;
    }

    let events = engine.events(&"c1".into(), 0, 1000).await?;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected);
    let session = engine.session(&"c1".into()).await?.expect("session");
    assert_eq!(session.turns, 20);
    Ok(())
}

#[tokio::test]
async fn subscribers_receive_new_events() -> anyhow::Result<()> {
    let engine = engine();
    let mut events = engine.subscribe(&"c1".into());

    say(&engine, "c1", "hello").await?;

    let customer = events.recv().await?;
    let reply = events.recv().await?;
    assert_eq!(customer.seq, 1);
    assert_eq!(reply.reply().map(|r| r.text.as_str()), Some("Hello!"));
    Ok(())
}

#[tokio::test]
async fn memory_store_meets_the_contract() -> anyhow::Result<()> {
    let store = MemoryStore::new();
    bot_core::store::contract::run_all(&store).await?;
    Ok(())
}

#[tokio::test]
async fn choice_answer_wins_over_an_interrupting_intent() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "confirm it").await?;

    let replies = say(&engine, "c1", "no").await?;

    assert_eq!(replies, ["You said no."]);
    Ok(())
}

#[tokio::test]
async fn quick_reply_payload_keeps_the_language() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "啊啊啊").await?;

    let replies = say(&engine, "c1", "/greet").await?;

    assert_eq!(replies, ["你好！"]);
    Ok(())
}

#[tokio::test]
async fn closing_needs_a_claim() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "blah").await?;
    say(&engine, "c1", "blah").await?;
    let id = "c1".into();
    let alice = AgentId::new("alice");

    let unclaimed = engine.close(&id, &alice).await;
    engine.claim(&id, &alice).await?;
    let claimed = engine.close(&id, &alice).await;

    assert!(matches!(unclaimed, Err(EngineError::NotOwner { .. })), "got {unclaimed:?}");
    assert!(claimed.is_ok(), "got {claimed:?}");
    Ok(())
}

#[tokio::test]
async fn number_in_the_first_message_fills_the_form() -> anyhow::Result<()> {
    let engine = engine();

    let replies = say(&engine, "c1", "track 123456").await?;

    assert_eq!(replies, ["Looking up 123456."]);
    Ok(())
}

#[tokio::test]
async fn waiting_customer_is_reminded_after_a_minute() -> anyhow::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_with(store.clone());
    say(&engine, "c1", "blah").await?;
    say(&engine, "c1", "blah").await?;
    let id = "c1".into();
    let stored = store.load(&id).await?.expect("session");
    let mut session = stored.session;
    let two_minutes_ago = bot_core::message::now_millis() - 120_000;
    session.handoff = HandoffState::WaitingForAgent { since: two_minutes_ago, reason: bot_core::HandoffReason::RepeatedFallback, reminded_at: None };
    store.save(&session, stored.version, std::time::Duration::from_secs(60)).await?;

    let reminded = say(&engine, "c1", "hello?").await?;
    let silent = say(&engine, "c1", "anyone?").await?;

    assert_eq!(reminded.len(), 1, "expected one reminder, got {reminded:?}");
    assert!(silent.is_empty(), "expected no second reminder within a minute, got {silent:?}");
    Ok(())
}
