//! Customers' conversations with the demo bot: FAQ answers, the order form, a restart.

use crate::harness::{Customer, Server};

fn joined(replies: &[String]) -> String {
    replies.join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn faq_answer_in_english() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "faq-en");

    let replies = customer.say("Can you gift wrap it for me?").await?;

    assert!(joined(&replies).contains("Gift wrap"), "expected the gift-wrapping FAQ answer, got {replies:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn faq_answer_in_chinese() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "faq-zh");

    let replies = customer.say("新疆那边包邮吗").await?;

    assert!(joined(&replies).contains("偏远地区"), "expected the remote-area shipping FAQ answer, got {replies:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn order_status_invalid_then_valid_number() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "order-en");

    let prompt = customer.say("where is my order?").await?;
    let invalid = customer.say("12345").await?;
    let found = customer.say("it's 100001").await?;

    assert!(joined(&prompt).contains("order number"), "expected the order-number prompt, got {prompt:?}");
    assert!(joined(&invalid).contains("6 digits"), "expected the invalid-number message, got {invalid:?}");
    assert!(joined(&found).contains("shipped"), "expected order 100001 to be shipped, got {found:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn order_status_in_chinese() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "order-zh");

    let prompt = customer.say("我的订单到哪了").await?;
    let found = customer.say("100003").await?;

    assert!(joined(&prompt).contains("订单号"), "expected the Chinese order-number prompt, got {prompt:?}");
    assert!(joined(&found).contains("已签收"), "expected order 100003 to be delivered, got {found:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_order_number_is_reported() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "order-missing");

    customer.say("track my package please").await?;
    let replies = customer.say("999999").await?;

    assert!(joined(&replies).to_lowercase().contains("999999"), "expected a not-found reply naming the number, got {replies:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_mid_form_continues_the_form() -> anyhow::Result<()> {
    let server = Server::start()?;
    let store = server.store.clone();
    let mut customer = Customer::new(&server, "restart");
    let prompt = customer.say("where is my order").await?;
    assert!(joined(&prompt).contains("order number"), "expected the order-number prompt, got {prompt:?}");
    server.stop()?;

    let server = Server::start_with_store(&store)?;
    customer.base = server.url.clone();
    let found = customer.say("100002").await?;

    assert!(joined(&found).contains("processing"), "expected the form to continue after the restart, got {found:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_abandons_the_form() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "cancel");

    customer.say("where is my order").await?;
    customer.say("never mind").await?;
    let after = customer.say("100001").await?;

    assert!(!joined(&after).contains("shipped"), "the order form should have been cancelled, got {after:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_message_is_answered_once() -> anyhow::Result<()> {
    let server = Server::start()?;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/conversations/retry/messages", server.url);
    let body = serde_json::json!({ "text": "hello", "client_message_id": "m-1" });

    let first: serde_json::Value = client.post(&url).json(&body).send().await?.json().await?;
    let second: serde_json::Value = client.post(&url).json(&body).send().await?.json().await?;

    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(first["events"], second["events"]);
    Ok(())
}

async fn order_address(server: &Server, order: &str) -> anyhow::Result<String> {
    let url = format!("{}/demo/orders/{order}", server.url);
    let order: serde_json::Value = reqwest::get(url).await?.json().await?;
    Ok(order["address"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn change_address_confirmed_calls_the_order_service() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "address-en");
    let address = "Room 5, 20 Century Avenue, Pudong, Shanghai 200120";

    customer.say("change my delivery address").await?;
    customer.say("100002").await?;
    let confirm = customer.say(address).await?;
    let done = customer.say("yes").await?;

    assert!(joined(&confirm).contains(address), "expected the confirmation to quote the address, got {confirm:?}");
    assert!(joined(&done).contains("Done"), "expected the change to be confirmed, got {done:?}");
    assert_eq!(order_address(&server, "100002").await?, address);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn change_address_declined_in_chinese_changes_nothing() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "address-zh");
    let before = order_address(&server, "100002").await?;

    customer.say("地址填错了").await?;
    customer.say("100002").await?;
    customer.say("上海市浦东新区世纪大道１００号２００１室").await?;
    let unclear = customer.say("什么意思？").await?;
    let declined = customer.say("不").await?;

    assert!(joined(&unclear).contains("是"), "expected the bot to ask for 是 or 否, got {unclear:?}");
    assert!(!declined.is_empty(), "expected a reply to 不");
    assert_eq!(order_address(&server, "100002").await?, before, "the address must not change after 不");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn question_mid_form_is_answered_and_the_form_goes_on() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "interrupt");

    customer.say("I need to update the shipping address").await?;
    let interrupted = customer.say("what are your opening hours").await?;
    let resumed = customer.say("100002").await?;

    assert!(interrupted.len() >= 2, "expected the answer and the question again, got {interrupted:?}");
    assert!(joined(&interrupted).contains("order number"), "expected the form to ask again, got {interrupted:?}");
    assert!(joined(&resumed).to_lowercase().contains("address"), "expected the form to ask for the address, got {resumed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn order_number_in_the_question_is_used() -> anyhow::Result<()> {
    let server = Server::start()?;
    let mut customer = Customer::new(&server, "order-inline");

    let replies = customer.say("Where is my order 100001?").await?;

    assert!(joined(&replies).contains("shipped"), "expected the status without being asked for the number, got {replies:?}");
    Ok(())
}
