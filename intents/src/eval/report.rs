//! Scoring a classifier on a labelled data set.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use bot_core::text::{display_width, pad_to_width};
use bot_core::{Classifier, IntentId};
use serde::Serialize;

use crate::error::IntentError;
use crate::eval::dataset::Dataset;
use crate::model::IntentModel;
use crate::train::TrainConfig;

/// Settings of [`run_eval`].
#[derive(Clone, Debug)]
pub struct EvalConfig {
    pub train: TrainConfig,
    /// Confidence the top intent must reach (as in the bot's classifier settings).
    pub threshold: f32,
    /// Lead the top intent must have over the second.
    pub margin: f32,
    /// Share of in-scope queries the calibrated threshold keeps, such as 0.95.
    pub keep_in_scope: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { train: TrainConfig::default(), threshold: 0.5, margin: 0.1, keep_in_scope: 0.95 }
    }
}

/// The scores of one evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// In-scope training examples, when the report comes from [`run_eval`].
    pub train_examples: Option<usize>,
    /// Seconds spent training, when the report comes from [`run_eval`].
    pub train_seconds: Option<f64>,
    /// Rows of the model's first layer, when the report comes from [`run_eval`].
    pub feature_rows: Option<usize>,
    pub in_scope_examples: usize,
    /// Share of in-scope examples whose top intent is right, ignoring the threshold.
    pub accuracy: f64,
    /// Unweighted mean of the per-intent F1 scores.
    pub macro_f1: f64,
    /// Mean wall time of one `classify` call, in microseconds.
    pub classify_micros: f64,
    pub out_of_scope: Option<OutOfScopeReport>,
    /// Scores on the test data at the threshold chosen on a validation split
    /// with out-of-scope examples, when the evaluation had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated: Option<CalibratedThreshold>,
    /// Scores of every intent that occurs in the data or in a prediction, by name.
    pub per_intent: Vec<IntentScores>,
    /// In-scope examples whose top intent is wrong, grouped by (labelled,
    /// predicted) pair, the most frequent pair first.
    pub confusions: Vec<Confusion>,
}

/// In-scope examples of one intent whose top prediction is another intent.
#[derive(Clone, Debug, Serialize)]
pub struct Confusion {
    pub intent: IntentId,
    /// The top intent predicted instead; `None` when the classifier gave none.
    pub predicted: Option<IntentId>,
    /// The number of texts.
    pub count: usize,
    /// The texts, in data order.
    pub texts: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IntentScores {
    pub intent: IntentId,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of test examples labelled with this intent.
    pub support: usize,
}

/// Scores on data with out-of-scope examples.
#[derive(Clone, Debug, Serialize)]
pub struct OutOfScopeReport {
    pub examples: usize,
    pub threshold: f32,
    pub margin: f32,
    /// Share of out-of-scope examples rejected by `threshold` and `margin`.
    pub recall: f64,
    /// Share of in-scope examples accepted with the right intent. A rejected one counts as wrong.
    pub in_scope_accuracy: f64,
    /// The same scores at the threshold that keeps a given share of in-scope queries.
    pub calibrated: CalibratedThreshold,
}

/// The highest confidence threshold (margin 0) that keeps at least
/// `keep_in_scope` of the in-scope queries, and the scores it gives.
#[derive(Clone, Debug, Serialize)]
pub struct CalibratedThreshold {
    pub keep_in_scope: f64,
    pub threshold: f32,
    pub out_of_scope_recall: f64,
    pub in_scope_accuracy: f64,
}

/// Intent pairs listed under "most confused" in the table; `--json` has all.
const CONFUSIONS_SHOWN: usize = 10;
/// Characters of the example text shown for each pair in the table.
const SHOWN_TEXT_CHARS: usize = 80;

/// One prediction: the top intent and its confidence, and whether `decide` accepted it.
struct Prediction {
    top: Option<IntentId>,
    confidence: f32,
    accepted: bool,
}

/// Classifies every example of `test` and scores the predictions; see
/// [`EvalReport`]. `keep_in_scope` sets the share for [`CalibratedThreshold`].
pub fn evaluate<C: Classifier + ?Sized>(classifier: &C, test: &Dataset, threshold: f32, margin: f32, keep_in_scope: f64) -> EvalReport {
    let started = Instant::now();
    let predictions: Vec<Prediction> = test
        .examples
        .iter()
        .map(|example| {
            let classification = classifier.classify(&example.text);
            let top = classification.top();
            Prediction {
                top: top.map(|t| t.intent.clone()),
                confidence: top.map_or(0.0, |t| t.confidence),
                accepted: classification.decide(threshold, margin).is_some(),
            }
        })
        .collect();
    let classify_micros = started.elapsed().as_secs_f64() * 1e6 / test.len().max(1) as f64;

    let pairs: Vec<(&IntentId, &Prediction)> =
        test.examples.iter().zip(&predictions).filter_map(|(e, p)| e.intent.as_ref().map(|gold| (gold, p))).collect();
    let correct = pairs.iter().filter(|(gold, p)| p.top.as_ref() == Some(*gold)).count();
    let per_intent = intent_scores(pairs.iter().map(|(gold, prediction)| (*gold, prediction.top.as_ref())));
    let macro_f1 = mean(per_intent.iter().map(|s| s.f1));
    let confusions = confusions(test.examples.iter().zip(&predictions).filter_map(|(example, prediction)| {
        let gold = example.intent.as_ref()?;
        (prediction.top.as_ref() != Some(gold)).then_some((gold, prediction.top.as_ref(), example.text.as_str()))
    }));

    let out_of_scope = (test.out_of_scope_count() > 0).then(|| {
        let rejected: Vec<f32> =
            test.examples.iter().zip(&predictions).filter(|(e, _)| e.intent.is_none()).map(|(_, p)| p.confidence).collect();
        let accepted_correct = pairs.iter().filter(|(gold, p)| p.accepted && p.top.as_ref() == Some(*gold)).count();
        let oos_rejected = test.examples.iter().zip(&predictions).filter(|(e, p)| e.intent.is_none() && !p.accepted).count();
        OutOfScopeReport {
            examples: rejected.len(),
            threshold,
            margin,
            recall: ratio(oos_rejected, rejected.len()),
            in_scope_accuracy: ratio(accepted_correct, pairs.len()),
            calibrated: calibrate(&pairs, &rejected, keep_in_scope),
        }
    });

    EvalReport {
        train_examples: None,
        train_seconds: None,
        feature_rows: None,
        in_scope_examples: pairs.len(),
        accuracy: ratio(correct, pairs.len()),
        macro_f1,
        classify_micros,
        out_of_scope,
        validated: None,
        per_intent,
        confusions,
    }
}

/// Returns `text` cut to [`SHOWN_TEXT_CHARS`] characters, with `…` marking a cut.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(SHOWN_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Groups (labelled, predicted, text) errors by intent pair, the most
/// frequent first; ties in name order.
fn confusions<'a>(errors: impl Iterator<Item = (&'a IntentId, Option<&'a IntentId>, &'a str)>) -> Vec<Confusion> {
    let mut groups: BTreeMap<(&IntentId, Option<&IntentId>), Vec<String>> = BTreeMap::new();
    for (gold, predicted, text) in errors {
        groups.entry((gold, predicted)).or_default().push(text.to_owned());
    }
    let mut confusions: Vec<Confusion> = groups
        .into_iter()
        .map(|((intent, predicted), texts)| Confusion { intent: intent.clone(), predicted: predicted.cloned(), count: texts.len(), texts })
        .collect();
    confusions.sort_by(|a, b| b.count.cmp(&a.count));
    confusions
}

/// Chooses the highest threshold (margin 0) that keeps `keep_in_scope` of the
/// in-scope examples of `validation`, and scores `test` at it: the share of
/// out-of-scope test examples rejected and of in-scope ones accepted with the
/// right intent. Choosing on separate data keeps the test scores honest.
pub fn validated_threshold<C: Classifier + ?Sized>(classifier: &C, validation: &Dataset, test: &Dataset, keep_in_scope: f64) -> CalibratedThreshold {
    let in_scope_confidences: Vec<f32> = validation
        .examples
        .iter()
        .filter(|e| e.intent.is_some())
        .map(|e| classifier.classify(&e.text).top().map_or(0.0, |t| t.confidence))
        .collect();
    let threshold = threshold_keeping(&in_scope_confidences, keep_in_scope);

    let (mut in_scope, mut accepted_correct, mut out_of_scope, mut rejected) = (0, 0, 0, 0);
    for example in &test.examples {
        let classification = classifier.classify(&example.text);
        let top = classification.top();
        let accepted = top.is_some_and(|t| t.confidence >= threshold);
        match &example.intent {
            Some(gold) => {
                in_scope += 1;
                accepted_correct += usize::from(accepted && top.is_some_and(|t| &t.intent == gold));
            }
            None => {
                out_of_scope += 1;
                rejected += usize::from(!accepted);
            }
        }
    }
    CalibratedThreshold {
        keep_in_scope,
        threshold,
        out_of_scope_recall: ratio(rejected, out_of_scope),
        in_scope_accuracy: ratio(accepted_correct, in_scope),
    }
}

/// Trains an [`IntentModel`] on the in-scope examples of `train`, evaluates it on
/// `test`, and records the training time.
pub fn run_eval(train: &Dataset, test: &Dataset, config: &EvalConfig) -> Result<EvalReport, IntentError> {
    let examples = train.in_scope();
    let started = Instant::now();
    let model = IntentModel::train(&examples, &config.train)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let mut report = evaluate(&model, test, config.threshold, config.margin, config.keep_in_scope);
    report.train_examples = Some(examples.len());
    report.train_seconds = Some(train_seconds);
    report.feature_rows = Some(model.feature_rows());
    Ok(report)
}

/// Returns the highest threshold that at least `share` (0 to 1) of
/// `in_scope_confidences` reach; 0 when there are none.
pub fn threshold_keeping(in_scope_confidences: &[f32], share: f64) -> f32 {
    if in_scope_confidences.is_empty() {
        return 0.0;
    }
    let mut sorted = in_scope_confidences.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let keep = ((share.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[keep - 1]
}

fn calibrate(pairs: &[(&IntentId, &Prediction)], out_of_scope_confidences: &[f32], keep_in_scope: f64) -> CalibratedThreshold {
    let confidences: Vec<f32> = pairs.iter().map(|(_, p)| p.confidence).collect();
    let threshold = threshold_keeping(&confidences, keep_in_scope);
    let rejected = out_of_scope_confidences.iter().filter(|&&c| c < threshold).count();
    let accepted_correct = pairs.iter().filter(|(gold, p)| p.confidence >= threshold && p.top.as_ref() == Some(*gold)).count();
    CalibratedThreshold {
        keep_in_scope,
        threshold,
        out_of_scope_recall: ratio(rejected, out_of_scope_confidences.len()),
        in_scope_accuracy: ratio(accepted_correct, pairs.len()),
    }
}

/// Computes precision, recall and F1 per intent from (labelled intent,
/// predicted intent) pairs; `None` is a prediction of no intent.
pub fn intent_scores<'a>(pairs: impl IntoIterator<Item = (&'a IntentId, Option<&'a IntentId>)>) -> Vec<IntentScores> {
    #[derive(Default)]
    struct Counts {
        true_positives: usize,
        false_positives: usize,
        support: usize,
    }

    let mut counts: BTreeMap<&IntentId, Counts> = BTreeMap::new();
    for (gold, predicted) in pairs {
        counts.entry(gold).or_default().support += 1;
        match predicted {
            Some(predicted) if predicted == gold => counts.entry(gold).or_default().true_positives += 1,
            Some(predicted) => counts.entry(predicted).or_default().false_positives += 1,
            None => {}
        }
    }

    counts
        .into_iter()
        .map(|(intent, c)| {
            let precision = ratio(c.true_positives, c.true_positives + c.false_positives);
            let recall = ratio(c.true_positives, c.support);
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            IntentScores { intent: intent.clone(), precision, recall, f1, support: c.support }
        })
        .collect()
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(examples), Some(seconds)) = (self.train_examples, self.train_seconds) {
            writeln!(f, "training:          {examples} examples in {seconds:.1} s")?;
        }
        if let Some(rows) = self.feature_rows {
            writeln!(f, "feature rows:      {rows}")?;
        }
        writeln!(f, "in-scope examples: {}", self.in_scope_examples)?;
        if self.in_scope_examples > 0 {
            writeln!(f, "accuracy:          {:.2}% (top intent, no threshold)", self.accuracy * 100.0)?;
            writeln!(f, "macro F1:          {:.4}", self.macro_f1)?;
        }
        writeln!(f, "classify:          {:.1} µs per message (mean)", self.classify_micros)?;

        if let Some(oos) = &self.out_of_scope {
            writeln!(f, "out-of-scope examples: {}", oos.examples)?;
            writeln!(
                f,
                "  threshold {:.2}, margin {:.2}: out-of-scope recall {:.3}, in-scope accuracy {:.2}%",
                oos.threshold,
                oos.margin,
                oos.recall,
                oos.in_scope_accuracy * 100.0
            )?;
            // With no in-scope examples, no threshold keeps a share of them.
            if self.in_scope_examples > 0 {
                let c = &oos.calibrated;
                writeln!(
                    f,
                    "  threshold {:.3} (keeps {:.0}% of in-scope): out-of-scope recall {:.3}, in-scope accuracy {:.2}%",
                    c.threshold,
                    c.keep_in_scope * 100.0,
                    c.out_of_scope_recall,
                    c.in_scope_accuracy * 100.0
                )?;
            }
        }

        if let Some(v) = &self.validated {
            writeln!(
                f,
                "  threshold {:.3} (keeps {:.0}% of validation in-scope): out-of-scope recall {:.3}, in-scope accuracy {:.2}%",
                v.threshold,
                v.keep_in_scope * 100.0,
                v.out_of_scope_recall,
                v.in_scope_accuracy * 100.0
            )?;
        }

        if !self.per_intent.is_empty() {
            // Padded by terminal cells, so Chinese intent names line up.
            let width = self.per_intent.iter().map(|s| display_width(s.intent.as_str())).max().unwrap_or(6).max(6);
            writeln!(f)?;
            writeln!(f, "{}  precision  recall     f1  support", pad_to_width("intent", width))?;
            for s in &self.per_intent {
                writeln!(f, "{}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}", pad_to_width(s.intent.as_str(), width), s.precision, s.recall, s.f1, s.support)?;
            }
        }

        if !self.confusions.is_empty() {
            let errors: usize = self.confusions.iter().map(|c| c.count).sum();
            writeln!(f)?;
            writeln!(f, "most confused (true -> predicted), of {errors} errors:")?;
            for c in self.confusions.iter().take(CONFUSIONS_SHOWN) {
                let predicted = c.predicted.as_ref().map_or("(none)", IntentId::as_str);
                writeln!(f, "{:>5}  {} -> {predicted}, such as {:?}", c.count, c.intent.as_str(), shortened(&c.texts[0]))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortened_cuts_long_text_at_characters() {
        assert_eq!(shortened("short"), "short");
        let long = "退".repeat(SHOWN_TEXT_CHARS + 5);
        let cut = shortened(&long);
        assert_eq!(cut.chars().count(), SHOWN_TEXT_CHARS + 1);
        assert!(cut.ends_with("退…"), "{cut}");
        assert_eq!(shortened(&"a".repeat(SHOWN_TEXT_CHARS)), "a".repeat(SHOWN_TEXT_CHARS));
    }
}
