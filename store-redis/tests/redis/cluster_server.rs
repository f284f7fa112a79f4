//! A Redis Cluster for one test: three `redis-server` children in cluster
//! mode on free loopback ports, joined by `redis-cli --cluster create` with
//! every hash slot on one of the three primaries and no replicas. The servers
//! are killed and their folder removed on drop. Where `redis-server` is not
//! installed, the tests that need a cluster print why and pass.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use lepton_redis::RedisConfig;

/// How many primaries the cluster has.
pub const NODES: usize = 3;
/// The bound on waiting for a server or the cluster to become ready.
const READY_WAIT: Duration = Duration::from_secs(30);

pub struct TestCluster {
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
    password: Option<String>,
    prefix: String,
}

struct ClusterNode {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

impl TestCluster {
    /// Starts a cluster, or prints why `test` is skipped and returns `None`
    /// where `redis-server` is not installed.
    pub fn start(test: &str) -> anyhow::Result<Option<Self>> {
        Self::start_with_password(test, None)
    }

    /// Starts a cluster whose nodes require `password` (`requirepass`).
    pub fn start_with_password(test: &str, password: Option<&str>) -> anyhow::Result<Option<Self>> {
        if let Err(error) = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status() {
            anyhow::ensure!(error.kind() == std::io::ErrorKind::NotFound, "cannot run redis-server: {error}");
            println!("skipped {test}: redis-server is not installed, and a Redis Cluster test needs its own servers");
            return Ok(None);
        }
        // Another test may take a free port before redis-server binds it, so try a few times.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::try_start(password) {
                Ok(cluster) => return Ok(Some(cluster)),
                Err(error) if attempts >= 3 => return Err(error),
                Err(error) => eprintln!("starting a test cluster failed, trying again: {error:#}"),
            }
        }
    }

    fn try_start(password: Option<&str>) -> anyhow::Result<Self> {
        let prefix = unique_prefix();
        let dir = std::env::temp_dir().join(format!("{prefix}-cluster"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ports = free_ports(2 * NODES)?;
        let nodes = (0..NODES).map(|i| ClusterNode { port: ports[i], bus_port: ports[NODES + i], child: None }).collect();
        let mut cluster = Self { nodes, dir, password: password.map(str::to_owned), prefix };

        for index in 0..NODES {
            cluster.spawn(index)?;
        }
        for index in 0..NODES {
            cluster.wait_for_ping(index)?;
        }
        cluster.create()?;
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// Returns node `index`'s URL, with the password if the cluster has one.
    pub fn node_url(&self, index: usize) -> String {
        let port = self.nodes[index].port;
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{port}"),
            None => format!("redis://127.0.0.1:{port}"),
        }
    }

    /// Returns node `index`'s URL without a password.
    pub fn node_url_without_password(&self, index: usize) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[index].port)
    }

    /// Returns the seed list of all nodes, starting with node `first`.
    pub fn seeds_from(&self, first: usize) -> String {
        let order = (0..NODES).map(|offset| self.node_url((first + offset) % NODES));
        order.collect::<Vec<_>>().join(",")
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns a cluster configuration whose seeds start with node `first`,
    /// with this test's key prefix and short timeouts.
    pub fn config(&self, instance_id: &str, first: usize) -> RedisConfig {
        RedisConfig {
            url: self.seeds_from(first),
            cluster: true,
            key_prefix: self.prefix.clone(),
            lease_ttl: Duration::from_millis(300),
            lease_wait: Duration::from_secs(5),
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            instance_id: instance_id.to_owned(),
            ..RedisConfig::default()
        }
    }

    /// Opens a plain connection to node `index`.
    pub fn node_connection(&self, index: usize) -> anyhow::Result<redis::Connection> {
        let connection = redis::Client::open(self.node_url(index))?.get_connection_with_timeout(Duration::from_secs(2))?;
        connection.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(connection)
    }

    /// Returns `key`'s hash slot.
    pub fn slot_of(&self, key: &str) -> anyhow::Result<u16> {
        Ok(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut self.node_connection(0)?)?)
    }

    /// Returns the index of the node that serves `key`'s hash slot.
    pub fn node_of(&self, key: &str) -> anyhow::Result<usize> {
        let slot = self.slot_of(key)?;
        let mut connection = self.node_connection(0)?;
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut connection)?;
        let owners = slot_owners(&nodes)?;
        let port = owners
            .iter()
            .find(|(range, _)| range.contains(&slot))
            .map(|(_, port)| *port)
            .ok_or_else(|| anyhow::anyhow!("no node serves slot {slot}; CLUSTER NODES: {nodes}"))?;
        self.nodes.iter().position(|node| node.port == port).ok_or_else(|| anyhow::anyhow!("slot {slot} is on unknown port {port}"))
    }

    /// Kills node `index`, as a crash would.
    pub fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts node `index` again, empty but with its cluster configuration
    /// file, so it serves its slots again, and waits until the cluster is ok.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.spawn(index)?;
        self.wait_for_ping(index)?;
        self.wait_until_ok()
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let ClusterNode { port, bus_port, .. } = self.nodes[index];
        let config_file = self.dir.join(format!("nodes-{port}.conf"));
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--cluster-port", &bus_port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", &config_file.to_string_lossy()])
            // Longer than any test, so that a killed node is never failed and the cluster stays ok.
            .args(["--cluster-node-timeout", "120000"])
            .args(["--save", "", "--appendonly", "no", "--dir", &self.dir.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password, "--masterauth", password]);
        }
        self.nodes[index].child = Some(command.spawn().context("starting redis-server")?);
        Ok(())
    }

    fn wait_for_ping(&mut self, index: usize) -> anyhow::Result<()> {
        let port = self.nodes[index].port;
        let deadline = Instant::now() + READY_WAIT;
        loop {
            let pong = self.node_connection(index).and_then(|mut c| Ok(redis::cmd("PING").query::<String>(&mut c)?));
            if pong.is_ok() {
                return Ok(());
            }
            if let Some(child) = &mut self.nodes[index].child {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("redis-server on port {port} exited with {status}");
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "redis-server on port {port} did not reply to PING within {} s", READY_WAIT.as_secs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Joins the nodes into a cluster with `redis-cli --cluster create`.
    fn create(&self) -> anyhow::Result<()> {
        let mut command = Command::new("redis-cli");
        if let Some(password) = &self.password {
            command.args(["-a", password, "--no-auth-warning"]);
        }
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command.args(["--cluster-replicas", "0", "--cluster-yes"]).stdin(Stdio::null());

        let output = match command.output() {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                anyhow::bail!("redis-cli is not installed; it comes with redis-server (Debian package redis-tools), install it to run the cluster tests")
            }
            Err(error) => return Err(error).context("running redis-cli --cluster create"),
        };
        anyhow::ensure!(
            output.status.success(),
            "redis-cli --cluster create exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Waits until every node's `CLUSTER INFO` reports `cluster_state:ok`.
    fn wait_until_ok(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            let states: anyhow::Result<Vec<bool>> = (0..NODES)
                .map(|index| {
                    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut self.node_connection(index)?)?;
                    Ok(info.lines().any(|line| line.trim() == "cluster_state:ok"))
                })
                .collect();
            let last = match states {
                Ok(states) if states.iter().all(|&ok| ok) => return Ok(()),
                Ok(states) => format!("cluster_state:ok per node: {states:?}"),
                Err(error) => error.to_string(),
            };
            anyhow::ensure!(Instant::now() < deadline, "the test cluster was not ok within {} s; last check: {last}", READY_WAIT.as_secs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("could not remove the test cluster folder {}: {error}", self.dir.display());
        }
    }
}

/// Parses `CLUSTER NODES` output into the slot ranges of each primary's port.
fn slot_owners(nodes: &str) -> anyhow::Result<Vec<(std::ops::RangeInclusive<u16>, u16)>> {
    let mut owners = Vec::new();
    for line in nodes.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1).ok_or_else(|| anyhow::anyhow!("CLUSTER NODES line without an address: {line}"))?;
        let port: u16 = address
            .split('@')
            .next()
            .and_then(|host_port| host_port.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("CLUSTER NODES address without a port: {address}"))?;
        // Slots being migrated are written in brackets; a stable cluster has none.
        for range in fields.iter().skip(8).filter(|range| !range.starts_with('[')) {
            let (start, end) = range.split_once('-').unwrap_or((range, range));
            owners.push((start.parse()?..=end.parse()?, port));
        }
    }
    Ok(owners)
}

/// Returns `count` distinct free loopback ports.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    // Holding every listener until all are bound makes the ports distinct.
    let listeners: Vec<TcpListener> = (0..count).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let ports = listeners.iter().map(|listener| listener.local_addr().map(|addr| addr.port())).collect::<Result<_, _>>()?;
    Ok(ports)
}

fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("lepton-cluster-test-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
