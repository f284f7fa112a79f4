//! The loading pipeline: read the files, parse them, gather the sections, convert
//! each section, then report what is never used.

use std::path::Path;

use bot_core::engine::RESERVED_RESPONSES;
use bot_core::BotDefinition;

use crate::convert::Converter;
use crate::cx::Cx;
use crate::diagnostic::Diagnostic;
use crate::sections::Sections;
use crate::source::{find_files, relative_path, SourceFile, SourcesHasher};
use crate::tree::{parse, Node};
use crate::LoadError;

pub(crate) struct Analysis {
    pub bot: BotDefinition,
    /// Errors and warnings, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    pub sources_hash: String,
}

pub(crate) fn analyse(dir: &Path) -> Result<Analysis, LoadError> {
    if !dir.is_dir() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder");
        return Err(LoadError::Io { path: dir.to_path_buf(), source });
    }
    let mut hasher = SourcesHasher::default();
    let mut diagnostics = Vec::new();
    let sources = read_sources(dir, &mut hasher, &mut diagnostics)?;

    let mut cx = Cx::new(&sources);
    let mut complete = true;
    let mut documents: Vec<Node> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let parsed = parse(index, &source.text);
        complete &= !parsed.syntax_error;
        for problem in parsed.problems {
            cx.error(problem.loc, problem.message);
        }
        documents.extend(parsed.documents);
    }
    let mut sections = Sections::default();
    for document in &documents {
        sections.add_document(&mut cx, document);
    }

    let mut converter = Converter::new(cx, &sections, complete);
    let bot = convert_all(&mut converter, dir, &mut hasher)?;
    if complete {
        report_missing_settings(&mut converter, dir, sources.is_empty());
        report_unused(&mut converter);
    }

    diagnostics.append(&mut converter.cx.diagnostics);
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok(Analysis { bot, diagnostics, sources_hash: hasher.finish() })
}

/// Reads every YAML file; files that are not UTF-8 are reported and skipped.
fn read_sources(dir: &Path, hasher: &mut SourcesHasher, diagnostics: &mut Vec<Diagnostic>) -> Result<Vec<SourceFile>, LoadError> {
    let mut sources = Vec::new();
    for path in find_files(dir, &["yml", "yaml"])? {
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Io { path: path.clone(), source })?;
        let relative = relative_path(dir, &path);
        hasher.add(&relative, &bytes);
        match String::from_utf8(bytes) {
            Ok(text) => sources.push(SourceFile { shown: path, text }),
            Err(_) => diagnostics.push(Diagnostic::error_at_path(path, "file is not valid UTF-8; save it as UTF-8".to_owned())),
        }
    }
    Ok(sources)
}

fn convert_all(converter: &mut Converter<'_, '_>, dir: &Path, hasher: &mut SourcesHasher) -> Result<BotDefinition, LoadError> {
    let (settings, folders) = converter.convert_settings();
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
    if converter.sections.settings.is_some() {
        return;
    }
    let message = if no_files {
        "no *.yml or *.yaml file found; a bot folder needs at least one, such as bot.yml with a `settings:` section"
    } else {
        "no file defines `settings:`; add it to one file, with at least `languages: [en]`"
    };
    converter.cx.error_at_path(dir.to_path_buf(), message);
}

/// Warns about responses, slots and flows that nothing uses.
fn report_unused(converter: &mut Converter<'_, '_>) {
    let sections = converter.sections;
    for definition in &sections.responses.definitions {
        let name = definition.name.as_str();
        if !converter.usage.responses.contains(name) && !RESERVED_RESPONSES.contains(&name) {
            let message = format!("response `{name}` is never used: no intent, `say` step or `ask` step refers to it");
            converter.cx.warning(definition.key.loc, message);
        }
    }
    for definition in &sections.slots.definitions {
        if !converter.usage.filled_slots.contains(&definition.name) {
            let message = format!("slot `{}` is never filled: no `ask` step or HTTP `save` sets it", definition.name);
            converter.cx.warning(definition.key.loc, message);
        }
    }
    for definition in &sections.flows.definitions {
        if !converter.usage.flows.contains(&definition.name) {
            let message = format!("flow `{}` is never started: no intent or target leads to it", definition.name);
            converter.cx.warning(definition.key.loc, message);
        }
    }
}
