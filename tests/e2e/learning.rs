//! Learning from handoffs with the real binary: a message the bot did not
//! recognise is listed for agents, an agent adds it as an example through the
//! console API, and the reloaded bot recognises it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::harness::{copy_dir, demo_dir, shared_data_dir, temp_dir, Customer, Server, LEPTON};

const PASSWORD: &str = "a long enough password";

/// A nonsense phrase that no demo intent or FAQ entry matches.
const UNRECOGNISED: &str = "blorf snarkle quux";

/// Copies the demo bot with its trained model and index, and writes an
/// accounts file with the admin `alice`; returns the three paths.
fn bot_copy(name: &str) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let root = temp_dir(name);
    let (bot, data, agents) = (root.join("bot"), root.join("data"), root.join("agents.json"));
    copy_dir(&demo_dir(), &bot)?;
    copy_dir(&shared_data_dir()?, &data)?;
    add_agent(&agents)?;
    Ok((bot, data, agents))
}

fn add_agent(file: &Path) -> anyhow::Result<()> {
    let mut child = Command::new(LEPTON)
        .args(["agent", "add", "alice", "--admin", "--agents"])
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start lepton agent")?;
    child.stdin.take().context("no stdin")?.write_all(format!("{PASSWORD}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("lepton agent add failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// A signed-in console client.
struct Console {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Console {
    async fn sign_in(server: &Server) -> anyhow::Result<Self> {
        let client = reqwest::Client::new();
        let response = client.post(format!("{}/console/api/session", server.url)).json(&json!({ "name": "alice", "password": PASSWORD })).send().await?;
        let cookie = response.headers().get("set-cookie").context("no cookie")?.to_str()?.split(';').next().unwrap_or_default().to_owned();
        let session: Value = response.json().await?;
        let csrf = session["csrf"].as_str().context("no csrf token")?.to_owned();
        Ok(Self { client, base: server.url.clone(), cookie, csrf })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.client.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await?;
        Ok(response.json().await?)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn added_example_is_recognised_after_reload() -> anyhow::Result<()> {
    let (bot, data, agents) = bot_copy("learning")?;
    let agents = agents.to_str().context("path is not UTF-8")?;
    let server = Server::start_bot(&bot, &data, &["--no-watch", "--store", "memory", "--agents", agents], &[])?;
    let mut customer = Customer::new(&server, "learning-e2e");
    let before = customer.say(UNRECOGNISED).await?;
    let console = Console::sign_in(&server).await?;

    let listed = console.get("/console/api/unrecognised?limit=10").await?;
    let message = listed["messages"].as_array().and_then(|messages| messages.first()).cloned().context("no unrecognised message")?;
    let seq = message["seq"].as_u64().context("no seq")?;
    let body = json!({ "conversation_id": "learning-e2e", "seq": seq, "intent": "greet", "new_intent": false });
    let (status, added) = console.post("/console/api/examples", &body).await?;
    let (again_status, again) = console.post("/console/api/examples", &body).await?;
    let after_listed = console.get("/console/api/unrecognised?limit=10").await?;
    let after = Customer::new(&server, "learning-e2e-after").say(UNRECOGNISED).await?;
    let smalltalk = std::fs::read_to_string(bot.join("intents/smalltalk.yml"))?;

    assert!(!before.join("\n").contains("welcome to"), "the demo already recognised the phrase: {before:?}");
    assert_eq!(message["text"], json!(UNRECOGNISED), "{listed}");
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["file"], json!("intents/smalltalk.yml"), "{added}");
    assert_eq!(added["lang"], json!("en"), "{added}");
    assert!(added["reload"].as_str().unwrap_or_default().starts_with("reloaded"), "{added}");
    let line = added["line"].as_u64().context("no line")? as usize;
    assert_eq!(smalltalk.lines().nth(line - 1), Some("        - \"blorf snarkle quux\""));
    assert_eq!(again_status, 409, "{again}");
    assert_eq!(after_listed["messages"], json!([]), "{after_listed}");
    assert!(after.join("\n").contains("welcome to"), "the reloaded bot did not greet: {after:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn new_intent_hands_off_until_answered() -> anyhow::Result<()> {
    let (bot, data, agents) = bot_copy("learning-new")?;
    let agents = agents.to_str().context("path is not UTF-8")?;
    let server = Server::start_bot(&bot, &data, &["--no-watch", "--store", "memory", "--agents", agents], &[])?;
    let mut customer = Customer::new(&server, "learning-new-e2e");
    customer.say("zibble wop frazz").await?;
    let console = Console::sign_in(&server).await?;

    let listed = console.get("/console/api/unrecognised?limit=1").await?;
    let seq = listed["messages"][0]["seq"].as_u64().context("no unrecognised message")?;
    let body = json!({ "conversation_id": "learning-new-e2e", "seq": seq, "intent": "gift_wrap", "new_intent": true });
    let (status, added) = console.post("/console/api/examples", &body).await?;
    let bad_name = json!({ "conversation_id": "learning-new-e2e", "seq": seq, "intent": "gift wrap", "new_intent": true });
    let (bad_status, bad) = console.post("/console/api/examples", &bad_name).await?;
    let mut other = Customer::new(&server, "learning-new-payload");
    let handed_off = other.send("/gift_wrap").await?;
    let intents = console.get("/console/api/intents").await?;

    assert_eq!(status, 201, "{added}");
    assert_eq!(added["file"], json!("intents/learned.yml"), "{added}");
    assert_eq!(bad_status, 422, "{bad}");
    assert_eq!(bad["error"]["code"], json!("invalid_intent"), "{bad}");
    let handoff = handed_off["events"].as_array().into_iter().flatten().any(|event| !event["kind"]["handoff"].is_null());
    assert!(handoff, "the new intent did not hand off: {handed_off}");
    let listed_intent = intents["intents"].as_array().into_iter().flatten().find(|intent| intent["name"] == json!("gift_wrap"));
    assert_eq!(listed_intent.map(|intent| intent["examples"].clone()), Some(json!(1)), "{intents}");
    Ok(())
}
