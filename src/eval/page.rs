//! The output folder of a cross-validation report: `report.json`, the two SVG
//! images and `index.html`, a summary page that shows both and the per-intent table.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::charts::{confidence_svg, confusion_svg, escape};
use super::scores::CrossValidationReport;

pub const CONFUSION_FILE: &str = "confusion.svg";
pub const CONFIDENCE_FILE: &str = "confidence.svg";
pub const REPORT_FILE: &str = "report.json";
pub const INDEX_FILE: &str = "index.html";

/// Wrongly classified examples listed on the page.
const LISTED_MISTAKES: usize = 50;

/// Writes the report's files into `dir`, creating it, and returns the path of `index.html`.
pub fn write(report: &CrossValidationReport, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    let files = [
        (REPORT_FILE, json),
        (CONFUSION_FILE, confusion_svg(report)),
        (CONFIDENCE_FILE, confidence_svg(report)),
        (INDEX_FILE, index_html(report)),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir.join(INDEX_FILE))
}

/// Renders the summary page. Every text from the bot is escaped.
pub fn index_html(report: &CrossValidationReport) -> String {
    let mut html = String::new();
    let title = format!("Cross-validation of {}", report.bot);
    let _ = writeln!(html, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>", escape(&title));
    html.push_str("<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}.number{text-align:right}img{max-width:100%;border:1px solid #ddd;margin:1em 0}</style>\n</head>\n<body>\n");
    let _ = writeln!(html, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        html,
        "<p>{} folds, {} examples, {:.1} s. Accuracy {:.2}% (top intent, no threshold); {:.2}% correct and accepted at threshold {:.2} and margin {:.2}; macro F1 {:.4}. Data: <a href=\"{REPORT_FILE}\">{REPORT_FILE}</a>.</p>",
        report.folds,
        report.examples,
        report.seconds,
        report.accuracy * 100.0,
        report.accepted_accuracy * 100.0,
        report.threshold,
        report.margin,
        report.macro_f1
    );
    if report.unpredicted > 0 {
        let _ = writeln!(
            html,
            "<p>{} examples have no prediction, because their fold held every example and left nothing to train on. Add examples or use fewer folds.</p>",
            report.unpredicted
        );
    }
    html.push_str("<h2>Most confused intents</h2>\n");
    let _ = writeln!(html, "<a href=\"{CONFUSION_FILE}\"><img src=\"{CONFUSION_FILE}\" alt=\"confusion matrix of the most confused intents\"></a>");
    html.push_str("<h2>Confidence</h2>\n");
    let _ = writeln!(html, "<a href=\"{CONFIDENCE_FILE}\"><img src=\"{CONFIDENCE_FILE}\" alt=\"histogram of top-1 confidence, correct and wrong\"></a>");
    intent_table(&mut html, report);
    mistakes_table(&mut html, report);
    html.push_str("</body>\n</html>\n");
    html
}

fn intent_table(html: &mut String, report: &CrossValidationReport) {
    html.push_str("<h2>Per intent</h2>\n<table>\n<tr><th>intent</th><th class=\"number\">precision</th><th class=\"number\">recall</th><th class=\"number\">F1</th><th class=\"number\">support</th></tr>\n");
    for scores in &report.per_intent {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"number\">{:.3}</td><td class=\"number\">{:.3}</td><td class=\"number\">{:.3}</td><td class=\"number\">{}</td></tr>",
            escape(scores.intent.as_str()),
            scores.precision,
            scores.recall,
            scores.f1,
            scores.support
        );
    }
    html.push_str("</table>\n");
}

fn mistakes_table(html: &mut String, report: &CrossValidationReport) {
    let mut mistakes: Vec<_> = report.predictions.iter().filter(|p| !p.correct()).collect();
    if mistakes.is_empty() {
        return;
    }
    mistakes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let _ = writeln!(html, "<h2>Wrong predictions</h2>\n<p>The {} most confident of {}.</p>", mistakes.len().min(LISTED_MISTAKES), mistakes.len());
    html.push_str("<table>\n<tr><th>example</th><th>intent</th><th>predicted</th><th class=\"number\">confidence</th></tr>\n");
    for mistake in mistakes.iter().take(LISTED_MISTAKES) {
        let predicted = mistake.predicted.as_ref().map_or("", |intent| intent.as_str());
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"number\">{:.2}</td></tr>",
            escape(&mistake.text),
            escape(mistake.intent.as_str()),
            escape(predicted),
            mistake.confidence
        );
    }
    html.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use bot_core::{IntentId, ScoredIntent};

    use super::super::cross_validation::{CrossValidation, HeldOut};
    use super::*;

    fn report() -> CrossValidationReport {
        let examples = vec![("R&D <b>team</b>".to_owned(), IntentId::new("退款")), ("refund".to_owned(), IntentId::new("refund"))];
        let ranking = |intent: &str| vec![ScoredIntent { intent: IntentId::new(intent), confidence: 0.8 }];
        let predictions = vec![
            HeldOut { example: 0, fold: 0, ranking: ranking("refund"), intent_trained: true },
            HeldOut { example: 1, fold: 1, ranking: ranking("refund"), intent_trained: true },
        ];
        let run = CrossValidation { folds: 2, predictions, seconds: 0.1 };
        CrossValidationReport::new("Shop <test>", &examples, &run, 0.5, 0.1)
    }

    #[test]
    fn index_escapes_bot_text() {
        let html = index_html(&report());

        assert!(html.contains("R&amp;D &lt;b&gt;team&lt;/b&gt;"), "{html}");
        assert!(html.contains("Cross-validation of Shop &lt;test&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn index_links_both_images() {
        let html = index_html(&report());

        assert!(html.contains("<img src=\"confusion.svg\""));
        assert!(html.contains("<img src=\"confidence.svg\""));
        assert!(html.contains("<a href=\"report.json\">"));
    }

    #[test]
    fn index_lists_chinese_intents() {
        let html = index_html(&report());

        assert!(html.contains("<td>退款</td>"), "{html}");
    }
}
