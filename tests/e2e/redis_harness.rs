//! A `redis-server` of the test's own on a free loopback port, which a test
//! can kill and restart, and `lepton serve` processes that share it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::harness::{temp_dir, Server};

/// A `redis-server` child process; killed on drop. It appends every write to
/// an AOF file fsynced before the reply, so that a killed and restarted
/// server keeps every write it acknowledged, as a production Redis configured
/// for durability does.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let mut server = Self { child: None, port, dir: temp_dir("redis") };
        server.spawn()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start redis-server: install it (Debian: apt-get install redis-server); the Redis tests need their own server")?;
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("redis-server did not listen on port {} within 5 s", self.port)
    }

    /// Kills the server as a crash would (SIGKILL).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port, from its AOF file.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Starts `lepton serve` on the demo bot with the Redis store under `prefix`.
pub fn serve_on_redis(redis: &RedisServer, prefix: &str) -> anyhow::Result<Server> {
    Server::start_with_args(&["--store", &redis.url()], &[("LEPTON_REDIS_KEY_PREFIX", prefix)])
}
