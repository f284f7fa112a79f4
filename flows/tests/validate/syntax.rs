//! Files that cannot be parsed: alias bombs, huge files, YAML syntax errors, tabs and
//! bytes that are not UTF-8.

use super::*;

/// Nine levels of aliases, each a list of nine aliases of the level before.
fn alias_bomb() -> String {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for pair in names.windows(2) {
        let items = vec![format!("*{}", pair[0]); 9].join(", ");
        text.push_str(&format!("{}: &{} [{items}]\n", pair[1], pair[1]));
    }
    text
}

#[test]
fn alias_bomb_is_reported_at_an_alias() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("bomb.yml", &alias_bomb())])?;
    let report = validate(&bot.dir);
    let errors: Vec<&Diagnostic> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0].file, bot.dir.join("bomb.yml"));
    assert!(errors[0].message.contains("alias would expand the file to more than"), "{}", errors[0]);
    assert_eq!(errors[0].offending_text().chars().next(), Some('*'), "{}", errors[0]);
    Ok(())
}

#[test]
fn alias_bomb_fails_to_load() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("bomb.yml", &alias_bomb())])?;
    let error = load_bot(&bot.dir).err().context("the alias bomb loaded")?;
    assert!(matches!(error, LoadError::Invalid { .. }), "{error}");
    Ok(())
}

#[test]
fn file_over_size_limit_is_reported() -> Result<()> {
    let huge = format!("# {}\n", "x".repeat(lepton_flows::MAX_FILE_BYTES as usize));
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("huge.yml", &huge)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("huge.yml"), 0, 0)?;
    assert_eq!(diagnostic.message, "file is larger than 10 MiB; split it into smaller files");
    Ok(())
}

/// Writes a bot whose `support.yml` has a syntax error, and whose `orders.yml` refers
/// to a misspelt response.
fn bot_with_broken_file() -> Result<TempBot> {
    let responses = "responses:\n  ask_order_number:\n    en: [Number?]\n  unused_reply:\n    en: [Hi]\n  used_in_broken_file:\n    en: [Sorry]\n";
    let orders = "flows:\n  order_status:\n    steps:\n      - ask: order_number\n        prompt: ask_order_numbre\n      - say: complaint_sorry\nslots:\n  order_number: { type: text }\nintents:\n  order:\n    examples: { en: [a, b, c, d, e] }\n    flow: order_status\n";
    let support = "responses:\n  complaint_sorry:\n    en: [Sorry]\nflows:\n  complaint:\n    steps:\n      - say: used_in_broken_file\n      - say: [unclosed\n";
    TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", responses), ("orders.yml", orders), ("support.yml", support)])
}

#[test]
fn syntax_error_keeps_undefined_references_reported() -> Result<()> {
    let bot = bot_with_broken_file()?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("orders.yml"), 5, 17)?;
    assert!(diagnostic.message.starts_with("undefined response `ask_order_numbre`"), "{diagnostic}");
    Ok(())
}

#[test]
fn syntax_error_hides_names_the_broken_file_mentions() -> Result<()> {
    let bot = bot_with_broken_file()?;
    let report = validate(&bot.dir);
    let found = messages(&report);
    assert!(!found.iter().any(|m| m.contains("complaint_sorry")), "{report}");
    assert!(!found.iter().any(|m| m.contains("used_in_broken_file")), "{report}");
    Ok(())
}

#[test]
fn syntax_error_keeps_unused_warnings_for_other_names() -> Result<()> {
    let bot = bot_with_broken_file()?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("responses.yml"), 4, 3)?;
    assert!(diagnostic.message.starts_with("response `unused_reply` is never used"), "{diagnostic}");
    assert_eq!(report.diagnostics.len(), 4, "{report}");
    Ok(())
}

#[test]
fn tab_in_indentation_is_reported_on_its_line() -> Result<()> {
    let settings = "settings:\n  languages: [en]\n  name: Test shop\n  variables:\n    shop: Shop\n\t  x: y\n";
    let bot = TempBot::new(&[("bot.yml", settings)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 6, 1)?;
    assert!(diagnostic.message.starts_with("invalid YAML: "), "{diagnostic}");
    Ok(())
}

#[test]
fn invalid_utf8_is_reported_at_its_byte() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS)])?;
    fs::write(bot.dir.join("bot.yml"), b"settings:\n  languages: [en]\n  name: caf\xe9 bar\n")?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("bot.yml"), 3, 12)?;
    assert!(diagnostic.message.starts_with("invalid UTF-8 byte 0xE9"), "{diagnostic}");
    assert_eq!(diagnostic.offending_text(), "\u{FFFD}");
    Ok(())
}

#[test]
fn long_line_snippet_is_cut() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("deep.yml", &"[".repeat(10_000))])?;
    let report = validate(&bot.dir);
    let diagnostic = report.errors().next().context("no error for 10,000 brackets")?;
    assert!(diagnostic.snippet.chars().count() <= lepton_flows::MAX_SNIPPET_CHARS + 2, "{diagnostic}");
    assert_eq!(diagnostic.offending_text(), "[");
    Ok(())
}

#[test]
fn report_summary_counts_in_singular() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", "settings:\n  languages: [en]\n  nmae: x\n")])?;
    let report = validate(&bot.dir);
    assert_eq!(report.summary(), "1 error, 0 warnings");
    assert!(report.to_string().ends_with("\n1 error, 0 warnings"), "{report}");
    Ok(())
}
