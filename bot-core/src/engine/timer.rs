//! The no-agent offer: a customer who has waited for an agent longer than
//! `settings.handoff.no_agent_after_seconds` gets a reply saying that every
//! agent is busy, offering to leave a contact or come back later, once per
//! waiting period.
//!
//! Every server process may run the timer. The offer is set in the waiting
//! state under the conversation's lease and stored with compare-and-set, so of
//! several processes exactly one sends it.

use std::future::Future;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::handoff::HandoffState;
use crate::ids::ConversationId;

use super::{Engine, EngineError, Origin};

impl Engine {
    /// Runs the no-agent timer until `shutdown` completes: every `period`, it
    /// offers a contact to each customer who has waited too long (see
    /// [`offer_no_agent`](Self::offer_no_agent)).
    pub async fn run_handoff_timer(self, period: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            match self.offer_no_agent().await {
                Ok(offered) => {
                    if failing {
                        tracing::info!("the handoff timer works again");
                    }
                    failing = false;
                    if offered > 0 {
                        tracing::debug!(offered, "offered waiting customers to leave a contact");
                    }
                }
                // One warning per outage; the timer tries again every period.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, period_ms = period.as_millis() as u64, "handoff timer failed; trying again every period");
                }
                Err(error) => tracing::debug!(%error, "handoff timer failed again"),
            }
        }
    }

    /// Sends the `handoff_no_agent` reply to every customer who has waited for
    /// an agent at least `settings.handoff.no_agent_after_seconds` and was not
    /// offered it in this waiting period, and returns how many it sent. Does
    /// nothing when the setting is 0. The events go to the subscribers, the
    /// feed and the proactive subscribers, like an agent's reply.
    pub async fn offer_no_agent(&self) -> Result<usize, EngineError> {
        let after_ms = self.runtime().bot.settings.handoff.no_agent_after_seconds.saturating_mul(1000);
        if after_ms == 0 {
            return Ok(0);
        }

        let now = self.now();
        let mut offered = 0;
        for (id, queued_at) in self.inner.store.waiting().await? {
            // The index's time is when the conversation joined people, which
            // is no later than its waiting time, so younger entries cannot be
            // due. Older ones are checked on the session before the lease is taken.
            if now.saturating_sub(queued_at) < after_ms || !self.no_agent_offer_due(&id, after_ms).await? {
                continue;
            }
            match self.offer_no_agent_to(&id, after_ms).await {
                Ok(true) => offered += 1,
                Ok(false) | Err(EngineError::NotFound { .. }) => {}
                Err(error @ (EngineError::Contended { .. } | EngineError::Store(crate::store::StoreError::LeaseTimeout { .. }))) => {
                    tracing::debug!(conversation_id = %id, %error, "conversation busy; offering a contact on the next pass");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(offered)
    }

    /// True when the stored session waits for an agent, unexpired, since at
    /// least `after_ms` and has not had the offer.
    async fn no_agent_offer_due(&self, id: &ConversationId, after_ms: u64) -> Result<bool, EngineError> {
        let Some(stored) = self.inner.store.load(id).await? else { return Ok(false) };
        let runtime = self.runtime();
        Ok(!self.expired(&stored.session, &runtime) && offer_due(&stored.session.handoff, self.now(), after_ms))
    }

    /// Sends the offer under the lease with compare-and-set; returns false when
    /// another process sent it first or the conversation no longer waits.
    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn offer_no_agent_to(&self, id: &ConversationId, after_ms: u64) -> Result<bool, EngineError> {
        let events = self
            .change_from(id, Origin::Timer, |change| {
                if self.expired(&change.session, change.runtime) || !offer_due(&change.session.handoff, change.now, after_ms) {
                    return Ok(());
                }
                if let HandoffState::WaitingForAgent { no_agent_offered_at, .. } = &mut change.session.handoff {
                    *no_agent_offered_at = Some(change.now);
                }
                let reply = super::flow::render(change.runtime, &change.session, "handoff_no_agent", &[]);
                change.push(reply);
                Ok(())
            })
            .await?;
        if !events.is_empty() {
            tracing::info!("no agent replied in time; offered the customer to leave a contact");
        }
        Ok(!events.is_empty())
    }
}

/// True when the state waits for an agent since at least `after_ms` before
/// `now` and the offer was not sent in this waiting period.
fn offer_due(handoff: &HandoffState, now: crate::message::Timestamp, after_ms: u64) -> bool {
    match handoff {
        HandoffState::WaitingForAgent { since, no_agent_offered_at: None, .. } => now.saturating_sub(*since) >= after_ms,
        _ => false,
    }
}
