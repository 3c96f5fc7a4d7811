//! Cluster mode: this node's Raft member, the topology it has applied, and whether it may
//! serve keys right now.
//!
//! The topology (which node owns each slot, at which epoch) is the state machine of a Raft
//! group of every node (openraft, on its own thread); no gossip ever decides ownership. A
//! node serves keys only under a lease: every `RENEW` it asks the leader to confirm its
//! leadership with a quorum and name the committed index, applies up to there, and then
//! may serve for `LEASE` from when it asked. A node cut off, paused or just resumed
//! answers CLUSTER_DOWN until it has caught up with the cluster, so it never serves from
//! a topology the cluster has moved past by more than one lease.

pub mod bus;
pub mod failover;
pub mod store;

use std::io::{self, Cursor};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_cluster::{NodeId, NodeInfo, Topology};
use tessera_sync::{Flags, Published};

use crate::clock;

/// How often a node renews its lease.
const RENEW: Duration = Duration::from_millis(200);
/// How long a confirmed view may be served from, counted from when the confirmation was
/// asked for: longer than an election takes (so a leader's death does not stop the rest),
/// and the least time a failover waits after a primary's last renewal.
///
/// Failover takes about this plus 0.2 s, and one election more when the dead primary
/// also led Raft.
pub const LEASE_MS: u64 = 1_500;

/// What Raft's membership records about a node: where to reach it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its cluster-bus address.
    pub bus: String,
    /// Its client address.
    pub addr: String,
    /// Its shard count.
    pub shards: u16,
    /// Its RESP address; empty when it serves no RESP port.
    #[serde(default)]
    pub resp: String,
}

/// A change to the topology, as the Raft log carries it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Change {
    /// The first topology: these nodes, every slot assigned by rendezvous hashing.
    /// Ignored once a topology exists.
    Form(Vec<NodeInfo>),
    /// A node joins, owning no slots until some migrate to it.
    Join(NodeInfo),
    /// A migration's flip: `slots` pass from `from` to `to`, if `from` owns all of them.
    Move {
        /// The giving node.
        from: NodeId,
        /// The taking node.
        to: NodeId,
        /// The slots it copied.
        slots: Vec<u16>,
    },
    /// A node that owns no slots leaves.
    Leave(NodeId),
    /// A node that owns no slots becomes a replica of `primary`.
    Replicate {
        /// The copying node.
        replica: NodeId,
        /// The node it copies.
        primary: NodeId,
    },
    /// `promoted`, a replica of `failed`, takes all of `failed`'s slots.
    Failover {
        /// The primary that is down (or handing over).
        failed: NodeId,
        /// Its replica that takes over.
        promoted: NodeId,
    },
}

/// What a node asks the leader to commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Proposal {
    /// A topology change.
    Topology(Change),
    /// Make this node a voter (it catches up as a learner first).
    AddVoter(NodeId, Peer),
    /// Take this node out of the voters.
    RemoveVoter(NodeId),
}

/// Why a proposal did not commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CommitError {
    /// The topology refused it (a move of slots the giver no longer owns, say).
    Refused(String),
    /// Raft did not commit it (no leader, a lost peer); it may commit if tried again.
    Failed(String),
}

/// What applying a change answers: the epoch in force after it, or why it was refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Changed {
    /// The topology's epoch (0: none yet).
    pub epoch: u64,
    /// Why the change did not apply (`None`: it did).
    #[serde(default)]
    pub refused: Option<String>,
}

openraft::declare_raft_types!(
    /// The Raft group's types.
    pub RaftConfig:
        D = Change,
        R = Changed,
        NodeId = NodeId,
        Node = Peer,
);

/// This node's handle on the Raft group.
pub type Raft = openraft::Raft<RaftConfig>;

/// How a node takes part in a cluster.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Its id (at least 1).
    pub id: NodeId,
    /// Where the bus listens.
    pub bus_bind: SocketAddr,
    /// The bus address peers are told.
    pub bus_announce: String,
    /// The client address clients are told.
    pub addr_announce: String,
    /// The RESP address Redis clients are told (empty: no RESP port).
    pub resp_announce: String,
    /// Its shard count.
    pub shards: u16,
    /// Where the Raft log lives.
    pub dir: PathBuf,
    /// How this node connects to other nodes' client ports.
    pub peer_client: tessera_client::ClientConfig,
}

/// The node's part in the cluster, shared by every shard.
pub struct Cluster {
    /// Who this node is.
    pub id: NodeId,
    /// How others reach it.
    pub me: Peer,
    /// The topology last applied (`None`: no cluster formed yet).
    pub topology: Arc<Published<Option<Topology>>>,
    /// Clock milliseconds until which this node may serve keys.
    serving_until: AtomicU64,
    /// The Raft member.
    pub raft: Raft,
    /// Slots whose writes pause while a migration copies them (TRY_AGAIN until the flip).
    pub paused: Flags,
    /// How this node connects to other nodes' client ports (its cluster credentials).
    pub peer_client: tessera_client::ClientConfig,
    /// As leader: when each node's lease was last confirmed.
    pub leases: Arc<failover::Leases>,
    /// As a replica: how much of its primary's stream each shard has applied.
    pub replicated_by_shard: Vec<AtomicU64>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// How much of its primary's stream this node has applied, over all its shards (how
    /// a failover picks the most up-to-date replica).
    pub fn replicated(&self) -> u64 {
        self.replicated_by_shard
            .iter()
            .map(|applied| applied.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether the node's view is confirmed recently enough to serve keys now.
    pub fn serving(&self, now_ms: u64) -> bool {
        now_ms < self.serving_until.load(Ordering::Relaxed)
    }

    /// Milliseconds of lease left (0: not serving).
    pub fn lease_left(&self, now_ms: u64) -> u64 {
        self.serving_until
            .load(Ordering::Relaxed)
            .saturating_sub(now_ms)
    }

    /// The leader's id and peer record, when one is known.
    pub fn leader(&self) -> Option<(NodeId, Peer)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let peer = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .clone();
        Some((leader, peer))
    }

    /// Commits a change through the leader, wherever it is; retries while no leader is
    /// known or the leader changes, for up to `patience`.
    ///
    /// # Errors
    /// Why the topology refused the change, or why the last attempt failed once
    /// `patience` has passed.
    pub async fn propose(&self, change: Change, patience: Duration) -> Result<Changed, String> {
        self.to_leader(Proposal::Topology(change), patience).await
    }

    /// Commits `proposal` through the leader, as `propose` does.
    ///
    /// # Errors
    /// As `propose`.
    pub async fn to_leader(
        &self,
        proposal: Proposal,
        patience: Duration,
    ) -> Result<Changed, String> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last = String::from("no leader elected yet");
        while tokio::time::Instant::now() < deadline {
            let answer = match self.leader() {
                Some((leader, _)) if leader == self.id => {
                    Some(bus::commit(&self.raft, proposal.clone()).await)
                }
                Some((_, peer)) => {
                    let request = bus::BusRequest::Propose(proposal.clone());
                    match bus::exchange(&mut None, &peer.bus, &request, Duration::from_secs(5))
                        .await
                    {
                        Ok(bus::BusResponse::Proposed(answer)) => Some(answer),
                        Ok(_) => Some(Err(CommitError::Failed(
                            "the leader answered something else".into(),
                        ))),
                        Err(error) => Some(Err(CommitError::Failed(error.to_string()))),
                    }
                }
                None => None,
            };
            match answer {
                Some(Ok(changed)) => return Ok(changed),
                // Asking again would get the same answer.
                Some(Err(CommitError::Refused(why))) => return Err(why),
                Some(Err(CommitError::Failed(why))) => last = why,
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last)
    }

    /// Waits until this node has applied a topology of at least `epoch`.
    pub async fn applied(&self, epoch: u64, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if self
                .topology
                .load()
                .1
                .as_ref()
                .as_ref()
                .is_some_and(|t| t.epoch >= epoch)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Starts this node's Raft member on its own thread and returns once it runs.
///
/// # Errors
/// The bus port cannot be bound, or the Raft log under `dir` cannot be opened.
pub fn start(settings: Settings) -> io::Result<Arc<Cluster>> {
    let listener = std::net::TcpListener::bind(settings.bus_bind)?;
    listener.set_nonblocking(true)?;
    let (started, running) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = started.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                match boot(settings, listener).await {
                    Ok(cluster) => {
                        let _ = started.send(Ok(cluster.clone()));
                        tokio::spawn(failover::watch(cluster.clone()));
                        keep_lease(cluster).await;
                    }
                    Err(error) => {
                        let _ = started.send(Err(error));
                    }
                }
            });
        })?;
    running
        .recv()
        .map_err(|_| io::Error::other("the cluster thread stopped while starting"))?
}

async fn boot(settings: Settings, listener: std::net::TcpListener) -> io::Result<Arc<Cluster>> {
    let dir = settings.dir.join("raft");
    let topology = Arc::new(Published::new(None));
    let publish = {
        let topology = topology.clone();
        Arc::new(move |applied: &Topology| {
            tracing::info!(
                epoch = applied.epoch,
                nodes = applied.nodes().len(),
                "topology applied"
            );
            topology.publish(Some(applied.clone()));
        })
    };
    let log = store::LogStore::open(&dir)?;
    let machine = store::MachineStore::open(&dir, publish)?;
    let config = openraft::Config {
        cluster_name: "tessera".into(),
        // openraft's followers wait its leader lease (election_timeout_max) plus a random
        // timeout after the leader's last heartbeat: 0.75–1 s, which a failover of a
        // primary that also led waits before its own lease wait begins.
        heartbeat_interval: 100,
        election_timeout_min: 250,
        election_timeout_max: 500,
        ..Default::default()
    }
    .validate()
    .map_err(io::Error::other)?;
    let raft = Raft::new(settings.id, Arc::new(config), bus::Network, log, machine)
        .await
        .map_err(io::Error::other)?;
    let leases = Arc::new(failover::Leases::default());
    tokio::spawn(bus::serve(
        tokio::net::TcpListener::from_std(listener)?,
        raft.clone(),
        leases.clone(),
    ));
    Ok(Arc::new(Cluster {
        id: settings.id,
        me: Peer {
            bus: settings.bus_announce,
            addr: settings.addr_announce,
            shards: settings.shards,
            resp: settings.resp_announce,
        },
        topology,
        serving_until: AtomicU64::new(0),
        raft,
        paused: Flags::new(usize::from(tessera_cluster::SLOT_COUNT)),
        peer_client: settings.peer_client,
        leases,
        replicated_by_shard: (0..settings.shards).map(|_| AtomicU64::new(0)).collect(),
    }))
}

/// Renews the serving lease for as long as the process runs.
async fn keep_lease(cluster: Arc<Cluster>) {
    let mut leader_conn = None;
    let mut leader_seen = None;
    let mut was_serving = false;
    loop {
        tokio::time::sleep(RENEW).await;
        let asked = clock::now_millis();
        let leader = cluster.leader().map(|(id, _)| id);
        if leader != leader_seen {
            match leader {
                Some(id) => tracing::info!(leader = id, "cluster leader"),
                None => tracing::warn!("cluster has no leader"),
            }
            leader_seen = leader;
            leader_conn = None;
        }
        if confirm(&cluster, &mut leader_conn).await && cluster.topology.load().1.is_some() {
            cluster
                .serving_until
                .fetch_max(asked + LEASE_MS, Ordering::Relaxed);
        }
        let serving = cluster.serving(clock::now_millis());
        if serving != was_serving {
            if serving {
                tracing::info!("serving: the topology is confirmed by a quorum");
            } else {
                tracing::warn!("not serving: the topology could not be confirmed for one lease");
            }
            was_serving = serving;
        }
    }
}

/// Whether the leader confirmed its leadership and this node has applied what it had
/// committed when asked.
async fn confirm(cluster: &Cluster, leader_conn: &mut Option<tokio::net::TcpStream>) -> bool {
    let Some((leader, peer)) = cluster.leader() else {
        return false;
    };
    let read_index = if leader == cluster.id {
        match tokio::time::timeout(Duration::from_secs(1), cluster.raft.ensure_linearizable()).await
        {
            Ok(Ok(read)) => read,
            _ => return false,
        }
    } else {
        let request = bus::BusRequest::Confirm(cluster.id);
        match bus::exchange(leader_conn, &peer.bus, &request, Duration::from_secs(1)).await {
            Ok(bus::BusResponse::Confirmed(Ok(read))) => read,
            _ => return false,
        }
    };
    cluster
        .raft
        .wait(Some(Duration::from_secs(1)))
        .applied_index_at_least(read_index.map(|id| id.index), "lease")
        .await
        .is_ok()
}
