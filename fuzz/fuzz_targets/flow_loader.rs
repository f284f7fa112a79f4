//! The YAML bot loader: `lepton_flows::validate_and_load` on a bot folder
//! written from the input, the rendering of its report, and the conversation
//! tests of a bot that loads.
//!
//! The input is split at NUL bytes into up to 40 files. A part that starts
//! with `md:` becomes a Markdown article in `articles/`, one that starts with
//! `test:` a conversation test in `tests/`, and any other part a YAML file at
//! the top of the folder. An input without NUL is one YAML file, so a bot file
//! on its own is a valid seed.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const MAX_FILES: usize = 40;

/// One folder per process, emptied before each input.
fn bot_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        base.join(format!("lepton-fuzz-flows-{}", std::process::id()))
    })
}

fn write_bot(dir: &Path, data: &[u8]) {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("cannot empty the fuzz bot folder");
    }
    for sub in ["articles", "tests"] {
        fs::create_dir_all(dir.join(sub)).expect("cannot create the fuzz bot folder");
    }
    for (index, part) in data.split(|byte| *byte == 0).take(MAX_FILES).enumerate() {
        let (path, bytes) = if let Some(markdown) = part.strip_prefix(b"md:") {
            (dir.join("articles").join(format!("article{index}.md")), markdown)
        } else if let Some(test) = part.strip_prefix(b"test:") {
            (dir.join("tests").join(format!("test{index}.yml")), test)
        } else {
            (dir.join(format!("part{index}.yml")), part)
        };
        fs::write(path, bytes).expect("cannot write a fuzz bot file");
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = bot_dir();
    write_bot(dir, data);

    let (report, loaded) = lepton_flows::validate_and_load(dir);
    let rendered = report.to_string();
    let _ = report.summary();
    for diagnostic in report.errors().chain(report.warnings()) {
        let _ = diagnostic.offending_text();
    }
    assert_eq!(loaded.is_some(), !report.has_errors(), "a bot loaded although the report has errors:\n{rendered}");

    if let Some(loaded) = loaded {
        if let Err(tests_report) = lepton_flows::load_conversation_tests(dir, &loaded.bot) {
            let _ = tests_report.to_string();
        }
    }
});
