//! Conversation tests under a bot's `tests/` folder: the bot loader skips them, and
//! `load_conversation_tests` reads them with positions and checks their names.

use lepton_flows::{load_conversation_tests, Check, ConversationTests, TestCase};

use super::*;

/// The valid fixture bot with `files` added under its `tests/` folder.
fn bot_with_tests(files: &[(&str, &str)]) -> Result<TempBot> {
    let bot = TempBot::copy_of(&fixture("valid"))?;
    for (name, text) in files {
        let path = bot.dir.join("tests").join(name);
        fs::create_dir_all(path.parent().context("test file without a parent folder")?)?;
        fs::write(path, text)?;
    }
    Ok(bot)
}

fn load_tests(bot: &TempBot) -> Result<std::result::Result<ConversationTests, Report>> {
    let loaded = load_bot(&bot.dir).map_err(|error| anyhow!("{error}"))?;
    Ok(load_conversation_tests(&bot.dir, &loaded.bot))
}

fn load_ok(bot: &TempBot) -> Result<ConversationTests> {
    load_tests(bot)?.map_err(|report| anyhow!("unexpected errors:\n{report}"))
}

fn load_err(bot: &TempBot) -> Result<Report> {
    match load_tests(bot)? {
        Ok(tests) => bail!("expected errors, loaded {} tests", tests.case_count()),
        Err(report) => Ok(report),
    }
}

fn only_case(tests: &ConversationTests) -> Result<&TestCase> {
    match tests.files.as_slice() {
        [file] if file.cases.len() == 1 => Ok(&file.cases[0]),
        _ => bail!("expected one file with one test, found {:?}", tests.files),
    }
}

const ORDER_TEST: &str = "\
tests:
  - name: order status
    channel: web
    lang: zh-CN
    steps:
      - user: where is my order?
        intent: order_status
        reply:
          contains: order number
      - user: \"100001\"
        slots: { order_number: 100001, confirm: ~ }
        reply: [{ exact: Done }, { matches: \"shipped|delivered\" }]
        handoff: false
      - user: how long does shipping take
        knowledge: shipping_time
        buttons: [/order_status, Talk to a person]
";

#[test]
fn loader_skips_tests_folder() -> Result<()> {
    let bot = bot_with_tests(&[("broken.yml", "intents: [not, a, mapping\n"), ("nested/more.yml", "settings: {}\n")])?;
    let report = validate(&bot.dir);
    assert!(report.diagnostics.is_empty(), "{report}");
    Ok(())
}

#[test]
fn loader_reads_nested_tests_folder() -> Result<()> {
    let bot = TempBot::copy_of(&fixture("valid"))?;
    fs::create_dir_all(bot.dir.join("flows/tests"))?;
    fs::write(bot.dir.join("flows/tests/extra.yml"), "intents: [not, a, mapping\n")?;
    let report = validate(&bot.dir);
    let nested = bot.dir.join("flows/tests/extra.yml");
    assert!(report.errors().any(|d| d.file == nested), "{report}");
    Ok(())
}

#[test]
fn tests_without_folder_are_empty() -> Result<()> {
    let bot = TempBot::copy_of(&fixture("valid"))?;
    let tests = load_ok(&bot)?;
    assert_eq!(tests.case_count(), 0);
    Ok(())
}

#[test]
fn tests_read_case_fields() -> Result<()> {
    let bot = bot_with_tests(&[("orders.yml", ORDER_TEST)])?;
    let tests = load_ok(&bot)?;
    let case = only_case(&tests)?;
    assert_eq!(case.name, "order status");
    assert_eq!(case.channel.as_str(), "web");
    assert_eq!(case.lang, Some(Lang::new("zh")));
    assert_eq!(case.steps.len(), 3);
    assert_eq!(case.steps[1].user, "100001");
    Ok(())
}

#[test]
fn tests_default_channel_is_test() -> Result<()> {
    let text = "tests:\n  - name: hello\n    steps:\n      - user: hi\n";
    let bot = bot_with_tests(&[("hello.yaml", text)])?;
    let tests = load_ok(&bot)?;
    let case = only_case(&tests)?;
    assert_eq!(case.channel.as_str(), "test");
    assert_eq!(case.lang, None);
    Ok(())
}

#[test]
fn tests_keep_expectation_positions() -> Result<()> {
    let bot = bot_with_tests(&[("orders.yml", ORDER_TEST)])?;
    let tests = load_ok(&bot)?;
    let case = only_case(&tests)?;
    let reply = &case.steps[0].expectations[1];
    assert!(matches!(reply.check, Check::Reply(_)), "{:?}", reply.check);
    assert_eq!(reply.at.file, bot.dir.join("tests/orders.yml"));
    assert_eq!((reply.at.line, reply.at.column), (8, 9));
    assert_eq!((case.steps[2].at.line, case.steps[2].at.column), (14, 9));
    Ok(())
}

#[test]
fn tests_read_each_check() -> Result<()> {
    let bot = bot_with_tests(&[("orders.yml", ORDER_TEST)])?;
    let tests = load_ok(&bot)?;
    let case = only_case(&tests)?;
    let Check::Intent(Some(intent)) = &case.steps[0].expectations[0].check else { bail!("{:?}", case.steps[0].expectations) };
    assert_eq!(intent.as_str(), "order_status");
    let Check::Slots(slots) = &case.steps[1].expectations[0].check else { bail!("{:?}", case.steps[1].expectations) };
    let expected = vec![(SlotName::new("order_number"), Some("100001".to_owned())), (SlotName::new("confirm"), None)];
    assert_eq!(slots, &expected);
    let Check::Reply(patterns) = &case.steps[1].expectations[1].check else { bail!("{:?}", case.steps[1].expectations) };
    assert_eq!(patterns.len(), 2);
    assert!(patterns[1].is_match("Status: shipped"));
    assert!(matches!(case.steps[1].expectations[2].check, Check::Handoff(false)));
    let Check::Knowledge(sources) = &case.steps[2].expectations[0].check else { bail!("{:?}", case.steps[2].expectations) };
    assert_eq!(sources, &vec!["shipping_time".to_owned()]);
    let Check::Buttons(buttons) = &case.steps[2].expectations[1].check else { bail!("{:?}", case.steps[2].expectations) };
    assert_eq!(buttons, &vec!["/order_status".to_owned(), "Talk to a person".to_owned()]);
    Ok(())
}

#[test]
fn tests_accept_null_intent_and_knowledge() -> Result<()> {
    let text = "tests:\n  - name: fallback\n    steps:\n      - user: sing\n        intent: ~\n        knowledge: ~\n";
    let bot = bot_with_tests(&[("fallback.yml", text)])?;
    let tests = load_ok(&bot)?;
    let checks = &only_case(&tests)?.steps[0].expectations;
    assert!(matches!(&checks[0].check, Check::Intent(None)), "{checks:?}");
    assert!(matches!(&checks[1].check, Check::Knowledge(sources) if sources.is_empty()), "{checks:?}");
    Ok(())
}

#[test]
fn tests_accept_article_sources() -> Result<()> {
    let text = "tests:\n  - name: article\n    steps:\n      - user: returns\n        knowledge: [articles/shipping.md, \"articles/policies/returns.zh.md#退货\"]\n";
    let bot = bot_with_tests(&[("article.yml", text)])?;
    let tests = load_ok(&bot)?;
    assert_eq!(tests.case_count(), 1);
    Ok(())
}

#[test]
fn unknown_step_key_suggests_closest() -> Result<()> {
    let text = "tests:\n  - name: typo\n    steps:\n      - user: hi\n        replly: { contains: Hello }\n";
    let bot = bot_with_tests(&[("typo.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/typo.yml"), 5, 9)?;
    assert!(diagnostic.message.contains("unknown field `replly`"), "{diagnostic}");
    assert!(diagnostic.message.contains("did you mean `reply`?"), "{diagnostic}");
    Ok(())
}

#[test]
fn unknown_test_key_suggests_closest() -> Result<()> {
    let text = "tests:\n  - name: typo\n    chanel: web\n    steps:\n      - user: hi\n";
    let bot = bot_with_tests(&[("typo.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/typo.yml"), 3, 5)?;
    assert!(diagnostic.message.contains("did you mean `channel`?"), "{diagnostic}");
    Ok(())
}

#[test]
fn undefined_names_are_errors() -> Result<()> {
    let text = "\
tests:
  - name: names
    lang: fr
    steps:
      - user: hi
        intent: order_stauts
        slots: { order_numbr: \"1\" }
        knowledge: shiping_time
";
    let bot = bot_with_tests(&[("names.yml", text)])?;
    let report = load_err(&bot)?;
    let file = bot.dir.join("tests/names.yml");
    assert!(at(&report, &file, 3, 11)?.message.contains("not in settings.languages"), "{report}");
    assert!(at(&report, &file, 6, 17)?.message.contains("did you mean `order_status`?"), "{report}");
    assert!(at(&report, &file, 7, 18)?.message.contains("did you mean `order_number`?"), "{report}");
    assert!(at(&report, &file, 8, 20)?.message.contains("did you mean `shipping_time`?"), "{report}");
    Ok(())
}

#[test]
fn invalid_regex_is_an_error() -> Result<()> {
    let text = "tests:\n  - name: regex\n    steps:\n      - user: hi\n        reply: { matches: \"(unclosed\" }\n";
    let bot = bot_with_tests(&[("regex.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/regex.yml"), 5, 27)?;
    assert!(diagnostic.message.starts_with("invalid regular expression in `matches`"), "{diagnostic}");
    Ok(())
}

#[test]
fn reply_string_is_an_error() -> Result<()> {
    let text = "tests:\n  - name: reply\n    steps:\n      - user: hi\n        reply: Hello\n";
    let bot = bot_with_tests(&[("reply.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/reply.yml"), 5, 16)?;
    assert!(diagnostic.message.contains("write `contains: ...`"), "{diagnostic}");
    Ok(())
}

#[test]
fn syntax_error_has_position() -> Result<()> {
    let text = "tests:\n  - name: broken\n    steps: [\n";
    let bot = bot_with_tests(&[("broken.yml", text), ("good.yml", "tests:\n  - name: ok\n    steps:\n      - user: hi\n")])?;
    let report = load_err(&bot)?;
    let errors: Vec<&Diagnostic> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0].file, bot.dir.join("tests/broken.yml"));
    assert!(errors[0].line >= 3, "{report}");
    assert!(errors[0].message.starts_with("invalid YAML"), "{report}");
    Ok(())
}

#[test]
fn missing_user_is_an_error() -> Result<()> {
    let text = "tests:\n  - name: no user\n    steps:\n      - intent: greet\n";
    let bot = bot_with_tests(&[("user.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/user.yml"), 4, 9)?;
    assert!(diagnostic.message.contains("missing the required field `user`"), "{diagnostic}");
    Ok(())
}

#[test]
fn unquoted_yes_is_an_error() -> Result<()> {
    let text = "tests:\n  - name: yes\n    steps:\n      - user: yes\n";
    let bot = bot_with_tests(&[("yes.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/yes.yml"), 4, 15)?;
    assert!(diagnostic.message.contains("quote it as \"yes\""), "{diagnostic}");
    Ok(())
}

#[test]
fn duplicate_test_name_is_an_error() -> Result<()> {
    let text = "tests:\n  - name: same\n    steps: [{ user: hi }]\n  - name: same\n    steps: [{ user: hello }]\n";
    let bot = bot_with_tests(&[("same.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/same.yml"), 4, 5)?;
    assert!(diagnostic.message.contains("defined twice in this file (first at line 2)"), "{diagnostic}");
    Ok(())
}

#[test]
fn empty_test_file_is_an_error() -> Result<()> {
    let bot = bot_with_tests(&[("empty.yml", "# nothing yet\n")])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/empty.yml"), 0, 0)?;
    assert!(diagnostic.message.starts_with("file contains no tests"), "{diagnostic}");
    Ok(())
}

#[test]
fn chinese_text_counts_columns_in_characters() -> Result<()> {
    let text = "tests:\n  - name: 中文\n    steps:\n      - { user: 我的订单到哪了, intnet: order_status }\n";
    let bot = bot_with_tests(&[("zh.yml", text)])?;
    let report = load_err(&bot)?;
    let diagnostic = at(&report, &bot.dir.join("tests/zh.yml"), 4, 26)?;
    assert_eq!(diagnostic.offending_text(), "intnet");
    Ok(())
}
