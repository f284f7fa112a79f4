//! Loads the fixture bots under `tests/fixtures`, and small bots written to a
//! temporary folder, and checks the definitions and diagnostics they produce.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use bot_core::bot::{ConditionTest, IntentAction, SlotKind, StepKind, Target};
use bot_core::{FlowId, IntentId, Lang, ResponseId, SlotName};
use lepton_flows::{load_bot, validate, Diagnostic, LoadError, Report, Severity};

mod conversation_tests;
mod encoder;
mod files;
mod flows;
mod handoff_adapter;
mod syntax;
mod warnings;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A bot folder written for one test under the system temporary folder, removed on drop.
struct TempBot {
    dir: PathBuf,
}

impl TempBot {
    fn new(files: &[(&str, &str)]) -> Result<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("lepton-flows-test-{}-{unique}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().context("file without a parent folder")?)?;
            fs::write(&path, text)?;
        }
        Ok(Self { dir })
    }

    fn copy_of(source: &Path) -> Result<Self> {
        let bot = Self::new(&[])?;
        copy_dir(source, &bot.dir)?;
        Ok(bot)
    }
}

impl Drop for TempBot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Finds the one diagnostic at `file:line:column`, failing with the whole report otherwise.
fn at<'r>(report: &'r Report, file: &Path, line: usize, column: usize) -> Result<&'r Diagnostic> {
    at_with(report, file, line, column, "")
}

/// Finds the one diagnostic at `file:line:column` whose message contains `fragment`.
fn at_with<'r>(report: &'r Report, file: &Path, line: usize, column: usize, fragment: &str) -> Result<&'r Diagnostic> {
    let found: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.file == file && d.line == line && d.column == column && d.message.contains(fragment))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!("no diagnostic at {}:{line}:{column}; the report is:\n{report}", file.display()),
        _ => bail!("several diagnostics at {}:{line}:{column}; the report is:\n{report}", file.display()),
    }
}

fn messages(report: &Report) -> Vec<String> {
    report.diagnostics.iter().map(|d| d.message.clone()).collect()
}

fn load_valid() -> Result<lepton_flows::LoadedBot> {
    load_bot(&fixture("valid")).map_err(|error| anyhow!("{error}"))
}

#[test]
fn valid_bot_has_no_diagnostics() -> Result<()> {
    let report = validate(&fixture("valid"));
    assert!(report.diagnostics.is_empty(), "{report}");
    Ok(())
}

#[test]
fn valid_bot_loads_settings_with_defaults() -> Result<()> {
    let settings = load_valid()?.bot.settings;
    assert_eq!(settings.name, "Test shop");
    assert_eq!(settings.languages, vec![Lang::new("en"), Lang::new("zh")]);
    assert_eq!(settings.classifier.threshold, 0.6);
    assert_eq!(settings.classifier.margin, 0.1);
    assert_eq!(settings.classifier.seed, 7);
    assert_eq!(settings.knowledge.min_score, 0.5);
    assert!(settings.knowledge.answer_unmatched);
    assert_eq!(settings.handoff.after_fallbacks, 3);
    assert_eq!(settings.session.ttl_seconds, 86_400);
    assert_eq!(settings.variables.get("shop_name").map(String::as_str), Some("Test Shop"));
    Ok(())
}

#[test]
fn valid_bot_loads_intents() -> Result<()> {
    let bot = load_valid()?.bot;
    let order = bot.intents.get(&IntentId::new("order_status")).context("order_status missing")?;
    assert_eq!(order.action, IntentAction::Flow(FlowId::new("order_status")));
    assert!(!order.interrupts);
    assert_eq!(order.examples.get(&Lang::new("zh")).and_then(|e| e.first()).map(String::as_str), Some("我的订单到哪了"));
    let human = bot.intents.get(&IntentId::new("human")).context("human missing")?;
    assert!(human.interrupts);
    let greet = bot.intents.get(&IntentId::new("greet")).context("greet missing")?;
    assert_eq!(greet.action, IntentAction::Respond(ResponseId::new("greet")));
    let example_count: usize = bot.intents.values().flat_map(|intent| intent.examples.values()).map(Vec::len).sum();
    assert_eq!(example_count, 30);
    Ok(())
}

#[test]
fn valid_bot_loads_responses() -> Result<()> {
    let bot = load_valid()?.bot;
    let greet = bot.responses.get(&ResponseId::new("greet")).context("greet missing")?;
    let english = greet.variants.get(&Lang::new("en")).context("no en variants")?;
    assert_eq!(english.len(), 2);
    assert_eq!(english[1].text, "Hi, welcome to {shop_name}!");
    assert_eq!(english[1].buttons[0].payload, "/order_status");
    let chinese = greet.variants.get(&Lang::new("zh")).context("no zh variants")?;
    assert_eq!(chinese[0].text, "你好！请问有什么可以帮您？");
    Ok(())
}

#[test]
fn valid_bot_loads_slots() -> Result<()> {
    let bot = load_valid()?.bot;
    let number = bot.slots.get(&SlotName::new("order_number")).context("order_number missing")?;
    assert!(matches!(&number.kind, SlotKind::Regex { pattern } if pattern == "^[0-9]{6}$"), "{:?}", number.kind);
    let confirm = bot.slots.get(&SlotName::new("confirm")).context("confirm missing")?;
    let SlotKind::Choice { choices } = &confirm.kind else { bail!("confirm is {:?}", confirm.kind) };
    let values: Vec<&str> = choices.iter().map(|c| c.value.as_str()).collect();
    assert_eq!(values, vec!["yes", "no"]);
    assert_eq!(choices[0].synonyms.get(&Lang::new("zh")), Some(&vec!["是".to_owned(), "对".to_owned()]));
    Ok(())
}

#[test]
fn valid_bot_loads_flow_steps() -> Result<()> {
    let bot = load_valid()?.bot;
    let flow = bot.flows.get(&FlowId::new("order_status")).context("order_status flow missing")?;
    let expected = serde_json::json!([
        { "id": null, "kind": { "ask": {
            "slot": "order_number", "prompt": "ask_order_number", "invalid": null,
            "max_attempts": 2, "on_exhausted": "handoff" } } },
        { "id": "lookup", "kind": { "http": {
            "method": "GET",
            "url": "{server_url}/demo/orders/{order_number}",
            "body": { "note": "{order_number}", "count": 2, "urgent": false, "ratio": 0.5, "tags": ["a", "b"] },
            "timeout_ms": 3000,
            "save": { "order_state": "/status" },
            "on_error": "handoff",
            "on_status": { "404": { "step": "not_found" } } } } },
        { "id": null, "kind": { "say": "order_found" } },
        { "id": null, "kind": "end" },
        { "id": "not_found", "kind": { "say": "order_not_found" } },
        { "id": null, "kind": { "ask": {
            "slot": "confirm", "prompt": "ask_confirm", "invalid": null,
            "max_attempts": 3, "on_exhausted": null } } },
        { "id": null, "kind": { "branch": [
            { "condition": { "slot": "confirm", "test": { "equals": "yes" } }, "target": { "flow": "talk_to_human" } },
            { "condition": null, "target": { "flow": "order_status" } } ] } }
    ]);
    assert_eq!(serde_json::to_value(&flow.steps)?, expected);
    Ok(())
}

#[test]
fn valid_bot_loads_knowledge_step() -> Result<()> {
    let bot = load_valid()?.bot;
    let flow = bot.flows.get(&FlowId::new("talk_to_human")).context("talk_to_human flow missing")?;
    let StepKind::Knowledge { query, on_miss } = &flow.steps[0].kind else { bail!("first step is {:?}", flow.steps[0].kind) };
    assert_eq!(query.as_deref(), Some("human help"));
    assert_eq!(on_miss, &Some(Target::Step("give_up".into())));
    assert!(matches!(flow.steps[2].kind, StepKind::Handoff { .. }));
    Ok(())
}

#[test]
fn valid_bot_loads_faq_and_articles() -> Result<()> {
    let bot = load_valid()?.bot;
    let ids: Vec<&str> = bot.faq.iter().map(|entry| entry.id.as_str()).collect();
    assert_eq!(ids, vec!["shipping_time", "运费"]);
    assert_eq!(bot.faq[0].variants, vec!["When will my parcel arrive?", "delivery time"]);
    assert_eq!(bot.faq[1].lang, Lang::new("zh"));
    let articles: Vec<(&str, &str)> = bot.articles.iter().map(|a| (a.path.as_str(), a.lang.as_str())).collect();
    assert_eq!(articles, vec![("articles/policies/returns.zh.md", "zh"), ("articles/shipping.md", "en")]);
    assert!(bot.articles[0].markdown.starts_with("# 退货政策"));
    Ok(())
}

/// Each problem planted in `fixtures/broken`: file, line, column, severity and a
/// fragment of the message.
const BROKEN: &[(&str, usize, usize, Severity, &str)] = &[
    ("bot.yml", 4, 16, Severity::Error, "expected a number for classifier.threshold, found the string `high`"),
    ("bot.yml", 6, 5, Severity::Error, "unknown field `answr_unmatched` in settings.knowledge; did you mean `answer_unmatched`?"),
    ("bot.yml", 14, 17, Severity::Error, "`yes` is a string in YAML 1.2, not a boolean"),
    ("bot.yml", 15, 3, Severity::Error, "intent `order_status` is missing the required field `examples`"),
    ("bot.yml", 16, 5, Severity::Error, "unknown field `exampels` in intent `order_status`; did you mean `examples`?"),
    ("bot.yml", 19, 3, Severity::Warning, "intent `cancel` has 2 `en` examples"),
    ("bot.yml", 19, 3, Severity::Warning, "intent `cancel` has 1 `zh` example"),
    ("bot.yml", 21, 26, Severity::Error, "`no` is read as a boolean by YAML 1.1 tools; quote it as \"no\""),
    ("bot.yml", 21, 30, Severity::Error, "example `Good  MORNING` is also an example of intent `greet`"),
    ("bot.yml", 22, 7, Severity::Error, "language `fr` is not declared in settings.languages (en, zh)"),
    ("bot.yml", 24, 11, Severity::Error, "undefined flow `cancel_flow`"),
    ("bot.yml", 25, 3, Severity::Error, "duplicate key `cancel` (first written at line 19, column 3)"),
    ("more.yml", 2, 3, Severity::Error, "intent `greet` is defined twice; the first definition is at "),
    ("more.yml", 9, 19, Severity::Error, "placeholder `{customer}` names neither a slot nor a variable"),
    ("more.yml", 11, 39, Severity::Error, "undefined intent `ordr_status`; did you mean `order_status`?"),
    ("more.yml", 12, 14, Severity::Error, "placeholder `{顾客}` names neither a slot nor a variable"),
    ("more.yml", 13, 3, Severity::Error, "response `only_english` has no `zh` translation"),
    ("more.yml", 22, 14, Severity::Error, "invalid regular expression in slot `order_number`: unclosed character class"),
    ("more.yml", 23, 3, Severity::Warning, "slot `confirm` is never filled"),
    ("more.yml", 26, 7, Severity::Error, "`yes` is read as a boolean by YAML 1.1 tools; quote it as \"yes\" where a choice value is meant"),
    ("more.yml", 26, 25, Severity::Error, "`y` is read as a boolean by YAML 1.1 tools"),
    ("more.yml", 28, 3, Severity::Warning, "slot `unused_slot` is never filled"),
    ("more.yml", 33, 14, Severity::Error, "undefined slot `ordr_number`; did you mean `order_number`?"),
    ("more.yml", 35, 9, Severity::Error, "the step is missing the required field `prompt`"),
    ("more.yml", 37, 42, Severity::Error, "`maybe` is not a value of choice slot `confirm`"),
    ("more.yml", 38, 19, Severity::Error, "undefined target `nowhere`"),
    ("more.yml", 39, 14, Severity::Error, "undefined response `missing_response`"),
    ("more.yml", 41, 9, Severity::Error, "unreachable step: it follows `end`"),
    ("more.yml", 43, 3, Severity::Warning, "flow `lookup` is never started"),
    ("more.yml", 45, 9, Severity::Error, "an http step is missing the required field `url`"),
    ("more.yml", 46, 19, Severity::Error, "unsupported HTTP method `get`; write `GET`"),
    ("more.yml", 47, 23, Severity::Error, "expected a number for timeout_ms, found the string `3000`"),
    ("more.yml", 49, 9, Severity::Error, "unknown field `sya` in the step; did you mean `say`?"),
    ("more.yml", 52, 3, Severity::Error, "FAQ entry `returns` is missing the required field `answer`"),
];

#[test]
fn broken_bot_reports_each_problem_at_its_place() -> Result<()> {
    let dir = fixture("broken");
    let report = validate(&dir);
    for (file, line, column, severity, fragment) in BROKEN {
        let diagnostic = at_with(&report, &dir.join(file), *line, *column, fragment)?;
        assert_eq!(diagnostic.severity, *severity, "{diagnostic}");
    }
    Ok(())
}

#[test]
fn broken_bot_reports_nothing_else() -> Result<()> {
    let report = validate(&fixture("broken"));
    assert_eq!(report.diagnostics.len(), BROKEN.len(), "{report}");
    Ok(())
}

#[test]
fn broken_bot_fails_to_load_with_every_diagnostic() -> Result<()> {
    let error = load_bot(&fixture("broken")).err().context("the broken bot loaded")?;
    let LoadError::Invalid { diagnostics } = &error else { bail!("unexpected error: {error}") };
    assert_eq!(diagnostics.len(), BROKEN.len());
    assert!(error.to_string().starts_with("the bot definition has 29 errors"), "{error}");
    Ok(())
}

#[test]
fn broken_bot_diagnostics_are_sorted() -> Result<()> {
    let report = validate(&fixture("broken"));
    let places: Vec<(PathBuf, usize, usize)> = report.diagnostics.iter().map(|d| (d.file.clone(), d.line, d.column)).collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted);
    Ok(())
}

#[test]
fn diagnostic_display_shows_line_and_caret() -> Result<()> {
    let report = validate(Path::new("tests/fixtures/broken"));
    let diagnostic = at(&report, Path::new("tests/fixtures/broken/more.yml"), 12, 14)?;
    let expected = "tests/fixtures/broken/more.yml:12:14: error: placeholder `{顾客}` names neither a slot nor a variable; \
                    expected one of `confirm`, `order_number`, `server_url`, `unused_slot`\n\
                    \x20 |     zh: [\"你好，{顾客}！\"]\n\
                    \x20 |                 ^^^^^^";
    assert_eq!(diagnostic.to_string(), expected);
    assert_eq!(diagnostic.offending_text(), "{顾客}");
    Ok(())
}

#[test]
fn syntax_error_keeps_other_files_checked() -> Result<()> {
    let dir = fixture("syntax");
    let report = validate(&dir);
    let syntax = at(&report, &dir.join("responses.yml"), 4, 3)?;
    assert!(syntax.message.starts_with("invalid YAML: "), "{syntax}");
    let unknown = at(&report, &dir.join("bot.yml"), 3, 3)?;
    assert!(unknown.message.contains("did you mean `session`?"), "{unknown}");
    assert_eq!(report.diagnostics.len(), 2, "{report}");
    Ok(())
}

#[test]
fn warnings_alone_let_the_bot_load() -> Result<()> {
    let loaded = load_bot(&fixture("warnings")).map_err(|error| anyhow!("{error}"))?;
    let warned: Vec<&str> = loaded.warnings.iter().map(|d| d.message.split(' ').take(2).last().unwrap_or("")).collect();
    assert_eq!(warned, vec!["`thanks`", "`unused_reply`", "`nickname`"]);
    assert!(loaded.warnings.iter().all(|d| d.severity == Severity::Warning));
    Ok(())
}

#[test]
fn sources_hash_is_stable() -> Result<()> {
    assert_eq!(load_valid()?.sources_hash, load_valid()?.sources_hash);
    Ok(())
}

#[test]
fn sources_hash_changes_when_a_file_changes() -> Result<()> {
    let bot = TempBot::copy_of(&fixture("valid"))?;
    let before = load_bot(&bot.dir).map_err(|e| anyhow!("{e}"))?.sources_hash;
    fs::write(bot.dir.join("articles/shipping.md"), "# Shipping\n\nParcels leave within two days.\n")?;
    let after = load_bot(&bot.dir).map_err(|e| anyhow!("{e}"))?.sources_hash;
    assert_ne!(before, after);
    assert_eq!(before.len(), 64);
    Ok(())
}

#[test]
fn missing_folder_is_not_found() -> Result<()> {
    let missing = fixture("no-such-bot");
    let error = load_bot(&missing).err().context("a missing folder loaded")?;
    assert!(matches!(error, LoadError::NotFound { ref path } if path == &missing), "{error}");
    let report = validate(&missing);
    let diagnostic = at(&report, &missing, 0, 0)?;
    assert_eq!(diagnostic.message, format!("bot folder {} not found; check the path", missing.display()));
    Ok(())
}

#[test]
fn file_given_as_folder_is_not_a_folder() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS)])?;
    let file = bot.dir.join("bot.yml");
    let error = load_bot(&file).err().context("a file loaded as a bot folder")?;
    assert!(matches!(error, LoadError::NotAFolder { ref path } if path == &file), "{error}");
    Ok(())
}

#[test]
fn missing_settings_is_reported_at_the_folder() -> Result<()> {
    let bot = TempBot::new(&[("intents.yml", "intents: {}\n")])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir, 0, 0)?;
    assert!(diagnostic.message.starts_with("no file defines `settings:`"), "{diagnostic}");
    assert!(diagnostic.to_string().starts_with(&format!("{}: error: ", bot.dir.display())));
    Ok(())
}

#[test]
fn settings_in_two_files_is_an_error() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n";
    let bot = TempBot::new(&[("a.yml", settings), ("sub/b.yaml", settings)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("sub/b.yaml"), 1, 1)?;
    assert!(diagnostic.message.contains("`settings` is defined a second time"), "{diagnostic}");
    Ok(())
}

const SETTINGS: &str = "settings:\n  languages: [en]\n";

fn report_for(flows_yaml: &str) -> Result<(TempBot, Report)> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("flows.yml", flows_yaml)])?;
    let report = validate(&bot.dir);
    Ok((bot, report))
}

#[test]
fn step_with_two_kinds_is_an_error() -> Result<()> {
    let yaml = "responses:\n  hi:\n    en: [Hi]\nflows:\n  f:\n    steps:\n      - say: hi\n        goto: f\n";
    let (bot, report) = report_for(yaml)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 8, 9)?;
    assert!(diagnostic.message.contains("has `say` and `goto`"), "{diagnostic}");
    Ok(())
}

#[test]
fn unknown_bare_step_suggests_end() -> Result<()> {
    let (bot, report) = report_for("flows:\n  f:\n    steps:\n      - ned\n")?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 4, 9)?;
    assert!(diagnostic.message.contains("did you mean `end`?"), "{diagnostic}");
    Ok(())
}

#[test]
fn else_arm_before_last_is_an_error() -> Result<()> {
    let yaml = "slots:\n  s: { type: text }\nflows:\n  f:\n    steps:\n      - ask: s\n        prompt: p\n      - branch:\n          - else: f\n          - { if: { slot: s, set: true }, goto: handoff }\nresponses:\n  p:\n    en: [Name?]\n";
    let (bot, report) = report_for(yaml)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 9, 19)?;
    assert!(diagnostic.message.contains("`else` arm must be the last arm"), "{diagnostic}");
    assert_eq!(report.errors().count(), 1, "{report}");
    Ok(())
}

#[test]
fn condition_tests_are_read() -> Result<()> {
    let yaml = "slots:\n  count: { type: number, min: 1, max: 9 }\nresponses:\n  p:\n    en: [Count?]\nflows:\n  f:\n    steps:\n      - ask: count\n        prompt: p\n      - branch:\n          - { if: { slot: count, less_than: 3 }, goto: handoff }\n          - { if: { slot: count, in: [\"4\", \"5\"] }, goto: end_here }\n      - id: end_here\n        end:\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("flows.yml", yaml)])?;
    let loaded = load_bot(&bot.dir).map_err(|e| anyhow!("{e}"))?;
    let flow = loaded.bot.flows.get(&FlowId::new("f")).context("flow f missing")?;
    let StepKind::Branch(arms) = &flow.steps[1].kind else { bail!("step 2 is {:?}", flow.steps[1].kind) };
    let tests: Vec<&ConditionTest> = arms.iter().filter_map(|arm| arm.condition.as_ref()).map(|c| &c.test).collect();
    assert!(matches!(tests[0], ConditionTest::LessThan(limit) if *limit == 3.0), "{tests:?}");
    assert!(matches!(tests[1], ConditionTest::In(values) if values == &["4", "5"]), "{tests:?}");
    Ok(())
}

#[test]
fn button_payload_without_slash_is_plain_text() -> Result<()> {
    let yaml = "responses:\n  hi:\n    en:\n      - text: Hi\n        buttons: [{ title: Yes please, payload: \"yes please\" }]\nintents:\n  hello:\n    examples: { en: [hi, hello, hey, hiya, howdy] }\n    response: hi\n";
    let (_bot, report) = report_for(yaml)?;
    assert!(!report.has_errors(), "{report}");
    Ok(())
}

#[test]
fn invalid_placeholder_braces_are_reported() -> Result<()> {
    let yaml = "responses:\n  hi:\n    en: [\"Total: {a b} and }\"]\n";
    let (_bot, report) = report_for(yaml)?;
    let found = messages(&report);
    assert!(found.iter().any(|m| m.starts_with("invalid placeholder `{a b}`")), "{report}");
    assert!(found.iter().any(|m| m.starts_with("unmatched `}`")), "{report}");
    Ok(())
}

#[test]
fn server_url_and_variables_are_defined_placeholders() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  variables:\n    shop: Shop\n";
    let responses = "responses:\n  fallback:\n    en: [\"See {server_url}/help at {shop}\"]\n";
    let bot = TempBot::new(&[("bot.yml", settings), ("responses.yml", responses)])?;
    let report = validate(&bot.dir);
    assert!(report.diagnostics.is_empty(), "{report}");
    Ok(())
}

#[test]
fn article_in_undeclared_language_is_an_error() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("articles/faq.de.md", "# Versand\n")])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("articles/faq.de.md"), 0, 0)?;
    assert!(diagnostic.message.contains("article language `de`"), "{diagnostic}");
    Ok(())
}

#[test]
fn missing_named_article_folder_is_error() -> Result<()> {
    let default = TempBot::new(&[("bot.yml", SETTINGS)])?;
    assert!(validate(&default.dir).diagnostics.is_empty());
    let named = TempBot::new(&[("bot.yml", "settings:\n  languages: [en]\n  knowledge:\n    articles: [docs]\n")])?;
    let report = validate(&named.dir);
    let diagnostic = at(&report, &named.dir.join("bot.yml"), 4, 16)?;
    assert!(diagnostic.message.contains("article folder `docs`"), "{diagnostic}");
    Ok(())
}

#[test]
fn hidden_files_are_skipped() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), (".cache/broken.yml", "{{{")])?;
    assert!(validate(&bot.dir).diagnostics.is_empty());
    Ok(())
}

#[test]
fn agent_placeholder_only_in_agent_joined() -> Result<()> {
    let responses = "responses:\n  handoff_agent_joined:\n    en: [\"{agent} joined\"]\n  handoff_closed:\n    en: [\"{agent} left\"]\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", responses)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("responses.yml"), 5, 11)?;
    assert!(diagnostic.message.starts_with("placeholder `{agent}` names neither"), "{diagnostic}");
    assert_eq!(report.diagnostics.len(), 1, "{report}");
    Ok(())
}

#[test]
fn agent_placeholder_in_transfer_notice() -> Result<()> {
    let responses = "responses:\n  handoff_transferred:\n    en: [\"{agent} takes over\"]\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", responses)])?;
    let report = validate(&bot.dir);
    assert!(report.diagnostics.is_empty(), "{report}");
    Ok(())
}

fn handoff_settings(handoff: &str) -> String {
    format!("settings:\n  languages: [en]\n  handoff:\n{handoff}")
}

#[test]
fn no_agent_offer_defaults_to_300_seconds() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", &handoff_settings("    after_fallbacks: 2\n"))])?;
    let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
    assert_eq!(loaded.bot.settings.handoff.no_agent_after_seconds, 300);
    Ok(())
}

#[test]
fn no_agent_offer_seconds_are_read() -> Result<()> {
    for (value, expected) in [("0", 0), ("45", 45)] {
        let bot = TempBot::new(&[("bot.yml", &handoff_settings(&format!("    no_agent_after_seconds: {value}\n")))])?;
        let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
        assert_eq!(loaded.bot.settings.handoff.no_agent_after_seconds, expected, "value {value}");
    }
    Ok(())
}

#[test]
fn negative_no_agent_offer_seconds_are_rejected() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", &handoff_settings("    no_agent_after_seconds: -5\n"))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 29)?;
    assert!(diagnostic.message.contains("handoff.no_agent_after_seconds must be a whole number"), "{diagnostic}");
    Ok(())
}

#[test]
fn misspelt_no_agent_offer_key_gets_suggestion() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", &handoff_settings("    no_agent_after_second: 60\n"))])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 5)?;
    assert!(diagnostic.message.contains("did you mean `no_agent_after_seconds`?"), "{diagnostic}");
    Ok(())
}

#[test]
fn intent_name_with_leading_underscore_is_reserved() -> Result<()> {
    let intents = "intents:\n  _knowledge:\n    examples: { en: [a, b, c, d, e] }\n    response: fallback\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("intents.yml", intents)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("intents.yml"), 2, 3)?;
    assert!(diagnostic.message.starts_with("intent names starting with `_` are reserved"), "{diagnostic}");
    Ok(())
}

#[test]
fn synonym_of_two_choices_is_an_error() -> Result<()> {
    let slots = "slots:\n  confirm:\n    type: choice\n    choices:\n      \"yes\": { en: [ok, sure] }\n      \"no\": { en: [\" OK \", nope] }\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("slots.yml", slots)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("slots.yml"), 6, 20)?;
    assert!(diagnostic.message.starts_with("synonym ` OK ` of choice `no` also matches choice `yes`"), "{diagnostic}");
    Ok(())
}

#[test]
fn reserved_response_needs_no_definition() -> Result<()> {
    let flows = "flows:\n  human:\n    steps:\n      - say: handoff_waiting\n      - handoff\nintents:\n  agent:\n    examples: { en: [agent, human, person, someone, staff] }\n    flow: human\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("flows.yml", flows)])?;
    let report = validate(&bot.dir);
    assert!(report.diagnostics.is_empty(), "{report}");
    Ok(())
}

#[test]
fn redis_store_settings_load() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  session_store: redis\n  redis:\n    url: redis://127.0.0.1:6379/2\n    key_prefix: shop\n    max_events: 500\n    cluster: true\n";
    let bot = TempBot::new(&[("bot.yml", settings)])?;
    let loaded = lepton_flows::load_bot(&bot.dir)?;
    let settings = &loaded.bot.settings;
    assert_eq!(settings.session_store, Some(bot_core::bot::StoreKind::Redis));
    assert_eq!(settings.redis.url.as_deref(), Some("redis://127.0.0.1:6379/2"));
    assert_eq!(settings.redis.key_prefix.as_deref(), Some("shop"));
    assert_eq!(settings.redis.max_events, Some(500));
    assert_eq!(settings.redis.cluster, Some(true));
    Ok(())
}

#[test]
fn unknown_session_store_names_choices() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  session_store: postgres\n";
    let bot = TempBot::new(&[("bot.yml", settings)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 3, 18)?;
    assert!(diagnostic.message.contains("embedded, memory, redis"), "{diagnostic}");
    Ok(())
}

#[test]
fn redis_url_needs_redis_scheme() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  redis:\n    url: http://127.0.0.1:6379\n";
    let bot = TempBot::new(&[("bot.yml", settings)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 4, 10)?;
    assert!(diagnostic.message.contains("scheme `http`"), "{diagnostic}");
    Ok(())
}
