//! Text helpers shared by the engine and the tools: language detection,
//! `{name}` interpolation, slot validation and the terminal width of text.
//! All of them handle Chinese and English text.

use regex::Regex;

use crate::bot::{Choice, SlotKind};
use crate::ids::Lang;

/// True for characters of the CJK unified ideograph blocks (Chinese characters).
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

/// Terminal cells taken by a character: 2 for East Asian wide and full-width
/// characters, 0 for combining marks, 1 otherwise. An approximation of Unicode
/// East Asian Width covering the CJK, kana, Hangul and full-width blocks.
pub fn char_display_width(c: char) -> usize {
    let code = u32::from(c);
    let combining = matches!(code, 0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F);
    if combining {
        return 0;
    }
    let wide = matches!(
        code,
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD
    );
    if wide {
        2
    } else {
        1
    }
}

/// Terminal cells taken by `text`, by [`char_display_width`]: a Chinese
/// character takes two, so tables line up only when padded by this width.
pub fn display_width(text: &str) -> usize {
    text.chars().map(char_display_width).sum()
}

/// Pads `text` with spaces to `width` terminal cells.
pub fn pad_to_width(text: &str, width: usize) -> String {
    let padding = width.saturating_sub(display_width(text));
    format!("{text}{}", " ".repeat(padding))
}

/// Guesses the language of `text` among `supported`: Chinese when it contains a
/// Chinese character, else the first non-Chinese supported language when it
/// contains at least three Latin letters, else `None` (digits, emoji, "ok").
pub fn detect_lang(text: &str, supported: &[Lang]) -> Option<Lang> {
    let han = text.chars().filter(|c| is_han(*c)).count();
    if han > 0 {
        return supported.iter().find(|l| l.as_str() == "zh").cloned();
    }

    let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if latin >= 3 {
        return supported.iter().find(|l| l.as_str() != "zh").cloned();
    }
    None
}

/// True when `text` is a quick-reply payload such as `/order_status`: it names
/// an intent rather than being the customer's own words.
pub fn is_payload(text: &str) -> bool {
    text.trim_start().starts_with('/')
}

/// Folds full-width ASCII variants (`１２３`, `ＡＢＣ`, the ideographic space) to ASCII.
pub fn fold_width(text: &str) -> String {
    text.chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        })
        .collect()
}

/// Replaces `{name}` with `values[name]`; `{{` and `}}` are literal braces, and an
/// unknown name is left as written so that a missing slot is visible, not silent.
pub fn interpolate(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        match tail.find('}') {
            Some(end) => {
                let name = tail[1..end].trim();
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&tail[..=end]),
                }
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lowercases and trims an answer and drops trailing punctuation, for choice matching.
pub fn normalize_answer(text: &str) -> String {
    let folded = fold_width(text).to_lowercase();
    let trimmed = folded.trim().trim_end_matches(['.', '!', '?', '。', '！', '？', '~', '～']);
    trimmed.trim().to_owned()
}

/// Validates a customer's answer for a slot and returns the value to store.
/// `pattern` is the compiled pattern of a `regex` slot.
pub fn parse_slot_value(kind: &SlotKind, answer: &str, pattern: Option<&Regex>) -> Option<String> {
    // Free text is stored as written; the other kinds read full-width digits
    // and letters as ASCII so that "１０００01" is a number.
    if let SlotKind::Text = kind {
        let answer = answer.trim();
        return (!answer.is_empty()).then(|| answer.to_owned());
    }
    let folded = fold_width(answer);
    let answer = folded.trim();
    if answer.is_empty() {
        return None;
    }

    match kind {
        SlotKind::Text => Some(answer.to_owned()),
        SlotKind::Number { min, max } => parse_number(answer, *min, *max),
        SlotKind::Email => parse_email(answer),
        SlotKind::Phone => parse_phone(answer),
        SlotKind::Regex { .. } => pattern.and_then(|pattern| match_pattern(pattern, answer)),
        SlotKind::Choice { choices } => match_choice(choices, answer),
    }
}

fn parse_number(answer: &str, min: Option<f64>, max: Option<f64>) -> Option<String> {
    let numbers: Vec<&str> = answer
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|token| token.chars().any(|c| c.is_ascii_digit()))
        .collect();
    let [token] = numbers.as_slice() else {
        return None;
    };
    let value: f64 = token.parse().ok()?;
    let in_range = min.is_none_or(|min| value >= min) && max.is_none_or(|max| value <= max);
    in_range.then(|| token.to_string())
}

fn parse_email(answer: &str) -> Option<String> {
    let candidate = answer.split_whitespace().find(|word| word.contains('@'))?;
    let candidate = candidate.trim_matches(|c: char| matches!(c, '<' | '>' | ',' | ';' | '。' | '，'));
    let (local, domain) = candidate.split_once('@')?;
    let valid = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !candidate.chars().any(char::is_whitespace);
    valid.then(|| candidate.to_owned())
}

fn parse_phone(answer: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.');
    if !answer.chars().all(allowed) {
        return None;
    }
    let digits: String = answer.chars().filter(char::is_ascii_digit).collect();
    let plus = answer.trim_start().starts_with('+');
    if !(7..=15).contains(&digits.len()) || answer.matches('+').count() > usize::from(plus) {
        return None;
    }
    Some(if plus { format!("+{digits}") } else { digits })
}

/// Tries the whole answer, then each run of ASCII letters and digits in it, so
/// that "my order is 100001" or "订单号100001" fill a `^[0-9]{6}$` slot.
fn match_pattern(pattern: &Regex, answer: &str) -> Option<String> {
    if pattern.is_match(answer) {
        return Some(answer.to_owned());
    }
    let tokens: Vec<&str> = answer
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    let matching: Vec<&str> = tokens.into_iter().filter(|t| pattern.is_match(t)).collect();
    match matching.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

/// Matches the answer against each choice's value and synonyms, first exactly,
/// then as the first word of a longer answer ("yes please", "不，谢谢").
fn match_choice(choices: &[Choice], answer: &str) -> Option<String> {
    let answer = normalize_answer(answer);
    let names = |choice: &Choice| {
        let synonyms = choice.synonyms.values().flatten().map(|s| normalize_answer(s));
        std::iter::once(normalize_answer(&choice.value)).chain(synonyms).filter(|n| !n.is_empty()).collect::<Vec<_>>()
    };
    let exact = choices.iter().find(|choice| names(choice).contains(&answer));
    let leading = || {
        let mut matches = choices.iter().filter(|choice| names(choice).iter().any(|n| starts_with_word(&answer, n)));
        let first = matches.next()?;
        // An answer that starts with names of two choices ("no" and "no way") is no answer.
        matches.next().is_none().then_some(first)
    };
    exact.or_else(leading).map(|choice| choice.value.clone())
}

/// True when `text` starts with `word` followed by a space or punctuation.
fn starts_with_word(text: &str, word: &str) -> bool {
    let Some(rest) = text.strip_prefix(word) else {
        return false;
    };
    rest.chars().next().is_some_and(|c| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\'') || "，。！？、；：,…~～".contains(c))
}

/// Removes control characters other than newline and tab and the
/// bidirectional controls (see [`is_bidi_control`]) from a customer's message,
/// then trims it. Returns `None` when nothing visible is left: text made only
/// of whitespace and invisible characters (see [`is_invisible`]). Invisible
/// characters inside visible text are kept, since emoji sequences need the
/// zero-width joiner.
pub fn clean_message(raw: &str) -> Option<String> {
    let removed = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c);
    let cleaned: String = raw.chars().filter(|&c| !removed(c)).collect();
    let text = cleaned.trim();
    if is_blank(text) {
        return None;
    }
    Some(text.to_owned())
}

/// Returns true for a text made only of whitespace and invisible characters
/// (see [`is_invisible`]), the empty text included.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// True for the bidirectional embeddings, overrides and isolates (U+202A to U+202E,
/// U+2066 to U+2069). They can make text display in reverse order in the agent
/// console or the widget (`\u{202E}` shows "abc" as "cba"), so they are removed.
///
/// The marks U+200E, U+200F and U+061C are kept: they only set the direction of
/// the neutral characters next to them, cannot reorder letters, and belong to
/// correctly written Arabic and Hebrew text.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Returns true for a character with the Unicode property Default_Ignorable_Code_Point
/// (ranges as of Unicode 16.0), which shows nothing on its own.
///
/// Examples are the zero-width space (U+200B), the zero-width non-joiner and joiner
/// (U+200C, U+200D), the word joiner (U+2060) and the byte order mark (U+FEFF).
/// Soft hyphens, variation selectors, Hangul fillers and tag characters count too.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Splits a reply for a platform's message length limit: into parts of at
/// most `max` units, where `units` gives each character's size (1 for
/// Discord's characters, UTF-16 code units for Telegram). Each part is cut at
/// its last paragraph break, else line break, else sentence end, else space.
/// A run with none of these is cut between characters.
pub fn split_message(text: &str, max: usize, units: impl Fn(char) -> usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().map(&units).sum::<usize>() > max {
        let window = &rest[..prefix_bytes(rest, max, &units)];
        let (end, next) = cut_point(window);
        parts.push(rest[..end].trim_end().to_owned());
        rest = rest[next..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

/// Returns the byte length of the longest prefix of `text` within `max` units,
/// and at least one character.
fn prefix_bytes(text: &str, max: usize, units: impl Fn(char) -> usize) -> usize {
    let mut total = 0;
    for (byte, c) in text.char_indices() {
        total += units(c);
        if total > max {
            return byte.max(c.len_utf8());
        }
    }
    text.len()
}

/// Returns where the part ends and where the rest starts, in bytes of `window`.
fn cut_point(window: &str) -> (usize, usize) {
    if let Some(at) = window.rfind("\n\n").filter(|&at| at > 0) {
        return (at, at + 2);
    }
    if let Some(at) = window.rfind('\n').filter(|&at| at > 0) {
        return (at, at + 1);
    }
    if let Some(end) = last_sentence_end(window) {
        return (end, end);
    }
    if let Some((at, c)) = window.char_indices().rev().find(|&(at, c)| at > 0 && c.is_whitespace()) {
        return (at, at + c.len_utf8());
    }
    (window.len(), window.len())
}

/// Returns the byte position just after the last sentence end in `window`: `.`,
/// `!` or `?` followed by a space, or a full-width `。`, `！`, `？` anywhere.
fn last_sentence_end(window: &str) -> Option<usize> {
    let mut last = None;
    let mut chars = window.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let after = at + c.len_utf8();
        let ends = match c {
            '。' | '！' | '？' => true,
            '.' | '!' | '?' => chars.peek().is_some_and(|&(_, next)| next.is_whitespace()),
            _ => false,
        };
        if ends {
            last = Some(after);
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn display_width_counts_chinese_twice() {
        assert_eq!(display_width("refund"), 6);
        assert_eq!(display_width("退款"), 4);
        assert_eq!(display_width("Request+酒店+电话"), 17);
        assert_eq!(display_width("e\u{301}"), 1, "a combining accent takes no cell");
    }

    #[test]
    fn pad_counts_chinese_as_two_cells() {
        assert_eq!(pad_to_width("退款", 6), "退款  ");
    }

    fn langs() -> Vec<Lang> {
        vec![Lang::new("en"), Lang::new("zh")]
    }

    #[test]
    fn detect_lang_chinese() {
        assert_eq!(detect_lang("我的order在哪", &langs()), Some(Lang::new("zh")));
    }

    #[test]
    fn detect_lang_english() {
        assert_eq!(detect_lang("where is it", &langs()), Some(Lang::new("en")));
    }

    #[test]
    fn detect_lang_digits_only_is_unknown() {
        assert_eq!(detect_lang("100001", &langs()), None);
    }

    #[test]
    fn interpolate_slots_and_braces() {
        let out = interpolate("{{x}} {name} {missing}", |n| (n == "name").then(|| "王".to_owned()));
        assert_eq!(out, "{x} 王 {missing}");
    }

    #[test]
    fn regex_slot_found_inside_sentence() {
        let pattern = Regex::new("^[0-9]{6}$").unwrap();
        let kind = SlotKind::Regex { pattern: "^[0-9]{6}$".to_owned() };
        assert_eq!(parse_slot_value(&kind, "我的订单号是１０００01", Some(&pattern)), Some("100001".to_owned()));
    }

    #[test]
    fn regex_slot_rejects_wrong_length() {
        let pattern = Regex::new("^[0-9]{6}$").unwrap();
        let kind = SlotKind::Regex { pattern: "^[0-9]{6}$".to_owned() };
        assert_eq!(parse_slot_value(&kind, "12345", Some(&pattern)), None);
    }

    #[test]
    fn text_slot_keeps_full_width_characters() {
        let address = "文三路４７８号，３单元（６０２）";
        assert_eq!(parse_slot_value(&SlotKind::Text, address, None), Some(address.to_owned()));
    }

    #[test]
    fn number_slot_range() {
        let kind = SlotKind::Number { min: Some(1.0), max: Some(9.0) };
        assert_eq!(parse_slot_value(&kind, "3 pieces", None), Some("3".to_owned()));
        assert_eq!(parse_slot_value(&kind, "30", None), None);
    }

    #[test]
    fn email_and_phone_slots() {
        assert_eq!(parse_slot_value(&SlotKind::Email, "it's a@b.cn", None), Some("a@b.cn".to_owned()));
        assert_eq!(parse_slot_value(&SlotKind::Email, "a@b", None), None);
        assert_eq!(parse_slot_value(&SlotKind::Phone, "+86 138-0013-8000", None), Some("+8613800138000".to_owned()));
        assert_eq!(parse_slot_value(&SlotKind::Phone, "call me", None), None);
    }

    #[test]
    fn choice_slot_synonyms() {
        let mut synonyms = BTreeMap::new();
        synonyms.insert(Lang::new("zh"), vec!["是的".to_owned()]);
        let kind = SlotKind::Choice { choices: vec![Choice { value: "yes".to_owned(), synonyms }] };
        assert_eq!(parse_slot_value(&kind, " 是的。", None), Some("yes".to_owned()));
        assert_eq!(parse_slot_value(&kind, "YES!", None), Some("yes".to_owned()));
        assert_eq!(parse_slot_value(&kind, "maybe", None), None);
    }

    #[test]
    fn choice_slot_first_word() {
        let no = Choice { value: "no".to_owned(), synonyms: BTreeMap::from([(Lang::new("zh"), vec!["不".to_owned()])]) };
        let yes = Choice { value: "yes".to_owned(), synonyms: BTreeMap::new() };
        let kind = SlotKind::Choice { choices: vec![yes, no] };
        assert_eq!(parse_slot_value(&kind, "Yes, change it", None), Some("yes".to_owned()));
        assert_eq!(parse_slot_value(&kind, "不，谢谢", None), Some("no".to_owned()));
        assert_eq!(parse_slot_value(&kind, "yesterday", None), None);
        assert_eq!(parse_slot_value(&kind, "no, yes", None), Some("no".to_owned()));
    }
}
