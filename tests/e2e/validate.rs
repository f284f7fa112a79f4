//! `lepton validate` on the demo and on a broken bot.

use std::process::Command;

use crate::harness::{demo_dir, temp_dir, LEPTON};

#[test]
fn demo_bot_is_valid() -> anyhow::Result<()> {
    let output = Command::new(LEPTON).arg("validate").arg(demo_dir()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "lepton validate demo failed:\n{stdout}");
    Ok(())
}

#[test]
fn broken_bot_reports_each_problem_with_its_line() -> anyhow::Result<()> {
    let dir = temp_dir("broken-bot");
    std::fs::write(
        dir.join("bot.yml"),
        "settings:\n  name: broken\n  languages: [en, zh]\n  handof:\n    after_fallbacks: 2\n",
    )?;
    std::fs::write(
        dir.join("intents.yml"),
        concat!(
            "intents:\n",
            "  greet:\n",
            "    examples:\n",
            "      en: [hello, hi there, good morning, hey, hiya]\n",
            "      zh: [你好, 您好, 早上好, 嗨, 哈喽]\n",
            "    response: greet\n",
            "  order:\n",
            "    examples:\n",
            "      en: [where is my order, hello, track it, my parcel, order status]\n",
            "      zh: [订单在哪, 查订单, 物流, 快递到哪了, 订单状态]\n",
            "    flow: missing_flow\n",
        ),
    )?;
    std::fs::write(
        dir.join("responses.yml"),
        concat!(
            "responses:\n",
            "  greet:\n",
            "    en: [\"Hello {name}\"]\n",
            "  greet:\n",
            "    en: [Hi]\n",
            "    zh: [你好]\n",
        ),
    )?;

    let output = Command::new(LEPTON).arg("validate").arg(&dir).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "expected exit code 1:\n{stdout}");
    assert!(stdout.contains("bot.yml:4:3"), "expected the unknown field `handof` at bot.yml:4:3:\n{stdout}");
    assert!(stdout.contains("handoff"), "expected the closest valid name `handoff`:\n{stdout}");
    assert!(stdout.contains("intents.yml:9:"), "expected the duplicate example `hello` on intents.yml line 9:\n{stdout}");
    assert!(stdout.contains("intents.yml:11:"), "expected the undefined flow on intents.yml line 11:\n{stdout}");
    assert!(stdout.contains("responses.yml:4:3"), "expected the duplicate key at responses.yml:4:3:\n{stdout}");
    Ok(())
}
