//! The authors' diagnostics: the model check of `lepton validate`, the
//! cross-validation report of `lepton eval --cross-validation`, and `lepton chat`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::Context;

use crate::harness::{demo_dir, shared_data_dir, temp_dir, LEPTON};

/// A bot whose `order_status` intent has a near copy of a `greet` example, so a model
/// trained without one of them classifies it as the other intent.
const CONFUSED_BOT: &[(&str, &str)] = &[
    ("bot.yml", "settings:\n  name: confused\n  languages: [en]\n"),
    (
        "intents.yml",
        concat!(
            "intents:\n",
            "  greet:\n",
            "    response: hello\n",
            "    examples:\n",
            "      en: [hello, hi, hey there, good morning, hiya, hello there my friend]\n",
            "  order_status:\n",
            "    response: status\n",
            "    examples:\n",
            "      en:\n",
            "        - where is my order\n",
            "        - track my package\n",
            "        - order status\n",
            "        - has my parcel shipped\n",
            "        - when will my order arrive\n",
            "        - hello there my friend!\n",
        ),
    ),
    ("responses.yml", "responses:\n  hello:\n    en: [Hello!]\n  status:\n    en: [Let me check.]\n"),
];

fn write_bot(name: &str, files: &[(&str, &str)]) -> anyhow::Result<std::path::PathBuf> {
    let dir = temp_dir(name);
    for (file, text) in files {
        std::fs::write(dir.join(file), text)?;
    }
    Ok(dir)
}

fn lepton(args: &[&str], dirs: &[&Path]) -> anyhow::Result<Output> {
    let output = Command::new(LEPTON).args(args).args(dirs).env("LEPTON_LOG", "warn").output()?;
    Ok(output)
}

#[test]
fn validate_warns_about_confused_examples() -> anyhow::Result<()> {
    let dir = write_bot("confused-bot", CONFUSED_BOT)?;
    let data = temp_dir("confused-data");

    let output = Command::new(LEPTON).arg("validate").arg(&dir).arg("--data-dir").arg(&data).env("LEPTON_LOG", "warn").output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "warnings alone must exit 0:\n{stdout}");
    let pair = "intents.yml:5:54: warning: example `hello there my friend` of intent `greet` is classified as `order_status`";
    assert!(stdout.contains(pair), "expected the greet example reported at its place:\n{stdout}");
    let copy = format!("`hello there my friend!` at {}, is in turn classified as `greet`", dir.join("intents.yml:15:11").display());
    assert!(stdout.contains(&copy), "expected its copy in order_status named in the same warning:\n{stdout}");
    assert!(stdout.contains("model check: 5-fold cross-validation of 12 intent examples"), "expected the model check's summary:\n{stdout}");
    Ok(())
}

#[test]
fn validate_reuses_cached_model_check() -> anyhow::Result<()> {
    let dir = write_bot("cached-bot", CONFUSED_BOT)?;
    let data = temp_dir("cached-data");
    let run = || Command::new(LEPTON).arg("validate").arg(&dir).arg("--data-dir").arg(&data).env("LEPTON_LOG", "warn").output();

    let first = String::from_utf8_lossy(&run()?.stdout).into_owned();
    let second = String::from_utf8_lossy(&run()?.stdout).into_owned();

    assert!(!first.contains("cached result"), "the first run has no cache:\n{first}");
    assert!(second.contains("model check: cached result of"), "expected the second run to reuse the first's result:\n{second}");
    assert_eq!(first.lines().filter(|l| l.contains("warning:")).count(), second.lines().filter(|l| l.contains("warning:")).count());
    Ok(())
}

#[test]
fn validate_no_model_skips_check() -> anyhow::Result<()> {
    let dir = write_bot("no-model-bot", CONFUSED_BOT)?;

    let output = lepton(&["validate", "--no-model"], &[&dir])?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("is classified as"), "--no-model must skip the model check:\n{stdout}");
    assert!(!stdout.contains("model check:"), "{stdout}");
    Ok(())
}

#[test]
fn validate_explains_skipped_model_check() -> anyhow::Result<()> {
    let mut files = CONFUSED_BOT.to_vec();
    files[1] = ("intents.yml", "intents:\n  greet:\n    response: hello\n    examples:\n      en: [hello, hi, 你好]\n");
    files[2] = ("responses.yml", "responses:\n  hello:\n    en: [Hello!]\n");
    let dir = write_bot("small-bot", &files)?;

    let output = Command::new(LEPTON).arg("validate").arg(&dir).arg("--data-dir").arg(temp_dir("small-data")).env("LEPTON_LOG", "warn").output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{stdout}");
    let line = "model check: skipped, it needs at least 2 intents and 10 distinct examples, and the bot has 1 intent and 3 distinct examples";
    assert!(stdout.contains(line), "expected the reason the model check did not run:\n{stdout}");
    Ok(())
}

#[test]
fn validate_fails_when_encoder_cannot_load() -> anyhow::Result<()> {
    let mut files = CONFUSED_BOT.to_vec();
    files[0] = ("bot.yml", "settings:\n  name: confused\n  languages: [en]\n  encoder:\n    model: broken-model\n");
    let dir = write_bot("broken-encoder-bot", &files)?;
    let model = dir.join("broken-model");
    std::fs::create_dir(&model)?;
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::write(model.join(file), "")?;
    }

    let output = Command::new(LEPTON).arg("validate").arg(&dir).arg("--data-dir").arg(temp_dir("broken-encoder-data")).env("LEPTON_LOG", "warn").output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "a bot whose encoder cannot load must fail validation:\n{stdout}");
    assert!(stdout.contains("error: the model check failed: cannot load the encoder"), "{stdout}");
    assert!(stdout.contains("run with --no-model to skip the check"), "{stdout}");
    assert!(stdout.contains("1 error, 0 warnings"), "{stdout}");
    Ok(())
}

/// Writes the confused bot with `encoder` as its settings.encoder block, and
/// the tiny MPNet fixture (64 positions, so 62 tokens) in `tiny-model`.
fn write_tiny_encoder_bot(name: &str, encoder: &str) -> anyhow::Result<std::path::PathBuf> {
    let bot_yml = format!("settings:\n  name: confused\n  languages: [en]\n  encoder:\n{encoder}");
    let mut files = CONFUSED_BOT.to_vec();
    files[0] = ("bot.yml", &bot_yml);
    let dir = write_bot(name, &files)?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("encoder/tests/fixtures/tiny-mpnet");
    std::fs::create_dir(dir.join("tiny-model"))?;
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture.join(file), dir.join("tiny-model").join(file)).with_context(|| format!("copy {file}"))?;
    }
    Ok(dir)
}

#[test]
fn max_tokens_over_limit_at_its_line() -> anyhow::Result<()> {
    let dir = write_tiny_encoder_bot("too-many-tokens-bot", "    model: tiny-model\n    max_tokens: 100\n")?;

    let output = lepton(&["validate", "--no-model"], &[&dir])?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bot.yml:6:17: error: max_tokens 100 is too large for the model"), "the error must name the max_tokens line:\n{stdout}");
    assert!(stdout.contains("allows at most 62 tokens"), "{stdout}");
    assert!(stdout.contains("1 error, 0 warnings"), "{stdout}");
    Ok(())
}

#[test]
fn default_max_tokens_fits_small_model() -> anyhow::Result<()> {
    let dir = write_tiny_encoder_bot("default-tokens-bot", "    model: tiny-model\n")?;

    let output = Command::new(LEPTON).arg("validate").arg(&dir).arg("--data-dir").arg(temp_dir("default-tokens-data")).env("LEPTON_LOG", "warn").output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "the default must shrink to the model's 62 tokens:\n{stdout}");
    assert!(stdout.contains("with the intent head on the bot's encoder"), "the model check must load the encoder:\n{stdout}");
    Ok(())
}

#[test]
fn bad_sentence_bert_config_at_model_line() -> anyhow::Result<()> {
    let cases = [("broken-sbert-bot", "{\"max_seq_length\": 12", "invalid JSON"), ("zero-sbert-bot", "{\"max_seq_length\": 0}", "max_seq_length 0 is below 3")];
    for (name, file, reason) in cases {
        let dir = write_tiny_encoder_bot(name, "    model: tiny-model\n")?;
        std::fs::write(dir.join("tiny-model/sentence_bert_config.json"), file)?;

        let output = lepton(&["validate", "--no-model"], &[&dir])?;
        let stdout = String::from_utf8_lossy(&output.stdout);

        assert_eq!(output.status.code(), Some(1), "{name}: {stdout}");
        assert!(stdout.contains("bot.yml:5:12: error: the encoder's default max_tokens cannot be read"), "{name}: the error must name the model line:\n{stdout}");
        assert!(stdout.contains("sentence_bert_config.json"), "{name}: {stdout}");
        assert!(stdout.contains(reason), "{name}: {stdout}");
    }
    Ok(())
}

#[test]
fn max_tokens_within_limit_accepted() -> anyhow::Result<()> {
    let dir = write_tiny_encoder_bot("fitting-tokens-bot", "    model: tiny-model\n    max_tokens: 62\n")?;

    let output = lepton(&["validate", "--no-model"], &[&dir])?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "62 tokens fit 64 positions after the padding index:\n{stdout}");
    Ok(())
}

#[test]
fn validate_skips_model_check_on_errors() -> anyhow::Result<()> {
    let mut files = CONFUSED_BOT.to_vec();
    files[2] = ("responses.yml", "responses:\n  hello:\n    en: [Hello!]\n");
    let dir = write_bot("broken-confused-bot", &files)?;

    let output = lepton(&["validate"], &[&dir])?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("undefined response `status`"), "{stdout}");
    assert!(!stdout.contains("model check:"), "the model check needs a bot without errors:\n{stdout}");
    Ok(())
}

/// Parses `text` as XML and returns the root element's name.
fn xml_root(text: &str) -> anyhow::Result<String> {
    let document = roxmltree::Document::parse(text)?;
    Ok(document.root_element().tag_name().name().to_owned())
}

#[test]
fn eval_cross_validation_writes_report_folder() -> anyhow::Result<()> {
    let out = temp_dir("eval-out");

    let output = Command::new(LEPTON)
        .args(["eval", "--cross-validation", "3", "--out"])
        .arg(&out)
        .arg(demo_dir())
        .env("LEPTON_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "lepton eval failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("cross-validation:  3 folds"), "{stdout}");
    assert!(stdout.contains("order_status"), "expected the per-intent table:\n{stdout}");
    for image in ["confusion.svg", "confidence.svg"] {
        let text = std::fs::read_to_string(out.join(image))?;
        assert!(text.len() > 1000, "{image} has only {} bytes", text.len());
        assert_eq!(xml_root(&text).with_context(|| format!("{image} is not well-formed"))?, "svg", "{image}");
    }
    let confusion = std::fs::read_to_string(out.join("confusion.svg"))?;
    assert!(confusion.contains(">order_status</text>"), "expected intent labels in the confusion matrix");
    let index = std::fs::read_to_string(out.join("index.html"))?;
    assert!(index.contains("<img src=\"confusion.svg\""), "index.html does not show confusion.svg");
    assert!(index.contains("<img src=\"confidence.svg\""), "index.html does not show confidence.svg");
    assert!(index.contains("<td>order_status</td>"), "index.html has no per-intent table");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json"))?)?;
    assert_eq!(report["folds"], 3);
    assert!(report["per_intent"].as_array().is_some_and(|rows| rows.len() > 10), "{}", report["per_intent"]);
    Ok(())
}

#[test]
fn eval_cross_validation_labels_chinese_intents() -> anyhow::Result<()> {
    let mut files = CONFUSED_BOT.to_vec();
    let intents = CONFUSED_BOT[1].1.replace("  greet:", "  问候:");
    files[1] = ("intents.yml", &intents);
    let dir = write_bot("escape-bot", &files)?;
    let out = temp_dir("escape-out");

    let output = Command::new(LEPTON).args(["eval", "--cross-validation", "2", "--out"]).arg(&out).arg(&dir).env("LEPTON_LOG", "warn").output()?;

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let confusion = std::fs::read_to_string(out.join("confusion.svg"))?;
    assert!(confusion.contains(">问候</text>"), "expected the Chinese intent name as a label");
    assert_eq!(xml_root(&confusion)?, "svg");
    let index = std::fs::read_to_string(out.join("index.html"))?;
    assert!(index.contains("<td>问候</td>"), "expected the Chinese intent name in the per-intent table");
    Ok(())
}

#[test]
fn eval_rejects_threshold_outside_unit_interval() -> anyhow::Result<()> {
    let dir = write_bot("threshold-bot", CONFUSED_BOT)?;
    for (flag, value) in [("--threshold", "2"), ("--threshold", "NaN"), ("--margin", "-0.1")] {
        let output = Command::new(LEPTON).args(["eval", &format!("{flag}={value}"), "--bot"]).arg(&dir).arg(dir.join("intents.yml")).output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(flag) && stderr.contains("0 to 1"), "{flag} {value}: {stderr}");
    }
    Ok(())
}

#[test]
fn eval_encoder_id_not_pulled_says_so() -> anyhow::Result<()> {
    let dir = write_bot("encoder-id-bot", CONFUSED_BOT)?;
    let cache = temp_dir("empty-hub-cache");
    let output = Command::new(LEPTON)
        .args(["eval", "--encoder", "sentence-transformers/all-MiniLM-L6-v2", "--bot"])
        .arg(&dir)
        .arg(dir.join("intents.yml"))
        .env("HF_HUB_CACHE", &cache)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an id that was never pulled was accepted");
    assert!(stderr.contains("neither a folder nor a pulled model"), "{stderr}");
    assert!(stderr.contains("lepton model pull"), "{stderr}");
    Ok(())
}

#[test]
fn eval_max_tokens_outside_range_rejected() -> anyhow::Result<()> {
    let dir = write_bot("max-tokens-bot", CONFUSED_BOT)?;
    let output = Command::new(LEPTON)
        .args(["eval", "--encoder", "models/none", "--max-tokens", "2", "--bot"])
        .arg(&dir)
        .arg(dir.join("intents.yml"))
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "--max-tokens 2 was accepted");
    assert!(stderr.contains("--max-tokens"), "{stderr}");
    assert!(stderr.contains("3..=512") || stderr.contains("3..512"), "{stderr}");
    Ok(())
}

#[test]
fn chat_demo_shows_ranking_and_slots() -> anyhow::Result<()> {
    let data = shared_data_dir()?;
    let mut child = Command::new(LEPTON)
        .arg("chat")
        .arg(demo_dir())
        .arg("--data-dir")
        .arg(&data)
        .env("LEPTON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("no stdin")?.write_all(b"where is my order?\n100001\n/quit\n")?;
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "lepton chat failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("you> where is my order?"), "expected the prompt and the echoed message:\n{stdout}");
    assert!(stdout.contains("│ intents   order_status 0."), "expected the ranking with order_status first:\n{stdout}");
    assert!(stdout.contains("intent order_status → flow order_status"), "expected the intent acted on:\n{stdout}");
    assert!(stdout.contains("waiting for the answer to ask order_number"), "expected the waiting form:\n{stdout}");
    assert!(stdout.contains("order_number=100001"), "expected the filled slot:\n{stdout}");
    assert!(stdout.contains("order_state="), "expected the slot saved from the demo orders endpoint:\n{stdout}");
    assert!(stdout.contains("answer to ask order_number"), "expected the second message read as the form's answer:\n{stdout}");
    assert!(!stdout.contains("\x1b["), "no colour when stdout is a pipe:\n{stdout}");
    Ok(())
}

#[test]
fn chat_reset_starts_new_conversation() -> anyhow::Result<()> {
    let data = shared_data_dir()?;
    let mut child = Command::new(LEPTON)
        .arg("chat")
        .arg(demo_dir())
        .arg("--data-dir")
        .arg(&data)
        .env("LEPTON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("no stdin")?.write_all("where is my order?\n/reset\n100001\n".as_bytes())?;
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("(new conversation)"), "{stdout}");
    assert!(!stdout.contains("order_number=100001"), "after /reset the number must not answer the old form:\n{stdout}");
    Ok(())
}
