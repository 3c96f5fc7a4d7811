//! Replicas on real multi-process clusters: a replica copies its primary, follows its
//! changes, and catches up after being killed.

mod support;

use std::time::Duration;

use support::cluster::TestCluster;
use support::replicas::{dbsize, two_pairs, wait_caught_up, with_replica, Pairs};
use tessera_client::{ClusterCommand, Command, Reply as Value};

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

/// A key that node `at` owns, by the slot map of `client`.
fn key_on(
    client: &tessera_client::Client,
    cluster: &TestCluster,
    at: usize,
    prefix: &str,
) -> String {
    let address = cluster.address(at);
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .find(|key| client.node_of(key.as_bytes()) == address)
        .expect("some key lands on every primary")
}

/// The replication section of node `at`'s INFO.
async fn replication_info(cluster: &TestCluster, at: usize) -> Value {
    let info = cluster
        .ask(at, Command::Admin(tessera_protocol::AdminCommand::Info))
        .await;
    info.get("replication")
        .cloned()
        .expect("a replication section")
}

fn wait(replicas: u64, timeout_ms: u64) -> Command {
    Command::Cluster(ClusterCommand::Wait {
        replicas,
        timeout_ms,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_the_replicas_holding_a_write_and_sync_clients_refuse_unconfirmed_ones() {
    let cluster = with_replica(2).await;
    let client = tessera_client::Client::connect(&cluster.address(0))
        .await
        .unwrap();
    let key = key_on(&client, &cluster, 0, "wait");
    let primary = support::plain_connection(&cluster.address(0)).await;
    primary
        .request(support::command(&format!("SET {key} one")))
        .await
        .unwrap();
    assert_eq!(
        primary.request(wait(1, 5_000)).await.unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        primary.request(wait(2, 200)).await.unwrap(),
        Value::Int(1),
        "one replica exists: WAIT 2 answers 1 once its timeout passes"
    );
    let sync = tessera_client::ClientConfig {
        sync_replicas: Some(tessera_client::SyncReplicas {
            replicas: 1,
            timeout: Duration::from_millis(300),
        }),
        ..tessera_client::ClientConfig::default()
    };
    let synced = tessera_client::Client::connect_with(&cluster.address(0), sync)
        .await
        .unwrap();
    synced.set(key.clone(), "two").await.unwrap();

    let replica = cluster.nodes[2].as_ref().unwrap();
    replica.signal("STOP");
    primary
        .request(support::command(&format!("SET {key} three")))
        .await
        .unwrap();
    assert_eq!(
        primary.request(wait(1, 300)).await.unwrap(),
        Value::Int(0),
        "a stopped replica confirms nothing"
    );
    match synced.set(key.clone(), "four").await {
        Err(tessera_client::Error::NotReplicated { reached, wanted }) => {
            assert_eq!((reached, wanted), (0, 1));
        }
        other => panic!("a write no replica confirmed must fail, got {other:?}"),
    }
    assert_eq!(
        client.get(key.clone()).await.unwrap().as_deref(),
        Some(&b"four"[..]),
        "the write ran on the primary all the same"
    );
    let replica = cluster.nodes[2].as_ref().unwrap();
    replica.signal("CONT");
    assert_eq!(
        primary.request(wait(1, 5_000)).await.unwrap(),
        Value::Int(1)
    );
    synced.set(key.clone(), "five").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_reads_only_after_readonly_and_info_reports_the_lag() {
    let cluster = with_replica(2).await;
    let client = tessera_client::Client::connect(&cluster.address(0))
        .await
        .unwrap();
    let key = key_on(&client, &cluster, 0, "ro");
    client.set(key.clone(), "fresh").await.unwrap();
    wait_caught_up(&cluster, 2, 0).await;
    let on_replica = support::plain_connection(&cluster.address(2)).await;
    let get = support::command(&format!("GET {key}"));
    let refused = on_replica.request(get.clone()).await.unwrap_err();
    assert_eq!(
        refused.server_code(),
        Some(tessera_client::ErrorCode::Moved)
    );
    let readonly = Command::Cluster(ClusterCommand::ReadOnly);
    assert_eq!(
        on_replica.request(readonly).await.unwrap(),
        Value::text("OK")
    );
    assert_eq!(
        on_replica.request(get.clone()).await.unwrap(),
        Value::Bytes("fresh".into())
    );
    let write = on_replica
        .request(support::command(&format!("SET {key} stale")))
        .await
        .unwrap_err();
    assert_eq!(write.server_code(), Some(tessera_client::ErrorCode::Moved));
    let other = key_on(&client, &cluster, 1, "ro-other");
    let foreign = on_replica
        .request(support::command(&format!("GET {other}")))
        .await
        .unwrap_err();
    assert_eq!(
        foreign.server_code(),
        Some(tessera_client::ErrorCode::Moved),
        "only the followed primary's slots are read here"
    );
    let readwrite = Command::Cluster(ClusterCommand::ReadWrite);
    on_replica.request(readwrite).await.unwrap();
    assert!(on_replica.request(get).await.is_err());

    let as_replica = replication_info(&cluster, 2).await;
    assert_eq!(as_replica.get("role"), Some(&Value::text("replica")));
    assert_eq!(as_replica.get("primary"), Some(&Value::Int(1)));
    assert_eq!(as_replica.get("link"), Some(&Value::text("up")));
    assert_eq!(as_replica.get("lag_bytes"), Some(&Value::Int(0)));
    let as_primary = replication_info(&cluster, 0).await;
    assert_eq!(as_primary.get("role"), Some(&Value::text("primary")));
    let Some(Value::Array(replicas)) = as_primary.get("replicas") else {
        panic!("{as_primary:?}");
    };
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    assert_eq!(replicas[0].get("id"), Some(&Value::Int(3)));
    assert_eq!(replicas[0].get("lag_bytes"), Some(&Value::Int(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_failover_under_load_loses_no_acknowledged_write_and_refuses_none() {
    let cluster = with_replica(2).await;
    let client = tessera_client::Client::connect(&cluster.address(0))
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..20)
        .map(|writer| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut errors = Vec::new();
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("planned:{writer}:{n}");
                    match client.set(key.clone(), n.to_string()).await {
                        Ok(_) => acked.push((key, n)),
                        Err(error) => errors.push(error.to_string()),
                    }
                }
                (acked, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let output = tokio::process::Command::new(support::binary("tessera-cli"))
        .arg("-p")
        .arg(cluster.specs[0].port.to_string())
        .args(["cluster", "failover", "3"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let topology = cluster.topology(1).await;
    assert_eq!(topology.slots_of(1), 0, "node 1 handed its slots over");
    assert!(topology.slots_of(3) > 0);
    assert_eq!(topology.primary_of(1), Some(3), "and follows node 3");
    let mut total = 0;
    for writer in writers {
        let (acked, errors) = writer.await.unwrap();
        assert!(errors.is_empty(), "writes refused: {errors:?}");
        total += acked.len();
        for (key, n) in acked {
            assert_eq!(
                client.get(key.clone()).await.unwrap(),
                Some(n.to_string().into()),
                "{key} was acknowledged"
            );
        }
    }
    assert!(total > 200, "{total} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_further_behind_than_the_backlog_copies_the_shard_afresh() {
    let mut cluster = TestCluster::start_with(2, 2, &["--repl-backlog-size", "16384"], None);
    cluster.form().await;
    cluster.wait_serving().await;
    let replica = cluster.add_node(2);
    cluster.join(replica, 0).await;
    cluster
        .ask(replica, Command::Cluster(ClusterCommand::Replicate(1)))
        .await;
    let client = tessera_client::Client::connect(&cluster.address(0))
        .await
        .unwrap();
    client.set("first", "v").await.unwrap();
    wait_caught_up(&cluster, replica, 0).await;
    let syncs = |info: Value| info.get("full_syncs").and_then(Value::as_int).unwrap();
    let copied = syncs(replication_info(&cluster, replica).await);
    assert_eq!(copied, 2, "one copy per shard");
    cluster.nodes[replica].as_ref().unwrap().signal("STOP");
    let value = "x".repeat(200);
    for i in 0..1_000 {
        client
            .set(format!("behind:{i}"), value.clone())
            .await
            .unwrap();
    }
    cluster.nodes[replica].as_ref().unwrap().signal("CONT");
    let caught = wait_caught_up(&cluster, replica, 0).await;
    assert!(caught > 300, "{caught}");
    let recopied = syncs(replication_info(&cluster, replica).await);
    assert!(
        recopied > copied,
        "200 KB of changes overflow a 16 KB backlog: {copied} -> {recopied} copies"
    );
}

/// What one sync writer saw: counter values the cluster confirmed on a replica, and writes
/// that ran unconfirmed, before and after the kill.
#[derive(Default)]
struct SyncLog {
    confirmed: Vec<i64>,
    unconfirmed_before_replica: usize,
    ran_after_kill: usize,
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_under_load_catches_up_then_takes_over_with_every_confirmed_write() {
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use std::sync::Arc;
    let mut cluster = TestCluster::formed(2, 2).await;
    let client = tessera_client::Client::connect(&cluster.address(0))
        .await
        .unwrap();
    let value = "v".repeat(100);
    for chunk in 0..30 {
        let pairs: Vec<(String, String)> = (0..100)
            .map(|i| (format!("pre:{}", chunk * 100 + i), value.clone()))
            .collect();
        client.mset(pairs).await.unwrap();
    }
    let sync = tessera_client::ClientConfig {
        sync_replicas: Some(tessera_client::SyncReplicas {
            replicas: 1,
            timeout: Duration::from_millis(500),
        }),
        ..tessera_client::ClientConfig::default()
    };
    let synced = tessera_client::Client::connect_with(&cluster.address(0), sync)
        .await
        .unwrap();
    // 0: no replica yet, 1: replicating, 2: the primary was killed.
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..10)
        .map(|writer| {
            let key = key_on(&client, &cluster, 0, &format!("added:{writer}"));
            let (synced, phase, stop) = (synced.clone(), phase.clone(), stop.clone());
            tokio::spawn(async move {
                let mut log = SyncLog::default();
                while !stop.load(Ordering::Relaxed) {
                    let now = phase.load(Ordering::Relaxed);
                    match synced.incr_by(key.clone(), 1).await {
                        Ok(value) => log.confirmed.push(value),
                        Err(tessera_client::Error::NotReplicated { .. }) if now == 0 => {
                            log.unconfirmed_before_replica += 1;
                        }
                        Err(tessera_client::Error::NotReplicated { .. }) if now == 2 => {
                            log.ran_after_kill += 1;
                        }
                        Err(error) => log.errors.push(error.to_string()),
                    }
                    if now == 0 {
                        // Before a replica exists WAIT answers at once: no need to spin.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                (key, log)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replica = cluster.add_node(2);
    phase.store(1, Ordering::Relaxed);
    cluster.join(replica, 0).await;
    cluster
        .ask(replica, Command::Cluster(ClusterCommand::Replicate(1)))
        .await;
    // Caught up: the 3,000 keys' share of node 1 and the ten counters are there.
    let copied = wait_caught_up(&cluster, replica, 0).await;
    assert!(copied > 1_000, "{copied} keys copied");
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill(0);
    phase.store(2, Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.topology(1).await.slots_of(3) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);

    for writer in writers {
        let (key, log) = writer.await.unwrap();
        assert!(
            log.unconfirmed_before_replica > 0,
            "{key}: no replica, nothing confirmed"
        );
        assert!(
            log.confirmed.len() > 5,
            "{key}: writes confirmed once the replica caught up: {}",
            log.confirmed.len()
        );
        assert!(log.ran_after_kill > 0, "{key}: writes ran on the heir");
        let mut given = log.confirmed.clone();
        given.sort_unstable();
        given.dedup();
        assert_eq!(
            given.len(),
            log.confirmed.len(),
            "{key}: a value given twice"
        );
        let kept = client.get(key.clone()).await.unwrap().expect("the counter");
        let kept: i64 = String::from_utf8_lossy(&kept).parse().unwrap();
        let last = *given.last().unwrap();
        assert!(
            kept >= last,
            "{key}: {last} was confirmed, the heir holds {kept} (errors: {:?})",
            log.errors
        );
    }
    let topology = cluster.topology(1).await;
    assert_eq!(topology.slots_of(1), 0);
    let keys: Vec<String> = (0..3_000).map(|i| format!("pre:{i}")).collect();
    let found = client.mget(keys).await.unwrap();
    assert!(
        found.iter().all(|v| v.as_deref() == Some(value.as_bytes())),
        "every preloaded key survives the failover"
    );
}
