//! Text-level edits of one YAML file: where a new example, language list or
//! mapping entry goes, and the lines to insert there. Every other byte of the
//! file stays as it was, comments and blank lines included.

use crate::tree::{parse, Node};

/// The reason an edit cannot be placed in a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unplaceable(pub String);

/// One insertion into a file's text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Insertion {
    /// Byte offset in the text.
    pub at: usize,
    pub text: String,
}

impl Insertion {
    pub fn apply(&self, text: &str) -> String {
        let mut edited = String::with_capacity(text.len() + self.text.len());
        edited.push_str(&text[..self.at]);
        edited.push_str(&self.text);
        edited.push_str(&text[self.at..]);
        edited
    }
}

/// Returns `text` as a double-quoted YAML scalar. `"` and `\` are escaped, and so
/// are line breaks, tabs and every other character that YAML does not allow
/// unescaped in a double-quoted scalar (C0 and C1 controls, DEL, the byte order
/// mark, U+2028, U+2029, U+FFFE, U+FFFF). Other characters, Chinese included, are kept as they are.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\0' => quoted.push_str("\\0"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                quoted.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Returns `name` as a mapping key: plain when YAML reads it back as the same
/// string, double-quoted otherwise (`no`, `true`, `null`, `123`, `-x`).
pub(crate) fn key(name: &str) -> String {
    let plain_safe = name.chars().next().is_some_and(char::is_alphabetic)
        && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        && !is_special_word(name);
    if plain_safe {
        name.to_owned()
    } else {
        quote(name)
    }
}

/// Words YAML 1.2 or YAML 1.1 tools read as something other than a string.
fn is_special_word(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(lower.as_str(), "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null")
}

/// Lines of a file's text, with the byte offset of each line's start.
pub(crate) struct Lines<'t> {
    pub text: &'t str,
    starts: Vec<usize>,
    /// The line break the file uses: `\r\n` when any line ends with it.
    pub newline: &'static str,
}

impl<'t> Lines<'t> {
    pub fn new(text: &'t str) -> Self {
        let breaks = text.match_indices('\n').map(|(at, _)| at + 1);
        let starts = std::iter::once(0).chain(breaks).collect();
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        Self { text, starts, newline }
    }

    /// Returns the text of a 1-based line without its line break.
    pub fn line(&self, line: usize) -> &'t str {
        let Some(&start) = line.checked_sub(1).and_then(|index| self.starts.get(index)) else { return "" };
        let end = self.starts.get(line).map_or(self.text.len(), |next| next - 1);
        let text = &self.text[start..end];
        text.strip_suffix('\r').unwrap_or(text)
    }

    /// Returns the byte offset of a 1-based line and column in characters.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let Some(&start) = line.checked_sub(1).and_then(|index| self.starts.get(index)) else { return self.text.len() };
        let rest = &self.text[start..];
        let within = rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(at, _)| at);
        start + within
    }

    /// Returns an insertion of `lines` (each without its line break) as whole lines after line `after`.
    pub fn insert_after(&self, after: usize, lines: &[String]) -> Insertion {
        let mut text = String::new();
        let at = match self.starts.get(after) {
            Some(&start) if after > 0 => start,
            _ => {
                if !self.text.is_empty() && !self.text.ends_with('\n') {
                    text.push_str(self.newline);
                }
                self.text.len()
            }
        };
        for line in lines {
            text.push_str(line);
            text.push_str(self.newline);
        }
        Insertion { at, text }
    }

    /// Returns the character at a 1-based line and column, if any.
    fn char_at(&self, line: usize, column: usize) -> Option<char> {
        self.text[self.offset(line, column)..].chars().next()
    }
}

/// Tells whether a sequence or mapping node is written in flow style (`[...]`, `{...}`).
fn is_flow(lines: &Lines<'_>, node: &Node) -> bool {
    matches!(lines.char_at(node.loc.line, node.loc.column), Some('[' | '{'))
}

/// Returns the last line that contains part of `node`.
pub(crate) fn last_line(lines: &Lines<'_>, node: &Node) -> usize {
    if node.scalar().is_some() {
        // A span may end at the first column of the line after the value.
        let ends_at_line_start = node.loc.end_column == 1 && node.loc.end_line > node.loc.line;
        return if ends_at_line_start { node.loc.end_line - 1 } else { node.loc.end_line };
    }
    if is_flow(lines, node) {
        let start = lines.offset(node.loc.line, node.loc.column);
        let end = closing_bracket(lines.text, start).unwrap_or(start);
        return lines.text[..end].matches('\n').count() + 1;
    }
    let last_child = match (node.items(), node.entries()) {
        (Some(items), _) => items.last(),
        (_, Some(entries)) => entries.last().map(|entry| if entry.value.is_null() { &entry.key } else { &entry.value }),
        _ => None,
    };
    last_child.map_or(node.loc.line, |child| last_line(lines, child))
}

/// Returns the byte offset of the bracket that closes the flow collection opened at `open`.
/// Quoted scalars and comments are skipped. A quote starts a scalar only where a
/// scalar can start, so the apostrophe of a plain `don't` is text.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut previous = ' ';
    let mut chars = text[open..].char_indices().map(|(at, c)| (open + at, c)).peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at);
                }
            }
            '"' | '\'' if matches!(previous, ' ' | '\t' | '\n' | '[' | '{' | ',' | ':') => skip_quoted(&mut chars, c),
            '#' if matches!(previous, ' ' | '\t' | '\n') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
        previous = c;
    }
    None
}

fn skip_quoted<I: Iterator<Item = (usize, char)>>(chars: &mut std::iter::Peekable<I>, quote: char) {
    let mut escaped = false;
    while let Some((_, c)) = chars.next() {
        if quote == '"' && escaped {
            escaped = false;
        } else if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            // In single quotes, `''` is an escaped quote, not the end.
            if quote == '\'' && chars.next_if(|(_, next)| *next == '\'').is_some() {
                continue;
            }
            return;
        }
    }
}

/// Returns the indentation (leading spaces) of a line.
pub(crate) fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ').count()
}

/// Returns the insertion that adds `quoted` as the last item of `sequence`.
pub(crate) fn append_item(lines: &Lines<'_>, sequence: &Node, quoted: &str) -> Result<Insertion, Unplaceable> {
    let items = sequence.items().ok_or_else(|| Unplaceable("the examples are not a list".to_owned()))?;
    if is_flow(lines, sequence) {
        return Ok(match items.last() {
            Some(last) => Insertion { at: lines.offset(last.loc.end_line, last.loc.end_column), text: format!(", {quoted}") },
            None => Insertion { at: lines.offset(sequence.loc.line, sequence.loc.column) + 1, text: quoted.to_owned() },
        });
    }
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Err(Unplaceable("the examples list is empty".to_owned()));
    };
    let dash = dash_column(lines, first).ok_or_else(|| Unplaceable("the list items do not start with `- `".to_owned()))?;
    let line = format!("{}- {quoted}", " ".repeat(dash));
    Ok(lines.insert_after(last_line(lines, last), &[line]))
}

/// Returns the 0-based column of the `-` before a block sequence item.
fn dash_column(lines: &Lines<'_>, item: &Node) -> Option<usize> {
    let line: Vec<char> = lines.line(item.loc.line).chars().collect();
    let before = line.get(..item.loc.column.saturating_sub(1))?;
    let dash = before.iter().rposition(|c| *c != ' ')?;
    (before[dash] == '-' && before[..dash].iter().all(|c| *c == ' ')).then_some(dash)
}

/// Returns the insertion that adds `entry` (lines indented relative to the
/// mapping's keys) after the last entry of the block `mapping`.
pub(crate) fn append_entry(lines: &Lines<'_>, mapping: &Node, entry: &[(usize, String)]) -> Result<Insertion, Unplaceable> {
    if is_flow(lines, mapping) {
        return Err(Unplaceable("the mapping is written in flow style (`{ ... }`); write it as a block mapping".to_owned()));
    }
    let entries = mapping.entries().ok_or_else(|| Unplaceable("expected a mapping".to_owned()))?;
    let first = entries.first().ok_or_else(|| Unplaceable("the mapping is empty".to_owned()))?;
    let indent = first.key.loc.column - 1;
    let text: Vec<String> = entry.iter().map(|(depth, line)| format!("{}{line}", " ".repeat(indent + depth))).collect();
    Ok(lines.insert_after(last_line(lines, mapping), &text))
}

/// Returns the indentation of a block sequence's items relative to the key it
/// belongs to, as written under `examples:` in this file (2 when none is written).
pub(crate) fn item_indent(lines: &Lines<'_>, examples: &Node) -> usize {
    let entries = examples.entries().unwrap_or_default();
    for entry in entries {
        let Some(first) = entry.value.items().and_then(<[Node]>::first) else { continue };
        if is_flow(lines, &entry.value) {
            continue;
        }
        if let Some(dash) = dash_column(lines, first) {
            return dash.saturating_sub(entry.key.loc.column - 1);
        }
    }
    2
}

/// Returns the value of the top-level `section` of the first document of `text`
/// that has one, with its key's line.
pub(crate) fn top_level(documents: &[Node], section: &str) -> Option<(usize, Node)> {
    documents.iter().find_map(|document| {
        let entry = document.entries()?.iter().find(|entry| entry.key.scalar().is_some_and(|key| key.text == section))?;
        Some((entry.key.loc.line, entry.value.clone()))
    })
}

/// Parses a file's text; fails when it has a YAML syntax error.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Node>, Unplaceable> {
    let parsed = parse(0, text);
    if parsed.syntax_error {
        return Err(Unplaceable("the file is not valid YAML".to_owned()));
    }
    Ok(parsed.documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_of(quoted: &str) -> anyhow::Result<String> {
        let documents = parse_documents(&format!("- {quoted}\n")).map_err(|e| anyhow::anyhow!(e.0))?;
        let item = documents.first().and_then(Node::items).and_then(<[Node]>::first).ok_or_else(|| anyhow::anyhow!("no item"))?;
        Ok(item.scalar().map(|s| s.text.clone()).unwrap_or_default())
    }

    #[test]
    fn quote_round_trips_special_text() -> anyhow::Result<()> {
        let texts = [
            "where is my order",
            "他说：\"你好\"，还没到",
            "back\\slash and \"quotes\" and 'single'",
            "line one\nline two\r\nthree\ttab",
            "- looks like a list: item # not a comment",
            "{flow: [x]} & *alias ! tag % | > @ `",
            "no",
            "null",
            "\u{0}\u{7}\u{1b}\u{7f}\u{85}\u{2028}\u{2029}\u{feff}",
            "emoji 🙂 and 全角１２３",
        ];
        for text in texts {
            let quoted = quote(text);
            assert!(!quoted[1..quoted.len() - 1].contains(['\n', '\r']), "{quoted}");
            assert_eq!(scalar_of(&quoted)?, text, "quoted as {quoted}");
        }
        Ok(())
    }

    #[test]
    fn quote_keeps_chinese_unescaped() {
        assert_eq!(quote("能开发票吗"), "\"能开发票吗\"");
    }

    #[test]
    fn key_quotes_words_yaml_reads_otherwise() {
        assert_eq!(key("invoice"), "invoice");
        assert_eq!(key("开发票"), "开发票");
        assert_eq!(key("no"), "\"no\"");
        assert_eq!(key("True"), "\"True\"");
        assert_eq!(key("404"), "\"404\"");
    }

    #[test]
    fn closing_bracket_skips_quotes_and_comments() {
        let text = "[don't, \"a]\", 'b'']', # ] comment\n  c]";
        assert_eq!(closing_bracket(text, 0), Some(text.len() - 1));
    }

    #[test]
    fn insert_after_last_line_without_break_adds_one() {
        let lines = Lines::new("a: 1");
        let insertion = lines.insert_after(1, &["b: 2".to_owned()]);
        assert_eq!(insertion.apply(lines.text), "a: 1\nb: 2\n");
    }

    #[test]
    fn insert_keeps_crlf_line_breaks() {
        let lines = Lines::new("a: 1\r\nc: 3\r\n");
        let insertion = lines.insert_after(1, &["b: 2".to_owned()]);
        assert_eq!(insertion.apply(lines.text), "a: 1\r\nb: 2\r\nc: 3\r\n");
    }
}
