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
            match name {
                "settings" => self.add_settings(cx, &entry.key, &entry.value),
                "intents" => add_definitions(cx, &mut self.intents, &entry.value, "intent"),
                "responses" => add_definitions(cx, &mut self.responses, &entry.value, "response"),
                "slots" => add_definitions(cx, &mut self.slots, &entry.value, "slot"),
                "flows" => add_definitions(cx, &mut self.flows, &entry.value, "flow"),
                "faq" => add_definitions(cx, &mut self.faq, &entry.value, "FAQ entry"),
                other => {
                    let message = format!("unknown section `{other}`; {}", suggestion(other, SECTIONS));
                    cx.error(entry.key.loc, message);
                }
            }
        }
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
            continue;
        }
        section.first_seen.insert(name.clone(), entry.key.loc);
        section.definitions.push(Definition { name, key: &entry.key, value: &entry.value });
    }
}

/// `path:line:column` of a location, for messages that point at a second place.
pub(crate) fn place(cx: &Cx<'_>, loc: Loc) -> String {
    format!("{}:{}:{}", cx.sources[loc.file].shown.display(), loc.line, loc.column)
}
