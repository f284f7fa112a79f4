//! The `http` step: method, URL, JSON body and the targets for its response statuses.

use std::collections::BTreeMap;

use bot_core::bot::{HttpStep, Target};
use bot_core::SlotName;

use crate::convert::{Converter, Kind};
use crate::cx::{optional, suggestion};
use crate::flows::FlowScope;
use crate::tree::{Loc, Node, Value};

const HTTP_FIELDS: [&str; 7] = ["method", "url", "body", "timeout_ms", "save", "on_status", "on_error"];
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl Converter<'_, '_> {
    /// Converts the value of an `http:` key written at `owner`.
    pub(crate) fn convert_http(&mut self, value: &Node, owner: Loc, scope: &FlowScope) -> Option<HttpStep> {
        let fields = self.cx.fields(value, owner, "an http step", &HTTP_FIELDS)?;
        let method = fields.require(&mut self.cx, "method").and_then(|n| self.http_method(n));
        let url = fields.require(&mut self.cx, "url").and_then(|n| self.http_url(n));
        let body = fields.get("body").map(|n| self.json(n));
        // Without `timeout_ms` the server's default applies (`--http-timeout-ms`).
        let timeout_ms = fields.get("timeout_ms").map(|node| self.cx.integer(node, "timeout_ms", 1, u64::MAX));
        let save = fields.get("save").map(|n| self.http_save(n)).unwrap_or_else(|| Some(BTreeMap::new()));
        let on_status = fields.get("on_status").map(|n| self.http_on_status(n, scope)).unwrap_or_else(|| Some(BTreeMap::new()));
        let on_error = fields.get("on_error").map(|n| self.target(n, scope));
        Some(HttpStep {
            method: method?,
            url: url?,
            body: optional(body)?,
            timeout_ms: optional(timeout_ms)?,
            save: save?,
            on_error: optional(on_error)?,
            on_status: on_status?,
        })
    }

    fn http_method(&mut self, node: &Node) -> Option<String> {
        let method = self.cx.string(node, "an HTTP method")?;
        if METHODS.contains(&method.as_str()) {
            return Some(method);
        }
        let upper = method.to_ascii_uppercase();
        let hint = if METHODS.contains(&upper.as_str()) { format!("write `{upper}`") } else { suggestion(&method, METHODS) };
        self.cx.error(node.loc, format!("unsupported HTTP method `{method}`; {hint}"));
        None
    }

    fn http_url(&mut self, node: &Node) -> Option<String> {
        let url = self.interpolated(node, "a URL")?;
        let absolute = url.starts_with("http://") || url.starts_with("https://") || url.starts_with('{');
        if !absolute {
            let message = format!("URL `{url}` is not absolute; start it with http://, https:// or a placeholder such as {{server_url}}");
            self.cx.error(node.loc, message);
            return None;
        }
        Some(url)
    }

    /// Reads `save:`, a mapping of slot name to JSON pointer into the response body.
    fn http_save(&mut self, node: &Node) -> Option<BTreeMap<SlotName, String>> {
        let entries = self.cx.mapping(node, "save (a mapping of slot name to JSON pointer)")?;
        let mut save = BTreeMap::new();
        let mut valid = true;
        for entry in entries {
            let slot = self.reference_node(Kind::Slot, &entry.key);
            if let Some(slot) = &slot {
                self.usage.filled_slots.insert(slot.clone());
            }
            let pointer = self.cx.string(&entry.value, "a JSON pointer");
            if let Some(text) = &pointer {
                if !text.is_empty() && !text.starts_with('/') {
                    let message = format!("invalid JSON pointer `{text}`; it starts with `/`, such as `/status` or `/items/0/name`");
                    self.cx.error(entry.value.loc, message);
                    valid = false;
                }
            }
            match (slot, pointer) {
                (Some(slot), Some(pointer)) => {
                    save.insert(SlotName::new(slot), pointer);
                }
                _ => valid = false,
            }
        }
        valid.then_some(save)
    }

    fn http_on_status(&mut self, node: &Node, scope: &FlowScope) -> Option<BTreeMap<u16, Target>> {
        let entries = self.cx.mapping(node, "on_status (a mapping of HTTP status to target)")?;
        let mut on_status = BTreeMap::new();
        let mut valid = true;
        for entry in entries {
            let status = self.cx.string(&entry.key, "an HTTP status").and_then(|text| match text.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Some(code),
                _ => {
                    self.cx.error(entry.key.loc, format!("invalid HTTP status `{text}`; use a number from 100 to 599"));
                    None
                }
            });
            let target = self.target(&entry.value, scope);
            match (status, target) {
                (Some(status), Some(target)) => {
                    on_status.insert(status, target);
                }
                _ => valid = false,
            }
        }
        valid.then_some(on_status)
    }

    /// Converts a YAML body to JSON with the YAML 1.2 core schema, checking the
    /// placeholders of its strings.
    fn json(&mut self, node: &Node) -> Option<serde_json::Value> {
        match &node.value {
            Value::Sequence(items) => {
                let values: Option<Vec<_>> = items.iter().map(|item| self.json(item)).collect();
                values.map(serde_json::Value::Array)
            }
            Value::Mapping { entries, .. } => {
                let mut object = serde_json::Map::new();
                let mut valid = true;
                for entry in entries {
                    let key = self.cx.string(&entry.key, "a JSON field name");
                    let value = self.json(&entry.value);
                    match (key, value) {
                        (Some(key), Some(value)) => {
                            object.insert(key, value);
                        }
                        _ => valid = false,
                    }
                }
                valid.then_some(serde_json::Value::Object(object))
            }
            Value::Scalar(scalar) if scalar.is_null() => Some(serde_json::Value::Null),
            Value::Scalar(scalar) => {
                if let Some(flag) = scalar.core_bool() {
                    return Some(serde_json::Value::Bool(flag));
                }
                if let Some(number) = scalar.number() {
                    return json_number(&scalar.text, number, node, self);
                }
                let text = self.cx.string(node, "a JSON string")?;
                self.check_placeholders(&text, node.loc);
                Some(serde_json::Value::String(text))
            }
        }
    }
}

fn json_number(text: &str, number: f64, node: &Node, converter: &mut Converter<'_, '_>) -> Option<serde_json::Value> {
    if let Ok(integer) = text.parse::<i64>() {
        return Some(serde_json::Value::from(integer));
    }
    match serde_json::Number::from_f64(number) {
        Some(number) => Some(serde_json::Value::Number(number)),
        None => {
            converter.cx.error(node.loc, format!("`{text}` has no JSON form; JSON numbers are finite"));
            None
        }
    }
}
