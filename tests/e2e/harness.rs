//! Starts the real `lepton` binary on 127.0.0.1 and talks to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

pub const LEPTON: &str = env!("CARGO_BIN_EXE_lepton");

pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}

/// Creates a fresh folder under the system temp dir. Tests leave it in place,
/// since CI machines start empty.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lepton-e2e-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Returns the folder of the demo's model and index, trained once per test run
/// and shared by every server.
pub fn shared_data_dir() -> anyhow::Result<PathBuf> {
    static DATA: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let cell = DATA.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = guard.as_ref() {
        return Ok(dir.clone());
    }
    let dir = temp_dir("data");
    for step in ["train", "index"] {
        let output = Command::new(LEPTON).arg(step).arg(demo_dir()).arg("--data-dir").arg(&dir).output()?;
        if !output.status.success() {
            bail!("lepton {step} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
    *guard = Some(dir.clone());
    Ok(dir)
}

/// Copies a folder recursively, skipping entries whose names start with `.`.
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A running `lepton serve` process; killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    /// The `--store` argument: an embedded store file, or a Redis URL.
    pub store: PathBuf,
}

impl Server {
    /// Serves the demo bot with the shared model and a new embedded store.
    pub fn start() -> anyhow::Result<Self> {
        let store = temp_dir("store").join("sessions.redb");
        Self::start_with_store(&store)
    }

    pub fn start_with_store(store: &Path) -> anyhow::Result<Self> {
        let store = store.to_str().context("store path is not UTF-8")?;
        Self::start_with_args(&["--store", store], &[])
    }

    /// Serves the demo bot with the shared model, extra `lepton serve`
    /// arguments and environment variables.
    pub fn start_with_args(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let data = shared_data_dir()?;
        let mut all = vec!["--no-watch"];
        all.extend_from_slice(args);
        Self::start_bot(&demo_dir(), &data, &all, env)
    }

    /// Serves the bot in `bot_dir` with its model and index in `data_dir`,
    /// watching the folder for edits unless `args` has `--no-watch`.
    pub fn start_bot(bot_dir: &Path, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(LEPTON);
        command
            .args(["serve", "--port", "0", "--demo-orders"])
            .arg(bot_dir)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("LEPTON_LOG", "warn")
            .env_remove("LEPTON_AGENT_TOKEN")
            .env_remove("LEPTON_SESSION_STORE")
            .env_remove("LEPTON_REDIS_URL")
            .env_remove("LEPTON_REDIS_KEY_PREFIX")
            // The tests send messages as fast as a program can, all from
            // 127.0.0.1; `limits.rs` turns the limits on where it tests them.
            .env("LEPTON_WEB_RATE_LIMIT_CONVERSATION", "off")
            .env("LEPTON_WEB_RATE_LIMIT_ADDRESS", "off");
        for (name, value) in env {
            command.env(name, value);
        }
        let store = args.windows(2).find(|pair| pair[0] == "--store").map(|pair| PathBuf::from(pair[1])).unwrap_or_default();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start lepton serve")?;

        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                bail!("lepton serve exited ({status}) before it was ready");
            };
            let line = line?;
            if let Some(rest) = line.strip_prefix("Lepton is ready at ") {
                let url = rest.split_whitespace().next().unwrap_or_default().trim_end_matches('/');
                break url.to_owned();
            }
        };
        Ok(Self { child, url, store })
    }

    /// Wraps a `lepton serve` process that a test started itself, after it printed its URL.
    pub fn from_child(child: Child, url: String, store: PathBuf) -> Self {
        Self { child, url, store }
    }

    /// Stops the server the way an operator does (SIGTERM), then waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        for _ in 0..100 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("lepton serve did not stop within 10 s of SIGTERM")
    }

    /// Sends SIGTERM without waiting, as an operator or an orchestrator does.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill -TERM failed: {status}");
        }
        Ok(())
    }

    /// Waits up to `limit` for the process to exit and returns its status.
    pub fn wait_for_exit(mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("lepton serve did not exit within {limit:?}")
    }

    pub fn ws_url(&self, conversation: &str, after: u64) -> String {
        format!("{}/api/v1/conversations/{conversation}/ws?after={after}", self.url.replacen("http", "ws", 1))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A customer of the REST API.
pub struct Customer {
    pub client: reqwest::Client,
    pub base: String,
    pub conversation: String,
    pub sent: u32,
}

impl Customer {
    pub fn new(server: &Server, conversation: &str) -> Self {
        Self { client: reqwest::Client::new(), base: server.url.clone(), conversation: conversation.to_owned(), sent: 0 }
    }

    /// Sends a message and returns the texts of the bot's replies.
    pub async fn say(&mut self, text: &str) -> anyhow::Result<Vec<String>> {
        let body = self.send(text).await?;
        Ok(reply_texts(&body))
    }

    /// Sends a message and returns the whole JSON body; fails on a non-200 status.
    pub async fn send(&mut self, text: &str) -> anyhow::Result<Value> {
        self.sent += 1;
        let id = format!("{}-{}", self.conversation, self.sent);
        let url = format!("{}/api/v1/conversations/{}/messages", self.base, self.conversation);
        let response = self.client.post(url).json(&json!({ "text": text, "client_message_id": id })).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status != reqwest::StatusCode::OK {
            bail!("sending {text:?} returned {status}: {body}");
        }
        Ok(body)
    }
}

/// Returns the texts of the replies in a messages response, in order.
pub fn reply_texts(body: &Value) -> Vec<String> {
    let events = body["events"].as_array().cloned().unwrap_or_default();
    events
        .iter()
        .filter(|e| e["kind"]["type"] == "reply")
        .filter_map(|e| e["kind"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// An agent of the agent API (loopback, so no token is needed).
pub struct Agent {
    pub client: reqwest::Client,
    pub base: String,
    pub name: String,
}

impl Agent {
    pub fn new(server: &Server, name: &str) -> Self {
        Self { client: reqwest::Client::new(), base: server.url.clone(), name: name.to_owned() }
    }

    pub async fn waiting(&self) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/agent/conversations", self.base);
        Ok(self.client.get(url).send().await?.json().await?)
    }

    /// Posts an agent action (`claim`, `messages`, `handback`, `close`); returns status and body.
    pub async fn act(&self, conversation: &str, action: &str, text: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}/api/v1/agent/conversations/{conversation}/{action}", self.base);
        let mut body = json!({ "agent": self.name });
        if let Some(text) = text {
            body["text"] = json!(text);
        }
        let response = self.client.post(url).json(&body).send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}
