//! Hybrid search: BM25 fused with all-MiniLM-L6-v2 similarity. Tests that need
//! the model skip with a printed reason when `lepton_encoder::test_model()`
//! cannot provide it.

use std::sync::{Arc, OnceLock};

use bot_core::{FaqEntry, KnowledgeSearch, Lang};
use lepton_encoder::{Batcher, Encoder, EncoderConfig};
use lepton_knowledge::{HybridConfig, HybridKnowledge, KnowledgeIndex};

use super::{entry, help_articles, shop_faq, truncate, TempDir, MIN_SCORE};

/// The shared MiniLM batcher, or the reason it is unavailable.
fn batcher() -> Result<Batcher, String> {
    static BATCHER: OnceLock<Result<Batcher, String>> = OnceLock::new();
    BATCHER
        .get_or_init(|| {
            let folder = lepton_encoder::test_model()?;
            let encoder = Encoder::load(&EncoderConfig::new(folder)).map_err(|error| error.to_string())?;
            Ok(Batcher::new(Arc::new(encoder)))
        })
        .clone()
}

/// Returns the batcher, or prints why the calling test is skipped.
fn batcher_or_skip(test: &str) -> Option<Batcher> {
    match batcher() {
        Ok(batcher) => Some(batcher),
        Err(reason) => {
            eprintln!("skipped {test}: no test model ({reason})");
            None
        }
    }
}

/// A FAQ whose refund entry shares no word with "how can I get my money back".
fn support_faq() -> Vec<FaqEntry> {
    vec![
        entry(
            "refund",
            "en",
            "How do I request a refund?",
            &["I want a refund", "Refund policy"],
            "Refunds are paid to your card within 5 working days.",
            &[],
        ),
        entry(
            "password",
            "en",
            "I forgot my password",
            &["reset password"],
            "Use the reset link on the sign-in page.",
            &[],
        ),
        entry(
            "shipping",
            "en",
            "How long does shipping take?",
            &["delivery time"],
            "Standard shipping takes 3-5 working days.",
            &[],
        ),
        entry("refund_zh", "zh", "如何申请退款？", &["退款多久到账"], "在订单页面点击“申请退款”。", &[]),
    ]
}

fn config(bm25: bool, embeddings: bool) -> HybridConfig {
    HybridConfig { bm25, embeddings, ..HybridConfig::default() }
}

fn source(knowledge: &HybridKnowledge, query: &str, lang: &str) -> anyhow::Result<Option<String>> {
    let answer = knowledge.search(query, &Lang::new(lang), MIN_SCORE)?;
    Ok(answer.map(|answer| answer.source))
}

const PARAPHRASE: &str = "how can I get my money back";

#[test]
fn hybrid_answers_paraphrase_without_shared_words() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_answers_paraphrase_without_shared_words") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    assert_eq!(source(&knowledge, PARAPHRASE, "en")?.as_deref(), Some("faq:refund"));
    Ok(())
}

#[test]
fn bm25_alone_misses_paraphrase() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("bm25_alone_misses_paraphrase") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &config(true, false))?;
    assert_eq!(source(&knowledge, PARAPHRASE, "en")?, None);
    Ok(())
}

#[test]
fn embeddings_alone_answer_paraphrase() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("embeddings_alone_answer_paraphrase") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &config(false, true))?;
    assert_eq!(source(&knowledge, PARAPHRASE, "en")?.as_deref(), Some("faq:refund"));
    Ok(())
}

#[test]
fn hybrid_answers_chinese_through_bm25() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_answers_chinese_through_bm25") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&shop_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    assert_eq!(source(&knowledge, "我想退款", "zh")?.as_deref(), Some("faq:refund_zh"));
    assert_eq!(source(&knowledge, "请问运费是多少", "zh")?.as_deref(), Some("faq:shipping_fee_zh"));
    Ok(())
}

#[test]
fn hybrid_prefers_query_language() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_prefers_query_language") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    assert_eq!(source(&knowledge, "I want a refund", "en")?.as_deref(), Some("faq:refund"));
    Ok(())
}

#[test]
fn hybrid_unrelated_question_gets_no_answer() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_unrelated_question_gets_no_answer") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    for query in ["what is the weather in Paris tomorrow", "tell me a joke about cats", "who won the football match"] {
        assert_eq!(source(&knowledge, query, "en")?, None, "query {query:?}");
    }
    Ok(())
}

/// English and Chinese entries; all-MiniLM-L6-v2 lacks most Chinese characters.
fn bilingual_faq() -> Vec<FaqEntry> {
    let mut faq = support_faq();
    faq.push(entry("cancel_zh", "zh", "如何取消订单？", &["取消订单"], "在订单页面点击“取消订单”。", &[]));
    faq.push(entry("shipping_zh", "zh", "运费是多少？", &["发货要多久"], "满99元包邮。", &[]));
    faq.push(entry("password_zh", "zh", "忘记密码怎么办？", &["重置密码"], "在登录页面点击“忘记密码”。", &[]));
    faq
}

#[test]
fn hybrid_chinese_out_of_scope_gets_no_answer() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_chinese_out_of_scope_gets_no_answer") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&bilingual_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    for query in ["今天天气怎么样", "给我讲个笑话", "生命的意义是什么", "唱首歌给我听"] {
        assert_eq!(source(&knowledge, query, "zh")?, None, "query {query:?}");
    }
    assert_eq!(source(&knowledge, "我想取消订单", "zh")?.as_deref(), Some("faq:cancel_zh"));
    Ok(())
}

#[test]
fn unknown_script_gets_no_embedding_vote() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("unknown_script_gets_no_embedding_vote") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&bilingual_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    let hits = knowledge.rank("今天天气怎么样", None, 10)?;
    assert!(hits.iter().all(|hit| hit.similarity.is_none()), "hits {hits:?}");
    let hits = knowledge.rank(PARAPHRASE, None, 10)?;
    assert!(hits.iter().any(|hit| hit.similarity.is_some()), "hits {hits:?}");

    let embeddings_only = HybridKnowledge::in_memory(&bilingual_faq(), &[], Some(&batcher), &config(false, true))?;
    assert_eq!(source(&embeddings_only, "今天天气怎么样", "zh")?, None);
    Ok(())
}

#[test]
fn hybrid_unrelated_english_gets_no_answer_from_bilingual_faq() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_unrelated_english_gets_no_answer_from_bilingual_faq") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&bilingual_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    for query in ["what is the meaning of life", "sing me a song", "how tall is mount everest"] {
        assert_eq!(source(&knowledge, query, "en")?, None, "query {query:?}");
    }
    assert_eq!(source(&knowledge, PARAPHRASE, "en")?.as_deref(), Some("faq:refund"));
    Ok(())
}

#[test]
fn hybrid_finds_article_chunk() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_finds_article_chunk") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&[], &help_articles(), Some(&batcher), &HybridConfig::default())?;
    let answer = source(&knowledge, "my parcel arrived broken", "en")?;
    assert_eq!(answer.as_deref(), Some("help/returns.md#damaged-items"));
    Ok(())
}

#[test]
fn switched_off_sides_leave_their_signal_out() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("switched_off_sides_leave_their_signal_out") else {
        return Ok(());
    };
    let faq = support_faq();
    let english = Lang::new("en");

    let bm25_only = HybridKnowledge::in_memory(&faq, &[], Some(&batcher), &config(true, false))?;
    let hits = bm25_only.rank("refund policy", Some(&english), 5)?;
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|hit| hit.similarity.is_none()));

    let embeddings_only = HybridKnowledge::in_memory(&faq, &[], Some(&batcher), &config(false, true))?;
    let hits = embeddings_only.rank("refund policy", Some(&english), 5)?;
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|hit| hit.relevance.is_none()));
    Ok(())
}

#[test]
fn hybrid_score_reaches_min_score() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_score_reaches_min_score") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    let answer = knowledge.search(PARAPHRASE, &Lang::new("en"), MIN_SCORE)?.map(|answer| answer.score);
    assert!(answer.is_some_and(|score| (MIN_SCORE..=1.0).contains(&score)), "score {answer:?}");
    Ok(())
}

#[test]
fn hybrid_query_syntax_is_plain_text() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("hybrid_query_syntax_is_plain_text") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&shop_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    let long_text = "refund ".repeat(15_000);
    for query in ["a:(^", "title:returns AND NOT shipping", "\"unclosed phrase", "", "   ", "😀", long_text.as_str()]
    {
        let result = knowledge.search(query, &Lang::new("en"), MIN_SCORE);
        assert!(result.is_ok(), "query {:?} failed: {:?}", truncate(query), result.err());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_async_matches_search() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("search_async_matches_search") else {
        return Ok(());
    };
    let knowledge = HybridKnowledge::in_memory(&support_faq(), &[], Some(&batcher), &HybridConfig::default())?;
    let english = Lang::new("en");
    let asynchronous = knowledge.search_async(PARAPHRASE, &english, MIN_SCORE).await?;
    let blocking = tokio::task::block_in_place(|| knowledge.search(PARAPHRASE, &english, MIN_SCORE))?;
    assert_eq!(asynchronous, blocking);
    Ok(())
}

fn vector_files(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("embeddings-") {
            names.push(name);
        }
    }
    Ok(names)
}

#[test]
fn open_or_build_reuses_stored_vectors() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("open_or_build_reuses_stored_vectors") else {
        return Ok(());
    };
    let dir = TempDir::new("hybrid-reuse")?;
    let kb = dir.path().join("kb");
    let faq = support_faq();
    let config = HybridConfig::default();

    let (_, built) = HybridKnowledge::open_or_build(&kb, &faq, &[], Some(&batcher), &config)?;
    assert!(built);
    let (reopened, rebuilt) = HybridKnowledge::open_or_build(&kb, &faq, &[], Some(&batcher), &config)?;
    assert!(!rebuilt);
    assert_eq!(source(&reopened, PARAPHRASE, "en")?.as_deref(), Some("faq:refund"));
    assert_eq!(vector_files(&kb)?.len(), 1);
    Ok(())
}

#[test]
fn open_or_build_embeds_again_when_sources_change() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("open_or_build_embeds_again_when_sources_change") else {
        return Ok(());
    };
    let dir = TempDir::new("hybrid-change")?;
    let kb = dir.path().join("kb");
    let mut faq = support_faq();
    let config = HybridConfig::default();
    HybridKnowledge::open_or_build(&kb, &faq, &[], Some(&batcher), &config)?;
    let before = vector_files(&kb)?;

    faq[0].variants.push("Can I have my money returned?".to_owned());
    let (_, rebuilt) = HybridKnowledge::open_or_build(&kb, &faq, &[], Some(&batcher), &config)?;
    assert!(rebuilt);
    let after = vector_files(&kb)?;
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
    Ok(())
}

#[test]
fn open_or_build_with_vectors_removed_embeds_again() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("open_or_build_with_vectors_removed_embeds_again") else {
        return Ok(());
    };
    let dir = TempDir::new("hybrid-removed")?;
    let kb = dir.path().join("kb");
    let faq = support_faq();
    let config = HybridConfig::default();
    HybridKnowledge::open_or_build(&kb, &faq, &[], Some(&batcher), &config)?;
    for name in vector_files(&kb)? {
        std::fs::remove_file(kb.join(name))?;
    }

    let (_, rebuilt) = HybridKnowledge::open_or_build(&kb, &faq, &[], Some(&batcher), &config)?;
    assert!(rebuilt);
    assert_eq!(vector_files(&kb)?.len(), 1);
    Ok(())
}

/// Queries whose answers the plain index and a hybrid without a batcher must agree on.
const AGREEMENT_QUERIES: [(&str, &str); 8] = [
    ("how do I return an item", "en"),
    ("Tracking packages", "en"),
    ("我想退款", "zh"),
    ("请问运费是多少", "zh"),
    ("我的order在哪", "zh"),
    ("what is the weather", "en"),
    ("a:(^", "en"),
    ("", "en"),
];

#[test]
fn without_batcher_answers_like_knowledge_index() -> anyhow::Result<()> {
    let faq = shop_faq();
    let articles = help_articles();
    let index = KnowledgeIndex::in_memory(&faq, &articles)?;
    let hybrid = HybridKnowledge::in_memory(&faq, &articles, None, &HybridConfig::default())?;
    assert!(!hybrid.uses_embeddings());

    for (query, lang) in AGREEMENT_QUERIES {
        let lang = Lang::new(lang);
        let expected = index.search(query, &lang, MIN_SCORE)?;
        assert_eq!(hybrid.search(query, &lang, MIN_SCORE)?, expected, "query {query:?}");
    }
    Ok(())
}

#[test]
fn without_batcher_open_or_build_writes_no_vectors() -> anyhow::Result<()> {
    let dir = TempDir::new("hybrid-no-batcher")?;
    let kb = dir.path().join("kb");
    let (_, built) = HybridKnowledge::open_or_build(&kb, &shop_faq(), &[], None, &HybridConfig::default())?;
    assert!(built);
    assert!(vector_files(&kb)?.is_empty());
    let (_, rebuilt) = HybridKnowledge::open_or_build(&kb, &shop_faq(), &[], None, &HybridConfig::default())?;
    assert!(!rebuilt);
    Ok(())
}

#[test]
fn embeddings_off_answers_like_knowledge_index() -> anyhow::Result<()> {
    let Some(batcher) = batcher_or_skip("embeddings_off_answers_like_knowledge_index") else {
        return Ok(());
    };
    let faq = shop_faq();
    let index = KnowledgeIndex::in_memory(&faq, &[])?;
    let hybrid = HybridKnowledge::in_memory(&faq, &[], Some(&batcher), &config(true, false))?;
    assert!(!hybrid.uses_embeddings());

    for (query, lang) in AGREEMENT_QUERIES {
        let lang = Lang::new(lang);
        let expected = index.search(query, &lang, MIN_SCORE)?;
        assert_eq!(hybrid.search(query, &lang, MIN_SCORE)?, expected, "query {query:?}");
    }
    Ok(())
}

#[test]
fn hybrid_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HybridKnowledge>();
}
