//! Integration tests of the knowledge index: retrieval in English, Chinese and
//! mixed text, plain-text queries, the relevance threshold, article sections and
//! rebuilding on disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use bot_core::{Article, FaqEntry, KnowledgeSearch, Lang};
use lepton_knowledge::{KnowledgeBuildError, KnowledgeIndex};

mod hybrid;

const MIN_SCORE: f32 = 0.5;

fn entry(id: &str, lang: &str, question: &str, variants: &[&str], answer: &str, tags: &[&str]) -> FaqEntry {
    FaqEntry {
        id: id.to_owned(),
        lang: Lang::new(lang),
        question: question.to_owned(),
        variants: variants.iter().map(|text| (*text).to_owned()).collect(),
        answer: answer.to_owned(),
        tags: tags.iter().map(|text| (*text).to_owned()).collect(),
    }
}

fn shop_faq() -> Vec<FaqEntry> {
    vec![
        entry(
            "returns",
            "en",
            "Returns",
            &["What is your return policy?", "Can I send something back?"],
            "You can return any unused item within 30 days for a full refund.",
            &["returns"],
        ),
        entry(
            "shipping_time",
            "en",
            "How long does shipping take?",
            &["When will my parcel arrive?", "delivery time"],
            "Standard shipping takes 3-5 working days.",
            &["shipping"],
        ),
        entry(
            "order_status",
            "en",
            "Where is my order?",
            &["track my package"],
            "Open the link in your confirmation email to follow your order.",
            &["order", "tracking"],
        ),
        entry(
            "payment",
            "en",
            "Which payment methods do you accept?",
            &[],
            "We accept Visa, Mastercard, PayPal and Alipay.",
            &[],
        ),
        entry(
            "refund_zh",
            "zh",
            "如何申请退款？",
            &["退款多久到账"],
            "在订单页面点击“申请退款”，款项会在3-5个工作日内退回。",
            &["退款"],
        ),
        entry(
            "order_zh",
            "zh",
            "我的订单到哪了？",
            &["查询物流"],
            "请在“我的订单”中查看物流信息。",
            &["订单", "order"],
        ),
        entry("shipping_fee_zh", "zh", "运费怎么算？", &[], "订单满99元包邮，否则运费10元。", &["运费"]),
        entry("hours_zh", "zh", "客服工作时间", &[], "客服每天9点到21点在线。", &[]),
    ]
}

fn help_articles() -> Vec<Article> {
    vec![
        Article {
            path: "help/returns.md".to_owned(),
            lang: Lang::new("en"),
            markdown: "# Returns\n\nHow returns work.\n\n## Damaged items\n\nIf your parcel arrived damaged, send us a \
                       photo and we replace it for free.\n\n## Refund times\n\nRefunds reach your card within 5 working days.\n"
                .to_owned(),
        },
        Article {
            path: "help/returns.zh.md".to_owned(),
            lang: Lang::new("zh"),
            markdown: "# 退货\n\n## 退货流程\n\n在订单页面选择商品，填写退货原因并寄回。\n\n## 退款时间\n\n退款在5个工作日内原路退回。\n"
                .to_owned(),
        },
    ]
}

fn shop_index() -> anyhow::Result<KnowledgeIndex> {
    Ok(KnowledgeIndex::in_memory(&shop_faq(), &[])?)
}

/// Returns the source of the answer to `query`, or `None` when there is none.
fn source(index: &KnowledgeIndex, query: &str, lang: &str) -> anyhow::Result<Option<String>> {
    let answer = index.search(query, &Lang::new(lang), MIN_SCORE)?;
    Ok(answer.map(|answer| answer.source))
}

#[test]
fn english_paraphrase_finds_returns_entry() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "how do I return an item", "en")?.as_deref(), Some("faq:returns"));
    Ok(())
}

#[test]
fn english_inflected_words_match_stems() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "Tracking packages", "en")?.as_deref(), Some("faq:order_status"));
    Ok(())
}

#[test]
fn chinese_paraphrase_finds_refund_entry() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "我想退款", "zh")?.as_deref(), Some("faq:refund_zh"));
    Ok(())
}

#[test]
fn chinese_question_without_spaces_finds_entry() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "请问运费是多少", "zh")?.as_deref(), Some("faq:shipping_fee_zh"));
    Ok(())
}

#[test]
fn mixed_chinese_english_finds_chinese_entry() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "我的order在哪", "zh")?.as_deref(), Some("faq:order_zh"));
    Ok(())
}

#[test]
fn query_language_preferred_when_both_match() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "order", "en")?.as_deref(), Some("faq:order_status"));
    assert_eq!(source(&index, "order", "zh")?.as_deref(), Some("faq:order_zh"));
    Ok(())
}

#[test]
fn other_language_used_when_query_language_lacks_match() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "PayPal", "zh")?.as_deref(), Some("faq:payment"));
    assert_eq!(source(&index, "退款", "en")?.as_deref(), Some("faq:refund_zh"));
    Ok(())
}

#[test]
fn language_codes_compared_case_insensitively() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "运费", "ZH")?.as_deref(), Some("faq:shipping_fee_zh"));
    Ok(())
}

#[test]
fn query_syntax_characters_are_plain_text() -> anyhow::Result<()> {
    let index = shop_index()?;
    let long_text = "refund ".repeat(15_000);
    let queries = [
        "refund (partial)?",
        "-1",
        "https://shop.example.com/orders?id=42&x=\"1\"#top",
        "a:(^",
        "title:returns AND NOT shipping",
        "\"unclosed phrase",
        "* ? ~2 [1 TO 5} {}",
        "\\",
        "",
        "   ",
        "😀🎉👍",
        long_text.as_str(),
    ];

    for query in queries {
        let result = index.search(query, &Lang::new("en"), MIN_SCORE);
        assert!(result.is_ok(), "query {:?} failed: {:?}", truncate(query), result.err());
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[test]
fn query_with_parentheses_finds_refund_text() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "refund (30 days)?", "en")?.as_deref(), Some("faq:returns"));
    Ok(())
}

#[test]
fn empty_and_emoji_queries_get_no_answer() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "", "en")?, None);
    assert_eq!(source(&index, "😀🎉👍", "en")?, None);
    Ok(())
}

#[test]
fn long_query_is_answered() -> anyhow::Result<()> {
    let index = shop_index()?;
    let long_text = "where is my order ".repeat(6_000);
    assert_eq!(source(&index, &long_text, "en")?.as_deref(), Some("faq:order_status"));
    Ok(())
}

#[test]
fn unrelated_query_gets_no_answer() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "quantum chromodynamics lecture notes", "en")?, None);
    assert_eq!(source(&index, "天气预报明天下雨", "zh")?, None);
    Ok(())
}

#[test]
fn stop_words_only_query_gets_no_answer() -> anyhow::Result<()> {
    let index = shop_index()?;
    assert_eq!(source(&index, "how are you?", "en")?, None);
    assert_eq!(source(&index, "你好吗", "zh")?, None);
    Ok(())
}

#[test]
fn answer_below_min_score_is_none() -> anyhow::Result<()> {
    let index = shop_index()?;
    let en = Lang::new("en");
    let query = "return policy for garden furniture";

    let answer = index.search(query, &en, 0.0)?.context("expected an answer at min_score 0")?;
    assert_eq!(answer.source, "faq:returns");
    assert!(answer.score > 0.0, "partial match scored {}", answer.score);
    assert!(answer.score < 1.0, "partial match scored {}", answer.score);
    assert!(index.search(query, &en, answer.score)?.is_some());
    assert_eq!(index.search(query, &en, answer.score + 0.01)?, None);
    Ok(())
}

#[test]
fn score_is_one_when_every_word_matches() -> anyhow::Result<()> {
    let index = shop_index()?;
    let answer = index.search("What is your return policy?", &Lang::new("en"), MIN_SCORE)?.context("no answer")?;
    assert_eq!(answer.score, 1.0);
    Ok(())
}

#[test]
fn faq_answer_and_source_returned() -> anyhow::Result<()> {
    let index = shop_index()?;
    let answer = index.search("delivery time", &Lang::new("en"), MIN_SCORE)?.context("no answer")?;
    assert_eq!(answer.source, "faq:shipping_time");
    assert_eq!(answer.answer, "Standard shipping takes 3-5 working days.");
    Ok(())
}

#[test]
fn article_section_found_with_source() -> anyhow::Result<()> {
    let index = KnowledgeIndex::in_memory(&[], &help_articles())?;
    let answer = index.search("my parcel arrived damaged", &Lang::new("en"), MIN_SCORE)?.context("no answer")?;
    assert_eq!(answer.source, "help/returns.md#damaged-items");
    assert_eq!(answer.answer, "If your parcel arrived damaged, send us a photo and we replace it for free.");
    Ok(())
}

#[test]
fn article_heading_words_match_section() -> anyhow::Result<()> {
    let index = KnowledgeIndex::in_memory(&[], &help_articles())?;
    assert_eq!(source(&index, "refund times", "en")?.as_deref(), Some("help/returns.md#refund-times"));
    Ok(())
}

#[test]
fn chinese_article_section_found_with_source() -> anyhow::Result<()> {
    let index = KnowledgeIndex::in_memory(&[], &help_articles())?;
    assert_eq!(source(&index, "退款多久能到", "zh")?.as_deref(), Some("help/returns.zh.md#退款时间"));
    Ok(())
}

#[test]
fn document_count_includes_sections() -> anyhow::Result<()> {
    let index = KnowledgeIndex::in_memory(&shop_faq(), &help_articles())?;
    // 8 FAQ entries, 3 English sections (intro, damaged items, refund times) and
    // 2 Chinese ones: the top heading `退货` has no text of its own.
    assert_eq!(index.document_count(), 13);
    Ok(())
}

#[test]
fn rank_orders_hits_and_reports_relevance() -> anyhow::Result<()> {
    let index = shop_index()?;
    let hits = index.rank("shipping", Some(&Lang::new("en")), 5)?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].source, "faq:shipping_time");
    assert_eq!(hits[0].relevance, 1.0);
    Ok(())
}

#[test]
fn duplicate_faq_id_rejected() {
    let mut faq = shop_faq();
    faq.push(faq[0].clone());
    let result = KnowledgeIndex::in_memory(&faq, &[]);
    assert!(matches!(result, Err(KnowledgeBuildError::DuplicateFaqId { ref id }) if id == "returns"));
}

#[test]
fn empty_faq_answer_rejected() {
    let faq = vec![entry("blank", "en", "Anything?", &[], "  ", &[])];
    let result = KnowledgeIndex::in_memory(&faq, &[]);
    assert!(matches!(result, Err(KnowledgeBuildError::EmptyFaqField { field: "answer", .. })));
}

#[test]
fn duplicate_article_path_rejected() {
    let mut articles = help_articles();
    articles.push(articles[0].clone());
    let result = KnowledgeIndex::in_memory(&[], &articles);
    assert!(matches!(result, Err(KnowledgeBuildError::DuplicateArticlePath { .. })));
}

#[test]
fn index_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KnowledgeIndex>();
}

/// A folder under the system temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique =
            format!("lepton-knowledge-{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn index_folders(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("index-") {
            names.push(name);
        }
    }
    Ok(names)
}

#[test]
fn open_or_build_builds_when_missing() -> anyhow::Result<()> {
    let dir = TempDir::new("missing")?;
    let (_, rebuilt) = KnowledgeIndex::open_or_build(&dir.path().join("kb"), &shop_faq(), &[])?;
    assert!(rebuilt);
    Ok(())
}

#[test]
fn open_or_build_reuses_unchanged_index() -> anyhow::Result<()> {
    let dir = TempDir::new("unchanged")?;
    KnowledgeIndex::open_or_build(dir.path(), &shop_faq(), &help_articles())?;

    let (index, rebuilt) = KnowledgeIndex::open_or_build(dir.path(), &shop_faq(), &help_articles())?;
    assert!(!rebuilt);
    assert_eq!(source(&index, "我想退款", "zh")?.as_deref(), Some("faq:refund_zh"));
    Ok(())
}

#[test]
fn open_or_build_rebuilds_when_sources_change() -> anyhow::Result<()> {
    let dir = TempDir::new("changed")?;
    let mut faq = shop_faq();
    KnowledgeIndex::open_or_build(dir.path(), &faq, &[])?;

    faq[1].answer = "Standard shipping takes 2 working days.".to_owned();
    let (index, rebuilt) = KnowledgeIndex::open_or_build(dir.path(), &faq, &[])?;
    assert!(rebuilt);
    let answer = index.search("delivery time", &Lang::new("en"), MIN_SCORE)?.context("no answer")?;
    assert_eq!(answer.answer, "Standard shipping takes 2 working days.");

    let (_, rebuilt_again) = KnowledgeIndex::open_or_build(dir.path(), &faq, &[])?;
    assert!(!rebuilt_again);
    Ok(())
}

#[test]
fn open_or_build_rebuilds_when_article_changes() -> anyhow::Result<()> {
    let dir = TempDir::new("article")?;
    let mut articles = help_articles();
    KnowledgeIndex::open_or_build(dir.path(), &[], &articles)?;

    articles[0].markdown.push_str("\n## Exchanges\n\nWe exchange sizes for free.\n");
    let (index, rebuilt) = KnowledgeIndex::open_or_build(dir.path(), &[], &articles)?;
    assert!(rebuilt);
    assert_eq!(source(&index, "exchange size", "en")?.as_deref(), Some("help/returns.md#exchanges"));
    Ok(())
}

#[test]
fn rebuild_removes_old_index_and_keeps_other_files() -> anyhow::Result<()> {
    let dir = TempDir::new("cleanup")?;
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me")?;
    let mut faq = shop_faq();
    KnowledgeIndex::open_or_build(dir.path(), &faq, &[])?;

    faq.pop();
    KnowledgeIndex::open_or_build(dir.path(), &faq, &[])?;
    assert_eq!(index_folders(dir.path())?.len(), 1);
    assert_eq!(std::fs::read_to_string(&notes)?, "keep me");
    Ok(())
}

#[test]
fn open_or_build_rebuilds_after_corrupt_metadata() -> anyhow::Result<()> {
    let dir = TempDir::new("corrupt")?;
    KnowledgeIndex::open_or_build(dir.path(), &shop_faq(), &[])?;
    std::fs::write(dir.path().join("lepton-knowledge.json"), "{ not json")?;

    let (index, rebuilt) = KnowledgeIndex::open_or_build(dir.path(), &shop_faq(), &[])?;
    assert!(rebuilt);
    assert_eq!(source(&index, "我想退款", "zh")?.as_deref(), Some("faq:refund_zh"));
    Ok(())
}

#[test]
fn open_or_build_rebuilds_after_deleted_index_files() -> anyhow::Result<()> {
    let dir = TempDir::new("deleted")?;
    KnowledgeIndex::open_or_build(dir.path(), &shop_faq(), &[])?;
    for name in index_folders(dir.path())? {
        std::fs::remove_dir_all(dir.path().join(name))?;
    }

    let (_, rebuilt) = KnowledgeIndex::open_or_build(dir.path(), &shop_faq(), &[])?;
    assert!(rebuilt);
    Ok(())
}

#[test]
fn build_into_file_path_fails_with_path() -> anyhow::Result<()> {
    let dir = TempDir::new("file")?;
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x")?;

    let error = KnowledgeIndex::build(&file, &shop_faq(), &[]).err().context("build into a file succeeded")?;
    assert!(error.to_string().contains("not-a-folder"), "message: {error}");
    Ok(())
}

/// Overwrites every file of `extension` under `folder` in place, keeping its
/// size, as a disk error or a stray write would: the mapped pages change too.
fn scramble_files(folder: &Path, extension: &str) -> anyhow::Result<usize> {
    use std::io::Write;

    let mut scrambled = 0;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.extension().and_then(|ext| ext.to_str()) != Some(extension) {
            continue;
        }
        let length = std::fs::metadata(&path)?.len() as usize;
        let noise: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::OpenOptions::new().write(true).open(&path)?.write_all(&noise)?;
        scrambled += 1;
    }
    Ok(scrambled)
}

#[test]
fn damaged_index_fails_searches_without_panicking() -> anyhow::Result<()> {
    let dir = TempDir::new("damaged")?;
    let index = KnowledgeIndex::build(dir.path(), &shop_faq(), &[])?;
    let lang = Lang::new("en");
    assert!(index.search("refund", &lang, 0.0)?.is_some(), "the intact index found nothing");
    let folder = dir.path().join(index_folders(dir.path())?.pop().context("no index folder")?);
    assert!(scramble_files(&folder, "term")? > 0, "no term dictionary to damage");

    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| index.search("refund", &lang, 0.0)));
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| index.search("delivery", &lang, 0.0)));

    let first = first.map_err(|_| anyhow::anyhow!("a search of the damaged index panicked"))?;
    let error = first.err().context("a search of the damaged index succeeded")?;
    assert!(error.to_string().contains("damaged"), "message: {error}");
    let second = second.map_err(|_| anyhow::anyhow!("the second search panicked"))?;
    assert!(second.is_err(), "the second search of the damaged index succeeded");
    Ok(())
}
