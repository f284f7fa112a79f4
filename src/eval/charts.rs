//! The images of a cross-validation report, written as SVG by hand: a confusion
//! matrix of the most confused intents and a histogram of top-1 confidences.

use std::fmt::Write;

use bot_core::text::display_width;
use bot_core::IntentId;

use super::scores::CrossValidationReport;

/// Intents shown in the confusion matrix.
pub const MATRIX_INTENTS: usize = 15;

const CELL: usize = 34;
const FONT: &str = "font-family=\"sans-serif\" font-size=\"12\"";
const TITLE_FONT: &str = "font-family=\"sans-serif\" font-size=\"14\" font-weight=\"bold\"";
/// Approximate width of one terminal cell of text at font size 12, in pixels.
const CHAR_PIXELS: usize = 7;
const WRONG_COLOUR: &str = "#d62728";
const RIGHT_COLOUR: &str = "#1f77b4";
const CORRECT_COLOUR: &str = "#2ca02c";

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn label_pixels(text: &str) -> usize {
    display_width(text) * CHAR_PIXELS
}

/// Draws the confusion matrix of the [`MATRIX_INTENTS`] most confused intents: true
/// intents in rows, predicted intents in columns, and an `(other)` column counting
/// predictions of intents left out. Each cell shows its count; its colour deepens
/// with its share of the row, blue on the diagonal and red off it.
pub fn confusion_svg(report: &CrossValidationReport) -> String {
    let intents = report.confusion.most_confused(MATRIX_INTENTS);
    let other = "(other)";
    let mut columns: Vec<&str> = intents.iter().map(IntentId::as_str).collect();
    let has_other = intents.len() < report.confusion.intents.len();
    if has_other {
        columns.push(other);
    }

    let longest = columns.iter().map(|label| label_pixels(label)).max().unwrap_or(0);
    let left = 40 + longest + 10;
    let top = 50 + longest * 3 / 4 + 10;
    let width = left + columns.len() * CELL + longest * 3 / 4 + 20;
    let height = top + intents.len() * CELL + 50;

    let mut svg = svg_open(width, height);
    let title = format!("Confusion of the {} most confused intents ({}-fold cross-validation)", intents.len(), report.folds);
    let _ = writeln!(svg, "<text x=\"10\" y=\"22\" {TITLE_FONT}>{}</text>", escape(&title));
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" {FONT} text-anchor=\"middle\">predicted intent</text>", left + columns.len() * CELL / 2, top + intents.len() * CELL + 30);
    let middle = top + intents.len() * CELL / 2;
    let _ = writeln!(svg, "<text x=\"16\" y=\"{middle}\" {FONT} text-anchor=\"middle\" transform=\"rotate(-90 16 {middle})\">true intent</text>");

    for (column, label) in columns.iter().enumerate() {
        let x = left + column * CELL + CELL / 2;
        let y = top - 6;
        let _ = writeln!(svg, "<text x=\"{x}\" y=\"{y}\" {FONT} transform=\"rotate(-45 {x} {y})\">{}</text>", escape(label));
    }
    for (row, intent) in intents.iter().enumerate() {
        let y = top + row * CELL + CELL / 2 + 4;
        let _ = writeln!(svg, "<text x=\"{}\" y=\"{y}\" {FONT} text-anchor=\"end\">{}</text>", left - 6, escape(intent.as_str()));
        let counts = row_counts(report, intent, &intents, has_other);
        let total: usize = report.per_intent.iter().find(|s| &s.intent == intent).map_or(0, |s| s.support);
        for (column, &count) in counts.iter().enumerate() {
            let diagonal = column == row;
            draw_cell(&mut svg, left + column * CELL, top + row * CELL, count, total, diagonal);
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Returns the counts of one row over the chosen columns, then the `(other)` count.
fn row_counts(report: &CrossValidationReport, intent: &IntentId, columns: &[IntentId], has_other: bool) -> Vec<usize> {
    let mut counts: Vec<usize> = columns.iter().map(|predicted| report.confusion.count(intent, predicted)).collect();
    if has_other {
        let shown: usize = counts.iter().sum();
        let all: usize = report.confusion.intents.iter().map(|predicted| report.confusion.count(intent, predicted)).sum();
        counts.push(all - shown);
    }
    counts
}

fn draw_cell(svg: &mut String, x: usize, y: usize, count: usize, total: usize, diagonal: bool) {
    let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
    let (fill, opacity) = match (count, diagonal) {
        (0, _) => ("#ffffff", 1.0),
        (_, true) => (RIGHT_COLOUR, 0.15 + 0.85 * share),
        (_, false) => (WRONG_COLOUR, 0.25 + 0.75 * share),
    };
    let _ = writeln!(svg, "<rect x=\"{x}\" y=\"{y}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"{fill}\" fill-opacity=\"{opacity:.2}\" stroke=\"#cccccc\"/>");
    if count > 0 {
        let colour = if opacity > 0.6 { "#ffffff" } else { "#000000" };
        let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" {FONT} text-anchor=\"middle\" fill=\"{colour}\">{count}</text>", x + CELL / 2, y + CELL / 2 + 4);
    }
}

/// Bins of the confidence histogram, each 0.05 wide.
const BINS: usize = 20;

/// Draws the histogram of top-1 confidences of the held-out predictions, correct
/// and wrong side by side in each bin, with the bot's threshold as a dashed line.
pub fn confidence_svg(report: &CrossValidationReport) -> String {
    let (mut correct, mut wrong) = ([0usize; BINS], [0usize; BINS]);
    for prediction in &report.predictions {
        let bin = ((prediction.confidence.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        if prediction.correct() {
            correct[bin] += 1;
        } else {
            wrong[bin] += 1;
        }
    }

    let (left, top, plot_width, plot_height) = (60, 50, 600, 300);
    let (width, height) = (left + plot_width + 30, top + plot_height + 60);
    let highest = correct.iter().chain(&wrong).copied().max().unwrap_or(0).max(1);
    let step = tick_step(highest);
    let y_max = highest.div_ceil(step) * step;
    let y_of = |count: usize| top + plot_height - count * plot_height / y_max;

    let mut svg = svg_open(width, height);
    let title = format!("Top-1 confidence of held-out predictions ({} examples)", report.examples);
    let _ = writeln!(svg, "<text x=\"10\" y=\"22\" {TITLE_FONT}>{}</text>", escape(&title));
    for tick in (0..=y_max).step_by(step) {
        let y = y_of(tick);
        let _ = writeln!(svg, "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#eeeeee\"/>", left + plot_width);
        let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" {FONT} text-anchor=\"end\">{tick}</text>", left - 6, y + 4);
    }
    let bin_width = plot_width / BINS;
    for bin in 0..BINS {
        let x = left + bin * bin_width;
        bar(&mut svg, x + 1, bin_width / 2 - 1, correct[bin], y_of, CORRECT_COLOUR);
        bar(&mut svg, x + bin_width / 2, bin_width / 2 - 1, wrong[bin], y_of, WRONG_COLOUR);
    }
    for tenth in 0..=10 {
        let x = left + tenth * plot_width / 10;
        let _ = writeln!(svg, "<text x=\"{x}\" y=\"{}\" {FONT} text-anchor=\"middle\">{:.1}</text>", top + plot_height + 18, tenth as f64 / 10.0);
    }
    let _ = writeln!(svg, "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#333333\"/>", top + plot_height, left + plot_width);
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" {FONT} text-anchor=\"middle\">confidence of the top intent</text>", left + plot_width / 2, top + plot_height + 42);

    let threshold_x = left + (report.threshold.clamp(0.0, 1.0) * plot_width as f32) as usize;
    let _ = writeln!(svg, "<line x1=\"{threshold_x}\" y1=\"{top}\" x2=\"{threshold_x}\" y2=\"{}\" stroke=\"#333333\" stroke-dasharray=\"5,4\"/>", top + plot_height);
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" {FONT}>threshold {:.2}</text>", threshold_x + 4, top + 12, report.threshold);
    legend(&mut svg, left + plot_width - 150, top - 24);
    svg.push_str("</svg>\n");
    svg
}

fn bar(svg: &mut String, x: usize, width: usize, count: usize, y_of: impl Fn(usize) -> usize, colour: &str) {
    if count == 0 {
        return;
    }
    let (y, bottom) = (y_of(count), y_of(0));
    let _ = writeln!(svg, "<rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{}\" fill=\"{colour}\"><title>{count}</title></rect>", bottom - y);
}

fn legend(svg: &mut String, x: usize, y: usize) {
    for (offset, (colour, label)) in [(CORRECT_COLOUR, "correct"), (WRONG_COLOUR, "wrong")].into_iter().enumerate() {
        let x = x + offset * 80;
        let _ = writeln!(svg, "<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>");
        let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" {FONT}>{label}</text>", x + 16, y + 11);
    }
}

/// Returns a step of 1, 2 or 5 times a power of ten giving at most about 6 ticks up to `max`.
fn tick_step(max: usize) -> usize {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if max / (step * factor) <= 6 {
                return step * factor;
            }
        }
        step *= 10;
    }
}

fn svg_open(width: usize, height: usize) -> String {
    let mut svg = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">");
    let _ = writeln!(svg, "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_markup() {
        assert_eq!(escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
    }

    #[test]
    fn escape_keeps_chinese() {
        assert_eq!(escape("退款"), "退款");
    }

    fn report() -> CrossValidationReport {
        use super::super::cross_validation::{CrossValidation, HeldOut};
        use bot_core::ScoredIntent;

        let names = ["退款", "a&b", "order_status"];
        let examples: Vec<(String, IntentId)> = (0..9).map(|i| (format!("text {i}"), IntentId::new(names[i % 3]))).collect();
        let predictions = (0..9)
            .map(|i| {
                let predicted = if i == 4 { names[0] } else { names[i % 3] };
                let ranking = vec![ScoredIntent { intent: IntentId::new(predicted), confidence: 0.1 * i as f32 }];
                HeldOut { example: i, fold: i % 3, ranking, intent_trained: true }
            })
            .collect();
        let run = CrossValidation { folds: 3, predictions, seconds: 0.1 };
        CrossValidationReport::new("test", &examples, &run, 0.5, 0.1)
    }

    fn root_name(svg: &str) -> String {
        let document = roxmltree::Document::parse(svg).unwrap_or_else(|error| panic!("invalid XML ({error}):\n{svg}"));
        document.root_element().tag_name().name().to_owned()
    }

    #[test]
    fn confusion_svg_is_valid_xml() {
        assert_eq!(root_name(&confusion_svg(&report())), "svg");
    }

    #[test]
    fn confusion_svg_labels_and_counts() {
        let svg = confusion_svg(&report());

        assert!(svg.contains(">退款</text>"), "{svg}");
        assert!(svg.contains(">a&amp;b</text>"), "{svg}");
        assert!(svg.contains("fill=\"#ffffff\">2</text>") || svg.contains("fill=\"#000000\">2</text>"), "{svg}");
    }

    #[test]
    fn confidence_svg_is_valid_xml() {
        assert_eq!(root_name(&confidence_svg(&report())), "svg");
    }

    #[test]
    fn tick_step_gives_few_ticks() {
        assert_eq!(tick_step(5), 1);
        assert_eq!(tick_step(12), 2);
        assert_eq!(tick_step(30), 5);
        assert_eq!(tick_step(400), 100);
    }
}
