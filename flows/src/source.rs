//! Finding and reading the files of a bot folder, and hashing them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::LoadError;

/// A file read from the bot folder.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The path shown in diagnostics: the bot folder as the caller gave it, joined with `relative`.
    pub shown: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// Returns the text of a 1-based line without its line break, or "" past the end.
    pub fn line(&self, line: usize) -> &str {
        let Some(index) = line.checked_sub(1) else { return "" };
        let text = self.text.lines().nth(index).unwrap_or("");
        text.strip_suffix('\r').unwrap_or(text)
    }
}

/// Lists files under `root` whose names end in one of `extensions`, recursively, in
/// sorted order of their relative paths. Entries whose names start with `.` are skipped
/// and symbolic links to folders are not followed.
pub(crate) fn find_files(root: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, LoadError> {
    let mut found = Vec::new();
    walk(root, extensions, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(folder: &Path, extensions: &[&str], found: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io_error = |source: io::Error| LoadError::Io { path: folder.to_path_buf(), source };
    for entry in fs::read_dir(folder).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_error)?;
        if file_type.is_dir() {
            walk(&path, extensions, found)?;
            continue;
        }
        let is_file = file_type.is_file() || (file_type.is_symlink() && path.is_file());
        if is_file && extensions.iter().any(|ext| name.ends_with(&format!(".{ext}"))) {
            found.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `bot_dir`, with `/` separators on every platform.
pub(crate) fn relative_path(bot_dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(bot_dir).unwrap_or(path);
    let parts: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

/// A SHA-256 over every file's relative path and bytes, in sorted path order, as
/// lowercase hex. It changes whenever a file is added, removed, renamed or edited.
#[derive(Default)]
pub(crate) struct SourcesHasher {
    entries: Vec<(String, Vec<u8>)>,
}

impl SourcesHasher {
    pub fn add(&mut self, relative: &str, bytes: &[u8]) {
        self.entries.push((relative.to_owned(), bytes.to_vec()));
    }

    pub fn finish(mut self) -> String {
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut hasher = Sha256::new();
        for (relative, bytes) in &self.entries {
            hasher.update((relative.len() as u64).to_le_bytes());
            hasher.update(relative.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
