//! Compares what one turn did with a step's expectations.

use bot_core::handoff::{HandoffReason, HandoffState};
use bot_core::message::HandoffNotice;
use bot_core::{EventKind, Reply, TurnOutcome, Understanding};
use lepton_flows::{knowledge_source_matches, Check, Expectation, ReplyPattern, SourcePosition};

/// Intents shown after an intent that was not the expected one.
const RANKING_SHOWN: usize = 3;

/// What one turn did, as the checks see it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Turn {
    /// The bot's replies, in order.
    pub replies: Vec<Reply>,
    pub understanding: Understanding,
}

impl Turn {
    pub fn from_outcome(outcome: TurnOutcome) -> Self {
        let mut turn = Turn::default();
        for event in outcome.events {
            match event.kind {
                EventKind::Customer { understanding, .. } => turn.understanding = understanding.unwrap_or_default(),
                EventKind::Reply(reply) => turn.replies.push(reply),
                EventKind::Note { .. } => {}
            }
        }
        turn
    }

    /// Returns the texts of the replies joined with line breaks: what `reply` expectations match.
    pub fn reply_text(&self) -> String {
        let texts: Vec<&str> = self.replies.iter().map(|reply| reply.text.as_str()).collect();
        texts.join("\n")
    }

    /// Returns the notice of a reply that moved the conversation to the queue for an agent.
    pub fn handoff(&self) -> Option<&HandoffNotice> {
        let notices = self.replies.iter().filter_map(|reply| reply.handoff.as_ref());
        notices.into_iter().find(|notice| matches!(notice.state, HandoffState::WaitingForAgent { .. }))
    }
}

/// An expectation that the turn did not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// Where the expectation is written.
    pub at: SourcePosition,
    /// The expectation's key, such as `reply`.
    pub field: &'static str,
    pub expected: String,
    pub actual: String,
}

/// Checks one expectation; returns what differs, or `None` when the turn meets it.
pub(crate) fn check(expectation: &Expectation, turn: &Turn) -> Option<Mismatch> {
    let (field, found) = match &expectation.check {
        Check::Intent(expected) => ("intent", check_intent(expected.as_ref().map(|id| id.as_str()), &turn.understanding)),
        Check::Slots(expected) => ("slots", check_slots(expected, &turn.understanding)),
        Check::Reply(patterns) => ("reply", check_reply(patterns, &turn.reply_text())),
        Check::Buttons(expected) => ("buttons", check_buttons(expected, &turn.replies)),
        Check::Handoff(expected) => ("handoff", check_handoff(*expected, turn.handoff())),
        Check::Knowledge(expected) => ("knowledge", check_knowledge(expected, turn.understanding.knowledge_source.as_deref())),
    };
    let (expected, actual) = found?;
    Some(Mismatch { at: expectation.at.clone(), field, expected, actual })
}

/// A check's verdict: `None` when the turn meets it, else the expected and the actual value as text.
type Found = Option<(String, String)>;

fn check_intent(expected: Option<&str>, understanding: &Understanding) -> Found {
    let actual = understanding.intent.as_ref().map(|id| id.as_str());
    if actual == expected {
        return None;
    }
    let describe = |intent: Option<&str>| intent.map_or_else(|| "no intent".to_owned(), |name| format!("`{name}`"));
    let ranking: Vec<String> = understanding
        .ranking
        .iter()
        .take(RANKING_SHOWN)
        .map(|scored| format!("{} {:.2}", scored.intent, scored.confidence))
        .collect();
    let mut actual = describe(actual);
    if !ranking.is_empty() {
        actual.push_str(&format!(" (ranked: {})", ranking.join(", ")));
    }
    Some((describe(expected), actual))
}

fn check_slots(expected: &[(bot_core::SlotName, Option<String>)], understanding: &Understanding) -> Found {
    let differs = expected.iter().any(|(name, value)| understanding.slots.get(name) != value.as_ref());
    if !differs {
        return None;
    }
    let describe = |name: &bot_core::SlotName, value: Option<&String>| match value {
        Some(value) => format!("{name} = {value:?}"),
        None => format!("{name} unset"),
    };
    let expected_text: Vec<String> = expected.iter().map(|(name, value)| describe(name, value.as_ref())).collect();
    let actual_text: Vec<String> = expected.iter().map(|(name, _)| describe(name, understanding.slots.get(name))).collect();
    Some((expected_text.join(", "), actual_text.join(", ")))
}

fn check_reply(patterns: &[ReplyPattern], text: &str) -> Found {
    if patterns.iter().any(|pattern| pattern.is_match(text)) {
        return None;
    }
    let expected = match patterns {
        [one] => one.to_string(),
        many => {
            let described: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("one of: {}", described.join("; "))
        }
    };
    let actual = if text.is_empty() { "no reply".to_owned() } else { format!("{text:?}") };
    Some((expected, actual))
}

fn check_buttons(expected: &[String], replies: &[Reply]) -> Found {
    let buttons: Vec<&bot_core::QuickReply> = replies.iter().flat_map(|reply| &reply.quick_replies).collect();
    let offered = |wanted: &String| buttons.iter().any(|button| &button.payload == wanted || &button.title == wanted);
    if expected.iter().all(offered) {
        return None;
    }
    let expected_text: Vec<String> = expected.iter().map(|button| format!("{button:?}")).collect();
    let actual: Vec<String> = buttons.iter().map(|button| format!("{:?} ({:?})", button.title, button.payload)).collect();
    let actual = if actual.is_empty() { "no buttons".to_owned() } else { actual.join(", ") };
    Some((format!("buttons {}", expected_text.join(", ")), actual))
}

fn check_handoff(expected: bool, notice: Option<&HandoffNotice>) -> Found {
    if expected == notice.is_some() {
        return None;
    }
    let describe = |handed_off: bool| if handed_off { "handed off" } else { "not handed off" };
    let actual = match notice.and_then(|notice| notice.reason.as_ref()) {
        Some(reason) => format!("handed off (reason: {})", reason_name(reason)),
        None => describe(notice.is_some()).to_owned(),
    };
    Some((describe(expected).to_owned(), actual))
}

/// Returns the name of a handoff reason as `docs/bot-format.md` writes it.
fn reason_name(reason: &HandoffReason) -> &'static str {
    match reason {
        HandoffReason::Requested => "requested",
        HandoffReason::RepeatedFallback => "repeated_fallback",
        HandoffReason::FormExhausted => "form_exhausted",
        HandoffReason::FlowStep => "flow_step",
    }
}

fn check_knowledge(expected: &[String], actual: Option<&str>) -> Found {
    let matched = match actual {
        None => expected.is_empty(),
        Some(source) => expected.iter().any(|wanted| knowledge_source_matches(wanted, source)),
    };
    if matched {
        return None;
    }
    let expected_text = match expected {
        [] => "no knowledge answer".to_owned(),
        [one] => format!("`{one}`"),
        many => {
            let described: Vec<String> = many.iter().map(|source| format!("`{source}`")).collect();
            format!("one of {}", described.join(", "))
        }
    };
    let actual_text = actual.map_or_else(|| "no knowledge answer".to_owned(), |source| format!("`{source}`"));
    Some((expected_text, actual_text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bot_core::{IntentId, ScoredIntent, SlotName};
    use std::path::PathBuf;

    fn expectation(check: Check) -> Expectation {
        let at = SourcePosition { file: PathBuf::from("bot/tests/a.yml"), line: 7, column: 9 };
        Expectation { at, check }
    }

    fn turn_with_replies(texts: &[&str]) -> Turn {
        Turn { replies: texts.iter().map(|text| Reply::bot(*text)).collect(), understanding: Understanding::default() }
    }

    #[test]
    fn reply_contains_checks_joined_text() -> anyhow::Result<()> {
        let pattern = ReplyPattern { contains: Some("first\nsecond".to_owned()), ..Default::default() };
        let turn = turn_with_replies(&["first", "second"]);
        assert_eq!(check(&expectation(Check::Reply(vec![pattern])), &turn), None);
        Ok(())
    }

    #[test]
    fn reply_exact_compares_whole_text() -> anyhow::Result<()> {
        let pattern = ReplyPattern { exact: Some("first".to_owned()), ..Default::default() };
        let turn = turn_with_replies(&["first", "second"]);
        let mismatch = check(&expectation(Check::Reply(vec![pattern])), &turn);
        let expected = Mismatch {
            at: SourcePosition { file: PathBuf::from("bot/tests/a.yml"), line: 7, column: 9 },
            field: "reply",
            expected: "exact \"first\"".to_owned(),
            actual: "\"first\\nsecond\"".to_owned(),
        };
        assert_eq!(mismatch, Some(expected));
        Ok(())
    }

    #[test]
    fn reply_list_passes_on_any_pattern() -> anyhow::Result<()> {
        let patterns = vec![
            ReplyPattern { contains: Some("absent".to_owned()), ..Default::default() },
            ReplyPattern { contains: Some("已发货".to_owned()), ..Default::default() },
        ];
        let turn = turn_with_replies(&["订单 100001 已发货"]);
        assert_eq!(check(&expectation(Check::Reply(patterns)), &turn), None);
        Ok(())
    }

    #[test]
    fn buttons_match_payload_or_title() -> anyhow::Result<()> {
        let mut reply = Reply::bot("Anything else?");
        reply.quick_replies = vec![bot_core::QuickReply { title: "Talk to a person".to_owned(), payload: "/human".to_owned() }];
        let turn = Turn { replies: vec![reply], understanding: Understanding::default() };
        let found = vec!["/human".to_owned(), "Talk to a person".to_owned()];
        assert_eq!(check(&expectation(Check::Buttons(found)), &turn), None);
        let missing = check(&expectation(Check::Buttons(vec!["/order_status".to_owned()])), &turn);
        let missing = missing.ok_or_else(|| anyhow::anyhow!("no mismatch"))?;
        assert_eq!(missing.actual, "\"Talk to a person\" (\"/human\")");
        Ok(())
    }

    #[test]
    fn intent_mismatch_shows_ranking() -> anyhow::Result<()> {
        let mut turn = Turn::default();
        turn.understanding.ranking = vec![ScoredIntent { intent: IntentId::new("greet"), confidence: 0.41 }];
        let mismatch = check(&expectation(Check::Intent(Some(IntentId::new("thanks")))), &turn);
        let mismatch = mismatch.ok_or_else(|| anyhow::anyhow!("no mismatch"))?;
        assert_eq!(mismatch.expected, "`thanks`");
        assert_eq!(mismatch.actual, "no intent (ranked: greet 0.41)");
        Ok(())
    }

    #[test]
    fn slots_mismatch_lists_expected_slots() -> anyhow::Result<()> {
        let mut turn = Turn::default();
        turn.understanding.slots.insert(SlotName::new("order_number"), "100002".to_owned());
        let expected = vec![(SlotName::new("order_number"), Some("100001".to_owned())), (SlotName::new("confirm"), None)];
        let mismatch = check(&expectation(Check::Slots(expected)), &turn).ok_or_else(|| anyhow::anyhow!("no mismatch"))?;
        assert_eq!(mismatch.expected, "order_number = \"100001\", confirm unset");
        assert_eq!(mismatch.actual, "order_number = \"100002\", confirm unset");
        Ok(())
    }

    #[test]
    fn handoff_reads_waiting_notice() -> anyhow::Result<()> {
        let mut reply = Reply::bot("A person will answer soon.");
        let state = HandoffState::WaitingForAgent { since: 1, reason: HandoffReason::Requested, reminded_at: None, no_agent_offered_at: None };
        reply.handoff = Some(HandoffNotice { state, reason: Some(HandoffReason::Requested) });
        let turn = Turn { replies: vec![reply], understanding: Understanding::default() };
        assert_eq!(check(&expectation(Check::Handoff(true)), &turn), None);
        let mismatch = check(&expectation(Check::Handoff(false)), &turn).ok_or_else(|| anyhow::anyhow!("no mismatch"))?;
        assert_eq!(mismatch.actual, "handed off (reason: requested)");
        Ok(())
    }

    #[test]
    fn knowledge_none_expects_no_answer() -> anyhow::Result<()> {
        let mut turn = Turn::default();
        turn.understanding.knowledge_source = Some("faq:gift_wrapping".to_owned());
        let mismatch = check(&expectation(Check::Knowledge(Vec::new())), &turn).ok_or_else(|| anyhow::anyhow!("no mismatch"))?;
        assert_eq!((mismatch.expected.as_str(), mismatch.actual.as_str()), ("no knowledge answer", "`faq:gift_wrapping`"));
        Ok(())
    }
}
