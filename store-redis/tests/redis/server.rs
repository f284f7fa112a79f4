//! A Redis server for one test: a `redis-server` child on a free loopback
//! port, killed on drop, or, where `redis-server` is not installed, the server
//! at `LEPTON_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Every test
//! gets its own key prefix, so tests can share the external server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use lepton_redis::RedisConfig;

pub struct TestRedis {
    server: Server,
    prefix: String,
}

enum Server {
    Own { child: Option<Child>, port: u16, password: Option<String> },
    External { url: String },
}

impl TestRedis {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with_password(None)
    }

    /// Starts a server that requires `password` (`requirepass`); with an
    /// external server the password is ignored.
    pub fn start_with_password(password: Option<&str>) -> anyhow::Result<Self> {
        // Another test may take the free port before redis-server binds it, so try a few.
        let mut attempts = 0;
        loop {
            let port = free_port()?;
            let password = password.map(str::to_owned);
            let server = match spawn_server(port, password.as_deref()) {
                Ok(child) => Server::Own { child: Some(child), port, password },
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    let url = std::env::var("LEPTON_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
                    Server::External { url }
                }
                Err(error) => return Err(error).context("starting redis-server"),
            };
            let mut redis = Self { server, prefix: unique_prefix() };
            attempts += 1;
            match redis.wait_until_ready() {
                Ok(()) => return Ok(redis),
                Err(error) if attempts >= 3 => return Err(error),
                Err(_) => continue,
            }
        }
    }

    pub fn url(&self) -> String {
        match &self.server {
            Server::Own { port, password: Some(password), .. } => format!("redis://:{password}@127.0.0.1:{port}/0"),
            Server::Own { port, password: None, .. } => format!("redis://127.0.0.1:{port}/0"),
            Server::External { url } => url.clone(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns a configuration with this test's key prefix and short timeouts.
    pub fn config(&self, instance_id: &str) -> RedisConfig {
        RedisConfig {
            url: self.url(),
            key_prefix: self.prefix.clone(),
            lease_ttl: Duration::from_millis(300),
            lease_wait: Duration::from_secs(5),
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            instance_id: instance_id.to_owned(),
            ..RedisConfig::default()
        }
    }

    /// Opens a plain connection, for writing records as an older build would.
    pub async fn raw(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    /// Why this test cannot stop, start or configure the server, if it cannot.
    pub fn not_own_server(&self) -> Option<String> {
        match &self.server {
            Server::Own { .. } => None,
            Server::External { url } => {
                Some(format!("redis-server is not installed, so tests use the external server at {url}, which they cannot restart or configure"))
            }
        }
    }

    /// Kills the server, as a crash would.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let Server::Own { child, .. } = &mut self.server else {
            anyhow::bail!("an external server cannot be killed");
        };
        if let Some(mut child) = child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port, empty, requiring `password`
    /// from now on.
    pub fn restart_with_password(&mut self, new_password: Option<&str>) -> anyhow::Result<()> {
        self.kill()?;
        let Server::Own { password, .. } = &mut self.server else {
            anyhow::bail!("an external server cannot be restarted");
        };
        *password = new_password.map(str::to_owned);
        self.restart()
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let Server::Own { child, port, password } = &mut self.server else {
            anyhow::bail!("an external server cannot be restarted");
        };
        *child = Some(spawn_server(*port, password.as_deref()).context("restarting redis-server")?);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let (port, password) = match &self.server {
            Server::Own { port, password, .. } => (*port, password.clone()),
            Server::External { .. } => return Ok(()),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(port, password.as_deref()).is_ok() {
                return Ok(());
            }
            if let Server::Own { child: Some(child), .. } = &mut self.server {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("redis-server on port {port} exited with {status}");
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "redis-server on port {port} did not reply to PING within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        match &mut self.server {
            Server::Own { child: Some(child), .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Server::Own { child: None, .. } => {}
            Server::External { url } => {
                if let Err(error) = delete_keys(url, &self.prefix) {
                    eprintln!("could not delete the test keys {}:* from {url}: {error}", self.prefix);
                }
            }
        }
    }
}

/// Deletes this test's keys from a shared server.
fn delete_keys(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let mut connection = redis::Client::open(url)?.get_connection()?;
    let keys: Vec<String> = redis::Commands::scan_match::<_, String>(&mut connection, format!("{prefix}:*"))?.collect::<Result<_, _>>()?;
    if !keys.is_empty() {
        redis::cmd("DEL").arg(&keys).query::<()>(&mut connection)?;
    }
    Ok(())
}

fn spawn_server(port: u16, password: Option<&str>) -> std::io::Result<Child> {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", &std::env::temp_dir().to_string_lossy()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    command.spawn()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends PING over a plain socket and expects PONG.
fn ping(port: u16, password: Option<&str>) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    if let Some(password) = password {
        write!(stream, "AUTH {password}\r\n")?;
        expect_reply(&mut stream, "+OK")?;
    }
    stream.write_all(b"PING\r\n")?;
    expect_reply(&mut stream, "+PONG")
}

fn expect_reply(stream: &mut TcpStream, expected: &str) -> anyhow::Result<()> {
    let mut reply = [0u8; 64];
    let read = stream.read(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply[..read]);
    anyhow::ensure!(reply.starts_with(expected), "redis-server replied {reply:?}, expected {expected}");
    Ok(())
}

fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("lepton-test-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
