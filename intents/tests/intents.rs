//! Integration tests of training, storage, classification and evaluation.

mod encoder_head;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use bot_core::{Classification, Classifier, IntentId, ScoredIntent};
use lepton_intents::eval::{evaluate, threshold_keeping, Clinc150, Dataset, LabeledText};
use lepton_intents::{training_hash, IntentError, IntentModel, TrainConfig, METADATA_FILE, WEIGHTS_FILE};

/// Returns a shop bot's examples in English and Chinese.
fn shop_examples() -> Vec<(String, IntentId)> {
    let intents: [(&str, &[&str]); 5] = [
        (
            "order_status",
            &[
                "where is my order",
                "track my package",
                "has my order shipped yet",
                "when will my parcel arrive",
                "order status please",
                "my delivery has not arrived",
                "我的订单到哪了",
                "查一下我的快递",
                "包裹什么时候到",
                "订单发货了吗",
            ],
        ),
        (
            "refund",
            &[
                "i want a refund",
                "give me my money back",
                "how do i get a refund",
                "refund my purchase",
                "can i return this for a refund",
                "the item is broken and i want my money back",
                "我要退款",
                "怎么申请退款",
                "退钱给我",
                "商品坏了我要退货退款",
            ],
        ),
        (
            "opening_hours",
            &[
                "what are your opening hours",
                "when do you open",
                "are you open on sunday",
                "what time do you close",
                "store hours",
                "is the shop open today",
                "你们几点开门",
                "营业时间是什么",
                "周末营业吗",
                "几点关门",
            ],
        ),
        (
            "human",
            &[
                "talk to a human",
                "i want to speak to an agent",
                "connect me to a person",
                "real person please",
                "customer service representative",
                "let me talk to someone",
                "转人工",
                "我要找客服",
                "人工服务",
                "让真人跟我说",
            ],
        ),
        ("greet", &["hello", "hi there", "good morning", "hey", "hi", "hello there", "你好", "您好", "早上好", "嗨"]),
    ];
    intents.iter().flat_map(|(intent, texts)| texts.iter().map(move |text| (text.to_string(), IntentId::new(*intent)))).collect()
}

fn quick_config(seed: u64) -> TrainConfig {
    TrainConfig::with_seed(seed)
}

fn top(model: &IntentModel, text: &str) -> Result<ScoredIntent> {
    model.classify(text).top().cloned().with_context(|| format!("no ranking for {text:?}"))
}

/// A folder under the system temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("lepton-intents-{name}-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const PROBES: [&str; 6] = ["where is my parcel", "退款", "are you open", "human please", "", "🙂"];

#[test]
fn training_same_seed_same_predictions() -> Result<()> {
    let examples = shop_examples();
    let first = IntentModel::train(&examples, &quick_config(7))?;
    let second = IntentModel::train(&examples, &quick_config(7))?;
    for probe in PROBES {
        assert_eq!(first.probabilities(probe), second.probabilities(probe), "probe {probe:?}");
    }
    Ok(())
}

#[test]
fn training_other_seed_other_weights() -> Result<()> {
    let examples = shop_examples();
    let first = IntentModel::train(&examples, &quick_config(7))?;
    let second = IntentModel::train(&examples, &quick_config(8))?;
    assert_ne!(first.probabilities("where is my parcel"), second.probabilities("where is my parcel"));
    Ok(())
}

#[test]
fn classify_tiny_english_and_chinese_set() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(42))?;
    let cases = [
        ("where is my order??", "order_status"),
        ("Track my parcel please", "order_status"),
        ("我的快递到哪了", "order_status"),
        ("I would like a refund", "refund"),
        ("我想退款", "refund"),
        ("what time do you open on saturday", "opening_hours"),
        ("你们周六几点开门", "opening_hours"),
        ("can I talk to a real person", "human"),
        ("我要人工客服", "human"),
        ("hello!", "greet"),
        ("你好呀", "greet"),
    ];
    for (text, expected) in cases {
        assert_eq!(top(&model, text)?.intent.as_str(), expected, "text {text:?}");
    }
    Ok(())
}

#[test]
fn classify_full_width_text_like_ascii() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(42))?;
    assert_eq!(model.probabilities("ＷＨＥＲＥ　ｉｓ ｍｙ ｏｒｄｅｒ"), model.probabilities("where is my order"));
    Ok(())
}

#[test]
fn classify_ranks_every_intent_with_softmax() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(42))?;
    let ranking = model.classify("where is my order").ranking;
    let sum: f32 = ranking.iter().map(|s| s.confidence).sum();
    assert_eq!(ranking.len(), 5);
    assert!((sum - 1.0).abs() < 1e-4, "confidences sum to {sum}");
    assert!(ranking.windows(2).all(|w| w[0].confidence >= w[1].confidence), "ranking not sorted: {ranking:?}");
    Ok(())
}

#[test]
fn classify_out_of_scope_text_low_confidence() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(42))?;
    for text in ["the mitochondria is the powerhouse of the cell", "量子力学的基本原理是什么", "xkcd qwertz zzzz"] {
        let classification = model.classify(text);
        let confidence = classification.top().map_or(0.0, |t| t.confidence);
        assert!(classification.decide(0.5, 0.1).is_none(), "{text:?} accepted with confidence {confidence}");
    }
    Ok(())
}

#[test]
fn classify_in_scope_text_passes_default_threshold() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(42))?;
    for text in ["where is my order", "我要退款", "talk to a human"] {
        let classification = model.classify(text);
        assert!(classification.decide(0.5, 0.1).is_some(), "{text:?} rejected: {:?}", classification.top());
    }
    Ok(())
}

#[test]
fn classify_empty_and_emoji_text_without_panic() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(42))?;
    for text in ["", "   ", "🙂🙂🙂", "!!!???", "\u{200b}"] {
        let classification = model.classify(text);
        assert_eq!(classification.ranking.len(), 5, "text {text:?}");
        assert!(classification.ranking.iter().all(|s| s.confidence.is_finite()), "text {text:?}");
        assert!(classification.decide(0.5, 0.1).is_none(), "text {text:?} accepted: {:?}", classification.top());
    }
    Ok(())
}

#[test]
fn train_on_emoji_only_examples() -> Result<()> {
    let examples = vec![("🙂".to_owned(), IntentId::new("smile")), ("where is my order".to_owned(), IntentId::new("order"))];
    let model = IntentModel::train(&examples, &quick_config(1))?;
    assert_eq!(top(&model, "where is my order")?.intent.as_str(), "order");
    Ok(())
}

#[test]
fn train_without_examples_is_an_error() {
    let result = IntentModel::train(&[], &quick_config(1));
    assert!(matches!(result, Err(IntentError::NoExamples)), "{result:?}");
}

#[test]
fn train_with_invalid_config_is_an_error() {
    let config = TrainConfig { dropout: 1.5, ..TrainConfig::default() };
    let result = IntentModel::train(&shop_examples(), &config);
    assert!(matches!(result, Err(IntentError::InvalidConfig { field: "dropout", .. })), "{result:?}");
}

#[test]
fn save_load_round_trip_same_predictions() -> Result<()> {
    let dir = TempDir::new("round-trip")?;
    let model = IntentModel::train(&shop_examples(), &quick_config(3))?;
    model.save(dir.path())?;
    let loaded = IntentModel::load(dir.path())?;
    for probe in PROBES {
        assert_eq!(model.probabilities(probe), loaded.probabilities(probe), "probe {probe:?}");
    }
    assert_eq!(loaded.intents(), model.intents());
    assert_eq!(loaded.training_hash(), model.training_hash());
    assert_eq!(loaded.config(), model.config());
    Ok(())
}

#[test]
fn save_over_older_model_replaces_it() -> Result<()> {
    let dir = TempDir::new("replace")?;
    IntentModel::train(&shop_examples(), &quick_config(3))?.save(dir.path())?;
    let mut examples = shop_examples();
    examples.push(("cancel my order".to_owned(), IntentId::new("cancel")));
    let newer = IntentModel::train(&examples, &quick_config(3))?;
    newer.save(dir.path())?;

    let loaded = IntentModel::load(dir.path())?;
    assert_eq!(loaded.training_hash(), newer.training_hash());
    assert_eq!(loaded.probabilities("cancel my order"), newer.probabilities("cancel my order"));
    let leftovers: Vec<_> = fs::read_dir(dir.path())?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn saved_files_share_one_mode() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new("modes")?;
    IntentModel::train(&shop_examples(), &quick_config(3))?.save(dir.path())?;
    let modes: Vec<(String, u32)> = fs::read_dir(dir.path())?
        .map(|entry| {
            let entry = entry?;
            Ok((entry.file_name().to_string_lossy().into_owned(), entry.metadata()?.permissions().mode() & 0o777))
        })
        .collect::<std::io::Result<_>>()?;
    assert!(modes.len() >= 2, "{modes:?}");
    assert!(modes.iter().all(|(_, mode)| *mode == modes[0].1), "weights and metadata differ in mode: {modes:?}");
    Ok(())
}

#[test]
fn load_missing_model_is_io_error() -> Result<()> {
    let dir = TempDir::new("missing")?;
    let result = IntentModel::load(dir.path());
    assert!(matches!(result, Err(IntentError::Io { .. })), "{result:?}");
    Ok(())
}

#[test]
fn load_or_train_reuses_fresh_model() -> Result<()> {
    let dir = TempDir::new("reuse")?;
    let examples = shop_examples();
    let (first, trained_first) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    let (second, trained_second) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    assert!(trained_first);
    assert!(!trained_second);
    assert_eq!(first.probabilities("where is my order"), second.probabilities("where is my order"));
    Ok(())
}

#[test]
fn load_or_train_retrains_when_examples_change() -> Result<()> {
    let dir = TempDir::new("stale")?;
    let mut examples = shop_examples();
    IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;

    examples.push(("cancel my order".to_owned(), IntentId::new("cancel")));
    let (model, trained) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    assert!(trained);
    assert!(model.intents().contains(&IntentId::new("cancel")));
    let (_, trained_again) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    assert!(!trained_again);
    Ok(())
}

#[test]
fn load_or_train_retrains_when_config_changes() -> Result<()> {
    let dir = TempDir::new("config")?;
    let examples = shop_examples();
    IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    let (_, trained) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(6))?;
    assert!(trained);
    Ok(())
}

#[test]
fn load_or_train_retrains_corrupt_files() -> Result<()> {
    let examples = shop_examples();
    let corruptions: [(&str, &str, &[u8]); 4] = [
        ("garbage-weights", WEIGHTS_FILE, b"not a safetensors file"),
        ("empty-weights", WEIGHTS_FILE, b""),
        ("garbage-metadata", METADATA_FILE, b"{\"format_version\": "),
        ("wrong-metadata", METADATA_FILE, b"[1, 2, 3]"),
    ];
    for (name, file, content) in corruptions {
        let dir = TempDir::new(name)?;
        IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
        fs::write(dir.path().join(file), content)?;

        let load = IntentModel::load(dir.path());
        assert!(matches!(load, Err(IntentError::InvalidModel { .. })), "{name}: load gave {load:?}");
        let (model, trained) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
        assert!(trained, "{name}: not retrained");
        assert_eq!(top(&model, "where is my order")?.intent.as_str(), "order_status", "{name}");
        let (_, trained_again) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
        assert!(!trained_again, "{name}: retrained model not stored");
    }
    Ok(())
}

#[test]
fn load_metadata_with_invalid_config_is_invalid() -> Result<()> {
    let dir = TempDir::new("invalid-config")?;
    IntentModel::train(&shop_examples(), &quick_config(5))?.save(dir.path())?;
    let path = dir.path().join(METADATA_FILE);
    let mut metadata: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    metadata["config"]["features"]["hash_bits"] = serde_json::json!(40);
    fs::write(&path, serde_json::to_vec(&metadata)?)?;

    let result = IntentModel::load(dir.path());
    assert!(matches!(result, Err(IntentError::InvalidModel { .. })), "{result:?}");
    Ok(())
}

#[test]
fn load_truncated_weights_is_invalid() -> Result<()> {
    let dir = TempDir::new("truncated")?;
    IntentModel::train(&shop_examples(), &quick_config(5))?.save(dir.path())?;
    let path = dir.path().join(WEIGHTS_FILE);
    let bytes = fs::read(&path)?;
    fs::write(&path, &bytes[..bytes.len() / 2])?;
    let result = IntentModel::load(dir.path());
    assert!(matches!(result, Err(IntentError::InvalidModel { .. })), "{result:?}");
    Ok(())
}

#[test]
fn load_changed_weight_is_invalid() -> Result<()> {
    let dir = TempDir::new("bit-flip")?;
    let examples = shop_examples();
    IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    // Flip the lowest bit of the file's last byte pair, a half-precision weight:
    // the file still parses, with finite values, so only the checksum notices.
    let path = dir.path().join(WEIGHTS_FILE);
    let mut bytes = fs::read(&path)?;
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    fs::write(&path, bytes)?;

    let result = IntentModel::load(dir.path());
    assert!(matches!(&result, Err(IntentError::InvalidModel { problem, .. }) if problem.contains("SHA-256")), "{result:?}");
    let (_, trained) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    assert!(trained, "a damaged weights file must be retrained");
    Ok(())
}

#[test]
fn load_edited_intent_list_is_invalid() -> Result<()> {
    let dir = TempDir::new("edited-intents")?;
    let examples = shop_examples();
    IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    // Swapping two intent names keeps the metadata valid JSON of the right
    // shape; only the SHA-256 over the metadata notices it.
    let path = dir.path().join(METADATA_FILE);
    let mut metadata: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    let intents = metadata["intents"].as_array_mut().context("intents array")?;
    intents.swap(0, 1);
    fs::write(&path, serde_json::to_vec(&metadata)?)?;

    let result = IntentModel::load(dir.path());
    assert!(matches!(&result, Err(IntentError::InvalidModel { problem, .. }) if problem.contains("SHA-256")), "{result:?}");
    let (model, trained) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    assert!(trained, "an edited intent list must be retrained");
    assert_eq!(top(&model, "where is my order")?.intent.as_str(), "order_status");
    Ok(())
}

#[test]
fn load_or_train_retrains_older_format() -> Result<()> {
    let dir = TempDir::new("old-format")?;
    let examples = shop_examples();
    IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    let path = dir.path().join(METADATA_FILE);
    let mut metadata: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    metadata["format_version"] = 1.into();
    metadata.as_object_mut().map(|fields| fields.remove("sha256"));
    fs::write(&path, serde_json::to_vec(&metadata)?)?;

    let result = IntentModel::load(dir.path());
    assert!(matches!(&result, Err(IntentError::InvalidModel { problem, .. }) if problem.contains("format version 1 is not 2")), "{result:?}");
    let (_, trained) = IntentModel::load_or_train(dir.path(), &examples, &quick_config(5))?;
    assert!(trained);
    Ok(())
}

#[test]
fn training_hash_changes_with_input() {
    let examples = shop_examples();
    let config = TrainConfig::default();
    let base = training_hash(&examples, &config);

    let mut reordered = examples.clone();
    reordered.swap(0, 1);
    let mut relabelled = examples.clone();
    relabelled[0].1 = IntentId::new("refund");
    let other_config = TrainConfig { hidden: 64, ..TrainConfig::default() };

    assert_eq!(base, training_hash(&examples, &config));
    assert_ne!(base, training_hash(&reordered, &config));
    assert_ne!(base, training_hash(&relabelled, &config));
    assert_ne!(base, training_hash(&examples, &other_config));
}

/// A classifier that returns fixed rankings by text, for checking the arithmetic of `evaluate`.
struct TableClassifier(Vec<(&'static str, Vec<(&'static str, f32)>)>);

impl Classifier for TableClassifier {
    fn classify(&self, text: &str) -> Classification {
        let ranking = self
            .0
            .iter()
            .find(|(t, _)| *t == text)
            .map(|(_, ranking)| ranking.iter().map(|(i, c)| ScoredIntent { intent: IntentId::new(*i), confidence: *c }).collect())
            .unwrap_or_default();
        Classification { ranking }
    }
}

fn labeled(text: &str, intent: Option<&str>) -> LabeledText {
    LabeledText { text: text.to_owned(), intent: intent.map(IntentId::new) }
}

#[test]
fn evaluate_scores_known_predictions() {
    let classifier = TableClassifier(vec![
        ("a1", vec![("a", 0.9), ("b", 0.1)]),
        ("a2", vec![("b", 0.6), ("a", 0.4)]),
        ("b1", vec![("b", 0.8), ("a", 0.2)]),
        ("b2", vec![("b", 0.55), ("a", 0.45)]),
        ("o1", vec![("a", 0.7), ("b", 0.3)]),
        ("o2", vec![("b", 0.3), ("a", 0.3)]),
    ]);
    let test = Dataset {
        examples: vec![
            labeled("a1", Some("a")),
            labeled("a2", Some("a")),
            labeled("b1", Some("b")),
            labeled("b2", Some("b")),
            labeled("o1", None),
            labeled("o2", None),
        ],
    };
    let report = evaluate(&classifier, &test, 0.5, 0.2, 0.75);

    assert_eq!(report.in_scope_examples, 4);
    assert!((report.accuracy - 0.75).abs() < 1e-9, "accuracy {}", report.accuracy);
    // a: precision 1, recall 0.5, F1 2/3; b: precision 2/3, recall 1, F1 0.8.
    assert!((report.macro_f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9, "macro F1 {}", report.macro_f1);
    assert_eq!(report.per_intent.len(), 2);

    let oos = report.out_of_scope.expect("test data has out-of-scope examples");
    assert_eq!(oos.examples, 2);
    // o1 passes threshold 0.5 and margin 0.2; o2 does not.
    assert!((oos.recall - 0.5).abs() < 1e-9, "recall {}", oos.recall);
    // a1 (0.9 vs 0.1) and b1 (0.8 vs 0.2) are accepted and right; b2's margin is too small.
    assert!((oos.in_scope_accuracy - 0.5).abs() < 1e-9, "in-scope accuracy {}", oos.in_scope_accuracy);
    // Keeping 75% of the in-scope confidences [0.9, 0.8, 0.6, 0.55] needs threshold 0.6.
    assert_eq!(oos.calibrated.threshold, 0.6);
    assert!((oos.calibrated.out_of_scope_recall - 0.5).abs() < 1e-9);
}

#[test]
fn evaluate_groups_errors_by_intent_pair() -> Result<()> {
    let classifier = TableClassifier(vec![
        ("酒店电话", vec![("餐馆+电话", 0.6), ("酒店+电话", 0.4)]),
        ("饭店电话", vec![("餐馆+电话", 0.7), ("酒店+电话", 0.3)]),
        ("酒店地址", vec![("酒店+地址", 0.9)]),
        ("酒店在哪", vec![("餐馆+电话", 0.5), ("酒店+地址", 0.5)]),
        ("o1", vec![("酒店+地址", 0.9)]),
    ]);
    let test = Dataset {
        examples: vec![
            labeled("酒店电话", Some("酒店+电话")),
            labeled("酒店地址", Some("酒店+地址")),
            labeled("饭店电话", Some("酒店+电话")),
            labeled("酒店在哪", Some("酒店+地址")),
            labeled("not in the table", Some("酒店+地址")),
            labeled("o1", None),
        ],
    };
    let report = evaluate(&classifier, &test, 0.5, 0.1, 0.95);

    let pairs: Vec<(&str, Option<&str>, Vec<&str>)> = report
        .confusions
        .iter()
        .map(|c| (c.intent.as_str(), c.predicted.as_ref().map(IntentId::as_str), c.texts.iter().map(String::as_str).collect()))
        .collect();
    // The out-of-scope example is not an error here; its recall is scored apart.
    assert_eq!(
        pairs,
        vec![
            ("酒店+电话", Some("餐馆+电话"), vec!["酒店电话", "饭店电话"]),
            ("酒店+地址", None, vec!["not in the table"]),
            ("酒店+地址", Some("餐馆+电话"), vec!["酒店在哪"]),
        ]
    );
    assert!(report.confusions.iter().all(|c| c.count == c.texts.len()));
    let table = report.to_string();
    assert!(table.contains("most confused (true -> predicted), of 4 errors:"), "{table}");
    assert!(table.contains("    2  酒店+电话 -> 餐馆+电话, such as \"酒店电话\""), "{table}");
    assert!(table.contains("    1  酒店+地址 -> (none), such as \"not in the table\""), "{table}");
    // Chinese intent names take two cells a character, so the columns line up.
    assert!(table.contains("酒店+电话  "), "{table}");
    let header = table.lines().find(|line| line.starts_with("intent")).context("per-intent header")?;
    let row = table.lines().find(|line| line.starts_with("酒店+电话")).context("per-intent row")?;
    assert_eq!(bot_core::text::display_width(header), bot_core::text::display_width(row), "{table}");
    Ok(())
}

#[test]
fn evaluate_out_of_scope_only_prints_no_accuracy() {
    let classifier = TableClassifier(vec![("o1", vec![("a", 0.9)]), ("o2", vec![("a", 0.2)])]);
    let test = Dataset { examples: vec![labeled("o1", None), labeled("o2", None)] };

    let table = evaluate(&classifier, &test, 0.5, 0.1, 0.95).to_string();

    assert!(table.contains("in-scope examples: 0"), "{table}");
    assert!(!table.contains("accuracy:"), "no accuracy without in-scope examples:\n{table}");
    assert!(!table.contains("keeps 95% of in-scope"), "{table}");
    assert!(!table.contains("precision  recall"), "no per-intent table without intents:\n{table}");
    assert!(table.contains("out-of-scope recall 0.500"), "{table}");
}

#[test]
fn threshold_keeping_handles_edges() {
    assert_eq!(threshold_keeping(&[], 0.95), 0.0);
    assert_eq!(threshold_keeping(&[0.3, 0.9, 0.5], 1.0), 0.3);
    assert_eq!(threshold_keeping(&[0.3, 0.9, 0.5], 0.0), 0.9);
}

#[test]
fn dataset_jsonl_with_out_of_scope() -> Result<()> {
    let dir = TempDir::new("jsonl")?;
    let path = dir.path().join("data.jsonl");
    fs::write(
        &path,
        "{\"text\": \"我要退款\", \"intent\": \"refund\"}\n\n{\"text\": \"weather?\", \"intent\": null}\n{\"text\": \"hi\"}\n",
    )?;
    let dataset = Dataset::load(&path)?;
    assert_eq!(dataset.examples, [labeled("我要退款", Some("refund")), labeled("weather?", None), labeled("hi", None)]);
    Ok(())
}

#[test]
fn dataset_jsonl_bad_line_names_line() -> Result<()> {
    let dir = TempDir::new("jsonl-bad")?;
    let path = dir.path().join("data.jsonl");
    fs::write(&path, "{\"text\": \"a\", \"intent\": \"x\"}\n{\"text\": 5}\n")?;
    let error = Dataset::load(&path).err().context("invalid line accepted")?;
    ensure!(error.to_string().contains("data.jsonl:2:"), "message {error}");
    Ok(())
}

#[test]
fn dataset_csv_with_quotes() -> Result<()> {
    let dir = TempDir::new("csv")?;
    let path = dir.path().join("train.csv");
    fs::write(&path, "text,category\nI am still waiting on my card?,card_arrival\n\"Hi, my \"\"new\"\" card\",card_arrival\nwhat,\n")?;
    let dataset = Dataset::load(&path)?;
    assert_eq!(
        dataset.examples,
        [
            labeled("I am still waiting on my card?", Some("card_arrival")),
            labeled("Hi, my \"new\" card", Some("card_arrival")),
            labeled("what", None)
        ]
    );
    Ok(())
}

#[test]
fn dataset_csv_without_intent_column_is_an_error() -> Result<()> {
    let dir = TempDir::new("csv-bad")?;
    let path = dir.path().join("train.csv");
    fs::write(&path, "text,other\nhello,x\n")?;
    assert!(Dataset::load(&path).is_err());
    Ok(())
}

#[test]
fn dataset_clinc_layout_marks_oos() -> Result<()> {
    let dir = TempDir::new("clinc")?;
    let path = dir.path().join("data_full.json");
    let json = r#"{"train": [["book a flight", "book_flight"]], "val": [["fly me", "book_flight"]],
        "test": [["flight please", "book_flight"]], "oos_train": [["what is love", "oos"]],
        "oos_val": [], "oos_test": [["sing a song", "oos"], ["dance", "oos"]]}"#;
    fs::write(&path, json)?;
    let clinc = Clinc150::load(&path)?;
    assert_eq!(clinc.train.examples, [labeled("book a flight", Some("book_flight")), labeled("what is love", None)]);
    assert_eq!(clinc.val.len(), 1);
    assert_eq!(clinc.test.out_of_scope_count(), 2);
    Ok(())
}

#[test]
fn dataset_unknown_extension_is_an_error() {
    let result = Dataset::load(Path::new("data.parquet"));
    assert!(result.is_err());
}

#[test]
fn model_debug_is_short() -> Result<()> {
    let model = IntentModel::train(&shop_examples(), &quick_config(1))?;
    let debug = format!("{model:?}");
    assert!(debug.len() < 300, "debug output is {} bytes", debug.len());
    assert!(debug.contains("feature_rows"), "{debug}");
    Ok(())
}

#[test]
fn sample_per_intent_keeps_n_of_each() {
    let mut examples: Vec<LabeledText> =
        shop_examples().into_iter().map(|(text, intent)| LabeledText { text, intent: Some(intent) }).collect();
    examples.push(LabeledText { text: "what is the weather".to_owned(), intent: None });
    let data = Dataset { examples };

    let sample = data.sample_per_intent(3, 5);
    let mut counts = std::collections::BTreeMap::new();
    for example in &sample.examples {
        *counts.entry(example.intent.clone()).or_insert(0) += 1;
    }
    assert!(!counts.contains_key(&None), "out-of-scope rows are left out");
    assert!(counts.values().all(|&count| count == 3), "{counts:?}");
    assert_eq!(sample, data.sample_per_intent(3, 5), "same seed, same sample");
    assert_ne!(sample, data.sample_per_intent(3, 6), "other seed, other sample");
}
