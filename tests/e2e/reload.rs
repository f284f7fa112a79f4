//! Live reload of an edited bot folder while customers talk to the server: a
//! conversation in the middle of a form survives a valid edit, an invalid edit
//! changes nothing, and the file watcher picks an edit up by itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::harness::{copy_dir, demo_dir, shared_data_dir, temp_dir, Customer, Server};

/// A copy of the demo bot with a copy of its trained model and index.
fn bot_copy(name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let root = temp_dir(name);
    let (bot, data) = (root.join("bot"), root.join("data"));
    copy_dir(&demo_dir(), &bot)?;
    copy_dir(&shared_data_dir()?, &data)?;
    Ok((bot, data))
}

fn edit(path: &Path, from: &str, to: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    anyhow::ensure!(text.contains(from), "{} does not contain {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1))?;
    Ok(())
}

async fn reload(server: &Server) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::Client::new().post(format!("{}/api/v1/admin/reload", server.url)).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// Sends messages on `count` conversations until `stop` is set; returns the
/// statuses that were not 200.
async fn background_traffic(url: String, count: usize, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Vec<u16>> {
    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    let mut n = 0;
    while !*stop.borrow() {
        let conversation = format!("background-{}", n % count);
        let text = if n % 2 == 0 { "what are your opening hours" } else { "你们几点开门" };
        let response = client.post(format!("{url}/api/v1/conversations/{conversation}/messages")).json(&serde_json::json!({ "text": text })).send().await?;
        if !response.status().is_success() {
            failures.push(response.status().as_u16());
        }
        n += 1;
    }
    Ok(failures)
}

#[tokio::test(flavor = "multi_thread")]
async fn form_survives_reload_under_traffic() -> anyhow::Result<()> {
    let (bot, data) = bot_copy("reload-valid")?;
    let server = Server::start_bot(&bot, &data, &["--no-watch", "--store", "memory"], &[])?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(background_traffic(server.url.clone(), 8, stopped));
    let mut customer = Customer::new(&server, "reload-form");
    let prompt = customer.say("where is my order?").await?;

    // The edit moves the ask step down by one and changes a reply.
    let flow = bot.join("flows/order_status.yml");
    edit(&flow, "    steps:\n      - ask: order_number", "    steps:\n      - say: order_lookup_intro\n      - ask: order_number")?;
    let responses = bot.join("responses/orders.yml");
    let mut text = std::fs::read_to_string(&responses)?;
    text.push_str("  order_lookup_intro:\n    en: [\"Let me look that up.\"]\n    zh: [\"我来查一下。\"]\n");
    std::fs::write(&responses, text)?;
    let (status, report) = reload(&server).await?;
    let found = customer.say("100001").await?;
    stop.send_replace(true);
    let failures = traffic.await??;

    assert!(prompt.join("\n").contains("order number"), "expected the order-number prompt, got {prompt:?}");
    assert_eq!(status, 200, "reload: {report}");
    assert_eq!(report["reloaded"], true, "reload: {report}");
    assert!(found.join("\n").contains("shipped"), "the form did not survive the reload: {found:?}");
    assert!(failures.is_empty(), "background turns failed during the reload: {failures:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_edit_changes_nothing() -> anyhow::Result<()> {
    let (bot, data) = bot_copy("reload-invalid")?;
    let server = Server::start_bot(&bot, &data, &["--no-watch", "--store", "memory"], &[])?;
    let mut customer = Customer::new(&server, "reload-invalid");
    customer.say("where is my order?").await?;

    let flow = bot.join("flows/order_status.yml");
    edit(&flow, "prompt: ask_order_number", "prompt: no_such_response")?;
    let (status, report) = reload(&server).await?;
    let found = customer.say("100001").await?;
    let last: Value = reqwest::get(format!("{}/api/v1/admin/reload", server.url)).await?.json().await?;
    let metrics = reqwest::get(format!("{}/metrics", server.url)).await?.text().await?;

    assert_eq!(status, 422, "reload of an invalid bot: {report}");
    assert!(metrics.contains(r#"lepton_bot_reloads_total{outcome="rejected"} 1"#), "the metrics count the rejected reload:\n{metrics}");
    assert_eq!(last["reloaded"], false, "last report: {last}");
    assert_eq!(last["cause"], "api", "last report: {last}");
    assert_eq!(last["diagnostics"], report["diagnostics"], "last report keeps the diagnostics");
    assert_eq!(report["reloaded"], false);
    let diagnostics = report["diagnostics"].to_string();
    assert!(diagnostics.contains("order_status.yml:"), "diagnostics name the file and line: {diagnostics}");
    assert!(diagnostics.contains("no_such_response"), "diagnostics name the missing response: {diagnostics}");
    assert!(found.join("\n").contains("shipped"), "the running bot changed after an invalid edit: {found:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_picks_up_edit() -> anyhow::Result<()> {
    let (bot, data) = bot_copy("reload-watch")?;
    let server = Server::start_bot(&bot, &data, &["--store", "memory"], &[])?;
    let mut customer = Customer::new(&server, "reload-watch");
    let before = customer.say("what are your opening hours").await?;

    let responses = bot.join("responses/shop_info.yml");
    let text = std::fs::read_to_string(&responses)?;
    let marker = "Edited opening hours: always open.";
    std::fs::write(&responses, rewrite_english(&text, "opening_hours", marker).context("rewrite opening_hours")?)?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut after = Vec::new();
    while tokio::time::Instant::now() < deadline {
        after = customer.say("what are your opening hours").await?;
        if after.join("\n").contains(marker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let last: Value = reqwest::get(format!("{}/api/v1/admin/reload", server.url)).await?.json().await?;
    assert_eq!(last["cause"], "watch", "last report: {last}");
    assert!(!before.join("\n").contains(marker), "the marker was there before the edit: {before:?}");
    assert!(after.join("\n").contains(marker), "the watcher did not reload within 20 s: {after:?}");
    Ok(())
}

/// Replaces the English text of `response` in a responses file with `text`,
/// whether it is written on the `en:` line or as a block or list below it.
fn rewrite_english(file: &str, response: &str, text: &str) -> Option<String> {
    let start = file.find(&format!("  {response}:\n"))?;
    let en = start + file[start..].find("    en:")?;
    let line_end = en + file[en..].find('\n')?;
    // Skip the lines of a block or list value: they are indented deeper than `en:`.
    let mut end = line_end + 1;
    while file[end..].starts_with("      ") {
        end += file[end..].find('\n')? + 1;
    }
    Some(format!("{}    en: [\"{text}\"]\n{}", &file[..en], &file[end..]))
}
