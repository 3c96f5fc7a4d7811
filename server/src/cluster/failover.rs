//! Failover, decided by the Raft leader: a primary whose serving lease has surely run out
//! is replaced by its most up-to-date live replica, through a committed topology change.
//!
//! The leader confirms every node's lease (each renewal asks it), so it knows when each
//! node last held one. A primary that has not renewed for longer than a lease can no
//! longer serve (it answers CLUSTER_DOWN once its own lease lapses, whether it died, is
//! paused or is cut off), so promoting its replica then never leaves two nodes serving
//! the same slot: the lease is the fence, and the failure detector in one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_cluster::{NodeId, Topology};
use tessera_protocol::{ClusterCommand, Command, Value};

use super::{Change, Cluster, LEASE_MS};
use crate::clock;

/// How often the leader looks for primaries to replace.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// Slack past a lease before a silent primary is replaced: renewals are asked for, and
/// clocks read, at slightly different moments on each node.
const MARGIN_MS: u64 = 100;
/// How long the leader waits for a replica to say how far it has got.
const ASK_PATIENCE: Duration = Duration::from_millis(300);

/// When the leader last confirmed each node's lease.
#[derive(Default)]
pub struct Leases {
    granted: Mutex<HashMap<NodeId, u64>>,
    /// When this node last became leader (0: it is not): no lease it did not see can run
    /// past this plus one lease.
    leading_since: AtomicU64,
}

impl Leases {
    /// Notes a lease confirmed for `node`, asked for at `asked_ms`.
    pub fn granted(&self, node: NodeId, asked_ms: u64) {
        let mut granted = self.granted.lock().unwrap_or_else(|e| e.into_inner());
        let last = granted.entry(node).or_insert(0);
        *last = (*last).max(asked_ms);
    }

    /// The latest moment `node` may still be serving, as far as this leader knows.
    fn may_serve_until(&self, node: NodeId) -> u64 {
        let granted = self.granted.lock().unwrap_or_else(|e| e.into_inner());
        let seen = granted.get(&node).copied().unwrap_or(0);
        seen.max(self.leading_since.load(Ordering::Relaxed)) + LEASE_MS
    }
}

/// Watches, for as long as the process runs, for primaries to fail over while this node
/// leads.
pub async fn watch(cluster: Arc<Cluster>) {
    let mut leading = false;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let metrics = cluster.raft.metrics().borrow().clone();
        let leads = metrics.current_leader == Some(cluster.id)
            && metrics.state == openraft::ServerState::Leader;
        if leads && !leading {
            cluster
                .leases
                .leading_since
                .store(clock::now_millis(), Ordering::Relaxed);
        }
        leading = leads;
        if !leads {
            continue;
        }
        let topology = cluster.topology.load().1;
        let Some(topology) = topology.as_ref() else {
            continue;
        };
        for (failed, promoted) in due(&cluster, topology).await {
            let change = Change::Failover { failed, promoted };
            match cluster.propose(change, Duration::from_secs(2)).await {
                Ok(changed) => tracing::warn!(
                    failed,
                    promoted,
                    epoch = changed.epoch,
                    "failed over: the primary's lease ran out"
                ),
                Err(why) => tracing::warn!(failed, promoted, "failover not committed: {why}"),
            }
        }
    }
}

/// The failovers due now: each primary (other than this node) whose lease has surely run
/// out, with the live replica that has applied the most of its stream.
async fn due(cluster: &Cluster, topology: &Topology) -> Vec<(NodeId, NodeId)> {
    let now = clock::now_millis();
    let mut due = Vec::new();
    for primary in topology.primaries() {
        if primary == cluster.id || topology.slots_of(primary) == 0 {
            continue;
        }
        if now <= cluster.leases.may_serve_until(primary) + MARGIN_MS {
            continue;
        }
        let mut best: Option<(u64, NodeId)> = None;
        for replica in topology.replicas_of(primary) {
            // A replica that is itself silent cannot take over.
            let live = replica == cluster.id
                || now
                    <= cluster
                        .leases
                        .may_serve_until(replica)
                        .saturating_sub(LEASE_MS / 2);
            if !live {
                continue;
            }
            let Some(applied) = applied_by(cluster, topology, replica).await else {
                continue;
            };
            if best.is_none_or(|(most, _)| applied > most) {
                best = Some((applied, replica));
            }
        }
        if let Some((_, replica)) = best {
            due.push((primary, replica));
        }
    }
    due
}

/// How much of its primary's stream `replica` has applied, summed over its shards.
async fn applied_by(cluster: &Cluster, topology: &Topology, replica: NodeId) -> Option<u64> {
    if replica == cluster.id {
        return Some(cluster.replicated());
    }
    let addr = &topology.node(replica)?.addr;
    let ask = async {
        let link = tessera_client::Connection::open(addr, None, &cluster.peer_client).await?;
        link.request(Command::Cluster(ClusterCommand::Info)).await
    };
    match tokio::time::timeout(ASK_PATIENCE, ask).await {
        Ok(Ok(info)) => match info.get("replicated") {
            Some(Value::Int(applied)) => u64::try_from(*applied).ok(),
            _ => None,
        },
        _ => None,
    }
}
