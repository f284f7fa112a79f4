//! Gathering the top-level sections of every file into one set of definitions,
//! reporting names defined twice.

use std::collections::BTreeMap;

use bot_core::bot::KNOWLEDGE_INTENT;

use crate::cx::{suggestion, Cx};
use crate::tree::{Loc, Node};

pub(crate) const SECTIONS: [&str; 6] = ["settings", "intents", "responses", "slots", "flows", "faq"];

/// One named definition: an intent, a response, a slot, a flow or a FAQ entry.
pub(crate) struct Definition<'n> {
    pub name: String,
    pub key: &'n Node,
    pub value: &'n Node,
}

/// A section's definitions in source order, and where each name was first written.
#[derive(Default)]
pub(crate) struct Section<'n> {
    pub definitions: Vec<Definition<'n>>,
    /// Definitions of a name already defined. They are reported as such and converted
    /// only to report their own problems; the bot keeps the first definition.
    pub duplicates: Vec<Definition<'n>>,
    pub first_seen: BTreeMap<String, Loc>,
}

impl Section<'_> {
    pub fn contains(&self, name: &str) -> bool {
        self.first_seen.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.first_seen.keys().map(String::as_str)
    }
}

#[derive(Default)]
pub(crate) struct Sections<'n> {
    /// The `settings:` key and its value.
    pub settings: Option<(&'n Node, &'n Node)>,
    pub intents: Section<'n>,
    pub responses: Section<'n>,
    pub slots: Section<'n>,
    pub flows: Section<'n>,
    pub faq: Section<'n>,
}

impl<'n> Sections<'n> {
    /// Adds the sections of one YAML document.
    pub fn add_document(&mut self, cx: &mut Cx<'_>, root: &'n Node) {
        if root.is_null() {
            return;
        }
        let Some(entries) = root.entries() else {
            let message = format!("expected a mapping of sections (settings, intents, ...) at the top of the file, found {}", root.describe());
            cx.error(root.loc.start(), message);
            return;
        };
        for entry in entries {
            let Some(name) = entry.key.scalar().map(|s| s.text.as_str()) else {
                cx.error(entry.key.loc.start(), format!("expected a section name, found {}", entry.key.describe()));
                continue;
            };
            if name == "settings" {
                self.add_settings(cx, &entry.key, &entry.value);
            } else if !self.add_section(cx, name, &entry.value) {
                let message = format!("unknown section `{name}`; {}", suggestion(name, SECTIONS));
                cx.error(entry.key.loc, message);
            }
        }
        // The parser reports a section written twice in one file as a duplicate key.
        // Its definitions are still gathered, so the names it defines count as defined.
        for entry in root.duplicate_entries() {
            if let Some(name) = entry.key.scalar().map(|s| s.text.as_str()) {
                self.add_section(cx, name, &entry.value);
            }
        }
    }

    /// Adds the definitions of the section `name`, other than `settings`. Returns false
    /// when there is no such section.
    fn add_section(&mut self, cx: &mut Cx<'_>, name: &str, value: &'n Node) -> bool {
        let (section, kind) = match name {
            "intents" => (&mut self.intents, "intent"),
            "responses" => (&mut self.responses, "response"),
            "slots" => (&mut self.slots, "slot"),
            "flows" => (&mut self.flows, "flow"),
            "faq" => (&mut self.faq, "FAQ entry"),
            _ => return false,
        };
        add_definitions(cx, section, value, kind);
        true
    }

    fn add_settings(&mut self, cx: &mut Cx<'_>, key: &'n Node, value: &'n Node) {
        if let Some((first, _)) = self.settings {
            let message = format!("`settings` is defined a second time; the first is at {}; keep one", place(cx, first.loc));
            cx.error(key.loc, message);
            return;
        }
        self.settings = Some((key, value));
    }
}

fn add_definitions<'n>(cx: &mut Cx<'_>, section: &mut Section<'n>, value: &'n Node, kind: &str) {
    if value.is_null() {
        return;
    }
    let Some(entries) = cx.mapping(value, &format!("the {kind} definitions")) else { return };
    for entry in entries {
        let Some(name) = cx.name(&entry.key, &format!("{kind} name")) else { continue };
        if kind == "intent" && name.starts_with('_') {
            let message = format!("intent names starting with `_` are reserved for built-in intents such as `{KNOWLEDGE_INTENT}`; rename `{name}`");
            cx.error(entry.key.loc, message);
            continue;
        }
        if let Some(first) = section.first_seen.get(&name) {
            let message = format!("{kind} `{name}` is defined twice; the first definition is at {}", place(cx, *first));
            cx.error(entry.key.loc, message);
            section.duplicates.push(Definition { name, key: &entry.key, value: &entry.value });
            continue;
        }
        section.first_seen.insert(name.clone(), entry.key.loc);
        section.definitions.push(Definition { name, key: &entry.key, value: &entry.value });
    }
    for entry in value.duplicate_entries() {
        let Some(name) = entry.key.scalar().map(|scalar| scalar.text.clone()) else { continue };
        section.duplicates.push(Definition { name, key: &entry.key, value: &entry.value });
    }
}

/// `path:line:column` of a location, for messages that point at a second place.
pub(crate) fn place(cx: &Cx<'_>, loc: Loc) -> String {
    format!("{}:{}:{}", cx.sources[loc.file].shown.display(), loc.line, loc.column)
}
