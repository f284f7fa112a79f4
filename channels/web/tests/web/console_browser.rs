//! The support console in a real browser: headless Chromium driven by
//! `tests/browser/console.mjs` against a test server with two agents, plus
//! static checks of the console's files that need no browser.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use lepton_web::console::{Accounts, Role};
use lepton_web::WebConfig;
use serde_json::json;

use crate::support::TestServer;

const ALICE_PASSWORD: &str = "alice-console-password";
const BOB_PASSWORD: &str = "bob-console-password";

/// The console's own files, relative to the crate.
const CONSOLE_FOLDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/console");

/// An accounts file in the temporary folder, removed on drop.
struct AccountsFile {
    path: PathBuf,
}

impl AccountsFile {
    fn create(agents: &[(&str, Role, &str)]) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!("lepton-console-accounts-{}-{nanos}.json", std::process::id()));
        let mut accounts = Accounts::new()?;
        for (name, role, password) in agents {
            accounts.add(name, *role, password)?;
        }
        accounts.save(&path)?;
        Ok(Self { path })
    }
}

impl Drop for AccountsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn console_server(accounts: &Path) -> Result<TestServer> {
    let accounts = accounts.to_owned();
    TestServer::start_configured(WebConfig::default(), move |state| state.with_accounts(accounts)).await
}

#[tokio::test]
#[ignore = "needs node 18+ and chromium on PATH (or CHROMIUM=path); run with --ignored"]
async fn console_works_in_headless_chromium() -> Result<()> {
    let accounts = AccountsFile::create(&[("alice", Role::Admin, ALICE_PASSWORD), ("bob", Role::Agent, BOB_PASSWORD)])?;
    let server = console_server(&accounts.path).await?;
    // The rate-limit check locks out its client address, so it gets a server of its own.
    let limited = console_server(&accounts.path).await?;

    let mut config = json!({
        "base": server.base,
        "limited_base": limited.base,
        "agents": [
            { "name": "alice", "password": ALICE_PASSWORD },
            { "name": "bob", "password": BOB_PASSWORD },
        ],
        // The test server has no bot folder, so adding an example must fail visibly.
        "teach": "unavailable",
    });
    if let Ok(folder) = std::env::var("LEPTON_CONSOLE_SCREENSHOTS") {
        config["screenshots"] = json!(folder);
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/console.mjs");
    let mut command = std::process::Command::new("node");
    command.arg(script).arg(config.to_string());
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("console checks failed with {}", output.status);
    }
    Ok(())
}

/// Returns the console's JavaScript files with their text.
fn console_scripts() -> Result<Vec<(String, String)>> {
    let mut scripts = Vec::new();
    for entry in std::fs::read_dir(CONSOLE_FOLDER).context("reading assets/console")? {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "js") {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            scripts.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), text));
        }
    }
    Ok(scripts)
}

#[test]
fn console_scripts_never_parse_markup() -> Result<()> {
    let scripts = console_scripts()?;
    assert!(scripts.len() >= 2, "expected the console's modules in {CONSOLE_FOLDER}");
    let forbidden = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"];
    for (name, text) in &scripts {
        for pattern in forbidden {
            assert!(!text.contains(pattern), "{name} uses {pattern}; set text with textContent instead");
        }
    }
    Ok(())
}

#[test]
fn console_scripts_set_no_inline_styles() -> Result<()> {
    // The page's Content-Security-Policy has no 'unsafe-inline' for styles, so
    // looks change through classes in console.css.
    for (name, text) in console_scripts()? {
        assert!(!text.contains(".style."), "{name} sets an inline style; add a class to console.css instead");
        assert!(!text.contains("'style'"), "{name} sets a style attribute; add a class to console.css instead");
    }
    Ok(())
}

/// Returns the keys of one language's table in i18n.js: the lines `    'key': ...`
/// between `start` and the next table (or the end).
fn string_keys(i18n: &str, start: &str, end: Option<&str>) -> Result<Vec<String>> {
    let from = i18n.find(start).with_context(|| format!("{start} not found in i18n.js"))?;
    let rest = &i18n[from + start.len()..];
    let table = match end {
        Some(end) => &rest[..rest.find(end).with_context(|| format!("{end} not found in i18n.js"))?],
        None => rest,
    };
    let keys = table
        .lines()
        .filter_map(|line| line.strip_prefix("    '"))
        .filter_map(|line| line.split_once("':").map(|(key, _)| key.to_owned()))
        .collect();
    Ok(keys)
}

#[test]
fn console_strings_exist_in_both_languages() -> Result<()> {
    let i18n = std::fs::read_to_string(Path::new(CONSOLE_FOLDER).join("i18n.js"))?;
    let mut english = string_keys(&i18n, "\n  en: {", Some("\n  'zh-CN': {"))?;
    let mut chinese = string_keys(&i18n, "\n  'zh-CN': {", Some("\n};"))?;
    assert!(english.len() > 50, "expected the English strings, found {}", english.len());
    english.sort();
    chinese.sort();
    let only_english: Vec<_> = english.iter().filter(|key| !chinese.contains(key)).collect();
    let only_chinese: Vec<_> = chinese.iter().filter(|key| !english.contains(key)).collect();
    assert!(only_english.is_empty(), "strings without a Chinese translation: {only_english:?}");
    assert!(only_chinese.is_empty(), "strings without an English original: {only_chinese:?}");
    Ok(())
}
