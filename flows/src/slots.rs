//! The `slots:` section.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bot_core::bot::{Choice, SlotDefinition, SlotKind};
use bot_core::{Lang, SlotName};

use crate::convert::Converter;
use crate::cx::suggestion;
use crate::sections::{place, Definition};
use crate::tree::{Loc, Node};

const SLOT_TYPES: [&str; 6] = ["text", "number", "email", "phone", "regex", "choice"];
const ALL_SLOT_FIELDS: [&str; 5] = ["type", "min", "max", "pattern", "choices"];

impl Converter<'_, '_> {
    pub fn convert_slots(&mut self) -> BTreeMap<SlotName, SlotDefinition> {
        let mut slots = BTreeMap::new();
        let sections = self.sections;
        for definition in &sections.slots.definitions {
            let Some(kind) = self.convert_slot(definition) else { continue };
            if let SlotKind::Choice { choices } = &kind {
                self.choice_values.insert(definition.name.clone(), choices.iter().map(|c| c.value.clone()).collect());
            }
            slots.insert(SlotName::new(definition.name.clone()), SlotDefinition { kind });
        }
        for duplicate in &sections.slots.duplicates {
            self.check_discarded(|converter| drop(converter.convert_slot(duplicate)));
        }
        slots
    }

    fn convert_slot(&mut self, definition: &Definition<'_>) -> Option<SlotKind> {
        let what = format!("slot `{}`", definition.name);
        let slot_type = self.slot_type(definition);
        let allowed: &[&str] = match slot_type.as_deref() {
            Some("number") => &["type", "min", "max"],
            Some("regex") => &["type", "pattern"],
            Some("choice") => &["type", "choices"],
            Some(_) => &["type"],
            None => &ALL_SLOT_FIELDS,
        };
        let fields = self.cx.fields(definition.value, definition.key.loc, &what, allowed)?;
        fields.require(&mut self.cx, "type");

        match slot_type?.as_str() {
            "text" => Some(SlotKind::Text),
            "email" => Some(SlotKind::Email),
            "phone" => Some(SlotKind::Phone),
            "number" => {
                let min = fields.get("min").and_then(|n| self.cx.number(n, "min"));
                let max = fields.get("max").and_then(|n| self.cx.number(n, "max"));
                if let (Some(low), Some(high), Some(node)) = (min, max, fields.get("max")) {
                    if low > high {
                        self.cx.error(node.loc, format!("max ({high}) is less than min ({low}) in {what}; swap them"));
                    }
                }
                Some(SlotKind::Number { min, max })
            }
            "regex" => {
                let node = fields.require(&mut self.cx, "pattern")?;
                let pattern = self.cx.string(node, "a regular expression")?;
                if let Err(error) = regex::Regex::new(&pattern) {
                    let last_line = error.to_string().lines().last().unwrap_or_default().trim().to_owned();
                    let reason = last_line.strip_prefix("error: ").unwrap_or(&last_line).to_owned();
                    self.cx.error(node.loc, format!("invalid regular expression in {what}: {reason}"));
                    return None;
                }
                Some(SlotKind::Regex { pattern })
            }
            _ => {
                let node = fields.require(&mut self.cx, "choices")?;
                let choices = self.read_choices(node, &what)?;
                Some(SlotKind::Choice { choices })
            }
        }
    }

    /// Reads the slot's `type`, when the mapping has a valid one.
    fn slot_type(&mut self, definition: &Definition<'_>) -> Option<String> {
        let node = definition.value.entries()?.iter().find(|e| e.key.scalar().is_some_and(|s| s.text == "type"))?;
        let name = self.cx.string(&node.value, "a slot type")?;
        if SLOT_TYPES.contains(&name.as_str()) {
            return Some(name);
        }
        let message = format!("unknown slot type `{name}`; {}", suggestion(&name, SLOT_TYPES));
        self.cx.error(node.value.loc, message);
        None
    }

    fn read_choices(&mut self, node: &Node, what: &str) -> Option<Vec<Choice>> {
        let entries = self.cx.mapping(node, &format!("the choices of {what}"))?;
        if entries.is_empty() {
            self.cx.error(node.loc, format!("{what} has no choices; add at least one"));
            return None;
        }
        let mut choices = Vec::new();
        let mut owners = SynonymOwners::new();
        for entry in entries {
            let value = self.cx.text(&entry.key, "a choice value");
            let label = value.clone().unwrap_or_else(|| scalar_label(&entry.key));
            owners.insert(normalise_synonym(&label), (label.clone(), entry.key.loc));
            let mut synonyms = BTreeMap::new();
            if !entry.value.is_null() {
                synonyms = self.read_synonyms(&entry.value, &label, &mut owners).unwrap_or_default();
            }
            if let Some(value) = value {
                choices.push(Choice { value, synonyms });
            }
        }
        Some(choices)
    }

    fn read_synonyms(&mut self, node: &Node, value: &str, owners: &mut SynonymOwners) -> Option<BTreeMap<Lang, Vec<String>>> {
        let what = format!("the synonyms of choice `{value}`");
        let entries = self.cx.mapping(node, &what)?;
        let mut synonyms = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for entry in entries {
            let Some(lang) = self.language(&entry.key) else { continue };
            let Some(texts) = self.cx.strings(&entry.value, &format!("a synonym of `{value}`")) else { continue };
            for (text, loc) in &texts {
                self.check_synonym_owner(text, *loc, value, owners);
            }
            if seen.insert(lang.clone()) {
                synonyms.insert(lang, texts.into_iter().map(|(text, _)| text).collect());
            }
        }
        Some(synonyms)
    }

    /// Reports a synonym that also stands for another value of the same slot, since
    /// the answer could then mean either.
    fn check_synonym_owner(&mut self, text: &str, loc: Loc, value: &str, owners: &mut SynonymOwners) {
        let key = normalise_synonym(text);
        match owners.get(&key) {
            Some((owner, _)) if owner == value => {}
            Some((owner, first)) => {
                let message = format!(
                    "synonym `{text}` of choice `{value}` also matches choice `{owner}` (at {}); keep it in one choice",
                    place(&self.cx, *first)
                );
                self.cx.error(loc, message);
            }
            None => {
                owners.insert(key, (value.to_owned(), loc));
            }
        }
    }
}

/// For each normalised synonym or value of a choice slot, the value it stands for
/// and where it was first written.
type SynonymOwners = HashMap<String, (String, Loc)>;

/// Folds a synonym as choice matching does (case and surrounding spaces), so two
/// synonyms that match the same answers compare equal.
fn normalise_synonym(text: &str) -> String {
    text.trim().to_lowercase()
}

fn scalar_label(node: &Node) -> String {
    node.scalar().map(|s| s.text.clone()).unwrap_or_default()
}
