//! Customer conversations over the fake gateway: each event shape through the engine and the demo bot.

use anyhow::Context;
use lepton_discord::{DiscordError, Sharding};
use serde_json::json;

use crate::harness::{button_press, dm, edited_dm, mention, message, Harness, TestResult, CHANNEL, CUSTOMER, DM, OTHER_CUSTOMER, SUPPORT, THREAD};

/// `GatewayIntents::MESSAGE_CONTENT`.
const MESSAGE_CONTENT_INTENT: u64 = 1 << 15;

fn customer_messages(events: &[bot_core::Event]) -> usize {
    events.iter().filter(|event| event.reply().is_none()).count()
}

#[tokio::test]
async fn gateway_identifies_with_intents() -> TestResult {
    let harness = Harness::start().await?;

    let identifies = harness.fake.identifies();
    let intents = identifies[0]["intents"].as_u64().context("no intents in Identify")?;

    assert_eq!(identifies.len(), 1);
    assert_eq!(identifies[0]["token"], "Bot MTAwMDAw.TEST.token");
    assert_eq!(intents & (1 << 9), 1 << 9, "GUILD_MESSAGES missing");
    assert_eq!(intents & (1 << 12), 1 << 12, "DIRECT_MESSAGES missing");
    assert_eq!(intents & MESSAGE_CONTENT_INTENT, MESSAGE_CONTENT_INTENT, "MESSAGE_CONTENT missing");
    harness.stop().await
}

#[tokio::test]
async fn shard_range_identifies_its_shard() -> TestResult {
    let harness = Harness::start_with(true, |config| config.with_sharding(Sharding::Range { first: 1, last: 1, total: 2 })).await?;

    let identifies = harness.fake.identifies();

    assert_eq!(identifies.len(), 1, "not exactly one shard started");
    assert_eq!(identifies[0]["shard"], json!([1, 2]));
    harness.stop().await
}

#[tokio::test]
async fn auto_sharding_asks_discord() -> TestResult {
    let harness = Harness::start_with(true, |config| config.with_sharding(Sharding::Auto)).await?;

    let asked = harness.fake.calls().iter().any(|call| call.method == "GET" && call.path == "/gateway/bot");

    assert!(asked, "GET /gateway/bot was not called");
    assert_eq!(harness.fake.identifies()[0]["shard"], json!([0, 1]));
    harness.stop().await
}

#[tokio::test]
async fn faq_answered_in_dm() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(dm(1, "Do you offer gift wrapping?"))?;
    let texts = harness.fake.wait_texts(DM, 1).await?;

    assert!(texts[0].contains("¥10"), "not the gift wrapping answer: {texts:?}");
    let sent = &harness.fake.messages_to(DM)[0];
    assert_eq!(sent.body.get("message_reference"), None, "a direct message reply quoted the customer");
    harness.stop().await
}

#[tokio::test]
async fn guild_mention_answered_in_both_forms() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(message(1, CHANNEL, CUSTOMER, true, "Do you offer gift wrapping?"))?;
    harness.send(mention(2, CHANNEL, false, "Which countries do you ship to?"))?;
    harness.send(mention(3, CHANNEL, true, "Do you offer gift wrapping?"))?;
    let texts = harness.fake.wait_texts(CHANNEL, 2).await?;

    assert!(texts[0].contains("DHL"), "the <@id> mention was not answered: {texts:?}");
    assert!(texts[1].contains("¥10"), "the <@!id> mention was not answered: {texts:?}");
    let first = &harness.fake.messages_to(CHANNEL)[0];
    assert_eq!(first.body["message_reference"]["message_id"], "2", "the reply does not answer the customer's message");
    let id = format!("discord:channel:{CHANNEL}:{CUSTOMER}").into();
    let events = harness.engine.events(&id, 0, 100).await?;
    assert_eq!(customer_messages(&events), 2, "the message without a mention reached the engine");
    harness.stop().await
}

#[tokio::test]
async fn order_form_finds_order() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(dm(1, "where is my order"))?;
    let asked = harness.fake.wait_texts(DM, 1).await?;
    harness.send(dm(2, "100001"))?;
    let texts = harness.fake.wait_texts(DM, 2).await?;

    assert!(asked[0].contains("order number"), "not asked for the order number: {asked:?}");
    assert!(texts[1].contains("100001"), "order number missing: {texts:?}");
    assert!(texts[1].contains("SF Express"), "carrier missing: {texts:?}");
    let found = harness.fake.messages_to(DM).pop().context("no message sent")?;
    let buttons = &found.body["components"][0]["components"];
    assert_eq!(buttons[0]["custom_id"], "/change_address");
    assert_eq!(buttons[1]["custom_id"], "/human");
    assert_eq!(buttons[0]["type"], 2);
    harness.stop().await
}

#[tokio::test]
async fn button_pressed_twice_runs_once() -> TestResult {
    let harness = Harness::start().await?;

    harness.fake.dispatch("INTERACTION_CREATE", button_press(51, 20, "/order_status"))?;
    harness.fake.dispatch("INTERACTION_CREATE", button_press(52, 20, "/order_status"))?;
    harness.send(dm(3, "100001"))?;
    let texts = harness.fake.wait_texts(DM, 2).await?;

    assert!(texts[0].contains("order number"), "the press did not start the form: {texts:?}");
    assert!(texts[1].contains("SF Express"), "the second press was run again: {texts:?}");
    let callbacks: Vec<_> = harness.fake.calls().into_iter().filter(|call| call.path.starts_with("/interactions/")).collect();
    let paths: Vec<&str> = callbacks.iter().map(|call| call.path.as_str()).collect();
    assert_eq!(paths, vec!["/interactions/51/token-51/callback", "/interactions/52/token-52/callback"]);
    assert!(callbacks.iter().all(|call| call.body["type"] == 6), "not acknowledged with a deferred update: {callbacks:?}");
    harness.stop().await
}

#[tokio::test]
async fn support_channel_opens_thread() -> TestResult {
    let harness = Harness::start_with(true, |config| config.with_thread_per_customer(true)).await?;

    harness.send(message(1, SUPPORT, CUSTOMER, true, "where is my order"))?;
    let calls = harness.fake.wait_until("a thread", |calls| calls.iter().any(|call| call.path.ends_with("/threads"))).await?;
    let opened = calls.iter().find(|call| call.path.ends_with("/threads")).context("no thread opened")?.clone();
    let thread_id = *harness.fake.threads().first().context("no thread id")?;
    harness.fake.wait_texts(thread_id, 1).await?;
    harness.send(message(2, thread_id, CUSTOMER, true, "100001"))?;
    let texts = harness.fake.wait_texts(thread_id, 2).await?;

    assert_eq!(opened.path, format!("/channels/{SUPPORT}/messages/1/threads"));
    assert_eq!(opened.body["name"], "li_wei");
    assert!(texts[0].contains("order number"), "{texts:?}");
    assert!(texts[1].contains("SF Express"), "the thread message did not answer the form: {texts:?}");
    assert!(harness.fake.texts_to(SUPPORT).is_empty(), "the bot answered in the support channel");
    harness.stop().await
}

#[tokio::test]
async fn support_channel_keeps_customers_apart() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(message(1, SUPPORT, CUSTOMER, true, "where is my order"))?;
    harness.fake.wait_texts(SUPPORT, 1).await?;
    harness.send(message(2, SUPPORT, OTHER_CUSTOMER, true, "Do you offer gift wrapping?"))?;
    harness.fake.wait_texts(SUPPORT, 2).await?;
    harness.send(message(3, SUPPORT, CUSTOMER, true, "100001"))?;
    let texts = harness.fake.wait_texts(SUPPORT, 3).await?;

    assert!(texts[1].contains("¥10"), "the other customer got no answer of their own: {texts:?}");
    assert!(texts[2].contains("SF Express"), "the form lost its place: {texts:?}");
    let first = format!("discord:channel:{SUPPORT}:{CUSTOMER}").into();
    let other = format!("discord:channel:{SUPPORT}:{OTHER_CUSTOMER}").into();
    assert_eq!(customer_messages(&harness.engine.events(&first, 0, 100).await?), 2);
    assert_eq!(customer_messages(&harness.engine.events(&other, 0, 100).await?), 1);
    harness.stop().await
}

#[tokio::test]
async fn thread_of_support_channel_needs_no_mention() -> TestResult {
    let harness = Harness::start().await?;
    harness.fake.add_thread(THREAD, SUPPORT);

    harness.send(message(1, THREAD, CUSTOMER, true, "Do you offer gift wrapping?"))?;
    let texts = harness.fake.wait_texts(THREAD, 1).await?;

    assert!(texts[0].contains("¥10"), "{texts:?}");
    let id = format!("discord:thread:{THREAD}").into();
    assert_eq!(customer_messages(&harness.engine.events(&id, 0, 100).await?), 1);
    harness.stop().await
}

#[tokio::test]
async fn attachment_asks_for_words() -> TestResult {
    let harness = Harness::start().await?;
    let mut photo = dm(1, "");
    photo["attachments"] = json!([{
        "id": "8001", "filename": "parcel.jpg", "size": 20480, "url": "https://cdn.discordapp.com/a/parcel.jpg",
        "proxy_url": "https://media.discordapp.net/a/parcel.jpg", "width": 800, "height": 600, "content_type": "image/jpeg"
    }]);

    harness.send(photo)?;
    let texts = harness.fake.wait_texts(DM, 1).await?;

    assert!(texts[0].contains("only read text"), "not the non-text reply: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn edit_during_form_fills_slot() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(dm(1, "track my package"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.send(dm(2, "12345"))?;
    let invalid = harness.fake.wait_texts(DM, 2).await?;
    harness.fake.dispatch("MESSAGE_UPDATE", edited_dm(2, "100001"))?;
    let texts = harness.fake.wait_texts(DM, 3).await?;

    assert!(invalid[1].contains("6 digits"), "12345 was accepted: {invalid:?}");
    assert!(texts[2].contains("SF Express"), "the edit did not answer the form: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn edit_outside_form_ignored() -> TestResult {
    let harness = Harness::start().await?;

    harness.send(dm(1, "Do you offer gift wrapping?"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.fake.dispatch("MESSAGE_UPDATE", edited_dm(1, "Which countries do you ship to?"))?;
    harness.send(dm(2, "thanks"))?;
    // A customer's events run in gateway order, so the edit was handled before "thanks".
    let texts = harness.fake.wait_texts(DM, 2).await?;

    assert!(!texts[1].contains("DHL"), "the edit was answered: {texts:?}");
    let id = format!("discord:dm:{DM}").into();
    assert_eq!(customer_messages(&harness.engine.events(&id, 0, 100).await?), 2);
    harness.stop().await
}

#[tokio::test]
async fn typing_shown_during_slow_lookup() -> TestResult {
    let harness = Harness::start_with(true, |mut config| {
        config.typing_delay = std::time::Duration::ZERO;
        config
    })
    .await?;
    // The order server responds only after the channel showed "typing…".
    harness.fake.hold_orders_until_typing();

    harness.send(dm(1, "where is my order 100003"))?;
    let texts = harness.fake.wait_texts(DM, 1).await?;

    assert!(texts[0].contains("100003"), "order not looked up: {texts:?}");
    let typing = harness.fake.calls().iter().filter(|call| call.path == format!("/channels/{DM}/typing")).count();
    assert!(typing >= 1, "no typing indicator");
    harness.stop().await
}

#[tokio::test]
async fn missing_content_intent_not_requested() -> TestResult {
    let harness = Harness::start_with(false, |config| config).await?;

    harness.send(message(1, SUPPORT, CUSTOMER, true, ""))?;
    harness.send(mention(2, SUPPORT, false, "Do you offer gift wrapping?"))?;
    let texts = harness.fake.wait_texts(SUPPORT, 1).await?;

    let intents = harness.fake.identifies()[0]["intents"].as_u64().context("no intents in Identify")?;
    assert_eq!(intents & MESSAGE_CONTENT_INTENT, 0, "requested an intent the application lacks");
    assert!(!harness.channel.message_content());
    assert!(texts[0].contains("¥10"), "the mention was not answered: {texts:?}");
    let id = format!("discord:channel:{SUPPORT}:{CUSTOMER}").into();
    assert_eq!(customer_messages(&harness.engine.events(&id, 0, 100).await?), 1, "the message without text reached the engine");
    harness.stop().await
}

#[tokio::test]
async fn disallowed_intent_reported() -> TestResult {
    let fake = crate::fake::FakeDiscord::start(true).await?;
    fake.reject_identify(4014);
    let engine = crate::harness::demo_engine(&fake.server_url())?;
    let config = crate::harness::test_config(&fake)?;
    let channel = lepton_discord::DiscordChannel::connect_with_client(engine, config, crate::harness::loopback_client()?).await?;
    crate::harness::ensure_loopback_gateway(&channel).await?;

    let result = tokio::time::timeout(crate::fake::WAIT_LIMIT, channel.run_gateway(std::future::pending())).await.context("the gateway kept running")?;

    assert!(matches!(result, Err(DiscordError::MessageContentDisallowed)), "{result:?}");
    Ok(())
}
