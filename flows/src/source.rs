//! Finding and reading the files of a bot folder, and hashing them.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::diagnostic::Diagnostic;
use crate::LoadError;

/// The largest file the loader reads, YAML or Markdown. Bot files are a few kilobytes
/// to a few hundred; the limit keeps a stray dump or log file from filling the memory.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// A file read from the bot folder.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The path shown in diagnostics: the bot folder as the caller gave it, joined with `relative`.
    pub shown: PathBuf,
    pub text: String,
    /// The byte offset where each line starts.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(shown: PathBuf, text: String) -> Self {
        let breaks = text.match_indices('\n').map(|(at, _)| at + 1);
        let line_starts = std::iter::once(0).chain(breaks).collect();
        Self { shown, text, line_starts }
    }

    /// Returns the text of a 1-based line without its line break, or "" past the end.
    pub fn line(&self, line: usize) -> &str {
        let Some(&start) = line.checked_sub(1).and_then(|index| self.line_starts.get(index)) else { return "" };
        let end = self.line_starts.get(line).map_or(self.text.len(), |next| next - 1);
        let text = &self.text[start..end];
        text.strip_suffix('\r').unwrap_or(text)
    }
}

/// Reads a file of at most [`MAX_FILE_BYTES`]; returns `None` when it is larger.
pub(crate) fn read_limited(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    let io_error = |source: io::Error| LoadError::Io { path: path.to_path_buf(), source };
    let file = fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Creates the error for a file larger than [`MAX_FILE_BYTES`].
pub(crate) fn too_large(path: PathBuf) -> Diagnostic {
    let message = format!("file is larger than {} MiB; split it into smaller files", MAX_FILE_BYTES / (1024 * 1024));
    Diagnostic::error_at_path(path, message)
}

/// Lists files under `root` whose names end in one of `extensions`, recursively, in
/// sorted order of their relative paths. Entries whose names start with `.` are skipped
/// and symbolic links to folders are not followed. Warns in `warnings` about entries
/// that are skipped although they look like part of the bot: links that cannot be
/// followed, links to folders, and folders or special files with a wanted extension.
pub(crate) fn find_files(root: &Path, extensions: &[&str], warnings: &mut Vec<Diagnostic>) -> Result<Vec<PathBuf>, LoadError> {
    find_files_skipping(root, extensions, &[], warnings)
}

/// Lists files like [`find_files`], leaving out the entries directly under `root`
/// whose names are in `skipped` (such as the `tests` folder of a bot), without warnings.
pub(crate) fn find_files_skipping(root: &Path, extensions: &[&str], skipped: &[&str], warnings: &mut Vec<Diagnostic>) -> Result<Vec<PathBuf>, LoadError> {
    let mut found = Vec::new();
    walk(root, extensions, skipped, &mut found, warnings)?;
    found.sort();
    Ok(found)
}

fn walk(folder: &Path, extensions: &[&str], skipped: &[&str], found: &mut Vec<PathBuf>, warnings: &mut Vec<Diagnostic>) -> Result<(), LoadError> {
    let io_error = |source: io::Error| LoadError::Io { path: folder.to_path_buf(), source };
    for entry in fs::read_dir(folder).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || skipped.contains(&name.as_ref()) {
            continue;
        }
        let path = entry.path();
        let wanted = extensions.iter().any(|ext| name.ends_with(&format!(".{ext}")));
        let file_type = entry.file_type().map_err(io_error)?;
        if file_type.is_dir() {
            if wanted {
                let message = format!("`{name}` is a folder, not a file; its files are searched like any folder's, so rename it to avoid confusion");
                warnings.push(Diagnostic::warning_at_path(path.clone(), message));
            }
            walk(&path, extensions, &[], found, warnings)?;
            continue;
        }
        if file_type.is_symlink() {
            if let Some(warning) = check_link(&path, wanted) {
                warnings.push(warning);
                continue;
            }
        } else if !file_type.is_file() {
            if wanted {
                warnings.push(Diagnostic::warning_at_path(path, "not a regular file, so it is skipped; replace it with a file".to_owned()));
            }
            continue;
        }
        if wanted {
            found.push(path);
        }
    }
    Ok(())
}

/// Returns a warning for a symbolic link that is skipped: one that cannot be followed
/// (a loop, a missing target), one to a folder, or one with a wanted extension that
/// leads to something other than a file.
fn check_link(path: &Path, wanted: bool) -> Option<Diagnostic> {
    let message = match fs::metadata(path) {
        Err(error) => format!("symbolic link cannot be followed, so it is skipped: {error}; fix its target or remove it"),
        Ok(metadata) if metadata.is_dir() => {
            "symbolic link to a folder is not followed, so its files are skipped; replace the link with a folder or copy the files into the bot folder".to_owned()
        }
        Ok(metadata) if wanted && !metadata.is_file() => "symbolic link to something other than a file is skipped; point it at a file".to_owned(),
        Ok(_) => return None,
    };
    Some(Diagnostic::warning_at_path(path.to_path_buf(), message))
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
