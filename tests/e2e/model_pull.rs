//! `lepton model pull` against a fake Hugging Face Hub on 127.0.0.1 that
//! serves the test model's files the way the Hub does (repository
//! information, small files with a 40-hex etag, the weights through a redirect
//! carrying `X-Linked-Etag` and `X-Linked-Size`), and a bot that names the
//! pulled model by its id. Faults the Hub could send (a path in an etag, a
//! commit that is not hex, an HTML page, a short or oversized body, a stall)
//! must leave the cache as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::encoder::{test_model_or_skip, write_encoder_bot};
use crate::harness::{temp_dir, LEPTON};

const REPO: &str = "lepton-test/mini-encoder";
const REPO_DIR: &str = "models--lepton-test--mini-encoder";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const NEXT_COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";
const WEIGHTS: &str = "model.safetensors";
const FILES: [&str; 6] = ["config.json", "tokenizer.json", WEIGHTS, "1_Pooling/config.json", "modules.json", "sentence_bert_config.json"];

/// What the fake Hub does wrong, if anything.
#[derive(Clone)]
enum Fault {
    None,
    /// Answers 500 for this file.
    Fails(&'static str),
    /// Sends this etag for every file.
    Etag(String),
    /// Answers the repository information with an HTML page.
    Html,
    /// Sends the first half of the weights, as a complete answer.
    ShortBody,
    /// Announces a Content-Length of 100 GB for the weights.
    HugeLength,
    /// Sends 1 KiB of the weights, then nothing, without closing.
    Stall,
    /// Sends small files under a 40-hex etag that is not their git blob id.
    WrongBlobId,
}

/// The files the fake Hub serves, the commit it names and its fault.
struct Hub {
    files: BTreeMap<String, Vec<u8>>,
    /// Each file's sha256, computed once: hashing the 90 MB weights on every
    /// request took seconds in the unoptimised test build, longer than the
    /// stall test's read timeout.
    sha256: BTreeMap<String, String>,
    commit: String,
    fault: Fault,
}

/// git's id of a file's contents, which the Hub sends as a small file's etag.
fn git_blob_id(bytes: &[u8]) -> String {
    use sha1::{Digest as _, Sha1};
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    format!("{:x}", hasher.finalize())
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

async fn repo_info(State(hub): State<Arc<Hub>>, UrlPath((org, name, revision)): UrlPath<(String, String, String)>) -> Response {
    // The revisions this Hub has: main, a pull request, and commits.
    let known = revision == "main" || revision == "refs/pr/1" || revision.chars().all(|c| c.is_ascii_hexdigit());
    if format!("{org}/{name}") != REPO || !known {
        return StatusCode::NOT_FOUND.into_response();
    }
    if matches!(hub.fault, Fault::Html) {
        let page = "<!doctype html><title>Sign in</title><p>Please sign in to continue.</p>";
        return ([("content-type", "text/html; charset=utf-8")], page).into_response();
    }
    let siblings: Vec<_> = hub.files.keys().map(|file| json!({ "rfilename": file })).collect();
    axum::Json(json!({ "sha": hub.commit, "siblings": siblings })).into_response()
}

async fn resolve(State(hub): State<Arc<Hub>>, UrlPath((org, name, revision, file)): UrlPath<(String, String, String, String)>) -> Response {
    if format!("{org}/{name}") != REPO || revision != hub.commit {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(bytes) = hub.files.get(&file) else { return StatusCode::NOT_FOUND.into_response() };
    let sha256 = hub.sha256[&file].clone();
    let quoted = format!("\"{sha256}\"");
    let weights = file == WEIGHTS;

    match &hub.fault {
        Fault::Fails(failing) if *failing == file => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Fault::Etag(etag) => ([("etag", etag.clone())], bytes.clone()).into_response(),
        Fault::ShortBody if weights => ([("etag", quoted)], bytes[..bytes.len() / 2].to_vec()).into_response(),
        Fault::HugeLength if weights => {
            let start = bytes[..1024].to_vec();
            let body = Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(start)]).chain(futures_util::stream::pending()));
            ([("etag", quoted), ("content-length", "100000000000".to_owned())], body).into_response()
        }
        Fault::Stall if weights => {
            let start = bytes[..1024].to_vec();
            let body = Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(start)]).chain(futures_util::stream::pending()));
            ([("etag", quoted)], body).into_response()
        }
        // Large files: the Hub answers with their sha256 and size, and a
        // redirect to the storage that serves them under an etag of its own.
        _ if weights => {
            let headers = [("location", format!("/cdn/{sha256}")), ("x-linked-etag", quoted), ("x-linked-size", bytes.len().to_string()), ("x-repo-commit", hub.commit.clone())];
            (StatusCode::FOUND, headers).into_response()
        }
        // Small files: the Hub's etag is the git blob id, 40 hex.
        Fault::WrongBlobId => ([("etag", format!("\"{}\"", &sha256[..40])), ("x-repo-commit", hub.commit.clone())], bytes.clone()).into_response(),
        _ => ([("etag", format!("\"{}\"", git_blob_id(bytes))), ("x-repo-commit", hub.commit.clone())], bytes.clone()).into_response(),
    }
}

async fn storage(State(hub): State<Arc<Hub>>, UrlPath(key): UrlPath<String>) -> Response {
    match hub.sha256.iter().find(|(_, sha256)| **sha256 == key).and_then(|(name, _)| hub.files.get(name)) {
        Some(bytes) => ([("etag", "\"storage-object-1\"")], bytes.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Reads the files of the test model.
fn model_files(model: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for file in FILES {
        files.insert(file.to_owned(), std::fs::read(model.join(file))?);
    }
    Ok(files)
}

/// The test model's files with other weights, as a newer commit would have.
fn changed_files(model: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = model_files(model)?;
    if let Some(last) = files.get_mut(WEIGHTS).and_then(|weights| weights.last_mut()) {
        *last ^= 0xff;
    }
    Ok(files)
}

/// Starts the fake Hub and returns its URL.
async fn start_hub(files: BTreeMap<String, Vec<u8>>, commit: &str, fault: Fault) -> anyhow::Result<String> {
    let sha256 = files.iter().map(|(name, bytes)| (name.clone(), sha256_hex(bytes))).collect();
    let hub = Arc::new(Hub { files, sha256, commit: commit.to_owned(), fault });
    let router = Router::new()
        .route("/api/models/{org}/{name}/revision/{revision}", get(repo_info))
        .route("/{org}/{name}/resolve/{revision}/{*file}", get(resolve))
        .route("/cdn/{key}", get(storage))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

fn pull_command(endpoint: &str, cache: &Path) -> Command {
    let mut command = Command::new(LEPTON);
    command.args(["model", "pull", REPO]).env("HF_ENDPOINT", endpoint).env("HF_HUB_CACHE", cache).env_remove("HF_TOKEN").env_remove("LEPTON_HUB_READ_TIMEOUT");
    command
}

async fn run(mut command: Command) -> anyhow::Result<Output> {
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

async fn pull(endpoint: &str, cache: &Path) -> anyhow::Result<Output> {
    run(pull_command(endpoint, cache)).await
}

fn main_ref(cache: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(cache.join(REPO_DIR).join("refs/main"))?)
}

/// Lists the files in the repository's `blobs` folder whose names end in `.incomplete`.
fn incomplete_files(cache: &Path) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(cache.join(REPO_DIR).join("blobs")) else { return Vec::new() };
    listing.flatten().map(|entry| entry.path()).filter(|path| path.extension().is_some_and(|extension| extension == "incomplete")).collect()
}

/// Pulls the test model from a Hub without faults at [`COMMIT`] into a fresh cache.
async fn pulled_cache(model: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let hub = start_hub(model_files(model)?, COMMIT, Fault::None).await?;
    let cache = temp_dir(name);
    let output = pull(&hub, &cache).await?;
    anyhow::ensure!(output.status.success(), "the first pull failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(cache)
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_fills_cache_for_bot() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("pull_fills_cache_for_bot") else { return Ok(()) };
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::None).await?;
    let cache = temp_dir("hub-cache");

    let output = pull(&hub, &cache).await?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(output.status.success(), "lepton model pull failed: {}", String::from_utf8_lossy(&output.stderr));
    let snapshot = cache.join(REPO_DIR).join("snapshots").join(COMMIT);
    assert_eq!(Path::new(&stdout), snapshot, "the printed folder is not the snapshot");
    for file in FILES {
        let pulled = std::fs::read(snapshot.join(file))?;
        assert!(pulled == std::fs::read(model.join(file))?, "{file} differs from the served file");
    }
    assert_eq!(main_ref(&cache)?, COMMIT);
    let weights = std::fs::read(model.join(WEIGHTS))?;
    assert!(cache.join(REPO_DIR).join("blobs").join(sha256_hex(&weights)).is_file(), "the weights are not stored under their sha256");
    if cfg!(unix) {
        let link = std::fs::read_link(snapshot.join("1_Pooling/config.json"))?;
        assert!(link.starts_with("../../../blobs"), "the snapshot entry is not a relative link to a blob: {}", link.display());
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
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::Fails(WEIGHTS)).await?;
    let cache = temp_dir("hub-cache-failing");

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull whose weights failed succeeded");
    assert!(stderr.contains("500"), "the error does not name the Hub's status: {stderr}");
    assert!(!cache.join(REPO_DIR).exists(), "the failed pull left files in the cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn etag_with_path_is_rejected() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("etag_with_path_is_rejected") else { return Ok(()) };
    let root = temp_dir("hub-etag-path");
    let cache = root.join("cache");
    // From `cache/models--…/blobs`, three levels up is `root`.
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::Etag("\"../../../victim.txt\"".to_owned())).await?;

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull with a path for an etag succeeded");
    assert!(stderr.contains("etag"), "the error does not name the etag: {stderr}");
    assert!(!root.join("victim.txt").exists(), "the pull wrote outside the cache");
    assert!(!cache.join(REPO_DIR).exists(), "the rejected pull left files in the cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_not_hex_is_rejected() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("commit_not_hex_is_rejected") else { return Ok(()) };
    let hub = start_hub(model_files(&model)?, "../../x", Fault::None).await?;
    let cache = temp_dir("hub-commit-path");

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull naming commit ../../x succeeded");
    assert!(stderr.contains("not a 40-hex commit"), "{stderr}");
    assert!(!cache.join("x").exists(), "the pull wrote a snapshot outside the repository folder");
    assert!(!cache.join(REPO_DIR).exists(), "the rejected pull left files in the cache");
    Ok(())
}

#[test]
fn revision_with_path_is_rejected() -> anyhow::Result<()> {
    let cache = temp_dir("hub-revision-path");
    let mut command = pull_command("http://127.0.0.1:9", &cache);
    let output = command.args(["--revision", "../../x"]).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull of revision ../../x succeeded");
    assert!(stderr.contains("revision \"../../x\" is invalid"), "{stderr}");
    assert!(std::fs::read_dir(&cache)?.next().is_none(), "the rejected pull wrote into the cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_revision_gets_its_ref() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("pull_request_revision_gets_its_ref") else { return Ok(()) };
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::None).await?;
    let cache = temp_dir("hub-pr-revision");
    let mut command = pull_command(&hub, &cache);
    command.args(["--revision", "refs/pr/1"]);

    let output = run(command).await?;

    assert!(output.status.success(), "a pull of refs/pr/1 failed: {}", String::from_utf8_lossy(&output.stderr));
    // huggingface_hub keeps a ref at refs/REVISION, so refs/pr/1 is at refs/refs/pr/1.
    let pr_ref = std::fs::read_to_string(cache.join(REPO_DIR).join("refs/refs/pr/1"))?;
    assert_eq!(pr_ref, COMMIT);
    assert!(!cache.join(REPO_DIR).join("refs/main").exists(), "a pull of refs/pr/1 wrote refs/main");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn html_answer_names_endpoint() -> anyhow::Result<()> {
    let hub = start_hub(BTreeMap::new(), COMMIT, Fault::Html).await?;
    let cache = temp_dir("hub-html");

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull from an HTML page succeeded");
    assert!(stderr.contains(&format!("the Hub at {hub} did not answer with model information (got text/html")), "{stderr}");
    assert!(stderr.contains("check HF_ENDPOINT"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn second_pull_waits_for_the_first() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("second_pull_waits_for_the_first") else { return Ok(()) };
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::None).await?;
    let cache = temp_dir("hub-lock");
    // This test holds the lock as a running pull would.
    let folder = cache.join(".locks").join(REPO_DIR);
    std::fs::create_dir_all(&folder)?;
    let lock = std::fs::File::create(folder.join(lepton::model_cmd::LOCK_FILE))?;
    lock.lock()?;

    let mut waiting = pull_command(&hub, &cache).stderr(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still_waiting = waiting.try_wait()?.is_none();
    let started = cache.join(REPO_DIR).join("refs/main").exists();
    lock.unlock()?;
    let output = tokio::task::spawn_blocking(move || waiting.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(still_waiting, "the pull did not wait for the lock: {stderr}");
    assert!(!started, "the pull wrote refs/main while another held the lock");
    assert!(stderr.contains("another pull of this model is running"), "{stderr}");
    assert!(output.status.success(), "the pull failed after the lock was released: {stderr}");
    assert_eq!(main_ref(&cache)?, COMMIT);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_blob_id_keeps_old_snapshot() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("wrong_blob_id_keeps_old_snapshot") else { return Ok(()) };
    let cache = pulled_cache(&model, "hub-wrong-blob-id").await?;
    let hub = start_hub(changed_files(&model)?, NEXT_COMMIT, Fault::WrongBlobId).await?;

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull of a small file under a wrong etag succeeded");
    assert!(stderr.contains("git blob id"), "the error does not name the blob id mismatch: {stderr}");
    assert_eq!(main_ref(&cache)?, COMMIT, "refs/main moved to the corrupt commit");
    assert!(!cache.join(REPO_DIR).join("snapshots").join(NEXT_COMMIT).exists(), "the corrupt commit has a snapshot");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn short_body_keeps_old_snapshot() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("short_body_keeps_old_snapshot") else { return Ok(()) };
    let cache = pulled_cache(&model, "hub-short-body").await?;
    let hub = start_hub(changed_files(&model)?, NEXT_COMMIT, Fault::ShortBody).await?;

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull of half the weights succeeded");
    assert!(stderr.contains("sha256"), "the error does not name the sha256 mismatch: {stderr}");
    assert_eq!(main_ref(&cache)?, COMMIT, "refs/main moved to the corrupt commit");
    assert!(!cache.join(REPO_DIR).join("snapshots").join(NEXT_COMMIT).exists(), "the corrupt commit has a snapshot");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_length_is_rejected() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("oversized_length_is_rejected") else { return Ok(()) };
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::HugeLength).await?;
    let cache = temp_dir("hub-huge");

    let output = pull(&hub, &cache).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull of a 100 GB file succeeded");
    assert!(stderr.contains("announced 100000000000 bytes"), "{stderr}");
    assert!(!cache.join(REPO_DIR).exists(), "the rejected pull left files in the cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_hub_times_out() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("stalled_hub_times_out") else { return Ok(()) };
    let hub = start_hub(model_files(&model)?, COMMIT, Fault::Stall).await?;
    let cache = temp_dir("hub-stall");
    let mut command = pull_command(&hub, &cache);
    command.env("LEPTON_HUB_READ_TIMEOUT", "3");

    let started = Instant::now();
    let output = run(command).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "a pull from a stalled Hub succeeded");
    assert!(stderr.contains("sent no data for 3 s"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "the pull took {:?} to give up", started.elapsed());
    assert!(!cache.join(REPO_DIR).exists(), "the timed-out pull left files in the cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_pull_keeps_old_snapshot() -> anyhow::Result<()> {
    let Some(model) = test_model_or_skip("killed_pull_keeps_old_snapshot") else { return Ok(()) };
    let cache = pulled_cache(&model, "hub-killed").await?;
    let stalled = start_hub(changed_files(&model)?, NEXT_COMMIT, Fault::Stall).await?;

    let mut child = pull_command(&stalled, &cache).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while incomplete_files(&cache).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let downloading = !incomplete_files(&cache).is_empty();
    child.kill()?;
    child.wait()?;
    assert!(downloading, "the pull never started to download the weights");
    assert_eq!(main_ref(&cache)?, COMMIT, "the killed pull moved refs/main");

    let bot = temp_dir("hub-killed-bot");
    write_encoder_bot(&bot, REPO)?;
    let validated = Command::new(LEPTON).args(["validate", "--no-model"]).arg(&bot).env("HF_HUB_CACHE", &cache).output()?;
    assert!(validated.status.success(), "the bot no longer validates after a killed pull: {}", String::from_utf8_lossy(&validated.stderr));

    let hub = start_hub(model_files(&model)?, NEXT_COMMIT, Fault::None).await?;
    let output = pull(&hub, &cache).await?;
    assert!(output.status.success(), "the pull after a killed one failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(main_ref(&cache)?, NEXT_COMMIT);
    assert_eq!(incomplete_files(&cache), Vec::<PathBuf>::new(), "the next pull left the killed pull's partial file");
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
