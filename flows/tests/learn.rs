//! Appending examples to copies of bot folders in temporary folders.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use bot_core::{IntentId, Lang};
use lepton_flows::{append_example, load_bot, AppendError, NewExample, LEARNED_FILE, LEARNED_FLOW, MAX_FILE_BYTES};

/// A bot folder under the system temporary folder, removed on drop.
struct TempBot {
    dir: PathBuf,
}

impl TempBot {
    fn new(files: &[(&str, &str)]) -> Result<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("lepton-learn-test-{}-{unique}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().context("file without a parent folder")?)?;
            fs::write(&path, text)?;
        }
        Ok(Self { dir })
    }

    fn demo() -> Result<Self> {
        let bot = Self::new(&[])?;
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo"), &bot.dir)?;
        Ok(bot)
    }

    fn read(&self, file: &str) -> Result<String> {
        Ok(fs::read_to_string(self.dir.join(file))?)
    }
}

impl Drop for TempBot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn example<'a>(intent: &'a str, lang: &'a Lang, text: &'a str) -> NewExample<'a> {
    NewExample { intent, new_intent: false, lang, text }
}

fn new_intent<'a>(intent: &'a str, lang: &'a Lang, text: &'a str) -> NewExample<'a> {
    NewExample { intent, new_intent: true, lang, text }
}

/// Returns `text` with `line` inserted as line number `at` (1-based).
fn with_line(text: &str, at: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let inserted = format!("{line}\n");
    lines.insert(at - 1, &inserted);
    lines.concat()
}

/// Returns the 1-based line number of the first line equal to `line` after line `after`.
fn line_of(text: &str, line: &str, after: usize) -> Result<usize> {
    let found = text.lines().enumerate().skip(after).find(|(_, l)| *l == line);
    found.map(|(index, _)| index + 1).with_context(|| format!("line {line:?} not found"))
}

fn examples_of(dir: &Path, intent: &str, lang: &str) -> Result<Vec<String>> {
    let loaded = load_bot(dir)?;
    let intent = loaded.bot.intents.get(&IntentId::new(intent)).context("intent not loaded")?;
    Ok(intent.examples.get(&Lang::new(lang)).cloned().unwrap_or_default())
}

const EN: &str = "en";
const ZH: &str = "zh";

#[test]
fn english_example_goes_after_the_intents_english_list() -> Result<()> {
    let bot = TempBot::demo()?;
    let before = bot.read("intents/smalltalk.yml")?;
    let greet = line_of(&before, "  greet:", 0)?;
    let last = line_of(&before, "        - hello, I need help with something", greet)?;

    let added = append_example(&bot.dir, example("greet", &Lang::new(EN), "  hey, anybody around to help?  "))?;

    let after = bot.read("intents/smalltalk.yml")?;
    assert_eq!(after, with_line(&before, last + 1, "        - \"hey, anybody around to help?\""));
    assert_eq!(added.file, PathBuf::from("intents/smalltalk.yml"));
    assert_eq!(added.line, last + 1);
    assert!(!added.created);
    assert!(examples_of(&bot.dir, "greet", EN)?.contains(&"hey, anybody around to help?".to_owned()));
    Ok(())
}

#[test]
fn chinese_example_is_written_as_is() -> Result<()> {
    let bot = TempBot::demo()?;
    let before = bot.read("intents/orders.yml")?;
    let last = line_of(&before, "        - 我的东西发货了没有", 0)?;

    let added = append_example(&bot.dir, example("order_status", &Lang::new(ZH), "我的快递到底什么时候能到啊"))?;

    let after = bot.read("intents/orders.yml")?;
    assert_eq!(after, with_line(&before, last + 1, "        - \"我的快递到底什么时候能到啊\""));
    assert_eq!(added.line, last + 1);
    Ok(())
}

const SMALL_BOT: &str = "\
settings:
  languages: [en, zh]
";

const SMALL_INTENTS: &str = "\
# Only English examples so far.
intents:
  invoice:
    response: invoice   # answered from responses.yml
    examples:
      en:
        - can I get an invoice

        - I need a receipt
  # The next intent lists its examples in flow style.
  hours:
    response: hours
    examples: { en: [opening hours, \"when do you open\"] }
  refund:
    response: hours
    examples:
      en: [refund please, \"don't, 'quote' me\"]   # trailing comment
      zh: []
";

const SMALL_RESPONSES: &str = "\
responses:
  invoice:
    en: [\"We send invoices by email.\"]
    zh: [\"发票会通过邮件发送。\"]
  hours:
    en: [\"We open at 9.\"]
    zh: [\"我们九点开门。\"]
";

fn small_bot() -> Result<TempBot> {
    TempBot::new(&[("bot.yml", SMALL_BOT), ("intents.yml", SMALL_INTENTS), ("responses.yml", SMALL_RESPONSES)])
}

#[test]
fn missing_language_gets_its_own_list() -> Result<()> {
    let bot = small_bot()?;

    let added = append_example(&bot.dir, example("invoice", &Lang::new(ZH), "能开发票吗"))?;

    let expected = SMALL_INTENTS.replace("        - I need a receipt\n", "        - I need a receipt\n      zh:\n        - \"能开发票吗\"\n");
    assert_eq!(bot.read("intents.yml")?, expected);
    assert_eq!(added.line, 11);
    assert_eq!(examples_of(&bot.dir, "invoice", ZH)?, ["能开发票吗"]);
    Ok(())
}

#[test]
fn flow_style_lists_get_the_item_inside() -> Result<()> {
    let bot = small_bot()?;

    append_example(&bot.dir, example("refund", &Lang::new(EN), "money back"))?;
    append_example(&bot.dir, example("refund", &Lang::new(ZH), "退款"))?;

    let expected = SMALL_INTENTS
        .replace("\"don't, 'quote' me\"]", "\"don't, 'quote' me\", \"money back\"]")
        .replace("zh: []", "zh: [\"退款\"]");
    assert_eq!(bot.read("intents.yml")?, expected);
    assert_eq!(examples_of(&bot.dir, "refund", EN)?, ["refund please", "don't, 'quote' me", "money back"]);
    Ok(())
}

#[test]
fn flow_style_mapping_is_left_alone() -> Result<()> {
    let bot = small_bot()?;

    let result = append_example(&bot.dir, example("hours", &Lang::new(ZH), "几点开门"));

    assert!(matches!(result, Err(AppendError::Unplaceable { .. })), "{result:?}");
    assert_eq!(bot.read("intents.yml")?, SMALL_INTENTS);
    Ok(())
}

#[test]
fn new_intent_goes_to_the_learned_file() -> Result<()> {
    let bot = TempBot::demo()?;
    let en = Lang::new(EN);

    let first = append_example(&bot.dir, new_intent("invoice", &en, "can I get an invoice?"))?;
    let second = append_example(&bot.dir, new_intent("gift_wrap", &Lang::new(ZH), "能帮我包装成礼物吗"))?;

    let learned = bot.read(LEARNED_FILE)?;
    assert!(learned.starts_with("# Intents added from the support console."), "{learned}");
    let body = learned.lines().skip_while(|line| line.starts_with('#')).collect::<Vec<_>>().join("\n");
    let expected = "\
intents:
  invoice:
    flow: learned_handoff
    examples:
      en:
        - \"can I get an invoice?\"
  gift_wrap:
    flow: learned_handoff
    examples:
      zh:
        - \"能帮我包装成礼物吗\"

flows:
  learned_handoff:
    steps:
      - handoff";
    assert_eq!(body, expected);
    assert_eq!((first.file.as_path(), first.created), (Path::new(LEARNED_FILE), true));
    assert_eq!(second.line, line_of(&learned, "        - \"能帮我包装成礼物吗\"", 0)?);

    let loaded = load_bot(&bot.dir)?;
    let invoice = loaded.bot.intents.get(&IntentId::new("invoice")).context("invoice not loaded")?;
    assert_eq!(invoice.action, bot_core::bot::IntentAction::Flow(LEARNED_FLOW.into()));
    Ok(())
}

#[test]
fn learned_file_without_flows_section_gets_one() -> Result<()> {
    let learned = "# Kept by hand.\nintents:\n";
    let bot = TempBot::new(&[("bot.yml", SMALL_BOT), ("responses.yml", SMALL_RESPONSES), ("intents.yml", SMALL_INTENTS), (LEARNED_FILE, learned)])?;

    append_example(&bot.dir, new_intent("开发票", &Lang::new(ZH), "开发票"))?;

    let expected = "# Kept by hand.\nintents:\n  开发票:\n    flow: learned_handoff\n    examples:\n      zh:\n        - \"开发票\"\n\nflows:\n  learned_handoff:\n    steps:\n      - handoff\n";
    assert_eq!(bot.read(LEARNED_FILE)?, expected);
    Ok(())
}

#[test]
fn duplicate_is_rejected_and_nothing_written() -> Result<()> {
    let bot = TempBot::demo()?;
    let before = bot.read("intents/orders.yml")?;
    let en = Lang::new(EN);

    let same_intent = append_example(&bot.dir, example("order_status", &en, "Where is  my ORDER"));
    let other_intent = append_example(&bot.dir, example("greet", &en, "where is my order"));
    let new_one = append_example(&bot.dir, new_intent("tracking", &en, "where is my order"));

    for result in [same_intent, other_intent, new_one] {
        match result {
            Err(AppendError::Duplicate { intent }) => assert_eq!(intent, "order_status"),
            other => panic!("expected a duplicate, got {other:?}"),
        }
    }
    assert_eq!(bot.read("intents/orders.yml")?, before);
    assert!(!bot.dir.join(LEARNED_FILE).exists());
    Ok(())
}

#[test]
fn yaml_special_text_is_escaped() -> Result<()> {
    let bot = TempBot::demo()?;
    let text = "he said \"no\" \\ - # {x} [y] 'z': *a &b !c %d @e `f` | >\nsecond line\ttab";

    append_example(&bot.dir, example("greet", &Lang::new(EN), text))?;

    let written = bot.read("intents/smalltalk.yml")?;
    assert!(written.contains(r#"        - "he said \"no\" \\ - # {x} [y] 'z': *a &b !c %d @e `f` | >\nsecond line\ttab""#), "{written}");
    assert!(examples_of(&bot.dir, "greet", EN)?.contains(&text.to_owned()));
    Ok(())
}

#[test]
fn invalid_names_are_rejected() -> Result<()> {
    let bot = TempBot::demo()?;
    let en = Lang::new(EN);
    let too_long = "x".repeat(65);

    for name in ["", "_knowledge", "two words", "a/b", "-dash", "order:status", too_long.as_str(), "greet"] {
        let result = append_example(&bot.dir, new_intent(name, &en, "a brand new message"));
        assert!(matches!(result, Err(AppendError::InvalidName { .. })), "{name:?}: {result:?}");
    }
    let unknown = append_example(&bot.dir, example("no_such_intent", &en, "a brand new message"));
    assert!(matches!(unknown, Err(AppendError::UnknownIntent { .. })), "{unknown:?}");
    assert!(!bot.dir.join(LEARNED_FILE).exists());
    Ok(())
}

#[test]
fn bad_text_and_language_are_rejected() -> Result<()> {
    let bot = TempBot::demo()?;
    let en = Lang::new(EN);
    let long = "word ".repeat(101);

    let empty = append_example(&bot.dir, example("greet", &en, " \n\t "));
    let too_long = append_example(&bot.dir, example("greet", &en, &long));
    let french = append_example(&bot.dir, example("greet", &Lang::new("fr"), "bonjour"));

    assert!(matches!(empty, Err(AppendError::InvalidText { .. })), "{empty:?}");
    assert!(matches!(too_long, Err(AppendError::InvalidText { .. })), "{too_long:?}");
    assert!(matches!(french, Err(AppendError::UnsupportedLanguage { .. })), "{french:?}");
    Ok(())
}

#[test]
fn invalid_result_restores_the_file_byte_for_byte() -> Result<()> {
    let bot = small_bot()?;
    // Pad the file with a comment to just under the loader's size limit, so that
    // one more example makes the file too large to load.
    let mut padded = SMALL_INTENTS.replace("\n", "\r\n");
    let padding = MAX_FILE_BYTES as usize - padded.len() - 10;
    padded.push_str("# ");
    padded.push_str(&"填".repeat(padding / 3 - 1));
    padded.push_str("\r\n");
    fs::write(bot.dir.join("intents.yml"), &padded)?;
    let before = fs::read(bot.dir.join("intents.yml"))?;

    let result = append_example(&bot.dir, example("invoice", &Lang::new(EN), "send me the bill"));

    match result {
        Err(AppendError::Rejected { diagnostics, .. }) => {
            assert!(diagnostics.iter().any(|d| d.message.contains("larger than")), "{diagnostics:?}");
        }
        other => panic!("expected the change to be rejected, got {other:?}"),
    }
    assert_eq!(fs::read(bot.dir.join("intents.yml"))?, before);
    let leftovers: Vec<_> = fs::read_dir(&bot.dir)?.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Ok(())
}

#[test]
fn crlf_file_keeps_its_line_breaks() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SMALL_BOT), ("responses.yml", SMALL_RESPONSES), ("intents.yml", &SMALL_INTENTS.replace('\n', "\r\n"))])?;

    append_example(&bot.dir, example("invoice", &Lang::new(EN), "bill me"))?;

    let expected = SMALL_INTENTS.replace("        - I need a receipt\n", "        - I need a receipt\n        - \"bill me\"\n").replace('\n', "\r\n");
    assert_eq!(bot.read("intents.yml")?, expected);
    Ok(())
}

#[test]
fn concurrent_appends_all_land() -> Result<()> {
    let bot = TempBot::demo()?;
    let texts: Vec<String> = (0..6).map(|n| format!("hello number {n} from a thread")).collect();

    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .iter()
            .map(|text| {
                let dir = bot.dir.clone();
                scope.spawn(move || append_example(&dir, example("greet", &Lang::new(EN), text)).map(|_| ()).map_err(|e| e.to_string()))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap_or_else(|_| Err("thread panicked".to_owned()))).collect()
    });

    assert_eq!(results, vec![Ok(()); texts.len()]);

    let examples = examples_of(&bot.dir, "greet", EN)?;
    for text in &texts {
        assert!(examples.contains(text), "{text} missing");
    }
    Ok(())
}
