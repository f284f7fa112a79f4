//! `lepton model pull REPO`: downloads a sentence encoder from the Hugging Face
//! Hub into the standard Hugging Face cache, where `settings.encoder.model:
//! org/name` finds it.
//!
//! Only the files an encoder needs are fetched. A pull that fails part way
//! removes what it added to the cache, so no half-downloaded model is left to
//! be found later.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hf_hub::api::tokio::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use lepton_flows::{HubCache, MODEL_FILES};

/// Files that some encoders ship and that change how they are used (pooling,
/// modules); fetched when the repository has them.
pub const OPTIONAL_FILES: [&str; 3] = ["1_Pooling/config.json", "modules.json", "sentence_bert_config.json"];

/// The Hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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
    /// An access token for gated or private models (`HF_TOKEN`).
    pub token: Option<String>,
    /// Draw a progress bar on standard error.
    pub progress: bool,
}

impl PullOptions {
    /// Options from the environment: `HF_ENDPOINT`, `HF_TOKEN` and the cache
    /// folder that [`HubCache::from_env`] chooses.
    pub fn from_env(repo: String, revision: String) -> Self {
        let set = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        Self {
            repo,
            revision,
            endpoint: set("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
            cache: HubCache::from_env(),
            token: set("HF_TOKEN"),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

/// Downloads the model and returns its snapshot folder in the cache.
pub async fn pull(options: &PullOptions) -> anyhow::Result<PathBuf> {
    if !lepton_flows::is_hub_id(&options.repo) {
        bail!("`{}` is not a Hugging Face model id; write it as org/name, such as sentence-transformers/all-MiniLM-L6-v2", options.repo);
    }
    let repo_dir = options.cache.repo_dir(&options.repo);
    let before = Snapshot::take(&repo_dir);
    let result = download(options).await;
    if result.is_err() {
        if let Err(error) = before.restore(&repo_dir) {
            tracing::warn!(error = %format!("{error:#}"), folder = %repo_dir.display(), "cannot remove the partial download");
        }
    }
    result
}

async fn download(options: &PullOptions) -> anyhow::Result<PathBuf> {
    let endpoint = options.endpoint.trim_end_matches('/').to_owned();
    let api = ApiBuilder::from_cache(Cache::new(options.cache.path.clone()))
        .with_endpoint(endpoint.clone())
        .with_token(options.token.clone())
        .with_progress(options.progress)
        .build()
        .context("cannot set up the Hugging Face client")?;
    let repo = api.repo(Repo::with_revision(options.repo.clone(), RepoType::Model, options.revision.clone()));
    let what = format!("model {} at revision {} from {endpoint}", options.repo, options.revision);

    let info = repo.info().await.map_err(|error| explain(error, &what))?;
    let listed: BTreeSet<&str> = info.siblings.iter().map(|sibling| sibling.rfilename.as_str()).collect();
    let missing: Vec<&str> = MODEL_FILES.into_iter().filter(|file| !listed.contains(file)).collect();
    if !missing.is_empty() {
        bail!("{} lacks {}, which Lepton needs (a BERT-family model with safetensors weights and a fast tokenizer); choose another model", options.repo, missing.join(", "));
    }

    let files = MODEL_FILES.into_iter().chain(OPTIONAL_FILES.into_iter().filter(|file| listed.contains(file)));
    let mut snapshot = None;
    for file in files {
        let path = repo.download(file).await.map_err(|error| explain(error, &format!("{file} of the {what}")))?;
        tracing::debug!(file, path = %path.display(), "downloaded");
        if file == MODEL_FILES[0] {
            snapshot = path.parent().map(Path::to_path_buf);
        }
    }
    snapshot.context("the download returned no folder for config.json")
}

/// Turns a Hub client error into a message that names the next step.
fn explain(error: ApiError, what: &str) -> anyhow::Error {
    if let ApiError::RequestError(request) = &error {
        if let Some(status) = request.status() {
            let advice = match status.as_u16() {
                401 | 403 => "the model may be gated or private: set HF_TOKEN to a token with access",
                404 => "check the id and the revision",
                _ => "try again later",
            };
            return anyhow::anyhow!("cannot download the {what}: the Hub answered {status}; {advice}");
        }
        if request.is_connect() || request.is_timeout() || request.is_request() {
            return anyhow::anyhow!(
                "cannot reach the Hugging Face Hub for the {what}: {}; check the network, or set HF_ENDPOINT to a mirror",
                error_chain(request)
            );
        }
    }
    anyhow::anyhow!("cannot download the {what}: {}", error_chain(&error))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
