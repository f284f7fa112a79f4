//! Outgoing messages: splitting at Discord's length limit, quick replies as
//! buttons, and allowed mentions.
//!
//! Discord renders its own Markdown in message content, so reply text is sent
//! as written. Every message goes out with `allowed_mentions.parse` empty:
//! `@everyone`, `@here`, `<@id>` and `<@&role>` in a reply, which may contain a
//! customer's words through a slot, show as text and notify nobody. The one
//! exception is an agent's message in a shared support channel, which may
//! notify the customer it is meant for, and only them.

use bot_core::QuickReply;
use serenity::all::{ButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, UserId};

/// Discord's maximum message length, in characters (Unicode code points, as serenity counts them).
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Discord's maximum size of a button's `custom_id`, in characters.
pub const MAX_CUSTOM_ID_CHARS: usize = 100;

/// Discord's maximum button label, in characters.
pub const MAX_LABEL_CHARS: usize = 80;

/// Buttons per action row, and action rows per message.
const BUTTONS_PER_ROW: usize = 5;
const MAX_ROWS: usize = 5;

/// Splits `text` into parts of at most `max_chars` characters, as Discord
/// counts them, cut at paragraph, line, sentence or word boundaries (see
/// [`bot_core::text::split_message`]).
pub fn split(text: &str, max_chars: usize) -> Vec<String> {
    bot_core::text::split_message(text, max_chars, |_| 1)
}

/// Builds rows of up to five buttons; empty without quick replies.
///
/// A button's `custom_id` is its payload, which comes back in the interaction.
/// A payload longer than 100 characters does not fit, so that button sends its
/// title instead, which the engine reads like typed text. Discord rejects a
/// message whose buttons share a `custom_id`, so repeats are left out, as are
/// buttons past the 25 a message can hold.
pub fn buttons(quick_replies: &[QuickReply]) -> Vec<CreateActionRow> {
    let mut ids: Vec<String> = Vec::new();
    let mut buttons = Vec::new();
    for quick in quick_replies {
        let title = if quick.title.trim().is_empty() { quick.payload.clone() } else { quick.title.clone() };
        let id = if quick.payload.chars().count() <= MAX_CUSTOM_ID_CHARS {
            quick.payload.clone()
        } else {
            tracing::warn!(payload_chars = quick.payload.chars().count(), "quick-reply payload exceeds Discord's 100-character custom_id; the button sends its title");
            truncate_chars(&title, MAX_CUSTOM_ID_CHARS).to_owned()
        };
        if id.trim().is_empty() || ids.contains(&id) {
            tracing::warn!("quick reply with an empty or repeated payload left out of the Discord buttons");
            continue;
        }
        if buttons.len() == BUTTONS_PER_ROW * MAX_ROWS {
            tracing::warn!(quick_replies = quick_replies.len(), "more quick replies than the 25 buttons a Discord message holds; the rest are left out");
            break;
        }
        buttons.push(CreateButton::new(id.clone()).label(truncate_chars(&title, MAX_LABEL_CHARS)).style(ButtonStyle::Primary));
        ids.push(id);
    }

    let mut rows = Vec::new();
    let mut buttons = buttons.into_iter().peekable();
    while buttons.peek().is_some() {
        rows.push(CreateActionRow::Buttons(buttons.by_ref().take(BUTTONS_PER_ROW).collect()));
    }
    rows
}

/// Allows no mentions at all, or a mention of one user only.
pub fn allowed_mentions(notify: Option<UserId>) -> CreateAllowedMentions {
    let none = CreateAllowedMentions::new().everyone(false).all_users(false).all_roles(false).replied_user(false);
    match notify {
        Some(user) => none.users([user]),
        None => none,
    }
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((byte, _)) => &text[..byte],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_short_text_whole() {
        assert_eq!(split("hello", MAX_MESSAGE_CHARS), vec!["hello"]);
    }

    #[test]
    fn split_prefers_paragraphs() {
        let text = format!("{}\n\n{}", "a".repeat(30), "b".repeat(30));

        assert_eq!(split(&text, 40), vec!["a".repeat(30), "b".repeat(30)]);
    }

    #[test]
    fn split_falls_back_to_sentences() {
        let parts = split("One two. Three four. Five six seven.", 25);

        assert_eq!(parts, vec!["One two. Three four.", "Five six seven."]);
    }

    #[test]
    fn split_finds_chinese_sentence_ends() {
        let parts = split("第一句话。第二句话。第三句话。", 12);

        assert_eq!(parts, vec!["第一句话。第二句话。", "第三句话。"]);
    }

    #[test]
    fn split_cuts_unbroken_run() {
        let parts = split(&"x".repeat(10), 4);

        assert_eq!(parts, vec!["xxxx", "xxxx", "xx"]);
    }

    #[test]
    fn split_counts_characters_not_bytes() {
        let parts = split(&"退".repeat(2000), MAX_MESSAGE_CHARS);

        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn split_parts_fit_limit() {
        let text = "word ".repeat(1000);

        let parts = split(&text, MAX_MESSAGE_CHARS);

        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|part| part.chars().count() <= MAX_MESSAGE_CHARS));
    }

    fn quick(title: &str, payload: &str) -> QuickReply {
        QuickReply { title: title.to_owned(), payload: payload.to_owned() }
    }

    #[test]
    fn buttons_carry_payloads() -> Result<(), serde_json::Error> {
        let rows = serde_json::to_value(buttons(&[quick("Track", "/order_status"), quick("Agent", "/human")]))?;

        assert_eq!(rows[0]["type"], 1);
        assert_eq!(rows[0]["components"][0]["custom_id"], "/order_status");
        assert_eq!(rows[0]["components"][0]["label"], "Track");
        assert_eq!(rows[0]["components"][1]["custom_id"], "/human");
        Ok(())
    }

    #[test]
    fn buttons_wrap_after_five() -> Result<(), serde_json::Error> {
        let many: Vec<QuickReply> = (0..7).map(|i| quick(&format!("Option {i}"), &format!("/o{i}"))).collect();

        let rows = serde_json::to_value(buttons(&many))?;

        assert_eq!(rows.as_array().map(Vec::len), Some(2));
        assert_eq!(rows[1]["components"].as_array().map(Vec::len), Some(2));
        Ok(())
    }

    #[test]
    fn buttons_send_title_for_long_payload() -> Result<(), serde_json::Error> {
        let rows = serde_json::to_value(buttons(&[quick("换个订单号再查", &"p".repeat(101))]))?;

        assert_eq!(rows[0]["components"][0]["custom_id"], "换个订单号再查");
        Ok(())
    }

    #[test]
    fn buttons_skip_repeated_payload() -> Result<(), serde_json::Error> {
        let rows = serde_json::to_value(buttons(&[quick("Yes", "/yes"), quick("Sure", "/yes")]))?;

        assert_eq!(rows[0]["components"].as_array().map(Vec::len), Some(1));
        Ok(())
    }

    #[test]
    fn no_buttons_no_rows() {
        assert!(buttons(&[]).is_empty());
    }

    #[test]
    fn allowed_mentions_parse_nothing() -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(allowed_mentions(None))?;

        assert_eq!(value["parse"], serde_json::json!([]));
        assert_eq!(value["users"], serde_json::json!([]));
        assert_eq!(value["replied_user"], false);
        Ok(())
    }

    #[test]
    fn allowed_mentions_one_user() -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(allowed_mentions(Some(UserId::new(42))))?;

        assert_eq!(value["parse"], serde_json::json!([]));
        assert_eq!(value["users"], serde_json::json!(["42"]));
        Ok(())
    }
}
