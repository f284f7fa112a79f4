//! A bot with a pretrained sentence encoder (all-MiniLM-L6-v2 from
//! `lepton_encoder::test_model()`), served by the real `lepton serve`: it
//! understands paraphrases that none of its examples contain. Skipped, with
//! the reason printed, when the test model cannot be fetched.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{temp_dir, Customer, Server, LEPTON};

const REFUND_REPLY: &str = "I can refund that for you.";
const HOURS_REPLY: &str = "We are open 9:00 to 18:00, Monday to Friday.";
const TRACK_REPLY: &str = "Let me look up your delivery.";
const GIFT_ANSWER: &str = "Yes, tick Gift wrap at checkout.";

/// Returns the test model's folder, or prints why the test is skipped.
pub fn test_model_or_skip(test: &str) -> Option<PathBuf> {
    match lepton_encoder::test_model() {
        Ok(folder) => Some(folder),
        Err(reason) => {
            eprintln!("skipping {test}: no test model: {reason}");
            None
        }
    }
}

/// Writes a small shop bot whose settings use `model` as its encoder.
pub fn write_encoder_bot(dir: &Path, model: &str) -> anyhow::Result<()> {
    let bot = format!(
        "settings:\n  name: encoder shop\n  languages: [en]\n  encoder:\n    model: {model}\n  classifier:\n    model: encoder\n"
    );
    std::fs::write(dir.join("bot.yml"), bot)?;
    std::fs::write(
        dir.join("intents.yml"),
        concat!(
            "intents:\n",
            "  refund:\n",
            "    response: refund\n",
            "    examples:\n",
            "      en: [I want a refund, give me my money back, can I get reimbursed, refund my purchase, I'd like to be refunded]\n",
            "  opening_hours:\n",
            "    response: opening_hours\n",
            "    examples:\n",
            "      en: [when are you open, what are your opening hours, are you open on weekends, what time do you close, business hours]\n",
            "  track_order:\n",
            "    response: track_order\n",
            "    examples:\n",
            "      en: [where is my order, track my package, has my parcel shipped, when will my delivery arrive, order status]\n",
        ),
    )?;
    std::fs::write(
        dir.join("responses.yml"),
        format!(
            "responses:\n  refund:\n    en: [\"{REFUND_REPLY}\"]\n  opening_hours:\n    en: [\"{HOURS_REPLY}\"]\n  track_order:\n    en: [\"{TRACK_REPLY}\"]\n  fallback:\n    en: [\"Sorry, I did not get that.\"]\n"
        ),
    )?;
    std::fs::write(
        dir.join("faq.yml"),
        format!(
            "faq:\n  gift_wrapping:\n    lang: en\n    question: Do you offer gift wrapping?\n    variants: [Can I add a gift message?]\n    answer: \"{GIFT_ANSWER}\"\n"
        ),
    )?;
    // The test harness serves the demo orders endpoint, which reads this file.
    std::fs::write(dir.join("orders.json"), "{}")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn encoder_bot_understands_paraphrases() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("encoder_bot_understands_paraphrases") else { return Ok(()) };
    let bot = temp_dir("encoder-bot");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let server = Server::start_bot(&bot, &temp_dir("encoder-data"), &["--no-watch", "--store", "memory"], &[])?;

    let mut customer = Customer::new(&server, "encoder-paraphrase");
    let refund = customer.say("this blender broke, I expect my cash returned").await?;
    let hours = customer.say("till what hour can I visit the store today?").await?;
    let gift = customer.say("is it possible to have my purchase wrapped as a present?").await?;

    assert_eq!(refund, [REFUND_REPLY], "a refund paraphrase got another reply");
    assert_eq!(hours, [HOURS_REPLY], "an opening-hours paraphrase got another reply");
    assert_eq!(gift, [GIFT_ANSWER], "a gift-wrapping paraphrase did not get the FAQ answer");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn encoder_batches_are_counted_in_metrics() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("encoder_batches_are_counted_in_metrics") else { return Ok(()) };
    let bot = temp_dir("encoder-metrics");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let server = Server::start_bot(&bot, &temp_dir("encoder-metrics-data"), &["--no-watch", "--store", "memory"], &[])?;

    let mut customer = Customer::new(&server, "encoder-metrics");
    customer.say("where is my parcel").await?;
    customer.say("when do you close today").await?;
    let metrics = reqwest::get(format!("{}/metrics", server.url)).await?.text().await?;

    let value = |name: &str| -> Option<f64> {
        metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    let texts = value("lepton_encoder_texts_total").unwrap_or_default();
    let batches = value("lepton_encoder_batches_total").unwrap_or_default();
    assert!(texts >= 2.0, "two messages were classified, but lepton_encoder_texts_total is {texts}:\n{metrics}");
    assert!(batches >= 1.0 && batches <= texts, "lepton_encoder_batches_total is {batches} for {texts} texts");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn encoder_bot_is_ready() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("encoder_bot_is_ready") else { return Ok(()) };
    let bot = temp_dir("encoder-ready");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let server = Server::start_bot(&bot, &temp_dir("encoder-ready-data"), &["--no-watch", "--store", "memory"], &[])?;

    let encoded = || async {
        let metrics = reqwest::get(format!("{}/metrics", server.url)).await?.text().await?;
        let texts = metrics.lines().find_map(|line| line.strip_prefix("lepton_encoder_texts_total ")?.trim().parse::<f64>().ok());
        anyhow::Ok(texts.unwrap_or_default())
    };
    let before = encoded().await?;

    for _ in 0..3 {
        let response = reqwest::get(format!("{}/readyz", server.url)).await?;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "/readyz: {}", response.text().await?);
    }

    // The check must not queue behind customers' texts, so it encodes none.
    assert_eq!(encoded().await?, before, "/readyz ran the encoder");
    Ok(())
}

#[test]
fn validate_checks_the_encoder_head() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("validate_checks_the_encoder_head") else { return Ok(()) };
    let bot = temp_dir("encoder-validate");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    // An example of opening hours filed under refund: the head trained
    // without it puts it under opening_hours in every run.
    let intents = std::fs::read_to_string(bot.join("intents.yml"))?;
    std::fs::write(bot.join("intents.yml"), intents.replace("I'd like to be refunded]", "I'd like to be refunded, what time do you open on sunday]"))?;
    let data = temp_dir("encoder-validate-data");

    let validate = || Command::new(LEPTON).arg("validate").arg(&bot).arg("--data-dir").arg(&data).output();
    let output = validate()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(stdout.contains("with the intent head on the bot's encoder"), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("what time do you open on sunday"), "the misfiled example was not reported:\n{stdout}");
    assert!(stdout.contains("opening_hours"), "{stdout}");

    let again = String::from_utf8_lossy(&validate()?.stdout).into_owned();
    assert!(again.contains("cached result of"), "the second run retrained: {again}");
    Ok(())
}

#[test]
fn bad_encoder_settings_are_reported_with_their_line() -> anyhow::Result<()> {
    let dir = temp_dir("encoder-bad-settings");
    write_encoder_bot(&dir, "./models/missing")?;
    let bot = std::fs::read_to_string(dir.join("bot.yml"))?;
    std::fs::write(dir.join("bot.yml"), bot.replace("  classifier:\n", "    device: tpu\n  classifier:\n"))?;

    let output = Command::new(LEPTON).arg("validate").arg("--no-model").arg(&dir).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let file = dir.join("bot.yml");

    assert!(!output.status.success(), "lepton validate accepted bad encoder settings:\n{stdout}");
    assert!(stdout.contains(&format!("{}:5:12: error: model folder `./models/missing` not found", file.display())), "{stdout}");
    assert!(stdout.contains("run `lepton model pull"), "{stdout}");
    assert!(stdout.contains(&format!("{}:6:13: error: unknown device `tpu`", file.display())), "{stdout}");
    Ok(())
}

#[test]
fn serve_refuses_a_bot_whose_model_is_missing() -> anyhow::Result<()> {
    let dir = temp_dir("encoder-missing-model");
    write_encoder_bot(&dir, "./models/missing")?;

    let output = Command::new(LEPTON).args(["serve", "--port", "0", "--no-watch", "--store", "memory"]).arg(&dir).env("LEPTON_LOG", "warn").output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "lepton serve started without its model");
    assert!(stderr.contains("bot.yml:5:12"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn finetuned_encoder_serves_the_bot() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("finetuned_encoder_serves_the_bot") else { return Ok(()) };
    let bot = temp_dir("encoder-finetune");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let out = temp_dir("encoder-finetuned").join("shop-model");

    let finetune = || {
        Command::new(LEPTON)
            .args(["model", "finetune", "--rounds", "2", "--learning-rate", "1e-4", "--out"])
            .arg(&out)
            .arg(&bot)
            .env("LEPTON_LOG", "warn")
            .output()
    };
    let output = finetune()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "lepton model finetune failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    // 15 intent examples and 2 FAQ questions, each in 2 pairs per round.
    assert!(stdout.contains("on 17 examples of 4 intents (68 pairs"), "{stdout}");
    assert!(stdout.contains("set settings.encoder.model to this folder"), "{stdout}");
    let weights = std::fs::read(out.join("model.safetensors"))?;

    let again = finetune()?;
    assert!(!again.status.success(), "a second fine-tune overwrote {}", out.display());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(out.join("model.safetensors"))?, weights, "the refused fine-tune changed the folder");

    write_encoder_bot(&bot, out.to_str().unwrap_or_default())?;
    let server = Server::start_bot(&bot, &temp_dir("encoder-finetune-data"), &["--no-watch", "--store", "memory"], &[])?;
    let mut customer = Customer::new(&server, "encoder-finetuned");
    let refund = customer.say("this blender broke, I expect my cash returned").await?;
    let hours = customer.say("till what hour can I visit the store today?").await?;

    assert_eq!(refund, [REFUND_REPLY], "a refund paraphrase got another reply");
    assert_eq!(hours, [HOURS_REPLY], "an opening-hours paraphrase got another reply");
    Ok(())
}

#[test]
fn finetune_needs_an_encoder_in_the_settings() -> anyhow::Result<()> {
    let dir = temp_dir("encoder-finetune-none");
    write_encoder_bot(&dir, "unused")?;
    std::fs::write(dir.join("bot.yml"), "settings:\n  name: plain shop\n  languages: [en]\n")?;
    let out = temp_dir("encoder-finetune-none-out").join("model");

    let output = Command::new(LEPTON).args(["model", "finetune", "--out"]).arg(&out).arg(&dir).env("LEPTON_LOG", "warn").output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "fine-tuned a bot without an encoder");
    assert!(stderr.contains("has no settings.encoder"), "{stderr}");
    assert!(!out.exists(), "a failed fine-tune left {}", out.display());
    Ok(())
}

#[test]
fn cross_validation_uses_the_encoder_head() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("cross_validation_uses_the_encoder_head") else { return Ok(()) };
    let bot = temp_dir("encoder-cross-validation");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let out = temp_dir("encoder-cross-validation-out");

    let output = Command::new(LEPTON)
        .args(["eval", "--cross-validation", "3", "--out"])
        .arg(&out)
        .arg(&bot)
        .env("LEPTON_LOG", "info")
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "{}{stderr}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains("the intent head on the encoder"), "{stderr}");
    assert!(out.join("index.html").is_file());
    Ok(())
}

#[test]
fn eval_notes_unused_embedding_cache() -> anyhow::Result<()> {
    let bot = temp_dir("no-encoder-eval-bot");
    write_encoder_bot(&bot, "unused")?;
    std::fs::write(bot.join("bot.yml"), "settings:\n  name: shop\n  languages: [en]\n")?;
    let data = temp_dir("no-encoder-eval-data");
    let test = data.join("test.csv");
    std::fs::write(&test, "text,intent\nI would like my money returned,refund\nwhere is my parcel now,track_order\n")?;

    let output = Command::new(LEPTON).arg("eval").arg(&test).arg("--bot").arg(&bot).arg("--embedding-cache").arg(data.join("cache")).env("LEPTON_LOG", "warn").output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("--embedding-cache is unused: the bot in"), "{stderr}");
    assert!(!stderr.contains("scoring the intent head"), "{stderr}");
    Ok(())
}

#[test]
fn eval_encoder_flags_need_an_encoder() -> anyhow::Result<()> {
    let bot = temp_dir("no-encoder-flags-bot");
    write_encoder_bot(&bot, "unused")?;
    std::fs::write(bot.join("bot.yml"), "settings:\n  name: shop\n  languages: [en]\n")?;
    let test = bot.join("test.csv");
    std::fs::write(&test, "text,intent\nI would like my money returned,refund\n")?;

    let output = Command::new(LEPTON).arg("eval").arg(&test).arg("--bot").arg(&bot).args(["--max-tokens", "8", "--query-prefix", "query: "]).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "encoder flags on a bot without an encoder were accepted");
    assert!(stderr.contains("--max-tokens, --query-prefix set the encoder, but the bot in"), "{stderr}");
    Ok(())
}

#[test]
fn eval_bot_encoder_takes_flag_overrides() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("eval_bot_encoder_takes_flag_overrides") else { return Ok(()) };
    let bot = temp_dir("encoder-override-bot");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let data = temp_dir("encoder-override-data");
    let test = data.join("test.csv");
    std::fs::write(&test, "text,intent\nI would like my money returned,refund\nwhere is my parcel now,track_order\n")?;
    let cache = data.join("cache");
    let eval = |extra: &[&str]| Command::new(LEPTON).arg("eval").arg(&test).arg("--bot").arg(&bot).arg("--embedding-cache").arg(&cache).args(extra).env("LEPTON_LOG", "warn").output();

    let plain = eval(&[])?;
    let short = eval(&["--max-tokens", "8"])?;

    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    assert!(short.status.success(), "{}", String::from_utf8_lossy(&short.stderr));
    let cached = std::fs::read_dir(&cache)?.filter_map(Result::ok).filter(|entry| entry.file_name().to_string_lossy().ends_with("-query.f32")).count();
    assert_eq!(cached, 2, "--max-tokens 8 must change the encoder, and so its cache file");
    Ok(())
}

#[test]
fn eval_bot_uses_its_encoder() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("eval_bot_uses_its_encoder") else { return Ok(()) };
    let bot = temp_dir("encoder-eval-bot");
    write_encoder_bot(&bot, model.to_str().unwrap_or_default())?;
    let data = temp_dir("encoder-eval-data");
    let test = data.join("test.csv");
    std::fs::write(
        &test,
        "text,intent\nI would like my money returned,refund\nwhat time do you open tomorrow,opening_hours\nwhere is my parcel now,track_order\n",
    )?;
    let cache = data.join("cache");

    let output = Command::new(LEPTON).arg("eval").arg(&test).arg("--bot").arg(&bot).arg("--embedding-cache").arg(&cache).env("LEPTON_LOG", "warn").output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("scoring the intent head on the bot's encoder"), "{stderr}");
    let cached: Vec<_> = std::fs::read_dir(&cache)?.filter_map(Result::ok).filter(|entry| entry.file_name().to_string_lossy().ends_with("-query.f32")).collect();
    assert_eq!(cached.len(), 1, "the encoder's embeddings must be cached in {}", cache.display());
    assert!(stdout.contains("accuracy:"), "{stdout}");
    Ok(())
}
