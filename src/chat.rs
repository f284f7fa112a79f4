//! `lepton chat DIR`: a chat with a bot in the terminal, for its authors. Each line
//! read from standard input is one customer message, run through the real engine
//! with an in-memory session store. Under the bot's replies an indented block shows
//! what the bot made of the message: the intent ranking, what it acted on, the
//! slots, where the flow waits, the knowledge source and the handoff state.
//!
//! It works with piped input too, so that it can be scripted and tested. Colour is
//! used only when standard output is a terminal and `NO_COLOR` is unset.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bot_core::bot::{IntentAction, StepKind, KNOWLEDGE_INTENT};
use bot_core::{BotDefinition, Channel, ConversationId, DialogState, Engine, EngineParts, EventKind, HandoffState, InboundMessage, MemoryStore, Session, TurnOutcome, Understanding};

use crate::app::{self, BotPaths};

/// The channel name the chat's messages carry.
const CHANNEL: &str = "terminal";
const PROMPT: &str = "you> ";
const QUIT: &str = "/quit";
const RESET: &str = "/reset";

/// Text styles, empty when colour is off.
#[derive(Clone, Copy)]
struct Style {
    colour: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// Loads and prepares the bot, then chats on standard input and output until
/// `/quit` or the end of input. When the bot folder has `orders.json`, the demo
/// orders endpoint is served on a free loopback port for the bot's HTTP steps.
pub fn run(paths: &BotPaths) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let server_url = match paths.bot_dir.join("orders.json").is_file() {
        true => Some(runtime.block_on(serve_demo_orders(paths))?),
        false => None,
    };
    let prepared = app::prepare(paths, server_url.as_deref())?;
    let bot = prepared.bot.clone();
    let engine = runtime.block_on(async {
        let http = Arc::new(crate::http_client::ReqwestClient::new(crate::http_client::HttpClientConfig::default()).context("cannot create the HTTP client")?);
        let store = Arc::new(MemoryStore::new());
        let parts = EngineParts { classifier: prepared.classifier, knowledge: prepared.knowledge, http, store };
        anyhow::Ok(Engine::new(prepared.bot, parts))
    })?;

    let stdin = std::io::stdin();
    let echo = !stdin.is_terminal();
    let style = Style { colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() };
    let mut chat = Chat { engine, bot, style, conversation: 1 };
    chat.converse(stdin.lock(), &mut std::io::stdout(), echo, &runtime)
}

async fn serve_demo_orders(paths: &BotPaths) -> anyhow::Result<String> {
    let router = crate::demo_orders::router(crate::demo_orders::load(&paths.bot_dir)?);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.context("cannot listen on 127.0.0.1 for the demo orders")?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the demo orders endpoint stopped");
        }
    });
    Ok(format!("http://{address}"))
}

struct Chat {
    engine: Engine,
    bot: Arc<BotDefinition>,
    style: Style,
    /// Counts conversations, so that `/reset` starts a new one.
    conversation: u32,
}

impl Chat {
    fn conversation_id(&self) -> ConversationId {
        ConversationId::new(format!("{CHANNEL}:{}", self.conversation))
    }

    fn converse(&mut self, input: impl BufRead, out: &mut impl Write, echo: bool, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
        let languages: Vec<&str> = self.bot.settings.languages.iter().map(|lang| lang.as_str()).collect();
        writeln!(out, "Chatting with {} ({}). Type a message; {RESET} starts a new conversation, {QUIT} exits.", self.bot.settings.name, languages.join(", "))?;
        let mut lines = input.lines();
        loop {
            write!(out, "{}", self.style.bold(PROMPT))?;
            out.flush()?;
            let Some(line) = lines.next() else {
                writeln!(out)?;
                return Ok(());
            };
            let line = line.context("cannot read standard input")?;
            if echo {
                writeln!(out, "{line}")?;
            }
            match line.trim() {
                "" => continue,
                QUIT => return Ok(()),
                RESET => {
                    self.conversation += 1;
                    writeln!(out, "{}", self.style.dim("(new conversation)"))?;
                }
                text => runtime.block_on(self.turn(text, out))?,
            }
        }
    }

    async fn turn(&self, text: &str, out: &mut impl Write) -> anyhow::Result<()> {
        let id = self.conversation_id();
        let before = self.engine.session(&id).await?;
        let outcome = self.engine.handle(InboundMessage::text(id.clone(), Channel::new(CHANNEL), text)).await?;
        let after = self.engine.session(&id).await?;

        write_replies(out, &outcome, self.style)?;
        let details = describe_turn(&self.bot, &outcome, before.as_ref(), after.as_ref());
        for (label, value) in details {
            writeln!(out, "{}", self.style.dim(&format!("    │ {label:<9} {value}")))?;
        }
        Ok(())
    }
}

fn write_replies(out: &mut impl Write, outcome: &TurnOutcome, style: Style) -> anyhow::Result<()> {
    for reply in outcome.events.iter().filter_map(|event| event.reply()) {
        let mut lines = reply.text.lines();
        writeln!(out, "{}{}", style.bold("bot> "), lines.next().unwrap_or_default())?;
        for line in lines {
            writeln!(out, "     {line}")?;
        }
        if !reply.quick_replies.is_empty() {
            let buttons: Vec<String> = reply.quick_replies.iter().map(|button| format!("[{}] {}", button.title, button.payload)).collect();
            writeln!(out, "     {}", buttons.join("  "))?;
        }
    }
    Ok(())
}

/// Returns the lines of the block under the replies, as label and value.
fn describe_turn(bot: &BotDefinition, outcome: &TurnOutcome, before: Option<&Session>, after: Option<&Session>) -> Vec<(&'static str, String)> {
    let understanding = outcome.events.iter().find_map(|event| match &event.kind {
        EventKind::Customer { understanding, .. } => understanding.clone(),
        EventKind::Reply(_) | EventKind::Note { .. } => None,
    });
    let understanding = understanding.unwrap_or_default();

    let mut lines = vec![("intents", ranking(&understanding)), ("action", action(bot, &understanding, before))];
    if let Some(source) = &understanding.knowledge_source {
        lines.push(("knowledge", source.clone()));
    }
    lines.push(("slots", slots(&understanding)));
    if let Some(session) = after {
        lines.push(("step", dialog(bot, &session.dialog)));
        if session.handoff != HandoffState::Bot {
            lines.push(("handoff", handoff(&session.handoff)));
        }
    }
    lines
}

fn ranking(understanding: &Understanding) -> String {
    if understanding.ranking.is_empty() {
        return "(not classified)".to_owned();
    }
    let ranked: Vec<String> = understanding.ranking.iter().take(3).map(|scored| format!("{} {:.2}", scored.intent, scored.confidence)).collect();
    ranked.join(", ")
}

/// Describes what the bot did with the message: the intent it acted on and that
/// intent's flow or response, a knowledge answer, a form answer or the fallback.
fn action(bot: &BotDefinition, understanding: &Understanding, before: Option<&Session>) -> String {
    if let Some(intent) = &understanding.intent {
        if intent.as_str() == KNOWLEDGE_INTENT {
            return format!("intent {intent}: a question for the knowledge base");
        }
        return match bot.intents.get(intent).map(|definition| &definition.action) {
            Some(IntentAction::Flow(flow)) => format!("intent {intent} → flow {flow}"),
            Some(IntentAction::Respond(response)) => format!("intent {intent} → response {response}"),
            None => format!("intent {intent}"),
        };
    }
    if let Some(Session { dialog: DialogState::AwaitingSlot { flow, step, .. }, .. }) = before {
        return format!("answer to {}", step_name(bot, flow.as_str(), *step));
    }
    if understanding.knowledge_source.is_some() {
        return "no intent passed the threshold; answered from the knowledge base".to_owned();
    }
    "no intent passed the threshold and margin: fallback".to_owned()
}

fn slots(understanding: &Understanding) -> String {
    if understanding.slots.is_empty() {
        return "(none)".to_owned();
    }
    let slots: Vec<String> = understanding.slots.iter().map(|(name, value)| format!("{name}={value}")).collect();
    slots.join(", ")
}

fn dialog(bot: &BotDefinition, state: &DialogState) -> String {
    match state {
        DialogState::Idle => "idle: no form waits".to_owned(),
        DialogState::AwaitingSlot { flow, step, attempts, .. } => {
            let invalid = if *attempts > 0 { format!(", {attempts} invalid so far") } else { String::new() };
            format!("waiting for the answer to {}{invalid}", step_name(bot, flow.as_str(), *step))
        }
    }
}

/// Names a step as `ask order_number (flow order_status, step 1)`, counting steps from 1.
fn step_name(bot: &BotDefinition, flow: &str, step: usize) -> String {
    let kind = bot.flows.get(&bot_core::FlowId::new(flow)).and_then(|definition| definition.steps.get(step)).map(|step| &step.kind);
    let what = match kind {
        Some(StepKind::Ask(ask)) => format!("ask {}", ask.slot),
        _ => "a step".to_owned(),
    };
    format!("{what} (flow {flow}, step {})", step + 1)
}

fn handoff(state: &HandoffState) -> String {
    match state {
        HandoffState::Bot => "bot".to_owned(),
        HandoffState::WaitingForAgent { reason, .. } => format!("waiting for an agent ({})", serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()),
        HandoffState::Agent { agent, .. } => format!("agent {agent} answers"),
        HandoffState::Closed { .. } => "closed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use bot_core::{HandoffReason, IntentId, ScoredIntent};

    use super::*;

    #[test]
    fn ranking_lists_top_three() {
        let ranking = ["a", "b", "c", "d"].iter().map(|name| ScoredIntent { intent: IntentId::new(*name), confidence: 0.25 }).collect();
        let understanding = Understanding { ranking, ..Understanding::default() };

        assert_eq!(super::ranking(&understanding), "a 0.25, b 0.25, c 0.25");
    }

    #[test]
    fn ranking_marks_unclassified() {
        assert_eq!(super::ranking(&Understanding::default()), "(not classified)");
    }

    #[test]
    fn handoff_names_reason() {
        let state = HandoffState::WaitingForAgent { since: 0, reason: HandoffReason::RepeatedFallback, reminded_at: None, no_agent_offered_at: None };

        assert_eq!(handoff(&state), "waiting for an agent (repeated_fallback)");
    }

    #[test]
    fn style_without_colour_is_plain() {
        let style = Style { colour: false };

        assert_eq!(style.dim("x"), "x");
        assert_eq!(Style { colour: true }.dim("x"), "\x1b[2mx\x1b[0m");
    }
}
