//! Cleaning of customer text and UTF-16 offsets, which Telegram uses for
//! entities and for its message length limit.

/// Removes control and bidirectional characters and trims; `None` when
/// nothing visible is left (see [`bot_core::text::clean_message`]).
pub fn clean(raw: &str) -> Option<String> {
    bot_core::text::clean_message(raw)
}

/// Converts an offset in UTF-16 code units to a byte offset in `text`; `None`
/// when it is past the end or inside a character.
pub fn utf16_to_byte(text: &str, offset: usize) -> Option<usize> {
    let mut units = 0;
    for (byte, c) in text.char_indices() {
        if units == offset {
            return Some(byte);
        }
        if units > offset {
            return None;
        }
        units += c.len_utf16();
    }
    (units == offset).then_some(text.len())
}

/// The length of `text` in UTF-16 code units, as Telegram counts it.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
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

    #[test]
    fn utf16_offsets_map_to_bytes() {
        let text = "a😀b退";

        let bytes: Vec<Option<usize>> = (0..=6).map(|offset| utf16_to_byte(text, offset)).collect();

        assert_eq!(bytes, vec![Some(0), Some(1), None, Some(5), Some(6), Some(9), None]);
    }

    #[test]
    fn utf16_len_counts_surrogates() {
        assert_eq!(utf16_len("a😀退"), 4);
    }
}
