//! Replicas on real multi-process clusters: a replica copies its primary, follows its
//! changes, and catches up after being killed.

mod support;

use std::time::Duration;

use support::cluster::TestCluster;
use tessera_client::{ClusterCommand, Command, Reply as Value};
use tessera_protocol::AdminCommand;

/// Keys on node `at` (all its shards).
async fn dbsize(cluster: &TestCluster, at: usize) -> i64 {
    match cluster.ask(at, Command::Admin(AdminCommand::DbSize)).await {
        Value::Int(n) => n,
        other => panic!("DBSIZE answered {other:?}"),
    }
}

/// Waits until node `replica` holds as many keys as node `primary`, and answers how many.
async fn wait_caught_up(cluster: &TestCluster, replica: usize, primary: usize) -> i64 {
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
async fn with_replica(shards: usize) -> TestCluster {
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
struct Pairs {
    /// The Raft leader.
    leader: usize,
    /// A primary that is not the leader (its death would add an election).
    victim: usize,
    /// The victim's replica.
    heir: usize,
}

/// Nodes 1 and 2 as primaries, node 3 replicating 1 and node 4 replicating 2, serving.
async fn two_pairs() -> (TestCluster, Pairs) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_copies_its_primary_then_follows_and_catches_up_after_a_kill() {
    let mut cluster = TestCluster::formed(2, 2).await;
    let client = tessera_client::Client::connect(&cluster.address(0))
        .await
        .unwrap();
    for i in 0..500 {
        client.set(format!("before:{i}"), "v").await.unwrap();
    }
    let replica = cluster.add_node(2);
    cluster.join(replica, 0).await;
    cluster
        .ask(replica, Command::Cluster(ClusterCommand::Replicate(1)))
        .await;
    let copied = wait_caught_up(&cluster, replica, 0).await;
    assert!(copied > 150, "node 1's share of 500 keys: {copied}");
    for i in 0..500 {
        client.set(format!("after:{i}"), "v").await.unwrap();
        client.incr_by(format!("count:{}", i % 7), 1).await.unwrap();
    }
    client
        .del(["before:1", "before:2", "before:3"])
        .await
        .unwrap();
    let followed = wait_caught_up(&cluster, replica, 0).await;
    assert!(
        followed > copied,
        "changes after the copy arrive: {copied} -> {followed}"
    );
    cluster.kill(replica);
    for i in 0..300 {
        client.set(format!("while-down:{i}"), "v").await.unwrap();
    }
    cluster.restart(replica);
    let recaught = wait_caught_up(&cluster, replica, 0).await;
    assert!(recaught > followed, "{followed} -> {recaught}");
    assert!(dbsize(&cluster, 1).await > 0, "node 2 keeps its own keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_must_run_its_primarys_shard_count_and_own_no_slots() {
    let cluster = with_replica(2).await;
    let refused = support::plain_connection(&cluster.address(1))
        .await
        .request(Command::Cluster(ClusterCommand::Replicate(1)))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("owns slots"), "{refused}");
    let topology = cluster.topology(0).await;
    assert_eq!(topology.primary_of(3), Some(1));
    assert_eq!(topology.slots_of(3), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_by_its_replica_with_every_copied_write_and_rejoins_as_a_replica(
) {
    let (
        mut cluster,
        Pairs {
            leader,
            victim,
            heir,
        },
    ) = two_pairs().await;
    let client = tessera_client::Client::connect(&cluster.address(leader))
        .await
        .unwrap();
    let victim_addr = cluster.address(victim);
    let mut on_victim = Vec::new();
    for i in 0..400 {
        let key = format!("k:{i}");
        client.set(key.clone(), format!("v{i}")).await.unwrap();
        if client.node_of(key.as_bytes()) == victim_addr {
            on_victim.push(key);
        }
    }
    assert!(
        on_victim.len() > 100,
        "{} keys on the victim",
        on_victim.len()
    );
    wait_caught_up(&cluster, heir, victim).await;
    cluster.kill(victim);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match client.set(on_victim[0].clone(), "v0").await {
            Ok(_) => break,
            Err(error) => assert!(
                tokio::time::Instant::now() < deadline,
                "no write served 15 s after the kill: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let topology = cluster.topology(leader).await;
    let heir_id = heir as u64 + 1;
    assert_eq!(topology.slots_of(victim as u64 + 1), 0);
    assert!(topology.slots_of(heir_id) > 0, "the replica owns the slots");
    assert_eq!(topology.primary_of(victim as u64 + 1), Some(heir_id));
    for key in &on_victim {
        let i = &key[2..];
        assert_eq!(
            client.get(key.clone()).await.unwrap().as_deref(),
            Some(format!("v{i}").as_bytes()),
            "{key} was on the replica before the kill"
        );
    }
    cluster.restart(victim);
    let recopied = wait_caught_up(&cluster, victim, heir).await;
    assert!(recopied >= on_victim.len() as i64, "{recopied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_primary_replaced_meanwhile_refuses_its_old_slots_when_resumed() {
    let (
        cluster,
        Pairs {
            leader,
            victim,
            heir,
        },
    ) = two_pairs().await;
    // A stopped node never closes its sockets: the client gives up on it after a second.
    let config = tessera_client::ClientConfig {
        request_timeout: Some(Duration::from_secs(1)),
        ..tessera_client::ClientConfig::default()
    };
    let client = tessera_client::Client::connect_with(&cluster.address(leader), config)
        .await
        .unwrap();
    let victim_addr = cluster.address(victim);
    let key = (0..)
        .map(|i| format!("paused:{i}"))
        .find(|key| client.node_of(key.as_bytes()) == victim_addr)
        .unwrap();
    client.set(key.clone(), "before").await.unwrap();
    wait_caught_up(&cluster, heir, victim).await;
    let paused = cluster.nodes[victim].as_ref().unwrap();
    paused.signal("STOP");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while client.set(key.clone(), "after").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "no failover");
    }
    let paused = cluster.nodes[victim].as_ref().unwrap();
    paused.signal("CONT");
    // Straight to the resumed node, as a client with an old map would: never served.
    let direct = support::plain_connection(&victim_addr).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut moved = false;
    while tokio::time::Instant::now() < until {
        match direct
            .request(Command::Keys(tessera_protocol::KeyCommand::Get(
                key.clone().into(),
            )))
            .await
        {
            Ok(value) => panic!("the resumed old primary served {value:?}"),
            Err(error) => {
                let code = error.server_code();
                assert!(
                    matches!(
                        code,
                        Some(
                            tessera_client::ErrorCode::ClusterDown
                                | tessera_client::ErrorCode::Moved
                        )
                    ),
                    "{error}"
                );
                moved |= code == Some(tessera_client::ErrorCode::Moved);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(moved, "the resumed node learns the new epoch and redirects");
    assert_eq!(
        client.get(key.clone()).await.unwrap().as_deref(),
        Some(&b"after"[..])
    );
}
