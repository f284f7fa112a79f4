//! `settings.encoder`, `settings.classifier.model` and the knowledge search switches.

use super::*;
use bot_core::bot::{ClassifierModel, EncoderDevice, EncoderPooling};

/// A model folder with the files the loader checks for; their contents are not read.
const MODEL_FILES: [(&str, &str); 3] = [("models/mini/config.json", "{}"), ("models/mini/tokenizer.json", "{}"), ("models/mini/model.safetensors", "")];

fn bot_with(settings: &str) -> Result<TempBot> {
    let mut files = vec![("bot.yml", settings)];
    files.extend(MODEL_FILES);
    TempBot::new(&files)
}

#[test]
fn encoder_settings_load() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  encoder:\n    model: models/mini\n    pooling: cls\n    query_prefix: \"query: \"\n    passage_prefix: \"passage: \"\n    device: cuda:1\n    max_tokens: 128\n    batch_size: 16\n    batch_wait_ms: 5\n  classifier:\n    model: encoder\n  knowledge:\n    bm25: false\n    min_similarity: 0.6\n";
    let bot = bot_with(settings)?;
    let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
    let settings = &loaded.bot.settings;
    let encoder = settings.encoder.as_ref().context("settings.encoder was not loaded")?;
    assert_eq!(encoder.model, "models/mini");
    assert_eq!(encoder.pooling, Some(EncoderPooling::Cls));
    assert_eq!(encoder.query_prefix, "query: ");
    assert_eq!(encoder.passage_prefix, "passage: ");
    assert_eq!(encoder.device, EncoderDevice::Cuda(1));
    assert_eq!((encoder.max_tokens, encoder.batch_size, encoder.batch_wait_ms), (Some(128), 16, 5));
    assert_eq!(settings.classifier.model, ClassifierModel::Encoder);
    assert!(!settings.knowledge.bm25, "knowledge.bm25 stayed on");
    assert_eq!(settings.knowledge.min_similarity, Some(0.6));
    Ok(())
}

#[test]
fn encoder_defaults_match_the_contract() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  encoder:\n    model: models/mini\n")?;
    let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
    let encoder = loaded.bot.settings.encoder.context("settings.encoder was not loaded")?;
    assert_eq!(encoder.pooling, None);
    assert_eq!(encoder.device, EncoderDevice::Cpu);
    assert_eq!((encoder.max_tokens, encoder.batch_size, encoder.batch_wait_ms), (None, 32, 2));
    assert_eq!(loaded.bot.settings.classifier.model, ClassifierModel::Auto);
    Ok(())
}

#[test]
fn missing_model_folder_tells_to_pull_or_fix() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  encoder:\n    model: ./models/absent\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 12)?;
    assert!(diagnostic.message.contains("model folder `./models/absent` not found"), "{diagnostic}");
    assert!(diagnostic.message.contains("lepton model pull"), "{diagnostic}");
    Ok(())
}

#[test]
fn hub_id_not_in_the_cache_tells_to_pull_it() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  encoder:\n    model: nobody-here/absent-model-xyz\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 12)?;
    assert!(diagnostic.message.contains("run `lepton model pull nobody-here/absent-model-xyz`"), "{diagnostic}");
    Ok(())
}

#[test]
fn unknown_encoder_field_suggests_the_name() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  encoder:\n    model: models/mini\n    batch_sise: 8\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 5, 5)?;
    assert!(diagnostic.message.contains("did you mean `batch_size`?"), "{diagnostic}");
    Ok(())
}

#[test]
fn bad_encoder_values_are_reported_where_written() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  encoder:\n    model: models/mini\n    pooling: max\n    device: gpu\n    max_tokens: 2\n";
    let bot = bot_with(settings)?;
    let report = validate(&bot.dir);
    let file = bot.dir.join("bot.yml");
    assert!(at(&report, &file, 5, 14)?.message.contains("use mean or cls"));
    assert!(at(&report, &file, 6, 13)?.message.contains("cpu, cuda or cuda:N"));
    assert!(at(&report, &file, 7, 17)?.message.contains("from 3 to 512"));
    Ok(())
}

#[test]
fn encoder_classifier_needs_an_encoder() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  classifier:\n    model: encoder\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 12)?;
    assert!(diagnostic.message.contains("settings.encoder is not set"), "{diagnostic}");
    Ok(())
}

#[test]
fn unknown_classifier_model_names_choices() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  classifier:\n    model: bert\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 12)?;
    assert!(diagnostic.message.contains("auto, embedded, encoder"), "{diagnostic}");
    Ok(())
}

#[test]
fn knowledge_needs_bm25_or_embeddings() -> Result<()> {
    let bot = bot_with("settings:\n  languages: [en]\n  knowledge:\n    bm25: false\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 11)?;
    assert!(diagnostic.message.contains("would never answer"), "{diagnostic}");
    Ok(())
}
