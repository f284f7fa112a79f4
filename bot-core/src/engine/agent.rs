//! Agent operations on a conversation: claim it, reply, hand it back to the
//! bot, close it. Each change is one compare-and-set on the session, so of
//! two agents claiming at once exactly one wins, on one server or many.

use crate::event::{Event, EventKind};
use crate::handoff::HandoffState;
use crate::ids::{AgentId, ConversationId};
use crate::message::{Author, HandoffNotice, Reply, Timestamp};
use crate::session::{DialogState, Session};
use crate::store::StoreError;

use super::{Engine, EngineError, Origin, Runtime, MAX_CONFLICT_RETRIES};

/// A session being changed by an agent operation, with the events it adds.
struct AgentChange<'a> {
    runtime: &'a Runtime,
    session: Session,
    events: Vec<Event>,
    now: Timestamp,
}

impl AgentChange<'_> {
    fn push(&mut self, reply: Reply) {
        let event = Event {
            conversation_id: self.session.conversation_id.clone(),
            seq: self.session.next_seq,
            at: self.now,
            kind: EventKind::Reply(reply),
        };
        self.session.next_seq += 1;
        self.events.push(event);
    }

    fn notice(&mut self, response: &str, agent: &AgentId) {
        let mut reply = super::flow::render(self.runtime, &self.session, response, &[("agent", agent.as_str())]);
        reply.handoff = Some(HandoffNotice { state: self.session.handoff.clone(), reason: None });
        self.push(reply);
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
        self.change(id, |change| {
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
            change.session.handoff = HandoffState::Agent { agent: agent.clone(), since: change.now };
            change.session.dialog = DialogState::Idle;
            change.notice("handoff_agent_joined", agent);
            tracing::info!("agent claimed the conversation");
            Ok(())
        })
        .await
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

    /// Returns the conversation to the bot, which greets the customer back.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn hand_back(&self, id: &ConversationId, agent: &AgentId) -> Result<Vec<Event>, EngineError> {
        self.change(id, |change| {
            change.require_owner(agent)?;
            change.session.handoff = HandoffState::Bot;
            change.session.consecutive_fallbacks = 0;
            change.notice("handoff_returned", agent);
            tracing::info!("agent handed the conversation back to the bot");
            Ok(())
        })
        .await
    }

    /// Closes a conversation the agent owns; the customer's next message starts
    /// again with the bot. A waiting conversation must be claimed first.
    #[tracing::instrument(skip_all, fields(conversation_id = %id, agent = %agent))]
    pub async fn close(&self, id: &ConversationId, agent: &AgentId) -> Result<Vec<Event>, EngineError> {
        self.change(id, |change| {
            if let HandoffState::Closed { .. } = change.session.handoff {
                return Err(EngineError::NotWaiting { conversation_id: id.clone(), state: "closed" });
            }
            change.require_owner(agent)?;
            change.session.handoff = HandoffState::Closed { at: change.now };
            change.session.dialog = DialogState::Idle;
            change.notice("handoff_closed", agent);
            tracing::info!("agent closed the conversation");
            Ok(())
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
        let _guard = self.lock_conversation(id).await?;
        let lease = self.inner.store.lease(id).await?;
        let result = self.change_leased(id, apply).await;
        lease.release().await;
        result
    }

    async fn change_leased(
        &self,
        id: &ConversationId,
        apply: impl Fn(&mut AgentChange<'_>) -> Result<(), EngineError>,
    ) -> Result<Vec<Event>, EngineError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let runtime = self.runtime();
            let Some(stored) = self.inner.store.load(id).await? else {
                return Err(EngineError::NotFound { conversation_id: id.clone() });
            };
            let was_waiting = stored.session.handoff.waiting_since().is_some();
            let mut change = AgentChange { runtime: &runtime, session: stored.session, events: Vec::new(), now: self.now() };
            apply(&mut change)?;
            if change.events.is_empty() {
                return Ok(Vec::new());
            }

            let is_waiting = change.session.handoff.waiting_since().is_some();
            change.session.updated_at = change.now;
            match self.commit(&change.session, stored.version, &change.events, &runtime, was_waiting != is_waiting, Origin::Agent).await {
                Ok(()) => return Ok(change.events),
                Err(EngineError::Store(StoreError::Conflict { .. })) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(EngineError::Contended { conversation_id: id.clone() })
    }
}
