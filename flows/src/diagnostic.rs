//! Problems found in a bot folder, with the place and the source line they point at.

use std::fmt;
use std::path::PathBuf;

use bot_core::text::char_display_width;

/// The severity of a problem: errors stop the bot from loading, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Severity::Error => f.write_str("error"),
            Severity::Warning => f.write_str("warning"),
        }
    }
}

/// One problem in one file.
///
/// `line` and `column` are 1-based; `column` and `width` count Unicode characters
/// (not bytes), so `你好: x` puts `x` at column 5. Both are 0 when the problem
/// concerns a whole file or folder (a missing `settings:` section, an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as reached from the folder the caller passed in, such as `demo/bot.yml`.
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Characters from `column` that the problem covers on that line (at least 1).
    pub width: usize,
    pub message: String,
    /// The source line containing the problem, without its line break; empty when `line`
    /// is 0. A line longer than [`MAX_SNIPPET_CHARS`] is cut to the part around `column`,
    /// and `…` marks each cut.
    pub snippet: String,
    /// The column within `snippet` where the problem starts: `column`, unless the start
    /// of the line was cut off.
    pub snippet_column: usize,
}

/// The maximum length of a source line shown whole in a diagnostic, in characters.
pub const MAX_SNIPPET_CHARS: usize = 120;

/// Characters kept before the problem when a long line is cut.
const CONTEXT_BEFORE: usize = 40;

impl Diagnostic {
    /// Creates a diagnostic at `line` and `column` of a file, whose text on that line is `source_line`.
    /// Passwords in URLs (`scheme://user:password@host`) in the source line and
    /// the message are replaced by `***`, since diagnostics reach logs.
    pub(crate) fn new(severity: Severity, file: PathBuf, (line, column): (usize, usize), width: usize, message: String, source_line: &str) -> Self {
        let (snippet, snippet_column) = excerpt(source_line, column);
        let (snippet, message) = (redact_url_passwords(&snippet), redact_url_passwords(&message));
        Self { severity, file, line, column, width: width.max(1), message, snippet, snippet_column }
    }

    /// Creates an error about a whole file or folder, with no line or column.
    pub fn error_at_path(file: PathBuf, message: String) -> Self {
        Self::at_path(Severity::Error, file, message)
    }

    /// Creates a warning about a whole file or folder, with no line or column.
    pub(crate) fn warning_at_path(file: PathBuf, message: String) -> Self {
        Self::at_path(Severity::Warning, file, message)
    }

    fn at_path(severity: Severity, file: PathBuf, message: String) -> Self {
        Self { severity, file, line: 0, column: 0, width: 0, message, snippet: String::new(), snippet_column: 0 }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Returns the text the problem points at: `width` characters of `snippet` from
    /// `snippet_column`, fewer where the snippet was cut.
    pub fn offending_text(&self) -> String {
        if self.snippet_column == 0 {
            return String::new();
        }
        self.snippet.chars().skip(self.snippet_column - 1).take(self.width.max(1)).collect()
    }

    fn caret_line(&self) -> String {
        let mut line = String::new();
        let before = self.snippet_column.saturating_sub(1);
        for c in self.snippet.chars().take(before) {
            if c == '\t' {
                line.push('\t');
            } else {
                line.extend(std::iter::repeat_n(' ', char_display_width(c)));
            }
        }
        let underlined: usize = self
            .snippet
            .chars()
            .skip(before)
            .take(self.width.max(1))
            .map(char_display_width)
            .sum();
        line.extend(std::iter::repeat_n('^', underlined.max(1)));
        line
    }
}

/// Cuts `line` to at most [`MAX_SNIPPET_CHARS`] characters around `column`, marking
/// each cut with `…`. Returns the text and the column of `column` within it.
fn excerpt(line: &str, column: usize) -> (String, usize) {
    let length = line.chars().count();
    if length <= MAX_SNIPPET_CHARS {
        return (line.to_owned(), column);
    }
    let at = column.saturating_sub(1).min(length);
    let mut start = at.saturating_sub(CONTEXT_BEFORE);
    let end = (start + MAX_SNIPPET_CHARS).min(length);
    if end == length {
        start = length - MAX_SNIPPET_CHARS;
    }

    let mut snippet = String::new();
    if start > 0 {
        snippet.push('…');
    }
    snippet.extend(line.chars().skip(start).take(end - start));
    if end < length {
        snippet.push('…');
    }
    let snippet_column = column - start + usize::from(start > 0);
    (snippet, snippet_column)
}

/// Replaces the password of every `scheme://user:password@` in `text` with `***`.
fn redact_url_passwords(text: &str) -> String {
    static CREDENTIALS: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(://[^\s:/@]*):[^\s@/]+@").expect("valid credentials pattern"));
    CREDENTIALS.replace_all(text, "$1:***@").into_owned()
}

/// Renders as `path:line:column: error: message`, then the source line and a caret
/// line under the offending text (wide CJK characters count as two terminal cells
/// there, so the carets line up in a terminal).
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}: {}", self.file.display(), self.severity, self.message);
        }
        writeln!(f, "{}:{}:{}: {}: {}", self.file.display(), self.line, self.column, self.severity, self.message)?;
        writeln!(f, "  | {}", self.snippet)?;
        write!(f, "  | {}", self.caret_line())
    }
}

/// Everything `validate` found, errors and warnings, sorted by file, line and column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// Counts the problems, such as `1 error, 2 warnings`.
    pub fn summary(&self) -> String {
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        format!("{} {}, {} {}", errors, plural(errors, "error"), warnings, plural(warnings, "warning"))
    }
}

/// Renders every diagnostic followed by a count such as `2 errors, 1 warning`.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.diagnostics {
            writeln!(f, "{diagnostic}")?;
        }
        f.write_str(&self.summary())
    }
}

pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(snippet: &str, column: usize, width: usize) -> Diagnostic {
        let message = "unknown field `exampels`".to_owned();
        Diagnostic::new(Severity::Error, PathBuf::from("bot/bot.yml"), (3, column), width, message, snippet)
    }

    #[test]
    fn display_underlines_ascii_text() -> anyhow::Result<()> {
        let text = diagnostic("    exampels:", 5, 8).to_string();
        assert_eq!(text, "bot/bot.yml:3:5: error: unknown field `exampels`\n  |     exampels:\n  |     ^^^^^^^^");
        Ok(())
    }

    #[test]
    fn display_aligns_caret_after_chinese_text() -> anyhow::Result<()> {
        let text = diagnostic("  - 你好 yes", 8, 3).to_string();
        let caret = text.lines().last().unwrap_or_default();
        assert_eq!(caret, "  |          ^^^");
        Ok(())
    }

    #[test]
    fn offending_text_counts_characters() -> anyhow::Result<()> {
        let found = diagnostic("  - 你好 yes", 8, 3).offending_text();
        assert_eq!(found, "yes");
        Ok(())
    }

    #[test]
    fn display_cuts_long_line_around_column() -> anyhow::Result<()> {
        let line = "[".repeat(10_000);
        let text = diagnostic(&line, 5_000, 1).to_string();
        let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or_default();
        assert!(longest <= MAX_SNIPPET_CHARS + 6, "a line of {longest} characters:\n{text}");
        Ok(())
    }

    #[test]
    fn display_keeps_caret_under_column_of_cut_line() -> anyhow::Result<()> {
        let line = format!("{}X{}", "a".repeat(5_000), "b".repeat(5_000));
        let found = diagnostic(&line, 5_001, 1);
        assert_eq!(found.offending_text(), "X");
        let text = found.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let caret = lines[2].find('^').unwrap_or_default();
        let marked = lines[1].chars().nth(lines[2][..caret].chars().count());
        assert_eq!(marked, Some('X'), "{text}");
        Ok(())
    }

    #[test]
    fn excerpt_marks_both_cuts() -> anyhow::Result<()> {
        let line = "x".repeat(1_000);
        let (snippet, column) = excerpt(&line, 500);
        assert!(snippet.starts_with('…'));
        assert!(snippet.ends_with('…'));
        assert_eq!(snippet.chars().count(), MAX_SNIPPET_CHARS + 2);
        assert_eq!(column, CONTEXT_BEFORE + 2);
        Ok(())
    }

    #[test]
    fn excerpt_keeps_end_of_line_whole() -> anyhow::Result<()> {
        let line = "x".repeat(1_000);
        let (snippet, column) = excerpt(&line, 1_001);
        assert!(!snippet.ends_with('…'));
        assert_eq!(column, MAX_SNIPPET_CHARS + 2);
        Ok(())
    }

    #[test]
    fn summary_uses_singular_for_one() -> anyhow::Result<()> {
        let report = Report { diagnostics: vec![diagnostic("x", 1, 1)] };
        assert_eq!(report.summary(), "1 error, 0 warnings");
        Ok(())
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn url_password_redacted_in_snippet_and_message() {
        let line = r#"    url: "http://:TopSecret@10.0.0.5:6379/0""#;
        let message = "settings.redis.url redis://user:TopSecret@h:1 is invalid".to_owned();

        let diagnostic = Diagnostic::new(Severity::Error, PathBuf::from("bot.yml"), (4, 10), 5, message, line);
        let shown = diagnostic.to_string();

        assert!(!shown.contains("TopSecret"), "password shown: {shown}");
        assert!(shown.contains("http://:***@10.0.0.5"), "URL lost its shape: {shown}");
        assert!(shown.contains("redis://user:***@h:1"), "user name lost: {shown}");
    }
}
