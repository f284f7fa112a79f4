//! The `intents:` section, and the check that no example belongs to two intents.

use std::collections::{BTreeMap, HashMap};

use bot_core::bot::{Intent, IntentAction};
use bot_core::{FlowId, IntentId, Lang, ResponseId};

use crate::convert::{Converter, Kind};
use crate::sections::{place, Definition};
use crate::tree::Loc;

/// Intents with fewer examples than this in a language get a warning: the classifier
/// learns little from one or two phrasings.
pub const MIN_EXAMPLES: usize = 5;

/// The first occurrence of an example: the intent it belongs to and its location.
struct Written {
    intent: String,
    loc: Loc,
}

impl Converter<'_, '_> {
    pub fn convert_intents(&mut self) -> BTreeMap<IntentId, Intent> {
        let mut intents = BTreeMap::new();
        let mut examples_seen: HashMap<String, Written> = HashMap::new();
        let sections = self.sections;
        for definition in &sections.intents.definitions {
            if let Some(intent) = self.convert_intent(definition, &mut examples_seen) {
                intents.insert(IntentId::new(definition.name.clone()), intent);
            }
        }
        for duplicate in &sections.intents.duplicates {
            self.check_discarded(|converter| drop(converter.convert_intent(duplicate, &mut examples_seen)));
        }
        intents
    }

    fn convert_intent(&mut self, definition: &Definition<'_>, seen: &mut HashMap<String, Written>) -> Option<Intent> {
        let what = format!("intent `{}`", definition.name);
        let allowed = ["examples", "flow", "response", "interrupts"];
        let fields = self.cx.fields(definition.value, definition.key.loc, &what, &allowed)?;

        let examples = fields.require(&mut self.cx, "examples").and_then(|node| {
            let examples = self.read_examples(node, definition, seen)?;
            self.warn_few_examples(definition.key.loc, &what, &examples);
            Some(examples)
        });
        let action = match (fields.get("flow"), fields.get("response")) {
            (Some(flow), None) => self.reference_node(Kind::Flow, flow).map(|name| IntentAction::Flow(FlowId::new(name))),
            (None, Some(response)) => {
                self.reference_node(Kind::Response, response).map(|name| IntentAction::Respond(ResponseId::new(name)))
            }
            (Some(_), Some(response)) => {
                self.cx.error(response.loc, format!("{what} has both `flow` and `response`; keep one of them"));
                None
            }
            (None, None) => {
                self.cx.error(definition.key.loc, format!("{what} has neither `flow` nor `response`; add one of them"));
                None
            }
        };
        let interrupts = match fields.get("interrupts") {
            Some(node) => self.cx.bool(node, "interrupts")?,
            None => false,
        };
        Some(Intent { examples: examples?, action: action?, interrupts })
    }

    fn read_examples(
        &mut self,
        node: &crate::tree::Node,
        definition: &Definition<'_>,
        seen: &mut HashMap<String, Written>,
    ) -> Option<BTreeMap<Lang, Vec<String>>> {
        let entries = self.cx.mapping(node, "examples (a mapping of language to example lists)")?;
        let mut examples = BTreeMap::new();
        for entry in entries {
            let Some(lang) = self.language(&entry.key) else { continue };
            let Some(texts) = self.cx.strings(&entry.value, "an example") else { continue };
            let mut kept = Vec::new();
            for (text, loc) in texts {
                if self.is_new_example(&text, loc, &definition.name, seen) {
                    let place = self.cx.example_place(loc);
                    self.example_places.insert(&definition.name, &text, place);
                    kept.push(text);
                }
            }
            examples.entry(lang).or_insert_with(Vec::new).extend(kept);
        }
        Some(examples)
    }

    /// Records an example, reporting it when an earlier one normalises to the same text.
    fn is_new_example(&mut self, text: &str, loc: Loc, intent: &str, seen: &mut HashMap<String, Written>) -> bool {
        let key = normalise_example(text);
        let Some(first) = seen.get(&key) else {
            seen.insert(key, Written { intent: intent.to_owned(), loc });
            return true;
        };
        let at = place(&self.cx, first.loc);
        if first.intent == intent {
            self.cx.warning(loc, format!("example `{text}` is repeated in intent `{intent}` (first at {at}); remove one"));
        } else {
            let message = format!(
                "example `{text}` is also an example of intent `{}` (at {at}); the classifier cannot tell them apart, so keep it in one intent",
                first.intent
            );
            self.cx.error(loc, message);
        }
        false
    }

    fn warn_few_examples(&mut self, owner: Loc, what: &str, examples: &BTreeMap<Lang, Vec<String>>) {
        let Some(languages) = self.languages.clone() else { return };
        for lang in languages {
            let count = examples.get(&lang).map_or(0, Vec::len);
            if count < MIN_EXAMPLES {
                let message = format!(
                    "{what} has {count} `{lang}` {}; add at least {MIN_EXAMPLES} for reliable recognition",
                    crate::diagnostic::plural(count, "example")
                );
                self.cx.warning(owner, message);
            }
        }
    }
}

/// Lowercases and collapses runs of whitespace, so `Where is  my Order` and
/// `where is my order` count as the same example.
pub(crate) fn normalise_example(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}
