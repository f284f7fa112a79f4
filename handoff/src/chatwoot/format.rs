//! The text of the messages and private notes posted to Chatwoot. Agents read
//! them, so labels are in English and Simplified Chinese.

use std::fmt::Write;

use bot_core::handoff_adapter::{HandoffEnd, HandoffEnded, HandoffStarted};
use bot_core::{Author, Content, Event, EventKind, HandoffReason};

/// Returns the customer's message text; a photo or sticker becomes `[photo]`.
pub(super) fn customer_text(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::NonText { kind } => format!("[{kind}]"),
    }
}

/// Writes the private note of a transcript event other than a customer message.
pub(super) fn note_for(event: &Event) -> Option<String> {
    match &event.kind {
        EventKind::Reply(reply) => match &reply.author {
            Author::Bot => Some(format!("Bot / 机器人: {}", reply.text)),
            Author::Agent { id } => Some(format!("Agent {id} (Lepton console) / 客服 {id}（Lepton 控制台）: {}", reply.text)),
        },
        EventKind::Note { agent, text } => Some(format!("Note by {agent} / {agent} 的备注: {text}")),
        _ => None,
    }
}

/// Writes the first private note of a handoff: the reason, channel, language, intents and slots.
pub(super) fn context_note(handoff: &HandoffStarted) -> String {
    let (reason_en, reason_zh) = reason_text(&handoff.reason);
    let mut note = String::from("Handed off by the Lepton bot / Lepton 机器人转人工\n");
    let _ = writeln!(note, "Reason / 原因: {reason_en} / {reason_zh}");
    let _ = writeln!(note, "Conversation / 会话: {}", handoff.conversation_id);
    let _ = writeln!(note, "Channel / 渠道: {}", handoff.channel);
    let _ = writeln!(note, "Language / 语言: {}", handoff.lang);
    if !handoff.intents.is_empty() {
        let intents: Vec<&str> = handoff.intents.iter().map(|intent| intent.as_str()).collect();
        let _ = writeln!(note, "Intents / 意图: {}", intents.join(", "));
    }
    if !handoff.slots.is_empty() {
        let slots: Vec<String> = handoff.slots.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let _ = writeln!(note, "Slots / 槽位: {}", slots.join(", "));
    }
    note.trim_end().to_owned()
}

fn reason_text(reason: &HandoffReason) -> (&'static str, &'static str) {
    match reason {
        HandoffReason::Requested => ("the customer asked for a person", "客户要求人工服务"),
        HandoffReason::RepeatedFallback => ("the bot did not understand several messages", "机器人多次未能理解"),
        HandoffReason::FormExhausted => ("a question was answered wrongly too often", "问题多次回答无效"),
        HandoffReason::FlowStep => ("a flow step handed off", "流程步骤转人工"),
    }
}

pub(super) fn ended_note(ended: &HandoffEnded) -> String {
    match ended.end {
        HandoffEnd::HandedBack => "Lepton: handed back to the bot / 已交还机器人".to_owned(),
        HandoffEnd::Closed => "Lepton: conversation closed / 会话已关闭".to_owned(),
    }
}
