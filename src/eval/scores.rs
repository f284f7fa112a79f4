//! Scores of a cross-validation run: accuracy, per-intent precision, recall and
//! F1, the confusion matrix and the confidence of every held-out prediction.

use std::collections::BTreeSet;
use std::fmt;

use bot_core::text::{display_width, pad_to_width};
use bot_core::{Classification, IntentId};
use lepton_intents::eval::{intent_scores, IntentScores};
use serde::Serialize;

use super::cross_validation::CrossValidation;

/// The report of `lepton eval DIR --cross-validation K`, also written as `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CrossValidationReport {
    /// The bot's `settings.name`.
    pub bot: String,
    pub folds: usize,
    pub examples: usize,
    /// Wall time of training and classifying all folds, in seconds.
    pub seconds: f64,
    pub threshold: f32,
    pub margin: f32,
    /// Share of examples whose top intent is right, ignoring the threshold.
    pub accuracy: f64,
    /// Share of examples whose top intent is right and passes the threshold and margin.
    pub accepted_accuracy: f64,
    /// Examples with no prediction: every example fell into their fold, so
    /// that fold's model had nothing to train on. They count as wrong.
    pub unpredicted: usize,
    /// Unweighted mean of the per-intent F1 scores.
    pub macro_f1: f64,
    pub per_intent: Vec<IntentScores>,
    pub confusion: ConfusionMatrix,
    /// Pairs of a true and a wrongly predicted intent, most frequent first.
    pub confusions: Vec<Confusion>,
    /// Every example with its held-out prediction, in the order of the bot's examples.
    pub predictions: Vec<PredictionRecord>,
}

/// Counts of true intent (rows) against predicted intent (columns).
#[derive(Clone, Debug, Serialize)]
pub struct ConfusionMatrix {
    /// Row and column labels, sorted by name.
    pub intents: Vec<IntentId>,
    /// `counts[row][column]`: examples of `intents[row]` predicted as `intents[column]`.
    pub counts: Vec<Vec<usize>>,
}

/// Examples of one intent predicted as another.
#[derive(Clone, Debug, Serialize)]
pub struct Confusion {
    pub intent: IntentId,
    pub predicted: IntentId,
    pub count: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PredictionRecord {
    pub text: String,
    pub intent: IntentId,
    /// The top intent of the model trained without this example's fold.
    pub predicted: Option<IntentId>,
    pub confidence: f32,
    /// Whether the prediction passes the threshold and margin.
    pub accepted: bool,
    pub fold: usize,
}

impl PredictionRecord {
    pub fn correct(&self) -> bool {
        self.predicted.as_ref() == Some(&self.intent)
    }
}

impl CrossValidationReport {
    /// Scores the held-out predictions of `examples`.
    pub fn new(bot: &str, examples: &[(String, IntentId)], run: &CrossValidation, threshold: f32, margin: f32) -> Self {
        let predictions: Vec<PredictionRecord> = run
            .predictions
            .iter()
            .map(|held_out| {
                let (text, intent) = &examples[held_out.example];
                let classification = Classification { ranking: held_out.ranking.clone() };
                PredictionRecord {
                    text: text.clone(),
                    intent: intent.clone(),
                    predicted: held_out.top().map(|top| top.intent.clone()),
                    confidence: held_out.top().map_or(0.0, |top| top.confidence),
                    accepted: classification.decide(threshold, margin).is_some(),
                    fold: held_out.fold,
                }
            })
            .collect();

        let correct = predictions.iter().filter(|p| p.correct()).count();
        let accepted_correct = predictions.iter().filter(|p| p.correct() && p.accepted).count();
        let per_intent = intent_scores(predictions.iter().map(|p| (&p.intent, p.predicted.as_ref())));
        let macro_f1 = mean(per_intent.iter().map(|s| s.f1));
        let confusion = confusion_matrix(&predictions);
        let confusions = confusion.off_diagonal();

        Self {
            bot: bot.to_owned(),
            folds: run.folds,
            examples: predictions.len(),
            seconds: run.seconds,
            threshold,
            margin,
            accuracy: ratio(correct, predictions.len()),
            accepted_accuracy: ratio(accepted_correct, predictions.len()),
            unpredicted: predictions.iter().filter(|p| p.predicted.is_none()).count(),
            macro_f1,
            per_intent,
            confusion,
            confusions,
            predictions,
        }
    }
}

impl ConfusionMatrix {
    fn index_of(&self, intent: &IntentId) -> Option<usize> {
        self.intents.binary_search(intent).ok()
    }

    /// Returns the count of examples of `intent` predicted as `predicted`.
    pub fn count(&self, intent: &IntentId, predicted: &IntentId) -> usize {
        match (self.index_of(intent), self.index_of(predicted)) {
            (Some(row), Some(column)) => self.counts[row][column],
            _ => 0,
        }
    }

    /// Returns every pair of different intents with a count, most frequent first.
    pub fn off_diagonal(&self) -> Vec<Confusion> {
        let mut pairs = Vec::new();
        for (row, counts) in self.counts.iter().enumerate() {
            for (column, &count) in counts.iter().enumerate() {
                if row != column && count > 0 {
                    pairs.push(Confusion { intent: self.intents[row].clone(), predicted: self.intents[column].clone(), count });
                }
            }
        }
        pairs.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.intent, &a.predicted).cmp(&(&b.intent, &b.predicted))));
        pairs
    }

    /// Returns up to `limit` intents, those with the most wrong predictions in their
    /// row and column first (then the most examples), sorted by name for display.
    pub fn most_confused(&self, limit: usize) -> Vec<IntentId> {
        let mut scored: Vec<(usize, usize, &IntentId)> = (0..self.intents.len())
            .map(|i| {
                let row: usize = self.counts[i].iter().sum();
                let column: usize = self.counts.iter().map(|counts| counts[i]).sum();
                let wrong = row + column - 2 * self.counts[i][i];
                (wrong, row, &self.intents[i])
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        let mut chosen: Vec<IntentId> = scored.into_iter().take(limit).map(|(_, _, intent)| intent.clone()).collect();
        chosen.sort();
        chosen
    }
}

fn confusion_matrix(predictions: &[PredictionRecord]) -> ConfusionMatrix {
    let labels: BTreeSet<&IntentId> = predictions.iter().flat_map(|p| std::iter::once(&p.intent).chain(&p.predicted)).collect();
    let intents: Vec<IntentId> = labels.into_iter().cloned().collect();
    let mut matrix = ConfusionMatrix { counts: vec![vec![0; intents.len()]; intents.len()], intents };
    for prediction in predictions {
        let Some(predicted) = &prediction.predicted else { continue };
        if let (Some(row), Some(column)) = (matrix.index_of(&prediction.intent), matrix.index_of(predicted)) {
            matrix.counts[row][column] += 1;
        }
    }
    matrix
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), value| (sum + value, count + 1));
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

/// The confused pairs listed after the per-intent table.
const LISTED_CONFUSIONS: usize = 10;

/// Renders the summary, the per-intent table and the most frequent confusions.
impl fmt::Display for CrossValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bot:               {}", self.bot)?;
        writeln!(f, "cross-validation:  {} folds, {} examples, {:.1} s", self.folds, self.examples, self.seconds)?;
        writeln!(f, "accuracy:          {:.2}% (top intent, no threshold)", self.accuracy * 100.0)?;
        writeln!(
            f,
            "accepted correct:  {:.2}% (threshold {:.2}, margin {:.2})",
            self.accepted_accuracy * 100.0,
            self.threshold,
            self.margin
        )?;
        writeln!(f, "macro F1:          {:.4}", self.macro_f1)?;
        if self.unpredicted > 0 {
            writeln!(
                f,
                "no prediction:     {} examples, because their fold held every example and left nothing to train on; add examples or use fewer folds",
                self.unpredicted
            )?;
        }

        let width = self.per_intent.iter().map(|s| display_width(s.intent.as_str())).max().unwrap_or(6).max(6);
        writeln!(f)?;
        writeln!(f, "{}  precision  recall     f1  support", pad_to_width("intent", width))?;
        for s in &self.per_intent {
            writeln!(f, "{}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}", pad_to_width(s.intent.as_str(), width), s.precision, s.recall, s.f1, s.support)?;
        }

        if !self.confusions.is_empty() {
            writeln!(f)?;
            writeln!(f, "most confused (true -> predicted):")?;
            for confusion in self.confusions.iter().take(LISTED_CONFUSIONS) {
                writeln!(f, "  {:>4}  {} -> {}", confusion.count, confusion.intent, confusion.predicted)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bot_core::ScoredIntent;

    use super::super::cross_validation::HeldOut;
    use super::*;

    fn held_out(example: usize, predicted: &str, confidence: f32) -> HeldOut {
        let ranking = vec![ScoredIntent { intent: IntentId::new(predicted), confidence }];
        HeldOut { example, fold: example % 2, ranking, intent_trained: true }
    }

    fn report() -> CrossValidationReport {
        let examples: Vec<(String, IntentId)> =
            [("hi", "greet"), ("hello", "greet"), ("bye", "goodbye"), ("see you", "goodbye")].iter().map(|(t, i)| (t.to_string(), IntentId::new(*i))).collect();
        let predictions = vec![held_out(0, "greet", 0.9), held_out(1, "goodbye", 0.7), held_out(2, "goodbye", 0.4), held_out(3, "goodbye", 0.8)];
        let run = CrossValidation { folds: 2, predictions, seconds: 0.1 };
        CrossValidationReport::new("test", &examples, &run, 0.5, 0.1)
    }

    #[test]
    fn report_counts_accuracy() {
        let report = report();

        assert_eq!(report.accuracy, 0.75);
        assert_eq!(report.accepted_accuracy, 0.5);
    }

    #[test]
    fn report_counts_examples_without_prediction() {
        let examples: Vec<(String, IntentId)> = vec![("hi".to_owned(), IntentId::new("greet")), ("bye".to_owned(), IntentId::new("goodbye"))];
        let unpredicted = |example| HeldOut { example, fold: 0, ranking: Vec::new(), intent_trained: false };
        let run = CrossValidation { folds: 2, predictions: vec![unpredicted(0), unpredicted(1)], seconds: 0.1 };

        let report = CrossValidationReport::new("test", &examples, &run, 0.5, 0.1);

        assert_eq!(report.unpredicted, 2);
        assert_eq!(report.accuracy, 0.0);
        let table = report.to_string();
        assert!(table.contains("no prediction:     2 examples, because their fold held every example"), "{table}");
    }

    #[test]
    fn report_scores_each_intent() {
        let report = report();
        let greet = &report.per_intent[1];

        assert_eq!(greet.intent, IntentId::new("greet"));
        assert_eq!((greet.precision, greet.recall, greet.support), (1.0, 0.5, 2));
    }

    #[test]
    fn report_lists_confusions() {
        let report = report();

        assert_eq!(report.confusion.count(&IntentId::new("greet"), &IntentId::new("goodbye")), 1);
        assert_eq!(report.confusions.len(), 1);
        assert_eq!(report.confusions[0].predicted, IntentId::new("goodbye"));
    }

    #[test]
    fn most_confused_prefers_wrong_predictions() {
        let counts = vec![vec![9, 0, 0], vec![0, 3, 2], vec![0, 1, 4]];
        let intents = ["a", "b", "c"].map(IntentId::new).to_vec();
        let matrix = ConfusionMatrix { intents, counts };

        assert_eq!(matrix.most_confused(2), vec![IntentId::new("b"), IntentId::new("c")]);
    }
}
