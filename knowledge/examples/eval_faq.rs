//! Measures retrieval quality and speed on the English Zaragoza construction FAQ
//! (503 question/answer pairs, CC BY 4.0, PyPI package
//! zaragoza-construction-faq 1.2.1), with CLINC150's out-of-scope test
//! queries (CC BY 3.0) as questions the FAQ cannot answer.
//!
//! Protocol: each answer is indexed alone, without its question, and every
//! question is a query that must find its own answer. The question text never
//! enters the index, so a hit has to come from words the question shares with
//! the answer. The figures are top-1 accuracy and MRR@10, where a question whose
//! answer is not among the first 10 hits counts as reciprocal rank 0. For each
//! `min_score` the example also prints the share of questions that get an
//! answer, the share of those answers that are right, and the share of the 1,000
//! unrelated CLINC150 queries that wrongly get one. Speed is measured with
//! `KnowledgeSearch::search` on an index of the full entries (question and
//! answer) and on one of the first 50 entries.
//!
//! ```text
//! cargo run --release -p lepton-knowledge --example eval_faq [DATA_DIR]
//! ```
//!
//! DATA_DIR contains `zaragoza-faq/faq-en.json` and, optionally,
//! `clinc150/data_full.json`; the default is the `shared/data` folder next to
//! the workspace. Without the FAQ file the example prints a note and exits 0.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bot_core::{Article, FaqEntry, KnowledgeSearch, Lang};
use lepton_knowledge::{KnowledgeHit, KnowledgeIndex};
use serde::Deserialize;

const THRESHOLDS: [f32; 7] = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

#[derive(Deserialize)]
struct FaqFile {
    questions: Vec<FaqRow>,
}

#[derive(Deserialize)]
struct FaqRow {
    id: String,
    q: String,
    a: String,
}

fn main() -> anyhow::Result<()> {
    let data_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")));
    let faq_path = data_dir.join("zaragoza-faq/faq-en.json");
    if !faq_path.is_file() {
        println!("skipped: {} not found; pass the data folder as the first argument", faq_path.display());
        return Ok(());
    }

    let text = std::fs::read_to_string(&faq_path).with_context(|| format!("reading {}", faq_path.display()))?;
    let rows =
        serde_json::from_str::<FaqFile>(&text).with_context(|| format!("parsing {}", faq_path.display()))?.questions;
    let out_of_scope = read_out_of_scope(&data_dir)?;
    println!("data: {} FAQ pairs, {} out-of-scope queries", rows.len(), out_of_scope.len());

    measure_dictionary_load()?;
    evaluate_answers_only(&rows, &out_of_scope)?;
    measure_speed(&rows, &out_of_scope)?;
    Ok(())
}

fn read_out_of_scope(data_dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let path = data_dir.join("clinc150/data_full.json");
    if !path.is_file() {
        println!("note: {} not found; out-of-scope figures skipped", path.display());
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let data: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let rows = data["oos_test"].as_array().context("clinc150 file has no `oos_test` array")?;
    Ok(rows.iter().filter_map(|row| row[0].as_str().map(str::to_owned)).collect())
}

/// Times the first Chinese text in the process, which loads jieba's dictionary.
fn measure_dictionary_load() -> anyhow::Result<()> {
    let entry = FaqEntry {
        id: "refund".to_owned(),
        lang: Lang::new("zh"),
        question: "如何申请退款？".to_owned(),
        variants: Vec::new(),
        answer: "在订单页面申请退款。".to_owned(),
        tags: Vec::new(),
    };
    let started = Instant::now();
    KnowledgeIndex::in_memory(&[entry], &[])?;
    println!("one-entry Chinese index, including the jieba dictionary load: {:.0} ms", millis(started.elapsed()));
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Indexes each answer as a heading-less article whose source is its id.
fn evaluate_answers_only(rows: &[FaqRow], out_of_scope: &[String]) -> anyhow::Result<()> {
    let english = Lang::new("en");
    let articles: Vec<Article> = rows
        .iter()
        .map(|row| Article { path: row.id.clone(), lang: english.clone(), markdown: row.a.clone() })
        .collect();
    let index = KnowledgeIndex::in_memory(&[], &articles)?;

    let mut ranked = Vec::with_capacity(rows.len());
    for row in rows {
        ranked.push(index.rank(&row.q, Some(&english), 10)?);
    }
    let mut unrelated = Vec::with_capacity(out_of_scope.len());
    for query in out_of_scope {
        unrelated.push(index.rank(query, Some(&english), 10)?);
    }

    println!("\nanswers indexed without questions; each question queried ({} queries)", rows.len());
    println!("{:<34} {:>7} {:>8}", "ordering of the top 10", "top-1", "MRR@10");
    let by_relevance: Vec<Vec<KnowledgeHit>> = ranked.iter().map(|hits| sorted_by_relevance(hits)).collect();
    print_ranking_quality("BM25 (KnowledgeIndex::rank)", rows, &ranked);
    print_ranking_quality("relevance, then BM25", rows, &by_relevance);

    println!("\n{:>9} {:>9} {:>9} {:>11}", "min_score", "answered", "correct", "oos answered");
    for threshold in THRESHOLDS {
        print_threshold_row(threshold, rows, &ranked, &unrelated);
    }
    Ok(())
}

fn sorted_by_relevance(hits: &[KnowledgeHit]) -> Vec<KnowledgeHit> {
    let mut hits = hits.to_vec();
    hits.sort_by(|a, b| b.relevance.total_cmp(&a.relevance).then(b.bm25.total_cmp(&a.bm25)));
    hits
}

fn print_ranking_quality(label: &str, rows: &[FaqRow], ranked: &[Vec<KnowledgeHit>]) {
    let mut top1 = 0;
    let mut reciprocal_ranks = 0.0;
    for (row, hits) in rows.iter().zip(ranked) {
        if let Some(position) = hits.iter().position(|hit| hit.source == row.id) {
            reciprocal_ranks += 1.0 / (position + 1) as f64;
            top1 += usize::from(position == 0);
        }
    }
    let count = rows.len() as f64;
    println!("{:<34} {:>6.1}% {:>8.3}", label, 100.0 * top1 as f64 / count, reciprocal_ranks / count);
}

/// Picks the answer the way `KnowledgeSearch::search` does: the first hit in
/// BM25 order whose relevance reaches the threshold.
fn first_qualifying(hits: &[KnowledgeHit], threshold: f32) -> Option<&KnowledgeHit> {
    hits.iter().find(|hit| hit.relevance >= threshold)
}

/// Prints, for one `min_score`, the share of questions that get an answer, the
/// share of those answers that are right, and the share of unrelated queries
/// that get one.
fn print_threshold_row(threshold: f32, rows: &[FaqRow], ranked: &[Vec<KnowledgeHit>], unrelated: &[Vec<KnowledgeHit>]) {
    let mut answered = 0;
    let mut correct = 0;
    for (row, hits) in rows.iter().zip(ranked) {
        if let Some(best) = first_qualifying(hits, threshold) {
            answered += 1;
            correct += usize::from(best.source == row.id);
        }
    }
    let wrongly_answered = unrelated.iter().filter(|hits| first_qualifying(hits, threshold).is_some()).count();

    let precision = if answered == 0 { 0.0 } else { 100.0 * correct as f64 / answered as f64 };
    let oos = if unrelated.is_empty() { "-".to_owned() } else { percent(wrongly_answered, unrelated.len()) };
    println!("{:>9.1} {:>9} {:>8.1}% {:>11}", threshold, percent(answered, rows.len()), precision, oos);
}

fn percent(part: usize, whole: usize) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

/// Times `search` over every question and out-of-scope query on full FAQ entries.
fn measure_speed(rows: &[FaqRow], out_of_scope: &[String]) -> anyhow::Result<()> {
    let english = Lang::new("en");
    let entries: Vec<FaqEntry> = rows
        .iter()
        .map(|row| FaqEntry {
            id: row.id.clone(),
            lang: english.clone(),
            question: row.q.clone(),
            variants: Vec::new(),
            answer: row.a.clone(),
            tags: Vec::new(),
        })
        .collect();
    let queries: Vec<&str> =
        rows.iter().map(|row| row.q.as_str()).chain(out_of_scope.iter().map(String::as_str)).collect();

    println!("\nspeed of KnowledgeSearch::search, min_score 0.5, {} queries", queries.len());
    println!("{:>8} {:>9} {:>9} {:>9} {:>9} {:>9}", "entries", "build ms", "mean us", "p50 us", "p95 us", "max us");
    for size in [50, entries.len()] {
        let started = Instant::now();
        let index = KnowledgeIndex::in_memory(&entries[..size.min(entries.len())], &[])?;
        let build = started.elapsed();

        let mut times = Vec::with_capacity(queries.len());
        for query in &queries {
            let started = Instant::now();
            index.search(query, &english, 0.5)?;
            times.push(started.elapsed());
        }
        print_timing(size, build, &mut times);
    }
    Ok(())
}

fn print_timing(size: usize, build: Duration, times: &mut [Duration]) {
    times.sort_unstable();
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    let mean = times.iter().map(|time| micros(*time)).sum::<f64>() / times.len() as f64;
    let at = |fraction: f64| micros(times[((times.len() - 1) as f64 * fraction).round() as usize]);
    println!(
        "{:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        size,
        millis(build),
        mean,
        at(0.5),
        at(0.95),
        micros(times[times.len() - 1])
    );
}
