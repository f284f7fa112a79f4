//! Metrics, readiness, the console's statistics and log hygiene with the real binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::console::{agent_command, PASSWORD};
use crate::harness::{demo_dir, shared_data_dir, temp_dir, Customer, Server, LEPTON};
use crate::redis_harness::{serve_on_redis, RedisServer};

/// Parses the OpenMetrics text into `name{labels}` and its value, comments left out.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(server: &Server) -> anyhow::Result<HashMap<String, f64>> {
    let response = reqwest::get(format!("{}/metrics", server.url)).await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("GET /metrics returned {}", response.status());
    }
    Ok(parse_metrics(&response.text().await?))
}

fn value(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_turns() -> anyhow::Result<()> {
    let server = Server::start()?;
    let before = scrape(&server).await?;

    let mut customer = Customer::new(&server, "metrics-e2e");
    customer.send("hello").await?;
    customer.send("blorf snarkle quux").await?;
    customer.send("zibble wop frazz").await?;
    let after = scrape(&server).await?;

    let fallback = r#"lepton_turns_total{channel="web",outcome="fallback"}"#;
    assert_eq!(before.get(fallback), Some(&0.0), "the web channel's turn counters start at 0");
    let handoff = r#"lepton_turns_total{channel="web",outcome="handoff"}"#;
    let turns = r#"lepton_turn_duration_seconds_count{channel="web"}"#;
    let commits = r#"lepton_store_operation_duration_seconds_count{operation="commit_turn"}"#;
    assert_eq!(value(&after, fallback) - value(&before, fallback), 1.0);
    assert_eq!(value(&after, handoff) - value(&before, handoff), 1.0);
    assert_eq!(value(&after, turns) - value(&before, turns), 3.0);
    assert_eq!(value(&after, commits) - value(&before, commits), 3.0);
    assert!(value(&after, "lepton_intent_confidence_count") > value(&before, "lepton_intent_confidence_count"));
    assert!(value(&after, "lepton_classification_duration_seconds_count") >= 3.0);
    assert_eq!(value(&after, "lepton_handoff_queue_length"), 1.0);
    assert_eq!(value(&after, "lepton_active_conversations"), 1.0);
    assert_eq!(value(&after, "lepton_admitted_conversations"), 1.0);
    assert!(value(&after, "lepton_admitted_conversations_max") > 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_token_required_when_set() -> anyhow::Result<()> {
    let store = temp_dir("metrics-token").join("sessions.redb");
    let store = store.to_str().context("store path is not UTF-8")?;
    let server = Server::start_with_args(&["--store", store, "--metrics-path", "/internal/metrics"], &[("LEPTON_METRICS_TOKEN", "scrape-secret")])?;
    let client = reqwest::Client::new();
    let url = format!("{}/internal/metrics", server.url);

    let without = client.get(&url).send().await?.status().as_u16();
    let wrong = client.get(&url).bearer_auth("guess").send().await?.status().as_u16();
    let with = client.get(&url).bearer_auth("scrape-secret").send().await?;
    let status = with.status().as_u16();
    let body = with.text().await?;
    let default_path = client.get(format!("{}/metrics", server.url)).send().await?.status().as_u16();

    assert_eq!(without, 401);
    assert_eq!(wrong, 401);
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE lepton_classification_duration_seconds histogram"), "{body}");
    assert_eq!(default_path, 404);
    Ok(())
}

async fn readiness(server: &Server) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::get(format!("{}/readyz", server.url)).await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_fails_while_redis_is_down() -> anyhow::Result<()> {
    let mut redis = RedisServer::start()?;
    let server = serve_on_redis(&redis, "readyz-e2e")?;
    let (ready_status, ready_body) = readiness(&server).await?;

    redis.kill()?;
    let (down_status, down_body) = readiness(&server).await?;

    redis.restart()?;
    let mut recovered = (0, Value::Null);
    for _ in 0..50 {
        recovered = readiness(&server).await?;
        if recovered.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(ready_status, 200, "{ready_body}");
    assert_eq!(ready_body["checks"]["store"], json!("ok"));
    assert_eq!(down_status, 503, "{down_body}");
    assert_eq!(down_body["not_ready"], json!(["store"]));
    assert_eq!(down_body["checks"]["models"], json!("ok"));
    assert_eq!(down_body["checks"]["store"], json!("failed"));
    assert_eq!(recovered.0, 200, "{}", recovered.1);
    Ok(())
}

/// Signs in to the console; returns the cookie.
async fn sign_in(client: &reqwest::Client, server: &Server, name: &str) -> anyhow::Result<String> {
    let response = client.post(format!("{}/console/api/session", server.url)).json(&json!({ "name": name, "password": PASSWORD })).send().await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("signing in as {name} returned {}", response.status());
    }
    let cookie = response.headers().get("set-cookie").context("no cookie")?.to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_route_is_for_admins() -> anyhow::Result<()> {
    let file = temp_dir("stats").join("agents.json");
    agent_command(&file, &["add", "root", "--admin"], &format!("{PASSWORD}\n"))?;
    agent_command(&file, &["add", "alice"], &format!("{PASSWORD}\n"))?;
    let store = temp_dir("stats-store").join("sessions.redb");
    let server = Server::start_with_args(&["--store", store.to_str().context("store path is not UTF-8")?, "--agents", file.to_str().context("path is not UTF-8")?], &[])?;
    let mut customer = Customer::new(&server, "stats-e2e");
    customer.send("hello").await?;
    customer.send("do you sell moon rocks").await?;

    let client = reqwest::Client::new();
    let url = format!("{}/console/api/admin/stats", server.url);
    let agent_cookie = sign_in(&client, &server, "alice").await?;
    let admin_cookie = sign_in(&client, &server, "root").await?;
    let agent = client.get(&url).header("cookie", agent_cookie).send().await?;
    let agent_status = agent.status().as_u16();
    let agent_body: Value = agent.json().await?;
    let admin = client.get(&url).header("cookie", admin_cookie).send().await?;
    let admin_status = admin.status().as_u16();
    let stats: Value = admin.json().await?;
    let signed_out = client.get(&url).send().await?.status().as_u16();
    let metrics = scrape(&server).await?;

    let buckets = stats["buckets"].as_array().cloned().unwrap_or_default();
    let turns: u64 = buckets.iter().filter_map(|bucket| bucket["turns"].as_u64()).sum();
    let fallbacks: u64 = buckets.iter().filter_map(|bucket| bucket["fallbacks"].as_u64()).sum();
    assert_eq!(agent_status, 403);
    assert_eq!(agent_body["error"]["code"], json!("forbidden"));
    assert_eq!(signed_out, 401);
    assert_eq!(admin_status, 200, "{stats}");
    assert_eq!(stats["bucket_seconds"], json!(300));
    assert_eq!(buckets.len(), 72);
    assert_eq!(turns, 2);
    assert_eq!(fallbacks, 1);
    assert_eq!(stats["top_unrecognised"][0]["text"], json!("do you sell moon rocks"), "{stats}");
    assert_eq!(stats["top_unrecognised"][0]["count"], json!(1));
    assert!(stats["top_intents"].as_array().is_some_and(|intents| !intents.is_empty()), "{stats}");
    assert_eq!(value(&metrics, r#"lepton_console_sign_ins_total{outcome="succeeded"}"#), 2.0);
    Ok(())
}

/// Serves the demo bot with JSON logs at INFO written to a file; returns the
/// server and the log file.
fn serve_with_json_logs(name: &str) -> anyhow::Result<(Server, std::path::PathBuf)> {
    let dir = temp_dir(name);
    let log = dir.join("lepton.log");
    let store = dir.join("sessions.redb");
    let mut child = Command::new(LEPTON)
        .args(["--log-format", "json", "serve", "--port", "0", "--no-watch"])
        .arg(demo_dir())
        .arg("--data-dir")
        .arg(shared_data_dir()?)
        .arg("--store")
        .arg(&store)
        .env("LEPTON_LOG", "info")
        .env_remove("LEPTON_AGENT_TOKEN")
        .env_remove("LEPTON_SESSION_STORE")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start lepton serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let Some(line) = lines.next() else { bail!("lepton serve exited before it was ready") };
        if let Some(rest) = line?.strip_prefix("Lepton is ready at ") {
            break rest.split_whitespace().next().unwrap_or_default().trim_end_matches('/').to_owned();
        }
    };
    Ok((Server::from_child(child, url, store), log))
}

#[tokio::test(flavor = "multi_thread")]
async fn info_logs_leave_out_customer_text() -> anyhow::Result<()> {
    const SECRET_TEXT: &str = "zanzibar-quokka-7731";
    let (server, log) = serve_with_json_logs("log-hygiene")?;

    let mut customer = Customer::new(&server, "log-hygiene");
    customer.send(&format!("my card is {SECRET_TEXT}")).await?;
    customer.send(&format!("{SECRET_TEXT} again")).await?;
    customer.send(&format!("where is my order {SECRET_TEXT}")).await?;
    let agent = crate::harness::Agent::new(&server, "alice");
    agent.act("log-hygiene", "claim", None).await?;
    agent.act("log-hygiene", "messages", Some(SECRET_TEXT)).await?;
    server.stop()?;
    let text = std::fs::read_to_string(&log)?;

    let turn_lines: Vec<Value> = text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).filter(|line| line["span"]["turn"].is_number()).collect();
    assert!(!text.contains(SECRET_TEXT), "the log contains the customer's text:\n{text}");
    assert!(!turn_lines.is_empty(), "no log line inside a turn span:\n{text}");
    assert_eq!(turn_lines[0]["span"]["conversation_id"], json!("log-hygiene"));
    assert_eq!(turn_lines[0]["span"]["channel"], json!("web"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_warning_names_the_configuration_key() -> anyhow::Result<()> {
    let (server, log) = serve_with_json_logs("forwarded-for-warning")?;

    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/conversations/forwarded-for/messages", server.url))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "text": "hello" }))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    server.stop()?;
    let text = std::fs::read_to_string(&log)?;

    let warning = text.lines().find(|line| line.contains("X-Forwarded-For")).with_context(|| format!("no X-Forwarded-For warning:\n{text}"))?;
    assert!(warning.contains("web.trusted_proxies"), "{warning}");
    assert!(!warning.contains("--trusted-proxies"), "lepton serve has no --trusted-proxies flag: {warning}");
    Ok(())
}
