//! Cleaning of customer text before it reaches the engine.

/// Removes control characters (except newline and tab) and bidirectional
/// overrides, then trims. Returns `None` when nothing visible is left.
pub fn clean(raw: &str) -> Option<String> {
    let removed = |c: char| (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let cleaned: String = raw.chars().filter(|&c| !removed(c)).collect();
    let text = cleaned.trim();
    if text.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return None;
    }
    Some(text.to_owned())
}

/// True for common characters that show nothing on their own: zero-width
/// spaces and joiners, the byte order mark, soft hyphens, variation selectors,
/// the Hangul filler and tag characters.
// NOTE: a subset of Unicode's Default_Ignorable_Code_Point, duplicated from the
// Telegram channel because channel crates do not depend on each other; one
// shared function in bot-core would serve every channel.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}' | '\u{34F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E0FFF}'
    )
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
