//! The server's life cycle and configuration: SIGTERM with turns in flight,
//! a restart on the same store, and `lepton config check|show`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::Path as UrlPath;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::harness::{copy_dir, demo_dir, reply_texts, shared_data_dir, temp_dir, Customer, Server, LEPTON};

/// How long the fake order service takes to respond: long enough for SIGTERM
/// to arrive while the turns wait for it, shorter than the flow's 3 s timeout.
const ORDER_DELAY: Duration = Duration::from_millis(2000);

/// Starts an order service on 127.0.0.1 that responds to every lookup after
/// `ORDER_DELAY`. Returns its base URL and the count of requests it received.
async fn start_slow_orders() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let router = Router::new().route(
        "/demo/orders/{number}",
        get(move |UrlPath(number): UrlPath<String>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(ORDER_DELAY).await;
                let status = if number == "100001" { "shipped" } else { "processing" };
                Json(json!({ "status_en": status, "status_zh": status, "eta": "2026-12-08", "carrier": "SF Express" }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((url, received))
}

/// Copies the demo bot with `server_url` pointing its order lookups at `orders_url`.
fn demo_with_orders_at(orders_url: &str) -> anyhow::Result<std::path::PathBuf> {
    let bot = temp_dir("lifecycle-bot");
    copy_dir(&demo_dir(), &bot)?;
    let settings = std::fs::read_to_string(bot.join("bot.yml"))?;
    let anchor = "  variables:\n";
    if !settings.contains(anchor) {
        bail!("demo/bot.yml has no `variables:` under settings");
    }
    let settings = settings.replacen(anchor, &format!("{anchor}    server_url: {orders_url}\n"), 1);
    std::fs::write(bot.join("bot.yml"), settings)?;
    Ok(bot)
}

fn start(bot: &Path, config: &Path) -> anyhow::Result<Server> {
    let config = config.to_str().context("config path is not UTF-8")?;
    Server::start_bot(bot, &shared_data_dir()?, &["--no-watch", "--config", config], &[])
}

async fn wait_for(received: &AtomicUsize, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    while received.load(Ordering::SeqCst) < count {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the order service received {} of {count} lookups", received.load(Ordering::SeqCst));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn last_seq(body: &Value) -> u64 {
    body["events"].as_array().and_then(|events| events.last()).and_then(|event| event["seq"].as_u64()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_turns_then_restart_resumes() -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 4;
    const WAITING: usize = 3;
    let (orders_url, received) = start_slow_orders().await?;
    let bot = demo_with_orders_at(&orders_url)?;
    let folder = temp_dir("lifecycle-config");
    let config = folder.join("lepton.toml");
    std::fs::write(&config, "[server]\nshutdown_timeout_seconds = 15\n\n[store]\nkind = \"embedded\"\npath = \"sessions.redb\"\n")?;
    let server = start(&bot, &config)?;

    // Every customer asks for an order's status; the bot waits for the number.
    let mut customers: Vec<Customer> = (0..IN_FLIGHT + WAITING).map(|i| Customer::new(&server, &format!("lifecycle-{i}"))).collect();
    let mut seqs = Vec::new();
    for customer in &mut customers {
        let body = customer.send("where is my order").await?;
        seqs.push(last_seq(&body));
    }

    // The first ones send their order number; each turn waits on the slow order service.
    let mut turns = Vec::new();
    for mut customer in customers.drain(..IN_FLIGHT) {
        turns.push(tokio::spawn(async move {
            let body = customer.send("100001").await;
            (customer, body)
        }));
    }
    wait_for(&received, IN_FLIGHT).await?;
    server.terminate()?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = reqwest::Client::new().get(format!("{}/healthz", server.url)).timeout(Duration::from_secs(2)).send().await;
    assert!(late.is_err(), "the server accepted a new connection after SIGTERM: {late:?}");

    let mut answered = Vec::new();
    for turn in turns {
        let (customer, body) = turn.await?;
        let body = body.with_context(|| format!("{}: the turn in flight at SIGTERM got no reply", customer.conversation))?;
        let replies = reply_texts(&body).join("\n");
        assert!(replies.contains("shipped"), "{}: expected the order status, got {replies:?}", customer.conversation);
        answered.push((customer, last_seq(&body)));
    }
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(20))).await??;
    assert!(status.success(), "lepton serve exited with {status} after SIGTERM");

    // Restarted on the same store, each conversation continues where it was.
    let server = start(&bot, &config)?;
    for (mut customer, seq) in answered {
        customer.base = server.url.clone();
        let body = customer.send("thanks").await?;
        let first = body["events"][0]["seq"].as_u64().unwrap_or(0);
        assert_eq!(first, seq + 1, "{}: the transcript did not continue after the restart: {body}", customer.conversation);
    }
    for (mut customer, seq) in customers.into_iter().zip(seqs.into_iter().skip(IN_FLIGHT)) {
        customer.base = server.url.clone();
        let body = customer.send("100002").await?;
        let replies = reply_texts(&body).join("\n");
        assert!(replies.contains("processing"), "{}: the form waiting for the order number was lost: {replies:?}", customer.conversation);
        assert_eq!(body["events"][0]["seq"].as_u64(), Some(seq + 1), "{}: {body}", customer.conversation);
    }
    server.stop()
}

/// Reads from `stream` until the server closes it or `limit` passes; returns
/// what arrived and how long the server took.
fn read_until_closed(stream: &mut std::net::TcpStream, limit: Duration) -> anyhow::Result<(String, Duration)> {
    use std::io::Read;
    let started = Instant::now();
    stream.set_read_timeout(Some(limit))?;
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => bail!("the server kept a slow connection open past {limit:?} ({error}); received {:?}", String::from_utf8_lossy(&received)),
        }
    }
    Ok((String::from_utf8_lossy(&received).into_owned(), started.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_and_do_not_delay_shutdown() -> anyhow::Result<()> {
    use std::io::Write;
    // A shutdown deadline far above the read timeout: a prompt exit shows
    // that the slow connection was closed, not waited for.
    let env = [("LEPTON_SERVER_HEADER_READ_TIMEOUT_SECONDS", "1"), ("LEPTON_SERVER_SHUTDOWN_TIMEOUT_SECONDS", "30")];
    let server = Server::start_with_args(&[], &env)?;
    let address = server.url.trim_start_matches("http://").to_owned();

    // Half a request's headers: the connection is closed after the read timeout.
    let mut stream = std::net::TcpStream::connect(&address)?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: lepton\r\n")?;
    let (_, took) = tokio::task::block_in_place(|| read_until_closed(&mut stream, Duration::from_secs(6)))?;
    assert!(took >= Duration::from_millis(500), "the connection was closed before the read timeout: {took:?}");

    // A body that stops halfway: the request fails and the connection closes.
    let mut stream = std::net::TcpStream::connect(&address)?;
    let head = "POST /api/v1/conversations/slow-body/messages HTTP/1.1\r\nHost: lepton\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes())?;
    stream.write_all(br#"{"text": "hel"#)?;
    let (response, _) = tokio::task::block_in_place(|| read_until_closed(&mut stream, Duration::from_secs(6)))?;
    assert!(!response.starts_with("HTTP/1.1 200"), "a request whose body never finished succeeded: {response}");

    // SIGTERM with a slow connection open: the server exits within the read
    // timeout, not at the 30 s shutdown deadline.
    let mut slow = std::net::TcpStream::connect(&address)?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\n")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = Instant::now();
    server.terminate()?;
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(8))).await??;
    assert!(status.success(), "lepton serve exited with {status} after SIGTERM");
    assert!(stopped.elapsed() < Duration::from_secs(8), "the slow connection delayed the shutdown: {:?}", stopped.elapsed());
    drop(slow);
    Ok(())
}

fn lepton_config(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<std::process::Output> {
    let mut command = Command::new(LEPTON);
    command.arg("config").args(args).env_remove("LEPTON_CONFIG").env_remove("LEPTON_AGENT_TOKEN").env_remove("LEPTON_SERVER_PORT");
    for (name, value) in env {
        command.env(name, value);
    }
    Ok(command.output()?)
}

#[test]
fn config_check_reports_key_and_line() -> anyhow::Result<()> {
    let file = temp_dir("config-check").join("lepton.toml");
    std::fs::write(&file, "[server]\nhost = \"0.0.0.0\"\nprot = 9000\n\n[web]\nmax_sockets = \"many\"\n")?;
    let path = file.to_str().context("path is not UTF-8")?;

    let output = lepton_config(&["check", "--config", path], &[])?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{path}:3:1: `server.prot`: unknown key `prot`; did you mean `server.port`?")), "{stderr}");
    Ok(())
}

#[test]
fn config_check_reports_wrong_type() -> anyhow::Result<()> {
    let file = temp_dir("config-type").join("lepton.toml");
    std::fs::write(&file, "[web]\nmax_sockets = \"many\"\n")?;
    let path = file.to_str().context("path is not UTF-8")?;

    let output = lepton_config(&["check", "--config", path], &[])?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{path}:2:")), "{stderr}");
    assert!(stderr.contains("`web.max_sockets`"), "{stderr}");
    Ok(())
}

#[test]
fn config_check_accepts_example() -> anyhow::Result<()> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lepton.example.toml");

    let output = lepton_config(&["check", "--config", example.to_str().unwrap_or_default()], &[])?;

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

#[test]
fn config_check_names_mistyped_variable() -> anyhow::Result<()> {
    let output = lepton_config(&["check"], &[("LEPTON_SERVER_PORT", "eighty")])?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LEPTON_SERVER_PORT"), "{stderr}");
    Ok(())
}

#[test]
fn config_show_redacts_and_names_sources() -> anyhow::Result<()> {
    let file = temp_dir("config-show").join("lepton.toml");
    std::fs::write(&file, "[server]\nport = 9000\n[redis]\nurl = \"redis://:file-pa55@127.0.0.1:6379/0\"\n")?;

    let output = lepton_config(&["show", "--config", file.to_str().unwrap_or_default()], &[("LEPTON_AGENT_TOKEN", "env-t0ken")])?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains("env-t0ken"), "{stdout}");
    assert!(!stdout.contains("file-pa55"), "{stdout}");
    assert!(stdout.contains("token = \"<redacted>\"  # environment LEPTON_AGENT_TOKEN"), "{stdout}");
    assert!(stdout.contains("port = 9000  # "), "{stdout}");
    Ok(())
}
