//! `lepton test DIR`: runs the conversation tests kept in `DIR/tests` against the
//! real engine, and reports each failure with the conversation so far, the expected
//! and the actual value, and the place of the expectation.
//!
//! Every test is a new conversation on one [`Engine`] with an in-memory session
//! store, the bot's trained classifier and knowledge index, and the real HTTP client.
//! `{server_url}` points at a server on 127.0.0.1 that serves the demo orders
//! endpoint when the bot folder has `orders.json`. Tests run concurrently; the
//! output follows file and test order, whatever order they finish in.

mod check;
mod junit;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::serve::ListenerExt;
use axum::Router;
use bot_core::{ConversationId, Engine, EngineParts, InboundMessage, MemoryStore, Reply};
use lepton_flows::{ConversationTests, SourcePosition, TestCase, TESTS_FOLDER};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::app::{self, BotPaths};
use check::{Mismatch, Turn};

/// What `lepton test` runs and where it writes.
#[derive(Clone, Debug)]
pub struct TestOptions {
    pub paths: BotPaths,
    /// Write a JUnit XML report to this file.
    pub junit: Option<PathBuf>,
    /// Serve the demo orders endpoint from `orders.json` even when it is missing, so
    /// that a missing file is an error. Without it, the endpoint is served when the file exists.
    pub demo_orders: bool,
}

/// The outcome of one test case.
#[derive(Clone, Debug)]
pub(crate) struct CaseReport {
    /// Index of the test file, in sorted path order.
    pub file: usize,
    /// Index of the case in its file.
    pub index: usize,
    pub name: String,
    pub at: SourcePosition,
    /// The messages and replies up to the last step run.
    pub transcript: Vec<Line>,
    /// The expectations the failing step did not meet; empty when the test passed.
    pub mismatches: Vec<Mismatch>,
    pub elapsed: Duration,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// One message of a test's conversation.
#[derive(Clone, Debug)]
pub(crate) enum Line {
    User(String),
    Bot(Reply),
}

/// Runs the conversation tests of a bot, prints the results and writes the JUnit
/// report. Returns failure when a test fails or a test file is invalid.
pub fn run(options: &TestOptions) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: &TestOptions) -> anyhow::Result<ExitCode> {
    let bot_dir = &options.paths.bot_dir;
    let orders = OrdersServer::start(options).await?;
    let (paths, url) = (options.paths.clone(), orders.url.clone());
    let prepared = tokio::task::spawn_blocking(move || app::prepare(&paths, Some(&url))).await??;

    let tests = match lepton_flows::load_conversation_tests(bot_dir, &prepared.bot) {
        Ok(tests) => tests,
        Err(report) => {
            println!("{report}");
            println!("the test files in {} have errors; fix them and run the tests again", bot_dir.join(TESTS_FOLDER).display());
            return Ok(ExitCode::FAILURE);
        }
    };
    if tests.case_count() == 0 {
        anyhow::bail!(
            "no conversation tests found in {}; add a YAML file with a `tests:` list there (see docs/bot-format.md)",
            bot_dir.join(TESTS_FOLDER).display()
        );
    }
    let (cases, files) = (tests.case_count(), tests.files.len());
    println!("running {cases} {} from {files} {}", plural(cases, "test"), plural(files, "file"));

    let http = Arc::new(crate::http_client::ReqwestClient::new(crate::http_client::HttpClientConfig::default()).context("cannot create the HTTP client")?);
    let parts = EngineParts { classifier: prepared.classifier, knowledge: prepared.knowledge, http, store: Arc::new(MemoryStore::new()) };
    let engine = Engine::new(prepared.bot, parts);
    let reports = run_cases(&engine, &tests).await?;
    orders.stop().await;

    print!("{}", render_reports(&tests, &reports));
    if let Some(path) = &options.junit {
        let xml = junit::render(&tests, &reports);
        std::fs::write(path, xml).with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    let all_passed = reports.iter().all(CaseReport::passed);
    Ok(if all_passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs every case concurrently and returns the reports in file and case order.
async fn run_cases(engine: &Engine, tests: &ConversationTests) -> anyhow::Result<Vec<CaseReport>> {
    let mut tasks = JoinSet::new();
    for (file, test_file) in tests.files.iter().enumerate() {
        for (index, case) in test_file.cases.iter().enumerate() {
            let (engine, case) = (engine.clone(), case.clone());
            tasks.spawn(async move { run_case(&engine, case, file, index).await });
        }
    }
    let mut reports = Vec::new();
    while let Some(report) = tasks.join_next().await {
        reports.push(report.context("a conversation test panicked")?);
    }
    reports.sort_by_key(|report| (report.file, report.index));
    Ok(reports)
}

/// Sends a case's messages in order to a new conversation, until a step's expectations fail.
async fn run_case(engine: &Engine, case: TestCase, file: usize, index: usize) -> CaseReport {
    let started = Instant::now();
    let conversation = ConversationId::new(format!("test-{file}-{index}"));
    let mut transcript = Vec::new();
    let mut mismatches = Vec::new();

    for step in &case.steps {
        let mut message = InboundMessage::text(conversation.clone(), case.channel.clone(), step.user.clone());
        if let Some(lang) = &case.lang {
            message = message.with_locale_hint(lang.clone());
        }
        transcript.push(Line::User(step.user.clone()));

        let turn = match engine.handle(message).await {
            Ok(outcome) => Turn::from_outcome(outcome),
            Err(error) => {
                let actual = format!("the engine failed: {error}");
                mismatches.push(Mismatch { at: step.at.clone(), field: "user", expected: "a finished turn".to_owned(), actual });
                break;
            }
        };
        transcript.extend(turn.replies.iter().cloned().map(Line::Bot));
        mismatches.extend(step.expectations.iter().filter_map(|expectation| check::check(expectation, &turn)));
        if !mismatches.is_empty() {
            break;
        }
    }
    CaseReport { file, index, name: case.name, at: case.at, transcript, mismatches, elapsed: started.elapsed() }
}

/// Renders `ok` or `FAILED` per test, each failure's details, and the summary line.
fn render_reports(tests: &ConversationTests, reports: &[CaseReport]) -> String {
    let mut text = String::new();
    for report in reports {
        let file = tests.files[report.file].path.display();
        let status = if report.passed() { "ok    " } else { "FAILED" };
        let _ = writeln!(text, "{status} {file}: {}", report.name);
        if !report.passed() {
            text.push_str(&render_failure(report, "    "));
        }
    }
    let passed = reports.iter().filter(|report| report.passed()).count();
    let _ = writeln!(text, "\n{passed} passed, {} failed", reports.len() - passed);
    text
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

/// Renders the conversation up to the failing step, then each unmet expectation
/// with its place, the expected and the actual value. Every line starts with `indent`.
pub(crate) fn render_failure(report: &CaseReport, indent: &str) -> String {
    let mut text = String::new();
    for line in &report.transcript {
        match line {
            Line::User(message) => push_labelled(&mut text, indent, "user: ", message),
            Line::Bot(reply) => push_labelled(&mut text, indent, "bot:  ", &describe_reply(reply)),
        }
    }
    for mismatch in &report.mismatches {
        let _ = writeln!(text, "{indent}{}: {}", mismatch.at, mismatch.field);
        push_labelled(&mut text, indent, "  expected: ", &mismatch.expected);
        push_labelled(&mut text, indent, "  actual:   ", &mismatch.actual);
    }
    text
}

/// Returns a reply's text, with its buttons and handoff on the lines after it.
fn describe_reply(reply: &Reply) -> String {
    let mut text = reply.text.clone();
    if !reply.quick_replies.is_empty() {
        let buttons: Vec<String> = reply.quick_replies.iter().map(|button| format!("{} ({})", button.title, button.payload)).collect();
        let _ = write!(text, "\n[buttons: {}]", buttons.join(", "));
    }
    if let Some(notice) = &reply.handoff {
        let _ = write!(text, "\n[handoff: {}]", notice.state.name());
    }
    text
}

/// Writes `label` and `value`, with the value's later lines aligned under its first.
fn push_labelled(text: &mut String, indent: &str, label: &str, value: &str) {
    let padding = " ".repeat(label.chars().count());
    for (number, line) in value.lines().enumerate() {
        let prefix = if number == 0 { label } else { padding.as_str() };
        let _ = writeln!(text, "{indent}{prefix}{line}");
    }
    if value.is_empty() {
        let _ = writeln!(text, "{indent}{}", label.trim_end());
    }
}

/// A server on 127.0.0.1 for `{server_url}`: the demo orders endpoint when the bot
/// has `orders.json` (or `--demo-orders` is given), else nothing but 404s.
struct OrdersServer {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl OrdersServer {
    async fn start(options: &TestOptions) -> anyhow::Result<Self> {
        let bot_dir = &options.paths.bot_dir;
        let router = if options.demo_orders || bot_dir.join("orders.json").is_file() {
            crate::demo_orders::router(crate::demo_orders::load(bot_dir)?)
        } else {
            Router::new()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot listen on 127.0.0.1 for the demo orders endpoint")?;
        let url = format!("http://{}", listener.local_addr()?);
        // Without TCP_NODELAY, delayed ACKs hold each response for tens of milliseconds.
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self { url, stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the demo orders endpoint failed"),
            Err(error) => tracing::warn!(%error, "the demo orders endpoint panicked"),
        }
    }
}
