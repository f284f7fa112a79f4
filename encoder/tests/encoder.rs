//! The encoder against real models: all-MiniLM-L6-v2 (and all-mpnet-base-v2
//! where `LEPTON_TEST_MPNET` names it) compared with sentence-transformers, a
//! tiny random XLM-RoBERTa built here, broken model folders and the batcher
//! under concurrent load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lepton_encoder::{dot, Batcher, DeviceChoice, Encoder, EncoderConfig, EncoderError, Pooling, TextKind};

/// The MiniLM folder, or an early `Ok(())` with the printed reason.
macro_rules! minilm_or_skip {
    () => {
        match lepton_encoder::test_model() {
            Ok(folder) => folder,
            Err(reason) => {
                eprintln!("skipped: no test model: {reason}");
                return Ok(());
            }
        }
    };
}

fn norm(vector: &[f32]) -> f32 {
    dot(vector, vector).sqrt()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (norm(a) * norm(b))
}

fn temp_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("lepton-encoder-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<ReferenceCase>,
}

#[derive(serde::Deserialize)]
struct ReferenceCase {
    text: String,
    vector: Vec<f32>,
}

/// Compares the encoder's vectors of `fixture`'s texts with those
/// sentence-transformers gave (`tests/fixtures/reference_vectors.py`).
fn assert_matches_reference(folder: &Path, fixture: &str, dimension: usize) -> Result<()> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture))?;
    let reference: Reference = serde_json::from_str(&text)?;
    let encoder = Encoder::load(&EncoderConfig::new(folder))?;

    let texts: Vec<&str> = reference.cases.iter().map(|case| case.text.as_str()).collect();
    let vectors = encoder.embed(&texts, TextKind::Query)?;

    assert_eq!(vectors.len(), reference.cases.len());
    for (case, vector) in reference.cases.iter().zip(&vectors) {
        assert_eq!(vector.len(), dimension, "{:?}", case.text);
        let similarity = cosine(vector, &case.vector);
        assert!(similarity > 0.9999, "{:?}: cosine {similarity} to sentence-transformers", case.text);
        assert!((norm(vector) - 1.0).abs() < 1e-4, "{:?}: norm {}", case.text, norm(vector));
    }
    Ok(())
}

#[test]
fn minilm_matches_sentence_transformers() -> Result<()> {
    let folder = minilm_or_skip!();
    assert_matches_reference(&folder, "minilm_reference.json", 384)
}

/// all-mpnet-base-v2 is 420 MB, so only runs that ask for it (`.ci/run`
/// does) fetch it, with `scripts/fetch-mpnet.sh`.
#[test]
fn mpnet_matches_sentence_transformers() -> Result<()> {
    let Some(folder) = std::env::var_os("LEPTON_TEST_MPNET") else {
        eprintln!("skipped: LEPTON_TEST_MPNET is not set; scripts/fetch-mpnet.sh fetches all-mpnet-base-v2");
        return Ok(());
    };
    assert_matches_reference(Path::new(&folder), "mpnet_reference.json", 768)
}

#[test]
fn minilm_batch_equals_single_texts() -> Result<()> {
    let folder = minilm_or_skip!();
    let mut config = EncoderConfig::new(folder);
    config.max_batch = 3;
    let encoder = Encoder::load(&config)?;
    let texts = [
        "a much longer sentence about shipping a parcel to another country by sea",
        "hi",
        "",
        "退货需要多久？",
        "where is my order",
        "cancel my subscription please, I no longer need it",
        "hi",
    ];

    let batched = encoder.embed(&texts, TextKind::Query)?;

    assert_eq!(batched.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batched) {
        let single = encoder.embed(&[text], TextKind::Query)?.remove(0);
        let similarity = cosine(vector, &single);
        assert!(similarity > 0.9999, "{text:?}: cosine {similarity} between batched and single");
    }
    assert!(cosine(&batched[1], &batched[6]) > 0.9999, "the same text twice");
    assert!(cosine(&batched[0], &batched[1]) < 0.9, "different texts");
    Ok(())
}

#[test]
fn minilm_empty_list_gives_no_vectors() -> Result<()> {
    let folder = minilm_or_skip!();
    let encoder = Encoder::load(&EncoderConfig::new(folder))?;
    assert!(encoder.embed(&[], TextKind::Passage)?.is_empty());
    Ok(())
}

#[test]
fn minilm_reads_pooling_and_dimension() -> Result<()> {
    let folder = minilm_or_skip!();
    let encoder = Encoder::load(&EncoderConfig::new(folder))?;
    assert_eq!(encoder.dimension(), 384);
    assert_eq!(encoder.pooling(), Pooling::Mean);
    assert_eq!(encoder.device_name(), "cpu");
    Ok(())
}

#[test]
fn cls_pooling_changes_vectors() -> Result<()> {
    let folder = minilm_or_skip!();
    let mean = Encoder::load(&EncoderConfig::new(&folder))?;
    let mut config = EncoderConfig::new(&folder);
    config.pooling = Some(Pooling::Cls);
    let cls = Encoder::load(&config)?;

    let text = ["my card was charged twice"];
    let by_mean = mean.embed(&text, TextKind::Query)?.remove(0);
    let by_cls = cls.embed(&text, TextKind::Query)?.remove(0);

    assert_eq!(cls.pooling(), Pooling::Cls);
    assert!(cosine(&by_mean, &by_cls) < 0.999, "cls and mean pooling gave the same vector");
    assert_ne!(mean.fingerprint(), cls.fingerprint());
    Ok(())
}

#[test]
fn prefixes_apply_by_text_kind() -> Result<()> {
    let folder = minilm_or_skip!();
    let plain = Encoder::load(&EncoderConfig::new(&folder))?;
    let mut config = EncoderConfig::new(&folder);
    config.query_prefix = "query: ".to_owned();
    config.passage_prefix = "passage: ".to_owned();
    let prefixed = Encoder::load(&config)?;

    let query = prefixed.embed(&["reset password"], TextKind::Query)?.remove(0);
    let passage = prefixed.embed(&["reset password"], TextKind::Passage)?.remove(0);
    let by_hand = plain.embed(&["query: reset password"], TextKind::Passage)?.remove(0);

    assert!(cosine(&query, &by_hand) > 0.9999, "the query prefix was not prepended");
    assert!(cosine(&query, &passage) < 0.9999, "query and passage prefixes gave the same vector");
    Ok(())
}

#[test]
fn fingerprint_is_stable_and_tracks_settings() -> Result<()> {
    let folder = minilm_or_skip!();
    let first = Encoder::load(&EncoderConfig::new(&folder))?;
    let second = Encoder::load(&EncoderConfig::new(&folder))?;
    let mut config = EncoderConfig::new(&folder);
    config.max_tokens = Some(128);
    let shorter = Encoder::load(&config)?;
    let mut config = EncoderConfig::new(&folder);
    config.normalize = false;
    let raw = Encoder::load(&config)?;
    let mut config = EncoderConfig::new(&folder);
    config.max_batch = 8;
    let smaller_batches = Encoder::load(&config)?;

    assert_eq!(first.fingerprint().len(), 64);
    assert_eq!(first.fingerprint(), second.fingerprint());
    assert_eq!(first.fingerprint(), smaller_batches.fingerprint(), "batch size cannot change vectors");
    assert_ne!(first.fingerprint(), shorter.fingerprint());
    assert_ne!(first.fingerprint(), raw.fingerprint());
    Ok(())
}

#[test]
fn normalize_off_keeps_raw_length() -> Result<()> {
    let folder = minilm_or_skip!();
    let mut config = EncoderConfig::new(&folder);
    config.normalize = false;
    let encoder = Encoder::load(&config)?;
    let vector = encoder.embed(&["hello there"], TextKind::Query)?.remove(0);
    assert!((norm(&vector) - 1.0).abs() > 0.01, "norm {}", norm(&vector));
    Ok(())
}

#[test]
fn cuda_choice_falls_back_to_cpu() -> Result<()> {
    let folder = minilm_or_skip!();
    let mut config = EncoderConfig::new(&folder);
    config.device = DeviceChoice::Cuda(0);
    let encoder = Encoder::load(&config)?;
    if cfg!(not(feature = "cuda")) {
        assert_eq!(encoder.device_name(), "cpu");
    }
    assert_eq!(encoder.embed(&["hello"], TextKind::Query)?[0].len(), 384);
    Ok(())
}

/// Copies the MiniLM folder's small files and links its weights, so a test
/// can break one file.
fn copy_model(from: &Path, name: &str) -> Result<PathBuf> {
    let dir = temp_dir(name)?;
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(from.join(file), dir.join(file))?;
    }
    std::os::unix::fs::symlink(from.join("model.safetensors").canonicalize()?, dir.join("model.safetensors"))?;
    Ok(dir)
}

fn load_error(folder: &Path) -> Result<EncoderError> {
    match Encoder::load(&EncoderConfig::new(folder)) {
        Ok(_) => anyhow::bail!("{} loaded but should not", folder.display()),
        Err(error) => Ok(error),
    }
}

#[test]
fn missing_tokenizer_names_the_file() -> Result<()> {
    let folder = minilm_or_skip!();
    let broken = copy_model(&folder, "no-tokenizer")?;
    std::fs::remove_file(broken.join("tokenizer.json"))?;

    let message = load_error(&broken)?.to_string();

    assert!(message.contains("tokenizer.json"), "{message}");
    assert!(message.contains("lepton model pull"), "{message}");
    Ok(())
}

#[test]
fn missing_folder_says_what_to_do() -> Result<()> {
    let message = load_error(Path::new("/nonexistent/lepton-model"))?.to_string();
    assert!(message.contains("/nonexistent/lepton-model"), "{message}");
    assert!(message.contains("lepton model pull"), "{message}");
    Ok(())
}

#[test]
fn unsupported_model_type_is_named() -> Result<()> {
    let folder = minilm_or_skip!();
    let broken = copy_model(&folder, "gpt2")?;
    let config = std::fs::read_to_string(broken.join("config.json"))?.replace("\"bert\"", "\"gpt2\"");
    std::fs::write(broken.join("config.json"), config)?;

    let message = load_error(&broken)?.to_string();

    assert!(message.contains("gpt2"), "{message}");
    assert!(message.contains("config.json"), "{message}");
    Ok(())
}

#[test]
fn corrupt_config_names_the_file() -> Result<()> {
    let folder = minilm_or_skip!();
    let broken = copy_model(&folder, "corrupt-config")?;
    std::fs::write(broken.join("config.json"), "{\"model_type\": \"bert\", ")?;

    let message = load_error(&broken)?.to_string();

    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("invalid JSON"), "{message}");
    Ok(())
}

#[test]
fn incomplete_bert_config_names_the_file() -> Result<()> {
    let folder = minilm_or_skip!();
    let broken = copy_model(&folder, "incomplete-config")?;
    std::fs::write(broken.join("config.json"), "{\"model_type\": \"bert\", \"hidden_size\": 384}")?;

    let message = load_error(&broken)?.to_string();

    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("invalid bert configuration"), "{message}");
    Ok(())
}

#[test]
fn head_count_that_does_not_divide_the_width_is_refused() -> Result<()> {
    let folder = minilm_or_skip!();
    for heads in ["0", "7"] {
        let broken = copy_model(&folder, &format!("heads-{heads}"))?;
        let config = std::fs::read_to_string(broken.join("config.json"))?;
        let config = config.replace("\"num_attention_heads\": 12", &format!("\"num_attention_heads\": {heads}"));
        std::fs::write(broken.join("config.json"), config)?;

        let message = load_error(&broken)?.to_string();

        assert!(message.contains("config.json"), "{message}");
        assert!(message.contains(&format!("num_attention_heads {heads}")), "{message}");
    }
    Ok(())
}

#[test]
fn batcher_answers_concurrent_callers() -> Result<()> {
    let folder = minilm_or_skip!();
    let mut config = EncoderConfig::new(folder);
    config.max_wait = Duration::from_millis(20);
    let encoder = Arc::new(Encoder::load(&config)?);
    let batcher = Batcher::new(encoder.clone());
    let texts: Vec<String> = (0..64).map(|i| format!("question number {i} about order {}", i * 7)).collect();

    let answers: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .iter()
            .map(|text| {
                let batcher = batcher.clone();
                scope.spawn(move || batcher.embed_blocking(text, TextKind::Query))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("caller thread panicked")).collect::<Vec<_>>()
    })
    .into_iter()
    .collect::<Result<_, _>>()?;

    for (text, answer) in texts.iter().zip(&answers) {
        let direct = encoder.embed(&[text], TextKind::Query)?.remove(0);
        let similarity = cosine(answer, &direct);
        assert!(similarity > 0.9999, "{text:?}: cosine {similarity} to a direct embed");
    }
    let stats = batcher.stats();
    assert_eq!(stats.texts, 64);
    assert!(stats.batches < 64, "no batch formed: {stats:?}");
    assert_eq!(batcher.progress().waiting, 0, "every text was answered");
    Ok(())
}

#[test]
fn progress_check_joins_no_queue() -> Result<()> {
    let folder = minilm_or_skip!();
    let mut config = EncoderConfig::new(folder);
    config.max_wait = Duration::from_millis(50);
    let batcher = Batcher::new(Arc::new(Encoder::load(&config)?));
    let long = "where is the parcel I ordered last week and when will it arrive ".repeat(20);

    let checks = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..48)
            .map(|_| {
                let batcher = batcher.clone();
                let long = long.as_str();
                scope.spawn(move || batcher.embed_blocking(long, TextKind::Query))
            })
            .collect();
        let mut checks = Vec::new();
        let mut seen_waiting = 0;
        while callers.iter().any(|caller| !caller.is_finished()) {
            seen_waiting = seen_waiting.max(batcher.progress().waiting);
            checks.push(batcher.check_progress());
            std::thread::sleep(Duration::from_millis(1));
        }
        for caller in callers {
            caller.join().expect("caller thread panicked").expect("a caller got no vector");
        }
        (checks, seen_waiting)
    });

    let (checks, seen_waiting) = checks;
    assert!(seen_waiting > 0, "the checks never saw a text waiting");
    assert!(checks.iter().all(Result::is_ok), "a busy batcher was reported stalled");
    assert_eq!(batcher.stats().texts, 48, "the checks submitted texts of their own");
    assert_eq!(batcher.progress().waiting, 0);
    Ok(())
}

#[test]
fn batcher_async_embed_matches_direct() -> Result<()> {
    let folder = minilm_or_skip!();
    let encoder = Arc::new(Encoder::load(&EncoderConfig::new(folder))?);
    let batcher = Batcher::new(encoder.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let texts: [&'static str; 4] = ["我要投诉", "track my parcel", "change my delivery address", ""];

    let answers = runtime.block_on(async {
        let calls = texts.into_iter().map(|text| {
            let batcher = batcher.clone();
            async move { batcher.embed(text, TextKind::Passage).await }
        });
        futures_join_all(calls).await
    });

    for (text, answer) in texts.iter().zip(answers) {
        let answer = answer.with_context(|| format!("{text:?}"))?;
        let direct = encoder.embed(&[text], TextKind::Passage)?.remove(0);
        assert!(cosine(&answer, &direct) > 0.9999, "{text:?}");
    }
    Ok(())
}

/// Runs the futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task panicked"));
    }
    outputs
}

#[test]
fn batcher_stops_when_clones_drop() -> Result<()> {
    let folder = minilm_or_skip!();
    let encoder = Arc::new(Encoder::load(&EncoderConfig::new(folder))?);
    let batcher = Batcher::new(encoder.clone());
    let clone = batcher.clone();
    assert_eq!(clone.embed_blocking("hello", TextKind::Query)?.len(), 384);
    drop(batcher);
    drop(clone);

    // The thread keeps a reference to the encoder until it ends.
    for _ in 0..200 {
        if Arc::strong_count(&encoder) == 1 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::bail!("the batcher thread still holds the encoder")
}

mod xlm_roberta {
    //! A tiny random XLM-RoBERTa, written with candle and the tokenizers crate.

    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::Tokenizer;

    const WORDS: [&str; 12] = ["hello", "world", "refund", "order", "my", "where", "is", "the", "parcel", "退款", "订单", "?"];

    fn write_model(dir: &Path) -> Result<()> {
        let config = serde_json::json!({
            "model_type": "xlm-roberta",
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 40,
            "type_vocab_size": 1,
            "vocab_size": 4 + WORDS.len(),
            "layer_norm_eps": 1e-5,
            "pad_token_id": 1,
            "position_embedding_type": "absolute",
        });
        std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
        let parsed: candle_transformers::models::xlm_roberta::Config = serde_json::from_value(config)?;

        // Building the model from a VarMap creates every weight at random.
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        candle_transformers::models::xlm_roberta::XLMRobertaModel::new(&parsed, vb.pp("roberta"))?;
        varmap.save(dir.join("model.safetensors"))?;

        let mut vocab = vec![("<s>".to_owned(), 0), ("<pad>".to_owned(), 1), ("</s>".to_owned(), 2), ("<unk>".to_owned(), 3)];
        vocab.extend(WORDS.iter().enumerate().map(|(i, word)| ((*word).to_owned(), 4 + i as u32)));
        let model = WordLevel::builder()
            .vocab(vocab.into_iter().collect())
            .unk_token("<unk>".to_owned())
            .build()
            .map_err(anyhow::Error::msg)?;
        let template = TemplateProcessing::builder()
            .try_single("<s> $0 </s>")
            .map_err(anyhow::Error::msg)?
            .special_tokens(vec![("<s>", 0), ("</s>", 2)])
            .build()?;
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        tokenizer.with_post_processor(Some(template));
        tokenizer.save(dir.join("tokenizer.json"), false).map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// The maximum token count of the tiny model: 40 positions, numbered from
    /// pad_token_id + 1.
    const MAX_TOKENS: usize = 38;

    fn load(dir: &Path, pooling: Option<Pooling>) -> Result<Encoder> {
        let mut config = EncoderConfig::new(dir);
        config.pooling = pooling;
        config.max_tokens = Some(MAX_TOKENS);
        Ok(Encoder::load(&config)?)
    }

    #[test]
    fn max_tokens_beyond_positions_rejected() -> Result<()> {
        let dir = temp_dir("xlm-roberta-positions")?;
        write_model(&dir)?;

        let mut config = EncoderConfig::new(&dir);
        config.max_tokens = Some(256);
        let error = Encoder::load(&config).err().context("256 tokens were accepted")?.to_string();
        assert!(error.contains("config.json"), "{error}");
        assert!(error.contains("max_tokens 256"), "{error}");
        assert!(error.contains("at most 38"), "{error}");
        Ok(())
    }

    #[test]
    fn default_max_tokens_from_folder() -> Result<()> {
        let dir = temp_dir("xlm-roberta-default-tokens")?;
        write_model(&dir)?;

        let encoder = Encoder::load(&EncoderConfig::new(&dir))?;
        assert_eq!(encoder.max_tokens(), MAX_TOKENS, "without sentence_bert_config.json, 256 is cut to the model's limit");

        std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 20, "do_lower_case": false}"#)?;
        let encoder = Encoder::load(&EncoderConfig::new(&dir))?;
        assert_eq!(encoder.max_tokens(), 20);

        let mut config = EncoderConfig::new(&dir);
        config.max_tokens = Some(30);
        assert_eq!(Encoder::load(&config)?.max_tokens(), 30, "a configured max_tokens wins over the folder's");
        Ok(())
    }

    #[test]
    fn invalid_sentence_bert_config_rejected() -> Result<()> {
        let dir = temp_dir("xlm-roberta-bad-sentence-bert")?;
        write_model(&dir)?;
        std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": "long"}"#)?;

        let error = Encoder::load(&EncoderConfig::new(&dir)).err().context("an invalid sentence_bert_config.json was accepted")?.to_string();
        assert!(error.contains("sentence_bert_config.json"), "{error}");
        Ok(())
    }

    #[test]
    fn sentence_bert_length_below_three_rejected() -> Result<()> {
        let dir = temp_dir("xlm-roberta-short-sentence-bert")?;
        write_model(&dir)?;
        for length in [0, 1, 2] {
            std::fs::write(dir.join("sentence_bert_config.json"), format!(r#"{{"max_seq_length": {length}}}"#))?;

            let error = Encoder::load(&EncoderConfig::new(&dir)).err().with_context(|| format!("max_seq_length {length} was accepted"))?.to_string();

            assert!(error.contains("sentence_bert_config.json"), "{error}");
            assert!(error.contains(&format!("max_seq_length {length} is below 3")), "{error}");
            assert_eq!(lepton_encoder::default_max_tokens(&dir).err().map(|error| error.to_string()), Some(error));
        }
        Ok(())
    }

    #[test]
    fn foreign_tokenizer_rejected() -> Result<()> {
        let dir = temp_dir("xlm-roberta-vocab")?;
        write_model(&dir)?;
        let path = dir.join("config.json");
        let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        config["vocab_size"] = 5.into();
        std::fs::write(&path, config.to_string())?;

        let mut settings = EncoderConfig::new(&dir);
        settings.max_tokens = Some(MAX_TOKENS);
        let error = Encoder::load(&settings).err().context("a tokenizer larger than the model was accepted")?.to_string();
        assert!(error.contains("tokenizer.json"), "{error}");
        assert!(error.contains("vocab_size in config.json is 5"), "{error}");
        Ok(())
    }

    #[test]
    fn tiny_model_loads_and_pools() -> Result<()> {
        let dir = temp_dir("xlm-roberta")?;
        write_model(&dir)?;

        let mean = load(&dir, None)?;
        let cls = load(&dir, Some(Pooling::Cls))?;
        let texts = ["where is my parcel ?", "refund", "订单 退款", ""];
        let by_mean = mean.embed(&texts, TextKind::Query)?;
        let by_cls = cls.embed(&texts, TextKind::Query)?;

        assert_eq!(mean.dimension(), 32);
        assert_eq!(mean.pooling(), Pooling::Mean, "no 1_Pooling folder means mean pooling");
        assert_eq!(by_mean.len(), texts.len());
        for (text, (mean_vector, cls_vector)) in texts.iter().zip(by_mean.iter().zip(&by_cls)) {
            assert_eq!(mean_vector.len(), 32, "{text:?}");
            assert!((norm(mean_vector) - 1.0).abs() < 1e-4, "{text:?}");
            assert!((norm(cls_vector) - 1.0).abs() < 1e-4, "{text:?}");
            assert!(cosine(mean_vector, cls_vector) < 0.9999, "{text:?}: cls equals mean");
        }
        Ok(())
    }

    #[test]
    fn tiny_model_padding_is_masked() -> Result<()> {
        let dir = temp_dir("xlm-roberta-padding")?;
        write_model(&dir)?;

        for pooling in [Pooling::Mean, Pooling::Cls] {
            let encoder = load(&dir, Some(pooling))?;
            let batch = encoder.embed(&["refund", "where is the parcel ? hello world my order"], TextKind::Query)?;
            let single = encoder.embed(&["refund"], TextKind::Query)?;
            let similarity = cosine(&batch[0], &single[0]);
            assert!(similarity > 0.9999, "{pooling:?}: padded cosine {similarity}");
        }
        Ok(())
    }
}
