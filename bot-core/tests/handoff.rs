//! Conversations with people: internal notes, transfers, the list of
//! conversations with people, the feed of every event, and the no-agent offer.
//! A bot that understands nothing hands off after two messages.

use std::sync::Arc;
use std::time::Duration;

use bot_core::action::NoHttp;
use bot_core::engine::FeedEvent;
use bot_core::knowledge::NoKnowledge;
use bot_core::{
    AgentId, Author, BotDefinition, Classification, Classifier, ConversationId, Engine, EngineError, EngineParts, Event, EventKind, HandoffEnd,
    HandoffReason, HandoffState, InboundMessage, Lang, ManualClock, MemoryStore,
};

/// Recognises nothing, so every message falls back.
struct NoIntents;

impl Classifier for NoIntents {
    fn classify(&self, _text: &str) -> Classification {
        Classification { ranking: Vec::new() }
    }
}

/// Builds an engine whose customers wait `no_agent_after_seconds` for the offer, on a
/// clock that moves only when the test moves it.
fn engine_with(no_agent_after_seconds: u64) -> (Engine, Arc<ManualClock>) {
    let mut bot = BotDefinition::default();
    bot.settings.languages = vec![Lang::new("en"), Lang::new("zh")];
    bot.settings.handoff.no_agent_after_seconds = no_agent_after_seconds;
    let parts = EngineParts { classifier: Arc::new(NoIntents), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store: Arc::new(MemoryStore::new()) };
    let clock = Arc::new(ManualClock::starting_now());
    (Engine::new(Arc::new(bot), parts).with_clock(clock.clone()), clock)
}

fn engine() -> Engine {
    engine_with(300).0
}

/// Sends two messages the bot does not understand, which hands the conversation off.
async fn hand_off(engine: &Engine, conversation: &str) -> anyhow::Result<ConversationId> {
    for text in ["blah", "blah blah"] {
        engine.handle(InboundMessage::text(conversation, "test", text)).await?;
    }
    Ok(conversation.into())
}

fn reply_texts(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|event| event.reply()).map(|reply| reply.text.clone()).collect()
}

fn alice() -> AgentId {
    AgentId::new("alice")
}

fn bob() -> AgentId {
    AgentId::new("bob")
}

#[tokio::test]
async fn note_joins_transcript_for_agents_only() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    let mut proactive = engine.subscribe_proactive();
    let mut conversation = engine.subscribe(&id);

    let note = engine.add_note(&id, &bob(), "VIP customer, be kind").await?;
    let stored = engine.events(&id, 0, 100).await?;
    let published = conversation.try_recv()?;

    assert_eq!(note.kind, EventKind::Note { agent: bob(), text: "VIP customer, be kind".to_owned() });
    assert_eq!(stored.last(), Some(&note), "the note is the transcript's last event");
    assert_eq!(note.seq, stored.len() as u64, "the note has the next seq");
    assert_eq!(published, note, "the conversation's subscribers get the note");
    assert!(!note.is_customer_visible());
    assert!(note.reply().is_none(), "a note is no reply");
    assert!(proactive.try_recv().is_err(), "a note reached the proactive subscribers, which send to customers");
    Ok(())
}

#[tokio::test]
async fn note_keeps_handoff_state() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    let before = engine.session(&id).await?.map(|s| s.handoff);

    engine.add_note(&id, &alice(), "checking the order").await?;
    let after = engine.session(&id).await?.map(|s| s.handoff);

    assert_eq!(before, after);
    Ok(())
}

#[tokio::test]
async fn note_needs_a_conversation() -> anyhow::Result<()> {
    let engine = engine();

    let result = engine.add_note(&"missing".into(), &alice(), "hello").await;

    assert!(matches!(result, Err(EngineError::NotFound { .. })), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn note_decodes_from_json() -> anyhow::Result<()> {
    let json = r#"{"conversation_id":"c1","seq":4,"at":5,"kind":{"type":"note","agent":"bob","text":"call back"}}"#;

    let event: Event = serde_json::from_str(json)?;

    assert_eq!(event.kind, EventKind::Note { agent: bob(), text: "call back".to_owned() });
    assert_eq!(serde_json::to_string(&event)?, json, "a note encodes back to the same JSON");
    Ok(())
}

#[tokio::test]
async fn owner_transfers_to_another_agent() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;
    let mut proactive = engine.subscribe_proactive();

    let events = engine.transfer(&id, &alice(), &bob(), false).await?;
    let state = engine.session(&id).await?.map(|s| s.handoff);

    assert_eq!(reply_texts(&events), ["bob is now helping you."]);
    let notice = events[0].reply().and_then(|reply| reply.handoff.as_ref()).map(|notice| &notice.state);
    assert!(matches!(notice, Some(HandoffState::Agent { agent, .. }) if *agent == bob()), "{notice:?}");
    assert!(matches!(&state, Some(HandoffState::Agent { agent, .. }) if *agent == bob()), "{state:?}");
    assert_eq!(proactive.try_recv()?, events[0], "push channels get the notice");
    Ok(())
}

#[tokio::test]
async fn transfer_keeps_handoff_reason() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;

    engine.transfer(&id, &alice(), &bob(), false).await?;
    let reason = engine.session(&id).await?.and_then(|s| s.handoff.reason().cloned());

    assert_eq!(reason, Some(HandoffReason::RepeatedFallback));
    Ok(())
}

#[tokio::test]
async fn transfer_by_non_owner_is_rejected() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;

    let to_self = engine.transfer(&id, &bob(), &bob(), false).await;
    let to_carol = engine.transfer(&id, &bob(), &AgentId::new("carol"), false).await;
    let state = engine.session(&id).await?.map(|s| s.handoff);

    assert!(matches!(to_self, Err(EngineError::NotOwner { ref agent, .. }) if *agent == bob()), "{to_self:?}");
    assert!(matches!(to_carol, Err(EngineError::NotOwner { ref agent, .. }) if *agent == bob()), "{to_carol:?}");
    assert!(matches!(&state, Some(HandoffState::Agent { agent, .. }) if *agent == alice()), "{state:?}");
    Ok(())
}

#[tokio::test]
async fn transfer_to_owner_changes_nothing() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;
    let before = engine.events(&id, 0, 100).await?;

    let events = engine.transfer(&id, &alice(), &alice(), false).await?;
    let after = engine.events(&id, 0, 100).await?;

    assert!(events.is_empty(), "{events:?}");
    assert_eq!(before, after);
    Ok(())
}

#[tokio::test]
async fn forced_transfer_by_non_owner() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;

    let events = engine.transfer(&id, &bob(), &AgentId::new("carol"), true).await?;
    let state = engine.session(&id).await?.map(|s| s.handoff);

    assert_eq!(reply_texts(&events), ["carol is now helping you."]);
    assert!(matches!(&state, Some(HandoffState::Agent { agent, .. }) if agent.as_str() == "carol"), "{state:?}");
    Ok(())
}

#[tokio::test]
async fn transfer_of_waiting_conversation_is_rejected() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;

    let result = engine.transfer(&id, &alice(), &bob(), true).await;

    assert!(matches!(result, Err(EngineError::NotOwner { .. })), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn transfer_notice_in_chinese() -> anyhow::Result<()> {
    let engine = engine();
    for text in ["什么东西", "完全不懂"] {
        engine.handle(InboundMessage::text("c1", "test", text)).await?;
    }
    let id = ConversationId::new("c1");
    engine.claim(&id, &alice()).await?;

    let events = engine.transfer(&id, &alice(), &bob(), false).await?;

    assert_eq!(reply_texts(&events), ["客服 bob 将继续为您服务。"]);
    Ok(())
}

#[test]
fn display_name_drops_helpdesk_prefix() {
    let cases = [
        ("chatwoot:John_Smith", "John Smith"),
        ("chatwoot:agent-4", "agent-4"),
        ("webhook:bob", "bob"),
        ("webhook:Mary_Ann_Lee", "Mary Ann Lee"),
        ("webhook:___", "webhook:___"),
        ("alice", "alice"),
        ("bob_smith", "bob_smith"),
        ("Team:bob", "Team:bob"),
        (":bob", ":bob"),
    ];
    for (id, expected) in cases {
        assert_eq!(AgentId::new(id).display_name(), expected, "display name of {id}");
    }
}

#[tokio::test]
async fn notices_name_helpdesk_agents_without_prefix() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    let john = AgentId::new("chatwoot:John_Smith");
    let bob = AgentId::new("webhook:bob");

    let joined = engine.claim(&id, &john).await?;
    let transferred = engine.transfer(&id, &john, &bob, false).await?;
    let reply = engine.agent_reply(&id, &bob, "Hi, Bob here.").await?;

    assert_eq!(reply_texts(&joined), ["John Smith from our support team has joined the conversation."]);
    assert_eq!(reply_texts(&transferred), ["bob is now helping you."]);
    assert_eq!(reply.reply().map(|reply| &reply.author), Some(&Author::Agent { id: bob.clone() }), "the reply keeps the agent's id");
    let notice = transferred[0].reply().and_then(|reply| reply.handoff.as_ref()).map(|notice| &notice.state);
    assert!(matches!(notice, Some(HandoffState::Agent { agent, .. }) if *agent == bob), "the notice's state keeps the agent's id: {notice:?}");
    Ok(())
}

#[tokio::test]
async fn end_unclaimed_closes_waiting_conversation() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    let helpdesk = AgentId::new("webhook:alice");

    let events = engine.end_unclaimed(&id, &helpdesk, HandoffEnd::Closed).await?;
    let state = engine.session(&id).await?.map(|s| s.handoff);
    let listed = engine.handoffs().await?;

    assert_eq!(reply_texts(&events), ["This conversation has been closed. Thank you for your patience; write any time if you need more help."]);
    assert!(matches!(state, Some(HandoffState::Closed { .. })), "{state:?}");
    assert!(listed.is_empty(), "the closed conversation left the queue: {listed:?}");
    Ok(())
}

#[tokio::test]
async fn end_unclaimed_hands_back_waiting_conversation() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    let helpdesk = AgentId::new("chatwoot:team");

    let events = engine.end_unclaimed(&id, &helpdesk, HandoffEnd::HandedBack).await?;
    let state = engine.session(&id).await?.map(|s| s.handoff);

    assert_eq!(events.len(), 1, "only the hand-back notice: {events:?}");
    assert_eq!(reply_texts(&events), ["Hi again, you're back with the assistant. Is there anything else I can help with?"]);
    assert_eq!(state, Some(HandoffState::Bot));
    Ok(())
}

#[tokio::test]
async fn end_unclaimed_leaves_other_owner() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;

    let result = engine.end_unclaimed(&id, &bob(), HandoffEnd::Closed).await;
    let state = engine.session(&id).await?.map(|s| s.handoff);

    assert!(matches!(result, Err(EngineError::NotOwner { .. })), "{result:?}");
    assert!(matches!(&state, Some(HandoffState::Agent { agent, .. }) if *agent == alice()), "{state:?}");
    Ok(())
}

#[tokio::test]
async fn close_of_waiting_conversation_needs_claim() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;

    let closed = engine.close(&id, &alice()).await;
    let handed_back = engine.hand_back(&id, &alice()).await;
    let state = engine.session(&id).await?.map(|s| s.handoff);

    assert!(matches!(closed, Err(EngineError::NotOwner { .. })), "{closed:?}");
    assert!(matches!(handed_back, Err(EngineError::NotOwner { .. })), "{handed_back:?}");
    assert!(matches!(state, Some(HandoffState::WaitingForAgent { .. })), "{state:?}");
    Ok(())
}

#[tokio::test]
async fn handoffs_lists_waiting_and_claimed() -> anyhow::Result<()> {
    let engine = engine();
    let waiting = hand_off(&engine, "c1").await?;
    let claimed = hand_off(&engine, "c2").await?;
    engine.handle(InboundMessage::text("c3", "test", "just the bot")).await?;
    engine.claim(&claimed, &alice()).await?;

    let entries = engine.handoffs().await?;
    let only_waiting = engine.waiting().await?;

    let ids: Vec<_> = entries.iter().map(|entry| entry.conversation_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert!(matches!(entries[0].state, HandoffState::WaitingForAgent { .. }), "{:?}", entries[0].state);
    assert!(matches!(&entries[1].state, HandoffState::Agent { agent, .. } if *agent == alice()), "{:?}", entries[1].state);
    assert_eq!(entries[1].reason, Some(HandoffReason::RepeatedFallback), "the reason survives the claim");
    assert_eq!(entries[0].preview.as_deref(), Some("blah blah"));
    assert!(entries[0].last_customer_at.is_some());
    let waiting_ids: Vec<_> = only_waiting.iter().map(|entry| &entry.conversation_id).collect();
    assert_eq!(waiting_ids, [&waiting], "waiting() still lists only waiting conversations");
    Ok(())
}

#[tokio::test]
async fn handoffs_lists_conversation_taken_from_bot() -> anyhow::Result<()> {
    let engine = engine();
    engine.handle(InboundMessage::text("c1", "test", "blah")).await?;
    let id = ConversationId::new("c1");

    engine.claim(&id, &alice()).await?;
    let entries = engine.handoffs().await?;

    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].conversation_id, id);
    assert_eq!(entries[0].reason, None, "the bot did not hand off");
    Ok(())
}

#[tokio::test]
async fn handoffs_drops_handed_back_and_closed() -> anyhow::Result<()> {
    let engine = engine();
    let handed_back = hand_off(&engine, "c1").await?;
    let closed = hand_off(&engine, "c2").await?;
    engine.claim(&handed_back, &alice()).await?;
    engine.claim(&closed, &alice()).await?;

    engine.hand_back(&handed_back, &alice()).await?;
    engine.close(&closed, &alice()).await?;
    let entries = engine.handoffs().await?;

    assert!(entries.is_empty(), "{entries:?}");
    Ok(())
}

#[tokio::test]
async fn waiting_cleanup_keeps_claimed_entries() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;

    // Past the age at which entries without people are removed from the index.
    clock.advance(Duration::from_secs(120));
    let waiting = engine.waiting().await?;
    let entries = engine.handoffs().await?;

    assert!(waiting.is_empty(), "{waiting:?}");
    assert_eq!(entries.len(), 1, "the claimed conversation stays listed: {entries:?}");
    Ok(())
}

#[tokio::test]
async fn handoff_preview_is_cut_to_200_characters() -> anyhow::Result<()> {
    let engine = engine();
    hand_off(&engine, "c1").await?;
    let long = "长".repeat(250);
    engine.handle(InboundMessage::text("c1", "test", long.clone())).await?;

    let entries = engine.handoffs().await?;

    let preview = entries[0].preview.clone().unwrap_or_default();
    assert_eq!(preview.chars().count(), 200);
    assert!(long.starts_with(&preview));
    Ok(())
}

#[tokio::test]
async fn handoff_preview_skips_agent_events() -> anyhow::Result<()> {
    let engine = engine();
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;
    for i in 0..60 {
        engine.agent_reply(&id, &alice(), &format!("reply {i}")).await?;
    }

    let entries = engine.handoffs().await?;

    assert_eq!(entries[0].preview.as_deref(), Some("blah blah"), "found across pages of the transcript");
    Ok(())
}

#[tokio::test]
async fn feed_receives_local_events() -> anyhow::Result<()> {
    let engine = engine();
    let mut feed = engine.subscribe_all();

    let outcome = engine.handle(InboundMessage::text("c1", "test", "blah")).await?;
    let id = hand_off(&engine, "c2").await?;
    let note = engine.add_note(&id, &alice(), "seen it").await?;

    let mut received = Vec::new();
    while let Ok(FeedEvent { event, local }) = feed.try_recv() {
        assert!(local, "event {} of {} is not marked local", event.seq, event.conversation_id);
        received.push(event);
    }
    assert_eq!(received[..outcome.events.len()], outcome.events[..], "the first turn's events come first");
    assert_eq!(received.last(), Some(&note), "notes go to the feed too");
    assert_eq!(received.iter().filter(|event| event.conversation_id == id).count(), 5, "two turns of two events and the note");
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_waits_for_threshold() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    hand_off(&engine, "c1").await?;

    clock.advance(Duration::from_secs(299));
    let early = engine.offer_no_agent().await?;
    clock.advance(Duration::from_secs(1));
    let due = engine.offer_no_agent().await?;

    assert_eq!(early, 0, "offered before the threshold");
    assert_eq!(due, 1, "not offered at the threshold");
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_sent_once() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    let id = hand_off(&engine, "c1").await?;
    let mut proactive = engine.subscribe_proactive();
    let mut feed = engine.subscribe_all();

    clock.advance(Duration::from_secs(301));
    let first = engine.offer_no_agent().await?;
    clock.advance(Duration::from_secs(600));
    let second = engine.offer_no_agent().await?;
    let events = engine.events(&id, 0, 100).await?;

    assert_eq!(first, 1);
    assert_eq!(second, 0, "offered twice in one waiting period");
    let last = events.last().and_then(|event| event.reply()).map(|reply| (&reply.author, reply.text.as_str()));
    assert!(matches!(last, Some((Author::Bot, text)) if text.contains("busy")), "{last:?}");
    assert_eq!(proactive.try_recv()?.seq, events.len() as u64, "push channels get the offer");
    assert!(feed.try_recv().is_ok_and(|item| item.local), "the feed gets the offer");
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_skips_claimed() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    let id = hand_off(&engine, "c1").await?;
    engine.claim(&id, &alice()).await?;

    clock.advance(Duration::from_secs(301));
    let offered = engine.offer_no_agent().await?;

    assert_eq!(offered, 0);
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_again_after_new_handoff() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    let id = hand_off(&engine, "c1").await?;
    clock.advance(Duration::from_secs(301));
    engine.offer_no_agent().await?;
    engine.claim(&id, &alice()).await?;
    engine.hand_back(&id, &alice()).await?;

    hand_off(&engine, "c1").await?;
    clock.advance(Duration::from_secs(301));
    let offered = engine.offer_no_agent().await?;

    assert_eq!(offered, 1, "a new waiting period gets its own offer");
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_off_at_zero() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(0);
    hand_off(&engine, "c1").await?;

    clock.advance(Duration::from_secs(3600));
    let offered = engine.offer_no_agent().await?;

    assert_eq!(offered, 0);
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_once_across_engines() -> anyhow::Result<()> {
    // Two engines on one store stand in for two server processes.
    let store: Arc<dyn bot_core::SessionStore> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::starting_now());
    let make = || {
        let mut bot = BotDefinition::default();
        bot.settings.languages = vec![Lang::new("en"), Lang::new("zh")];
        let parts = EngineParts { classifier: Arc::new(NoIntents), knowledge: Arc::new(NoKnowledge), http: Arc::new(NoHttp), store: store.clone() };
        Engine::new(Arc::new(bot), parts).with_clock(clock.clone())
    };
    let (first, second) = (make(), make());
    hand_off(&first, "c1").await?;

    clock.advance(Duration::from_secs(301));
    let (a, b) = tokio::join!(first.offer_no_agent(), second.offer_no_agent());

    assert_eq!(a? + b?, 1, "exactly one engine sent the offer");
    Ok(())
}

#[tokio::test]
async fn no_agent_offer_in_chinese() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    for text in ["什么东西", "完全不懂"] {
        engine.handle(InboundMessage::text("c1", "test", text)).await?;
    }

    clock.advance(Duration::from_secs(301));
    engine.offer_no_agent().await?;
    let events = engine.events(&"c1".into(), 0, 100).await?;

    let last = reply_texts(&events).pop().unwrap_or_default();
    assert!(last.contains("客服暂时都在忙"), "{last}");
    Ok(())
}

#[tokio::test]
async fn handoff_timer_offers_and_stops() -> anyhow::Result<()> {
    let (engine, clock) = engine_with(300);
    let id = hand_off(&engine, "c1").await?;
    clock.advance(Duration::from_secs(301));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut proactive = engine.subscribe_proactive();

    let timer = tokio::spawn(engine.clone().run_handoff_timer(Duration::from_millis(20), async move {
        let _ = stopped.await;
    }));
    let offer = tokio::time::timeout(Duration::from_secs(10), proactive.recv()).await??;
    drop(stop);
    tokio::time::timeout(Duration::from_secs(10), timer).await??;

    assert_eq!(offer.conversation_id, id);
    Ok(())
}

#[test]
fn handoff_state_keeps_new_fields_in_json() -> anyhow::Result<()> {
    let agent = HandoffState::Agent { agent: alice(), since: 5, reason: Some(HandoffReason::FormExhausted) };
    let waiting = HandoffState::WaitingForAgent { since: 5, reason: HandoffReason::Requested, reminded_at: None, no_agent_offered_at: Some(9) };
    let older_agent: HandoffState = serde_json::from_str(r#"{"state":"agent","agent":"alice","since":5}"#)?;

    assert_eq!(serde_json::from_str::<HandoffState>(&serde_json::to_string(&agent)?)?, agent);
    assert_eq!(serde_json::from_str::<HandoffState>(&serde_json::to_string(&waiting)?)?, waiting);
    assert_eq!(older_agent, HandoffState::Agent { agent: alice(), since: 5, reason: None }, "agent states stored before the reason decode");
    Ok(())
}
