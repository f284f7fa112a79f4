//! Finding the folder of a pretrained encoder named in `settings.encoder.model`:
//! a path (relative to the bot folder, or absolute) or a Hugging Face id
//! `org/name` looked up in the local Hugging Face cache, where
//! `lepton model pull` and Python's `huggingface_hub` put downloads.

use std::path::{Path, PathBuf};

/// The files an encoder folder must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Why a model named in the settings has no usable folder.
#[derive(Debug, thiserror::Error)]
pub enum ModelLookupError {
    #[error("model folder `{spec}` not found at {}; fix the path, or name a Hugging Face model as `org/name` and run `lepton model pull org/name`", path.display())]
    NoFolder { spec: String, path: PathBuf },
    #[error("model `{spec}` is neither a folder at {} nor in the Hugging Face cache at {}; run `lepton model pull {spec}`, or fix the path", path.display(), cache.display())]
    NotPulled { spec: String, path: PathBuf, cache: PathBuf },
    #[error("model folder {} lacks {}; download the model again (`lepton model pull ORG/NAME`) or give a complete folder", path.display(), missing.join(", "))]
    Incomplete { path: PathBuf, missing: Vec<&'static str> },
}

/// The local Hugging Face hub cache: `models--org--name/snapshots/REV/` folders
/// with `refs/main` naming the current snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubCache {
    pub path: PathBuf,
}

impl HubCache {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`, as
    /// Hugging Face's own tools choose it.
    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Like [`HubCache::from_env`] with `env` in place of the process's environment.
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        if let Some(path) = set("HF_HUB_CACHE") {
            return Self::new(path);
        }
        if let Some(home) = set("HF_HOME") {
            return Self::new(Path::new(&home).join("hub"));
        }
        let home = set("HOME").unwrap_or_else(|| ".".to_owned());
        Self::new(Path::new(&home).join(".cache").join("huggingface").join("hub"))
    }

    /// The folder of a model repository: `models--org--name`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.path.join(format!("models--{}", repo.replace('/', "--")))
    }

    /// The snapshot that `refs/REVISION` names, when it is there.
    pub fn snapshot(&self, repo: &str, revision: &str) -> Option<PathBuf> {
        let repo_dir = self.repo_dir(repo);
        let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision)).ok()?;
        let folder = repo_dir.join("snapshots").join(commit.trim());
        folder.is_dir().then_some(folder)
    }
}

/// Whether `spec` reads as a Hugging Face id: `org/name`, letters, digits, `-`,
/// `_` and `.`, neither part starting with a dot.
pub fn is_hub_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    let (Some(org), Some(name), None) = (parts.next(), parts.next(), parts.next()) else { return false };
    let valid = |part: &str| !part.is_empty() && !part.starts_with('.') && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid(org) && valid(name)
}

/// Finds the model folder for `spec`: a folder at the path (relative to
/// `bot_dir`) first, else, for an `org/name` id, the snapshot `refs/main`
/// names in `cache`. The folder must hold every file of [`MODEL_FILES`].
pub fn resolve_model(bot_dir: &Path, spec: &str, cache: &HubCache) -> Result<PathBuf, ModelLookupError> {
    let path = bot_dir.join(spec);
    let folder = if path.is_dir() {
        path
    } else if is_hub_id(spec) {
        cache.snapshot(spec, "main").ok_or_else(|| ModelLookupError::NotPulled { spec: spec.to_owned(), path, cache: cache.path.clone() })?
    } else {
        return Err(ModelLookupError::NoFolder { spec: spec.to_owned(), path });
    };

    let missing: Vec<&'static str> = MODEL_FILES.into_iter().filter(|file| !folder.join(file).is_file()).collect();
    if !missing.is_empty() {
        return Err(ModelLookupError::Incomplete { path: folder, missing });
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> anyhow::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("lepton-model-folder-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn write_model(folder: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(folder)?;
        for file in MODEL_FILES {
            std::fs::write(folder.join(file), "{}")?;
        }
        Ok(())
    }

    #[test]
    fn hub_id_accepts_org_and_name_only() -> anyhow::Result<()> {
        assert!(is_hub_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(is_hub_id("intfloat/multilingual-e5-small"));
        assert!(!is_hub_id("models/a/b"), "three parts read as a hub id");
        assert!(!is_hub_id("../models"), "a parent folder read as a hub id");
        assert!(!is_hub_id("/abs/path"), "an absolute path read as a hub id");
        assert!(!is_hub_id("minilm"), "a single name read as a hub id");
        Ok(())
    }

    #[test]
    fn cache_follows_hf_variables_in_order() -> anyhow::Result<()> {
        let all = |name: &str| match name {
            "HF_HUB_CACHE" => Some("/c".to_owned()),
            "HF_HOME" => Some("/h".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(HubCache::from_lookup(&all).path, PathBuf::from("/c"));
        let home = |name: &str| (name != "HF_HUB_CACHE").then(|| all(name)).flatten();
        assert_eq!(HubCache::from_lookup(&home).path, PathBuf::from("/h/hub"));
        let user = |name: &str| (name == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(HubCache::from_lookup(&user).path, PathBuf::from("/home/u/.cache/huggingface/hub"));
        Ok(())
    }

    #[test]
    fn resolve_prefers_a_folder_in_the_bot() -> anyhow::Result<()> {
        let dir = temp_dir("bot-folder")?;
        write_model(&dir.join("org/name"))?;
        let cache = HubCache::new(dir.join("cache"));
        let found = resolve_model(&dir, "org/name", &cache)?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(found, dir.join("org/name"));
        Ok(())
    }

    #[test]
    fn resolve_finds_the_main_snapshot_in_the_cache() -> anyhow::Result<()> {
        let dir = temp_dir("cache")?;
        let cache = HubCache::new(dir.join("hub"));
        let repo_dir = cache.repo_dir("org/name");
        write_model(&repo_dir.join("snapshots/abc123"))?;
        std::fs::create_dir_all(repo_dir.join("refs"))?;
        std::fs::write(repo_dir.join("refs/main"), "abc123")?;
        let found = resolve_model(&dir.join("bot"), "org/name", &cache)?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(found, repo_dir.join("snapshots/abc123"));
        Ok(())
    }

    #[test]
    fn resolve_tells_to_pull_a_missing_hub_model() -> anyhow::Result<()> {
        let dir = temp_dir("not-pulled")?;
        let error = resolve_model(&dir, "org/name", &HubCache::new(dir.join("hub"))).err().map(|e| e.to_string()).unwrap_or_default();
        std::fs::remove_dir_all(&dir)?;
        assert!(error.contains("run `lepton model pull org/name`"), "message: {error}");
        Ok(())
    }

    #[test]
    fn resolve_names_the_missing_files() -> anyhow::Result<()> {
        let dir = temp_dir("incomplete")?;
        std::fs::create_dir_all(dir.join("m"))?;
        std::fs::write(dir.join("m/config.json"), "{}")?;
        let error = resolve_model(&dir, "m", &HubCache::new(dir.join("hub"))).err().map(|e| e.to_string()).unwrap_or_default();
        std::fs::remove_dir_all(&dir)?;
        assert!(error.contains("lacks tokenizer.json, model.safetensors"), "message: {error}");
        Ok(())
    }
}
