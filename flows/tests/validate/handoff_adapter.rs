//! `settings.handoff.adapter` with its `webhook:` and `chatwoot:` sections.

use super::*;
use bot_core::bot::HandoffAdapterSettings;

fn settings_with(handoff: &str) -> String {
    format!("settings:\n  languages: [en]\n  handoff:\n{handoff}")
}

fn adapter_of(handoff: &str) -> Result<HandoffAdapterSettings> {
    let bot = TempBot::new(&[("bot.yml", &settings_with(handoff))])?;
    let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
    Ok(loaded.bot.settings.handoff.adapter)
}

#[test]
fn adapter_defaults_to_console() -> Result<()> {
    let adapter = adapter_of("    after_fallbacks: 2\n")?;
    assert_eq!(adapter, HandoffAdapterSettings::Console);
    Ok(())
}

#[test]
fn webhook_adapter_loads_url() -> Result<()> {
    let adapter = adapter_of("    adapter: webhook\n    webhook:\n      url: https://helpdesk.example/lepton\n")?;
    assert_eq!(adapter, HandoffAdapterSettings::Webhook { url: "https://helpdesk.example/lepton".to_owned() });
    Ok(())
}

#[test]
fn chatwoot_adapter_loads_ids() -> Result<()> {
    let adapter = adapter_of("    adapter: chatwoot\n    chatwoot:\n      url: http://127.0.0.1:3000\n      account_id: 1\n      inbox_id: 7\n")?;
    let expected = HandoffAdapterSettings::Chatwoot { url: "http://127.0.0.1:3000".to_owned(), account_id: 1, inbox_id: 7 };
    assert_eq!(adapter, expected);
    Ok(())
}

#[test]
fn misspelt_adapter_gets_suggestion() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", &settings_with("    adapter: chatwot\n"))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 14)?;
    assert!(diagnostic.message.contains("did you mean `chatwoot`?"), "{diagnostic}");
    Ok(())
}

#[test]
fn chosen_adapter_needs_its_section() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", &settings_with("    adapter: webhook\n"))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 14)?;
    assert!(diagnostic.message.contains("settings.handoff.webhook is missing"), "{diagnostic}");
    Ok(())
}

#[test]
fn chatwoot_section_needs_inbox_id() -> Result<()> {
    let handoff = "    adapter: chatwoot\n    chatwoot:\n      url: https://chat.example\n      account_id: 1\n";
    let bot = TempBot::new(&[("bot.yml", &settings_with(handoff))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 5, 5)?;
    assert!(diagnostic.message.contains("required field `inbox_id`"), "{diagnostic}");
    Ok(())
}

#[test]
fn webhook_url_needs_http_scheme() -> Result<()> {
    let handoff = "    adapter: webhook\n    webhook:\n      url: ftp://helpdesk.example\n";
    let bot = TempBot::new(&[("bot.yml", &settings_with(handoff))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 6, 12)?;
    assert!(diagnostic.message.contains("http:// or https://"), "{diagnostic}");
    Ok(())
}

#[test]
fn unknown_webhook_field_gets_suggestion() -> Result<()> {
    let handoff = "    adapter: webhook\n    webhook:\n      url: https://helpdesk.example\n      urls: x\n";
    let bot = TempBot::new(&[("bot.yml", &settings_with(handoff))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 7, 7)?;
    assert!(diagnostic.message.contains("did you mean `url`?"), "{diagnostic}");
    Ok(())
}
