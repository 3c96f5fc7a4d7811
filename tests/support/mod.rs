//! Test support: start a real `tessera-server` process on a free port and talk to it.
#![allow(dead_code)]

pub mod cluster;
pub mod persist;
pub mod replicas;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A binary of this workspace: Cargo's path for this package's own binaries, else the one
/// beside the test in the target folder (`cargo test --workspace` builds them all first).
pub fn binary(name: &str) -> std::path::PathBuf {
    if name == "tessera-server" {
        if let Some(path) = option_env!("CARGO_BIN_EXE_tessera-server") {
            return path.into();
        }
    }
    let test = std::env::current_exe().expect("the test knows its path");
    let folder = test
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/PROFILE/deps");
    let path = folder.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bin {name}` or `cargo test --workspace`",
        path.display()
    );
    path
}

/// A server process that is killed when dropped.
pub struct TestServer {
    child: Option<Child>,
    /// `127.0.0.1:PORT` it listens on.
    pub address: String,
    /// The port alone.
    pub port: u16,
    /// The RESP port, unless RESP is off.
    pub resp_port: Option<u16>,
    /// The metrics port, unless metrics are off.
    pub metrics_port: Option<u16>,
}

impl TestServer {
    /// Starts a server with `shards` shards on a port the kernel picks.
    pub fn start(shards: usize) -> TestServer {
        Self::start_with(&["--shards", &shards.to_string()])
    }

    /// Starts a server with extra flags (`--port 0` is added unless a port is given).
    pub fn start_with(flags: &[&str]) -> TestServer {
        let mut command = Command::new(binary("tessera-server"));
        if !flags.contains(&"--port") {
            command.args(["--port", "0"]);
        }
        if !flags.contains(&"--resp-port") {
            // Every test server may speak RESP; none may take Redis's port.
            command.args(["--resp-port", "0"]);
        }
        if !flags.contains(&"--metrics-port") {
            // Nor the default metrics port, which parallel servers would fight over.
            command.args(["--metrics-port", "0"]);
        }
        if !flags.contains(&"--dir") && !flags.contains(&"--appendonly") {
            // Servers that test something else keep nothing on disk.
            command.args(["--appendonly", "no"]);
        }
        command
            .args(flags)
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("tessera-server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        stdout
            .read_line(&mut line)
            .expect("server prints its address");
        // The RESP address is printed in the same write as the first line.
        let buffered = String::from_utf8_lossy(stdout.buffer()).into_owned();
        let port_of = |prefix: &str| {
            buffered
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|addr| addr.rsplit(':').next()?.parse().ok())
        };
        let resp_port = port_of("resp listening on ");
        let metrics_port = port_of("metrics listening on ");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let port = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("address has a port");
        TestServer {
            child: Some(child),
            address,
            port,
            resp_port,
            metrics_port,
        }
    }

    /// Starts a server from a config file.
    pub fn start_with_config(path: &Path) -> TestServer {
        Self::start_with(&["--config", path.to_str().expect("utf-8 path")])
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
        if name == "STOP" {
            wait_all_threads_stopped(self.pid());
        }
    }

    /// Waits for the process to exit, up to `limit`; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait works") {
                self.child = None;
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("wait works").is_none(),
            None => false,
        }
    }

    /// Connects the shard-aware client.
    pub async fn client(&self) -> tessera_client::Client {
        tessera_client::Client::connect(&self.address)
            .await
            .expect("client connects")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until every thread of `pid` is stopped: `kill` returns once the signal is
/// queued, while a thread on another core may still run (and answer) for a moment.
pub fn wait_all_threads_stopped(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let stopped = || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return true;
        };
        tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
                // The state follows the parenthesised name, which may hold spaces.
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
            })
        })
    };
    while !stopped() {
        assert!(
            std::time::Instant::now() < deadline,
            "{pid} did not stop within 5 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Shard counts every end-to-end case runs at.
pub const SHARD_COUNTS: [usize; 2] = [1, 3];

/// Opens `count` plain connections (no shard chosen), a hundred at a time.
pub async fn open_many(address: &str, count: usize) -> Vec<tessera_client::Connection> {
    let config = tessera_client::ClientConfig {
        connect_timeout: Duration::from_secs(10),
        ..tessera_client::ClientConfig::default()
    };
    let mut connections = Vec::with_capacity(count);
    while connections.len() < count {
        let batch = (count - connections.len()).min(100);
        let opened = futures_util::future::join_all(
            (0..batch).map(|_| tessera_client::Connection::open(address, None, &config)),
        )
        .await;
        connections.extend(opened.into_iter().map(|c| c.expect("connection opens")));
    }
    connections
}

/// A command from redis-cli style words, split on spaces (`"SET k v"`).
pub fn command(line: &str) -> tessera_client::Command {
    let words: Vec<bytes::Bytes> = line
        .split(' ')
        .map(|w| bytes::Bytes::from(w.to_string()))
        .collect();
    tessera_client::Command::parse_words(&words).expect("a valid command line")
}

/// One plain connection (no shard chosen), with default settings.
pub async fn plain_connection(address: &str) -> tessera_client::Connection {
    let config = tessera_client::ClientConfig::default();
    tessera_client::Connection::open(address, None, &config)
        .await
        .expect("connection opens")
}

/// The server's sphere (H3's authalic radius), in metres.
const EARTH_RADIUS_M: f64 = 6_371_007.180_918_475;

/// Great-circle distance in metres between two (lat, lng) points, as the server measures.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dla = la2 - la1;
    let dlo = (b.1 - a.1).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}
