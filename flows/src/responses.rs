//! The `responses:` section.

use std::collections::{BTreeMap, BTreeSet};

use bot_core::bot::{Button, Response, ResponseVariant};
use bot_core::ResponseId;

use crate::convert::{Converter, Kind};
use crate::sections::Definition;
use crate::tree::Node;

/// Placeholders the engine fills in for some reserved responses, besides slots and
/// variables: `handoff_agent_joined` names the agent who joined, and
/// `handoff_transferred` the agent who took the conversation over.
// NOTE: mirrors the values bot-core's engine passes when it renders these responses
// (engine/agent.rs); bot-core exports no list of them yet.
const RESERVED_PLACEHOLDERS: [(&str, &[&str]); 2] = [("handoff_agent_joined", &["agent"]), ("handoff_transferred", &["agent"])];

impl Converter<'_, '_> {
    pub fn convert_responses(&mut self) -> BTreeMap<ResponseId, Response> {
        let mut responses = BTreeMap::new();
        let sections = self.sections;
        for definition in &sections.responses.definitions {
            if let Some(response) = self.convert_response(definition) {
                responses.insert(ResponseId::new(definition.name.clone()), response);
            }
        }
        for duplicate in &sections.responses.duplicates {
            self.check_discarded(|converter| drop(converter.convert_response(duplicate)));
        }
        responses
    }

    fn convert_response(&mut self, definition: &Definition<'_>) -> Option<Response> {
        let what = format!("response `{}`", definition.name);
        self.extra_placeholders = RESERVED_PLACEHOLDERS
            .iter()
            .find(|(response, _)| *response == definition.name)
            .map_or(&[], |(_, names)| names);
        let response = self.convert_response_variants(definition, &what);
        self.extra_placeholders = &[];
        response
    }

    fn convert_response_variants(&mut self, definition: &Definition<'_>, what: &str) -> Option<Response> {
        let entries = self.cx.mapping(definition.value, &format!("{what} (a mapping of language to variants)"))?;
        let mut variants = BTreeMap::new();
        let mut present = BTreeSet::new();
        for entry in entries {
            let Some(lang) = self.language(&entry.key) else { continue };
            present.insert(lang.clone());
            let Some(items) = self.cx.list(&entry.value, &format!("the `{lang}` variants of {what}")) else { continue };
            if items.is_empty() {
                self.cx.error(entry.value.loc, format!("{what} has no `{lang}` variants; add at least one"));
                continue;
            }
            let converted: Vec<ResponseVariant> = items.iter().filter_map(|item| self.convert_variant(item)).collect();
            variants.insert(lang, converted);
        }
        self.check_translations(definition.key.loc, what, &present);
        Some(Response { variants })
    }

    fn convert_variant(&mut self, node: &Node) -> Option<ResponseVariant> {
        if node.scalar().is_some() {
            let text = self.interpolated(node, "a response text")?;
            return Some(ResponseVariant { text, buttons: Vec::new() });
        }
        let fields = self.cx.fields(node, node.loc.start(), "a response variant", &["text", "buttons"])?;
        let text = fields.require(&mut self.cx, "text").and_then(|n| self.interpolated(n, "a response text"));
        let mut buttons = Vec::new();
        if let Some(list) = fields.get("buttons").and_then(|n| self.cx.list(n, "buttons")) {
            buttons = list.iter().filter_map(|item| self.convert_button(item)).collect();
        }
        Some(ResponseVariant { text: text?, buttons })
    }

    fn convert_button(&mut self, node: &Node) -> Option<Button> {
        let fields = self.cx.fields(node, node.loc.start(), "a button", &["title", "payload"])?;
        let title = fields.require(&mut self.cx, "title").and_then(|n| self.interpolated(n, "a button title"));
        let payload = fields.require(&mut self.cx, "payload").and_then(|n| self.payload(n));
        Some(Button { title: title?, payload: payload? })
    }

    /// Reads a button payload: text sent as the customer's message, where `/name`
    /// selects intent `name` directly.
    fn payload(&mut self, node: &Node) -> Option<String> {
        let payload = self.interpolated(node, "a button payload")?;
        if let Some(intent) = payload.strip_prefix('/') {
            let at = self.cx.locate_within(node.loc, &payload);
            self.reference(Kind::Intent, intent.trim(), at);
        }
        Some(payload)
    }
}
