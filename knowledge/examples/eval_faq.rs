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
//! With `--model DIR` (a sentence-encoder folder) the example also ranks with
//! [`HybridKnowledge`]: BM25 alone, embeddings alone and both fused, on the same
//! answers-only protocol. For each `min_similarity` (a threshold on the lift
//! of the similarity above the query's median, see `HybridHit::lift`), with
//! `min_score` fixed at 0.5, it prints the share of questions answered, the share of answers that
//! are right and the share of unrelated queries answered. A last column gives
//! the share of unrelated queries answered by an index of the full entries,
//! because unrelated questions resemble question vectors more than answers.
//!
//! ```text
//! cargo run --release -p lepton-knowledge --example eval_faq -- [DATA_DIR] \
//!     [--model DIR] [--query-prefix TEXT] [--passage-prefix TEXT]
//! ```
//!
//! DATA_DIR contains `zaragoza-faq/faq-en.json` and, optionally,
//! `clinc150/data_full.json`; the default is the `shared/data` folder next to
//! the workspace. Without the FAQ file the example prints a note and exits 0.
//! The prefixes are those of e5 models (`"query: "`, `"passage: "`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bot_core::{Article, FaqEntry, KnowledgeSearch, Lang};
use lepton_encoder::{Batcher, Encoder, EncoderConfig};
use lepton_knowledge::{HybridConfig, HybridHit, HybridKnowledge, KnowledgeHit, KnowledgeIndex};
use serde::Deserialize;

const THRESHOLDS: [f32; 7] = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

const SIMILARITY_THRESHOLDS: [f32; 12] = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85];

/// `min_score` of the hybrid threshold rows: the default of `settings.knowledge.min_score`.
const HYBRID_MIN_SCORE: f32 = 0.5;

/// Command-line arguments.
struct Args {
    data_dir: PathBuf,
    model: Option<PathBuf>,
    query_prefix: String,
    passage_prefix: String,
}

impl Args {
    fn parse() -> anyhow::Result<Args> {
        let mut args = Args {
            data_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")),
            model: None,
            query_prefix: String::new(),
            passage_prefix: String::new(),
        };
        let mut iter = std::env::args().skip(1);
        while let Some(arg) = iter.next() {
            let mut value = || iter.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--model" => args.model = Some(PathBuf::from(value()?)),
                "--query-prefix" => args.query_prefix = value()?,
                "--passage-prefix" => args.passage_prefix = value()?,
                other if other.starts_with("--") => anyhow::bail!("unknown option {other}"),
                other => args.data_dir = PathBuf::from(other),
            }
        }
        Ok(args)
    }
}

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
    let args = Args::parse()?;
    let data_dir = args.data_dir.clone();
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
    if let Some(model) = &args.model {
        evaluate_hybrid(&rows, &out_of_scope, model, &args)?;
    }
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

/// Returns each answer as a heading-less article whose source is its id.
fn answer_articles(rows: &[FaqRow]) -> Vec<Article> {
    let english = Lang::new("en");
    rows.iter().map(|row| Article { path: row.id.clone(), lang: english.clone(), markdown: row.a.clone() }).collect()
}

/// Returns every pair as a FAQ entry: the question and its answer.
fn full_entries(rows: &[FaqRow]) -> Vec<FaqEntry> {
    rows.iter()
        .map(|row| FaqEntry {
            id: row.id.clone(),
            lang: Lang::new("en"),
            question: row.q.clone(),
            variants: Vec::new(),
            answer: row.a.clone(),
            tags: Vec::new(),
        })
        .collect()
}

/// Indexes each answer as a heading-less article whose source is its id.
fn evaluate_answers_only(rows: &[FaqRow], out_of_scope: &[String]) -> anyhow::Result<()> {
    let english = Lang::new("en");
    let articles = answer_articles(rows);
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
    let sources: Vec<Vec<&str>> =
        ranked.iter().map(|hits| hits.iter().map(|hit| hit.source.as_str()).collect()).collect();
    print_source_quality(label, rows, &sources);
}

fn print_source_quality(label: &str, rows: &[FaqRow], ranked: &[Vec<&str>]) {
    let mut top1 = 0;
    let mut reciprocal_ranks = 0.0;
    for (row, sources) in rows.iter().zip(ranked) {
        if let Some(position) = sources.iter().take(10).position(|source| *source == row.id) {
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

/// Ranks the answers-only index with BM25 alone, embeddings alone and both,
/// then prints the `min_similarity` rows.
fn evaluate_hybrid(rows: &[FaqRow], out_of_scope: &[String], model: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let mut config = EncoderConfig::new(model);
    config.query_prefix = args.query_prefix.clone();
    config.passage_prefix = args.passage_prefix.clone();
    let started = Instant::now();
    let encoder = Encoder::load(&config).with_context(|| format!("loading the encoder from {}", model.display()))?;
    let batcher = Batcher::new(Arc::new(encoder));
    println!("\nencoder {} loaded in {:.0} ms on {}", model.display(), millis(started.elapsed()), batcher.encoder().device_name());

    let english = Lang::new("en");
    let started = Instant::now();
    let mut knowledge =
        HybridKnowledge::in_memory(&[], &answer_articles(rows), Some(&batcher), &HybridConfig::default())?;
    println!("answers-only index with vectors built in {:.1} s", started.elapsed().as_secs_f64());

    println!("\nanswers indexed without questions; each question queried ({} queries)", rows.len());
    println!("{:<34} {:>7} {:>8}", "ranking", "top-1", "MRR@10");
    let mut fused = Vec::new();
    for (label, bm25, embeddings) in
        [("BM25 alone", true, false), ("embeddings alone", false, true), ("hybrid (reciprocal rank fusion)", true, true)]
    {
        knowledge.set_config(HybridConfig { bm25, embeddings, ..HybridConfig::default() });
        let mut ranked = Vec::with_capacity(rows.len());
        for row in rows {
            ranked.push(knowledge.rank(&row.q, Some(&english), 10)?);
        }
        let sources: Vec<Vec<&str>> =
            ranked.iter().map(|hits| hits.iter().map(|hit| hit.source.as_str()).collect()).collect();
        print_source_quality(label, rows, &sources);
        if bm25 && embeddings {
            fused = ranked;
        }
    }

    let mut unrelated = Vec::with_capacity(out_of_scope.len());
    for query in out_of_scope {
        unrelated.push(knowledge.rank(query, Some(&english), 10)?);
    }
    let started = Instant::now();
    let full = HybridKnowledge::in_memory(&full_entries(rows), &[], Some(&batcher), &HybridConfig::default())?;
    let full_build = started.elapsed();
    let mut unrelated_full = Vec::with_capacity(out_of_scope.len());
    for query in out_of_scope {
        unrelated_full.push(full.rank(query, Some(&english), 10)?);
    }

    let queries: Vec<&str> =
        rows.iter().map(|row| row.q.as_str()).chain(out_of_scope.iter().map(String::as_str)).collect();
    let mut times = Vec::with_capacity(queries.len());
    for query in &queries {
        let started = Instant::now();
        full.search(query, &english, HYBRID_MIN_SCORE)?;
        times.push(started.elapsed());
    }
    println!("\nspeed of HybridKnowledge::search on full entries (query embedding included), {} queries", queries.len());
    println!("{:>8} {:>9} {:>9} {:>9} {:>9} {:>9}", "entries", "build ms", "mean us", "p50 us", "p95 us", "max us");
    print_timing(rows.len(), full_build, &mut times);

    println!("\nhybrid answer rule with min_score {HYBRID_MIN_SCORE}");
    println!("{:>14} {:>9} {:>9} {:>12} {:>17}", "min_similarity", "answered", "correct", "oos answered", "oos, full entries");
    for threshold in SIMILARITY_THRESHOLDS {
        print_similarity_row(threshold, rows, &fused, &unrelated, &unrelated_full);
    }
    Ok(())
}

/// Picks the answer the way `HybridKnowledge` does: the first hit in fused
/// order whose relevance or lift reaches its threshold.
fn first_qualifying_hybrid(hits: &[HybridHit], min_similarity: f32) -> Option<&HybridHit> {
    hits.iter().find(|hit| hit.qualifies(HYBRID_MIN_SCORE, min_similarity))
}

fn print_similarity_row(
    threshold: f32,
    rows: &[FaqRow],
    ranked: &[Vec<HybridHit>],
    unrelated: &[Vec<HybridHit>],
    unrelated_full: &[Vec<HybridHit>],
) {
    let mut answered = 0;
    let mut correct = 0;
    for (row, hits) in rows.iter().zip(ranked) {
        if let Some(best) = first_qualifying_hybrid(hits, threshold) {
            answered += 1;
            correct += usize::from(best.source == row.id);
        }
    }
    let wrongly = |lists: &[Vec<HybridHit>]| {
        if lists.is_empty() {
            return "-".to_owned();
        }
        let count = lists.iter().filter(|hits| first_qualifying_hybrid(hits, threshold).is_some()).count();
        percent(count, lists.len())
    };

    let precision = if answered == 0 { 0.0 } else { 100.0 * correct as f64 / answered as f64 };
    println!(
        "{:>14.2} {:>9} {:>8.1}% {:>12} {:>17}",
        threshold,
        percent(answered, rows.len()),
        precision,
        wrongly(unrelated),
        wrongly(unrelated_full)
    );
}

/// Times `search` over every question and out-of-scope query on full FAQ entries.
fn measure_speed(rows: &[FaqRow], out_of_scope: &[String]) -> anyhow::Result<()> {
    let english = Lang::new("en");
    let entries = full_entries(rows);
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
