//! Outgoing text: splitting at Telegram's length limit, a small Markdown
//! subset rendered as Telegram HTML, and quick replies as inline keyboards.
//!
//! Replies go out with `parse_mode=HTML`. Every `<`, `>` and `&` of the text
//! is escaped, so a customer's name or an order note that reaches a reply
//! through a slot cannot break the markup. `*`, `_` and `[` mean nothing in
//! HTML mode. Only `**bold**`, `` `code` `` and `[label](https://…)` become
//! markup.

use bot_core::QuickReply;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};


/// Telegram's maximum message length, in UTF-16 code units after parsing entities.
pub const MAX_MESSAGE_UNITS: usize = 4096;

/// Telegram's maximum size of a button's callback data, in bytes.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// Splits `text` into parts of at most `max_units` UTF-16 code units, cut at
/// paragraph, line, sentence or word boundaries (see [`bot_core::text::split_message`]).
pub fn split(text: &str, max_units: usize) -> Vec<String> {
    bot_core::text::split_message(text, max_units, char::len_utf16)
}

/// Renders text as Telegram HTML: escapes everything, and turns `**bold**`,
/// `` `code` `` and `[label](http…)` links into tags.
pub fn to_html(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((rendered, used)) = markup_at(rest) {
            html.push_str(&rendered);
            rest = &rest[used..];
            continue;
        }
        escape_into(&mut html, &rest[..c.len_utf8()]);
        rest = &rest[c.len_utf8()..];
    }
    html
}

/// Renders the markup that starts `text`, with the number of bytes it spans.
fn markup_at(text: &str) -> Option<(String, usize)> {
    if let Some(inner) = text.strip_prefix("**") {
        let end = inner.find("**").filter(|&end| end > 0 && !inner[..end].contains('\n'))?;
        return Some((format!("<b>{}</b>", escape(&inner[..end])), end + 4));
    }
    if let Some(inner) = text.strip_prefix('`') {
        let end = inner.find('`').filter(|&end| end > 0 && !inner[..end].contains('\n'))?;
        return Some((format!("<code>{}</code>", escape(&inner[..end])), end + 2));
    }
    let inner = text.strip_prefix('[')?;
    let label_end = inner.find("](").filter(|&end| end > 0 && !inner[..end].contains(['\n', '[']))?;
    let target = &inner[label_end + 2..];
    let url_end = target.find(')')?;
    let url = &target[..url_end];
    let safe = (url.starts_with("https://") || url.starts_with("http://")) && !url.contains(|c: char| c.is_whitespace() || c == '"');
    if !safe {
        return None;
    }
    let rendered = format!("<a href=\"{}\">{}</a>", escape(url), escape(&inner[..label_end]));
    Some((rendered, 1 + label_end + 2 + url_end + 1))
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    escape_into(&mut escaped, text);
    escaped
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Builds an inline keyboard with one button per row; `None` without buttons.
///
/// A button's callback data is its payload. A payload longer than 64 bytes
/// does not fit, so that button sends its title instead, which the engine reads
/// like typed text.
pub fn keyboard(quick_replies: &[QuickReply]) -> Option<InlineKeyboardMarkup> {
    if quick_replies.is_empty() {
        return None;
    }
    let rows = quick_replies.iter().map(|quick| {
        let title = if quick.title.trim().is_empty() { quick.payload.clone() } else { quick.title.clone() };
        let data = if quick.payload.len() <= MAX_CALLBACK_DATA_BYTES {
            quick.payload.clone()
        } else {
            tracing::warn!(payload_bytes = quick.payload.len(), "quick-reply payload exceeds Telegram's 64-byte callback data; the button sends its title");
            truncate_bytes(&title, MAX_CALLBACK_DATA_BYTES).to_owned()
        };
        vec![InlineKeyboardButton::callback(title, data)]
    });
    Some(InlineKeyboardMarkup::new(rows))
}

fn truncate_bytes(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::utf16_len;

    #[test]
    fn split_keeps_short_text_whole() {
        assert_eq!(split("hello", 4096), vec!["hello"]);
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
    fn split_never_cuts_surrogate_pairs() {
        let parts = split(&"😀".repeat(5), 3);

        for part in &parts {
            assert!(utf16_len(part) <= 3, "{part:?} is too long");
        }
        assert_eq!(parts.concat(), "😀".repeat(5));
    }

    #[test]
    fn split_parts_fit_limit() {
        let text = "word ".repeat(2000);

        let parts = split(&text, MAX_MESSAGE_UNITS);

        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|part| utf16_len(part) <= MAX_MESSAGE_UNITS));
    }

    #[test]
    fn html_escapes_special_characters() {
        assert_eq!(to_html("a < b & c > d \"e\""), "a &lt; b &amp; c &gt; d &quot;e&quot;");
    }

    #[test]
    fn html_leaves_markdown_characters_of_names() {
        assert_eq!(to_html("Thanks, *John_Doe* [VIP"), "Thanks, *John_Doe* [VIP");
    }

    #[test]
    fn html_renders_bold_code_and_links() {
        let html = to_html("**Note:** use `100001` or [our site](https://shop.example/a?b=1&c=2).");

        assert_eq!(html, "<b>Note:</b> use <code>100001</code> or <a href=\"https://shop.example/a?b=1&amp;c=2\">our site</a>.");
    }

    #[test]
    fn html_rejects_script_links() {
        assert_eq!(to_html("[x](javascript:alert(1))"), "[x](javascript:alert(1))");
    }

    #[test]
    fn html_escapes_inside_markup() {
        assert_eq!(to_html("**<i>**"), "<b>&lt;i&gt;</b>");
    }

    #[test]
    fn keyboard_uses_payloads() -> Result<(), serde_json::Error> {
        let quick = [QuickReply { title: "Track".to_owned(), payload: "/order_status".to_owned() }];

        let markup = serde_json::to_value(keyboard(&quick))?;

        assert_eq!(markup["inline_keyboard"][0][0]["callback_data"], "/order_status");
        Ok(())
    }

    #[test]
    fn keyboard_sends_title_for_long_payload() -> Result<(), serde_json::Error> {
        let quick = [QuickReply { title: "换个订单号再查".to_owned(), payload: "p".repeat(65) }];

        let markup = serde_json::to_value(keyboard(&quick))?;

        assert_eq!(markup["inline_keyboard"][0][0]["callback_data"], "换个订单号再查");
        Ok(())
    }
}
