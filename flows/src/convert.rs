//! The state shared while converting the sections into a `BotDefinition`: what is
//! defined, which languages are declared, and what has been used so far.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use bot_core::engine::RESERVED_RESPONSES;
use bot_core::Lang;

use crate::cx::{is_name_char, suggestion, Cx};
use crate::diagnostic::Diagnostic;
use crate::examples::ExamplePlaces;
use crate::sections::Sections;
use crate::tree::{Loc, Node};

/// The kinds of definition a reference can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Intent,
    Response,
    Slot,
    Flow,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Intent => "intent",
            Kind::Response => "response",
            Kind::Slot => "slot",
            Kind::Flow => "flow",
        })
    }
}

/// Names that something refers to, for the "never used" warnings.
#[derive(Default)]
pub(crate) struct Usage {
    pub responses: BTreeSet<String>,
    /// Slots that an `ask` step or an HTTP `save` fills.
    pub filled_slots: BTreeSet<String>,
    pub flows: BTreeSet<String>,
}

pub(crate) struct Converter<'s, 'n> {
    pub cx: Cx<'s>,
    pub sections: &'n Sections<'n>,
    /// The declared languages; `None` when `settings` is missing or invalid, which
    /// turns off the checks that depend on them.
    pub languages: Option<Vec<Lang>>,
    pub variables: BTreeSet<String>,
    /// The names written in files that could not be parsed. Those files may define or
    /// use them, so "undefined" and "never used" are not reported for these names.
    pub unparsed: Unparsed,
    /// The location of each step of each converted flow, for the loop check.
    pub step_locs: BTreeMap<String, Vec<Loc>>,
    pub usage: Usage,
    /// The values of each choice slot, to check branch conditions against.
    pub choice_values: BTreeMap<String, Vec<String>>,
    /// Placeholders the engine fills in for the response being converted, besides
    /// slots and variables (`{agent}` in `handoff_agent_joined`).
    pub extra_placeholders: &'static [&'static str],
    /// The file, line and column of each kept intent example and FAQ question.
    pub example_places: ExamplePlaces,
}

/// The words of the files that have YAML syntax errors: each run of letters, digits,
/// `_` and `-`, which is every name such a file could define or refer to.
#[derive(Default)]
pub(crate) struct Unparsed {
    words: HashSet<String>,
}

impl Unparsed {
    pub fn add(&mut self, text: &str) {
        let words = text.split(|c: char| !is_name_char(c)).filter(|word| !word.is_empty());
        self.words.extend(words.map(str::to_owned));
    }

    pub fn mentions(&self, name: &str) -> bool {
        self.words.contains(name)
    }
}

/// The variable the runtime adds: the base URL the server listens on.
pub(crate) const SERVER_URL: &str = "server_url";

impl<'s, 'n> Converter<'s, 'n> {
    pub fn new(cx: Cx<'s>, sections: &'n Sections<'n>, unparsed: Unparsed) -> Self {
        Self {
            cx,
            sections,
            languages: None,
            variables: BTreeSet::new(),
            unparsed,
            step_locs: BTreeMap::new(),
            usage: Usage::default(),
            choice_values: BTreeMap::new(),
            extra_placeholders: &[],
            example_places: ExamplePlaces::default(),
        }
    }

    fn defined(&self, kind: Kind) -> &crate::sections::Section<'n> {
        match kind {
            Kind::Intent => &self.sections.intents,
            Kind::Response => &self.sections.responses,
            Kind::Slot => &self.sections.slots,
            Kind::Flow => &self.sections.flows,
        }
    }

    /// Checks that `name` is defined, recording its use. Reserved responses count as
    /// defined because the engine has built-in texts for them. Returns false only when
    /// `name` is certainly undefined.
    pub fn reference(&mut self, kind: Kind, name: &str, loc: Loc) -> bool {
        match kind {
            Kind::Response => self.usage.responses.insert(name.to_owned()),
            Kind::Flow => self.usage.flows.insert(name.to_owned()),
            Kind::Intent | Kind::Slot => false,
        };
        let section = self.defined(kind);
        let built_in = kind == Kind::Response && RESERVED_RESPONSES.contains(&name);
        if section.contains(name) || built_in || self.unparsed.mentions(name) {
            return true;
        }
        let hint = suggestion(name, section.names());
        self.cx.error(loc, format!("undefined {kind} `{name}`; {hint}"));
        false
    }

    /// Runs `check` on a definition that the bot does not keep (the second definition of
    /// a name), keeping the errors it reports and dropping its warnings and uses.
    pub fn check_discarded(&mut self, check: impl FnOnce(&mut Self)) {
        let usage = std::mem::take(&mut self.usage);
        let before = self.cx.diagnostics.len();
        check(self);
        let reported = self.cx.diagnostics.split_off(before);
        self.cx.diagnostics.extend(reported.into_iter().filter(Diagnostic::is_error));
        self.usage = usage;
    }

    /// Reads a name and checks that it refers to a definition of `kind`.
    pub fn reference_node(&mut self, kind: Kind, node: &Node) -> Option<String> {
        let name = self.cx.name(node, &format!("{kind} name"))?;
        self.reference(kind, &name, node.loc);
        Some(name)
    }

    /// Reads a language code used as a key and checks it is declared in settings.
    pub fn language(&mut self, node: &Node) -> Option<Lang> {
        let code = self.cx.string(node, "a language code")?;
        let Some(languages) = &self.languages else { return Some(Lang::new(code)) };
        if languages.iter().any(|lang| lang.as_str() == code) {
            return Some(Lang::new(code));
        }
        let declared: Vec<&str> = languages.iter().map(Lang::as_str).collect();
        let message = format!(
            "language `{code}` is not declared in settings.languages ({}); add it there or remove these texts",
            declared.join(", ")
        );
        self.cx.error(node.loc, message);
        None
    }

    /// Reports each declared language missing from `present`.
    pub fn check_translations(&mut self, owner: Loc, what: &str, present: &BTreeSet<Lang>) {
        let Some(languages) = self.languages.clone() else { return };
        for lang in languages {
            if !present.contains(&lang) {
                self.cx.error(owner, format!("{what} has no `{lang}` translation; add a `{lang}:` list"));
            }
        }
    }

    /// Reads a string with `{name}` placeholders and checks that each names a slot or a
    /// variable. `{{` and `}}` are literal braces.
    pub fn interpolated(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.cx.text(node, what)?;
        self.check_placeholders(&text, node.loc);
        Some(text)
    }

    pub fn check_placeholders(&mut self, text: &str, loc: Loc) {
        for piece in placeholders(text) {
            match piece {
                Placeholder::Name(name) => self.check_placeholder_name(name, loc),
                Placeholder::Invalid(written) => {
                    let at = self.cx.locate_within(loc, written);
                    let message = format!("invalid placeholder `{written}`; write `{{name}}` with a slot or variable name, or `{{{{` and `}}}}` for literal braces");
                    self.cx.error(at, message);
                }
                Placeholder::Unclosed(written) => {
                    let at = self.cx.locate_within(loc, written);
                    self.cx.error(at, format!("unclosed `{{` in `{written}`; close the placeholder or write `{{{{` for a literal brace"));
                }
                Placeholder::StrayClose => {
                    let at = self.cx.locate_within(loc, "}");
                    self.cx.error(at, "unmatched `}`; write `}}` for a literal brace");
                }
            }
        }
    }

    fn check_placeholder_name(&mut self, name: &str, loc: Loc) {
        let known = self.sections.slots.contains(name)
            || self.variables.contains(name)
            || name == SERVER_URL
            || self.extra_placeholders.contains(&name);
        if known || self.unparsed.mentions(name) {
            return;
        }
        let at = self.cx.locate_within(loc, &format!("{{{name}}}"));
        let candidates: Vec<&str> = self
            .sections
            .slots
            .names()
            .chain(self.variables.iter().map(String::as_str))
            .chain([SERVER_URL])
            .chain(self.extra_placeholders.iter().copied())
            .collect();
        let hint = suggestion(name, candidates);
        self.cx.error(at, format!("placeholder `{{{name}}}` names neither a slot nor a variable; {hint}"));
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placeholder<'t> {
    Name(&'t str),
    /// `{...}` whose content is not a name, with its braces.
    Invalid(&'t str),
    /// A `{` with no `}` after it: the text from the brace to the end.
    Unclosed(&'t str),
    StrayClose,
}

/// Splits out the placeholders of an interpolated string. Spaces around a name are
/// allowed (`{ name }`), as the engine's interpolation trims them.
pub(crate) fn placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['{', '}']) {
        let tail = &rest[at..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            found.push(Placeholder::StrayClose);
            rest = after;
            continue;
        }
        let Some(close) = tail.find('}') else {
            found.push(Placeholder::Unclosed(tail));
            break;
        };
        let inner = tail[1..close].trim();
        let whole = &tail[..=close];
        if !inner.is_empty() && inner.chars().all(is_name_char) {
            found.push(Placeholder::Name(inner));
        } else {
            found.push(Placeholder::Invalid(whole));
        }
        rest = &tail[close + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_finds_names_and_skips_doubled_braces() -> anyhow::Result<()> {
        let found = placeholders("Hi {name}, {{literal}} at { server_url }");
        assert_eq!(found, vec![Placeholder::Name("name"), Placeholder::Name("server_url")]);
        Ok(())
    }

    #[test]
    fn placeholders_accepts_chinese_names() -> anyhow::Result<()> {
        assert_eq!(placeholders("订单 {订单号}"), vec![Placeholder::Name("订单号")]);
        Ok(())
    }

    #[test]
    fn placeholders_reports_bad_braces() -> anyhow::Result<()> {
        let found = placeholders("a {b c} d } e {f");
        assert_eq!(found, vec![Placeholder::Invalid("{b c}"), Placeholder::StrayClose, Placeholder::Unclosed("{f")]);
        Ok(())
    }
}
