//! `lepton model pull` against a fake Hugging Face Hub on 127.0.0.1 that
//! serves the test model's files the way the Hub does (repository info, then
//! ranged GETs with an etag and the commit), and a bot that names the pulled
//! model by its id.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::encoder::{test_model_or_skip, write_encoder_bot};
use crate::harness::{temp_dir, LEPTON};

const REPO: &str = "lepton-test/mini-encoder";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const FILES: [&str; 6] = ["config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json", "modules.json", "sentence_bert_config.json"];

/// The files the fake Hub serves, and one it fails with status 500.
struct Hub {
    files: BTreeMap<String, Vec<u8>>,
    failing: Option<&'static str>,
}

async fn repo_info(State(hub): State<Arc<Hub>>, UrlPath((org, name, _revision)): UrlPath<(String, String, String)>) -> Response {
    if format!("{org}/{name}") != REPO {
        return StatusCode::NOT_FOUND.into_response();
    }
    let siblings: Vec<_> = hub.files.keys().map(|file| json!({ "rfilename": file })).collect();
    axum::Json(json!({ "sha": COMMIT, "siblings": siblings })).into_response()
}

async fn resolve(State(hub): State<Arc<Hub>>, UrlPath((_org, _name, _revision, file)): UrlPath<(String, String, String, String)>, headers: HeaderMap) -> Response {
    if hub.failing == Some(file.as_str()) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let Some(bytes) = hub.files.get(&file) else { return StatusCode::NOT_FOUND.into_response() };
    let last = bytes.len().saturating_sub(1);
    let range = headers.get("range").and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("bytes="));
    let (start, stop) = range
        .and_then(|range| range.split_once('-'))
        .and_then(|(start, stop)| Some((start.parse::<usize>().ok()?, stop.parse::<usize>().ok()?.min(last))))
        .unwrap_or((0, last));
    let etag = format!("\"{:x}-{}\"", bytes.len(), file.replace('/', "-"));
    let content_range = format!("bytes {start}-{stop}/{}", bytes.len());
    let headers = [("etag", etag), ("x-repo-commit", COMMIT.to_owned()), ("content-range", content_range), ("accept-ranges", "bytes".to_owned())];
    (StatusCode::PARTIAL_CONTENT, headers, bytes[start..=stop].to_vec()).into_response()
}

/// Starts the fake Hub with the files of `model` and returns its URL.
async fn start_hub(model: &Path, failing: Option<&'static str>) -> anyhow::Result<String> {
    let mut files = BTreeMap::new();
    for file in FILES {
        files.insert(file.to_owned(), std::fs::read(model.join(file))?);
    }
    let hub = Arc::new(Hub { files, failing });
    let router = Router::new()
        .route("/api/models/{org}/{name}/revision/{revision}", get(repo_info))
        .route("/{org}/{name}/resolve/{revision}/{*file}", get(resolve))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

async fn pull(endpoint: &str, cache: &Path) -> anyhow::Result<Output> {
    let mut command = Command::new(LEPTON);
    command.args(["model", "pull", REPO]).env("HF_ENDPOINT", endpoint).env("HF_HUB_CACHE", cache).env_remove("HF_TOKEN");
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_fills_cache_for_bot() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("pull_fills_cache_for_bot") else { return Ok(()) };
    let hub = start_hub(&model, None).await?;
    let cache = temp_dir("hub-cache");

    let output = pull(&hub, &cache).await?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(output.status.success(), "lepton model pull failed: {}", String::from_utf8_lossy(&output.stderr));
    let snapshot = cache.join("models--lepton-test--mini-encoder/snapshots").join(COMMIT);
    assert_eq!(Path::new(&stdout), snapshot, "the printed folder is not the snapshot");
    for file in FILES {
        let pulled = std::fs::read(snapshot.join(file))?;
        assert!(pulled == std::fs::read(model.join(file))?, "{file} differs from the served file");
    }

    let bot = temp_dir("hub-bot");
    write_encoder_bot(&bot, REPO)?;
    let trained = Command::new(LEPTON).arg("train").arg(&bot).env("HF_HUB_CACHE", &cache).output()?;
    assert!(trained.status.success(), "a bot naming the pulled model failed to train: {}", String::from_utf8_lossy(&trained.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_pull_leaves_no_files() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("failed_pull_leaves_no_files") else { return Ok(()) };
    let hub = start_hub(&model, Some("model.safetensors")).await?;
    let cache = temp_dir("hub-cache-failing");

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull whose weights failed succeeded");
    assert!(stderr.contains("500"), "the error does not name the Hub's status: {stderr}");
    assert!(!cache.join("models--lepton-test--mini-encoder").exists(), "the failed pull left files in the cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_hub_gives_a_clear_error() -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let closed = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let cache = temp_dir("hub-cache-unreachable");

    let output = pull(&closed, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull from a closed port succeeded");
    assert!(stderr.contains("cannot reach the Hugging Face Hub"), "{stderr}");
    assert!(stderr.contains("HF_ENDPOINT"), "{stderr}");
    Ok(())
}

#[test]
fn pull_rejects_an_id_without_org() -> anyhow::Result<()> {
    let output = Command::new(LEPTON).args(["model", "pull", "minilm"]).env("HF_ENDPOINT", "http://127.0.0.1:9").output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull of `minilm` succeeded");
    assert!(stderr.contains("write it as org/name"), "{stderr}");
    Ok(())
}
