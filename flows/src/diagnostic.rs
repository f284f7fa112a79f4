//! Problems found in a bot folder, with the place and the source line they point at.

use std::fmt;
use std::path::PathBuf;

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
    /// The source line containing the problem, without its line break; empty when `line` is 0.
    pub snippet: String,
}

impl Diagnostic {
    /// Creates an error about a whole file or folder, with no line or column.
    pub(crate) fn error_at_path(file: PathBuf, message: String) -> Self {
        Self { severity: Severity::Error, file, line: 0, column: 0, width: 0, message, snippet: String::new() }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Returns the text the problem points at: `width` characters of `snippet` from `column`.
    pub fn offending_text(&self) -> String {
        if self.column == 0 {
            return String::new();
        }
        self.snippet.chars().skip(self.column - 1).take(self.width.max(1)).collect()
    }

    fn caret_line(&self) -> String {
        let mut line = String::new();
        let before = self.column.saturating_sub(1);
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

/// Terminal cells taken by a character: 2 for East Asian wide and full-width
/// characters, 0 for combining marks, 1 otherwise. An approximation of Unicode
/// East Asian Width covering the CJK, kana, Hangul and full-width blocks.
fn char_display_width(c: char) -> usize {
    let code = u32::from(c);
    let combining = matches!(code, 0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F);
    if combining {
        return 0;
    }
    let wide = matches!(
        code,
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD
    );
    if wide {
        2
    } else {
        1
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
}

/// Renders every diagnostic followed by a count such as `2 errors, 1 warning`.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.diagnostics {
            writeln!(f, "{diagnostic}")?;
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        write!(f, "{} {}, {} {}", errors, plural(errors, "error"), warnings, plural(warnings, "warning"))
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
        Diagnostic {
            severity: Severity::Error,
            file: PathBuf::from("bot/bot.yml"),
            line: 3,
            column,
            width,
            message: "unknown field `exampels`".to_owned(),
            snippet: snippet.to_owned(),
        }
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
}
