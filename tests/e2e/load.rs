//! Many conversations at once: every reply arrives, in order, with no state
//! leaking between conversations.

use crate::harness::{Customer, Server};

const CONVERSATIONS: usize = 50;

async fn run_conversation(mut customer: Customer, order: &'static str, status: &'static str) -> anyhow::Result<()> {
    let script = ["hello", "where is my order", order, "thanks", "what are your opening hours", "where is my order", "12", order, "thank you", "bye"];
    let mut last_seq = 0;
    for (step, text) in script.iter().enumerate() {
        let body = customer.send(text).await?;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        assert!(events.len() >= 2, "{}: message {step} {text:?} got no reply: {body}", customer.conversation);
        for event in &events {
            let seq = event["seq"].as_u64().unwrap_or(0);
            assert_eq!(seq, last_seq + 1, "{}: sequence numbers must have no gaps: {body}", customer.conversation);
            last_seq = seq;
        }
        if step == 2 || step == 7 {
            let replies = crate::harness::reply_texts(&body).join("\n");
            assert!(replies.contains(status), "{}: expected {status:?} for order {order}, got {replies:?}", customer.conversation);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_conversations_of_ten_messages() -> anyhow::Result<()> {
    let server = Server::start()?;
    let orders = [("100001", "shipped"), ("100002", "processing"), ("100003", "delivered")];

    let mut tasks = Vec::new();
    for i in 0..CONVERSATIONS {
        let (order, status) = orders[i % orders.len()];
        let customer = Customer::new(&server, &format!("load-{i}"));
        tasks.push(tokio::spawn(run_conversation(customer, order, status)));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
