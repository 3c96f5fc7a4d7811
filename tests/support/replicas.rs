//! Replica set-ups for multi-process tests: primaries with replicas, and waiting for a
//! replica to catch up.

use std::time::Duration;

use tessera_client::{ClusterCommand, Command, Reply as Value};
use tessera_protocol::AdminCommand;

use super::cluster::TestCluster;

/// Keys on node `at` (all its shards).
pub async fn dbsize(cluster: &TestCluster, at: usize) -> i64 {
    match cluster.ask(at, Command::Admin(AdminCommand::DbSize)).await {
        Value::Int(n) => n,
        other => panic!("DBSIZE answered {other:?}"),
    }
}

/// Waits until node `replica` holds as many keys as node `primary`, and answers how many.
pub async fn wait_caught_up(cluster: &TestCluster, replica: usize, primary: usize) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (copy, source) = (
            dbsize(cluster, replica).await,
            dbsize(cluster, primary).await,
        );
        if copy == source {
            return copy;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {} holds {copy} keys, its primary {source}",
            replica + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A formed cluster of two primaries and a replica (node 3) of node 1.
pub async fn with_replica(shards: usize) -> TestCluster {
    let mut cluster = TestCluster::formed(2, shards).await;
    let replica = cluster.add_node(shards);
    cluster.join(replica, 0).await;
    let reply = cluster
        .ask(replica, Command::Cluster(ClusterCommand::Replicate(1)))
        .await;
    assert!(reply.get("epoch").is_some(), "{reply:?}");
    cluster.wait_serving().await;
    cluster
}

/// Positions in a `two_pairs` cluster.
pub struct Pairs {
    /// The Raft leader.
    pub leader: usize,
    /// A primary that is not the leader (its death would add an election).
    pub victim: usize,
    /// The victim's replica.
    pub heir: usize,
}

/// Nodes 1 and 2 as primaries, node 3 replicating 1 and node 4 replicating 2, serving.
pub async fn two_pairs() -> (TestCluster, Pairs) {
    let mut cluster = with_replica(2).await;
    let spare = cluster.add_node(2);
    cluster.join(spare, 0).await;
    cluster
        .ask(spare, Command::Cluster(ClusterCommand::Replicate(2)))
        .await;
    cluster.wait_serving().await;
    let leader = cluster.leader().await;
    let (victim, heir) = if leader == 0 { (1, spare) } else { (0, 2) };
    (
        cluster,
        Pairs {
            leader,
            victim,
            heir,
        },
    )
}
