//! The JUnit XML report of `lepton test --junit FILE`, in the form CI systems
//! read (Jenkins, GitLab, GitHub Actions reporters): one `testsuite` per test
//! file and one `testcase` per test, with a `failure` for each failed test.

use std::fmt::Write as _;

use lepton_flows::ConversationTests;

use super::{render_failure, CaseReport};

/// Renders the report of every test, grouped by file.
pub(crate) fn render(tests: &ConversationTests, reports: &[CaseReport]) -> String {
    let failed = reports.iter().filter(|report| !report.passed()).count();
    let seconds: f64 = reports.iter().map(|report| report.elapsed.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(xml, "<testsuites name=\"lepton test\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{seconds:.3}\">", reports.len());
    for (index, file) in tests.files.iter().enumerate() {
        let in_file: Vec<&CaseReport> = reports.iter().filter(|report| report.file == index).collect();
        render_suite(&mut xml, &file.path.display().to_string(), &in_file);
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn render_suite(xml: &mut String, file: &str, reports: &[&CaseReport]) {
    let failed = reports.iter().filter(|report| !report.passed()).count();
    let seconds: f64 = reports.iter().map(|report| report.elapsed.as_secs_f64()).sum();
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">",
        escape(file),
        reports.len()
    );
    for report in reports {
        let _ = write!(
            xml,
            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
            escape(&report.name),
            escape(file),
            escape(file),
            report.at.line,
            report.elapsed.as_secs_f64()
        );
        if report.passed() {
            xml.push_str("/>\n");
            continue;
        }
        let summary: Vec<String> = report
            .mismatches
            .iter()
            .map(|mismatch| format!("{}: {}: expected {}, actual {}", mismatch.at, mismatch.field, mismatch.expected, mismatch.actual))
            .collect();
        let _ = writeln!(xml, ">\n      <failure message=\"{}\" type=\"expectation\">", escape(&summary.join("; ")));
        xml.push_str(&escape_text(&render_failure(report, "")));
        xml.push_str("      </failure>\n    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n");
}

/// Escapes text for an XML attribute value. Line breaks and tabs become character
/// references, which attribute values keep (a parser turns literal ones into spaces).
fn escape(text: &str) -> String {
    escape_with(text, true)
}

/// Escapes text for XML element content, where line breaks stay as they are.
fn escape_text(text: &str) -> String {
    escape_with(text, false)
}

/// Characters that XML 1.0 cannot contain at all (most control characters) become U+FFFD.
fn escape_with(text: &str, attribute: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' if attribute => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            '\t' if attribute => escaped.push_str("&#9;"),
            c if is_xml_char(c) => escaped.push(c),
            _ => escaped.push('\u{FFFD}'),
        }
    }
    escaped
}

/// Tells whether XML 1.0 allows `c` in a document (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_markup_characters() -> anyhow::Result<()> {
        assert_eq!(escape("a < b & \"c\" > 'd'"), "a &lt; b &amp; &quot;c&quot; &gt; &apos;d&apos;");
        Ok(())
    }

    #[test]
    fn escape_keeps_chinese_text() -> anyhow::Result<()> {
        assert_eq!(escape("订单 100001 已发货"), "订单 100001 已发货");
        Ok(())
    }

    #[test]
    fn escape_replaces_control_characters() -> anyhow::Result<()> {
        assert_eq!(escape("a\u{0}b\u{1b}c\u{FFFE}"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}");
        Ok(())
    }

    #[test]
    fn escape_keeps_line_breaks_as_references() -> anyhow::Result<()> {
        assert_eq!(escape("one\ntwo"), "one&#10;two");
        assert_eq!(escape_text("one\ntwo"), "one\ntwo");
        Ok(())
    }
}
