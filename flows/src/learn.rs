//! Appending an intent example to a bot folder's YAML, for agents who teach the
//! bot from a conversation.
//!
//! An example of an existing intent goes into the file that defines the intent,
//! at the end of its list for the language (a new list when the intent has none
//! for it). A new intent goes into [`LEARNED_FILE`] and hands the customer to a
//! person through the flow [`LEARNED_FLOW`] until someone writes a response
//! for it. The edit inserts lines and leaves every other byte of the
//! file as it was. The bot folder is then validated, and a change that makes it
//! invalid is undone, byte for byte.

mod edit;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bot_core::bot::KNOWLEDGE_INTENT;
use bot_core::{IntentId, Lang};

use crate::conversation_tests::TESTS_FOLDER;
use crate::cx::is_name_char;
use crate::diagnostic::Diagnostic;
use crate::intents::normalise_example;
use crate::source::{find_files_skipping, relative_path};
use crate::tree::Node;
use crate::{validate_and_load, LoadError, LoadedBot};

use edit::{Insertion, Lines, Unplaceable};

/// The file that new intents are added to, relative to the bot folder.
pub const LEARNED_FILE: &str = "intents/learned.yml";

/// The flow a new intent starts: a handoff to a person, because no response
/// has been written for the intent yet.
pub const LEARNED_FLOW: &str = "learned_handoff";

/// The maximum length of an example, in characters.
pub const MAX_EXAMPLE_CHARS: usize = 500;

/// The maximum length of a new intent name, in characters.
pub const MAX_INTENT_NAME_CHARS: usize = 64;

/// The header of a new [`LEARNED_FILE`].
const LEARNED_HEADER: &str = "\
# Intents added from the support console. Each example is a customer message
# that an agent marked as meaning the intent. A new intent starts the flow
# `learned_handoff`, which hands the customer to a person; replace its
# `flow: learned_handoff` with a `response:` or another flow once it has an
# answer, and add more examples (5 or more per language).
";

/// Serialises appends within this process, so that two agents' examples do not
/// edit the same file from the same original.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// An example to add.
#[derive(Clone, Copy, Debug)]
pub struct NewExample<'a> {
    pub intent: &'a str,
    /// True to create the intent, false to add to an existing one.
    pub new_intent: bool,
    pub lang: &'a Lang,
    /// The customer's message. Leading and trailing whitespace is dropped.
    pub text: &'a str,
}

/// The place an example was written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedExample {
    pub intent: IntentId,
    /// The file, relative to the bot folder, with `/` separators.
    pub file: PathBuf,
    /// 1-based line of the example.
    pub line: usize,
    /// True when the intent was created.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("intent `{intent}` not found; pick one of the bot's intents or create it as a new intent")]
    UnknownIntent { intent: String },
    #[error("invalid intent name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("language `{lang}` is not in settings.languages ({declared}); add it there first")]
    UnsupportedLanguage { lang: Lang, declared: String },
    #[error("invalid example: {reason}")]
    InvalidText { reason: String },
    /// The same text (ignoring case and runs of whitespace) is already an example
    /// of `intent`, which may be another intent than the one requested.
    #[error("the message is already an example of intent `{intent}`")]
    Duplicate { intent: String },
    /// The bot folder had errors before the change, so nothing was written.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The change made the bot invalid, so the file was restored.
    #[error("adding the example would make the bot invalid, so {} was restored: {}", file.display(), first_error(diagnostics))]
    Rejected { file: PathBuf, diagnostics: Vec<Diagnostic> },
    /// The file is written in a way the edit cannot extend, such as a flow-style mapping.
    #[error("cannot add the example to {}: {reason}", file.display())]
    Unplaceable { file: PathBuf, reason: String },
    #[error("failed to write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn first_error(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().find(|d| d.is_error()).map_or_else(String::new, ToString::to_string)
}

/// Appends `example` to the bot in `dir`, validates the result and returns where
/// the example was written. Nothing is changed when an error is returned: a
/// file whose edit made the bot invalid is restored to its original bytes, and
/// a file the edit created is removed.
///
/// This blocks on file I/O, and appends in this process run one at a time.
pub fn append_example(dir: &Path, example: NewExample<'_>) -> Result<AppendedExample, AppendError> {
    let _appending = APPEND_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let text = check_text(example.text)?;
    let bot = crate::load_bot(dir)?;
    check_language(&bot, example.lang)?;
    let intent = check_intent(&bot, example.intent, example.new_intent)?;
    check_duplicate(&bot, text)?;

    let quoted = edit::quote(text);
    let planned = if example.new_intent {
        plan_new_intent(dir, &bot, &intent, example.lang, &quoted)?
    } else {
        plan_existing_intent(dir, &intent, example.lang, &quoted)?
    };
    let written = planned.write()?;
    match confirm(dir, &intent, example.lang, text, &planned.path) {
        Ok(line) => {
            let file = PathBuf::from(relative_path(dir, &planned.path));
            Ok(AppendedExample { intent, file, line, created: example.new_intent })
        }
        Err(error) => {
            written.undo()?;
            Err(error)
        }
    }
}

fn check_text(text: &str) -> Result<&str, AppendError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppendError::InvalidText { reason: "the message is empty".to_owned() });
    }
    let chars = text.chars().count();
    if chars > MAX_EXAMPLE_CHARS {
        let reason = format!("the message has {chars} characters, more than the {MAX_EXAMPLE_CHARS} an example may have");
        return Err(AppendError::InvalidText { reason });
    }
    Ok(text)
}

fn check_language(bot: &LoadedBot, lang: &Lang) -> Result<(), AppendError> {
    let languages = &bot.bot.settings.languages;
    if languages.contains(lang) {
        return Ok(());
    }
    let declared = languages.iter().map(Lang::as_str).collect::<Vec<_>>().join(", ");
    Err(AppendError::UnsupportedLanguage { lang: lang.clone(), declared })
}

fn check_intent(bot: &LoadedBot, name: &str, new_intent: bool) -> Result<IntentId, AppendError> {
    let intent = IntentId::new(name);
    let exists = bot.bot.intents.contains_key(&intent);
    if !new_intent {
        return if exists { Ok(intent) } else { Err(AppendError::UnknownIntent { intent: name.to_owned() }) };
    }
    let invalid = |reason: &str| AppendError::InvalidName { name: name.to_owned(), reason: reason.to_owned() };
    if exists {
        return Err(invalid("an intent with this name exists; add the example to it instead"));
    }
    if name.chars().count() > MAX_INTENT_NAME_CHARS {
        return Err(AppendError::InvalidName {
            name: name.to_owned(),
            reason: format!("use at most {MAX_INTENT_NAME_CHARS} characters"),
        });
    }
    if !name.chars().next().is_some_and(char::is_alphanumeric) {
        return Err(invalid("start it with a letter or digit (names starting with `_` are reserved for built-in intents)"));
    }
    if !name.chars().all(is_name_char) {
        return Err(invalid("use only letters, digits, `_` and `-`"));
    }
    Ok(intent)
}

/// Rejects a text that is already an example of any intent or a FAQ question,
/// compared as the loader compares examples.
fn check_duplicate(bot: &LoadedBot, text: &str) -> Result<(), AppendError> {
    let wanted = normalise_example(text);
    let found = bot.bot.training_examples().into_iter().find(|(example, _)| normalise_example(example) == wanted);
    match found {
        Some((_, intent)) if intent.as_str() == KNOWLEDGE_INTENT => {
            Err(AppendError::Duplicate { intent: format!("{KNOWLEDGE_INTENT} (a FAQ question)") })
        }
        Some((_, intent)) => Err(AppendError::Duplicate { intent: intent.to_string() }),
        None => Ok(()),
    }
}

/// An edit of one file, ready to write.
struct Planned {
    path: PathBuf,
    /// The bytes before the edit, `None` when the file does not exist yet.
    original: Option<String>,
    edited: String,
}

/// A written edit, which can be undone.
struct Written<'p> {
    planned: &'p Planned,
    /// Folders the write created, deepest first.
    created_folders: Vec<PathBuf>,
}

impl Planned {
    fn write(&self) -> Result<Written<'_>, AppendError> {
        let created_folders = create_parents(&self.path)?;
        write_atomically(&self.path, self.edited.as_bytes())?;
        Ok(Written { planned: self, created_folders })
    }
}

impl Written<'_> {
    fn undo(self) -> Result<(), AppendError> {
        let path = &self.planned.path;
        match &self.planned.original {
            Some(original) => write_atomically(path, original.as_bytes())?,
            None => fs::remove_file(path).map_err(|source| AppendError::Io { path: path.clone(), source })?,
        }
        for folder in &self.created_folders {
            // Only an empty folder is removed, so one that gained other files stays.
            let _ = fs::remove_dir(folder);
        }
        Ok(())
    }
}

fn create_parents(path: &Path) -> Result<Vec<PathBuf>, AppendError> {
    let mut missing = Vec::new();
    let mut folder = path.parent();
    while let Some(current) = folder.filter(|f| !f.as_os_str().is_empty() && !f.exists()) {
        missing.push(current.to_path_buf());
        folder = current.parent();
    }
    if let Some(deepest) = missing.first() {
        fs::create_dir_all(deepest).map_err(|source| AppendError::Io { path: deepest.clone(), source })?;
    }
    Ok(missing)
}

/// Writes `bytes` to a hidden temporary file beside `path`, which the loader
/// skips, flushes it to disk and renames it over `path`. A reader therefore
/// gets the old file or the new one, never a part. The file keeps its permissions.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AppendError> {
    let io_error = |source| AppendError::Io { path: path.to_path_buf(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        if let Ok(metadata) = fs::metadata(path) {
            file.set_permissions(metadata.permissions())?;
        }
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(io_error)
}

/// Loads and validates the edited folder, and returns the line of the new example.
fn confirm(dir: &Path, intent: &IntentId, lang: &Lang, text: &str, path: &Path) -> Result<usize, AppendError> {
    let (report, loaded) = validate_and_load(dir);
    let Some(loaded) = loaded else {
        return Err(AppendError::Rejected { file: path.to_path_buf(), diagnostics: report.diagnostics });
    };
    let landed = loaded.bot.intents.get(intent).and_then(|i| i.examples.get(lang)).is_some_and(|texts| texts.iter().any(|t| t == text));
    let place = loaded.example_places.get(intent, text);
    match place {
        Some(place) if landed && place.file == path => Ok(place.line),
        _ => Err(AppendError::Unplaceable {
            file: path.to_path_buf(),
            reason: format!("the edited file did not load the example under intent `{intent}` and language `{lang}`, so it was restored"),
        }),
    }
}

/// Plans the edit that adds an example to an existing intent, in the file that defines it.
fn plan_existing_intent(dir: &Path, intent: &IntentId, lang: &Lang, quoted: &str) -> Result<Planned, AppendError> {
    let (path, text, definition) = find_definition(dir, intent)?;
    let unplaceable = |reason: String| AppendError::Unplaceable { file: path.clone(), reason };
    let lines = Lines::new(&text);
    let examples = definition
        .entries()
        .and_then(|entries| entries.iter().find(|e| e.key.scalar().is_some_and(|k| k.text == "examples")))
        .map(|entry| &entry.value)
        .ok_or_else(|| unplaceable(format!("intent `{intent}` has no `examples:`")))?;
    let list = examples.entries().unwrap_or_default().iter().find(|e| e.key.scalar().is_some_and(|k| k.text == lang.as_str()));

    let insertion = match list {
        Some(entry) => edit::append_item(&lines, &entry.value, quoted),
        None => {
            let indent = edit::item_indent(&lines, examples);
            let entry = [(0, format!("{}:", edit::key(lang.as_str()))), (indent, format!("- {quoted}"))];
            edit::append_entry(&lines, examples, &entry)
        }
    }
    .map_err(|Unplaceable(reason)| unplaceable(reason))?;
    let edited = insertion.apply(&text);
    Ok(Planned { path, original: Some(text), edited })
}

/// Finds the first definition of `intent` in the order the loader reads files,
/// and returns its file, the file's text and the intent's value.
fn find_definition(dir: &Path, intent: &IntentId) -> Result<(PathBuf, String, Node), AppendError> {
    let mut ignored = Vec::new();
    for path in find_files_skipping(dir, &["yml", "yaml"], &[TESTS_FOLDER], &mut ignored)? {
        let text = fs::read_to_string(&path).map_err(|source| AppendError::Io { path: path.clone(), source })?;
        let Ok(documents) = edit::parse_documents(&text) else { continue };
        let Some((_, intents)) = edit::top_level(&documents, "intents") else { continue };
        let found = intents.entries().unwrap_or_default().iter().find(|e| e.key.scalar().is_some_and(|k| k.text == intent.as_str()));
        if let Some(entry) = found {
            let value = entry.value.clone();
            return Ok((path, text, value));
        }
    }
    Err(AppendError::UnknownIntent { intent: intent.to_string() })
}

/// Plans the edit that adds a new intent to [`LEARNED_FILE`], and the flow
/// [`LEARNED_FLOW`] when the bot does not define it yet.
fn plan_new_intent(dir: &Path, bot: &LoadedBot, intent: &IntentId, lang: &Lang, quoted: &str) -> Result<Planned, AppendError> {
    let path = dir.join(LEARNED_FILE);
    let original = match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(AppendError::Io { path, source }),
    };
    let unplaceable = |Unplaceable(reason)| AppendError::Unplaceable { file: path.clone(), reason };
    let needs_flow = !bot.bot.flows.contains_key(&bot_core::FlowId::new(LEARNED_FLOW));
    let intent_entry = [
        (0, format!("{}:", edit::key(intent.as_str()))),
        (2, format!("flow: {LEARNED_FLOW}")),
        (2, "examples:".to_owned()),
        (4, format!("{}:", edit::key(lang.as_str()))),
        (6, format!("- {quoted}")),
    ];
    let flow_entry = [(0, format!("{LEARNED_FLOW}:")), (2, "steps:".to_owned()), (4, "- handoff".to_owned())];

    let mut edited = original.clone().unwrap_or_else(|| LEARNED_HEADER.to_owned());
    edited = add_to_section(&edited, "intents", &intent_entry).map_err(unplaceable)?;
    if needs_flow {
        edited = add_to_section(&edited, "flows", &flow_entry).map_err(unplaceable)?;
    }
    Ok(Planned { path, original, edited })
}

/// Adds an entry to the top-level block mapping `section` of `text`, or the
/// section with the entry at the end of the text when it has none.
fn add_to_section(text: &str, section: &str, entry: &[(usize, String)]) -> Result<String, Unplaceable> {
    let lines = Lines::new(text);
    let documents = edit::parse_documents(text)?;
    let insertion = match edit::top_level(&documents, section) {
        Some((_, value)) if value.entries().is_some() => edit::append_entry(&lines, &value, entry)?,
        Some((key_line, value)) if value.is_null() => {
            let indent = edit::indentation(lines.line(key_line)) + 2;
            let text: Vec<String> = entry.iter().map(|(depth, line)| format!("{}{line}", " ".repeat(indent + depth))).collect();
            lines.insert_after(key_line, &text)
        }
        Some(_) => return Err(Unplaceable(format!("the `{section}:` section is not a mapping"))),
        None => {
            let mut text = Vec::new();
            if lines.text.trim_end().lines().last().is_some_and(|last| !last.trim_start().starts_with('#')) {
                text.push(String::new());
            }
            text.push(format!("{section}:"));
            text.extend(entry.iter().map(|(depth, line)| format!("{}{line}", " ".repeat(2 + depth))));
            let after = lines.text.matches('\n').count() + usize::from(!lines.text.ends_with('\n') && !lines.text.is_empty());
            lines.insert_after(after, &text)
        }
    };
    Ok(Insertion::apply(&insertion, text))
}

