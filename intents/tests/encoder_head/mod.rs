//! Tests of the intent head on a real sentence encoder (all-MiniLM-L6-v2 from
//! `lepton_encoder::test_model`). Each test is skipped, with the reason
//! printed, only when that model cannot be fetched.

use std::fs;
use std::sync::Arc;

use anyhow::{Context, Result};
use bot_core::{Classifier, IntentId};
use lepton_encoder::{Batcher, Encoder, EncoderConfig};
use lepton_intents::{EncoderIntentModel, HeadConfig, HEAD_METADATA_FILE};

use super::{shop_examples, TempDir};

/// Returns a batcher on the test model, or `None` after printing why there is none.
fn test_batcher() -> Result<Option<Batcher>> {
    let folder = match lepton_encoder::test_model() {
        Ok(folder) => folder,
        Err(reason) => {
            eprintln!("skipped: no test encoder model ({reason})");
            return Ok(None);
        }
    };
    let encoder = Encoder::load(&EncoderConfig::new(folder))?;
    Ok(Some(Batcher::new(Arc::new(encoder))))
}

fn top_intent(model: &EncoderIntentModel, text: &str) -> Result<(String, f32)> {
    let classification = model.classify(text);
    let top = classification.top().with_context(|| format!("no ranking for {text:?}"))?;
    Ok((top.intent.as_str().to_owned(), top.confidence))
}

/// English paraphrases that share few words with any example.
const PARAPHRASES: [(&str, &str); 8] = [
    ("could you tell me where my stuff is right now", "order_status"),
    ("the courier still hasn't brought my shipment", "order_status"),
    ("please reimburse me for this purchase", "refund"),
    ("i would like to be paid back", "refund"),
    ("until what hour can i visit the store", "opening_hours"),
    ("is there an actual staff member i could chat with", "human"),
    ("put me through to an operator", "human"),
    ("good evening", "greet"),
];

#[test]
fn encoder_head_classifies_unseen_paraphrases() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    for config in [HeadConfig::default(), HeadConfig { ngram_weight: 0.0, ..HeadConfig::default() }] {
        let model = EncoderIntentModel::train(&shop_examples(), &batcher, &config)?;
        for (text, expected) in PARAPHRASES {
            let (intent, confidence) = top_intent(&model, text)?;
            assert_eq!(intent, expected, "{text:?} (confidence {confidence:.3}, ngram_weight {})", config.ngram_weight);
        }
    }
    Ok(())
}

#[test]
fn encoder_head_rejects_out_of_scope_text() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let model = EncoderIntentModel::train(&shop_examples(), &batcher, &HeadConfig::default())?;

    for text in ["what is the boiling point of nitrogen", "write me a poem about the sea", "who won the football world cup in 1998"] {
        let classification = model.classify(text);
        let top = classification.top().context("no ranking")?;
        assert!(classification.decide(0.5, 0.1).is_none(), "{text:?} accepted as {} ({:.3})", top.intent, top.confidence);
    }
    Ok(())
}

#[test]
fn encoder_head_blend_classifies_chinese() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    // all-MiniLM-L6-v2 is an English model, so Chinese relies on the n-gram half of the blend.
    let config = HeadConfig::default();
    assert!(config.ngram_weight > 0.0, "the default config blends in the n-gram model");
    let model = EncoderIntentModel::train(&shop_examples(), &batcher, &config)?;

    for (text, expected) in [("我的快递到哪了", "order_status"), ("我想退款", "refund"), ("帮我转人工客服", "human")] {
        let (intent, confidence) = top_intent(&model, text)?;
        assert_eq!(intent, expected, "{text:?} (confidence {confidence:.3})");
    }
    Ok(())
}

#[test]
fn encoder_head_blend_leaves_unknown_script_to_ngram_model() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let config = HeadConfig::default();
    let model = EncoderIntentModel::train(&shop_examples(), &batcher, &config)?;
    let ngram = lepton_intents::IntentModel::train(&shop_examples(), &config.ngram)?;
    assert_eq!(model.intents(), ngram.intents());

    // all-MiniLM-L6-v2 lacks most Chinese characters: the n-gram model answers alone.
    let text = "今天天气怎么样";
    assert!(!batcher.encoder().covers(text));
    let confidences: Vec<f32> = model.intents().iter().map(|intent| confidence_of(&model, text, intent)).collect();
    assert_eq!(confidences, ngram.probabilities(text));

    // An English text still gets the blend, which differs from the n-gram model.
    let text = "where is my parcel";
    let blended: Vec<f32> = model.intents().iter().map(|intent| confidence_of(&model, text, intent)).collect();
    assert_ne!(blended, ngram.probabilities(text));
    Ok(())
}

fn confidence_of(model: &EncoderIntentModel, text: &str, intent: &IntentId) -> f32 {
    let classification = model.classify(text);
    classification.ranking.iter().find(|scored| &scored.intent == intent).map_or(f32::NAN, |scored| scored.confidence)
}

#[test]
fn encoder_head_same_seed_same_probabilities() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let config = HeadConfig { hidden: 64, dropout: 0.2, ..HeadConfig::with_seed(7) };
    let first = EncoderIntentModel::train(&shop_examples(), &batcher, &config)?;
    let second = EncoderIntentModel::train(&shop_examples(), &batcher, &config)?;
    let other = EncoderIntentModel::train(&shop_examples(), &batcher, &HeadConfig { seed: 8, ..config.clone() })?;

    let embedding = batcher.embed_blocking("where is my parcel", lepton_encoder::TextKind::Query)?;
    let probabilities = first.probabilities("where is my parcel", &embedding);
    assert_eq!(probabilities, second.probabilities("where is my parcel", &embedding));
    assert_ne!(probabilities, other.probabilities("where is my parcel", &embedding));
    Ok(())
}

#[test]
fn encoder_head_stored_and_reused() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let dir = TempDir::new("encoder-head")?;
    let examples = shop_examples();
    let config = HeadConfig { ngram_weight: 0.3, ..HeadConfig::default() };

    let (trained, fresh) = EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &config)?;
    assert!(fresh, "first call trains");
    assert!(dir.path().join(HEAD_METADATA_FILE).is_file());

    let (loaded, fresh) = EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &config)?;
    assert!(!fresh, "second call reuses the stored head");
    for (text, _) in PARAPHRASES {
        assert_eq!(trained.classify(text), loaded.classify(text), "{text:?}");
    }

    let mut changed = examples.clone();
    changed.push(("cancel my order".to_owned(), IntentId::new("cancel")));
    let (retrained, fresh) = EncoderIntentModel::load_or_train(dir.path(), &changed, &batcher, &config)?;
    assert!(fresh, "changed examples retrain");
    assert!(retrained.intents().contains(&IntentId::new("cancel")));

    let (_, fresh) = EncoderIntentModel::load_or_train(dir.path(), &changed, &batcher, &HeadConfig { hidden: 32, ..config })?;
    assert!(fresh, "a changed head config retrains");
    Ok(())
}

#[test]
fn encoder_head_damaged_file_retrains() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let dir = TempDir::new("encoder-head-damaged")?;
    let examples = shop_examples();
    EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;
    fs::write(dir.path().join(lepton_intents::HEAD_WEIGHTS_FILE), b"not safetensors")?;

    let (_, fresh) = EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;
    assert!(fresh);
    Ok(())
}

#[test]
fn encoder_head_changed_weight_retrains() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let dir = TempDir::new("encoder-head-bit-flip")?;
    let examples = shop_examples();
    EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;

    // Flip the lowest mantissa bit of the file's last f32: still valid
    // safetensors with finite values, so only the checksum can notice it.
    let path = dir.path().join(lepton_intents::HEAD_WEIGHTS_FILE);
    let mut bytes = fs::read(&path)?;
    let last = bytes.len() - 4;
    bytes[last] ^= 1;
    fs::write(&path, bytes)?;

    let (_, fresh) = EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;
    assert!(fresh, "a weights file that differs from its checksum must be retrained");
    let (_, fresh) = EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;
    assert!(!fresh, "the retrained head is stored with a matching checksum");
    Ok(())
}

#[test]
fn encoder_head_older_format_retrains() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let dir = TempDir::new("encoder-head-old-format")?;
    let examples = shop_examples();
    EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;
    let path = dir.path().join(HEAD_METADATA_FILE);
    let mut metadata: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    metadata["format_version"] = 1.into();
    fs::write(&path, serde_json::to_vec(&metadata)?)?;

    let (_, fresh) = EncoderIntentModel::load_or_train(dir.path(), &examples, &batcher, &HeadConfig::default())?;
    assert!(fresh);
    Ok(())
}

#[test]
fn encoder_head_wrong_embedding_length_gives_no_intent() -> Result<()> {
    let Some(batcher) = test_batcher()? else { return Ok(()) };
    let model = EncoderIntentModel::train(&shop_examples(), &batcher, &HeadConfig::default())?;

    let classification = model.classify_embedding("hello", &[0.5, 0.5]);
    assert!(classification.ranking.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn encoder_head_async_matches_sync() -> Result<()> {
    let Some(batcher) = tokio::task::spawn_blocking(test_batcher).await?? else { return Ok(()) };
    let model = EncoderIntentModel::train(&shop_examples(), &batcher, &HeadConfig::default())?;

    for (text, _) in PARAPHRASES {
        let asynchronous = model.classify_async(text).await;
        let synchronous = tokio::task::block_in_place(|| model.classify(text));
        assert_eq!(asynchronous, synchronous, "{text:?}");
    }
    Ok(())
}
