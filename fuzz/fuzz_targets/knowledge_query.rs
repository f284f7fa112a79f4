//! The knowledge query builder: a customer's text analysed (jieba, stemming,
//! bigrams) into a tantivy query and scored against the demo bot's FAQ and
//! articles, in each language and in none; and the same text split into
//! sections as a Markdown article.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use bot_core::{Article, KnowledgeSearch, Lang};
use lepton_knowledge::{split_sections, KnowledgeIndex};
use libfuzzer_sys::fuzz_target;

/// The demo bot's index, built once per process.
fn index() -> &'static KnowledgeIndex {
    static INDEX: OnceLock<KnowledgeIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo");
        let loaded = lepton_flows::load_bot(&demo).expect("the demo bot loads");
        KnowledgeIndex::in_memory(&loaded.bot.faq, &loaded.bot.articles).expect("the demo index builds")
    })
}

fn check_relevance(relevance: f32, query: &str) {
    assert!((0.0..=1.0).contains(&relevance), "relevance {relevance} outside [0, 1] for {query:?}");
}

fuzz_target!(|data: &[u8]| {
    let index = index();
    let query = String::from_utf8_lossy(data);

    for lang in ["en", "zh", "fr"] {
        for min_score in [0.0, 0.5] {
            let answer = index.search(&query, &Lang::new(lang), min_score).expect("search fails only on index errors");
            if let Some(answer) = answer {
                check_relevance(answer.score, &query);
                assert!(answer.score >= min_score, "answer below min_score {min_score}: {}", answer.score);
            }
        }
    }
    for lang in [None, Some(Lang::new("zh"))] {
        let hits = index.rank(&query, lang.as_ref(), 5).expect("rank fails only on index errors");
        assert!(hits.len() <= 5, "rank returned {} hits for a limit of 5", hits.len());
        for hit in hits {
            check_relevance(hit.relevance, &query);
        }
    }

    let article = Article { path: "articles/fuzz.md".to_owned(), lang: Lang::new("en"), markdown: query.into_owned() };
    let _ = split_sections(&article);
});
