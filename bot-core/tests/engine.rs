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
    session.handoff = HandoffState::WaitingForAgent { since: two_minutes_ago, reason: bot_core::HandoffReason::RepeatedFallback, reminded_at: None, no_agent_offered_at: None };
    store.save(&session, stored.version, std::time::Duration::from_secs(60)).await?;

    let reminded = say(&engine, "c1", "hello?").await?;
    let silent = say(&engine, "c1", "anyone?").await?;

    assert_eq!(reminded.len(), 1, "expected one reminder, got {reminded:?}");
    assert!(silent.is_empty(), "expected no second reminder within a minute, got {silent:?}");
    Ok(())
}

/// An engine on a bot whose sessions expire 60 s after their last change, with
/// a clock that moves only when the test moves it.
fn engine_with_clock(store: Arc<dyn SessionStore>) -> (Engine, Arc<bot_core::ManualClock>) {
    let mut bot = bot();
    bot.settings.session.ttl_seconds = 60;
    let examples = bot.training_examples().into_iter().collect();
    let parts = EngineParts { classifier: Arc::new(ExactMatch(examples)), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store };
    let clock = Arc::new(bot_core::ManualClock::starting_now());
    (Engine::new(Arc::new(bot), parts).with_clock(clock.clone()), clock)
}

const SECONDS_40: std::time::Duration = std::time::Duration::from_secs(40);
const SECONDS_61: std::time::Duration = std::time::Duration::from_secs(61);

#[tokio::test]
async fn form_survives_answers_within_ttl() -> anyhow::Result<()> {
    let (engine, clock) = engine_with_clock(Arc::new(MemoryStore::new()));
    say(&engine, "c1", "where is my order").await?;

    clock.advance(SECONDS_40);
    let invalid = say(&engine, "c1", "12345").await?;
    clock.advance(SECONDS_40);
    let valid = say(&engine, "c1", "123456").await?;

    assert_eq!(invalid, ["Six digits, please."]);
    assert_eq!(valid, ["Looking up 123456."]);
    Ok(())
}

#[tokio::test]
async fn expired_form_starts_over_with_notice() -> anyhow::Result<()> {
    let (engine, clock) = engine_with_clock(Arc::new(MemoryStore::new()));
    let asked = engine.handle(InboundMessage::text("c1", "test", "where is my order")).await?;

    clock.advance(SECONDS_61);
    let late = engine.handle(InboundMessage::text("c1", "test", "123456")).await?;
    let session = engine.session(&"c1".into()).await?.expect("session");

    let texts: Vec<_> = late.events.iter().filter_map(|e| e.reply()).map(|r| r.text.clone()).collect();
    assert!(texts[0].contains("timed out"), "expected the expiry notice first, got {texts:?}");
    assert!(!texts.iter().any(|t| t.contains("Looking up")), "the expired form still took the answer: {texts:?}");
    assert_eq!(session.dialog, bot_core::DialogState::Idle);
    let last_asked = asked.events.last().expect("events").seq;
    assert_eq!(late.events[0].seq, last_asked + 1, "transcript numbering continues after expiry");
    Ok(())
}

#[tokio::test]
async fn expired_idle_session_starts_silently() -> anyhow::Result<()> {
    let (engine, clock) = engine_with_clock(Arc::new(MemoryStore::new()));
    say(&engine, "c1", "hello").await?;

    clock.advance(SECONDS_61);
    let replies = say(&engine, "c1", "hello").await?;

    assert_eq!(replies, ["Hello!"]);
    Ok(())
}

#[tokio::test]
async fn expired_waiting_conversation_leaves_queue() -> anyhow::Result<()> {
    let (engine, clock) = engine_with_clock(Arc::new(MemoryStore::new()));
    say(&engine, "c1", "blah").await?;
    say(&engine, "c1", "blah").await?;
    let before = engine.waiting().await?;

    clock.advance(SECONDS_61);
    let after = engine.waiting().await?;

    assert_eq!(before.len(), 1, "conversation waits before expiry");
    assert!(after.is_empty(), "expired conversation still waits: {after:?}");
    Ok(())
}

#[tokio::test]
async fn agent_events_reach_proactive_subscribers() -> anyhow::Result<()> {
    let engine = engine();
    let mut proactive = engine.subscribe_proactive();
    say(&engine, "c1", "blah").await?;
    say(&engine, "c1", "blah").await?;
    let turn_events = proactive.try_recv();

    let agent = AgentId::new("alice");
    engine.claim(&"c1".into(), &agent).await?;
    let reply = engine.agent_reply(&"c1".into(), &agent, "Hi, I'm Alice.").await?;
    let joined = proactive.try_recv()?;
    let received = proactive.try_recv()?;

    assert!(turn_events.is_err(), "a customer turn reached proactive subscribers: {turn_events:?}");
    assert!(joined.reply().is_some_and(|r| r.text.contains("alice")), "expected the joined notice, got {joined:?}");
    assert_eq!(received, reply);
    Ok(())
}

#[tokio::test]
async fn unavailable_reply_follows_message_language() -> anyhow::Result<()> {
    let engine = engine();

    let english = engine.unavailable_reply(&InboundMessage::text("c1", "test", "where is my order"));
    let chinese = engine.unavailable_reply(&InboundMessage::text("c2", "test", "我的订单在哪里"));

    assert!(english.text.contains("try") || english.text.contains("again"), "{}", english.text);
    assert!(chinese.text.contains("稍后"), "{}", chinese.text);
    Ok(())
}

mod shared_store {
    //! A memory store that behaves like one shared by several server
    //! processes: it counts leases, can refuse them, and feeds "remote" events.

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use bot_core::store::{Lease, LeaseHandle, RemoteEvents, TurnCommit};
    use bot_core::{ConversationId, Event, MemoryStore, SessionStore, StoreError, Timestamp, UnrecognisedMessage, Versioned};
    use tokio::sync::mpsc;

    #[derive(Default)]
    pub struct SharedStore {
        pub memory: MemoryStore,
        pub leases: Arc<AtomicUsize>,
        pub released: Arc<AtomicUsize>,
        pub refuse_leases: AtomicBool,
        pub corrupt_next_load: AtomicBool,
        pub feed: Mutex<Option<mpsc::Receiver<RemoteEvents>>>,
    }

    struct CountedLease(Arc<AtomicUsize>);

    #[async_trait]
    impl LeaseHandle for CountedLease {
        async fn release(self: Box<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl SessionStore for SharedStore {
        async fn load(&self, id: &ConversationId) -> Result<Option<Versioned>, StoreError> {
            let stored = self.memory.load(id).await?;
            if self.corrupt_next_load.swap(false, Ordering::SeqCst) {
                let version = stored.map_or(0, |s| s.version);
                return Err(StoreError::Corrupt { conversation_id: id.clone(), version, reason: "test".to_owned() });
            }
            Ok(stored)
        }
        async fn save(&self, session: &bot_core::Session, expected: u64, ttl: Duration) -> Result<u64, StoreError> {
            self.memory.save(session, expected, ttl).await
        }
        async fn append_events(&self, id: &ConversationId, events: &[Event], ttl: Duration) -> Result<(), StoreError> {
            self.memory.append_events(id, events, ttl).await
        }
        async fn events(&self, id: &ConversationId, after_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
            self.memory.events(id, after_seq, limit).await
        }
        async fn set_waiting(&self, id: &ConversationId, since: Option<Timestamp>) -> Result<(), StoreError> {
            self.memory.set_waiting(id, since).await
        }
        async fn waiting(&self) -> Result<Vec<(ConversationId, Timestamp)>, StoreError> {
            self.memory.waiting().await
        }
        async fn commit_turn(&self, turn: TurnCommit<'_>) -> Result<u64, StoreError> {
            self.memory.commit_turn(turn).await
        }
        async fn record_unrecognised(&self, message: &UnrecognisedMessage) -> Result<(), StoreError> {
            self.memory.record_unrecognised(message).await
        }
        async fn unrecognised(&self, limit: usize) -> Result<Vec<UnrecognisedMessage>, StoreError> {
            self.memory.unrecognised(limit).await
        }
        async fn dismiss_unrecognised(&self, id: &ConversationId, seq: u64) -> Result<bool, StoreError> {
            self.memory.dismiss_unrecognised(id, seq).await
        }
        async fn lease(&self, id: &ConversationId) -> Result<Lease, StoreError> {
            if self.refuse_leases.load(Ordering::SeqCst) {
                return Err(StoreError::LeaseTimeout { conversation_id: id.clone(), waited_ms: 10, holder: "other/1".to_owned() });
            }
            self.leases.fetch_add(1, Ordering::SeqCst);
            Ok(Lease::new(Box::new(CountedLease(self.released.clone()))))
        }
        fn remote_events(&self) -> Option<mpsc::Receiver<RemoteEvents>> {
            self.feed.lock().unwrap().take()
        }
    }
}

use shared_store::SharedStore;

#[tokio::test]
async fn each_turn_holds_a_lease() -> anyhow::Result<()> {
    let store = Arc::new(SharedStore::default());
    let engine = engine_with(store.clone());

    say(&engine, "c1", "hello").await?;
    say(&engine, "c1", "where is my order").await?;

    assert_eq!(store.leases.load(std::sync::atomic::Ordering::SeqCst), 2, "leases taken");
    assert_eq!(store.released.load(std::sync::atomic::Ordering::SeqCst), 2, "leases released");
    Ok(())
}

#[tokio::test]
async fn lease_timeout_fails_the_turn() -> anyhow::Result<()> {
    let store = Arc::new(SharedStore::default());
    store.refuse_leases.store(true, std::sync::atomic::Ordering::SeqCst);
    let engine = engine_with(store.clone());

    let result = engine.handle(InboundMessage::text("c1", "test", "hello")).await;
    let stored = store.load(&"c1".into()).await?;

    assert!(matches!(result, Err(EngineError::Store(bot_core::StoreError::LeaseTimeout { .. }))), "{result:?}");
    assert!(stored.is_none(), "a turn without the lease stored a session");
    Ok(())
}

#[tokio::test]
async fn corrupt_session_resets_keeping_numbering() -> anyhow::Result<()> {
    let store = Arc::new(SharedStore::default());
    let engine = engine_with(store.clone());
    let first = engine.handle(InboundMessage::text("c1", "test", "where is my order")).await?;
    store.corrupt_next_load.store(true, std::sync::atomic::Ordering::SeqCst);

    let reset = engine.handle(InboundMessage::text("c1", "test", "hello")).await?;

    let texts: Vec<_> = reset.events.iter().filter_map(|e| e.reply()).map(|r| r.text.clone()).collect();
    assert!(texts[0].contains("start over"), "expected the reset apology first, got {texts:?}");
    assert_eq!(reset.events[0].seq, first.events.last().expect("events").seq + 1, "transcript numbering continues");
    Ok(())
}

#[tokio::test]
async fn remote_events_reach_subscribers() -> anyhow::Result<()> {
    let (feed, receiver) = tokio::sync::mpsc::channel(8);
    let store = Arc::new(SharedStore { feed: std::sync::Mutex::new(Some(receiver)), ..Default::default() });
    let engine = engine_with(store.clone());
    let mut events = engine.subscribe(&"c1".into());
    let mut feed_of_all = engine.subscribe_all();
    // Another server ran a turn: its events are in the store and on the feed.
    let other = engine_with(Arc::new(MemoryStore::new()));
    let outcome = other.handle(InboundMessage::text("c1", "test", "hello")).await?;
    store.append_events(&"c1".into(), &outcome.events, std::time::Duration::from_secs(60)).await?;

    feed.send(bot_core::RemoteEvents::Committed(outcome.events[..1].to_vec())).await?;
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await??;
    feed.send(bot_core::RemoteEvents::MaybeMissed).await?;
    let caught_up = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await??;

    assert_eq!(first, outcome.events[0]);
    assert_eq!(caught_up, outcome.events[1], "the gap was read back from the transcript");
    let relayed = feed_of_all.try_recv()?;
    assert_eq!(relayed, bot_core::FeedEvent { event: outcome.events[0].clone(), local: false });
    let read_back = feed_of_all.try_recv()?;
    assert_eq!(read_back, bot_core::FeedEvent { event: outcome.events[1].clone(), local: false });
    Ok(())
}

/// Replaces the engine's bot with `bot` and a classifier trained on its examples.
fn reload(engine: &Engine, bot: BotDefinition) {
    let examples = bot.training_examples().into_iter().collect();
    engine.replace_bot(Arc::new(bot), Arc::new(ExactMatch(examples)), Arc::new(NoKnowledge));
}

#[tokio::test]
async fn reload_moving_ask_step_keeps_form() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "where is my order").await?;
    let mut edited = bot();
    let order = edited.flows.get_mut(&"order".into()).expect("order flow");
    order.steps.insert(0, Step { id: None, kind: StepKind::Say("hours".into()) });

    reload(&engine, edited);
    let replies = say(&engine, "c1", "123456").await?;

    assert_eq!(replies, ["Looking up 123456."]);
    Ok(())
}

#[tokio::test]
async fn reload_changing_ask_restarts_flow() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "where is my order").await?;
    let mut edited = bot();
    let order = edited.flows.get_mut(&"order".into()).expect("order flow");
    let ask = AskStep { slot: "confirm".into(), prompt: "ask_confirm".into(), invalid: None, max_attempts: 3, on_exhausted: None };
    order.steps[0] = Step { id: None, kind: StepKind::Ask(ask) };

    reload(&engine, edited);
    let replies = say(&engine, "c1", "123456").await?;

    assert_eq!(replies.len(), 2, "expected the notice and the new first question, got {replies:?}");
    assert!(replies[0].contains("start it again"), "expected the restart notice, got {replies:?}");
    assert_eq!(replies[1], "Sure?");
    Ok(())
}

#[tokio::test]
async fn reload_removing_flow_leaves_form() -> anyhow::Result<()> {
    let engine = engine();
    say(&engine, "c1", "where is my order").await?;
    let mut edited = bot();
    edited.flows.remove(&"order".into());
    edited.intents.remove(&IntentId::new("order"));

    reload(&engine, edited);
    let replies = say(&engine, "c1", "hello").await?;
    let session = engine.session(&"c1".into()).await?.expect("session");

    assert_eq!(replies.len(), 2, "expected the notice and the greeting, got {replies:?}");
    assert!(replies[0].contains("no longer available"), "expected the removal notice, got {replies:?}");
    assert_eq!(replies[1], "Hello!");
    assert_eq!(session.dialog, bot_core::DialogState::Idle);
    Ok(())
}
