//! Lepton's knowledge base: a tantivy index of FAQ entries and Markdown article
//! sections that answers customers in English, Chinese or a mix of both.
//!
//! [`KnowledgeIndex`] implements [`bot_core::KnowledgeSearch`]. Build it in memory
//! for tests, or in a folder with [`KnowledgeIndex::open_or_build`], which reuses
//! the index on disk while the sources are unchanged.
//!
//! ```
//! use bot_core::{FaqEntry, KnowledgeSearch, Lang};
//! use lepton_knowledge::KnowledgeIndex;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let faq = vec![FaqEntry {
//!     id: "returns".to_owned(),
//!     lang: Lang::new("en"),
//!     question: "Returns".to_owned(),
//!     variants: vec!["What is your return policy?".to_owned()],
//!     answer: "You can return any unused item within 30 days.".to_owned(),
//!     tags: vec![],
//! }];
//! let index = KnowledgeIndex::in_memory(&faq, &[])?;
//!
//! let answer = index.search("how do I return an item?", &Lang::new("en"), 0.5)?;
//! assert_eq!(answer.map(|answer| answer.source).as_deref(), Some("faq:returns"));
//! # Ok(()) }
//! ```
//!
//! # Documents
//!
//! Each FAQ entry is one document with source `faq:ID`: its question, variants
//! and tags are the title text, its answer the body. Each article is split at its
//! headings ([`split_sections`]); a section is one document with source
//! `PATH#SLUG` (GitHub's heading anchors), the headings above it as title text
//! and its own text as body and answer.
//!
//! # Analysis
//!
//! Indexed text and queries go through the same analyser. Runs of Han characters
//! are cut into words by jieba (search mode, dictionary loaded once per process);
//! runs of other letters and digits are words. Words are lowercased, English and
//! Chinese stop words (pronouns, particles, question words, greetings) are
//! dropped, and English words are stemmed with Snowball. A second field indexes
//! Han character bigrams, so that a query still matches when jieba cuts it
//! differently from the entry.
//!
//! Queries are built in code as a `BooleanQuery` of `Should` term queries,
//! never parsed, so `a:(^`, `-1` or a URL are plain text. Only the first 4,096
//! bytes of a message are analysed, and at most 32 distinct words and 32 bigrams
//! become query terms. A match in title text counts twice as much as one in the
//! body.
//!
//! # Relevance
//!
//! BM25 scores depend on the query and cannot be compared with a fixed
//! threshold, so each candidate also gets a relevance in [0, 1]: the share of the
//! query's words that the document contains, each word weighted by its BM25
//! inverse document frequency over the whole index,
//!
//! ```text
//! relevance(q, d) = Σ idf(w) · match(w, d) / Σ idf(w)     over distinct words w of q
//! idf(w)          = ln(1 + (N − df(w) + 0.5) / (df(w) + 0.5))
//! ```
//!
//! where `match` is 1 when the word occurs anywhere in the document. A Chinese
//! word the document lacks earns partial credit: the share of the word's
//! character bigrams that occur in the document. So 1.0 means every word of the
//! question occurs in the entry, and rare words count more than common ones.
//! A word that occurs nowhere in the index gets the largest weight, since no
//! entry covers it.
//!
//! [`KnowledgeSearch::search`](bot_core::KnowledgeSearch::search) takes the top
//! 10 BM25 matches in the query's language and returns the first, in BM25
//! order, whose relevance reaches `min_score`; only when none does are the other
//! languages tried the same way. The returned score is the relevance.
//!
//! Choosing `min_score`: on the English Zaragoza construction FAQ (503 entries)
//! with answers indexed alone, 0.5 answered 85% of the questions and 5% of 1,000
//! unrelated CLINC150 queries; 0.6 answered 73% and 2% (see the
//! `eval_faq` example). The 0.5 default of `settings.knowledge.min_score` suits
//! this definition.
//!
//! NOTE: a one-word message is fully covered by any entry that contains the word,
//! so the threshold cannot reject it; and a word no entry uses lowers relevance as
//! much as a rare one, so in a small knowledge base a paraphrase with one unknown
//! word can fall below 0.5. Add such words to an entry's variants or tags.

//! # Hybrid search
//!
//! [`HybridKnowledge`] adds a pretrained sentence encoder (a
//! [`lepton_encoder::Batcher`]) to the same index. Each FAQ entry gets a
//! vector for its question and one per variant, embedded as queries. Each
//! article section is split into chunks of up to three sentences (600 bytes),
//! which are prefixed with the section's headings and embedded as passages. A
//! document's similarity to a message is the best cosine over its vectors,
//! computed exactly over all vectors.
//!
//! The top 10 documents by BM25 and the top 10 by similarity are fused by
//! reciprocal rank: a document at rank `r` (from 1) on a side earns
//! `1 / (60 + r)`, and the sums order the candidates.
//!
//! Raw cosines cannot be compared with a fixed threshold: all-MiniLM-L6-v2
//! puts unrelated sentences near 0.1, multilingual-e5-small near 0.75. So a
//! candidate's similarity is judged against the query's own background, the
//! median cosine `m` of the query over the vectors of every document but the
//! most similar one, together with 24 everyday English and Chinese sentences
//! that every index embeds and never answers (so that a knowledge base of one
//! entry has a background too). Its lift is how far it stands above that
//! background, as a share of the room above it:
//!
//! ```text
//! lift = (similarity − m) / (1 − m)
//! ```
//!
//! The first candidate whose BM25 relevance reaches `min_score` or whose lift
//! reaches [`HybridConfig::min_similarity`] (default 0.6) is the answer,
//! searching the message's language first and the others only when no
//! candidate there qualifies. A candidate outside BM25's top 10 counts as
//! relevance 0. The returned score is the larger of the relevance and the lift
//! mapped linearly onto the relevance scale, `min_similarity` to `min_score`
//! and 1 to 1, so it reaches `min_score` exactly when the answer qualified by
//! either signal.
//!
//! The embedding side does not vote on a message in a script outside the
//! encoder's vocabulary: when more than 30% of its tokens are unknown to the
//! tokenizer ([`lepton_encoder::Encoder::covers`]), as for Chinese under
//! all-MiniLM-L6-v2, the message is answered by BM25 alone. Such vectors lie
//! near each other whatever the text says.
//!
//! Either side can be switched off in [`HybridConfig`]. With embeddings off, or
//! without a batcher, the search is exactly [`KnowledgeIndex`]'s. When the
//! encoder fails on a message, a WARN line is logged and that message is
//! answered by BM25 alone, even when the BM25 side is switched off.
//! [`HybridKnowledge::open_or_build`] stores the vectors next to the index,
//! keyed by the sources and the encoder's fingerprint, and embeds again only
//! when either changes.
//!
//! Choosing `min_similarity`: see the `eval_faq` example and the figures for
//! all-MiniLM-L6-v2 and multilingual-e5-small in `docs/benchmarks.md`.
//!
//! NOTE: the engine lowers `min_score` when the classifier already chose the
//! knowledge intent, but `min_similarity` stays fixed.

mod analysis;
mod error;
mod hybrid;
mod index;
pub mod markdown;
mod schema;
mod search;
mod semantic;
mod stopwords;
mod vectors;

pub use error::KnowledgeBuildError;
pub use hybrid::{HybridConfig, HybridHit, HybridKnowledge, DEFAULT_MIN_SIMILARITY};
pub use index::KnowledgeIndex;
pub use markdown::{split_sections, ArticleSection};
pub use search::KnowledgeHit;
