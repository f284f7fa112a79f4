//! `settings.handoff.adapter` and its `webhook:` and `chatwoot:` sections.

use bot_core::bot::HandoffAdapterSettings;

use crate::convert::Converter;
use crate::cx::{suggestion, Fields};
use crate::tree::{Loc, Node};

/// The fields of `settings.handoff` that this file reads.
pub(crate) const ADAPTER_FIELDS: [&str; 3] = ["adapter", "webhook", "chatwoot"];

impl Converter<'_, '_> {
    /// Reads the adapter choice and the section of the chosen adapter. A section
    /// of an adapter not chosen is still checked, so that switching adapters
    /// does not reveal old mistakes.
    pub(crate) fn read_handoff_adapter(&mut self, fields: &Fields<'_>) -> HandoffAdapterSettings {
        let webhook = fields.entry("webhook").and_then(|entry| self.read_webhook_section(&entry.value, entry.key.loc));
        let chatwoot = fields.entry("chatwoot").and_then(|entry| self.read_chatwoot_section(&entry.value, entry.key.loc));
        let Some(node) = fields.get("adapter") else { return HandoffAdapterSettings::Console };
        let Some(name) = self.cx.string(node, "settings.handoff.adapter") else { return HandoffAdapterSettings::Console };

        match name.as_str() {
            "console" => HandoffAdapterSettings::Console,
            "webhook" => {
                if !fields.has("webhook") {
                    self.cx.error(node.loc, "settings.handoff.adapter is `webhook` but settings.handoff.webhook is missing; add it with the helpdesk's `url`");
                }
                webhook.unwrap_or_default()
            }
            "chatwoot" => {
                if !fields.has("chatwoot") {
                    self.cx.error(node.loc, "settings.handoff.adapter is `chatwoot` but settings.handoff.chatwoot is missing; add it with `url`, `account_id` and `inbox_id`");
                }
                chatwoot.unwrap_or_default()
            }
            other => {
                let hint = suggestion(other, HandoffAdapterSettings::NAMES);
                self.cx.error(node.loc, format!("unknown handoff adapter `{other}`; {hint}"));
                HandoffAdapterSettings::Console
            }
        }
    }

    fn read_webhook_section(&mut self, node: &Node, owner: Loc) -> Option<HandoffAdapterSettings> {
        let fields = self.cx.fields(node, owner, "settings.handoff.webhook", &["url"])?;
        let url = self.read_http_url(&fields, "settings.handoff.webhook")?;
        Some(HandoffAdapterSettings::Webhook { url })
    }

    fn read_chatwoot_section(&mut self, node: &Node, owner: Loc) -> Option<HandoffAdapterSettings> {
        let what = "settings.handoff.chatwoot";
        let fields = self.cx.fields(node, owner, what, &["url", "account_id", "inbox_id"])?;
        let url = self.read_http_url(&fields, what);
        let account_id = fields.require(&mut self.cx, "account_id").and_then(|n| self.cx.integer(n, "settings.handoff.chatwoot.account_id", 1, u64::MAX));
        let inbox_id = fields.require(&mut self.cx, "inbox_id").and_then(|n| self.cx.integer(n, "settings.handoff.chatwoot.inbox_id", 1, u64::MAX));
        Some(HandoffAdapterSettings::Chatwoot { url: url?, account_id: account_id?, inbox_id: inbox_id? })
    }

    /// Reads the required `url` field: an `http://` or `https://` URL with a host.
    fn read_http_url(&mut self, fields: &Fields<'_>, what: &str) -> Option<String> {
        let node = fields.require(&mut self.cx, "url")?;
        let url = self.cx.text(node, &format!("{what}.url"))?;
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        let has_host = rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !has_host {
            self.cx.error(node.loc, format!("{what}.url must be an http:// or https:// URL with a host, found `{url}`"));
            return None;
        }
        Some(url)
    }
}
