//! Engine operations on behalf of a helpdesk's agents, shared by the callbacks.

use bot_core::{AgentId, ConversationId, Engine, EngineError, Event, HandoffState};

/// The maximum size of an agent message or note that a callback accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// An operation a helpdesk requests on a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Claim,
    Reply(String),
    Note(String),
    HandBack,
    Close,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Reply(_) => "reply",
            Self::Note(_) => "note",
            Self::HandBack => "hand_back",
            Self::Close => "close",
        }
    }
}

/// Runs `command` as `agent`, an agent of the helpdesk whose agent ids start
/// with `prefix`, and returns the events it committed.
///
/// A reply first claims a waiting conversation, and takes over one that
/// another agent of the same helpdesk owns, since the helpdesk decides who
/// works on what. Hand back and close claim a waiting conversation, and end
/// one that an agent of the same helpdesk owns in that agent's name. A conversation owned by a console agent is left
/// to them ([`EngineError::AlreadyClaimed`]). Hand back and close of a
/// conversation that no person handles change nothing: the helpdesk often
/// reports the status change Lepton itself made.
pub async fn run(engine: &Engine, id: &ConversationId, agent: &AgentId, prefix: &str, command: Command) -> Result<Vec<Event>, EngineError> {
    match command {
        Command::Claim => take_over(engine, id, agent, prefix).await,
        Command::Note(text) => Ok(vec![engine.add_note(id, agent, &text).await?]),
        Command::Reply(text) => {
            let mut events = take_over(engine, id, agent, prefix).await?;
            events.push(engine.agent_reply(id, agent, &text).await?);
            Ok(events)
        }
        Command::HandBack | Command::Close => {
            let Some(handoff) = engine.session(id).await?.map(|session| session.handoff).filter(HandoffState::is_human) else {
                return Ok(Vec::new());
            };
            // Ends it in the name of an owner from the same helpdesk, so that the
            // customer gets no transfer notice just before the end.
            let (actor, mut events) = match handoff {
                HandoffState::Agent { agent: owner, .. } if owner.as_str().starts_with(prefix) => (owner, Vec::new()),
                _ => (agent.clone(), take_over(engine, id, agent, prefix).await?),
            };
            let ended = match command {
                Command::HandBack => engine.hand_back(id, &actor).await?,
                _ => engine.close(id, &actor).await?,
            };
            events.extend(ended);
            Ok(events)
        }
    }
}

/// Makes `agent` the owner: claims a waiting conversation, or moves one owned
/// by another agent of the same helpdesk.
async fn take_over(engine: &Engine, id: &ConversationId, agent: &AgentId, prefix: &str) -> Result<Vec<Event>, EngineError> {
    match engine.claim(id, agent).await {
        Err(EngineError::AlreadyClaimed { by, .. }) if by.as_str().starts_with(prefix) => engine.transfer(id, &by, agent, true).await,
        other => other,
    }
}
