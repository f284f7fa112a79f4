//! One customer turn: de-duplicate, load the session, route the message to the
//! agent, the waiting form or the classifier, fall back, save.

use crate::bot::{IntentAction, KNOWLEDGE_INTENT};
use crate::event::{Event, EventKind, Understanding};
use crate::handoff::{HandoffReason, HandoffState};
use crate::ids::{ConversationId, IntentId, Lang};
use crate::message::{Content, HandoffNotice, InboundMessage, Reply, Timestamp};
use crate::observe::{Observer, TurnKind};
use crate::session::{DialogState, ProcessedMessage, Session};
use crate::store::StoreError;
use crate::text::{detect_lang, is_payload, parse_slot_value};

use super::flow::FormPosition;
use super::{Engine, EngineError, Origin, Runtime, TurnOutcome};

/// The shortest time between two reminders to a customer waiting for an agent.
const WAITING_REMINDER_MS: u64 = 60_000;

/// The share of `knowledge.min_score` a knowledge answer needs when the
/// classifier already picked the knowledge intent.
const CONFIRMED_QUESTION_SCORE_FACTOR: f32 = 0.6;

/// How many ranked intents a customer event keeps for agents.
const RANKING_KEPT: usize = 3;

/// The state of a turn in progress: the session being changed and the events
/// produced so far. The customer's event is `events[0]`.
pub(crate) struct Turn<'a> {
    pub runtime: &'a Runtime,
    pub engine: &'a Engine,
    pub session: Session,
    pub events: Vec<Event>,
    pub now: Timestamp,
    /// The customer's text (empty for non-text content).
    pub text: String,
    pub understanding: Understanding,
    /// True while the message that started a flow may still fill that flow's
    /// first question ("where is my order 100001"); cleared at the first `ask`.
    pub prefill: bool,
    /// True when the turn ended in the fallback, so the message joins the unrecognised list.
    pub unrecognised: bool,
    /// The way the turn has ended so far, as [`Turn::mark`] ranks it.
    pub kind: TurnKind,
    /// The intent the turn acted on.
    pub intent: Option<IntentId>,
}

impl Engine {
    pub(super) async fn run_turn(&self, message: &InboundMessage) -> Result<TurnOutcome, EngineError> {
        let runtime = self.runtime();
        let loaded = self.load_or_start(message, &runtime).await?;
        let session = loaded.session;

        if let Some(id) = &message.client_message_id {
            if let Some(processed) = session.processed(id) {
                tracing::debug!(client_message_id = %id, "duplicate message; returning the original events");
                let count = (processed.last_seq + 1 - processed.first_seq) as usize;
                let events = self.inner.store.events(&message.conversation_id, processed.first_seq - 1, count).await?;
                return Ok(TurnOutcome { events, duplicate: true, kind: TurnKind::Duplicate, intent: None });
            }
        }

        let mut turn = Turn::start(self, &runtime, session, message);
        tracing::Span::current().record("turn", turn.session.turns);
        match loaded.start {
            Start::Reset => turn.say("session_reset"),
            Start::Expired { in_progress: true } => turn.say("session_expired"),
            Start::Stored | Start::New | Start::Expired { in_progress: false } => {}
        }
        turn.route(message).await;

        let events = turn.finish(message);
        let session = &turn.session;
        let waiting_after = session.handoff.human_since();
        let waiting_changed = loaded.waiting_before != waiting_after;
        self.commit(session, loaded.version, &events, &runtime, waiting_changed, Origin::CustomerTurn).await?;
        if turn.unrecognised {
            self.record_unrecognised(session, &events[0]).await;
        }
        Ok(TurnOutcome { events, duplicate: false, kind: turn.kind, intent: turn.intent.take() })
    }

    /// Loads the session, or starts one. A session the store cannot decode is
    /// replaced by a fresh one rather than failing every turn, and an expired
    /// one starts over, keeping only the transcript's numbering.
    async fn load_or_start(&self, message: &InboundMessage, runtime: &Runtime) -> Result<Loaded, EngineError> {
        let id = &message.conversation_id;
        let fresh = || {
            let lang = initial_lang(message, runtime);
            Session::new(id.clone(), message.channel.clone(), lang, self.now())
        };
        match self.inner.store.load(id).await {
            Ok(Some(stored)) if self.expired(&stored.session, runtime) => {
                let old = stored.session;
                let in_progress = old.dialog != DialogState::Idle || !old.slots.is_empty() || old.handoff.is_human();
                tracing::info!(in_progress, idle_ms = self.now().saturating_sub(old.updated_at), "session expired; starting over");
                let mut session = Session::new(id.clone(), message.channel.clone(), old.lang.clone(), self.now());
                session.next_seq = old.next_seq;
                session.recent_messages = old.recent_messages;
                let waiting_before = old.handoff.human_since();
                Ok(Loaded { session, version: stored.version, start: Start::Expired { in_progress }, waiting_before })
            }
            Ok(Some(stored)) => {
                let waiting_before = stored.session.handoff.human_since();
                Ok(Loaded { session: stored.session, version: stored.version, start: Start::Stored, waiting_before })
            }
            Ok(None) => {
                // A transcript without a session (the session key was evicted or
                // deleted) keeps its numbering, so that no event is overwritten.
                let mut session = fresh();
                session.next_seq = self.last_transcript_seq(id).await? + 1;
                Ok(Loaded { session, version: 0, start: Start::New, waiting_before: None })
            }
            Err(StoreError::Corrupt { version, reason, .. }) => {
                tracing::warn!(%reason, version, "stored session cannot be read; starting a fresh one");
                let mut session = fresh();
                session.next_seq = self.last_transcript_seq(id).await? + 1;
                // The queue may still list the conversation; the fresh session is not waiting.
                self.inner.store.set_waiting(id, None).await?;
                Ok(Loaded { session, version, start: Start::Reset, waiting_before: None })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Returns the highest `seq` in the conversation's transcript (0 when empty),
    /// so that a session started over keeps the numbering gap-free.
    async fn last_transcript_seq(&self, id: &ConversationId) -> Result<u64, EngineError> {
        const PAGE: usize = 500;
        let mut last = 0;
        loop {
            let page = self.inner.store.events(id, last, PAGE).await?;
            let Some(event) = page.last() else { return Ok(last) };
            last = event.seq;
            if page.len() < PAGE {
                return Ok(last);
            }
        }
    }
}

/// A session ready for a turn, with how it was obtained.
struct Loaded {
    session: Session,
    /// The stored version to compare-and-set against (0: none stored).
    version: u64,
    start: Start,
    /// The time the stored session joined the queue index of conversations
    /// with people, `None` when it is not in the index.
    waiting_before: Option<Timestamp>,
}

enum Start {
    Stored,
    New,
    /// The stored session could not be decoded and was replaced.
    Reset,
    /// The stored session outlived the session TTL; `in_progress` is true when
    /// it held a form, slots or a handoff that the customer loses.
    Expired { in_progress: bool },
}

/// True when a message no intent matched contains enough to search the knowledge
/// base with: two Latin words or three Chinese characters. A lone "yes", "ok",
/// "是" or "订单" matches some entry word for word but asks nothing.
fn long_enough_to_search(text: &str) -> bool {
    let words = text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().any(|c| c.is_ascii_alphabetic())).count();
    let han = text.chars().filter(|c| crate::text::is_han(*c)).count();
    words >= 2 || han >= 3 || (words >= 1 && han >= 1)
}

pub(super) fn initial_lang(message: &InboundMessage, runtime: &Runtime) -> Lang {
    let supported = &runtime.bot.settings.languages;
    let text = message.text_content();
    let written = if is_payload(text) { "" } else { text };
    detect_lang(written, supported)
        .or_else(|| message.locale_hint.clone().filter(|hint| supported.contains(hint)))
        .unwrap_or_else(|| runtime.bot.settings.default_language())
}

impl<'a> Turn<'a> {
    fn start(engine: &'a Engine, runtime: &'a Runtime, mut session: Session, message: &InboundMessage) -> Self {
        let now = engine.now();
        // A quick-reply payload (`/order_status`) is not the customer's own
        // writing, so it is no evidence of their language.
        let supported = &runtime.bot.settings.languages;
        let payload = is_payload(message.text_content());
        if let Some(lang) = detect_lang(message.text_content(), supported).filter(|_| !payload) {
            session.lang = lang;
        }
        session.turns += 1;
        session.updated_at = now;
        session.channel = message.channel.clone();

        let customer = Event {
            conversation_id: session.conversation_id.clone(),
            seq: session.next_seq,
            at: now,
            kind: EventKind::Customer {
                channel: message.channel.clone(),
                sender: message.sender.clone(),
                content: message.content.clone(),
                client_message_id: message.client_message_id.clone(),
                understanding: None,
            },
        };
        session.next_seq += 1;
        let text = message.text_content().trim().to_owned();
        Self {
            runtime,
            engine,
            session,
            events: vec![customer],
            now,
            text,
            understanding: Understanding::default(),
            prefill: false,
            unrecognised: false,
            kind: TurnKind::Other,
            intent: None,
        }
    }

    /// Records how the turn ended. When a turn has several kinds, it keeps the
    /// most specific one: a handoff over a fallback (the fallback that hands
    /// off), a fallback over a knowledge answer, and so on.
    fn mark(&mut self, kind: TurnKind) {
        fn rank(kind: TurnKind) -> u8 {
            match kind {
                TurnKind::Other | TurnKind::Duplicate | TurnKind::Error | TurnKind::Busy => 0,
                TurnKind::Human => 1,
                TurnKind::Form => 2,
                TurnKind::Intent => 3,
                TurnKind::Knowledge => 4,
                TurnKind::Fallback => 5,
                TurnKind::Handoff => 6,
            }
        }
        if rank(kind) > rank(self.kind) {
            self.kind = kind;
        }
    }

    /// Routes the message to a person, the waiting form or the classifier.
    async fn route(&mut self, message: &InboundMessage) {
        match &self.session.handoff {
            HandoffState::WaitingForAgent { since, reminded_at, .. } => {
                // Nobody has answered yet: remind the customer now and then that
                // a person will, so the silence does not look like a dead chat.
                let last = reminded_at.unwrap_or(*since);
                if self.now.saturating_sub(last) >= WAITING_REMINDER_MS {
                    if let HandoffState::WaitingForAgent { reminded_at, .. } = &mut self.session.handoff {
                        *reminded_at = Some(self.now);
                    }
                    self.say("handoff_waiting");
                }
                self.mark(TurnKind::Human);
                return;
            }
            HandoffState::Agent { .. } => {
                tracing::debug!("an agent handles this conversation; the bot stays silent");
                self.mark(TurnKind::Human);
                return;
            }
            HandoffState::Closed { .. } => self.session.handoff = HandoffState::Bot,
            HandoffState::Bot => {}
        }

        if !self.relocate_form().await {
            return;
        }

        if let Content::NonText { kind } = &message.content {
            tracing::debug!(kind, "non-text message");
            self.say("non_text");
            if let DialogState::AwaitingSlot { flow, step, .. } = self.session.dialog.clone() {
                self.reprompt(&flow, step);
            }
            return;
        }

        match self.session.dialog.clone() {
            DialogState::AwaitingSlot { flow, step, attempts, .. } => self.continue_form(flow, step, attempts).await,
            DialogState::Idle => self.understand_and_act().await,
        }
    }

    /// Classifies the message and records the ranking. Returns the intent to act
    /// on when one passes the threshold and margin, or a `/intent` payload names one.
    pub async fn classify(&mut self) -> Option<IntentId> {
        let bot = &self.runtime.bot;
        if let Some(name) = self.text.strip_prefix('/') {
            let id = IntentId::new(name.trim());
            if bot.intents.contains_key(&id) {
                self.understanding.intent = Some(id.clone());
                return Some(id);
            }
        }

        let started = std::time::Instant::now();
        let runtime = self.runtime;
        let classification = runtime.classifier.classify_async(&self.text).await;
        let top_confidence = classification.top().map(|scored| scored.confidence);
        self.engine.observers().classified(started.elapsed(), top_confidence);
        let settings = &bot.settings.classifier;
        let decided = classification.decide(settings.threshold, settings.margin).map(|s| s.intent.clone());
        let decided = decided.filter(|id| bot.intents.contains_key(id) || id.as_str() == KNOWLEDGE_INTENT);
        self.understanding.ranking = classification.ranking.into_iter().take(RANKING_KEPT).collect();
        self.understanding.intent = decided.clone();
        decided
    }

    async fn understand_and_act(&mut self) {
        if let Some(intent) = self.classify().await {
            if intent.as_str() != KNOWLEDGE_INTENT {
                self.session.consecutive_fallbacks = 0;
            }
            self.run_intent(&intent).await;
            return;
        }

        let knowledge = &self.runtime.bot.settings.knowledge;
        if knowledge.answer_unmatched && long_enough_to_search(&self.text) && self.answer_from_knowledge(None).await {
            self.session.consecutive_fallbacks = 0;
            return;
        }
        self.fall_back();
    }

    pub async fn run_intent(&mut self, intent: &IntentId) {
        self.intent = Some(intent.clone());
        if intent.as_str() == KNOWLEDGE_INTENT {
            if self.answer_confirmed_question().await {
                self.session.consecutive_fallbacks = 0;
            } else {
                self.fall_back();
            }
            return;
        }
        let Some(definition) = self.runtime.bot.intents.get(intent) else {
            return;
        };
        self.mark(TurnKind::Intent);
        match definition.action.clone() {
            IntentAction::Respond(response) => self.say(response.as_str()),
            IntentAction::Flow(flow) => {
                self.prefill = true;
                self.run_flow(&flow, 0).await;
            }
        }
    }

    /// Answers from the knowledge base; returns false when nothing scored high enough.
    pub async fn answer_from_knowledge(&mut self, query: Option<&str>) -> bool {
        let min_score = self.runtime.bot.settings.knowledge.min_score;
        self.search_and_answer(query, min_score).await
    }

    /// Answers a message the classifier took for a knowledge-base question. The
    /// classifier's verdict is a second signal, so the search needs less
    /// relevance: a word that no entry contains ("Buds Pro") would otherwise
    /// sink an otherwise good match below `min_score`.
    async fn answer_confirmed_question(&mut self) -> bool {
        let min_score = self.runtime.bot.settings.knowledge.min_score * CONFIRMED_QUESTION_SCORE_FACTOR;
        self.search_and_answer(None, min_score).await
    }

    async fn search_and_answer(&mut self, query: Option<&str>, min_score: f32) -> bool {
        // A quick-reply payload such as `/returns` names an intent, not a question.
        let query = query.unwrap_or(&self.text).to_owned();
        if query.trim().is_empty() || is_payload(&query) {
            return false;
        }
        let started = std::time::Instant::now();
        let runtime = self.runtime;
        let found = runtime.knowledge.search_async(&query, &self.session.lang, min_score).await;
        self.engine.observers().knowledge_searched(started.elapsed(), matches!(found, Ok(Some(_))));
        match found {
            Ok(Some(answer)) => {
                self.mark(TurnKind::Knowledge);
                self.understanding.knowledge_source = Some(answer.source.clone());
                self.push_reply(Reply::bot(answer.answer));
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::error!(%error, "knowledge search failed; continuing as if nothing matched");
                false
            }
        }
    }

    /// Sends the fallback response, or hands off after too many in a row.
    pub fn fall_back(&mut self) {
        self.unrecognised = true;
        self.mark(TurnKind::Fallback);
        self.session.consecutive_fallbacks += 1;
        let limit = self.runtime.bot.settings.handoff.after_fallbacks;
        if limit > 0 && self.session.consecutive_fallbacks >= limit {
            self.hand_off(HandoffReason::RepeatedFallback);
            return;
        }
        self.say("fallback");
    }

    /// Moves the conversation to the queue for an agent and sends the customer
    /// the waiting notice.
    pub fn hand_off(&mut self, reason: HandoffReason) {
        tracing::info!(?reason, "handing the conversation to an agent");
        self.mark(TurnKind::Handoff);
        self.session.dialog = DialogState::Idle;
        self.session.consecutive_fallbacks = 0;
        self.session.handoff = HandoffState::WaitingForAgent { since: self.now, reason: reason.clone(), reminded_at: None, no_agent_offered_at: None };
        let mut reply = self.render("handoff_waiting", &[]);
        reply.handoff = Some(HandoffNotice { state: self.session.handoff.clone(), reason: Some(reason) });
        self.push_reply(reply);
    }

    /// Sends a response by id (a reserved one falls back to its built-in text).
    pub fn say(&mut self, response: &str) {
        let reply = self.render(response, &[]);
        self.push_reply(reply);
    }

    pub fn render(&self, response: &str, extra: &[(&str, &str)]) -> Reply {
        super::flow::render(self.runtime, &self.session, response, extra)
    }

    pub fn push_reply(&mut self, reply: Reply) {
        if reply.text.is_empty() && reply.quick_replies.is_empty() && reply.handoff.is_none() {
            return;
        }
        let event = Event {
            conversation_id: self.session.conversation_id.clone(),
            seq: self.session.next_seq,
            at: self.now,
            kind: EventKind::Reply(reply),
        };
        self.session.next_seq += 1;
        self.events.push(event);
    }

    /// Completes the customer event and remembers the client message id.
    fn finish(&mut self, message: &InboundMessage) -> Vec<Event> {
        self.understanding.slots = self.session.slots.clone();
        if let EventKind::Customer { understanding, .. } = &mut self.events[0].kind {
            *understanding = Some(std::mem::take(&mut self.understanding));
        }
        if let Some(id) = &message.client_message_id {
            let first_seq = self.events[0].seq;
            let last_seq = self.events.last().map_or(first_seq, |e| e.seq);
            self.session.remember(ProcessedMessage { client_message_id: id.clone(), first_seq, last_seq });
        }
        std::mem::take(&mut self.events)
    }

    /// Tries the customer's answer on the slot a form waits for.
    async fn continue_form(&mut self, flow: crate::ids::FlowId, step: usize, attempts: u32) {
        self.mark(TurnKind::Form);
        let Some(ask) = super::flow::ask_step(self.runtime, &flow, step) else {
            tracing::warn!(%flow, step, "the form's step no longer exists; leaving the form");
            self.session.dialog = DialogState::Idle;
            self.understand_and_act().await;
            return;
        };
        let slot = self.runtime.bot.slots.get(&ask.slot);
        let pattern = self.runtime.patterns.get(&ask.slot);
        let value = slot.and_then(|slot| parse_slot_value(&slot.kind, &self.text, pattern));

        // An answer that validates as a number, email, phone, pattern or choice
        // is an answer even when it also reads as an intent ("不" is both "no"
        // and "cancel"). Free text validates always, so there intents go first.
        let strict = slot.is_some_and(|slot| !matches!(slot.kind, crate::bot::SlotKind::Text));
        let intent = self.classify().await.filter(|_| !(strict && value.is_some()));
        if let Some(intent) = intent {
            if intent.as_str() == KNOWLEDGE_INTENT {
                // A question instead of an answer: answer it and ask again, at no cost.
                if self.answer_confirmed_question().await {
                    self.reprompt(&flow, step);
                    return;
                }
            } else if self.runtime.bot.intents.get(&intent).is_some_and(|i| i.interrupts) {
                self.interrupt_form(&intent, &flow, step).await;
                return;
            }
        }

        if let Some(value) = value {
            self.session.slots.insert(ask.slot.clone(), value);
            self.session.consecutive_fallbacks = 0;
            self.session.dialog = DialogState::Idle;
            self.run_flow(&flow, step + 1).await;
            return;
        }

        let attempts = attempts + 1;
        if attempts >= ask.max_attempts {
            tracing::info!(slot = %ask.slot, attempts, "form attempts exhausted");
            self.session.dialog = DialogState::Idle;
            let target = ask.on_exhausted.clone().unwrap_or(crate::bot::Target::Handoff);
            self.jump(&flow, &target, HandoffReason::FormExhausted).await;
            return;
        }
        self.session.dialog = DialogState::AwaitingSlot { flow, step, slot: Some(ask.slot.clone()), attempts };
        let response = ask.invalid.clone().unwrap_or_else(|| ask.prompt.clone());
        self.say(response.as_str());
    }

    async fn interrupt_form(&mut self, intent: &IntentId, flow: &crate::ids::FlowId, step: usize) {
        self.session.consecutive_fallbacks = 0;
        self.intent = Some(intent.clone());
        self.mark(TurnKind::Intent);
        let action = self.runtime.bot.intents[intent].action.clone();
        match action {
            IntentAction::Respond(response) => {
                self.say(response.as_str());
                self.reprompt(flow, step);
            }
            IntentAction::Flow(next) => {
                tracing::debug!(%flow, %next, "an intent interrupted the form");
                self.session.dialog = DialogState::Idle;
                self.prefill = true;
                self.run_flow(&next, 0).await;
            }
        }
    }

    /// Asks the waiting form's question again.
    /// Brings a waiting form in line with the current bot after a reload: the
    /// form goes on at its step wherever the flow now asks for the same slot,
    /// starts again with a notice when the flow no longer asks for it, and
    /// ends with a notice when the flow is gone. Returns false when the turn is
    /// over, because the restarted flow asked its first question.
    async fn relocate_form(&mut self) -> bool {
        let DialogState::AwaitingSlot { flow, step, slot, attempts } = self.session.dialog.clone() else {
            return true;
        };
        match super::flow::locate_form(self.runtime, &flow, step, slot.as_ref()) {
            FormPosition::At(found) if found == step => true,
            FormPosition::At(found) => {
                tracing::info!(%flow, from = step, to = found, "the bot was edited; the form goes on at the step's new position");
                self.session.dialog = DialogState::AwaitingSlot { flow, step: found, slot, attempts };
                true
            }
            FormPosition::Changed => {
                tracing::info!(%flow, step, "the bot was edited and the form's step is gone; starting the flow again");
                self.session.dialog = DialogState::Idle;
                self.say("form_restarted");
                self.run_flow(&flow, 0).await;
                false
            }
            FormPosition::Gone => {
                tracing::info!(%flow, "the bot was edited and the form's flow is gone; leaving the form");
                self.session.dialog = DialogState::Idle;
                self.say("form_removed");
                true
            }
        }
    }

    fn reprompt(&mut self, flow: &crate::ids::FlowId, step: usize) {
        if let Some(ask) = super::flow::ask_step(self.runtime, flow, step) {
            let prompt = ask.prompt.clone();
            self.say(prompt.as_str());
        }
    }
}
