//! Handoff: the agent's side of the conversation reaches the Discord channel.

use bot_core::{AgentId, InboundMessage};
use serde_json::json;

use crate::harness::{dm, message, Harness, TestResult, CUSTOMER, DM, SUPPORT};

#[tokio::test]
async fn agent_reply_reaches_dm() -> TestResult {
    let harness = Harness::start().await?;
    let id = format!("discord:dm:{DM}").into();
    let alice = AgentId::new("alice");

    harness.send(dm(1, "talk to a human"))?;
    let waiting = harness.fake.wait_texts(DM, 1).await?;
    harness.engine.claim(&id, &alice).await?;
    harness.engine.agent_reply(&id, &alice, "Hi, I'm Alice. I can see order 100002 — it leaves today.").await?;
    let texts = harness.fake.wait_texts(DM, 3).await?;

    assert!(waiting[0].contains("support team"), "not the waiting notice: {waiting:?}");
    assert!(texts[1].contains("joined"), "not the joined notice: {texts:?}");
    assert_eq!(texts[2], "Hi, I'm Alice. I can see order 100002 — it leaves today.");
    harness.stop().await
}

#[tokio::test]
async fn agent_reply_in_channel_notifies_customer() -> TestResult {
    let harness = Harness::start().await?;
    let id = format!("discord:channel:{SUPPORT}:{CUSTOMER}").into();
    let alice = AgentId::new("alice");

    harness.send(message(1, SUPPORT, CUSTOMER, true, "talk to a human"))?;
    harness.fake.wait_texts(SUPPORT, 1).await?;
    harness.engine.claim(&id, &alice).await?;
    harness.engine.agent_reply(&id, &alice, "Hi, I'm Alice.").await?;
    harness.fake.wait_texts(SUPPORT, 3).await?;

    let sent = harness.fake.messages_to(SUPPORT).pop().ok_or_else(|| anyhow::anyhow!("no message"))?;
    assert_eq!(sent.content(), format!("<@{CUSTOMER}> Hi, I'm Alice."));
    assert_eq!(sent.body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(sent.body["allowed_mentions"]["users"], json!([CUSTOMER.to_string()]));
    harness.stop().await
}

#[tokio::test]
async fn customer_reaches_agent_silently() -> TestResult {
    let harness = Harness::start().await?;
    let id = format!("discord:dm:{DM}").into();
    let alice = AgentId::new("alice");
    harness.send(dm(1, "talk to a human"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.engine.claim(&id, &alice).await?;
    harness.fake.wait_texts(DM, 2).await?;

    harness.send(dm(2, "my order is 100002"))?;
    harness.send(dm(3, "are you there?"))?;
    // Once the last message is stored, both were queued, and `drain` waits
    // until their turns (and any reply) are done.
    let stored = wait_customer_messages(&harness, &id, 3).await?;
    harness.channel.drain().await;

    assert_eq!(stored, 3);
    assert_eq!(harness.fake.texts_to(DM).len(), 2, "the bot answered while the agent owns the conversation");
    harness.stop().await
}

#[tokio::test]
async fn other_channels_not_sent() -> TestResult {
    let harness = Harness::start().await?;
    let alice = AgentId::new("alice");
    harness.send(dm(1, "talk to a human"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.engine.handle(InboundMessage::text("web:abc", "web", "talk to a human")).await?;

    harness.engine.claim(&"web:abc".into(), &alice).await?;
    // The sender handles events in commit order, so once this claim's notice
    // arrives the web conversation's claim was handled.
    harness.engine.claim(&format!("discord:dm:{DM}").into(), &alice).await?;
    let texts = harness.fake.wait_texts(DM, 2).await?;

    let sends = harness.fake.calls().iter().filter(|call| call.method == "POST" && call.path.ends_with("/messages")).count();
    assert_eq!(sends, 2, "an event of a web conversation went to Discord: {texts:?}");
    harness.stop().await
}

/// Waits until the conversation contains `count` customer messages and returns how many it contains.
async fn wait_customer_messages(harness: &Harness, id: &bot_core::ConversationId, count: usize) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + crate::fake::WAIT_LIMIT;
    loop {
        let stored = harness.engine.events(id, 0, 100).await?.iter().filter(|event| event.reply().is_none()).count();
        if stored >= count || tokio::time::Instant::now() >= deadline {
            return Ok(stored);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
