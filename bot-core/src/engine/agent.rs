//! Agent operations on a conversation: claim it, reply, write an internal
//! note, transfer it to another agent, hand it back to the bot, close it. Each
//! change is one compare-and-set on the session, so of two agents claiming at
//! once exactly one wins, on one server or many.

use crate::event::{Event, EventKind};
use crate::handoff::HandoffState;
use crate::handoff_adapter::HandoffEnd;
use crate::ids::{AgentId, ConversationId};
use crate::message::{Author, HandoffNotice, Reply, Timestamp};
use crate::session::{DialogState, Session};
use crate::observe::Observer;
use crate::store::StoreError;

use super::{Engine, EngineError, Origin, Runtime, MAX_CONFLICT_RETRIES};

/// A session being changed by an agent operation, with the events it adds.
pub(super) struct AgentChange<'a> {
    pub runtime: &'a Runtime,
    pub session: Session,
    events: Vec<Event>,
    pub now: Timestamp,
}

impl AgentChange<'_> {
    pub fn push(&mut self, reply: Reply) {
        self.push_kind(EventKind::Reply(reply));
    }

    fn push_kind(&mut self, kind: EventKind) {
        let event = Event { conversation_id: self.session.conversation_id.clone(), seq: self.session.next_seq, at: self.now, kind };
        self.session.next_seq += 1;
        self.events.push(event);
    }

    /// Adds the builtin notice `response`, whose `{agent}` is the agent's
    /// [display name](AgentId::display_name).
    fn notice(&mut self, response: &str, agent: &AgentId) {
        let name = agent.display_name();
        let mut reply = super::flow::render(self.runtime, &self.session, response, &[("agent", name.as_str())]);
        reply.handoff = Some(HandoffNotice { state: self.session.handoff.clone(), reason: None });
        self.push(reply);
    }

    /// Checks that `agent` owns the conversation, or with `unclaimed` also
    /// that the conversation still waits for an agent.
    fn require_owner_or_waiting(&self, agent: &AgentId, unclaimed: bool) -> Result<(), EngineError> {
        if unclaimed && matches!(self.session.handoff, HandoffState::WaitingForAgent { .. }) {
            return Ok(());
        }
        self.require_owner(agent)
    }

    fn require_owner(&self, agent: &AgentId) -> Result<(), EngineError> {
        match &self.session.handoff {
            HandoffState::Agent { agent: owner, .. } if owner == agent => Ok(()),
            _ => Err(EngineError::NotOwner { conversation_id: self.session.conversation_id.clone(), agent: agent.clone() }),
        }
    }
}

impl Engine {
    /// Assigns a waiting conversation (or one the bot handles) to `agent`.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn claim(&self, id: &ConversationId, agent: &AgentId) -> Result<Vec<Event>, EngineError> {
        // The wait of the attempt that was stored, for the observers. The
        // closure may run again after a conflict, so each run overwrites it.
        let queued = std::sync::Mutex::new(None);
        let events = self
            .change(id, |change| {
                let waited = match &change.session.handoff {
                    HandoffState::WaitingForAgent { since, .. } => Some((change.session.channel.clone(), change.now.saturating_sub(*since))),
                    _ => None,
                };
                *queued.lock().expect("claim wait lock poisoned") = waited;
                claim_change(change, id, agent)
            })
            .await?;
        let waited = queued.into_inner().expect("claim wait lock poisoned");
        if let Some((channel, waited_ms)) = waited.filter(|_| !events.is_empty()) {
            self.observers().agent_claimed(&channel, std::time::Duration::from_millis(waited_ms));
        }
        Ok(events)
    }

    /// Sends an agent's message to the customer; the agent must own the conversation.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn agent_reply(&self, id: &ConversationId, agent: &AgentId, text: &str) -> Result<Event, EngineError> {
        let events = self
            .change(id, |change| {
                change.require_owner(agent)?;
                let reply = Reply { author: Author::Agent { id: agent.clone() }, text: text.to_owned(), quick_replies: Vec::new(), handoff: None };
                change.push(reply);
                Ok(())
            })
            .await?;
        events.into_iter().next().ok_or_else(|| EngineError::NotFound { conversation_id: id.clone() })
    }

    /// Adds an agent's internal note to the transcript. Any agent may write one
    /// in any handoff state; customers never see notes.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn add_note(&self, id: &ConversationId, agent: &AgentId, text: &str) -> Result<Event, EngineError> {
        let events = self
            .change(id, |change| {
                change.push_kind(EventKind::Note { agent: agent.clone(), text: text.to_owned() });
                Ok(())
            })
            .await?;
        events.into_iter().next().ok_or_else(|| EngineError::NotFound { conversation_id: id.clone() })
    }

    /// Moves a conversation that agent `from` owns to agent `to`, and sends the
    /// customer the `handoff_transferred` notice naming `to`. With `force`
    /// (for admins), `from` need not be the owner. Transferring to the current
    /// owner changes nothing.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, from = %from, to = %to, force))]
    pub async fn transfer(&self, id: &ConversationId, from: &AgentId, to: &AgentId, force: bool) -> Result<Vec<Event>, EngineError> {
        self.change(id, |change| {
            // A conversation that is not with an agent has no owner, so `from`
            // must claim it first, even with `force`.
            let HandoffState::Agent { agent: owner, reason, .. } = &change.session.handoff else {
                return Err(EngineError::NotOwner { conversation_id: id.clone(), agent: from.clone() });
            };
            if !force {
                change.require_owner(from)?;
            }
            if owner == to {
                return Ok(());
            }
            let reason = reason.clone();
            change.session.handoff = HandoffState::Agent { agent: to.clone(), since: change.now, reason };
            change.notice("handoff_transferred", to);
            tracing::info!("agent transferred the conversation");
            Ok(())
        })
        .await
    }

    /// Returns the conversation to the bot, which greets the customer back.
    /// The agent must own the conversation.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn hand_back(&self, id: &ConversationId, agent: &AgentId) -> Result<Vec<Event>, EngineError> {
        self.change(id, |change| hand_back_change(change, agent, false)).await
    }

    /// Closes a conversation the agent owns; the customer's next message starts
    /// again with the bot. A waiting conversation must be claimed first.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn close(&self, id: &ConversationId, agent: &AgentId) -> Result<Vec<Event>, EngineError> {
        self.change(id, |change| close_change(change, id, agent, false)).await
    }

    /// Hands back or closes a conversation that `agent` owns or that still
    /// waits for an agent, for helpdesk adapters. A helpdesk may end a
    /// conversation that no agent claimed, and the customer then reads only the
    /// ending notice, with no "agent joined" before it. The console calls
    /// [`hand_back`](Self::hand_back) and [`close`](Self::close), which need a claim.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent, end = ?end))]
    pub async fn end_unclaimed(&self, id: &ConversationId, agent: &AgentId, end: HandoffEnd) -> Result<Vec<Event>, EngineError> {
        self.change(id, |change| match end {
            HandoffEnd::HandedBack => hand_back_change(change, agent, true),
            HandoffEnd::Closed => close_change(change, id, agent, true),
        })
        .await
    }

    /// Applies `apply` to the stored session under the conversation's lock and
    /// saves it with compare-and-set, retrying when another server changed it.
    async fn change(
        &self,
        id: &ConversationId,
        apply: impl Fn(&mut AgentChange<'_>) -> Result<(), EngineError>,
    ) -> Result<Vec<Event>, EngineError> {
        self.change_from(id, Origin::Agent, apply).await
    }

    /// Does what [`change`](Self::change) does, for a change from `origin`.
    pub(super) async fn change_from(
        &self,
        id: &ConversationId,
        origin: Origin,
        apply: impl Fn(&mut AgentChange<'_>) -> Result<(), EngineError>,
    ) -> Result<Vec<Event>, EngineError> {
        let _guard = self.lock_conversation(id).await?;
        let lease = self.inner.store.lease(id).await?;
        let result = self.change_leased(id, origin, apply).await;
        lease.release().await;
        result
    }

    async fn change_leased(
        &self,
        id: &ConversationId,
        origin: Origin,
        apply: impl Fn(&mut AgentChange<'_>) -> Result<(), EngineError>,
    ) -> Result<Vec<Event>, EngineError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let runtime = self.runtime();
            let Some(stored) = self.inner.store.load(id).await? else {
                return Err(EngineError::NotFound { conversation_id: id.clone() });
            };
            let queued_before = stored.session.handoff.human_since();
            let mut change = AgentChange { runtime: &runtime, session: stored.session, events: Vec::new(), now: self.now() };
            apply(&mut change)?;
            if change.events.is_empty() {
                return Ok(Vec::new());
            }

            // The index entry is written only when the conversation joins or
            // leaves the index, because a store may remove the entry when the
            // commit fails after writing it. Rewriting on every change would
            // then drop a conversation that was listed before. A claim keeps
            // the waiting time as the entry's time.
            // NOTE: conversations an agent claimed before the index also listed
            // agent-owned ones stay unlisted until they leave people and return.
            let queued_after = change.session.handoff.human_since();
            let queue_changed = queued_before.is_some() != queued_after.is_some();
            change.session.updated_at = change.now;
            match self.commit(&change.session, stored.version, &change.events, &runtime, queue_changed, origin).await {
                Ok(()) => return Ok(change.events),
                Err(EngineError::Store(StoreError::Conflict { .. })) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(EngineError::Contended { conversation_id: id.clone() })
    }
}

/// Returns the conversation to the bot. With `unclaimed`, a waiting
/// conversation may be handed back without a claim.
fn hand_back_change(change: &mut AgentChange<'_>, agent: &AgentId, unclaimed: bool) -> Result<(), EngineError> {
    change.require_owner_or_waiting(agent, unclaimed)?;
    change.session.handoff = HandoffState::Bot;
    change.session.consecutive_fallbacks = 0;
    change.notice("handoff_returned", agent);
    tracing::info!("agent handed the conversation back to the bot");
    Ok(())
}

/// Closes the conversation. With `unclaimed`, a waiting conversation may be
/// closed without a claim.
fn close_change(change: &mut AgentChange<'_>, id: &ConversationId, agent: &AgentId, unclaimed: bool) -> Result<(), EngineError> {
    if let HandoffState::Closed { .. } = change.session.handoff {
        return Err(EngineError::NotWaiting { conversation_id: id.clone(), state: "closed" });
    }
    change.require_owner_or_waiting(agent, unclaimed)?;
    change.session.handoff = HandoffState::Closed { at: change.now };
    change.session.dialog = DialogState::Idle;
    change.notice("handoff_closed", agent);
    tracing::info!("agent closed the conversation");
    Ok(())
}

/// Assigns the conversation to `agent` unless another agent has it or it is closed.
fn claim_change(change: &mut AgentChange<'_>, id: &ConversationId, agent: &AgentId) -> Result<(), EngineError> {
    match &change.session.handoff {
        HandoffState::Agent { agent: owner, .. } if owner == agent => return Ok(()),
        HandoffState::Agent { agent: owner, .. } => {
            return Err(EngineError::AlreadyClaimed { conversation_id: id.clone(), by: owner.clone() });
        }
        HandoffState::Closed { .. } => {
            return Err(EngineError::NotWaiting { conversation_id: id.clone(), state: "closed" });
        }
        HandoffState::WaitingForAgent { .. } | HandoffState::Bot => {}
    }
    let reason = change.session.handoff.reason().cloned();
    change.session.handoff = HandoffState::Agent { agent: agent.clone(), since: change.now, reason };
    change.session.dialog = DialogState::Idle;
    change.notice("handoff_agent_joined", agent);
    tracing::info!("agent claimed the conversation");
    Ok(())
}
