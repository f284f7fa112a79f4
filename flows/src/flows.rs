//! The `flows:` section: steps, targets and conditions.

use std::collections::{BTreeMap, BTreeSet};

use bot_core::bot::{AskStep, BranchArm, Condition, ConditionTest, Flow, Step, StepKind, Target};
use bot_core::{FlowId, HandoffReason, ResponseId, SlotName, StepId};

use crate::convert::{Converter, Kind};
use crate::cx::{optional, suggestion, Fields};
use crate::reach::unreachable_steps;
use crate::sections::{place, Definition};
use crate::tree::{Entry, Loc, Node};

pub(crate) const STEP_KINDS: [&str; 8] = ["say", "ask", "branch", "http", "knowledge", "handoff", "goto", "end"];
const ASK_FIELDS: [&str; 4] = ["prompt", "invalid", "max_attempts", "on_exhausted"];
const CONDITION_TESTS: [&str; 5] = ["equals", "in", "set", "less_than", "greater_than"];

/// The word that, as a target, hands the conversation to a person.
const HANDOFF: &str = "handoff";
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The reasons a `handoff` step may give, as written in YAML. A bare `handoff` gives `flow_step`.
const HANDOFF_REASONS: [(&str, HandoffReason); 4] = [
    ("requested", HandoffReason::Requested),
    ("repeated_fallback", HandoffReason::RepeatedFallback),
    ("form_exhausted", HandoffReason::FormExhausted),
    ("flow_step", HandoffReason::FlowStep),
];

/// The flow being converted and the step ids its targets can name.
pub(crate) struct FlowScope {
    pub name: String,
    pub step_ids: BTreeSet<String>,
}

impl Converter<'_, '_> {
    pub fn convert_flows(&mut self) -> BTreeMap<FlowId, Flow> {
        let mut flows = BTreeMap::new();
        let sections = self.sections;
        for definition in &sections.flows.definitions {
            if definition.name == HANDOFF {
                self.cx.error(definition.key.loc, "`handoff` is a reserved target and cannot name a flow; rename the flow");
                continue;
            }
            if let Some((flow, locs)) = self.convert_flow(definition) {
                flows.insert(FlowId::new(definition.name.clone()), flow);
                self.step_locs.insert(definition.name.clone(), locs);
            }
        }
        for duplicate in &sections.flows.duplicates {
            self.check_discarded(|converter| drop(converter.convert_flow(duplicate)));
        }
        flows
    }

    /// Converts a flow, returning it with the place of each step.
    fn convert_flow(&mut self, definition: &Definition<'_>) -> Option<(Flow, Vec<Loc>)> {
        let what = format!("flow `{}`", definition.name);
        let fields = self.cx.fields(definition.value, definition.key.loc, &what, &["steps"])?;
        let node = fields.require(&mut self.cx, "steps")?;
        let items = self.cx.list(node, &format!("the steps of {what}"))?;
        if items.is_empty() {
            self.cx.error(node.loc, format!("{what} has no steps; add at least one"));
            return None;
        }

        let scope = FlowScope { name: definition.name.clone(), step_ids: self.collect_step_ids(items) };
        let converted: Vec<Option<Step>> = items.iter().map(|item| self.convert_step(item, &scope)).collect();
        for index in unreachable_steps(&converted) {
            self.report_unreachable(&converted, items, index);
        }
        let steps: Option<Vec<Step>> = converted.into_iter().collect();
        let locs = items.iter().map(|item| item.loc.start()).collect();
        Some((Flow { steps: steps? }, locs))
    }

    /// Collects the ids of the flow's steps, reporting ids used twice and the reserved `handoff`.
    fn collect_step_ids(&mut self, items: &[Node]) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut first_seen: BTreeMap<String, Loc> = BTreeMap::new();
        for item in items {
            let Some(entry) = item.entries().and_then(|e| e.iter().find(|e| e.key.scalar().is_some_and(|s| s.text == "id"))) else {
                continue;
            };
            let Some(id) = self.cx.name(&entry.value, "step id") else { continue };
            if id == HANDOFF {
                self.cx.error(entry.value.loc, "`handoff` is a reserved target and cannot be a step id; rename the step");
                continue;
            }
            if let Some(first) = first_seen.get(&id) {
                let message = format!("step id `{id}` is used twice in this flow; the first is at {}", place(&self.cx, *first));
                self.cx.error(entry.value.loc, message);
                continue;
            }
            first_seen.insert(id.clone(), entry.value.loc);
            ids.insert(id);
        }
        ids
    }

    fn report_unreachable(&mut self, steps: &[Option<Step>], items: &[Node], index: usize) {
        let previous = index.checked_sub(1).and_then(|i| steps[i].as_ref()).map(|step| kind_word(&step.kind));
        let after = previous.map(|word| format!("it follows `{word}` and ")).unwrap_or_default();
        let message = format!(
            "unreachable step: {after}no reachable step jumps to it; give it an `id` that a `goto` or other target names, or remove it"
        );
        self.cx.error(items[index].loc.start(), message);
    }

    fn convert_step(&mut self, node: &Node, scope: &FlowScope) -> Option<Step> {
        if node.scalar().is_some() {
            let word = self.cx.string(node, "a step")?;
            return match word.as_str() {
                "end" => Some(Step { id: None, kind: StepKind::End }),
                "handoff" => Some(Step { id: None, kind: StepKind::Handoff { reason: HandoffReason::FlowStep } }),
                other => {
                    let hint = suggestion(other, ["end", "handoff"]);
                    let message = format!("unknown step `{other}`; a step written as a bare word is `end` or `handoff` ({hint})");
                    self.cx.error(node.loc, message);
                    None
                }
            };
        }

        let keys: Vec<&str> = node.entries().unwrap_or_default().iter().filter_map(|e| e.key.scalar().map(|s| s.text.as_str())).collect();
        let kinds: Vec<&str> = keys.iter().copied().filter(|key| STEP_KINDS.contains(key)).collect();
        let mut allowed: Vec<&str> = STEP_KINDS.to_vec();
        allowed.push("id");
        if kinds.is_empty() || kinds.contains(&"ask") {
            allowed.extend(ASK_FIELDS);
        }
        let fields = self.cx.fields(node, node.loc.start(), "the step", &allowed)?;
        let Some(&kind) = kinds.first() else {
            if keys.iter().all(|key| allowed.contains(key)) {
                let message = format!("step has no kind; add one of {}", STEP_KINDS.map(|k| format!("`{k}`")).join(", "));
                self.cx.error(node.loc.start(), message);
            }
            return None;
        };
        if let Some(second) = kinds.get(1) {
            let at = fields.entry(second).map_or(node.loc, |entry| entry.key.loc);
            self.cx.error(at, format!("a step has one kind, but this one has `{kind}` and `{second}`; split it into two steps"));
            return None;
        }

        let id = fields.get("id").and_then(|n| n.scalar()).map(|s| StepId::new(s.text.clone()));
        let entry = fields.entry(kind)?;
        let kind = self.convert_step_kind(kind, entry, &fields, scope)?;
        Some(Step { id, kind })
    }

    fn convert_step_kind(&mut self, kind: &str, entry: &Entry, fields: &Fields<'_>, scope: &FlowScope) -> Option<StepKind> {
        let value = &entry.value;
        match kind {
            "say" => self.reference_node(Kind::Response, value).map(|name| StepKind::Say(ResponseId::new(name))),
            "ask" => self.convert_ask(value, fields, scope).map(StepKind::Ask),
            "branch" => self.convert_branch(value, scope).map(StepKind::Branch),
            "http" => self.convert_http(value, entry.key.loc, scope).map(StepKind::Http),
            "knowledge" => self.convert_knowledge(value, entry.key.loc, scope),
            "goto" => self.target(value, scope).map(StepKind::Goto),
            "handoff" => self.convert_handoff(value, entry.key.loc).map(|reason| StepKind::Handoff { reason }),
            "end" => {
                let empty = value.is_null() || value.entries().is_some_and(<[_]>::is_empty);
                if !empty {
                    self.cx.error(value.loc.start(), "`end` takes no value; write `end: {}` or leave it empty");
                    return None;
                }
                Some(StepKind::End)
            }
            _ => None,
        }
    }

    /// Reads the value of a `handoff:` key written at `owner`: empty, or `{ reason: NAME }`.
    fn convert_handoff(&mut self, value: &Node, owner: Loc) -> Option<HandoffReason> {
        if value.is_null() {
            return Some(HandoffReason::FlowStep);
        }
        if value.scalar().is_some() {
            let message = "`handoff` takes no value or a reason; write `handoff: { reason: requested }` or leave it empty";
            self.cx.error(value.loc, message);
            return None;
        }
        let fields = self.cx.fields(value, owner, "a handoff step", &["reason"])?;
        let Some(node) = fields.get("reason") else { return Some(HandoffReason::FlowStep) };
        let name = self.cx.string(node, "a handoff reason")?;
        if let Some((_, reason)) = HANDOFF_REASONS.iter().find(|(written, _)| *written == name) {
            return Some(reason.clone());
        }
        let hint = suggestion(&name, HANDOFF_REASONS.iter().map(|(written, _)| *written));
        self.cx.error(node.loc, format!("unknown handoff reason `{name}`; {hint}"));
        None
    }

    fn convert_ask(&mut self, value: &Node, fields: &Fields<'_>, scope: &FlowScope) -> Option<AskStep> {
        let slot = self.reference_node(Kind::Slot, value);
        if let Some(slot) = &slot {
            self.usage.filled_slots.insert(slot.clone());
        }
        let prompt = fields.require(&mut self.cx, "prompt").and_then(|n| self.reference_node(Kind::Response, n));
        let invalid = fields.get("invalid").map(|n| self.reference_node(Kind::Response, n));
        let max_attempts = match fields.get("max_attempts") {
            Some(node) => self.cx.integer(node, "max_attempts", 1, u64::from(u32::MAX)).map(|n| n as u32),
            None => Some(DEFAULT_MAX_ATTEMPTS),
        };
        let on_exhausted = fields.get("on_exhausted").map(|n| self.target(n, scope));
        Some(AskStep {
            slot: SlotName::new(slot?),
            prompt: ResponseId::new(prompt?),
            invalid: optional(invalid.map(|name| name.map(ResponseId::new)))?,
            max_attempts: max_attempts?,
            on_exhausted: optional(on_exhausted)?,
        })
    }

    fn convert_branch(&mut self, value: &Node, scope: &FlowScope) -> Option<Vec<BranchArm>> {
        let items = self.cx.list(value, "the arms of a branch")?;
        if items.is_empty() {
            self.cx.error(value.loc, "branch has no arms; add `{ if: CONDITION, goto: TARGET }` arms");
            return None;
        }
        let mut arms = Vec::new();
        let mut complete = true;
        for (index, item) in items.iter().enumerate() {
            let Some(fields) = self.cx.fields(item, item.loc.start(), "a branch arm", &["if", "goto", "else"]) else {
                complete = false;
                continue;
            };
            let arm = if let Some(target) = fields.get("else") {
                self.convert_else_arm(&fields, target, index + 1 == items.len(), scope)
            } else {
                self.convert_if_arm(&fields, item, scope)
            };
            complete &= arm.is_some();
            arms.extend(arm);
        }
        complete.then_some(arms)
    }

    fn convert_else_arm(&mut self, fields: &Fields<'_>, target: &Node, is_last: bool, scope: &FlowScope) -> Option<BranchArm> {
        for extra in ["if", "goto"] {
            if let Some(entry) = fields.entry(extra) {
                self.cx.error(entry.key.loc, format!("an `else` arm has no `{extra}`; move it to its own arm"));
            }
        }
        if !is_last {
            self.cx.error(target.loc, "the `else` arm must be the last arm; the arms after it never run");
        }
        let target = self.target(target, scope)?;
        Some(BranchArm { condition: None, target })
    }

    fn convert_if_arm(&mut self, fields: &Fields<'_>, item: &Node, scope: &FlowScope) -> Option<BranchArm> {
        let condition = fields.require(&mut self.cx, "if").and_then(|n| self.convert_condition(n));
        let target = fields.require(&mut self.cx, "goto").and_then(|n| self.target(n, scope));
        if condition.is_none() && target.is_none() && !fields.has("if") && !fields.has("goto") {
            self.cx.error(item.loc.start(), "empty branch arm; write `{ if: CONDITION, goto: TARGET }` or `{ else: TARGET }`");
        }
        Some(BranchArm { condition: Some(condition?), target: target? })
    }

    fn convert_condition(&mut self, node: &Node) -> Option<Condition> {
        let mut allowed = vec!["slot"];
        allowed.extend(CONDITION_TESTS);
        let fields = self.cx.fields(node, node.loc.start(), "a condition", &allowed)?;
        let slot = fields.require(&mut self.cx, "slot").and_then(|n| self.reference_node(Kind::Slot, n));
        let tests: Vec<&str> = fields.names().filter(|name| CONDITION_TESTS.contains(name)).collect();
        let test = match tests.as_slice() {
            [test] => fields.get(test).and_then(|value| self.convert_test(test, value, slot.as_deref())),
            [] => {
                let list = CONDITION_TESTS.map(|t| format!("`{t}`")).join(", ");
                self.cx.error(node.loc.start(), format!("condition has no test; add one of {list}"));
                None
            }
            [first, second, ..] => {
                let at = fields.entry(second).map_or(node.loc, |entry| entry.key.loc);
                self.cx.error(at, format!("a condition has one test, but this one has `{first}` and `{second}`; use two arms"));
                None
            }
        };
        Some(Condition { slot: SlotName::new(slot?), test: test? })
    }

    fn convert_test(&mut self, test: &str, value: &Node, slot: Option<&str>) -> Option<ConditionTest> {
        match test {
            "equals" => {
                let text = self.cx.text(value, "the value to compare with")?;
                self.check_choice_value(slot, &text, value.loc);
                Some(ConditionTest::Equals(text))
            }
            "in" => {
                let texts = self.cx.strings(value, "a value to compare with")?;
                for (text, loc) in &texts {
                    self.check_choice_value(slot, text, *loc);
                }
                Some(ConditionTest::In(texts.into_iter().map(|(text, _)| text).collect()))
            }
            "set" => self.cx.bool(value, "set").map(ConditionTest::IsSet),
            "less_than" => self.cx.number(value, "less_than").map(ConditionTest::LessThan),
            _ => self.cx.number(value, "greater_than").map(ConditionTest::GreaterThan),
        }
    }

    /// Reports a compared value that a choice slot can never hold.
    fn check_choice_value(&mut self, slot: Option<&str>, text: &str, loc: Loc) {
        let Some(values) = slot.and_then(|slot| self.choice_values.get(slot)) else { return };
        if values.iter().any(|value| value == text) {
            return;
        }
        let hint = suggestion(text, values.iter().map(String::as_str));
        let slot = slot.unwrap_or_default();
        self.cx.error(loc, format!("`{text}` is not a value of choice slot `{slot}`, so this never matches; {hint}"));
    }

    fn convert_knowledge(&mut self, value: &Node, owner: Loc, scope: &FlowScope) -> Option<StepKind> {
        if value.is_null() {
            return Some(StepKind::Knowledge { query: None, on_miss: None });
        }
        let fields = self.cx.fields(value, owner, "a knowledge step", &["query", "on_miss"])?;
        let query = fields.get("query").map(|n| self.interpolated(n, "a knowledge query"));
        let on_miss = fields.get("on_miss").map(|n| self.target(n, scope));
        Some(StepKind::Knowledge { query: optional(query)?, on_miss: optional(on_miss)? })
    }

    /// Reads a target: a step id of this flow, else a flow id, else `handoff`.
    pub(crate) fn target(&mut self, node: &Node, scope: &FlowScope) -> Option<Target> {
        let name = self.cx.name(node, "target")?;
        if scope.step_ids.contains(&name) {
            return Some(Target::Step(StepId::new(name)));
        }
        if self.sections.flows.contains(&name) {
            self.usage.flows.insert(name.clone());
            return Some(Target::Flow(FlowId::new(name)));
        }
        if name == HANDOFF {
            return Some(Target::Handoff);
        }
        if self.unparsed.mentions(&name) {
            return Some(Target::Flow(FlowId::new(name)));
        }
        let candidates = scope.step_ids.iter().map(String::as_str).chain(self.sections.flows.names()).chain([HANDOFF]);
        let hint = suggestion(&name, candidates);
        let message = format!("undefined target `{name}`: no step of flow `{}` and no flow has this id; {hint}", scope.name);
        self.cx.error(node.loc, message);
        None
    }
}

/// Returns the word for a step's kind, as written in YAML.
fn kind_word(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Say(_) => "say",
        StepKind::Ask(_) => "ask",
        StepKind::Branch(_) => "branch",
        StepKind::Http(_) => "http",
        StepKind::Knowledge { .. } => "knowledge",
        StepKind::Handoff { .. } => "handoff",
        StepKind::Goto(_) => "goto",
        StepKind::End => "end",
    }
}
