//! Text analysis shared by indexing and querying: one tokenizer for mixed Chinese
//! and English text, and one for Chinese character bigrams.
//!
//! The word analyser splits the text into runs. A run of Han characters is cut
//! into words by jieba in search mode (a long word also yields its dictionary
//! sub-words, so `退款申请` is found by `退款`). A run of other letters and digits
//! is one word. Everything else (spaces, punctuation, emoji, query syntax such as
//! `+-:()^"`) separates words and is dropped. Words are then lowercased, stop
//! words removed, over-long words dropped, and English words stemmed.

use std::sync::OnceLock;

use jieba_rs::Jieba;
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

use crate::stopwords::{CHINESE_STOP_WORDS, ENGLISH_STOP_WORDS};

/// Name under which the word analyser is registered with tantivy.
pub(crate) const WORDS_TOKENIZER: &str = "lepton_words";

/// Name under which the Han-bigram analyser is registered with tantivy.
pub(crate) const BIGRAMS_TOKENIZER: &str = "lepton_cjk_bigrams";

/// Words longer than this many bytes are dropped: no FAQ term is that long, and a
/// 100 KB run of letters in a message must not become one giant term.
const MAX_WORD_BYTES: usize = 48;

/// jieba's dictionary takes about a quarter of a second to load, so every
/// tokenizer in the process shares one instance.
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Returns whether `c` is a Han (Chinese) character: the CJK Unified Ideographs
/// blocks with their extensions, and the compatibility ideographs.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FFFF}'
        | '\u{30000}'..='\u{3134F}')
}

/// The kind of character run a character belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RunKind {
    Han,
    Word,
    Separator,
}

fn run_kind(c: char) -> RunKind {
    if is_han(c) {
        RunKind::Han
    } else if c.is_alphanumeric() {
        RunKind::Word
    } else {
        RunKind::Separator
    }
}

/// Calls `visit(kind, byte_offset, run)` for each maximal run of Han characters
/// and each maximal run of other letters and digits, in text order.
fn for_each_run(text: &str, mut visit: impl FnMut(RunKind, usize, &str)) {
    let mut start = 0;
    let mut current = RunKind::Separator;

    for (offset, c) in text.char_indices() {
        let kind = run_kind(c);
        if kind == current {
            continue;
        }
        if current != RunKind::Separator {
            visit(current, start, &text[start..offset]);
        }
        start = offset;
        current = kind;
    }
    if current != RunKind::Separator {
        visit(current, start, &text[start..]);
    }
}

/// Holds the tokens of one `token_stream` call; the buffer is reused between calls.
#[derive(Clone, Default)]
struct TokenBuffer {
    tokens: Vec<Token>,
}

impl TokenBuffer {
    fn push(&mut self, text: &str, offset_from: usize) {
        let position = self.tokens.len();
        self.tokens.push(Token {
            offset_from,
            offset_to: offset_from + text.len(),
            position,
            text: text.to_owned(),
            position_length: 1,
        });
    }
}

/// Iterates over a filled [`TokenBuffer`].
pub(crate) struct BufferedTokenStream<'a> {
    tokens: &'a mut [Token],
    next: usize,
}

impl<'a> BufferedTokenStream<'a> {
    fn new(tokens: &'a mut [Token]) -> Self {
        Self { tokens, next: 0 }
    }
}

impl TokenStream for BufferedTokenStream<'_> {
    fn advance(&mut self) -> bool {
        if self.next >= self.tokens.len() {
            return false;
        }
        self.next += 1;
        true
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// Splits mixed Chinese and English text into words: Han runs with jieba, other
/// letter and digit runs as whole words.
#[derive(Clone, Default)]
pub(crate) struct MixedTokenizer {
    buffer: TokenBuffer,
}

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = BufferedTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let buffer = &mut self.buffer;
        buffer.tokens.clear();

        for_each_run(text, |kind, start, run| match kind {
            RunKind::Han => {
                for word in jieba().cut_for_search(run, true) {
                    buffer.push(word.word, start + word.byte_start);
                }
            }
            RunKind::Word => buffer.push(run, start),
            RunKind::Separator => {}
        });

        BufferedTokenStream::new(&mut buffer.tokens)
    }
}

/// Emits each pair of adjacent Han characters; all other text is ignored. A
/// bigram still matches where jieba cuts a query and an entry differently.
#[derive(Clone, Default)]
pub(crate) struct HanBigramTokenizer {
    buffer: TokenBuffer,
}

impl Tokenizer for HanBigramTokenizer {
    type TokenStream<'a> = BufferedTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let buffer = &mut self.buffer;
        buffer.tokens.clear();

        for_each_run(text, |kind, start, run| {
            if kind == RunKind::Han {
                push_bigrams(buffer, start, run);
            }
        });

        BufferedTokenStream::new(&mut buffer.tokens)
    }
}

fn push_bigrams(buffer: &mut TokenBuffer, start: usize, run: &str) {
    let offsets: Vec<usize> = run.char_indices().map(|(offset, _)| offset).chain([run.len()]).collect();
    for window in offsets.windows(3) {
        buffer.push(&run[window[0]..window[2]], start + window[0]);
    }
}

/// Returns the Han character bigrams of `word`, in order, possibly repeated.
pub(crate) fn han_bigrams(word: &str) -> Vec<String> {
    let mut buffer = TokenBuffer::default();
    for_each_run(word, |kind, start, run| {
        if kind == RunKind::Han {
            push_bigrams(&mut buffer, start, run);
        }
    });
    buffer.tokens.into_iter().map(|token| token.text).collect()
}

/// Builds the word analyser: mixed tokenizer, lowercasing, stop words, length
/// limit, English stemming. The stemmer leaves Han words unchanged.
pub(crate) fn word_analyzer() -> TextAnalyzer {
    let stop_words = ENGLISH_STOP_WORDS.iter().chain(CHINESE_STOP_WORDS).map(|word| (*word).to_owned());

    TextAnalyzer::builder(MixedTokenizer::default())
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(stop_words))
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Builds the Han-bigram analyser.
pub(crate) fn bigram_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(HanBigramTokenizer::default()).build()
}

/// Runs `analyzer` over `text` and returns the terms, in order, possibly repeated.
pub(crate) fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        terms.push(token.text.clone());
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        terms(&mut word_analyzer(), text)
    }

    #[test]
    fn words_english_lowercased_and_stemmed() {
        assert_eq!(words("Returning ITEMS"), ["return", "item"]);
    }

    #[test]
    fn words_english_stop_words_dropped() {
        assert_eq!(words("How do I return an item?"), ["return", "item"]);
    }

    #[test]
    fn words_chinese_cut_by_jieba() {
        assert!(words("我想退款").contains(&"退款".to_owned()));
    }

    #[test]
    fn words_chinese_stop_words_dropped() {
        assert_eq!(words("我想退款"), ["退款"]);
    }

    #[test]
    fn words_mixed_text_split_at_script_change() {
        assert_eq!(words("我的order在哪"), ["order"]);
    }

    #[test]
    fn words_mixed_text_keeps_both_scripts() {
        assert_eq!(words("iPhone退货政策"), ["iphon", "退货", "政策"]);
    }

    #[test]
    fn words_query_syntax_is_separator() {
        assert_eq!(words("refund (partial)? a:(^ -1 +x"), ["refund", "partial", "1", "x"]);
    }

    #[test]
    fn words_emoji_only_gives_nothing() {
        assert!(words("😀🎉👍").is_empty());
    }

    #[test]
    fn words_long_run_dropped() {
        assert!(words(&"a".repeat(10_000)).is_empty());
    }

    #[test]
    fn bigrams_of_han_runs_only() {
        let mut analyzer = bigram_analyzer();
        assert_eq!(terms(&mut analyzer, "退款abc申请书"), ["退款", "申请", "请书"]);
    }

    #[test]
    fn bigrams_single_han_character_gives_nothing() {
        assert!(han_bigrams("钱").is_empty());
    }
}
