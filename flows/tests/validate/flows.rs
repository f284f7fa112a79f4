//! Flow checks: loops that never wait for the customer, handoff reasons, and FAQ
//! entries defined twice.

use bot_core::HandoffReason;

use super::*;

const HI: &str = "responses:\n  hi:\n    en: [Hi]\n  p:\n    en: [Name?]\nslots:\n  name: { type: text }\n";

fn bot_with_flows(flows: &str) -> Result<(TempBot, Report)> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", HI), ("flows.yml", flows)])?;
    let report = validate(&bot.dir);
    Ok((bot, report))
}

#[test]
fn goto_loop_without_ask_is_an_error() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - id: a\n        say: hi\n      - goto: a\n";
    let (bot, report) = bot_with_flows(flows)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 8, 9)?;
    assert!(diagnostic.message.starts_with("steps loop without an `ask` step (step 3 → `a` → step 3)"), "{diagnostic}");
    assert_eq!(report.errors().count(), 1, "{report}");
    Ok(())
}

#[test]
fn goto_to_itself_is_an_error() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - { id: spin, goto: spin }\n";
    let (bot, report) = bot_with_flows(flows)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 6, 9)?;
    assert!(diagnostic.message.contains("(`spin` → `spin`)"), "{diagnostic}");
    Ok(())
}

#[test]
fn loop_across_flows_without_ask_is_an_error() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - goto: g\n  g:\n    steps:\n      - say: hi\n      - branch:\n          - { if: { slot: name, set: true }, goto: f2 }\n  f2:\n    steps:\n      - goto: g\n";
    let (bot, report) = bot_with_flows(flows)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 14, 9)?;
    assert!(diagnostic.message.contains("(step 1 of `f2` → step 1 of `g` → step 2 of `g` → step 1 of `f2`)"), "{diagnostic}");
    Ok(())
}

#[test]
fn loop_through_ask_is_accepted() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - id: again\n        ask: name\n        prompt: p\n      - say: hi\n      - goto: again\n";
    let (_bot, report) = bot_with_flows(flows)?;
    assert!(!report.has_errors(), "{report}");
    Ok(())
}

#[test]
fn http_retry_loop_is_an_error() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - id: fetch\n        http: { method: GET, url: \"http://127.0.0.1:9/\", on_error: fetch }\n      - say: hi\n";
    let (bot, report) = bot_with_flows(flows)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 6, 9)?;
    assert!(diagnostic.message.starts_with("steps loop without an `ask` step"), "{diagnostic}");
    Ok(())
}

fn handoff_reason(step: &str) -> Result<HandoffReason> {
    let flows = format!("flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - {step}\n");
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", HI), ("flows.yml", &flows)])?;
    let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
    let flow = loaded.bot.flows.get(&FlowId::new("f")).context("flow f missing")?;
    match &flow.steps[1].kind {
        StepKind::Handoff { reason } => Ok(reason.clone()),
        other => bail!("step 2 is {other:?}"),
    }
}

#[test]
fn handoff_reason_is_read() -> Result<()> {
    assert_eq!(handoff_reason("handoff: { reason: requested }")?, HandoffReason::Requested);
    assert_eq!(handoff_reason("handoff: { reason: repeated_fallback }")?, HandoffReason::RepeatedFallback);
    assert_eq!(handoff_reason("handoff: { reason: form_exhausted }")?, HandoffReason::FormExhausted);
    assert_eq!(handoff_reason("{ id: out, handoff: { reason: flow_step } }")?, HandoffReason::FlowStep);
    Ok(())
}

#[test]
fn handoff_without_reason_is_flow_step() -> Result<()> {
    assert_eq!(handoff_reason("handoff")?, HandoffReason::FlowStep);
    assert_eq!(handoff_reason("{ id: out, handoff: {} }")?, HandoffReason::FlowStep);
    assert_eq!(handoff_reason("handoff:")?, HandoffReason::FlowStep);
    Ok(())
}

#[test]
fn unknown_handoff_reason_suggests_closest() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - handoff: { reason: requestd }\n";
    let (bot, report) = bot_with_flows(flows)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 6, 28)?;
    assert_eq!(diagnostic.message, "unknown handoff reason `requestd`; did you mean `requested`?");
    Ok(())
}

#[test]
fn handoff_with_scalar_value_is_an_error() -> Result<()> {
    let flows = "flows:\n  f:\n    steps:\n      - ask: name\n        prompt: p\n      - handoff: requested\n";
    let (bot, report) = bot_with_flows(flows)?;
    let diagnostic = at(&report, &bot.dir.join("flows.yml"), 6, 18)?;
    assert!(diagnostic.message.contains("write `handoff: { reason: requested }`"), "{diagnostic}");
    Ok(())
}

#[test]
fn faq_duplicate_key_reports_missing_answer() -> Result<()> {
    let faq = "faq:\n  shipping:\n    question: How long?\n    answer: Three days.\n  shipping:\n    question: How long again?\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("faq.yml", faq)])?;
    let report = validate(&bot.dir);
    let file = bot.dir.join("faq.yml");
    at_with(&report, &file, 5, 3, "duplicate key `shipping`")?;
    at_with(&report, &file, 5, 3, "FAQ entry `shipping` is missing the required field `answer`")?;
    Ok(())
}

#[test]
fn faq_in_two_files_reports_missing_answer() -> Result<()> {
    let first = "faq:\n  shipping:\n    question: How long?\n    answer: Three days.\n";
    let second = "faq:\n  shipping:\n    question: How long again?\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("a.yml", first), ("b.yml", second)])?;
    let report = validate(&bot.dir);
    let file = bot.dir.join("b.yml");
    at_with(&report, &file, 2, 3, "FAQ entry `shipping` is defined twice")?;
    at_with(&report, &file, 2, 3, "FAQ entry `shipping` is missing the required field `answer`")?;
    Ok(())
}
