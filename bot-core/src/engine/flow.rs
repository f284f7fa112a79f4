//! Running flow steps, and rendering responses.

use std::time::Duration;

use crate::action::HttpRequest;
use crate::bot::{AskStep, BranchArm, ConditionTest, HttpStep, StepKind, Target};
use crate::handoff::HandoffReason;
use crate::ids::{FlowId, SlotName};
use crate::message::{QuickReply, Reply};
use crate::session::{DialogState, Session};
use crate::text::interpolate;

use super::turn::Turn;
use super::{builtin, Runtime};

/// Steps one turn may run before the engine assumes a `goto` loop and stops.
const MAX_STEPS_PER_TURN: usize = 64;

/// What a step asks the runner to do next.
enum Next {
    Continue,
    Jump(Target),
    /// The flow waits for the customer or has ended.
    Stop,
}

pub(super) fn ask_step<'r>(runtime: &'r Runtime, flow: &FlowId, step: usize) -> Option<&'r AskStep> {
    match &runtime.bot.flows.get(flow)?.steps.get(step)?.kind {
        StepKind::Ask(ask) => Some(ask),
        _ => None,
    }
}

/// Where a waiting form stands in the current bot, which a reload may have changed.
pub(super) enum FormPosition {
    /// The step still asks for the slot, at this index.
    At(usize),
    /// The flow no longer asks for the slot: start the flow again.
    Changed,
    /// The flow no longer exists.
    Gone,
}

/// Finds the `ask` step of a waiting form: at its index if it still asks for
/// the same slot, else wherever the flow now asks for it. A session stored
/// before forms recorded their slot (`slot` is `None`) trusts the index.
pub(super) fn locate_form(runtime: &Runtime, flow: &FlowId, step: usize, slot: Option<&SlotName>) -> FormPosition {
    let Some(definition) = runtime.bot.flows.get(flow) else {
        return FormPosition::Gone;
    };
    let asks = |index: usize| match definition.steps.get(index).map(|s| &s.kind) {
        Some(StepKind::Ask(ask)) => slot.is_none_or(|slot| &ask.slot == slot),
        _ => false,
    };
    if asks(step) {
        return FormPosition::At(step);
    }
    match slot.and_then(|_| (0..definition.steps.len()).find(|&index| asks(index))) {
        Some(index) => FormPosition::At(index),
        None => FormPosition::Changed,
    }
}

impl Turn<'_> {
    /// Runs `flow` from step `start` until it asks a question, ends or hands off.
    pub async fn run_flow(&mut self, flow: &FlowId, start: usize) {
        let mut flow = flow.clone();
        let mut index = start;
        for _ in 0..MAX_STEPS_PER_TURN {
            let runtime = self.runtime;
            let Some(definition) = runtime.bot.flows.get(&flow) else {
                tracing::error!(%flow, "flow not found; ending it");
                return;
            };
            let Some(step) = definition.steps.get(index) else {
                return;
            };

            match self.run_step(&flow, index, &step.kind).await {
                Next::Continue => index += 1,
                Next::Stop => return,
                Next::Jump(Target::Handoff) => {
                    self.hand_off(HandoffReason::FlowStep);
                    return;
                }
                Next::Jump(Target::Flow(next)) => {
                    flow = next;
                    index = 0;
                }
                Next::Jump(Target::Step(id)) => match definition.step_index(&id) {
                    Some(found) => index = found,
                    None => {
                        tracing::error!(%flow, step = %id, "goto target not found; ending the flow");
                        return;
                    }
                },
            }
        }
        tracing::error!(%flow, "flow ran {MAX_STEPS_PER_TURN} steps in one turn; stopping a likely goto loop");
        self.say("action_failed");
    }

    /// Continues at `target` from `flow`; a handoff uses `reason`.
    pub async fn jump(&mut self, flow: &FlowId, target: &Target, reason: HandoffReason) {
        match target {
            Target::Handoff => self.hand_off(reason),
            Target::Flow(next) => Box::pin(self.run_flow(next, 0)).await,
            Target::Step(id) => {
                let index = self.runtime.bot.flows.get(flow).and_then(|f| f.step_index(id));
                match index {
                    Some(index) => Box::pin(self.run_flow(flow, index)).await,
                    None => tracing::error!(%flow, step = %id, "jump target not found"),
                }
            }
        }
    }

    async fn run_step(&mut self, flow: &FlowId, index: usize, kind: &StepKind) -> Next {
        match kind {
            StepKind::Say(response) => {
                self.say(response.as_str());
                Next::Continue
            }
            StepKind::Ask(ask) => {
                if std::mem::take(&mut self.prefill) {
                    if let Some(value) = self.prefilled_value(ask) {
                        tracing::debug!(slot = %ask.slot, "slot filled from the message that started the flow");
                        self.session.slots.insert(ask.slot.clone(), value);
                        return Next::Continue;
                    }
                }
                self.say(ask.prompt.as_str());
                self.session.dialog = DialogState::AwaitingSlot { flow: flow.clone(), step: index, slot: Some(ask.slot.clone()), attempts: 0 };
                Next::Stop
            }
            StepKind::Branch(arms) => match choose_arm(arms, &self.session) {
                Some(target) => Next::Jump(target),
                None => Next::Continue,
            },
            StepKind::Http(http) => self.run_http(http).await,
            StepKind::Knowledge { query, on_miss } => {
                let query = query.as_ref().map(|q| self.fill(q));
                if self.answer_from_knowledge(query.as_deref()).await {
                    return Next::Continue;
                }
                match on_miss {
                    Some(target) => Next::Jump(target.clone()),
                    None => {
                        self.say("fallback");
                        Next::Continue
                    }
                }
            }
            StepKind::Handoff { reason } => {
                self.hand_off(reason.clone());
                Next::Stop
            }
            StepKind::Goto(target) => Next::Jump(target.clone()),
            StepKind::End => Next::Stop,
        }
    }

    async fn run_http(&mut self, step: &HttpStep) -> Next {
        // Slot values come from customers, so they are encoded; variables are
        // the operator's and may hold a whole base URL.
        let variables = &self.runtime.bot.settings.variables;
        let url = interpolate(&step.url, |name| match self.session.slots.get(&SlotName::new(name)) {
            Some(value) => Some(percent_encode(value)),
            None => variables.get(name).cloned(),
        });
        let body = step.body.as_ref().map(|body| self.fill_json(body));
        let request = HttpRequest { method: step.method.clone(), url, body, timeout: step.timeout_ms.map(Duration::from_millis) };

        let started = std::time::Instant::now();
        let result = self.engine.inner.http.send(request).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                // The URL may contain slot values the customer typed, so only DEBUG logs it.
                tracing::warn!(error = error.kind(), elapsed_ms, "HTTP action failed");
                tracing::debug!(%error, "HTTP action failure detail");
                return self.http_failed(step);
            }
        };

        tracing::debug!(status = response.status, elapsed_ms, "HTTP action returned a response");
        if let Some(target) = step.on_status.get(&response.status) {
            return Next::Jump(target.clone());
        }
        if !(200..300).contains(&response.status) {
            tracing::warn!(status = response.status, "HTTP action returned an error status");
            return self.http_failed(step);
        }

        for (slot, pointer) in &step.save {
            match response.body.pointer(pointer) {
                Some(value) if !value.is_null() => {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    self.session.slots.insert(slot.clone(), text);
                }
                _ => {
                    tracing::debug!(%slot, pointer, "HTTP response has no value at pointer; slot cleared");
                    self.session.slots.remove(slot);
                }
            }
        }
        Next::Continue
    }

    fn http_failed(&mut self, step: &HttpStep) -> Next {
        match &step.on_error {
            Some(target) => Next::Jump(target.clone()),
            None => {
                self.say("action_failed");
                Next::Stop
            }
        }
    }

    /// Returns the value a strict slot (not free text) finds in the customer's
    /// message, so that "where is my order 100001" need not be asked for the number.
    fn prefilled_value(&self, ask: &AskStep) -> Option<String> {
        let slot = self.runtime.bot.slots.get(&ask.slot)?;
        if matches!(slot.kind, crate::bot::SlotKind::Text) || crate::text::is_payload(&self.text) {
            return None;
        }
        crate::text::parse_slot_value(&slot.kind, &self.text, self.runtime.patterns.get(&ask.slot))
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let settings = &self.runtime.bot.settings;
        self.session.slots.get(&SlotName::new(name)).cloned().or_else(|| settings.variables.get(name).cloned())
    }

    fn fill(&self, template: &str) -> String {
        interpolate(template, |name| self.lookup(name))
    }

    fn fill_json(&self, value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::String(s) => serde_json::Value::String(self.fill(s)),
            serde_json::Value::Array(items) => items.iter().map(|v| self.fill_json(v)).collect(),
            serde_json::Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), self.fill_json(v))).collect(),
            other => other.clone(),
        }
    }
}

fn choose_arm(arms: &[BranchArm], session: &Session) -> Option<Target> {
    arms.iter().find(|arm| arm.condition.as_ref().is_none_or(|c| test_condition(&c.test, session.slots.get(&c.slot)))).map(|arm| arm.target.clone())
}

fn test_condition(test: &ConditionTest, value: Option<&String>) -> bool {
    let number = || value.and_then(|v| v.trim().parse::<f64>().ok());
    match test {
        ConditionTest::Equals(expected) => value.is_some_and(|v| v == expected),
        ConditionTest::In(options) => value.is_some_and(|v| options.contains(v)),
        ConditionTest::IsSet(expected) => value.is_some() == *expected,
        ConditionTest::LessThan(limit) => number().is_some_and(|n| n < *limit),
        ConditionTest::GreaterThan(limit) => number().is_some_and(|n| n > *limit),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a slot value
/// cannot change the path or query of an HTTP action's URL.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Renders a response for the session's language: picks a variant by turn,
/// fills placeholders from the slots, `extra` and the bot's variables.
pub(super) fn render(runtime: &Runtime, session: &Session, response: &str, extra: &[(&str, &str)]) -> Reply {
    let bot = &runtime.bot;
    let lookup = |name: &str| {
        extra
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
            .or_else(|| session.slots.get(&SlotName::new(name)).cloned())
            .or_else(|| bot.settings.variables.get(name).cloned())
    };

    let defined = bot.responses.get(&crate::ids::ResponseId::new(response));
    let variants = defined.and_then(|r| {
        let default = bot.settings.default_language();
        r.variants.get(&session.lang).or_else(|| r.variants.get(&default)).or_else(|| r.variants.values().next())
    });
    if let Some(variants) = variants.filter(|v| !v.is_empty()) {
        let variant = &variants[(session.turns as usize).saturating_sub(1) % variants.len()];
        let mut reply = Reply::bot(interpolate(&variant.text, lookup));
        reply.quick_replies = variant
            .buttons
            .iter()
            .map(|b| QuickReply { title: interpolate(&b.title, lookup), payload: interpolate(&b.payload, lookup) })
            .collect();
        return reply;
    }

    match builtin::text(response, session.lang.as_str()) {
        Some(text) => Reply::bot(interpolate(text, lookup)),
        None => {
            tracing::error!(response, "response not found; sending nothing in its place");
            Reply::bot(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn percent_encode_path_characters() {
        assert_eq!(percent_encode("a/b?c 订"), "a%2Fb%3Fc%20%E8%AE%A2");
    }
}
