//! Handoff: the agent's side of the conversation reaches the Telegram chat.

use bot_core::{AgentId, Event, EventKind, InboundMessage};

use crate::harness::{callback, private_text, Harness, TestResult, CUSTOMER};

#[tokio::test]
async fn agent_reply_reaches_chat() -> TestResult {
    let harness = Harness::polling().await?;
    let id = "telegram:1001".into();
    let alice = AgentId::new("alice");

    harness.fake.push_update(private_text(1, 1, "talk to a human"));
    let waiting = harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.engine.claim(&id, &alice).await?;
    harness.engine.agent_reply(&id, &alice, "Hi, I'm Alice. I can see order 100002 — it leaves today.").await?;
    let texts = harness.fake.wait_texts(CUSTOMER, 3).await?;

    assert!(waiting[0].contains("support team"), "not the waiting notice: {waiting:?}");
    assert!(texts[1].contains("joined"), "not the joined notice: {texts:?}");
    assert_eq!(texts[2], "Hi, I'm Alice. I can see order 100002 — it leaves today.");
    harness.stop().await
}

#[tokio::test]
async fn customer_reaches_agent_silently() -> TestResult {
    let harness = Harness::polling().await?;
    let id = "telegram:1001".into();
    let alice = AgentId::new("alice");
    harness.fake.push_update(private_text(1, 1, "talk to a human"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.engine.claim(&id, &alice).await?;
    harness.fake.wait_texts(CUSTOMER, 2).await?;

    harness.fake.push_update(private_text(2, 2, "my order is 100002"));
    harness.fake.push_update(private_text(3, 3, "are you there?"));
    // The chat's updates run in order: once the tap is answered, the two
    // messages before it were handled.
    harness.fake.push_update(callback(4, "q4", 20, "/order_status"));
    harness.fake.wait_until("the tap's answer", |calls| calls.iter().any(|c| c.method == "answercallbackquery")).await?;
    let events = harness.engine.events(&id, 0, 100).await?;

    let received: Vec<&str> = events.iter().filter_map(client_message_id).collect();
    assert!(received.contains(&"tg-2"), "{received:?}");
    assert!(received.contains(&"tg-3"), "{received:?}");
    assert_eq!(harness.fake.texts_to(CUSTOMER).len(), 2, "the bot answered while the agent owns the chat");
    harness.stop().await
}

#[tokio::test]
async fn other_channels_not_sent() -> TestResult {
    let harness = Harness::polling().await?;
    let alice = AgentId::new("alice");
    harness.fake.push_update(private_text(1, 1, "talk to a human"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.engine.handle(InboundMessage::text("web:abc", "web", "talk to a human")).await?;

    harness.engine.claim(&"web:abc".into(), &alice).await?;
    // The sender handles events in commit order, so once this claim's notice
    // arrives the web conversation's claim was handled.
    harness.engine.claim(&"telegram:1001".into(), &alice).await?;
    let texts = harness.fake.wait_texts(CUSTOMER, 2).await?;

    let sends = harness.fake.calls().iter().filter(|c| c.method == "sendmessage").count();
    assert_eq!(sends, 2, "an event of a web conversation went to Telegram: {texts:?}");
    harness.stop().await
}

fn client_message_id(event: &Event) -> Option<&str> {
    match &event.kind {
        EventKind::Customer { client_message_id, .. } => client_message_id.as_ref().map(|id| id.as_str()),
        EventKind::Reply(_) | EventKind::Note { .. } => None,
    }
}
