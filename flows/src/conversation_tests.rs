//! Conversation tests kept with a bot: the YAML files under `tests/` in the bot
//! folder, each a list of conversations with what the bot must do at each step.
//!
//! They are read with the same node tree and [`Cx`] as the bot, so a mistake in a
//! test file is reported as `file:line:column` like one in the bot, and every
//! expectation remembers where it is written. Names in expectations (intents, slots,
//! FAQ entries, articles, languages) are checked against the loaded bot. The format
//! is described in `docs/bot-format.md`, section "Conversation tests".

use std::fmt;
use std::path::{Path, PathBuf};

use bot_core::bot::KNOWLEDGE_INTENT;
use bot_core::{BotDefinition, Channel, IntentId, Lang, SlotName};
use regex::Regex;

use crate::cx::{suggestion, Cx};
use crate::diagnostic::{Diagnostic, Report};
use crate::load::invalid_utf8;
use crate::source::{find_files, read_limited, too_large, SourceFile};
use crate::tree::{parse, Loc, Node};
use crate::LoadError;

/// The folder of a bot that contains its conversation tests. The bot loader skips it.
pub const TESTS_FOLDER: &str = "tests";

/// The channel a test's messages arrive on when it names none.
pub const DEFAULT_TEST_CHANNEL: &str = "test";

const FILE_FIELDS: [&str; 1] = ["tests"];
const CASE_FIELDS: [&str; 4] = ["name", "channel", "lang", "steps"];
const STEP_FIELDS: [&str; 7] = ["user", "intent", "slots", "reply", "buttons", "handoff", "knowledge"];
const REPLY_FIELDS: [&str; 3] = ["exact", "contains", "matches"];

/// Every test file of a bot, in sorted path order.
#[derive(Clone, Debug, Default)]
pub struct ConversationTests {
    pub files: Vec<TestFile>,
}

impl ConversationTests {
    /// Counts the test cases of all files.
    pub fn case_count(&self) -> usize {
        self.files.iter().map(|file| file.cases.len()).sum()
    }
}

/// One file under `tests/` and the test cases it defines, in source order.
#[derive(Clone, Debug)]
pub struct TestFile {
    /// The file as reached from the bot folder the caller passed in, such as `demo/tests/orders.yml`.
    pub path: PathBuf,
    pub cases: Vec<TestCase>,
}

/// One conversation: messages sent in order to a new session, each with its expectations.
#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: String,
    /// Where the test starts (its first field).
    pub at: SourcePosition,
    /// The channel the messages arrive on; [`DEFAULT_TEST_CHANNEL`] unless set.
    pub channel: Channel,
    /// The locale hint sent with every message, as a channel sends the app's language.
    pub lang: Option<Lang>,
    pub steps: Vec<TestStep>,
}

/// One customer message and what the bot must do in reply.
#[derive(Clone, Debug)]
pub struct TestStep {
    pub user: String,
    /// Where the `user` field is written.
    pub at: SourcePosition,
    /// In source order.
    pub expectations: Vec<Expectation>,
}

/// One check on the turn that a step's message started.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// Where the expectation's key is written.
    pub at: SourcePosition,
    pub check: Check,
}

#[derive(Clone, Debug)]
pub enum Check {
    /// The intent the bot acted on; `None` expects no intent (a fallback, a knowledge
    /// answer without the knowledge intent, a message to a waiting conversation).
    Intent(Option<IntentId>),
    /// Each slot's value after the turn; `None` expects the slot to be unset.
    Slots(Vec<(SlotName, Option<String>)>),
    /// The turn's replies, joined with line breaks, match at least one pattern.
    Reply(Vec<ReplyPattern>),
    /// Each of these is the payload or the title of a button (quick reply) of the turn's replies.
    Buttons(Vec<String>),
    /// Whether the turn handed the conversation to a person.
    Handoff(bool),
    /// The knowledge source of the turn's answer is one of these; empty expects no
    /// knowledge answer. See [`knowledge_source_matches`].
    Knowledge(Vec<String>),
}

/// Conditions on the text of a turn's replies. Every condition that is set must hold.
#[derive(Clone, Debug, Default)]
pub struct ReplyPattern {
    /// The whole text equals this.
    pub exact: Option<String>,
    /// The text contains this.
    pub contains: Option<String>,
    /// The regular expression finds a match somewhere in the text.
    pub matches: Option<Regex>,
}

impl ReplyPattern {
    pub fn is_match(&self, text: &str) -> bool {
        self.exact.as_ref().is_none_or(|exact| exact == text)
            && self.contains.as_ref().is_none_or(|part| text.contains(part.as_str()))
            && self.matches.as_ref().is_none_or(|regex| regex.is_match(text))
    }
}

impl fmt::Display for ReplyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(exact) = &self.exact {
            parts.push(format!("exact {exact:?}"));
        }
        if let Some(part) = &self.contains {
            parts.push(format!("contains {part:?}"));
        }
        if let Some(regex) = &self.matches {
            parts.push(format!("matches /{}/", regex.as_str()));
        }
        f.write_str(&parts.join(" and "))
    }
}

/// Tells whether `source` (a turn's `faq:ID`, `PATH` or `PATH#SLUG`) is what an
/// expectation names: a FAQ id (`shipping_time` or `faq:shipping_time`), an article
/// path (any of its sections), or one article section (`PATH#SLUG`).
pub fn knowledge_source_matches(expected: &str, source: &str) -> bool {
    if source == expected {
        return true;
    }
    if source.strip_prefix("faq:") == Some(expected) {
        return true;
    }
    source.split_once('#').is_some_and(|(path, _)| path == expected)
}

/// A place in a test file: 1-based line and column, counted in characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourcePosition {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Renders as `file:line:column`.
impl fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Reads the conversation tests in `bot_dir/tests` (every `*.yml` and `*.yaml`,
/// recursively, in sorted path order) and checks the names they use against `bot`.
/// A bot without a `tests` folder has no tests. Fails with every error found; the
/// report also contains warnings (such as a symbolic link that is skipped).
pub fn load_conversation_tests(bot_dir: &Path, bot: &BotDefinition) -> Result<ConversationTests, Report> {
    let folder = bot_dir.join(TESTS_FOLDER);
    if !folder.is_dir() {
        return Ok(ConversationTests::default());
    }
    let mut diagnostics = Vec::new();
    let sources = read_test_sources(&folder, &mut diagnostics).map_err(|error| io_report(&folder, error))?;

    let mut reader = Reader { cx: Cx::new(&sources), bot };
    let mut files = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        if let Some(cases) = reader.read_file(index, source) {
            files.push(TestFile { path: source.shown.clone(), cases });
        }
    }

    diagnostics.append(&mut reader.cx.diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        diagnostics.dedup();
        return Err(Report { diagnostics });
    }
    Ok(ConversationTests { files })
}

fn io_report(folder: &Path, error: LoadError) -> Report {
    let diagnostic = match error {
        LoadError::Io { path, source } => Diagnostic::error_at_path(path, format!("failed to read: {source}")),
        other => Diagnostic::error_at_path(folder.to_path_buf(), other.to_string()),
    };
    Report { diagnostics: vec![diagnostic] }
}

/// Reads every YAML file under `folder`. Files that are too large or not UTF-8 are reported and skipped.
fn read_test_sources(folder: &Path, diagnostics: &mut Vec<Diagnostic>) -> Result<Vec<SourceFile>, LoadError> {
    let mut sources = Vec::new();
    for path in find_files(folder, &["yml", "yaml"], diagnostics)? {
        let Some(bytes) = read_limited(&path)? else {
            diagnostics.push(too_large(path));
            continue;
        };
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

/// Converts the node trees of test files, reporting problems to `cx`.
struct Reader<'s, 'b> {
    cx: Cx<'s>,
    bot: &'b BotDefinition,
}

impl Reader<'_, '_> {
    /// Reads the test cases of source file `index`; `None` when the file has a syntax error.
    fn read_file(&mut self, index: usize, source: &SourceFile) -> Option<Vec<TestCase>> {
        let parsed = parse(index, &source.text);
        for problem in parsed.problems {
            self.cx.error(problem.loc, problem.message);
        }
        if parsed.syntax_error {
            return None;
        }

        let documents: Vec<&Node> = parsed.documents.iter().filter(|document| !document.is_null()).collect();
        if documents.is_empty() {
            self.cx.error_at_path(source.shown.clone(), "file contains no tests; add a `tests:` list or remove the file");
            return None;
        }
        let mut cases = Vec::new();
        for document in documents {
            self.read_document(document, &mut cases);
        }
        Some(cases)
    }

    fn read_document(&mut self, document: &Node, cases: &mut Vec<TestCase>) {
        let Some(fields) = self.cx.fields(document, document.loc.start(), "a test file", &FILE_FIELDS) else { return };
        let Some(list) = fields.require(&mut self.cx, "tests") else { return };
        let Some(items) = self.cx.list(list, "tests") else { return };
        if items.is_empty() {
            self.cx.error(list.loc, "`tests` is empty; add a test or remove the file");
            return;
        }
        for item in items {
            if let Some(case) = self.read_case(item) {
                let duplicate = cases.iter().find(|other| other.name == case.name);
                if let Some(first) = duplicate {
                    let message = format!("test `{}` is defined twice in this file (first at line {}); rename one", case.name, first.at.line);
                    self.cx.error(item.loc.start(), message);
                    continue;
                }
                cases.push(case);
            }
        }
    }

    fn read_case(&mut self, item: &Node) -> Option<TestCase> {
        let fields = self.cx.fields(item, item.loc.start(), "a test", &CASE_FIELDS)?;
        let name = fields.require(&mut self.cx, "name").and_then(|node| self.cx.text(node, "a test name"));
        let channel = match fields.get("channel") {
            Some(node) => self.cx.text(node, "a channel name").map(Channel::new),
            None => Some(Channel::new(DEFAULT_TEST_CHANNEL)),
        };
        let lang = match fields.get("lang") {
            Some(node) => self.language(node).map(Some),
            None => Some(None),
        };
        let steps = fields.require(&mut self.cx, "steps").and_then(|node| self.read_steps(node));
        Some(TestCase { name: name?, at: self.position(item.loc), channel: channel?, lang: lang?, steps: steps? })
    }

    /// Reads a locale tag such as `zh` or `zh-CN`; its language must be one the bot declares.
    fn language(&mut self, node: &Node) -> Option<Lang> {
        let tag = self.cx.string(node, "a language code")?;
        let Some(lang) = Lang::from_tag(&tag) else {
            self.cx.error(node.loc, format!("invalid language code `{tag}`; use a code from settings.languages, such as `en` or `zh`"));
            return None;
        };
        let languages = &self.bot.settings.languages;
        if !languages.contains(&lang) {
            let declared = languages.iter().map(Lang::as_str);
            self.cx.error(node.loc, format!("language `{tag}` is not in settings.languages; {}", suggestion(lang.as_str(), declared)));
            return None;
        }
        Some(lang)
    }

    fn read_steps(&mut self, node: &Node) -> Option<Vec<TestStep>> {
        let items = self.cx.list(node, "steps")?;
        if items.is_empty() {
            self.cx.error(node.loc, "`steps` is empty; add at least one step with a `user` message");
            return None;
        }
        let steps: Vec<Option<TestStep>> = items.iter().map(|item| self.read_step(item)).collect();
        steps.into_iter().collect()
    }

    fn read_step(&mut self, item: &Node) -> Option<TestStep> {
        let fields = self.cx.fields(item, item.loc.start(), "a test step", &STEP_FIELDS)?;
        let user = fields.require(&mut self.cx, "user");
        let at = fields.entry("user").map(|entry| self.position(entry.key.loc));
        let user = user.and_then(|node| self.cx.text(node, "the customer's message"));

        let mut expectations = Vec::new();
        let mut valid = true;
        for key in fields.names().filter(|key| *key != "user") {
            let Some(entry) = fields.entry(key) else { continue };
            let check = self.read_check(key, &entry.value);
            match check {
                Some(check) => expectations.push(Expectation { at: self.position(entry.key.loc), check }),
                None => valid = false,
            }
        }
        if !valid {
            return None;
        }
        Some(TestStep { user: user?, at: at?, expectations })
    }

    fn read_check(&mut self, key: &str, node: &Node) -> Option<Check> {
        match key {
            "intent" => self.read_intent(node).map(Check::Intent),
            "slots" => self.read_slots(node).map(Check::Slots),
            "reply" => self.read_reply(node).map(Check::Reply),
            "buttons" => self.read_buttons(node).map(Check::Buttons),
            "handoff" => self.cx.bool(node, "handoff").map(Check::Handoff),
            _ => self.read_knowledge(node).map(Check::Knowledge),
        }
    }

    fn read_intent(&mut self, node: &Node) -> Option<Option<IntentId>> {
        if node.is_null() {
            return Some(None);
        }
        let name = self.cx.name(node, "intent name")?;
        let intents = &self.bot.intents;
        let known = intents.contains_key(&IntentId::new(name.as_str())) || name == KNOWLEDGE_INTENT;
        if !known {
            let candidates = intents.keys().map(IntentId::as_str).chain([KNOWLEDGE_INTENT]);
            self.cx.error(node.loc, format!("intent `{name}` is not defined; {}", suggestion(&name, candidates)));
            return None;
        }
        Some(Some(IntentId::new(name)))
    }

    fn read_slots(&mut self, node: &Node) -> Option<Vec<(SlotName, Option<String>)>> {
        let entries = self.cx.mapping(node, "slots")?;
        let mut slots = Vec::new();
        let mut valid = true;
        for entry in entries {
            let name = self.cx.name(&entry.key, "slot name");
            let name = name.filter(|name| self.check_slot(name, entry.key.loc));
            let value = if entry.value.is_null() { Some(None) } else { self.cx.string(&entry.value, "a slot value").map(Some) };
            match (name, value) {
                (Some(name), Some(value)) => slots.push((SlotName::new(name), value)),
                _ => valid = false,
            }
        }
        valid.then_some(slots)
    }

    fn check_slot(&mut self, name: &str, loc: Loc) -> bool {
        let slots = &self.bot.slots;
        if slots.contains_key(&SlotName::new(name)) {
            return true;
        }
        let candidates = slots.keys().map(SlotName::as_str);
        self.cx.error(loc, format!("slot `{name}` is not defined; {}", suggestion(name, candidates)));
        false
    }

    /// Reads one reply pattern (a mapping) or a list of them.
    fn read_reply(&mut self, node: &Node) -> Option<Vec<ReplyPattern>> {
        let Some(items) = node.items() else {
            return self.read_reply_pattern(node).map(|pattern| vec![pattern]);
        };
        if items.is_empty() {
            self.cx.error(node.loc, "`reply` is an empty list; list at least one pattern, such as `- contains: order`");
            return None;
        }
        let patterns: Vec<Option<ReplyPattern>> = items.iter().map(|item| self.read_reply_pattern(item)).collect();
        patterns.into_iter().collect()
    }

    fn read_reply_pattern(&mut self, node: &Node) -> Option<ReplyPattern> {
        if node.scalar().is_some() {
            let message = format!("expected a mapping for reply with `exact`, `contains` or `matches`, found {}; write `contains: ...` or `exact: ...`", node.describe());
            self.cx.error(node.loc, message);
            return None;
        }
        let fields = self.cx.fields(node, node.loc.start(), "a reply pattern", &REPLY_FIELDS)?;
        if fields.names().next().is_none() {
            self.cx.error(node.loc.start(), "a reply pattern needs `exact`, `contains` or `matches`");
            return None;
        }
        let exact = fields.get("exact").map(|node| self.cx.string(node, "the exact reply"));
        let contains = fields.get("contains").map(|node| self.cx.text(node, "a part of the reply"));
        let matches = fields.get("matches").map(|node| self.regex(node));
        Some(ReplyPattern { exact: crate::cx::optional(exact)?, contains: crate::cx::optional(contains)?, matches: crate::cx::optional(matches)? })
    }

    fn read_buttons(&mut self, node: &Node) -> Option<Vec<String>> {
        let items = self.cx.list(node, "buttons")?;
        if items.is_empty() {
            self.cx.error(node.loc, "`buttons` is an empty list; list the payloads or titles of the buttons expected, such as `[/human]`");
            return None;
        }
        let buttons: Vec<Option<String>> = items.iter().map(|item| self.cx.text(item, "a button payload or title")).collect();
        buttons.into_iter().collect()
    }

    fn regex(&mut self, node: &Node) -> Option<Regex> {
        let pattern = self.cx.text(node, "a regular expression")?;
        match Regex::new(&pattern) {
            Ok(regex) => Some(regex),
            Err(error) => {
                let last_line = error.to_string().lines().last().unwrap_or_default().trim().to_owned();
                let reason = last_line.strip_prefix("error: ").unwrap_or(&last_line).to_owned();
                self.cx.error(node.loc, format!("invalid regular expression in `matches`: {reason}"));
                None
            }
        }
    }

    /// Reads one knowledge source or a list of them. An empty value expects no knowledge answer.
    fn read_knowledge(&mut self, node: &Node) -> Option<Vec<String>> {
        if node.is_null() {
            return Some(Vec::new());
        }
        let items: Vec<&Node> = match node.items() {
            Some([]) => {
                self.cx.error(node.loc, "`knowledge` is an empty list; name a FAQ entry or an article, or write `knowledge: ~` for no knowledge answer");
                return None;
            }
            Some(items) => items.iter().collect(),
            None => vec![node],
        };
        let sources: Vec<Option<String>> = items.into_iter().map(|item| self.knowledge_source(item)).collect();
        sources.into_iter().collect()
    }

    fn knowledge_source(&mut self, node: &Node) -> Option<String> {
        let source = self.cx.text(node, "a FAQ entry id or an article path")?;
        let id = source.strip_prefix("faq:").unwrap_or(&source);
        let path = source.split_once('#').map_or(source.as_str(), |(path, _)| path);
        let bot = self.bot;
        let known = bot.faq.iter().any(|entry| entry.id == id) || bot.articles.iter().any(|article| article.path == path);
        if !known {
            let candidates = bot.faq.iter().map(|entry| entry.id.as_str()).chain(bot.articles.iter().map(|article| article.path.as_str()));
            let message = format!("knowledge source `{source}` is neither a FAQ entry nor an article; {}", suggestion(id, candidates));
            self.cx.error(node.loc, message);
            return None;
        }
        Some(source)
    }

    fn position(&self, loc: Loc) -> SourcePosition {
        SourcePosition { file: self.cx.sources[loc.file].shown.clone(), line: loc.line, column: loc.column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knowledge_source_matches_faq_id() -> anyhow::Result<()> {
        assert!(knowledge_source_matches("gift_wrapping", "faq:gift_wrapping"));
        assert!(knowledge_source_matches("faq:gift_wrapping", "faq:gift_wrapping"));
        assert!(!knowledge_source_matches("gift", "faq:gift_wrapping"));
        Ok(())
    }

    #[test]
    fn knowledge_source_matches_article_sections() -> anyhow::Result<()> {
        let source = "articles/returns.md#refunds";
        assert!(knowledge_source_matches("articles/returns.md", source));
        assert!(knowledge_source_matches(source, source));
        assert!(!knowledge_source_matches("articles/returns.md#other", source));
        Ok(())
    }

    #[test]
    fn reply_pattern_requires_every_condition() -> anyhow::Result<()> {
        let pattern = ReplyPattern { contains: Some("order".to_owned()), matches: Some(Regex::new("^Your")?), exact: None };
        assert!(pattern.is_match("Your order"));
        assert!(!pattern.is_match("The order"));
        Ok(())
    }
}
