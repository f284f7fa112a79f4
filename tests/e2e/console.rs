//! The support console with the real binary: `lepton agent add` writes the
//! accounts file, `lepton serve` reads it, and the agent signs in and claims.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::harness::{temp_dir, Customer, Server, LEPTON};

pub(crate) const PASSWORD: &str = "a long enough password";

/// Runs `lepton agent ARGS --agents FILE` with `stdin` as its input; returns standard output.
pub(crate) fn agent_command(file: &std::path::Path, args: &[&str], stdin: &str) -> anyhow::Result<String> {
    let mut child = Command::new(LEPTON)
        .arg("agent")
        .args(args)
        .arg("--agents")
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start lepton agent")?;
    child.stdin.take().context("no stdin")?.write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("lepton agent {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn added_agent_signs_in_and_claims() -> anyhow::Result<()> {
    let file = temp_dir("console").join("agents.json");
    agent_command(&file, &["add", "alice", "--admin"], &format!("{PASSWORD}\n"))?;
    let listed = agent_command(&file, &["list"], "")?;
    let store = temp_dir("console-store").join("sessions.redb");
    let server = Server::start_with_args(&["--store", store.to_str().context("store path is not UTF-8")?, "--agents", file.to_str().context("path is not UTF-8")?], &[])?;

    let mut customer = Customer::new(&server, "console-e2e");
    customer.send("blorf snarkle quux").await?;
    customer.send("zibble wop frazz").await?;

    let client = reqwest::Client::new();
    let sign_in = client.post(format!("{}/console/api/session", server.url)).json(&json!({ "name": "alice", "password": PASSWORD })).send().await?;
    let cookie = sign_in.headers().get("set-cookie").context("no cookie")?.to_str()?.split(';').next().unwrap_or_default().to_owned();
    let session: Value = sign_in.json().await?;
    let csrf = session["csrf"].as_str().context("no csrf token")?.to_owned();
    let queue: Value = client.get(format!("{}/console/api/queue", server.url)).header("cookie", &cookie).send().await?.json().await?;
    let claim = client
        .post(format!("{}/console/api/conversations/console-e2e/claim", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    let claim_status = claim.status().as_u16();
    let wrong = client.post(format!("{}/console/api/session", server.url)).json(&json!({ "name": "alice", "password": "wrong password" })).send().await?;

    assert_eq!(listed.trim(), "alice\tadmin");
    assert_eq!(session["agent"], json!({ "name": "alice", "role": "admin" }));
    assert_eq!(queue["waiting"][0]["conversation_id"], json!("console-e2e"), "{queue}");
    assert_eq!(claim_status, 200);
    assert_eq!(wrong.status().as_u16(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_agent_cannot_sign_in() -> anyhow::Result<()> {
    let file = temp_dir("console-remove").join("agents.json");
    agent_command(&file, &["add", "bob"], &format!("{PASSWORD}\n"))?;
    let store = temp_dir("console-remove-store").join("sessions.redb");
    let server = Server::start_with_args(&["--store", store.to_str().context("store path is not UTF-8")?, "--agents", file.to_str().context("path is not UTF-8")?], &[])?;
    let client = reqwest::Client::new();
    let url = format!("{}/console/api/session", server.url);

    let before = client.post(&url).json(&json!({ "name": "bob", "password": PASSWORD })).send().await?.status().as_u16();
    agent_command(&file, &["remove", "bob"], "")?;
    let after = client.post(&url).json(&json!({ "name": "bob", "password": PASSWORD })).send().await?.status().as_u16();

    assert_eq!(before, 200);
    assert_eq!(after, 401);
    Ok(())
}
