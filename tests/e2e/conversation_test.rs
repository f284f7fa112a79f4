//! `lepton test`: the demo's own conversation tests, a failing expectation, an
//! invalid test file and the JUnit report, each run by the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;

use crate::harness::{copy_dir, demo_dir, shared_data_dir, temp_dir, LEPTON};

/// Copies the demo bot to a new folder and replaces its `tests/` folder with `files`.
fn demo_with_tests(name: &str, files: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
    let bot = temp_dir(name).join("bot");
    copy_dir(&demo_dir(), &bot)?;
    std::fs::remove_dir_all(bot.join("tests"))?;
    std::fs::create_dir_all(bot.join("tests"))?;
    for (file, text) in files {
        std::fs::write(bot.join("tests").join(file), text)?;
    }
    Ok(bot)
}

/// Runs `lepton test` on `bot` with the shared model and index and `extra` arguments.
fn lepton_test(bot: &Path, extra: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(LEPTON)
        .arg("test")
        .arg(bot)
        .arg("--data-dir")
        .arg(shared_data_dir()?)
        .args(extra)
        .env("LEPTON_LOG", "warn")
        .output()
        .context("cannot run lepton test")?;
    Ok(output)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const PASSING_AND_FAILING: &str = "\
tests:
  - name: greeting
    lang: en
    steps:
      - user: hi
        intent: greet
  - name: \"订单 <100001> & status\"
    lang: zh
    steps:
      - user: 我的订单到哪了
        intent: order_status
      - user: \"100001\"
        reply: { contains: 已签收 }
";

#[test]
fn demo_tests_pass() -> anyhow::Result<()> {
    let output = lepton_test(&demo_dir(), &[])?;
    let text = stdout(&output);

    assert_eq!(output.status.code(), Some(0), "lepton test demo failed:\n{text}");
    let summary = text.lines().last().unwrap_or_default();
    assert!(summary.ends_with(" passed, 0 failed"), "unexpected summary {summary:?}:\n{text}");
    assert!(!summary.starts_with("0 passed"), "no test ran:\n{text}");
    Ok(())
}

#[test]
fn failing_expectation_exits_one() -> anyhow::Result<()> {
    let bot = demo_with_tests("failing-test", &[("orders.yml", PASSING_AND_FAILING)])?;

    let output = lepton_test(&bot, &[])?;
    let text = stdout(&output);

    assert_eq!(output.status.code(), Some(1), "expected exit code 1:\n{text}");
    assert!(text.contains("ok     "), "expected the passing test:\n{text}");
    assert!(text.contains("FAILED "), "expected the failing test:\n{text}");
    let place = format!("{}:13:9: reply", bot.join("tests/orders.yml").display());
    assert!(text.contains(&place), "expected the expectation's place {place}:\n{text}");
    assert!(text.contains("expected: contains \"已签收\""), "expected the expected value:\n{text}");
    assert!(text.contains("actual:   \"查到了，订单 100001 当前状态：已发货。"), "expected the actual reply:\n{text}");
    assert!(text.contains("user: 我的订单到哪了"), "expected the conversation so far:\n{text}");
    assert!(text.lines().any(|line| line == "1 passed, 1 failed"), "expected the summary:\n{text}");
    Ok(())
}

#[test]
fn invalid_test_file_reports_position() -> anyhow::Result<()> {
    let invalid = "tests:\n  - name: typo\n    steps:\n      - user: hi\n        replly: { contains: Hello }\n";
    let bot = demo_with_tests("invalid-test", &[("ok.yml", PASSING_AND_FAILING), ("typo.yml", invalid)])?;

    let output = lepton_test(&bot, &[])?;
    let text = stdout(&output);

    assert_eq!(output.status.code(), Some(1), "expected exit code 1:\n{text}");
    let place = format!("{}:5:9: error: unknown field `replly`", bot.join("tests/typo.yml").display());
    assert!(text.contains(&place), "expected {place}:\n{text}");
    assert!(text.contains("did you mean `reply`?"), "expected the closest field:\n{text}");
    assert!(!text.contains("FAILED"), "expected no test to run:\n{text}");
    Ok(())
}

#[test]
fn missing_tests_folder_is_an_error() -> anyhow::Result<()> {
    let bot = demo_with_tests("no-tests", &[])?;
    std::fs::remove_dir_all(bot.join("tests"))?;

    let output = lepton_test(&bot, &[])?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "expected exit code 1:\n{stderr}");
    assert!(stderr.contains("no conversation tests found in"), "expected the missing tests:\n{stderr}");
    Ok(())
}

#[test]
fn junit_report_parses() -> anyhow::Result<()> {
    let bot = demo_with_tests("junit", &[("orders.yml", PASSING_AND_FAILING)])?;
    let report = bot.parent().context("bot folder without a parent")?.join("junit.xml");

    let output = lepton_test(&bot, &["--junit", report.to_str().context("report path is not UTF-8")?])?;
    let xml = std::fs::read_to_string(&report).with_context(|| format!("no JUnit report:\n{}", stdout(&output)))?;
    let document = roxmltree::Document::parse(&xml).with_context(|| format!("invalid XML:\n{xml}"))?;

    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"), "{xml}");
    assert_eq!(root.attribute("failures"), Some("1"), "{xml}");
    let suites: Vec<roxmltree::Node> = root.children().filter(|node| node.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1, "{xml}");
    let cases: Vec<roxmltree::Node> = suites[0].children().filter(|node| node.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2, "{xml}");
    assert_eq!(cases[1].attribute("name"), Some("订单 <100001> & status"), "{xml}");
    let failure = cases[1].children().find(|node| node.has_tag_name("failure")).context("no failure element")?;
    let message = failure.attribute("message").unwrap_or_default();
    assert!(message.contains("tests/orders.yml:13:9: reply"), "{message}");
    assert!(cases[0].children().all(|node| !node.has_tag_name("failure")), "{xml}");
    Ok(())
}
