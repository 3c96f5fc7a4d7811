//! Real multi-process clusters on loopback: each node its own process, ports and folder.

use std::time::Duration;

use tessera_client::{ClusterCommand, Command, Connection, Reply as Value};

use super::{plain_connection, TestServer};

/// Two free ports below the kernel's ephemeral range (the client port and the bus port).
///
/// Ports asked of the kernel with `:0` come from the ephemeral range, so a port found free
/// there and released can be handed to another test's server started with `--port 0`
/// before this node binds it. Counting from a per-process start below that range keeps the
/// two sources apart; the bind check skips ports something else already holds.
fn free_ports() -> (u16, u16) {
    (free_port(), free_port())
}

/// One port from this process's run of low ports that nothing holds now.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 200) * 100;
    loop {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One node's fixed facts, kept so it can be restarted where it was.
pub struct NodeSpec {
    /// Cluster id.
    pub id: u64,
    /// Client port.
    pub port: u16,
    /// Bus port.
    pub bus: u16,
    /// Data folder (holds the Raft log).
    pub dir: std::path::PathBuf,
}

/// A cluster of real server processes.
pub struct TestCluster {
    /// Each node's process (`None` once killed).
    pub nodes: Vec<Option<TestServer>>,
    /// Each node's facts, by position (node id = position + 1).
    pub specs: Vec<NodeSpec>,
    shards: usize,
    /// Flags every node is started with, past the cluster's own.
    flags: Vec<String>,
    /// The default user's password, when the nodes require one.
    password: Option<String>,
    _dirs: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `count` nodes of `shards` shards, not yet formed into a cluster.
    pub fn start(count: usize, shards: usize) -> TestCluster {
        TestCluster::start_with(count, shards, &[], None)
    }

    /// Starts `count` nodes with `flags` besides the cluster's own; `password` is what
    /// this harness authenticates with (the default user's, set by the flags).
    pub fn start_with(
        count: usize,
        shards: usize,
        flags: &[&str],
        password: Option<&str>,
    ) -> TestCluster {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let dirs = tempfile::tempdir().expect("a temporary folder");
        let specs: Vec<NodeSpec> = (0..count)
            .map(|at| {
                let (port, bus) = free_ports();
                NodeSpec {
                    id: at as u64 + 1,
                    port,
                    bus,
                    dir: dirs.path().join(format!("node-{}", at + 1)),
                }
            })
            .collect();
        let nodes = specs
            .iter()
            .map(|spec| Some(launch(spec, shards, &flags)))
            .collect();
        TestCluster {
            nodes,
            specs,
            shards,
            flags,
            password: password.map(str::to_string),
            _dirs: dirs,
        }
    }

    /// Starts `count` nodes and forms them into a cluster that serves.
    pub async fn formed(count: usize, shards: usize) -> TestCluster {
        let cluster = TestCluster::start(count, shards);
        cluster.form().await;
        cluster.wait_serving().await;
        cluster
    }

    /// The client address of node `at` (by position).
    pub fn address(&self, at: usize) -> String {
        format!("127.0.0.1:{}", self.specs[at].port)
    }

    /// The metrics port of node `at`, while it runs.
    pub fn metrics_port(&self, at: usize) -> Option<u16> {
        self.nodes[at].as_ref()?.metrics_port
    }

    /// CLUSTER.CREATE on the first node, naming every node by what CLUSTER.MYSELF says.
    pub async fn form(&self) {
        let mut words = vec!["CLUSTER.CREATE".to_string()];
        for at in 0..self.nodes.len() {
            let me = self.ask(at, Command::Cluster(ClusterCommand::Myself)).await;
            let text = |k: &str| match me.get(k) {
                Some(Value::Text(t)) => t.clone(),
                Some(Value::Int(n)) => n.to_string(),
                other => panic!("CLUSTER.MYSELF {k}: {other:?}"),
            };
            words.extend([
                text("id"),
                text("bus"),
                text("addr"),
                text("shards"),
                resp_word(text("resp")),
            ]);
        }
        let reply = self.ask(0, super::command(&words.join(" "))).await;
        assert_eq!(reply.get("epoch"), Some(&Value::Int(1)), "{reply:?}");
    }

    /// Waits until every running node says it serves.
    pub async fn wait_serving(&self) {
        for at in 0..self.nodes.len() {
            if self.nodes[at].is_some() {
                self.wait_state(at, "ok", Duration::from_secs(20)).await;
            }
        }
    }

    /// Waits until node `at`'s CLUSTER.INFO state is `state`.
    pub async fn wait_state(&self, at: usize, state: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let info = self.info(at).await;
            if info.get("state") == Some(&Value::text(state)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {} never reached {state}: {info:?}",
                at + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Node `at`'s CLUSTER.INFO.
    pub async fn info(&self, at: usize) -> Value {
        self.ask(at, Command::Cluster(ClusterCommand::Info)).await
    }

    /// The position of the node that is Raft leader, as the first node that names one
    /// says.
    pub async fn leader(&self) -> usize {
        for at in 0..self.nodes.len() {
            if self.nodes[at].is_none() {
                continue;
            }
            if let Some(Value::Int(id)) = self.info(at).await.get("leader") {
                return *id as usize - 1;
            }
        }
        panic!("no node names a leader");
    }

    /// `kill -9`s node `at`.
    pub fn kill(&mut self, at: usize) {
        let mut node = self.nodes[at].take().expect("the node runs");
        node.signal("KILL");
        node.wait_exit(Duration::from_secs(10));
    }

    /// Restarts node `at` on its ports and folder.
    pub fn restart(&mut self, at: usize) {
        assert!(self.nodes[at].is_none(), "node {} still runs", at + 1);
        self.nodes[at] = Some(launch(&self.specs[at], self.shards, &self.flags));
    }
}

impl TestCluster {
    /// Starts one more node, of `shards` shards, not yet in the cluster; its position.
    pub fn add_node(&mut self, shards: usize) -> usize {
        let (port, bus) = free_ports();
        let at = self.specs.len();
        let spec = NodeSpec {
            id: at as u64 + 1,
            port,
            bus,
            dir: self._dirs.path().join(format!("node-{}", at + 1)),
        };
        self.nodes.push(Some(launch(&spec, shards, &self.flags)));
        self.specs.push(spec);
        at
    }

    /// CLUSTER.JOIN of node `at` (by what its CLUSTER.MYSELF says), sent to node `via`.
    pub async fn join(&self, at: usize, via: usize) -> Value {
        let me = self.ask(at, Command::Cluster(ClusterCommand::Myself)).await;
        let text = |k: &str| match me.get(k) {
            Some(Value::Text(t)) => t.clone(),
            Some(Value::Int(n)) => n.to_string(),
            other => panic!("CLUSTER.MYSELF {k}: {other:?}"),
        };
        let line = format!(
            "CLUSTER.JOIN {} {} {} {} {}",
            text("id"),
            text("bus"),
            text("addr"),
            text("shards"),
            resp_word(text("resp"))
        );
        self.ask(via, super::command(&line)).await
    }

    /// The slot map as node `at` has it.
    pub async fn topology(&self, at: usize) -> tessera_cluster::Topology {
        let slots = self.ask(at, Command::Cluster(ClusterCommand::Slots)).await;
        tessera_client::parse_slots(&slots).expect("a slot map")
    }

    /// Sends every move in `moves` to its giving node, one after another; each giver's
    /// CLUSTER.MIGRATE answer.
    pub async fn migrate(&self, moves: Vec<tessera_cluster::Move>) -> Vec<Value> {
        let mut reports = Vec::new();
        for planned in moves {
            let ranges = tessera_cluster::slot_runs(&planned.slots);
            let giver = planned.from as usize - 1;
            let command = Command::Cluster(ClusterCommand::Migrate {
                to: planned.to,
                ranges,
            });
            reports.push(self.ask(giver, command).await);
        }
        reports
    }

    /// One request to node `at`, authenticated as this harness is; it must succeed.
    pub async fn ask(&self, at: usize, command: Command) -> Value {
        let config = tessera_client::ClientConfig {
            password: self.password.clone(),
            ..tessera_client::ClientConfig::default()
        };
        let address = self.address(at);
        let connection = Connection::open(&address, None, &config)
            .await
            .unwrap_or_else(|error| panic!("{address}: {error}"));
        connection
            .request(command)
            .await
            .unwrap_or_else(|error| panic!("{address}: {error}"))
    }
}

fn launch(spec: &NodeSpec, shards: usize, flags: &[String]) -> TestServer {
    let mut all: Vec<String> = [
        "--shards",
        &shards.to_string(),
        "--port",
        &spec.port.to_string(),
        "--dir",
        spec.dir.to_str().expect("utf-8 path"),
        "--cluster-enabled",
        "yes",
        "--cluster-node-id",
        &spec.id.to_string(),
        "--cluster-bus-port",
        &spec.bus.to_string(),
    ]
    .map(str::to_string)
    .to_vec();
    if !flags.iter().any(|f| f == "--appendonly") {
        all.extend(["--appendonly".to_string(), "no".to_string()]);
    }
    all.extend(flags.iter().cloned());
    TestServer::start_with(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

/// One request on a fresh plain connection, which must succeed.
pub async fn call(address: &str, command: Command) -> Value {
    let connection: Connection = plain_connection(address).await;
    connection
        .request(command)
        .await
        .unwrap_or_else(|error| panic!("{address}: {error}"))
}

/// `call` for an owned address, for futures that outlive the caller's borrow.
pub async fn call_owned(address: String, command: Command) -> Value {
    call(&address, command).await
}

/// A RESP address as CLUSTER.CREATE and CLUSTER.JOIN read it: `-` for none.
fn resp_word(resp: String) -> String {
    if resp.is_empty() {
        "-".into()
    } else {
        resp
    }
}
