//! Cleaning of customer text before it reaches the engine.

/// Removes control and bidirectional characters and trims; `None` when
/// nothing visible is left (see [`bot_core::text::clean_message`]).
pub fn clean(raw: &str) -> Option<String> {
    bot_core::text::clean_message(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_controls_and_trims() {
        assert_eq!(clean("  a\u{0}b\u{202E}c\r\nd  ").as_deref(), Some("abc\nd"));
    }

    #[test]
    fn clean_rejects_invisible_only() {
        for text in ["", "  \n", "\u{200B}", "\u{FEFF}\u{200D} ", "\u{0}\u{7}"] {
            assert_eq!(clean(text), None, "{text:?} was kept");
        }
    }

    #[test]
    fn clean_keeps_chinese_and_emoji() {
        assert_eq!(clean("我想退款 👍").as_deref(), Some("我想退款 👍"));
    }
}
