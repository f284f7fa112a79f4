//! Customer conversations by long polling: each update shape through the engine and the demo bot.

use anyhow::Context;
use serde_json::json;

use crate::harness::{callback, command, edited_text, group_chat, message, private_text, Harness, TestResult, CUSTOMER, GROUP};

fn has_han(text: &str) -> bool {
    text.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
}

#[tokio::test]
async fn polling_starts_with_get_me() -> TestResult {
    let harness = Harness::polling().await?;

    let calls = harness.fake.wait_until("getUpdates", |calls| calls.iter().any(|c| c.method == "getupdates")).await?;

    assert_eq!(calls[0].method, "getme");
    assert!(calls.iter().any(|c| c.method == "deletewebhook"), "polling did not remove the webhook first");
    harness.stop().await
}

#[tokio::test]
async fn faq_question_answered() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(private_text(1, 1, "Do you offer gift wrapping?"));
    let texts = harness.fake.wait_texts(CUSTOMER, 1).await?;

    assert!(texts[0].contains("¥10"), "not the gift wrapping answer: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn order_form_finds_order() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(private_text(1, 1, "where is my order"));
    let asked = harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.fake.push_update(private_text(2, 2, "100001"));
    let texts = harness.fake.wait_texts(CUSTOMER, 2).await?;

    assert!(asked[0].contains("order number"), "not asked for the order number: {asked:?}");
    assert!(texts[1].contains("100001"), "order number missing: {texts:?}");
    assert!(texts[1].contains("SF Express"), "carrier missing: {texts:?}");
    let found = harness.fake.calls_to("sendmessage", CUSTOMER).pop().context("no message sent")?;
    let buttons = &found.params["reply_markup"]["inline_keyboard"];
    assert_eq!(buttons[0][0]["callback_data"], "/change_address");
    assert_eq!(buttons[1][0]["callback_data"], "/human");
    harness.stop().await
}

#[tokio::test]
async fn typing_shown_during_slow_lookup() -> TestResult {
    let harness = Harness::polling_with(|mut config| {
        config.typing_delay = std::time::Duration::ZERO;
        config
    })
    .await?;
    // The order server responds only after the chat showed "typing…".
    harness.fake.hold_orders_until_typing();

    harness.fake.push_update(private_text(1, 1, "where is my order 100003"));
    let texts = harness.fake.wait_texts(CUSTOMER, 1).await?;

    assert!(texts[0].contains("100003"), "order not looked up: {texts:?}");
    let typing = harness.fake.calls_to("sendchataction", CUSTOMER);
    assert!(!typing.is_empty(), "no typing indicator");
    assert_eq!(typing[0].params["action"], "typing");
    harness.stop().await
}

#[tokio::test]
async fn captioned_photo_reads_caption() -> TestResult {
    let harness = Harness::polling().await?;
    let photo = json!([{ "file_id": "AgAD1", "file_unique_id": "u1", "width": 800, "height": 600 }]);

    let fields = json!({ "photo": photo, "caption": "Do you offer gift wrapping?" });
    harness.fake.push_update(message(1, 1, json!({ "id": CUSTOMER, "type": "private", "first_name": "Li" }), "en", fields));
    let texts = harness.fake.wait_texts(CUSTOMER, 1).await?;

    assert!(texts[0].contains("¥10"), "caption not answered: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn sticker_asks_for_words() -> TestResult {
    let harness = Harness::polling().await?;
    let sticker = json!({ "file_id": "CAAD1", "file_unique_id": "s1", "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false, "emoji": "👍" });

    harness.fake.push_update(message(1, 1, json!({ "id": CUSTOMER, "type": "private", "first_name": "Li" }), "en", json!({ "sticker": sticker })));
    let texts = harness.fake.wait_texts(CUSTOMER, 1).await?;

    assert!(texts[0].contains("only read text"), "not the non-text reply: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn edit_during_form_fills_slot() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(private_text(1, 1, "track my package"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.fake.push_update(private_text(2, 2, "12345"));
    let invalid = harness.fake.wait_texts(CUSTOMER, 2).await?;
    harness.fake.push_update(edited_text(3, 2, "100001"));
    let texts = harness.fake.wait_texts(CUSTOMER, 3).await?;

    assert!(invalid[1].contains("6 digits"), "12345 was accepted: {invalid:?}");
    assert!(texts[2].contains("SF Express"), "the edit did not answer the form: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn edit_outside_form_ignored() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(private_text(1, 1, "Do you offer gift wrapping?"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    harness.fake.push_update(edited_text(2, 1, "Which countries do you ship to?"));
    harness.fake.push_update(private_text(3, 2, "thanks"));
    // The chat's updates run in order, so the edit was handled before "thanks".
    let texts = harness.fake.wait_texts(CUSTOMER, 2).await?;

    assert_eq!(texts.len(), 2, "the edit was answered: {texts:?}");
    assert!(!texts[1].contains("DHL"), "the edit was answered: {texts:?}");
    let customer_events = harness.engine.events(&"telegram:1001".into(), 0, 100).await?.iter().filter(|e| e.reply().is_none()).count();
    assert_eq!(customer_events, 2);
    harness.stop().await
}

#[tokio::test]
async fn callback_tapped_twice_runs_once() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(callback(1, "q1", 20, "/order_status"));
    harness.fake.push_update(callback(2, "q2", 20, "/order_status"));
    harness.fake.push_update(private_text(3, 3, "100001"));
    let texts = harness.fake.wait_texts(CUSTOMER, 2).await?;

    assert!(texts[0].contains("order number"), "the tap did not start the form: {texts:?}");
    assert!(texts[1].contains("SF Express"), "the second tap was run again: {texts:?}");
    let answered: Vec<String> = harness.fake.calls().iter().filter(|c| c.method == "answercallbackquery").map(|c| c.params["callback_query_id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(answered, vec!["q1", "q2"]);
    harness.stop().await
}

#[tokio::test]
async fn group_needs_mention() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(message(1, 1, group_chat(), "en", json!({ "text": "Do you offer gift wrapping?" })));
    let mention = json!({ "text": "@LeptonShopBot Which countries do you ship to?", "entities": [{ "type": "mention", "offset": 0, "length": 14 }] });
    harness.fake.push_update(message(2, 2, group_chat(), "en", mention));
    let texts = harness.fake.wait_texts(GROUP, 1).await?;

    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains("DHL"), "the mention was not answered: {texts:?}");
    let customer_events = harness.engine.events(&"telegram:-1002000".into(), 0, 100).await?.iter().filter(|e| e.reply().is_none()).count();
    assert_eq!(customer_events, 1, "the message without a mention reached the engine");
    harness.stop().await
}

#[tokio::test]
async fn start_with_bot_name_greets_in_app_language() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(command(1, group_chat(), "zh-hans", "/start@LeptonShopBot"));
    let texts = harness.fake.wait_texts(GROUP, 1).await?;

    assert!(has_han(&texts[0]), "the greeting is not in Chinese: {texts:?}");
    let greeting = &harness.fake.calls_to("sendmessage", GROUP)[0];
    assert_eq!(greeting.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"], "/order_status");
    harness.stop().await
}

#[tokio::test]
async fn command_for_other_bot_ignored() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(command(1, group_chat(), "en", "/start@OtherBot"));
    harness.fake.push_update(command(2, group_chat(), "en", "/start"));
    let texts = harness.fake.wait_texts(GROUP, 1).await?;

    let customer_events = harness.engine.events(&"telegram:-1002000".into(), 0, 100).await?.iter().filter(|e| e.reply().is_none()).count();
    assert_eq!(customer_events, 1, "the other bot's command reached the engine: {texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn unknown_update_skipped() -> TestResult {
    let harness = Harness::polling().await?;

    harness.fake.push_update(json!({ "update_id": 1, "future_thing": { "id": 1 } }));
    harness.fake.push_update(json!({ "update_id": 2, "message": { "message_id": 5, "chat": { "id": CUSTOMER, "type": "private" }, "date": 1765000000, "new_chat_title": "x" } }));
    harness.fake.push_update(private_text(3, 3, "Do you offer gift wrapping?"));
    let texts = harness.fake.wait_texts(CUSTOMER, 1).await?;

    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains("¥10"), "{texts:?}");
    harness.stop().await
}

#[tokio::test]
async fn stop_confirms_offset() -> TestResult {
    let harness = Harness::polling().await?;
    harness.fake.push_update(private_text(41, 1, "thanks"));
    harness.fake.wait_texts(CUSTOMER, 1).await?;
    let fake = harness.fake.clone();

    harness.stop().await?;

    let last = fake.calls().into_iter().rev().find(|c| c.method == "getupdates").context("no getUpdates call")?;
    assert_eq!(last.params["offset"], 42);
    assert_eq!(last.params["timeout"], 0, "the last call was not the confirmation");
    Ok(())
}

#[tokio::test]
async fn unreadable_update_spares_batch() -> TestResult {
    let harness = Harness::polling().await?;

    // teloxide rejects the whole getUpdates response because of the first update.
    harness.fake.push_update(json!({ "update_id": "one", "message": {} }));
    harness.fake.push_update(private_text(2, 2, "Do you offer gift wrapping?"));
    let texts = harness.fake.wait_texts(CUSTOMER, 1).await?;

    assert!(texts[0].contains("¥10"), "{texts:?}");
    harness.stop().await
}
