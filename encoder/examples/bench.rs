//! Measures encoder speed: sentences per second and latency at batch 1,
//! at batch 32 and through the batcher under concurrent callers.
//!
//! Usage: cargo run --release -p lepton-encoder --example bench -- MODEL_DIR
//!        [TEXTS_FILE] [--device cpu|cuda:N] [--batches 32,128,512]
//!
//! TEXTS_FILE has one text per line; without it the CLINC150 test sentences
//! are read from ../shared/data when present, else a built-in list is used.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lepton_encoder::{Batcher, DeviceChoice, Encoder, EncoderConfig, TextKind};

const BATCH_ONE_TEXTS: usize = 1000;
const CALLERS: usize = 64;

struct Options {
    model: PathBuf,
    texts: Option<PathBuf>,
    device: DeviceChoice,
    batches: Vec<usize>,
}

fn parse_options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut device = DeviceChoice::Cpu;
    let mut batches = vec![32];
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => device = args.next().context("--device needs a value")?.parse()?,
            "--batches" => {
                let list = args.next().context("--batches needs a value")?;
                batches = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let mut positional = positional.into_iter();
    let Some(model) = positional.next() else {
        bail!("usage: bench MODEL_DIR [TEXTS_FILE] [--device cpu|cuda:N] [--batches 32,128]");
    };
    Ok(Options { model, texts: positional.next(), device, batches })
}

fn load_texts(file: Option<&Path>) -> Result<(Vec<String>, String)> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let lines = text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect();
        return Ok((lines, file.display().to_string()));
    }

    let clinc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/clinc150/data_full.json");
    if let Ok(text) = std::fs::read_to_string(&clinc) {
        let data: serde_json::Value = serde_json::from_str(&text)?;
        let test = data["test"].as_array().context("data_full.json has no test list")?;
        let texts = test.iter().filter_map(|pair| pair[0].as_str()).map(str::to_owned).collect();
        return Ok((texts, "CLINC150 test".to_owned()));
    }

    let builtin = [
        "how do I reset my password",
        "I want a refund for my last order",
        "where is my parcel",
        "can I change the delivery address after ordering",
        "my card was charged twice for the same purchase",
        "talk to a human please",
        "what are your opening hours on weekends",
        "the app keeps crashing when I open my account page",
        "我想退款",
        "我的订单什么时候发货？",
    ];
    let texts = (0..500).map(|i| builtin[i % builtin.len()].to_owned()).collect();
    Ok((texts, "built-in list".to_owned()))
}

/// The `q`-quantile of sorted `latencies`, in milliseconds.
fn quantile_ms(latencies: &[Duration], q: f64) -> f64 {
    let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
    latencies[index].as_secs_f64() * 1000.0
}

fn report(name: &str, texts: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    let rate = texts as f64 / elapsed.as_secs_f64();
    if latencies.is_empty() {
        println!("{name:<28} {rate:>9.1} sentences/s   ({texts} texts in {:.2} s)", elapsed.as_secs_f64());
        return;
    }
    latencies.sort();
    println!(
        "{name:<28} {rate:>9.1} sentences/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({texts} texts)",
        quantile_ms(&latencies, 0.5),
        quantile_ms(&latencies, 0.99),
    );
}

fn bench_batch_one(encoder: &Encoder, texts: &[&str]) -> Result<()> {
    let texts = &texts[..texts.len().min(BATCH_ONE_TEXTS)];
    let mut latencies = Vec::with_capacity(texts.len());
    let started = Instant::now();
    for text in texts {
        let call = Instant::now();
        encoder.embed(&[text], TextKind::Query)?;
        latencies.push(call.elapsed());
    }
    report("batch 1 (sequential)", texts.len(), started.elapsed(), latencies);
    Ok(())
}

fn bench_batched(config: &EncoderConfig, texts: &[&str], max_batch: usize) -> Result<()> {
    let mut config = config.clone();
    config.max_batch = max_batch;
    let encoder = Encoder::load(&config)?;
    encoder.embed(&texts[..texts.len().min(max_batch)], TextKind::Query)?;

    let started = Instant::now();
    encoder.embed(texts, TextKind::Query)?;
    report(&format!("batch {max_batch} (whole list)"), texts.len(), started.elapsed(), Vec::new());
    Ok(())
}

fn bench_concurrent(encoder: Arc<Encoder>, texts: &[&str]) -> Result<()> {
    let batcher = Batcher::new(encoder);
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let batcher = batcher.clone();
                scope.spawn(move || -> Result<Vec<Duration>> {
                    let mut latencies = Vec::new();
                    for text in texts.iter().skip(caller).step_by(CALLERS) {
                        let call = Instant::now();
                        batcher.embed_blocking(text, TextKind::Query)?;
                        latencies.push(call.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().expect("caller thread panicked")?);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let elapsed = started.elapsed();
    let stats = batcher.stats();
    report(&format!("batcher, {CALLERS} callers"), texts.len(), elapsed, latencies);
    println!("{:<28} {} forward passes, {:.1} texts each", "", stats.batches, stats.texts as f64 / stats.batches as f64);
    Ok(())
}

fn main() -> Result<()> {
    // candle looks the thread count up on every operation and, without
    // RAYON_NUM_THREADS, reads /proc/cpuinfo each time. A server sets it once
    // at start-up, and so does this bench, before any thread exists.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: no other thread runs yet, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", cores.to_string()) };
    }
    let options = parse_options()?;
    let (texts, source) = load_texts(options.texts.as_deref())?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();

    let mut config = EncoderConfig::new(&options.model);
    config.device = options.device;
    let started = Instant::now();
    let encoder = Arc::new(Encoder::load(&config)?);
    println!(
        "model {} on {}, {} texts from {source}, {} threads, loaded in {:.0} ms",
        options.model.display(),
        encoder.device_name(),
        texts.len(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".to_owned()),
        started.elapsed().as_secs_f64() * 1000.0,
    );

    encoder.embed(&texts[..8.min(texts.len())], TextKind::Query)?;
    bench_batch_one(&encoder, &texts)?;
    for &max_batch in &options.batches {
        bench_batched(&config, &texts, max_batch)?;
    }
    bench_concurrent(encoder, &texts)?;
    Ok(())
}
