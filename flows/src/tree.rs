//! A YAML node tree that remembers where every key and value was written.
//!
//! Built from `saphyr-parser`'s event stream rather than a serde deserialiser, for
//! three reasons. Duplicate keys are seen (serde keeps the last). Every node has a
//! line and column. A scalar remembers whether it was quoted, so `no` and `"no"` stay
//! apart.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, Tag};

/// A place in a source file: 1-based line and column, counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    /// Index into the loader's list of source files.
    pub file: usize,
    pub line: usize,
    pub column: usize,
    /// The end of the node: the line and the column just past its last character.
    pub end_line: usize,
    pub end_column: usize,
}

impl Loc {
    fn from_span(file: usize, span: Span) -> Self {
        let start = marker_position(span.start);
        let mut end = marker_position(span.end);
        if end <= start {
            end = (start.0, start.1 + 1);
        }
        Self { file, line: start.0, column: start.1, end_line: end.0, end_column: end.1 }
    }

    /// Creates a location one character wide at `column` of `line`.
    pub fn point(file: usize, line: usize, column: usize) -> Self {
        Self { file, line, column, end_line: line, end_column: column + 1 }
    }

    /// Narrows this location to its first character, for nodes spanning many lines.
    pub fn start(self) -> Self {
        Self::point(self.file, self.line, self.column)
    }
}

fn marker_position(marker: Marker) -> (usize, usize) {
    (marker.line().max(1), marker.col() + 1)
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub loc: Loc,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Scalar(Scalar),
    Sequence(Vec<Node>),
    /// `duplicates` are the later entries whose key an earlier entry already has. They
    /// are reported as duplicate keys and left out of `entries`.
    Mapping { entries: Vec<Entry>, duplicates: Vec<Entry> },
}

#[derive(Clone, Debug)]
pub(crate) struct Scalar {
    pub text: String,
    /// Written without quotes, block indicator or `!!str` tag, so YAML resolves its type
    /// from the text (`true`, `12`, `~`).
    pub plain: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Node {
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Mapping { entries, .. } => Some(entries),
            _ => None,
        }
    }

    /// Returns the entries of a mapping left out because an earlier entry has the same key.
    pub fn duplicate_entries(&self) -> &[Entry] {
        match &self.value {
            Value::Mapping { duplicates, .. } => duplicates,
            _ => &[],
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// Tells whether this is an empty value (`key:`), `~` or `null` written plainly.
    pub fn is_null(&self) -> bool {
        self.scalar().is_some_and(Scalar::is_null)
    }

    /// Describes the kind of value, for messages like "expected a string, found a list".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Mapping { .. } => "a mapping".to_owned(),
            Value::Sequence(_) => "a list".to_owned(),
            Value::Scalar(scalar) if scalar.is_null() => "an empty value".to_owned(),
            Value::Scalar(scalar) if scalar.core_bool().is_some() => format!("the boolean `{}`", scalar.text),
            Value::Scalar(scalar) if scalar.number().is_some() => format!("the number `{}`", scalar.text),
            Value::Scalar(scalar) => format!("the string `{}`", scalar.text),
        }
    }
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    /// Returns the value of a plain `true` or `false` (in the spellings of the YAML 1.2 core schema).
    pub fn core_bool(&self) -> Option<bool> {
        if !self.plain {
            return None;
        }
        match self.text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// Tells whether a YAML 1.1 reader (PyYAML, many editors' plugins) would read this plain
    /// scalar as a boolean although YAML 1.2 reads it as a string: `y`, `n`, `yes`,
    /// `no`, `on`, `off` in any case.
    pub fn is_yaml11_bool_word(&self) -> bool {
        self.plain && matches!(self.text.to_ascii_lowercase().as_str(), "y" | "n" | "yes" | "no" | "on" | "off")
    }

    /// Returns the value of a plain number in the YAML 1.2 core schema: decimal, `0x`, `0o`,
    /// floats with exponent, `.inf` and `.nan`.
    pub fn number(&self) -> Option<f64> {
        if !self.plain {
            return None;
        }
        parse_core_number(&self.text)
    }
}

fn parse_core_number(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(|n| n as f64);
    }
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let starts_well = digits.starts_with(|c: char| c.is_ascii_digit())
        || (digits.starts_with('.') && digits[1..].starts_with(|c: char| c.is_ascii_digit()));
    let allowed = digits.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if !starts_well || !allowed {
        return None;
    }
    text.parse::<f64>().ok()
}

/// A problem found while parsing, at a place in the file.
#[derive(Clone, Debug)]
pub(crate) struct ParseProblem {
    pub loc: Loc,
    pub message: String,
}

/// The documents of one file, plus the problems seen while reading them. When
/// `syntax_error` is set the file could not be parsed to the end and `documents` is empty.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub documents: Vec<Node>,
    pub problems: Vec<ParseProblem>,
    pub syntax_error: bool,
}

/// Parses every document of `text`, the contents of source file number `file`.
pub(crate) fn parse(file: usize, text: &str) -> Parsed {
    let mut builder = Builder { file, text, stack: Vec::new(), anchors: HashMap::new(), nodes: 0, kept: 0, parsed: Parsed::default() };
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => {
                if !builder.on_event(event, span) {
                    break;
                }
            }
            Err(error) => {
                builder.on_syntax_error(&error);
                break;
            }
        }
    }
    builder.parsed
}

/// The deepest nesting accepted. Bot files nest about six levels, and the node tree is
/// dropped and converted recursively, so a much deeper file could overflow the stack.
const MAX_DEPTH: usize = 64;

/// The maximum number of nodes (scalars, lists and mappings) in one file, counting every
/// copy that an alias expands to and that an anchor keeps. A large bot file has some
/// tens of thousands. The limit stops an "alias bomb" (aliases of aliases, each level
/// multiplying the size) before it fills the memory.
pub const MAX_NODES: usize = 250_000;

enum Frame {
    Document,
    /// `nodes_before` is the node count when the collection opened, so the collection
    /// contains the count at its end minus this.
    Sequence { loc: Loc, anchor: usize, nodes_before: usize, items: Vec<Node> },
    Mapping {
        loc: Loc,
        anchor: usize,
        nodes_before: usize,
        entries: Vec<Entry>,
        duplicates: Vec<Entry>,
        key: Option<Node>,
        /// The place of each scalar key in `entries`, to find duplicate keys.
        keys: HashMap<String, Loc>,
    },
}

struct Builder<'t> {
    file: usize,
    text: &'t str,
    stack: Vec<Frame>,
    /// Each anchored node and the number of nodes it contains.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes in the tree so far, counting the copies made by aliases.
    nodes: usize,
    /// Nodes in the copies kept in `anchors`.
    kept: usize,
    parsed: Parsed,
}

impl Builder<'_> {
    /// Adds one event to the tree. Returns false when parsing must stop.
    fn on_event(&mut self, event: Event<'_>, span: Span) -> bool {
        let loc = Loc::from_span(self.file, span);
        let opens = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        if opens && self.stack.len() > MAX_DEPTH {
            self.stop(loc.start(), format!("YAML nested deeper than {MAX_DEPTH} levels; flatten it"));
            return false;
        }
        let creates = opens || matches!(event, Event::Scalar(..));
        if creates && !self.count(1, loc.start()) {
            return false;
        }
        match event {
            Event::DocumentStart(_) => self.stack.push(Frame::Document),
            Event::DocumentEnd => {
                self.stack.pop();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && !self.is_str_tag(tag.as_deref(), loc);
                let node = Node { loc, value: Value::Scalar(Scalar { text: text.into_owned(), plain }) };
                if !self.remember(anchor, &node, 1) {
                    return false;
                }
                self.add(node);
            }
            Event::Alias(anchor) => return self.expand_alias(anchor, loc),
            Event::SequenceStart(anchor, tag) => {
                self.reject_tag(tag, loc);
                let nodes_before = self.nodes - 1;
                self.stack.push(Frame::Sequence { loc: loc.start(), anchor, nodes_before, items: Vec::new() });
            }
            Event::MappingStart(anchor, tag) => {
                self.reject_tag(tag, loc);
                let nodes_before = self.nodes - 1;
                self.stack.push(Frame::Mapping {
                    loc: loc.start(),
                    anchor,
                    nodes_before,
                    entries: Vec::new(),
                    duplicates: Vec::new(),
                    key: None,
                    keys: HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => return self.close_collection(),
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        true
    }

    /// Adds a copy of the anchored node, unless the copy would take the file past [`MAX_NODES`].
    fn expand_alias(&mut self, anchor: usize, loc: Loc) -> bool {
        let Some((target, size)) = self.anchors.get(&anchor) else { return true };
        let size = *size;
        if self.nodes + self.kept + size > MAX_NODES {
            let message = format!(
                "this alias would expand the file to more than {MAX_NODES} YAML nodes; write the values out or nest fewer aliases"
            );
            self.stop(loc, message);
            return false;
        }
        let node = Node { loc, value: target.value.clone() };
        self.nodes += size;
        self.add(node);
        true
    }

    /// Counts `added` new nodes written at `loc`. Returns false, after reporting, when the
    /// file goes past [`MAX_NODES`].
    fn count(&mut self, added: usize, loc: Loc) -> bool {
        self.nodes += added;
        if self.nodes + self.kept <= MAX_NODES {
            return true;
        }
        self.stop(loc, format!("the file holds more than {MAX_NODES} YAML nodes; split it into smaller files"));
        false
    }

    fn close_collection(&mut self) -> bool {
        let (node, anchor, size) = match self.stack.pop() {
            Some(Frame::Sequence { loc, anchor, nodes_before, items }) => {
                (Node { loc, value: Value::Sequence(items) }, anchor, self.nodes - nodes_before)
            }
            Some(Frame::Mapping { loc, anchor, nodes_before, entries, duplicates, .. }) => {
                (Node { loc, value: Value::Mapping { entries, duplicates } }, anchor, self.nodes - nodes_before)
            }
            other => {
                self.stack.extend(other);
                return true;
            }
        };
        if !self.remember(anchor, &node, size) {
            return false;
        }
        self.add(node);
        true
    }

    /// Keeps a copy of an anchored node of `size` nodes for later aliases. The copy counts
    /// towards [`MAX_NODES`], as nested anchors would otherwise copy a large tree many times.
    fn remember(&mut self, anchor: usize, node: &Node, size: usize) -> bool {
        if anchor == 0 {
            return true;
        }
        self.kept += size;
        if !self.count(0, node.loc.start()) {
            return false;
        }
        self.anchors.insert(anchor, (node.clone(), size));
        true
    }

    /// `!!str` marks a scalar as a string; any other tag is reported and ignored.
    fn is_str_tag(&mut self, tag: Option<&Tag>, loc: Loc) -> bool {
        match tag {
            Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => true,
            Some(tag) => {
                self.problem(loc, format!("unsupported tag `{tag}`; remove it (only `!!str` is understood)"));
                false
            }
            None => false,
        }
    }

    fn reject_tag(&mut self, tag: Option<Cow<'_, Tag>>, loc: Loc) {
        if let Some(tag) = tag {
            self.problem(loc.start(), format!("unsupported tag `{tag}`; remove it"));
        }
    }

    fn add(&mut self, node: Node) {
        let mut duplicate = None;
        match self.stack.last_mut() {
            Some(Frame::Document) | None => self.parsed.documents.push(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { entries, duplicates, key, keys, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key_node) => {
                    let value = anchor_empty_value(&key_node, node);
                    let text = key_node.scalar().map(|scalar| scalar.text.clone());
                    let first = text.as_ref().and_then(|text| keys.get(text).copied());
                    if let Some(first) = first {
                        duplicate = Some((key_node.loc, text.unwrap_or_default(), first));
                        duplicates.push(Entry { key: key_node, value });
                    } else {
                        if let Some(text) = text {
                            keys.insert(text, key_node.loc);
                        }
                        entries.push(Entry { key: key_node, value });
                    }
                }
            },
        }
        if let Some((loc, name, first)) = duplicate {
            let message = format!(
                "duplicate key `{name}` (first written at line {}, column {}); remove one of them",
                first.line, first.column
            );
            self.problem(loc, message);
        }
    }

    fn on_syntax_error(&mut self, error: &ScanError) {
        let (line, column) = marker_position(*error.marker());
        let info = error.info();
        if info.contains("tab") {
            let (line, column) = tab_position(self.text, line, column).unwrap_or((line, column));
            let loc = Loc::point(self.file, line, column);
            self.stop(loc, format!("invalid YAML: {info}; indent with spaces, not tabs"));
            return;
        }
        self.stop(Loc::point(self.file, line, column), format!("invalid YAML: {info}"));
    }

    /// Reports a problem that ends the parsing of this file, and drops what was read.
    fn stop(&mut self, loc: Loc, message: String) {
        self.problem(loc, message);
        self.parsed.documents.clear();
        self.parsed.syntax_error = true;
    }

    fn problem(&mut self, loc: Loc, message: String) {
        self.parsed.problems.push(ParseProblem { loc, message });
    }
}

/// Finds the tab that a scanner error about tabs points at. `saphyr-parser` 0.3 reports
/// some of them where the value before the tab starts (a line or more earlier) and
/// others just after the tab. So this looks at the marked character first. Then it looks
/// at the indentation of the marked line before the mark, and of the lines after it.
fn tab_position(text: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    for (index, content) in text.lines().enumerate().skip(line - 1) {
        let number = index + 1;
        if number == line && content.chars().nth(column - 1) == Some('\t') {
            return Some((line, column));
        }
        let indentation = content.chars().take_while(|c| *c == ' ' || *c == '\t');
        let tab = indentation.enumerate().find(|(_, c)| *c == '\t').map(|(at, _)| at + 1);
        match tab {
            Some(tab_column) if number > line || tab_column < column => return Some((number, tab_column)),
            _ => {}
        }
    }
    None
}

/// Gives an empty value (`key:` with nothing after it) the position of its key,
/// because it has no text of its own to point at.
fn anchor_empty_value(key: &Node, mut value: Node) -> Node {
    if value.scalar().is_some_and(|s| s.plain && s.text.is_empty()) {
        value.loc = key.loc;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_document(text: &str) -> anyhow::Result<Node> {
        let parsed = parse(0, text);
        anyhow::ensure!(parsed.problems.is_empty(), "unexpected problems: {:?}", parsed.problems);
        parsed.documents.into_iter().next().ok_or_else(|| anyhow::anyhow!("no document"))
    }

    #[test]
    fn parse_records_key_and_value_positions() -> anyhow::Result<()> {
        let root = only_document("a:\n  b: \"x\"\n")?;
        let inner = &root.entries().unwrap_or_default()[0].value;
        let entry = &inner.entries().unwrap_or_default()[0];
        assert_eq!((entry.key.loc.line, entry.key.loc.column), (2, 3));
        assert_eq!((entry.value.loc.line, entry.value.loc.column, entry.value.loc.end_column), (2, 6, 9));
        Ok(())
    }

    #[test]
    fn parse_counts_columns_in_characters() -> anyhow::Result<()> {
        let root = only_document("你好: 世界\n")?;
        let value = &root.entries().unwrap_or_default()[0].value;
        assert_eq!(value.loc.column, 5);
        Ok(())
    }

    #[test]
    fn parse_marks_quoted_scalars() -> anyhow::Result<()> {
        let root = only_document("- no\n- \"no\"\n- !!str no\n")?;
        let plain: Vec<bool> = root.items().unwrap_or_default().iter().map(|n| n.scalar().is_some_and(|s| s.plain)).collect();
        assert_eq!(plain, vec![true, false, false]);
        Ok(())
    }

    #[test]
    fn parse_reports_duplicate_key_at_second_occurrence() -> anyhow::Result<()> {
        let parsed = parse(0, "a: 1\nb: 2\na: 3\n");
        let problem = parsed.problems.first().ok_or_else(|| anyhow::anyhow!("no problem reported"))?;
        assert_eq!((problem.loc.line, problem.loc.column), (3, 1));
        assert!(problem.message.contains("line 1, column 1"), "{}", problem.message);
        Ok(())
    }

    #[test]
    fn parse_reports_syntax_error_position() -> anyhow::Result<()> {
        let parsed = parse(0, "a: [1, 2\nb: 3\n");
        assert!(parsed.syntax_error);
        assert_eq!(parsed.problems.len(), 1);
        Ok(())
    }

    #[test]
    fn parse_copies_aliased_nodes() -> anyhow::Result<()> {
        let root = only_document("a: &x [1, 2]\nb: *x\n")?;
        let b = &root.entries().unwrap_or_default()[1].value;
        assert_eq!(b.items().map(<[Node]>::len), Some(2));
        Ok(())
    }

    #[test]
    fn parse_rejects_deep_nesting() -> anyhow::Result<()> {
        let text = "[".repeat(MAX_DEPTH + 5);
        let parsed = parse(0, &text);
        assert!(parsed.syntax_error);
        assert!(parsed.problems[0].message.contains("nested deeper"), "{:?}", parsed.problems);
        Ok(())
    }

    /// Nine levels of aliases, each a list of nine aliases of the level before: about
    /// 390 million nodes once expanded.
    fn alias_bomb() -> String {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let mut text = format!("{}: &{} [x, x, x, x, x, x, x, x, x]\n", names[0], names[0]);
        for pair in names.windows(2) {
            let items = vec![format!("*{}", pair[0]); 9].join(", ");
            text.push_str(&format!("{}: &{} [{items}]\n", pair[1], pair[1]));
        }
        text
    }

    #[test]
    fn parse_stops_alias_bomb_at_an_alias() -> anyhow::Result<()> {
        let text = alias_bomb();
        let parsed = parse(0, &text);
        assert!(parsed.syntax_error);
        assert!(parsed.documents.is_empty());
        let problem = parsed.problems.first().ok_or_else(|| anyhow::anyhow!("no problem reported"))?;
        assert!(problem.message.contains("alias would expand the file to more than 250000 YAML nodes"), "{}", problem.message);
        let line = text.lines().nth(problem.loc.line - 1).unwrap_or_default();
        assert_eq!(line.chars().nth(problem.loc.column - 1), Some('*'), "{problem:?}");
        Ok(())
    }

    #[test]
    fn parse_rejects_file_with_too_many_nodes() -> anyhow::Result<()> {
        let text = format!("[{}]", "x,".repeat(MAX_NODES));
        let parsed = parse(0, &text);
        assert!(parsed.syntax_error);
        assert!(parsed.problems[0].message.contains("holds more than 250000 YAML nodes"), "{:?}", parsed.problems);
        Ok(())
    }

    #[test]
    fn parse_accepts_small_aliases() -> anyhow::Result<()> {
        let text = "a: &a [x, y]\nb: [*a, *a, *a]\n";
        let root = only_document(text)?;
        let b = &root.entries().unwrap_or_default()[1].value;
        assert_eq!(b.items().map(<[Node]>::len), Some(3));
        Ok(())
    }

    #[test]
    fn parse_reports_indentation_tab_where_it_is() -> anyhow::Result<()> {
        let text = "settings:\n  languages: [en]\n  name: Test shop\n  variables:\n    shop: Shop\n\t  x: y\n";
        let parsed = parse(0, text);
        let problem = parsed.problems.first().ok_or_else(|| anyhow::anyhow!("no problem reported"))?;
        assert_eq!((problem.loc.line, problem.loc.column), (6, 1), "{problem:?}");
        assert!(problem.message.ends_with("indent with spaces, not tabs"), "{}", problem.message);
        Ok(())
    }

    #[test]
    fn parse_reports_block_indentation_tab_where_it_is() -> anyhow::Result<()> {
        let text = "responses:\n  greet:\n    en:\n      - Hello\n    zh:\n  \t- 你好\n";
        let parsed = parse(0, text);
        let problem = parsed.problems.first().ok_or_else(|| anyhow::anyhow!("no problem reported"))?;
        assert_eq!((problem.loc.line, problem.loc.column), (6, 3), "{problem:?}");
        Ok(())
    }

    #[test]
    fn number_follows_core_schema() -> anyhow::Result<()> {
        let numbers: Vec<Option<f64>> = ["12", "-0.5", "1e3", "0x1F", "1_000", "v1", "1.2.3"]
            .iter()
            .map(|text| Scalar { text: (*text).to_owned(), plain: true }.number())
            .collect();
        assert_eq!(numbers, vec![Some(12.0), Some(-0.5), Some(1000.0), Some(31.0), None, None, None]);
        Ok(())
    }
}
