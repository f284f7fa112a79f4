//! The conversion context: collects diagnostics and reads typed values from nodes.
//!
//! Every reader reports what is wrong with a node and returns `None`, so conversion
//! goes on and one run finds every problem.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, Severity};
use crate::examples::ExamplePlace;
use crate::source::SourceFile;
use crate::tree::{Entry, Loc, Node};

pub(crate) struct Cx<'s> {
    pub sources: &'s [SourceFile],
    pub diagnostics: Vec<Diagnostic>,
}

impl<'s> Cx<'s> {
    pub fn new(sources: &'s [SourceFile]) -> Self {
        Self { sources, diagnostics: Vec::new() }
    }

    /// Reports a problem with a whole file or folder rather than a place in a file.
    pub fn error_at_path(&mut self, path: PathBuf, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error_at_path(path, message.into()));
    }

    pub fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.push(Severity::Error, loc, message.into());
    }

    pub fn warning(&mut self, loc: Loc, message: impl Into<String>) {
        self.push(Severity::Warning, loc, message.into());
    }

    fn push(&mut self, severity: Severity, loc: Loc, message: String) {
        let source = &self.sources[loc.file];
        let line = source.line(loc.line);
        let diagnostic = Diagnostic::new(severity, source.shown.clone(), (loc.line, loc.column), width_on_line(loc, line), message, line);
        self.diagnostics.push(diagnostic);
    }

    /// Returns the place of an example written at `loc`, for [`crate::ExamplePlaces`].
    pub fn example_place(&self, loc: Loc) -> ExamplePlace {
        let source = &self.sources[loc.file];
        let line = source.line(loc.line);
        ExamplePlace { file: source.shown.clone(), line: loc.line, column: loc.column, width: width_on_line(loc, line), source_line: line.to_owned() }
    }

    /// Finds `needle` inside the source text of `loc` and returns its position, or `loc`
    /// itself when the text is not there (escapes in a double-quoted string, for example).
    pub fn locate_within(&self, loc: Loc, needle: &str) -> Loc {
        let source = &self.sources[loc.file];
        for line in loc.line..=loc.end_line {
            let text = source.line(line);
            let skip = if line == loc.line { loc.column - 1 } else { 0 };
            let searched: String = text.chars().skip(skip).collect();
            if let Some(byte) = searched.find(needle) {
                let column = skip + searched[..byte].chars().count() + 1;
                let end_column = column + needle.chars().count();
                if line == loc.end_line && end_column > loc.end_column {
                    break;
                }
                return Loc { file: loc.file, line, column, end_line: line, end_column };
            }
        }
        loc
    }

    /// Reads a string, reporting values that YAML tools would read as something else.
    /// Plain numbers are accepted as their text (`404`, `1.5`).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        let Some(scalar) = node.scalar() else {
            self.error(node.loc.start(), format!("expected {what} (a string), found {}", node.describe()));
            return None;
        };
        if scalar.is_null() {
            self.error(node.loc, format!("expected {what} (a string), found an empty value"));
            return None;
        }
        if scalar.is_yaml11_bool_word() {
            let text = &scalar.text;
            let message = format!(
                "`{text}` is read as a boolean by YAML 1.1 tools; quote it as \"{text}\" where {what} is meant"
            );
            self.error(node.loc, message);
            return None;
        }
        if scalar.core_bool().is_some() {
            let text = &scalar.text;
            self.error(node.loc, format!("expected {what} (a string), found the boolean `{text}`; quote it as \"{text}\""));
            return None;
        }
        Some(scalar.text.clone())
    }

    /// Reads a string that must not be empty or only spaces.
    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.string(node, what)?;
        if text.trim().is_empty() {
            self.error(node.loc, format!("{what} is empty; write some text or remove it"));
            return None;
        }
        Some(text)
    }

    /// Reads the name of something the bot defines (an intent, a slot, a step id);
    /// `noun` names the kind, such as "slot name". Names are letters (any script), digits,
    /// `_` and `-`, so that `{name}` and `/name` can refer to them.
    pub fn name(&mut self, node: &Node, noun: &str) -> Option<String> {
        let name = self.string(node, &with_article(noun))?;
        let valid = !name.is_empty() && name.chars().all(is_name_char);
        if !valid {
            let message = format!("invalid {noun} `{name}`; use only letters, digits, `_` and `-`");
            self.error(node.loc, message);
            return None;
        }
        Some(name)
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        let scalar = node.scalar();
        if let Some(value) = scalar.and_then(|s| s.core_bool()) {
            return Some(value);
        }
        let message = match scalar {
            Some(s) if s.is_yaml11_bool_word() => {
                format!("`{}` is a string in YAML 1.2, not a boolean; write true or false for {what}", s.text)
            }
            _ => format!("expected true or false for {what}, found {}", node.describe()),
        };
        self.error(value_loc(node), message);
        None
    }

    pub fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match node.scalar().and_then(|s| s.number()) {
            Some(value) if value.is_finite() => Some(value),
            _ => {
                self.error(value_loc(node), format!("expected a number for {what}, found {}", node.describe()));
                None
            }
        }
    }

    /// Reads a whole number in `min..=max`.
    pub fn integer(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        let value = self.number(node, what)?;
        let whole = value.fract() == 0.0 && value >= min as f64 && value <= max as f64;
        if !whole {
            self.error(node.loc, format!("{what} must be a whole number from {min} to {max}, found `{}`", scalar_text(node)));
            return None;
        }
        Some(value as u64)
    }

    /// Reads a number in `min..=max`.
    pub fn number_in(&mut self, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
        let value = self.number(node, what)?;
        if value < min || value > max {
            self.error(node.loc, format!("{what} must be from {min} to {max}, found `{}`", scalar_text(node)));
            return None;
        }
        Some(value)
    }

    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        if let Some(items) = node.items() {
            return Some(items);
        }
        self.error(node.loc.start(), format!("expected a list for {what}, found {}", node.describe()));
        None
    }

    /// Reads a list of strings, skipping (and reporting) the items that are not strings.
    pub fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Loc)>> {
        let items = self.list(node, what)?;
        let mut strings = Vec::new();
        for item in items {
            if let Some(text) = self.text(item, what) {
                strings.push((text, item.loc));
            }
        }
        Some(strings)
    }

    /// Reads a mapping whose keys are names chosen by the bot author (intent names,
    /// languages, choice values), reporting keys that are not strings.
    pub fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Entry]> {
        if let Some(entries) = node.entries() {
            return Some(entries);
        }
        self.error(node.loc.start(), format!("expected a mapping for {what}, found {}", node.describe()));
        None
    }

    /// Reads a mapping of fixed field names, reporting unknown fields with the closest
    /// valid name. `owner` is the key the mapping belongs to, where missing fields are reported.
    pub fn fields<'n>(&mut self, node: &'n Node, owner: Loc, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let entries = self.mapping(node, what)?;
        let mut found = Vec::new();
        for entry in entries {
            let Some(key) = entry.key.scalar().map(|s| s.text.as_str()) else {
                self.error(entry.key.loc.start(), format!("expected a field name in {what}, found {}", entry.key.describe()));
                continue;
            };
            if allowed.contains(&key) {
                found.push((key, entry));
                continue;
            }
            let message = format!("unknown field `{key}` in {what}; {}", suggestion(key, allowed.iter().copied()));
            self.error(entry.key.loc, message);
        }
        Some(Fields { owner, what: what.to_owned(), found })
    }
}

/// Turns the result of reading an optional field into `None` when the field was
/// present but invalid, and `Some(None)` when it was absent.
pub(crate) fn optional<T>(read: Option<Option<T>>) -> Option<Option<T>> {
    match read {
        None => Some(None),
        Some(Some(value)) => Some(Some(value)),
        Some(None) => None,
    }
}

/// "an intent name", "a slot name": the noun with its indefinite article.
fn with_article(noun: &str) -> String {
    let vowel = noun.starts_with(['a', 'e', 'i', 'o', 'u']);
    if vowel {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Characters `loc` covers on its first line, `line`: up to the end of that line when
/// `loc` spans several lines.
fn width_on_line(loc: Loc, line: &str) -> usize {
    if loc.end_line == loc.line {
        loc.end_column.saturating_sub(loc.column)
    } else {
        (line.chars().count() + 1).saturating_sub(loc.column)
    }
}

/// Returns where to point at a value: the whole of a scalar, the first character of a collection.
fn value_loc(node: &Node) -> Loc {
    if node.scalar().is_some() {
        node.loc
    } else {
        node.loc.start()
    }
}

fn scalar_text(node: &Node) -> &str {
    node.scalar().map(|s| s.text.as_str()).unwrap_or("")
}

/// The fields of a mapping read by [`Cx::fields`].
pub(crate) struct Fields<'n> {
    owner: Loc,
    what: String,
    found: Vec<(&'n str, &'n Entry)>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, name: &str) -> Option<&'n Node> {
        self.entry(name).map(|entry| &entry.value)
    }

    pub fn entry(&self, name: &str) -> Option<&'n Entry> {
        self.found.iter().find(|(key, _)| *key == name).map(|(_, entry)| *entry)
    }

    pub fn has(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Lists the names of the fields present, in source order.
    pub fn names(&self) -> impl Iterator<Item = &'n str> + '_ {
        self.found.iter().map(|(key, _)| *key)
    }

    pub fn require(&self, cx: &mut Cx<'_>, name: &str) -> Option<&'n Node> {
        let node = self.get(name);
        if node.is_none() {
            cx.error(self.owner, format!("{} is missing the required field `{name}`", self.what));
        }
        node
    }
}

/// "did you mean `x`?" for the closest candidate, else the list of valid names.
pub(crate) fn suggestion<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let candidates: BTreeSet<&str> = candidates.into_iter().collect();
    if let Some(best) = closest(wrong, candidates.iter().copied()) {
        return format!("did you mean `{best}`?");
    }
    if candidates.is_empty() {
        return "none is defined".to_owned();
    }
    if candidates.len() > 12 {
        return "check the spelling".to_owned();
    }
    let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    format!("expected one of {}", list.join(", "))
}

/// Returns the candidate nearest to `wrong` by edit distance, when it is near enough to be a typo.
pub(crate) fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let limit = (wrong.chars().count() / 3).max(1) + 1;
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(&wrong_lower, &candidate.to_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, candidate)| (*distance, *candidate))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_transposed_letters() -> anyhow::Result<()> {
        assert_eq!(closest("exampels", ["examples", "flow", "response"]), Some("examples"));
        Ok(())
    }

    #[test]
    fn closest_ignores_distant_names() -> anyhow::Result<()> {
        assert_eq!(closest("zzz", ["examples", "flow"]), None);
        Ok(())
    }
}
