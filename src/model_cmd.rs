//! `lepton model pull REPO`: downloads a sentence encoder from the Hugging Face
//! Hub into the standard Hugging Face cache, where `settings.encoder.model:
//! org/name` finds it.
//!
//! The layout is the one Python's `huggingface_hub` writes: `blobs/ETAG` contains
//! each file, `snapshots/COMMIT/FILE` links to its blob, and `refs/REVISION`
//! names the commit. Only the files an encoder needs are fetched. Every name
//! that comes from the Hub (the commit and the etags) must be hex before it
//! becomes part of a path. Each file streams into `blobs/*.incomplete` under a
//! size limit and a read timeout. An LFS file's sha256 must match its etag, and
//! a small file's git blob id (the sha1 of `blob LENGTH\0` and the bytes) its
//! 40-hex etag.
//! The snapshot and then the ref are written only once every file is complete,
//! so a pull that fails or is killed part way never changes which snapshot a
//! bot finds. A failed pull also removes what it added, and a killed one leaves
//! `*.incomplete` files that the next pull removes.
//!
//! Two pulls of the same model take turns: each holds an exclusive file lock
//! on `.locks/models--ORG--NAME/lepton-pull.lock` in the cache, which the
//! operating system releases when the process ends, killed or not. So one
//! pull's cleanup never removes what another is writing.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use lepton_flows::{HubCache, MODEL_FILES};
use reqwest::header::{HeaderMap, CONTENT_TYPE, ETAG, LOCATION};
use reqwest::{Response, Url};
use sha2::{Digest, Sha256};

/// Files that some encoders ship and that change how they are used (pooling,
/// modules); fetched when the repository has them.
pub const OPTIONAL_FILES: [&str; 3] = ["1_Pooling/config.json", "modules.json", "sentence_bert_config.json"];

/// The Hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The environment variable that sets [`PullOptions::read_timeout`], in whole seconds.
pub const READ_TIMEOUT_VAR: &str = "LEPTON_HUB_READ_TIMEOUT";

/// How long a pull waits for the Hub's next bytes when [`READ_TIMEOUT_VAR`] is not set.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest file a pull accepts. Encoders that Lepton runs on a CPU are far
/// smaller (multilingual-e5-large's f32 weights are about 2.2 GB). The limit
/// stops a Hub that announces or sends an endless file from filling the disk.
pub const MAX_FILE_BYTES: u64 = 8 << 30;

/// The largest repository-information response a pull reads into memory.
const MAX_INFO_BYTES: usize = 16 << 20;

/// The maximum number of redirects followed for one request (renamed repositories, then the
/// CDN that stores large files).
const MAX_REDIRECTS: usize = 10;

/// The repository to download and the cache to fill.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// `org/name`.
    pub repo: String,
    /// A branch, tag or commit.
    pub revision: String,
    /// The Hub's base URL: `HF_ENDPOINT`, else [`DEFAULT_ENDPOINT`].
    pub endpoint: String,
    pub cache: HubCache,
    /// An access token for gated or private models (`HF_TOKEN`), sent only to
    /// the endpoint's own host.
    pub token: Option<String>,
    /// Draw the progress of each file on standard error.
    pub progress: bool,
    /// The longest wait for a connection, for the headers of a response, or for
    /// the next bytes of a body.
    pub read_timeout: Duration,
}

impl PullOptions {
    /// Options from the environment: `HF_ENDPOINT`, `HF_TOKEN`,
    /// [`READ_TIMEOUT_VAR`] and the cache folder that [`HubCache::from_env`] chooses.
    pub fn from_env(repo: String, revision: String) -> Self {
        let set = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let read_timeout = match set(READ_TIMEOUT_VAR).map(|value| value.trim().parse::<u64>()) {
            None => DEFAULT_READ_TIMEOUT,
            Some(Ok(seconds)) if seconds > 0 => Duration::from_secs(seconds),
            Some(_) => {
                tracing::warn!(variable = READ_TIMEOUT_VAR, default_s = DEFAULT_READ_TIMEOUT.as_secs(), "the read timeout is not a positive number of seconds; using the default");
                DEFAULT_READ_TIMEOUT
            }
        };
        Self {
            repo,
            revision,
            endpoint: set("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
            cache: HubCache::from_env(),
            token: set("HF_TOKEN"),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            read_timeout,
        }
    }
}

/// Downloads the model and returns its snapshot folder in the cache.
pub async fn pull(options: &PullOptions) -> anyhow::Result<PathBuf> {
    if !lepton_flows::is_hub_id(&options.repo) {
        bail!("`{}` is not a Hugging Face model id; write it as org/name, such as sentence-transformers/all-MiniLM-L6-v2", options.repo);
    }
    if !is_revision(&options.revision) {
        bail!(
            "revision {:?} is invalid: use a branch, tag, commit or refs/pr/N made of `/`-separated parts of letters, digits, `.`, `_` and `-`, none empty or starting with a dot, and without `..`, such as main",
            options.revision
        );
    }

    let repo_dir = options.cache.repo_dir(&options.repo);
    let _lock = lock_repo(&repo_dir).await?;
    let before = Snapshot::take(&repo_dir);
    let result = download(options, &repo_dir).await;
    if result.is_err() {
        if let Err(error) = before.restore(&repo_dir) {
            tracing::warn!(error = %format!("{error:#}"), folder = %repo_dir.display(), "cannot remove the partial download");
        }
    }
    result
}

/// The name of the lock file each pull holds, under `.locks/` in the cache.
pub const LOCK_FILE: &str = "lepton-pull.lock";

/// Takes the exclusive lock of `repo_dir`'s model, waiting while another
/// pull holds it. The lock lasts until the returned file is dropped.
async fn lock_repo(repo_dir: &Path) -> anyhow::Result<std::fs::File> {
    let (Some(cache), Some(name)) = (repo_dir.parent(), repo_dir.file_name()) else {
        bail!("{} is not a folder in a cache", repo_dir.display());
    };
    let folder = cache.join(".locks").join(name);
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let path = folder.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(error)) => return Err(error).with_context(|| format!("cannot lock {}", path.display())),
    }
    eprintln!("another pull of this model is running; waiting for it to finish ({})", path.display());
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .context("the lock wait stopped")?
        .with_context(|| format!("cannot lock {}", path.display()))
}

/// Returns whether `revision` is safe as a path under `refs/`: one or more
/// `/`-separated parts (a branch such as `feature/x`, or `refs/pr/1`), each
/// of letters, digits, `.`, `_` and `-`, not starting with a dot and without
/// `..`.
fn is_revision(revision: &str) -> bool {
    revision.split('/').all(|part| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.contains("..")
            && part.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    })
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn download(options: &PullOptions, repo_dir: &Path) -> anyhow::Result<PathBuf> {
    let hub = Hub::new(options)?;
    let what = format!("model {} at revision {} from {}", options.repo, options.revision, hub.endpoint);
    remove_incomplete(&repo_dir.join("blobs"));

    let info = hub.repo_info(&what).await?;
    let listed: BTreeSet<&str> = info.siblings.iter().map(|sibling| sibling.rfilename.as_str()).collect();
    let missing: Vec<&str> = MODEL_FILES.into_iter().filter(|file| !listed.contains(file)).collect();
    if !missing.is_empty() {
        bail!("{} lacks {}, which Lepton needs (a BERT-family model with safetensors weights and a fast tokenizer); choose another model", options.repo, missing.join(", "));
    }

    let files = MODEL_FILES.into_iter().chain(OPTIONAL_FILES.into_iter().filter(|file| listed.contains(file)));
    let mut blobs = Vec::new();
    for (index, file) in files.enumerate() {
        let etag = hub.fetch_blob(repo_dir, &info.sha, file, index, &format!("{file} of the {what}")).await?;
        blobs.push((file, etag));
    }

    let snapshot = link_snapshot(repo_dir, &info.sha, &blobs)?;
    if options.revision != info.sha {
        write_ref(repo_dir, &options.revision, &info.sha)?;
    }
    Ok(snapshot)
}

/// The part of the Hub's repository information that a pull reads.
#[derive(serde::Deserialize)]
struct RepoInfo {
    sha: String,
    siblings: Vec<Sibling>,
}

#[derive(serde::Deserialize)]
struct Sibling {
    rfilename: String,
}

/// The identity of a file as the Hub announces it: the etag of the first
/// response that carries `X-Linked-Etag` (large files, before the redirect to
/// their storage), else the first `ETag`, and the size that goes with it.
#[derive(Default)]
struct Announced {
    linked_etag: Option<String>,
    linked_size: Option<String>,
    etag: Option<String>,
}

impl Announced {
    fn note(&mut self, headers: &HeaderMap) {
        let text = |name| headers.get(name).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        if self.linked_etag.is_none() {
            if let Some(linked) = text("x-linked-etag") {
                self.linked_etag = Some(linked);
                self.linked_size = text("x-linked-size");
            }
        }
        if self.etag.is_none() {
            self.etag = text(ETAG.as_str());
        }
    }
}

/// An HTTP client for one Hub, with the pull's timeouts and token.
struct Hub<'a> {
    client: reqwest::Client,
    endpoint: String,
    options: &'a PullOptions,
}

impl<'a> Hub<'a> {
    fn new(options: &'a PullOptions) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.read_timeout)
            .user_agent(concat!("lepton/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self { client, endpoint: options.endpoint.trim_end_matches('/').to_owned(), options })
    }

    async fn repo_info(&self, what: &str) -> anyhow::Result<RepoInfo> {
        // The Hub takes a revision with `/` (refs/pr/1) as one encoded segment.
        let url = format!("{}/api/models/{}/revision/{}", self.endpoint, self.options.repo, self.options.revision.replace('/', "%2F"));
        let (mut response, _) = self.get(&url, what).await?;
        let content_type = response.headers().get(CONTENT_TYPE).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());

        let mut body = Vec::new();
        self.read_body(&mut response, what, |chunk| {
            if body.len() + chunk.len() > MAX_INFO_BYTES {
                bail!("the Hub's information on the {what} is larger than {MAX_INFO_BYTES} bytes; check HF_ENDPOINT");
            }
            body.extend_from_slice(chunk);
            Ok(())
        })
        .await?;

        let got = content_type.as_deref().unwrap_or("no content type");
        if !got.contains("json") {
            bail!("the Hub at {} did not answer with model information (got {got}); check HF_ENDPOINT", self.endpoint);
        }
        let info: RepoInfo = serde_json::from_slice(&body)
            .map_err(|error| anyhow!("the Hub at {} did not answer with model information (got {got} that does not parse: {error}); check HF_ENDPOINT", self.endpoint))?;
        if !is_lower_hex(&info.sha, 40) {
            bail!("the Hub at {} named commit {:?} for the {what}, which is not a 40-hex commit id; check HF_ENDPOINT", self.endpoint, info.sha);
        }
        Ok(info)
    }

    /// Downloads `file` at `commit` into `blobs/ETAG` and returns the etag,
    /// or returns at once when that blob is already there.
    async fn fetch_blob(&self, repo_dir: &Path, commit: &str, file: &str, index: usize, what: &str) -> anyhow::Result<String> {
        let url = format!("{}/{}/resolve/{commit}/{file}", self.endpoint, self.options.repo);
        let (mut response, announced) = self.get(&url, what).await?;

        let raw = announced.linked_etag.as_deref().or(announced.etag.as_deref()).with_context(|| format!("the Hub sent no etag for the {what}; check HF_ENDPOINT"))?;
        let etag = raw.trim().trim_start_matches("W/").trim_matches('"').to_owned();
        if !is_lower_hex(&etag, 40) && !is_lower_hex(&etag, 64) {
            bail!("the Hub sent etag {raw:?} for the {what}, which is neither a 40- nor a 64-hex id; check HF_ENDPOINT");
        }
        let size = match (&announced.linked_etag, &announced.linked_size) {
            (Some(_), Some(size)) => Some(size.trim().parse::<u64>().map_err(|_| anyhow!("the Hub sent size {size:?} for the {what}, which is not a number; check HF_ENDPOINT"))?),
            _ => response.content_length(),
        };
        if let Some(size) = size.filter(|&size| size > MAX_FILE_BYTES) {
            bail!("the Hub announced {size} bytes for the {what}, more than the {MAX_FILE_BYTES} bytes Lepton accepts; check the model id and HF_ENDPOINT");
        }

        let blobs = repo_dir.join("blobs");
        let blob = blobs.join(&etag);
        if blob.is_file() {
            tracing::debug!(file, blob = %blob.display(), "already in the cache");
            return Ok(etag);
        }
        std::fs::create_dir_all(&blobs).with_context(|| format!("cannot create {}", blobs.display()))?;
        let partial = blobs.join(format!("{}-{index}.incomplete", std::process::id()));
        let result = self.stream_to(&mut response, &partial, &etag, size, file, what).await;
        if let Err(error) = result {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
        std::fs::rename(&partial, &blob).with_context(|| format!("cannot move {} to {}", partial.display(), blob.display()))?;
        tracing::debug!(file, blob = %blob.display(), "downloaded");
        Ok(etag)
    }

    /// Writes the body to `partial`, stopping past `size` (or past
    /// [`MAX_FILE_BYTES`] when the Hub announced none), and checks the length
    /// and the digest the etag names: the sha256 for a 64-hex etag, the git
    /// blob id for a 40-hex one.
    async fn stream_to(&self, response: &mut Response, partial: &Path, etag: &str, size: Option<u64>, file: &str, what: &str) -> anyhow::Result<()> {
        let created = std::fs::File::create(partial).with_context(|| format!("cannot create {}", partial.display()))?;
        let mut out = std::io::BufWriter::new(created);
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        let limit = size.unwrap_or(MAX_FILE_BYTES);
        let mut progress = Progress::new(self.options.progress, file, size);

        self.read_body(response, what, |chunk| {
            received += chunk.len() as u64;
            if received > limit {
                bail!("the Hub sent more than {limit} bytes for the {what}; check HF_ENDPOINT");
            }
            hasher.update(chunk);
            out.write_all(chunk).with_context(|| format!("cannot write {}", partial.display()))?;
            progress.show(received);
            Ok(())
        })
        .await?;
        progress.finish();
        let file_out = out.into_inner().map_err(|error| error.into_error()).with_context(|| format!("cannot write {}", partial.display()))?;
        file_out.sync_all().with_context(|| format!("cannot write {}", partial.display()))?;

        if let Some(size) = size.filter(|&size| size != received) {
            bail!("the Hub ended the {what} after {received} of {size} bytes; try again");
        }
        let sha256 = format!("{:x}", hasher.finalize());
        if etag.len() == 64 && sha256 != etag {
            bail!("the sha256 of the {what} is {sha256}, not {etag} as its etag says; the download is corrupt, try again or check HF_ENDPOINT");
        }
        if etag.len() == 40 {
            let blob = git_blob_id(partial)?;
            if blob != etag {
                bail!("the git blob id of the {what} is {blob}, but its etag is {etag}; the download is corrupt, so try again or check HF_ENDPOINT");
            }
        }
        Ok(())
    }

    /// Sends a GET, following redirects by hand so that the Hub's own headers
    /// (the etag of a large file) are seen and the token goes only to the
    /// endpoint's host. Fails on a status other than 2xx.
    async fn get(&self, url: &str, what: &str) -> anyhow::Result<(Response, Announced)> {
        let home = Url::parse(&self.endpoint).with_context(|| format!("HF_ENDPOINT {:?} is not a URL; set it like https://huggingface.co", self.endpoint))?;
        let mut url = Url::parse(url).with_context(|| format!("cannot form a URL for the {what}"))?;
        let mut announced = Announced::default();

        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.client.get(url.clone());
            if let Some(token) = self.options.token.as_deref().filter(|_| url.origin() == home.origin()) {
                request = request.bearer_auth(token);
            }
            let response = match tokio::time::timeout(self.options.read_timeout, request.send()).await {
                Err(_) => bail!(
                    "the Hub at {} did not respond within {} s for the {what}; try again later, or set HF_ENDPOINT to a mirror",
                    url.host_str().unwrap_or_default(),
                    self.options.read_timeout.as_secs()
                ),
                Ok(Err(error)) => return Err(explain_request_error(&error, what)),
                Ok(Ok(response)) => response,
            };
            announced.note(response.headers());

            let status = response.status();
            if status.is_success() {
                return Ok((response, announced));
            }
            if !status.is_redirection() {
                let advice = match status.as_u16() {
                    401 | 403 => "the model may be gated or private: set HF_TOKEN to a token with access",
                    404 => "check the id and the revision",
                    _ => "try again later",
                };
                bail!("cannot download the {what}: the Hub responded with {status}; {advice}");
            }
            let location = response.headers().get(LOCATION).and_then(|value| value.to_str().ok());
            // Follow https, and plain http only from plain http: never downgrade.
            let next = location
                .and_then(|location| url.join(location).ok())
                .filter(|next| next.scheme() == "https" || (next.scheme() == "http" && url.scheme() == "http"));
            url = next.with_context(|| format!("the Hub answered {status} for the {what} without a usable Location; check HF_ENDPOINT"))?;
        }
        bail!("the Hub redirected more than {MAX_REDIRECTS} times for the {what}; check HF_ENDPOINT")
    }

    /// Passes each chunk of the body to `sink`, failing when no bytes arrive
    /// within the read timeout.
    async fn read_body(&self, response: &mut Response, what: &str, mut sink: impl FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<()> {
        loop {
            let chunk = match tokio::time::timeout(self.options.read_timeout, response.chunk()).await {
                Err(_) => bail!("the Hub sent no data for {} s during the {what}; try again later, or set HF_ENDPOINT to a mirror", self.options.read_timeout.as_secs()),
                Ok(Err(error)) => return Err(explain_request_error(&error, what)),
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(chunk))) => chunk,
            };
            sink(&chunk)?;
        }
    }
}

/// Turns a transport error into a message that names the next step.
fn explain_request_error(error: &reqwest::Error, what: &str) -> anyhow::Error {
    if error.is_connect() || error.is_timeout() || error.is_request() {
        return anyhow!("cannot reach the Hugging Face Hub for the {what}: {}; check the network, or set HF_ENDPOINT to a mirror", error_chain(error));
    }
    anyhow!("cannot download the {what}: {}", error_chain(error))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// A one-line progress display on standard error, redrawn at most once per MiB.
struct Progress<'a> {
    enabled: bool,
    file: &'a str,
    size: Option<u64>,
    shown: u64,
}

impl<'a> Progress<'a> {
    fn new(enabled: bool, file: &'a str, size: Option<u64>) -> Self {
        Self { enabled, file, size, shown: 0 }
    }

    fn show(&mut self, received: u64) {
        if !self.enabled || received < self.shown + (1 << 20) {
            return;
        }
        self.shown = received;
        let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
        match self.size {
            Some(size) => eprint!("\r{}: {:.1} of {:.1} MiB", self.file, mib(received), mib(size)),
            None => eprint!("\r{}: {:.1} MiB", self.file, mib(received)),
        }
    }

    fn finish(&self) {
        if self.enabled && self.shown > 0 {
            eprintln!();
        }
    }
}

/// Removes the `*.incomplete` files that a killed pull left in `blobs`.
fn remove_incomplete(blobs: &Path) {
    let Ok(listing) = std::fs::read_dir(blobs) else { return };
    for entry in listing.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|extension| extension == "incomplete") {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(file = %path.display(), "removed a partial download"),
                Err(error) => tracing::warn!(%error, file = %path.display(), "cannot remove a partial download"),
            }
        }
    }
}

/// Creates `snapshots/COMMIT/FILE` for each downloaded file: a relative link
/// to `../../blobs/ETAG` as `huggingface_hub` makes, or a copy where the
/// system has no symbolic links. Each entry is made under a temporary name and
/// renamed into place, so an existing snapshot is never half replaced.
fn link_snapshot(repo_dir: &Path, commit: &str, blobs: &[(&str, String)]) -> anyhow::Result<PathBuf> {
    let snapshot = repo_dir.join("snapshots").join(commit);
    for (file, etag) in blobs {
        let path = snapshot.join(file);
        let folder = path.parent().unwrap_or(&snapshot);
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;

        let depth = file.matches('/').count() + 2;
        let target = Path::new(&"../".repeat(depth)).join("blobs").join(etag);
        let temporary = folder.join(format!(".{}.{}.tmp", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        place_blob(&target, &repo_dir.join("blobs").join(etag), &temporary).with_context(|| format!("cannot create {}", temporary.display()))?;
        std::fs::rename(&temporary, &path).with_context(|| format!("cannot move {} to {}", temporary.display(), path.display()))?;
    }
    Ok(snapshot)
}

#[cfg(unix)]
fn place_blob(relative: &Path, _blob: &Path, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(relative, at)
}

#[cfg(not(unix))]
fn place_blob(_relative: &Path, blob: &Path, at: &Path) -> std::io::Result<()> {
    std::fs::copy(blob, at).map(|_| ())
}

/// Points `refs/REVISION` at `commit`, writing a temporary file and renaming
/// it so that a reader sees either the old commit or the new one.
fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> anyhow::Result<()> {
    let path = repo_dir.join("refs").join(revision);
    let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("revision {revision:?} names no file under refs");
    };
    std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let temporary = folder.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    std::fs::write(&temporary, commit).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("cannot move {} to {}", temporary.display(), path.display()))
}
/// The files and links under a repository's cache folder before a pull, and
/// the contents of its refs, so that a failed pull can be undone.
struct Snapshot {
    entries: BTreeSet<PathBuf>,
    refs: Vec<(PathBuf, Vec<u8>)>,
    existed: bool,
}

impl Snapshot {
    fn take(repo_dir: &Path) -> Self {
        let mut entries = BTreeSet::new();
        walk(repo_dir, &mut entries);
        let refs = entries
            .iter()
            .filter(|path| path.strip_prefix(repo_dir).is_ok_and(|relative| relative.starts_with("refs")))
            .filter_map(|path| std::fs::read(path).ok().map(|bytes| (path.clone(), bytes)))
            .collect();
        Self { entries, refs, existed: repo_dir.exists() }
    }

    /// Removes what was added since the snapshot and restores the refs.
    fn restore(&self, repo_dir: &Path) -> anyhow::Result<()> {
        if !self.existed {
            if repo_dir.exists() {
                std::fs::remove_dir_all(repo_dir).with_context(|| format!("cannot remove {}", repo_dir.display()))?;
            }
            return Ok(());
        }
        let mut now = BTreeSet::new();
        walk(repo_dir, &mut now);
        // Deepest first, so that folders are empty when their turn comes.
        let added: Vec<&PathBuf> = now.difference(&self.entries).collect();
        for path in added.into_iter().rev() {
            let removed = match std::fs::symlink_metadata(path) {
                Ok(metadata) if metadata.is_dir() => std::fs::remove_dir(path),
                Ok(_) => std::fs::remove_file(path),
                Err(_) => Ok(()),
            };
            removed.with_context(|| format!("cannot remove {}", path.display()))?;
        }
        for (path, bytes) in &self.refs {
            std::fs::write(path, bytes).with_context(|| format!("cannot restore {}", path.display()))?;
        }
        Ok(())
    }
}

/// Lists every file, link and folder under `dir`, without following links.
fn walk(dir: &Path, entries: &mut BTreeSet<PathBuf>) {
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    for entry in listing.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        entries.insert(path.clone());
        if is_dir {
            walk(&path, entries);
        }
    }
}

/// Returns git's id of the file's contents, the sha1 of `blob LENGTH\0`
/// followed by the bytes, which the Hub sends as the etag of a file kept in
/// git rather than LFS. Such files are small, so the file is read whole.
fn git_blob_id(path: &Path) -> anyhow::Result<String> {
    use sha1::{Digest as _, Sha1};

    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(&bytes);
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_id_matches_git_hash_object() -> anyhow::Result<()> {
        let path = std::env::temp_dir().join(format!("lepton-blob-id-{}", std::process::id()));
        std::fs::write(&path, "hello\n")?;
        let id = git_blob_id(&path);
        std::fs::remove_file(&path)?;
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(id?, "ce013625030ba8dba906f756967f9e9ca394464a");
        Ok(())
    }

    #[test]
    fn restore_removes_added_files_and_keeps_old_ones() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("lepton-model-restore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("refs"))?;
        std::fs::create_dir_all(dir.join("blobs"))?;
        std::fs::write(dir.join("refs/main"), "old")?;
        std::fs::write(dir.join("blobs/kept"), "x")?;
        let before = Snapshot::take(&dir);

        std::fs::write(dir.join("refs/main"), "new")?;
        std::fs::write(dir.join("blobs/added.sync.part"), "half")?;
        std::fs::create_dir_all(dir.join("snapshots/new"))?;
        std::fs::write(dir.join("snapshots/new/config.json"), "{}")?;
        before.restore(&dir)?;

        let mut left = BTreeSet::new();
        walk(&dir, &mut left);
        let main = std::fs::read_to_string(dir.join("refs/main"))?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(left, before.entries);
        assert_eq!(main, "old");
        Ok(())
    }

    #[test]
    fn restore_removes_a_folder_the_pull_created() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("lepton-model-restore-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let before = Snapshot::take(&dir);
        std::fs::create_dir_all(dir.join("blobs"))?;
        std::fs::write(dir.join("blobs/a.lock"), "")?;
        before.restore(&dir)?;
        assert!(!dir.exists(), "the pull's folder is still there");
        Ok(())
    }

    #[test]
    fn revision_accepts_branch_tag_and_commit() {
        for revision in ["main", "v1.0", "release_2-x", "0123456789abcdef0123456789abcdef01234567", "refs/pr/1", "feature/x"] {
            assert!(is_revision(revision), "{revision} was rejected");
        }
    }

    #[test]
    fn revision_rejects_paths() {
        for revision in ["", "../../x", "..", ".hidden", "a/", "/a", "a//b", "a/../b", "a/.b", "a..b", "main\\x", "main x"] {
            assert!(!is_revision(revision), "{revision:?} was accepted");
        }
    }

    #[test]
    fn lower_hex_needs_exact_length_and_case() {
        assert!(is_lower_hex("0123456789abcdef0123456789abcdef01234567", 40));
        assert!(!is_lower_hex("0123456789ABCDEF0123456789abcdef01234567", 40));
        assert!(!is_lower_hex("0123456789abcdef", 40));
        assert!(!is_lower_hex("../../../../tmp/victim.txt", 26));
    }

    #[test]
    fn snapshot_links_resolve_to_blobs() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("lepton-model-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("blobs"))?;
        std::fs::write(dir.join("blobs/aa"), "top")?;
        std::fs::write(dir.join("blobs/bb"), "nested")?;
        let blobs = [("config.json", "aa".to_owned()), ("1_Pooling/config.json", "bb".to_owned())];

        let snapshot = link_snapshot(&dir, "c0", &blobs)?;
        link_snapshot(&dir, "c0", &blobs)?;
        let top = std::fs::read_to_string(snapshot.join("config.json"))?;
        let nested = std::fs::read_to_string(snapshot.join("1_Pooling/config.json"))?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(top, "top");
        assert_eq!(nested, "nested");
        Ok(())
    }

    #[test]
    fn ref_is_replaced_whole() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("lepton-model-ref-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_ref(&dir, "main", "old")?;
        write_ref(&dir, "main", "new")?;
        let main = std::fs::read_to_string(dir.join("refs/main"))?;
        let entries = std::fs::read_dir(dir.join("refs"))?.count();
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(main, "new");
        assert_eq!(entries, 1, "a temporary file is left in refs");
        Ok(())
    }
}
