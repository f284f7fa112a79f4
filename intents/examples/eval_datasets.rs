//! Trains and evaluates the intent model on the public data sets in
//! `../shared/data` (CLINC150, BANKING77, CrossWOZ requests) and prints the
//! figures. Data sets that are absent are skipped.
//!
//! ```text
//! cargo run --release -p lepton-intents --example eval_datasets -- [DATA_DIR] [--only NAME] [--split val] [--config JSON] [--json]
//! ```
//!
//! `--config` takes a JSON object whose fields replace those of the default
//! `TrainConfig` (for example `{"hidden": 512, "features": {"min_df": 2}}`).
//! `--split val` scores CLINC150 on its validation split, and the other data
//! sets on every fifth training example (trained on the rest), for tuning.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use bot_core::IntentId;
use lepton_intents::eval::{evaluate, run_eval, Clinc150, Dataset, EvalConfig, EvalReport, LabeledText};
use lepton_intents::{IntentModel, TrainConfig, METADATA_FILE, WEIGHTS_FILE};

struct Options {
    data_dir: PathBuf,
    only: Option<String>,
    validation: bool,
    config: TrainConfig,
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let eval_config = EvalConfig { train: options.config.clone(), ..EvalConfig::default() };
    println!("threads: {}", std::thread::available_parallelism().map_or(0, |n| n.get()));

    let selected = |name: &str| options.only.as_deref().is_none_or(|only| only == name);
    let mut found = false;

    let clinc_path = options.data_dir.join("clinc150/data_full.json");
    if selected("clinc150") && clinc_path.exists() {
        found = true;
        let clinc = Clinc150::load(&clinc_path)?;
        // For tuning, the validation split borrows the 100 out-of-scope training
        // texts (never trained on) to double its out-of-scope examples.
        let mut val = clinc.val.clone();
        val.examples.extend(clinc.train.examples.iter().filter(|e| e.intent.is_none()).cloned());
        let test = if options.validation { &val } else { &clinc.test };
        let split = if options.validation { "val" } else { "test" };
        print_report(&format!("CLINC150 ({split})"), &run_eval(&clinc.train, test, &eval_config)?, options.json)?;

        demo_sized(&clinc, &options.config)?;
        storage(&clinc, &options.config)?;
    }

    for (name, folder, extension) in [("banking77", "banking77", "csv"), ("crosswoz", "crosswoz-request", "jsonl")] {
        let train_path = options.data_dir.join(folder).join(format!("train.{extension}"));
        let test_path = options.data_dir.join(folder).join(format!("test.{extension}"));
        if !selected(name) || !train_path.exists() || !test_path.exists() {
            continue;
        }
        found = true;
        let (train, test) = if options.validation {
            // Tuning split: every fifth training example is held out.
            let all = Dataset::load(&train_path)?;
            let (held_out, kept): (Vec<_>, Vec<_>) = all.examples.into_iter().enumerate().partition(|(i, _)| i % 5 == 4);
            let strip = |pairs: Vec<(usize, LabeledText)>| Dataset { examples: pairs.into_iter().map(|(_, e)| e).collect() };
            (strip(kept), strip(held_out))
        } else {
            (Dataset::load(&train_path)?, Dataset::load(&test_path)?)
        };
        let split = if options.validation { "held-out fifth of train" } else { "test" };
        let report = run_eval(&train, &test, &eval_config)?;
        print_report(&format!("{name} ({split})"), &report, options.json)?;
    }

    if !found {
        println!("no data sets found under {}; nothing to evaluate", options.data_dir.display());
    }
    Ok(())
}

/// Trains on 20 intents × 20 examples, the size of a small bot, and times
/// training and single-message classification.
fn demo_sized(clinc: &Clinc150, config: &TrainConfig) -> anyhow::Result<()> {
    let intents: Vec<IntentId> = {
        let mut all: Vec<IntentId> = clinc.train.in_scope().into_iter().map(|(_, intent)| intent).collect();
        all.sort();
        all.dedup();
        all.into_iter().step_by(7).take(20).collect()
    };
    let mut examples = Vec::new();
    for intent in &intents {
        examples.extend(clinc.train.in_scope().into_iter().filter(|(_, i)| i == intent).take(20));
    }

    let started = Instant::now();
    let model = IntentModel::train(&examples, config)?;
    let train_seconds = started.elapsed().as_secs_f64();

    // The other intents' test queries are out of scope for this small model.
    let test = Dataset {
        examples: clinc
            .test
            .examples
            .iter()
            .map(|e| LabeledText { text: e.text.clone(), intent: e.intent.clone().filter(|i| intents.contains(i)) })
            .collect(),
    };
    let report = evaluate(&model, &test, 0.5, 0.1, 0.95);
    let oos = report.out_of_scope.as_ref().context("the demo test set has out-of-scope queries")?;

    println!("\n== demo size: {} intents x 20 examples ==", intents.len());
    println!("training: {} examples in {train_seconds:.2} s", examples.len());
    println!("accuracy on those intents' CLINC150 test queries: {:.2}% of {}", report.accuracy * 100.0, report.in_scope_examples);
    println!(
        "threshold 0.5, margin 0.1: {:.2}% of them accepted and right; {:.3} of the other {} queries rejected",
        oos.in_scope_accuracy * 100.0,
        oos.recall,
        oos.examples
    );
    println!("classify: {:.1} µs per message (mean)", report.classify_micros);
    Ok(())
}

/// Saves and loads a model trained on all of CLINC150's training set, and
/// prints the file sizes and times.
fn storage(clinc: &Clinc150, config: &TrainConfig) -> anyhow::Result<()> {
    let model = IntentModel::train(&clinc.train.in_scope(), config)?;
    let dir = std::env::temp_dir().join(format!("lepton-intents-eval-{}", std::process::id()));

    let started = Instant::now();
    model.save(&dir)?;
    let save_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let loaded = IntentModel::load(&dir)?;
    let load_seconds = started.elapsed().as_secs_f64();

    let weights = std::fs::metadata(dir.join(WEIGHTS_FILE))?.len();
    let metadata = std::fs::metadata(dir.join(METADATA_FILE))?.len();
    std::fs::remove_dir_all(&dir)?;
    println!("\n== storage of the CLINC150 model ({} feature rows) ==", loaded.feature_rows());
    println!("files: {:.1} MB weights, {:.1} kB metadata", weights as f64 / 1e6, metadata as f64 / 1e3);
    println!("save {:.2} s, load {:.2} s", save_seconds, load_seconds);
    Ok(())
}

fn print_report(name: &str, report: &EvalReport, json: bool) -> anyhow::Result<()> {
    println!("\n== {name} ==");
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    // The per-intent table runs to 150 rows; print the summary and the five weakest intents.
    let text = report.to_string();
    let summary: Vec<&str> = text.lines().take_while(|line| !line.is_empty()).collect();
    println!("{}", summary.join("\n"));
    let mut weakest = report.per_intent.clone();
    weakest.sort_by(|a, b| a.f1.total_cmp(&b.f1));
    for scores in weakest.iter().take(5) {
        println!(
            "  weak: {:<28} f1 {:.3} (precision {:.3}, recall {:.3})",
            scores.intent.as_str(),
            scores.f1,
            scores.precision,
            scores.recall
        );
    }
    Ok(())
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        data_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        only: None,
        validation: false,
        config: TrainConfig::default(),
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => options.only = Some(args.next().context("--only needs a data set name")?),
            "--split" => options.validation = args.next().context("--split needs `val` or `test`")? == "val",
            "--config" => options.config = merge_config(&args.next().context("--config needs a JSON object")?)?,
            "--json" => options.json = true,
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            dir => options.data_dir = PathBuf::from(dir),
        }
    }
    Ok(options)
}

/// Replaces the fields of the default `TrainConfig` named in `json`, recursively.
fn merge_config(json: &str) -> anyhow::Result<TrainConfig> {
    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
    let mut config = serde_json::to_value(TrainConfig::default())?;
    merge(&mut config, serde_json::from_str(json).context("--config is not valid JSON")?);
    serde_json::from_value(config).context("--config names an unknown field or a wrong type")
}
