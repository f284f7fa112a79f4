//! Text normalisation and tokenisation that work for English and Chinese
//! without a word segmenter: every CJK character is a word of its own.

/// Normalises `text` for feature extraction: folds full-width ASCII forms and
/// the ideographic space to their ASCII equivalents, lowercases, and collapses
/// runs of whitespace into one space.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;

    for ch in text.chars().map(fold_width) {
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(ch.to_lowercase());
    }
    out
}

/// Maps full-width ASCII variants (U+FF01 to U+FF5E) and the ideographic space
/// (U+3000) to ASCII, as NFKC does for these characters.
fn fold_width(ch: char) -> char {
    match ch {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
        _ => ch,
    }
}

/// Returns whether `ch` belongs to a script written without spaces between
/// words: CJK ideographs (with extensions and compatibility forms), Hiragana and
/// Katakana.
pub fn is_cjk(ch: char) -> bool {
    matches!(
        ch as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F
    )
}

/// A word of normalised text: a run of letters and digits, or one CJK character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub cjk: bool,
}

/// Splits normalised text into words. Letters and digits form words; other
/// characters separate them, except apostrophes, which are dropped so that
/// `what's` and `whats` give the same word. With `fold_digits`, every ASCII
/// digit becomes `0` (normalisation has already folded full-width digits to
/// ASCII), so that order numbers and times share features.
pub fn words(normalized: &str, fold_digits: bool) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current = String::new();

    for ch in normalized.chars() {
        if is_cjk(ch) {
            flush(&mut current, &mut words);
            words.push(Word { text: ch.to_string(), cjk: true });
        } else if ch.is_alphanumeric() {
            let ch = if fold_digits && ch.is_ascii_digit() { '0' } else { ch };
            current.push(ch);
        } else if !matches!(ch, '\'' | '\u{2019}') {
            flush(&mut current, &mut words);
        }
    }
    flush(&mut current, &mut words);
    words
}

fn flush(current: &mut String, words: &mut Vec<Word>) {
    if !current.is_empty() {
        words.push(Word { text: std::mem::take(current), cjk: false });
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize, words};

    #[test]
    fn normalize_folds_full_width_and_case() {
        assert_eq!(normalize("ＡＢＣ　Ｏｒｄｅｒ！"), "abc order!");
    }

    #[test]
    fn normalize_collapses_and_trims_spaces() {
        assert_eq!(normalize("  where   is\tmy order \n"), "where is my order");
    }

    #[test]
    fn words_splits_cjk_per_character() {
        let texts: Vec<String> = words("我的iphone坏了", true).into_iter().map(|w| w.text).collect();
        assert_eq!(texts, ["我", "的", "iphone", "坏", "了"]);
    }

    #[test]
    fn words_drops_apostrophes_and_folds_digits() {
        let texts: Vec<String> = words("what's order #4821?", true).into_iter().map(|w| w.text).collect();
        assert_eq!(texts, ["whats", "order", "0000"]);
    }

    #[test]
    fn words_of_emoji_only_text_is_empty() {
        assert!(words("🙂🙂 !!", true).is_empty());
    }
}
