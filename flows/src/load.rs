//! The loading pipeline: read the files, parse them, gather the sections, convert
//! each section, then report what is never used and loops that never wait.

use std::path::{Path, PathBuf};

use bot_core::engine::RESERVED_RESPONSES;
use bot_core::BotDefinition;

use crate::conversation_tests::TESTS_FOLDER;
use crate::convert::{Converter, Unparsed};
use crate::cx::Cx;
use crate::diagnostic::{Diagnostic, Severity};
use crate::examples::ExamplePlaces;
use crate::loops::report_loops_without_ask;
use crate::sections::Sections;
use crate::source::{find_files_skipping, read_limited, relative_path, too_large, SourceFile, SourcesHasher};
use crate::tree::{parse, Node};
use crate::LoadError;

pub(crate) struct Analysis {
    pub bot: BotDefinition,
    /// Errors and warnings, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    pub sources_hash: String,
    pub example_places: ExamplePlaces,
}

pub(crate) fn analyse(dir: &Path) -> Result<Analysis, LoadError> {
    if !dir.exists() {
        return Err(LoadError::NotFound { path: dir.to_path_buf() });
    }
    if !dir.is_dir() {
        return Err(LoadError::NotAFolder { path: dir.to_path_buf() });
    }
    let mut hasher = SourcesHasher::default();
    let mut diagnostics = Vec::new();
    let sources = read_sources(dir, &mut hasher, &mut diagnostics)?;

    let mut cx = Cx::new(&sources);
    let mut unparsed = Unparsed::default();
    let mut documents: Vec<Node> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let parsed = parse(index, &source.text);
        for problem in parsed.problems {
            cx.error(problem.loc, problem.message);
        }
        if parsed.syntax_error {
            unparsed.add(&source.text);
        } else if parsed.documents.iter().all(Node::is_null) {
            let message = "file is empty or contains only comments; add a section such as `intents:` or remove the file".to_owned();
            diagnostics.push(Diagnostic::warning_at_path(source.shown.clone(), message));
        }
        documents.extend(parsed.documents);
    }
    let mut sections = Sections::default();
    for document in &documents {
        sections.add_document(&mut cx, document);
    }

    let mut converter = Converter::new(cx, &sections, unparsed);
    let bot = convert_all(&mut converter, dir, &mut hasher)?;
    report_missing_settings(&mut converter, dir, sources.is_empty());
    report_unused(&mut converter);
    report_loops_without_ask(&mut converter, &bot.flows);

    diagnostics.append(&mut converter.cx.diagnostics);
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diagnostics.dedup();
    let example_places = std::mem::take(&mut converter.example_places);
    Ok(Analysis { bot, diagnostics, sources_hash: hasher.finish(), example_places })
}

/// Reads every YAML file outside the `tests` folder, which holds conversation tests
/// rather than the bot. Files that are too large or not UTF-8 are reported and skipped.
fn read_sources(dir: &Path, hasher: &mut SourcesHasher, diagnostics: &mut Vec<Diagnostic>) -> Result<Vec<SourceFile>, LoadError> {
    let mut sources = Vec::new();
    for path in find_files_skipping(dir, &["yml", "yaml"], &[TESTS_FOLDER], diagnostics)? {
        let Some(bytes) = read_limited(&path)? else {
            diagnostics.push(too_large(path));
            continue;
        };
        let relative = relative_path(dir, &path);
        hasher.add(&relative, &bytes);
        match String::from_utf8(bytes) {
            Ok(text) => sources.push(SourceFile::new(path, text)),
            Err(error) => {
                let valid_up_to = error.utf8_error().valid_up_to();
                diagnostics.push(invalid_utf8(path, error.as_bytes(), valid_up_to));
            }
        }
    }
    Ok(sources)
}

/// Reports the first byte of `bytes` that is not UTF-8, at its line and column.
pub(crate) fn invalid_utf8(path: PathBuf, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    let before = &bytes[..valid_up_to];
    let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
    let line_start = before.iter().rposition(|byte| *byte == b'\n').map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    let line_end = bytes[line_start..].iter().position(|byte| *byte == b'\n').map_or(bytes.len(), |at| line_start + at);
    let text = String::from_utf8_lossy(&bytes[line_start..line_end]);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let message = format!(
        "invalid UTF-8 byte 0x{:02X}; save the file as UTF-8 (it may be in another encoding, such as GBK)",
        bytes[valid_up_to]
    );
    Diagnostic::new(Severity::Error, path, (line, column), 1, message, text)
}

fn convert_all(converter: &mut Converter<'_, '_>, dir: &Path, hasher: &mut SourcesHasher) -> Result<BotDefinition, LoadError> {
    let (settings, folders) = converter.convert_settings(dir);
    let default_lang = settings.default_language();
    let slots = converter.convert_slots();
    let responses = converter.convert_responses();
    let intents = converter.convert_intents();
    let flows = converter.convert_flows();
    let faq = converter.convert_faq(&default_lang);
    let articles = converter.read_articles(dir, &folders, &default_lang, hasher)?;
    Ok(BotDefinition { settings, intents, responses, slots, flows, faq, articles })
}

fn report_missing_settings(converter: &mut Converter<'_, '_>, dir: &Path, no_files: bool) {
    if converter.sections.settings.is_some() || converter.unparsed.mentions("settings") {
        return;
    }
    let message = if no_files {
        "no *.yml or *.yaml file found; a bot folder needs at least one, such as bot.yml with a `settings:` section"
    } else {
        "no file defines `settings:`; add it to one file, with at least `languages: [en]`"
    };
    converter.cx.error_at_path(dir.to_path_buf(), message);
}

/// Warns about responses, slots and flows that nothing uses. A name written in a file
/// with a syntax error is left out, because that file may use it.
fn report_unused(converter: &mut Converter<'_, '_>) {
    let sections = converter.sections;
    let unparsed = &converter.unparsed;
    for definition in &sections.responses.definitions {
        let name = definition.name.as_str();
        let used = converter.usage.responses.contains(name) || RESERVED_RESPONSES.contains(&name) || unparsed.mentions(name);
        if !used {
            let message = format!("response `{name}` is never used: no intent, `say` step or `ask` step refers to it");
            converter.cx.warning(definition.key.loc, message);
        }
    }
    for definition in &sections.slots.definitions {
        let name = definition.name.as_str();
        if !converter.usage.filled_slots.contains(name) && !unparsed.mentions(name) {
            let message = format!("slot `{name}` is never filled: no `ask` step or HTTP `save` sets it");
            converter.cx.warning(definition.key.loc, message);
        }
    }
    for definition in &sections.flows.definitions {
        let name = definition.name.as_str();
        if !converter.usage.flows.contains(name) && !unparsed.mentions(name) {
            let message = format!("flow `{name}` is never started: no intent or target leads to it");
            converter.cx.warning(definition.key.loc, message);
        }
    }
}
