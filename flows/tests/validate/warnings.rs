//! The warnings about unused responses and intents with few examples, and the
//! places of examples that `LoadedBot` exposes for the model checks.

use super::*;
use bot_core::bot::KNOWLEDGE_INTENT;
use lepton_flows::{validate_and_load, MIN_EXAMPLES};

const SETTINGS: &str = "settings:\n  languages: [en, zh]\n";

/// Five examples in each language, the fewest that get no warning.
const ENOUGH: &str = "      en: [a1, a2, a3, a4, a5]\n      zh: [甲一, 甲二, 甲三, 甲四, 甲五]\n";

fn warnings(report: &Report) -> Vec<String> {
    report.warnings().map(|d| d.message.clone()).collect()
}

#[test]
fn unused_response_is_warned_at_its_key() -> Result<()> {
    let responses = "responses:\n  greet:\n    en: [Hi]\n    zh: [你好]\n  spare:\n    en: [Unused]\n    zh: [没用]\n";
    let intents = format!("intents:\n  greet:\n    examples:\n{ENOUGH}    response: greet\n");
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", responses), ("intents.yml", &intents)])?;

    let report = validate(&bot.dir);

    let diagnostic = at(&report, &bot.dir.join("responses.yml"), 5, 3)?;
    assert_eq!(diagnostic.severity, Severity::Warning);
    assert!(diagnostic.message.starts_with("response `spare` is never used"), "{diagnostic}");
    assert_eq!(report.warnings().count(), 1, "{report}");
    Ok(())
}

#[test]
fn unused_check_counts_invalid_prompt_as_use() -> Result<()> {
    let files = [
        ("bot.yml", SETTINGS),
        ("slots.yml", "slots:\n  code: { type: number }\n"),
        ("responses.yml", "responses:\n  ask_code:\n    en: [Code?]\n    zh: [代码？]\n  bad_code:\n    en: [Digits only]\n    zh: [只要数字]\n"),
        ("flows.yml", "flows:\n  get_code:\n    steps:\n      - ask: code\n        prompt: ask_code\n        invalid: bad_code\n"),
    ];
    let intents = format!("intents:\n  code:\n    examples:\n{ENOUGH}    flow: get_code\n");
    let mut all = files.to_vec();
    all.push(("intents.yml", &intents));
    let bot = TempBot::new(&all)?;

    let report = validate(&bot.dir);

    assert!(warnings(&report).is_empty(), "{report}");
    Ok(())
}

#[test]
fn unused_check_skips_reserved_responses() -> Result<()> {
    let responses = "responses:\n  fallback:\n    en: [Sorry?]\n    zh: [抱歉？]\n  handoff_waiting:\n    en: [Wait]\n    zh: [请稍等]\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", responses)])?;

    let report = validate(&bot.dir);

    assert!(warnings(&report).is_empty(), "{report}");
    Ok(())
}

#[test]
fn few_examples_warned_per_language() -> Result<()> {
    let intents = "intents:\n  退款:\n    examples:\n      en: [refund, money back, return it, refund please]\n      zh: [退款, 我要退钱, 退货, 能退吗, 退款吧]\n    response: fallback\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("intents.yml", intents)])?;

    let report = validate(&bot.dir);

    let diagnostic = at(&report, &bot.dir.join("intents.yml"), 2, 3)?;
    assert_eq!(diagnostic.severity, Severity::Warning);
    assert!(diagnostic.message.starts_with("intent `退款` has 4 `en` examples; add at least 5"), "{diagnostic}");
    assert_eq!(report.warnings().count(), 1, "{report}");
    Ok(())
}

#[test]
fn few_examples_counts_missing_language_as_zero() -> Result<()> {
    let intents = "intents:\n  thanks:\n    examples:\n      en: [thanks, thank you, cheers, ta, many thanks]\n    response: fallback\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("intents.yml", intents)])?;

    let report = validate(&bot.dir);

    let diagnostic = at(&report, &bot.dir.join("intents.yml"), 2, 3)?;
    assert!(diagnostic.message.starts_with("intent `thanks` has 0 `zh` examples"), "{diagnostic}");
    Ok(())
}

#[test]
fn few_examples_threshold_is_five() {
    assert_eq!(MIN_EXAMPLES, 5);
}

#[test]
fn example_places_point_at_intent_examples() -> Result<()> {
    let loaded = load_valid()?;
    let dir = fixture("valid");

    let place = loaded.example_places.get(&IntentId::new("order_status"), "track my package").context("no place for `track my package`")?;

    assert_eq!(place.file, dir.join("intents.yml"));
    assert_eq!((place.line, place.column, place.width), (11, 11, 16));
    assert_eq!(place.source_line, "        - track my package");
    Ok(())
}

#[test]
fn example_places_count_columns_in_chinese() -> Result<()> {
    let loaded = load_valid()?;

    let place = loaded.example_places.get(&IntentId::new("greet"), "早上好").context("no place for `早上好`")?;

    assert_eq!((place.line, place.column), (5, 20));
    Ok(())
}

#[test]
fn example_places_include_faq_questions() -> Result<()> {
    let loaded = load_valid()?;
    let knowledge = IntentId::new(KNOWLEDGE_INTENT);

    let question = loaded.example_places.get(&knowledge, "运费是多少？").context("no place for the FAQ question")?;
    let variant = loaded.example_places.get(&knowledge, "delivery time").context("no place for the FAQ variant")?;

    assert_eq!((question.line, question.column), (23, 15));
    assert_eq!((variant.line, variant.column), (18, 45));
    Ok(())
}

#[test]
fn example_places_cover_every_training_example() -> Result<()> {
    let loaded = load_valid()?;

    for (text, intent) in loaded.bot.training_examples() {
        assert!(loaded.example_places.get(&intent, &text).is_some(), "no place for `{text}` of `{intent}`");
    }
    Ok(())
}

#[test]
fn example_place_warning_renders_like_other_diagnostics() -> Result<()> {
    let loaded = load_valid()?;
    let place = loaded.example_places.get(&IntentId::new("greet"), "hi there").context("no place for `hi there`")?;

    let warning = place.warning("example `hi there` is confused with intent `human`");

    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(warning.offending_text(), "hi there");
    assert!(warning.to_string().starts_with(&format!("{place}: warning: example `hi there`")), "{warning}");
    Ok(())
}

#[test]
fn validate_and_load_returns_bot_without_errors() -> Result<()> {
    let (report, loaded) = validate_and_load(&fixture("valid"));

    assert!(report.diagnostics.is_empty(), "{report}");
    assert!(loaded.is_some());
    Ok(())
}

#[test]
fn validate_and_load_returns_no_bot_with_errors() -> Result<()> {
    let (report, loaded) = validate_and_load(&fixture("broken"));

    assert!(report.has_errors());
    assert!(loaded.is_none());
    Ok(())
}
