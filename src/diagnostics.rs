//! `lepton validate`: the checks of the flows crate, then a check that needs the
//! intent model. The model check cross-validates the bot's model (the embedded
//! model, or the intent head on the bot's encoder) on the intents' examples
//! twice, with different seeds and so different folds. It warns about each example
//! that the models trained without it confidently classify as the same other intent
//! in both runs, and names the closest example of that intent.
//!
//! FAQ questions (the `_knowledge` intent) are left out of this check: an intent
//! and a FAQ entry on the same topic are expected to overlap, and the knowledge
//! answer is then a fitting reply. `lepton eval DIR --cross-validation K` covers them.
//!
//! The result is cached under the data folder by a hash of the examples, the
//! training configuration and the encoder's fingerprint, so a run after an edit
//! that changes no example skips the training.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bot_core::bot::KNOWLEDGE_INTENT;
use bot_core::{Classification, IntentId, ScoredIntent};
use lepton_flows::{Diagnostic, LoadedBot, Report};
use lepton_intents::{HeadConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::app::BotPaths;
use crate::eval::cross_validation::{cross_validate, FoldModel};

/// Folds of the model check: each model trains on 80% of the examples.
pub const CHECK_FOLDS: usize = 5;

/// Cross-validation runs of the model check; an example is reported only when every
/// run flags it. One run's confident mistakes are mostly noise: on the demo bot, four
/// single runs with different seeds flagged 7 to 14 examples each, 28 different ones
/// in all, and only one of them in all four.
pub const CHECK_RUNS: usize = 2;

/// Bumped when the cached result's layout or meaning changes.
const CACHE_VERSION: u32 = 3;
const CACHE_FILE: &str = "validate/cross-validation.json";

pub struct ValidateOptions {
    /// Run the model check after the flows checks pass.
    pub model: bool,
    /// Folder of the model check's cache [default: `DIR/.lepton`].
    pub data_dir: Option<PathBuf>,
}

/// The result of `lepton validate`.
pub struct Validation {
    /// Errors and warnings, the model check's included, sorted by file, line and column.
    pub report: Report,
    /// `None` when the model check did not run.
    pub model_check: Option<ModelCheck>,
    /// Why the model check did not run although it was asked for and the
    /// flows checks passed: the bot has too few intents or examples. A
    /// failure of the check (an encoder that cannot be loaded) is an error
    /// in `report` instead.
    pub model_check_skipped: Option<String>,
}

/// A summary of the model check.
#[derive(Clone, Debug)]
pub struct ModelCheck {
    pub examples: usize,
    pub folds: usize,
    /// Wall time of the check, in seconds.
    pub seconds: f64,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// Number of warnings the check added.
    pub warnings: usize,
    /// Whether the check trained the intent head on the bot's encoder rather
    /// than the embedded model.
    pub encoder: bool,
}

/// Renders as `model check: 5-fold cross-validation of 564 intent examples in 0.61 s, 3 warnings`.
impl std::fmt::Display for ModelCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = if self.cached { "cached result of " } else { "" };
        write!(f, "model check: {source}{}-fold cross-validation of {} intent examples", self.folds, self.examples)?;
        write!(f, " in {:.2} s, {} {}", self.seconds, self.warnings, if self.warnings == 1 { "warning" } else { "warnings" })?;
        if self.encoder {
            write!(f, " with the intent head on the bot's encoder")?;
        }
        Ok(())
    }
}

/// Validates the bot in `dir`: the flows checks and the encoder's token limit,
/// then, when they find no error and `options.model` is set, the model check.
pub fn validate(dir: &Path, options: &ValidateOptions) -> Validation {
    let (mut report, mut loaded) = lepton_flows::validate_and_load(dir);
    if let Some(error) = loaded.as_ref().and_then(|loaded| check_token_limit(dir, loaded)) {
        report.diagnostics.push(error);
        report.diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        loaded = None;
    }
    let Some(loaded) = loaded.filter(|_| options.model) else {
        return Validation { report, model_check: None, model_check_skipped: None };
    };

    let paths = BotPaths::new(dir, options.data_dir.as_deref());
    match check_model(&loaded, &paths) {
        Ok(Ok((check, warnings))) => {
            report.diagnostics.extend(warnings);
            report.diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            Validation { report, model_check: Some(check), model_check_skipped: None }
        }
        Ok(Err(too_few)) => Validation { report, model_check: None, model_check_skipped: Some(too_few) },
        Err(error) => {
            // The bot would fail the same way when it starts, so this is an error.
            let message = format!("the model check failed: {error:#}; fix the encoder settings, or run with --no-model to skip the check");
            report.diagnostics.push(Diagnostic::error_at_path(dir.to_owned(), message));
            Validation { report, model_check: None, model_check_skipped: None }
        }
    }
}

/// Checks a set `settings.encoder.max_tokens` against the model's config.json
/// alone, so that `--no-model` reports it too. Without the setting, it checks
/// the folder's `sentence_bert_config.json`, which gives the default, and
/// reports a bad file at `model:`. Returns `None` when the length fits or
/// config.json cannot be read (the model check reports that).
fn check_token_limit(dir: &Path, loaded: &LoadedBot) -> Option<Diagnostic> {
    let settings = loaded.bot.settings.encoder.as_ref()?;
    let folder = lepton_flows::resolve_model(dir, &settings.model, &lepton_flows::HubCache::from_env()).ok()?;
    let limit = lepton_encoder::token_limit(&folder).ok()?;
    let Some(max_tokens) = settings.max_tokens else {
        let error = lepton_encoder::default_max_tokens(&folder).err()?;
        let message = format!("the encoder's default max_tokens cannot be read: {error}");
        return Some(match loaded.example_places.setting("settings.encoder.model") {
            Some(place) => place.error(message),
            None => Diagnostic::error_at_path(dir.to_owned(), message),
        });
    };
    if max_tokens <= limit {
        return None;
    }
    let message = format!(
        "max_tokens {max_tokens} is too large for the model in {}: its config.json allows at most {limit} tokens; \
         set settings.encoder.max_tokens to at most {limit}",
        folder.display()
    );
    Some(match loaded.example_places.setting("settings.encoder.max_tokens") {
        Some(place) => place.error(message),
        None => Diagnostic::error_at_path(dir.to_owned(), message),
    })
}

/// The held-out predictions that went wrong in each cross-validation run, stored
/// between invocations.
#[derive(Serialize, Deserialize)]
struct CachedCheck {
    key: String,
    runs: Vec<Vec<Mistake>>,
}

/// An example whose held-out prediction named another intent.
#[derive(Clone, Serialize, Deserialize)]
struct Mistake {
    text: String,
    intent: IntentId,
    ranking: Vec<ScoredIntent>,
}

/// Runs the model check. The inner error is the reason it cannot run, when the
/// bot has too few intents or examples.
fn check_model(loaded: &LoadedBot, paths: &BotPaths) -> anyhow::Result<Result<(ModelCheck, Vec<Diagnostic>), String>> {
    let started = Instant::now();
    let examples: Vec<(String, IntentId)> = loaded.bot.training_examples().into_iter().filter(|(_, intent)| intent.as_str() != KNOWLEDGE_INTENT).collect();
    let intents: BTreeSet<&IntentId> = examples.iter().map(|(_, intent)| intent).collect();
    if intents.len() < 2 || examples.len() < 2 * CHECK_FOLDS {
        let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
        let (intent_count, example_count) = (count(intents.len(), "intent"), count(examples.len(), "distinct example"));
        return Ok(Err(format!("it needs at least 2 intents and {} distinct examples, and the bot has {intent_count} and {example_count}", 2 * CHECK_FOLDS)));
    }

    let settings = &loaded.bot.settings.classifier;
    let config = check_config(settings.seed);
    let batcher = match settings.model.uses_encoder(loaded.bot.settings.encoder.is_some()) {
        true => crate::app::load_encoder(paths, &loaded.bot, &crate::app::EncoderSlot::default())?,
        false => None,
    };
    let fingerprint = batcher.as_ref().map_or("none", |batcher| batcher.encoder().fingerprint());
    let key = format!(
        "v{CACHE_VERSION} folds {CHECK_FOLDS} runs {CHECK_RUNS} encoder {fingerprint} {}",
        lepton_intents::training_hash(&examples, &config)
    );
    let cache = paths.data_dir.join(CACHE_FILE);
    let (runs, cached) = match read_cache(&cache, &key) {
        Some(runs) => (runs, true),
        None => {
            let model = match &batcher {
                Some(batcher) => Some(FoldModel::encoder(batcher, HeadConfig::with_seed(config.seed), &examples)?),
                None => None,
            };
            let runs = (0..CHECK_RUNS)
                .map(|run| {
                    let config = run_config(&config, run);
                    let model = match &model {
                        Some(FoldModel::Encoder { batcher, head, vectors }) => FoldModel::Encoder {
                            batcher,
                            head: HeadConfig { seed: config.seed, ngram: config.clone(), ..head.clone() },
                            vectors: vectors.clone(),
                        },
                        _ => FoldModel::Embedded(config),
                    };
                    find_mistakes(&examples, &model)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            write_cache(&cache, &CachedCheck { key, runs: runs.clone() });
            (runs, false)
        }
    };

    let confusions = confirmed_confusions(&runs, settings.threshold, settings.margin);
    let warnings = confusion_warnings(loaded, &examples, &confusions);
    let check = ModelCheck {
        examples: examples.len(),
        folds: CHECK_FOLDS,
        seconds: started.elapsed().as_secs_f64(),
        cached,
        warnings: warnings.len(),
        encoder: batcher.is_some(),
    };
    Ok(Ok((check, warnings)))
}

/// Returns the training configuration of the check: the bot's, with one ensemble
/// member instead of three and a hidden layer of 64 instead of 128. On the demo bot
/// both runs then take 0.7 s in a release build on 2 cores, and training the bot's
/// model takes 0.5 s.
fn check_config(seed: u64) -> TrainConfig {
    TrainConfig { members: 1, hidden: 64, seed, ..TrainConfig::default() }
}

/// Returns the configuration of run `run`: its own seed, and so its own folds.
fn run_config(config: &TrainConfig, run: usize) -> TrainConfig {
    let seed = config.seed.wrapping_add((run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    TrainConfig { seed, ..config.clone() }
}

fn find_mistakes(examples: &[(String, IntentId)], model: &FoldModel) -> anyhow::Result<Vec<Mistake>> {
    let run = cross_validate(examples, CHECK_FOLDS, model)?;
    let mistakes = run
        .predictions
        .into_iter()
        .filter(|held_out| held_out.intent_trained)
        .filter(|held_out| held_out.top().is_some_and(|top| top.intent != examples[held_out.example].1))
        .map(|held_out| {
            let (text, intent) = examples[held_out.example].clone();
            Mistake { text, intent, ranking: held_out.ranking }
        })
        .collect();
    Ok(mistakes)
}

fn read_cache(path: &Path, key: &str) -> Option<Vec<Vec<Mistake>>> {
    let text = std::fs::read_to_string(path).ok()?;
    let check: CachedCheck = serde_json::from_str(&text).ok()?;
    (check.key == key).then_some(check.runs)
}

/// Writes the cache through a temporary file, so that a concurrent run never reads
/// half a file. A failure only costs the next run its speed, so it is logged.
fn write_cache(path: &Path, check: &CachedCheck) {
    let written = (|| -> anyhow::Result<()> {
        let folder = path.parent().context("cache path without a folder")?;
        std::fs::create_dir_all(folder)?;
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&temporary, serde_json::to_vec(check)?)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    })();
    if let Err(error) = written {
        tracing::debug!(error = format!("{error:#}"), path = %path.display(), "cannot cache the model check");
    }
}

/// An example that every run classified as the same other intent, with confidence.
struct Confusion<'m> {
    text: &'m str,
    intent: &'m IntentId,
    predicted: &'m IntentId,
    /// The confidence of `predicted` in each run.
    confidences: Vec<f32>,
}

/// Returns the examples whose wrong top intent passes `threshold` and `margin` in
/// every run, and is the same intent in all of them.
fn confirmed_confusions(runs: &[Vec<Mistake>], threshold: f32, margin: f32) -> Vec<Confusion<'_>> {
    let confident = |mistake: &Mistake| {
        let classification = Classification { ranking: mistake.ranking.clone() };
        classification.decide(threshold, margin).is_some()
    };
    let Some((first, others)) = runs.split_first() else { return Vec::new() };
    let mut confusions = Vec::new();
    for mistake in first.iter().filter(|mistake| confident(mistake)) {
        let Some(top) = mistake.ranking.first() else { continue };
        let mut confidences = vec![top.confidence];
        for run in others {
            let same = run.iter().find(|other| other.text == mistake.text && other.intent == mistake.intent);
            let agreeing = same.filter(|other| confident(other)).and_then(|other| other.ranking.first()).filter(|other| other.intent == top.intent);
            match agreeing {
                Some(other) => confidences.push(other.confidence),
                None => break,
            }
        }
        if confidences.len() == runs.len() {
            confusions.push(Confusion { text: &mistake.text, intent: &mistake.intent, predicted: &top.intent, confidences });
        }
    }
    confusions
}

/// Turns the confusions into warnings at the examples. When the closest example of
/// the predicted intent is itself confused with the first example's intent, the
/// pair gets one warning.
fn confusion_warnings(loaded: &LoadedBot, examples: &[(String, IntentId)], confusions: &[Confusion<'_>]) -> Vec<Diagnostic> {
    let confused_with: HashMap<&str, &IntentId> = confusions.iter().map(|confusion| (confusion.text, confusion.predicted)).collect();
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut warnings = Vec::new();
    for confusion in confusions {
        if covered.contains(confusion.text) {
            continue;
        }
        let Some(place) = loaded.example_places.get(confusion.intent, confusion.text) else { continue };
        let (text, intent, predicted) = (confusion.text, confusion.intent, confusion.predicted);
        let confidences: Vec<String> = confusion.confidences.iter().map(|confidence| format!("{confidence:.2}")).collect();
        let mut message = format!(
            "example `{text}` of intent `{intent}` is classified as `{predicted}` when left out of training (confidence {} in {} cross-validation runs)",
            confidences.join(" and "),
            confusion.confidences.len()
        );
        if let Some(closest) = closest_example(examples, predicted, text) {
            let at = loaded.example_places.get(predicted, closest).map(|p| format!(" at {p}")).unwrap_or_default();
            if confused_with.get(closest) == Some(&intent) {
                covered.insert(closest);
                message.push_str(&format!("; the closest `{predicted}` example, `{closest}`{at}, is in turn classified as `{intent}`"));
            } else {
                message.push_str(&format!("; the closest `{predicted}` example is `{closest}`{at}"));
            }
        }
        message.push_str(&format!("; add examples that tell `{intent}` and `{predicted}` apart, or move the example to the intent it means"));
        warnings.push(place.warning(message));
        covered.insert(text);
    }
    warnings
}

/// Returns the example of `intent` most similar to `text` by character bigrams,
/// `None` when none shares a bigram with it.
fn closest_example<'e>(examples: &'e [(String, IntentId)], intent: &IntentId, text: &str) -> Option<&'e str> {
    let profile = bigrams(text);
    examples
        .iter()
        .filter(|(_, other)| other == intent)
        .map(|(candidate, _)| (cosine(&profile, &bigrams(candidate)), candidate.as_str()))
        .filter(|(similarity, _)| *similarity > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, candidate)| candidate)
}

/// Counts the character bigrams of the lowercased text with runs of spaces collapsed,
/// padded with a space on each side so that single characters and word edges count.
fn bigrams(text: &str) -> HashMap<(char, char), u32> {
    let normalised = format!(" {} ", text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase());
    let chars: Vec<char> = normalised.chars().collect();
    let mut counts = HashMap::new();
    for pair in chars.windows(2) {
        *counts.entry((pair[0], pair[1])).or_insert(0) += 1;
    }
    counts
}

fn cosine(a: &HashMap<(char, char), u32>, b: &HashMap<(char, char), u32>) -> f64 {
    let dot: f64 = a.iter().filter_map(|(bigram, &count)| b.get(bigram).map(|&other| f64::from(count * other))).sum();
    let norm = |counts: &HashMap<(char, char), u32>| counts.values().map(|&c| f64::from(c * c)).sum::<f64>().sqrt();
    let norms = norm(a) * norm(b);
    if norms == 0.0 {
        0.0
    } else {
        dot / norms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(pairs: &[(&str, &str)]) -> Vec<(String, IntentId)> {
        pairs.iter().map(|(text, intent)| (text.to_string(), IntentId::new(*intent))).collect()
    }

    #[test]
    fn closest_example_picks_most_similar() {
        let examples = examples(&[("where is my order", "a"), ("track my order", "a"), ("refund please", "b")]);

        assert_eq!(closest_example(&examples, &IntentId::new("a"), "where is my parcel"), Some("where is my order"));
    }

    #[test]
    fn closest_example_compares_chinese() {
        let examples = examples(&[("周末有人吗", "hours"), ("几点下班", "hours")]);

        assert_eq!(closest_example(&examples, &IntentId::new("hours"), "有人吗"), Some("周末有人吗"));
    }

    #[test]
    fn closest_example_none_without_shared_bigram() {
        let examples = examples(&[("退款", "refund")]);

        assert_eq!(closest_example(&examples, &IntentId::new("refund"), "hello"), None);
    }

    fn mistake(text: &str, intent: &str, predicted: &str, confidence: f32) -> Mistake {
        let ranking = vec![
            ScoredIntent { intent: IntentId::new(predicted), confidence },
            ScoredIntent { intent: IntentId::new(intent), confidence: 1.0 - confidence },
        ];
        Mistake { text: text.to_owned(), intent: IntentId::new(intent), ranking }
    }

    #[test]
    fn confusions_need_every_run() {
        let runs = vec![vec![mistake("cancel", "cancel", "cancel_order", 0.9), mistake("ok", "ack", "greet", 0.8)], vec![mistake("cancel", "cancel", "cancel_order", 0.7)]];

        let confusions = confirmed_confusions(&runs, 0.5, 0.1);

        assert_eq!(confusions.len(), 1);
        assert_eq!(confusions[0].text, "cancel");
        assert_eq!(confusions[0].confidences, vec![0.9, 0.7]);
    }

    #[test]
    fn confusions_need_same_wrong_intent() {
        let runs = vec![vec![mistake("cancel", "cancel", "cancel_order", 0.9)], vec![mistake("cancel", "cancel", "goodbye", 0.9)]];

        assert!(confirmed_confusions(&runs, 0.5, 0.1).is_empty());
    }

    #[test]
    fn confusions_need_threshold_in_every_run() {
        let runs = vec![vec![mistake("cancel", "cancel", "cancel_order", 0.9)], vec![mistake("cancel", "cancel", "cancel_order", 0.52)]];

        assert!(confirmed_confusions(&runs, 0.5, 0.1).is_empty());
    }

    #[test]
    fn run_configs_differ_in_seed_only() {
        let config = check_config(42);

        assert_eq!(run_config(&config, 0).seed, 42);
        assert_ne!(run_config(&config, 1).seed, 42);
        assert_eq!(run_config(&config, 1).hidden, config.hidden);
    }

    #[test]
    fn cosine_of_equal_texts_is_one() {
        let profile = bigrams("Where is  my order");

        assert!((cosine(&profile, &bigrams("where is my order")) - 1.0).abs() < 1e-9);
    }
}
