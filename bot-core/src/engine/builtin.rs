//! Built-in texts for the reserved responses, used when a bot does not define them.

/// Returns the built-in text of a reserved response in `lang`, English otherwise.
pub fn text(response: &str, lang: &str) -> Option<&'static str> {
    let zh = lang == "zh";
    let text = match response {
        "fallback" if zh => "抱歉，我没有理解您的意思。可以换个说法吗？",
        "fallback" => "Sorry, I didn't understand that. Could you rephrase it?",
        "handoff_waiting" if zh => "正在为您转接人工客服，请稍候。客服接入后会在这里回复您。",
        "handoff_waiting" => "I'm passing you to a member of our support team. Please wait; they will reply here.",
        "handoff_agent_joined" if zh => "客服 {agent} 已接入对话。",
        "handoff_agent_joined" => "{agent} from our support team has joined the conversation.",
        "handoff_transferred" if zh => "客服 {agent} 将继续为您服务。",
        "handoff_transferred" => "{agent} is now helping you.",
        "handoff_no_agent" if zh => "抱歉，客服暂时都在忙。您可以留下邮箱或电话，我们会尽快联系您；也可以保持对话开启，或稍后再来，对话记录会一直保留。",
        "handoff_no_agent" => "Sorry, all our agents are busy right now. You can leave your email or phone number and we will get back to you, or keep this chat open or come back later: the conversation is kept.",
        "handoff_returned" if zh => "您好，我是智能助手，又回来为您服务了。还有什么可以帮您？",
        "handoff_returned" => "Hi again, you're back with the assistant. Is there anything else I can help with?",
        "handoff_closed" if zh => "本次对话已结束，感谢您的耐心。如需帮助，随时给我们留言。",
        "handoff_closed" => "This conversation has been closed. Thank you for your patience; write any time if you need more help.",
        "non_text" if zh => "抱歉，我目前只能阅读文字。请用文字描述您的问题。",
        "non_text" => "Sorry, I can only read text for now. Please describe your question in words.",
        "session_expired" if zh => "由于长时间没有回复，之前的对话已重置。请问有什么可以帮您？",
        "session_expired" => "Our previous conversation timed out, so we're starting over. How can I help?",
        "action_failed" if zh => "抱歉，系统暂时出了点问题，请稍后再试。",
        "action_failed" => "Sorry, something went wrong on our side. Please try again in a moment.",
        "form_restarted" if zh => "这个流程刚刚更新了，我们从头再来一次。",
        "form_restarted" => "This part of our conversation was just updated, so let's start it again.",
        "form_removed" if zh => "之前进行中的流程已不再可用。请问有什么可以帮您？",
        "form_removed" => "What we were in the middle of is no longer available. How can I help?",
        "unavailable" if zh => "抱歉，系统暂时无法处理您的消息，请稍后重新发送。",
        "unavailable" => "Sorry, I can't process your message right now because of a problem on our side. Please send it again in a moment.",
        "busy" if zh => "抱歉，目前咨询的客户较多，暂时无法开始新的对话。请几分钟后再发送您的消息。",
        "busy" => "Sorry, we're helping a lot of customers right now and can't start a new conversation. Please send your message again in a few minutes.",
        "session_reset" if zh => "抱歉，我们的对话记录出了问题，只能重新开始。请问有什么可以帮您？",
        "session_reset" => "Sorry, I lost track of our conversation and have to start over. How can I help?",
        _ => return None,
    };
    Some(text)
}

/// The reserved response ids the engine sends by itself.
pub const RESERVED: &[&str] = &[
    "fallback",
    "handoff_waiting",
    "handoff_agent_joined",
    "handoff_transferred",
    "handoff_no_agent",
    "handoff_returned",
    "handoff_closed",
    "non_text",
    "session_expired",
    "action_failed",
    "session_reset",
    "unavailable",
    "busy",
    "form_restarted",
    "form_removed",
];
