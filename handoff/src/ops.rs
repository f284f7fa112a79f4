//! Engine operations on behalf of a helpdesk's agents, shared by the callbacks.

use bot_core::{AgentId, ConversationId, Engine, EngineError, Event, HandoffEnd, HandoffState};

/// The maximum size of an agent message or note that a callback accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// Transcript events read per page while looking for a handoff start.
const SCAN_PAGE: usize = 500;

/// A helpdesk command that Lepton did not apply.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A reply named a conversation whose transcript has no handoff start, so
    /// the helpdesk never received it and must not take it from the bot.
    #[error("conversation {conversation_id} was never handed off to people; a helpdesk agent can reply only to a conversation that was handed off")]
    NotHandedOff { conversation_id: ConversationId },

    #[error(transparent)]
    Engine(#[from] EngineError),
}

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
/// works on what. A reply to a conversation that the bot handles or that was
/// closed is rejected ([`CommandError::NotHandedOff`]) unless its transcript
/// has a handoff start, which the adapter forwarded to the helpdesk.
///
/// Hand back and close end a waiting conversation without claiming it, and
/// end one that an agent of the same helpdesk owns in that agent's name, so
/// the customer reads only the ending notice. A conversation owned by a
/// console agent is left to them ([`EngineError::AlreadyClaimed`]). Hand back
/// and close of a conversation that no person handles change nothing: the
/// helpdesk often reports the status change Lepton itself made.
pub async fn run(engine: &Engine, id: &ConversationId, agent: &AgentId, prefix: &str, command: Command) -> Result<Vec<Event>, CommandError> {
    match command {
        Command::Claim => Ok(take_over(engine, id, agent, prefix).await?),
        Command::Note(text) => Ok(vec![engine.add_note(id, agent, &text).await?]),
        Command::Reply(text) => {
            require_handed_off(engine, id).await?;
            let mut events = take_over(engine, id, agent, prefix).await?;
            events.push(engine.agent_reply(id, agent, &text).await?);
            Ok(events)
        }
        Command::HandBack => Ok(end(engine, id, agent, prefix, HandoffEnd::HandedBack).await?),
        Command::Close => Ok(end(engine, id, agent, prefix, HandoffEnd::Closed).await?),
    }
}

/// Hands back or closes a conversation with people, in the name of an owner
/// from the same helpdesk, or of `agent` when it still waits.
async fn end(engine: &Engine, id: &ConversationId, agent: &AgentId, prefix: &str, end: HandoffEnd) -> Result<Vec<Event>, EngineError> {
    let Some(handoff) = engine.session(id).await?.map(|session| session.handoff).filter(HandoffState::is_human) else {
        return Ok(Vec::new());
    };
    let actor = match handoff {
        HandoffState::Agent { agent: owner, .. } if owner.as_str().starts_with(prefix) => owner,
        HandoffState::Agent { agent: owner, .. } => {
            return Err(EngineError::AlreadyClaimed { conversation_id: id.clone(), by: owner });
        }
        _ => agent.clone(),
    };
    engine.end_unclaimed(id, &actor, end).await
}

/// Checks that people handle the conversation now, or that it was handed off
/// before: its transcript has a handoff start notice.
///
/// NOTE: a start from before the adapter was configured counts too, because
/// the session does not record which adapter received a start.
async fn require_handed_off(engine: &Engine, id: &ConversationId) -> Result<(), CommandError> {
    let Some(session) = engine.session(id).await? else {
        return Err(EngineError::NotFound { conversation_id: id.clone() }.into());
    };
    if session.handoff.is_human() {
        return Ok(());
    }

    let mut after = 0;
    loop {
        let page = engine.events(id, after, SCAN_PAGE).await?;
        if page.iter().any(is_handoff_start) {
            return Ok(());
        }
        match page.last() {
            Some(last) if page.len() == SCAN_PAGE => after = last.seq,
            _ => return Err(CommandError::NotHandedOff { conversation_id: id.clone() }),
        }
    }
}

/// True for the bot's notice that a conversation joined the queue for a
/// person, the event that the dispatcher forwards as the handoff start.
fn is_handoff_start(event: &Event) -> bool {
    let notice = event.reply().and_then(|reply| reply.handoff.as_ref());
    notice.is_some_and(|notice| matches!(notice.state, HandoffState::WaitingForAgent { .. }) && notice.reason.is_some())
}

/// Makes `agent` the owner: claims a waiting conversation, or moves one owned
/// by another agent of the same helpdesk.
async fn take_over(engine: &Engine, id: &ConversationId, agent: &AgentId, prefix: &str) -> Result<Vec<Event>, EngineError> {
    match engine.claim(id, agent).await {
        Err(EngineError::AlreadyClaimed { by, .. }) if by.as_str().starts_with(prefix) => engine.transfer(id, &by, agent, true).await,
        other => other,
    }
}
