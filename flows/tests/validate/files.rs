//! What the loader finds in a bot folder: empty files, folders and links that look like
//! bot files.

use super::*;

#[test]
fn empty_file_is_a_warning() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("empty.yml", ""), ("comments.yaml", "# to do\n")])?;
    let report = validate(&bot.dir);
    let empty = at(&report, &bot.dir.join("empty.yml"), 0, 0)?;
    assert_eq!(empty.severity, Severity::Warning, "{empty}");
    assert!(empty.message.starts_with("file is empty or contains only comments"), "{empty}");
    let comments = at(&report, &bot.dir.join("comments.yaml"), 0, 0)?;
    assert_eq!(comments.severity, Severity::Warning, "{comments}");
    Ok(())
}

#[test]
fn folder_with_yaml_name_is_a_warning() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS)])?;
    fs::create_dir(bot.dir.join("dir.yml"))?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("dir.yml"), 0, 0)?;
    assert_eq!(diagnostic.severity, Severity::Warning, "{diagnostic}");
    assert!(diagnostic.message.starts_with("`dir.yml` is a folder, not a file"), "{diagnostic}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn symlink_loop_is_a_warning() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS)])?;
    let link = bot.dir.join("loop.yml");
    std::os::unix::fs::symlink(&link, &link)?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &link, 0, 0)?;
    assert_eq!(diagnostic.severity, Severity::Warning, "{diagnostic}");
    assert!(diagnostic.message.starts_with("symbolic link cannot be followed"), "{diagnostic}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn symlink_to_folder_is_a_warning() -> Result<()> {
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("elsewhere/intents.yml", "intents: {}\n")])?;
    let link = bot.dir.join("shared");
    std::os::unix::fs::symlink(bot.dir.join("elsewhere"), &link)?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &link, 0, 0)?;
    assert!(diagnostic.message.starts_with("symbolic link to a folder is not followed"), "{diagnostic}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn symlink_to_file_is_read() -> Result<()> {
    let bot = TempBot::new(&[("real/settings.txt", SETTINGS)])?;
    std::os::unix::fs::symlink(bot.dir.join("real/settings.txt"), bot.dir.join("bot.yml"))?;
    let report = validate(&bot.dir);
    assert!(report.diagnostics.is_empty(), "{report}");
    Ok(())
}

#[test]
fn repeated_section_still_defines_names() -> Result<()> {
    let responses = "responses:\n  hi:\n    en: [Hi]\nintents:\n  greet:\n    examples: { en: [a, b, c, d, e] }\n    response: bye\nresponses:\n  bye:\n    en: [Bye]\n";
    let bot = TempBot::new(&[("bot.yml", SETTINGS), ("responses.yml", responses)])?;
    let report = validate(&bot.dir);
    let diagnostic = at(&report, &bot.dir.join("responses.yml"), 8, 1)?;
    assert!(diagnostic.message.starts_with("duplicate key `responses`"), "{diagnostic}");
    assert_eq!(report.errors().count(), 1, "{report}");
    Ok(())
}
