//! Live rebalancing on real multi-process clusters: slots migrate to a joining node and
//! away from a leaving one while 50 clients read and write every kind of value, and a
//! checker compares what the clients were acknowledged with what the cluster holds.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::cluster::TestCluster;
use tessera_client::{Client, Reply as Value, Reservation};
use tessera_cluster::{NodeId, SLOT_COUNT};

const WORKERS: usize = 50;
const PRELOADED: usize = 20_000;
const SKUS: usize = 8;
const ON_HAND: i64 = 400;
const CITIES: usize = 5;

async fn run(client: &Client, line: &str) -> Result<Value, String> {
    client
        .call(support::command(line))
        .await
        .map_err(|error| format!("{line}: {error}"))
}

/// What one worker was told succeeded.
#[derive(Default)]
struct Acked {
    /// Each plain key's last acknowledged value.
    values: HashMap<String, u64>,
    /// INCRs acknowledged on its counter.
    incrs: i64,
    /// HINCRBYs acknowledged on its hash.
    hincrs: i64,
    /// ZADDs of new members acknowledged on its sorted set.
    zadds: i64,
    /// Units reserved, by SKU.
    reserved: HashMap<String, i64>,
    /// Its driver's last acknowledged position.
    position: Option<(f64, f64)>,
    /// Errors it saw (there must be none).
    errors: Vec<String>,
}

async fn work(client: Client, worker: usize, stop: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let outcome = match i % 6 {
            0 => {
                let key = format!("k:{worker}:{}", i % 100);
                run(&client, &format!("SET {key} {i}"))
                    .await
                    .map(|_| acked.values.insert(key, i))
                    .map(drop)
            }
            1 => run(&client, &format!("INCRBY c:{worker} 1"))
                .await
                .map(|_| acked.incrs += 1),
            2 => {
                let sku = format!("sku:{}", i as usize % SKUS);
                match client
                    .inv_reserve(sku.clone(), 1, Duration::from_secs(600), None)
                    .await
                {
                    Ok(Reservation::Held { .. }) => {
                        *acked.reserved.entry(sku).or_default() += 1;
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(error) => Err(format!("INV.RESERVE {sku}: {error}")),
                }
            }
            3 => run(&client, &format!("HINCRBY h:{worker} f 1"))
                .await
                .map(|_| acked.hincrs += 1),
            4 => {
                let at = (52.0 + (i % 97) as f64 * 0.001, 13.0 + worker as f64 * 0.002);
                let line = format!(
                    "GEO.UPSERT city:{} d:{worker} {} {}",
                    worker % CITIES,
                    at.0,
                    at.1
                );
                run(&client, &line).await.map(|_| acked.position = Some(at))
            }
            _ => run(&client, &format!("ZADD z:{worker} {i} m{i}"))
                .await
                .map(|_| acked.zadds += 1),
        };
        if let Err(error) = outcome {
            acked.errors.push(error);
        }
        // Reads of what this worker wrote go on throughout too.
        if i.is_multiple_of(10) {
            let key = format!("k:{worker}:{}", (i / 10) % 100);
            match run(&client, &format!("GET {key}")).await {
                Ok(Value::Bytes(got)) => {
                    let want = acked.values.get(&key).map(u64::to_string);
                    if want.as_deref().map(str::as_bytes) != Some(&got[..]) {
                        acked
                            .errors
                            .push(format!("GET {key}: {got:?}, wrote {want:?}"));
                    }
                }
                Ok(Value::Nil) if !acked.values.contains_key(&key) => {}
                Ok(other) => acked.errors.push(format!("GET {key}: {other:?}")),
                Err(error) => acked.errors.push(error),
            }
        }
    }
    acked
}

/// Keys on each node, by DBSIZE.
async fn key_counts(cluster: &TestCluster, nodes: &[usize]) -> Vec<i64> {
    let mut counts = Vec::new();
    for &at in nodes {
        let reply = support::cluster::call(&cluster.address(at), support::command("DBSIZE")).await;
        counts.push(reply.as_int().expect("DBSIZE is an INT"));
    }
    counts
}

/// Loads the cluster, starts the workers, runs `change` while they work, stops them and
/// checks every acknowledged write against what the cluster holds now.
async fn under_load<F, Fut>(cluster: &TestCluster, nodes_after: &[usize], change: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let client = Client::connect(&cluster.address(0)).await.unwrap();
    let preload: Vec<(String, String)> = (0..PRELOADED)
        .map(|i| (format!("pre:{i}"), format!("value-{i}")))
        .collect();
    for batch in preload.chunks(1_000) {
        client.mset(batch.to_vec()).await.unwrap();
    }
    for sku in 0..SKUS {
        run(&client, &format!("INV.SET sku:{sku} ON_HAND {ON_HAND}"))
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let client = Client::connect(&cluster.address(worker % 3)).await.unwrap();
        workers.push(tokio::spawn(work(client, worker, stop.clone())));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    change().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.push(worker.await.unwrap());
    }

    // The checker: nothing a client was told it wrote is missing or different.
    let client = Client::connect(&cluster.address(nodes_after[0]))
        .await
        .unwrap();
    let errors: Vec<&String> = all.iter().flat_map(|a| &a.errors).collect();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let mut keys = PRELOADED + SKUS;
    for (worker, acked) in all.iter().enumerate() {
        let names: Vec<String> = acked.values.keys().cloned().collect();
        let values = client.mget(names.clone()).await.unwrap();
        for (name, value) in names.iter().zip(values) {
            assert_eq!(
                value.as_deref(),
                Some(acked.values[name].to_string().as_bytes()),
                "{name}"
            );
        }
        keys += names.len();
        let int = |v: Value| match v {
            Value::Int(n) => n,
            Value::Bytes(b) => std::str::from_utf8(&b).unwrap().parse().unwrap(),
            other => panic!("{other:?}"),
        };
        if acked.incrs > 0 {
            let got = int(run(&client, &format!("GET c:{worker}")).await.unwrap());
            assert_eq!(got, acked.incrs, "c:{worker}");
            keys += 1;
        }
        if acked.hincrs > 0 {
            let got = int(run(&client, &format!("HGET h:{worker} f")).await.unwrap());
            assert_eq!(got, acked.hincrs, "h:{worker}");
            keys += 1;
        }
        if acked.zadds > 0 {
            let got = int(run(&client, &format!("ZCARD z:{worker}")).await.unwrap());
            assert_eq!(got, acked.zadds, "z:{worker}");
            keys += 1;
        }
        if let Some((lat, lng)) = acked.position {
            let index = format!("city:{}", worker % CITIES);
            let member = client.geo(index).get(format!("d:{worker}")).await.unwrap();
            let member = member.unwrap_or_else(|| panic!("driver {worker} is gone"));
            assert!(
                support::haversine_m((member.lat, member.lng), (lat, lng)) < 1.0,
                "driver {worker} at {member:?}, last sent to {lat} {lng}"
            );
        }
    }
    // Never oversold, and every acknowledged reservation is held.
    for sku in 0..SKUS {
        let name = format!("sku:{sku}");
        let held: i64 = all.iter().filter_map(|a| a.reserved.get(&name)).sum();
        let stock = client.inv_get(name.clone()).await.unwrap().unwrap();
        assert_eq!(stock.reserved, held, "{name}: {stock:?}");
        assert!(stock.reserved <= ON_HAND, "{name} oversold: {stock:?}");
        assert_eq!(stock.available, ON_HAND - held, "{name}: {stock:?}");
    }
    // Each key on exactly one node: the counts add up to what was written.
    let counts = key_counts(cluster, nodes_after).await;
    assert_eq!(
        counts.iter().sum::<i64>() as usize,
        keys,
        "keys by node: {counts:?}"
    );
}

fn share(part: usize, whole: usize) -> f64 {
    part as f64 / whole as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_under_load_and_takes_a_quarter() {
    let mut cluster = TestCluster::formed(3, 2).await;
    // Another shard count, so geo indexes are re-placed as they arrive.
    let fourth = cluster.add_node(3);
    let ids: Vec<NodeId> = (1..=4).collect();
    let cluster = cluster;
    let moved = Mutex::new(Vec::new());
    under_load(&cluster, &[0, 1, 2, fourth], || async {
        let joined = cluster.join(fourth, 0).await;
        assert!(joined.get("epoch").is_some(), "{joined:?}");
        cluster
            .wait_state(fourth, "ok", Duration::from_secs(20))
            .await;
        let topology = cluster.topology(0).await;
        let moves = topology.moves_towards(&ids);
        assert!(
            moves.iter().all(|m| m.to == 4),
            "a join moves slots only to the new node"
        );
        for report in cluster.migrate(moves).await {
            assert!(report.get("slots").is_some(), "{report:?}");
            moved.lock().unwrap().push(report);
        }
    })
    .await;
    let topology = cluster.topology(fourth).await;
    let slots = topology.slots_of(4);
    let quarter = share(slots, usize::from(SLOT_COUNT));
    assert!((quarter - 0.25).abs() < 0.025, "node 4 owns {slots} slots");
    assert!(
        topology.moves_towards(&ids).is_empty(),
        "ownership is the assignment"
    );
    let counts = key_counts(&cluster, &[0, 1, 2, fourth]).await;
    let total: i64 = counts.iter().sum();
    let keys_share = share(counts[3] as usize, total as usize);
    assert!((keys_share - 0.25).abs() < 0.025, "node 4 holds {counts:?}");
    let reports = moved.into_inner().unwrap();
    let sent: i64 = reports.iter().filter_map(|r| r.get("keys")?.as_int()).sum();
    assert!(
        sent >= counts[3],
        "{sent} entries sent for {} keys there",
        counts[3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_leaves_under_load_and_only_its_slots_move() {
    let mut cluster = TestCluster::formed(3, 2).await;
    let fourth = cluster.add_node(2);
    let joined = cluster.join(fourth, 1).await;
    assert!(joined.get("epoch").is_some(), "{joined:?}");
    cluster
        .wait_state(fourth, "ok", Duration::from_secs(20))
        .await;
    let all: Vec<NodeId> = (1..=4).collect();
    cluster
        .migrate(cluster.topology(0).await.moves_towards(&all))
        .await;
    let cluster = cluster;
    let before = cluster.topology(0).await;
    // Node 2 leaves; the workers were connected to nodes 1 to 3 and follow.
    let rest: Vec<NodeId> = vec![1, 3, 4];
    under_load(&cluster, &[0, 2, fourth], || async {
        let moves: Vec<_> = before
            .moves_towards(&rest)
            .into_iter()
            .filter(|m| m.from == 2)
            .collect();
        let moving: usize = moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(moving, before.slots_of(2));
        for report in cluster.migrate(moves).await {
            assert!(report.get("slots").is_some(), "{report:?}");
        }
        let forgotten =
            support::cluster::call(&cluster.address(0), support::command("CLUSTER.FORGET 2")).await;
        assert!(forgotten.get("epoch").is_some(), "{forgotten:?}");
    })
    .await;
    let after = cluster.topology(0).await;
    assert!(after.node(2).is_none());
    assert_eq!(
        before.moved_slots(&after).len(),
        before.slots_of(2),
        "only the leaver's slots moved"
    );
    assert_eq!(
        key_counts(&cluster, &[1]).await,
        vec![0],
        "the leaver holds nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_passwords_nodes_migrate_and_split_as_their_cluster_user() {
    let flags = [
        "--requirepass",
        "pw",
        "--cluster-user",
        "default",
        "--cluster-pass",
        "pw",
    ];
    let mut cluster = TestCluster::start_with(2, 1, &flags, Some("pw"));
    cluster.form().await;
    cluster.wait_serving().await;
    let config = tessera_client::ClientConfig {
        password: Some("pw".into()),
        ..tessera_client::ClientConfig::default()
    };
    let client = Client::connect_with(&cluster.address(0), config.clone())
        .await
        .unwrap();
    let pairs: Vec<(String, String)> = (0..200)
        .map(|i| (format!("p:{i}"), format!("v{i}")))
        .collect();
    client.mset(pairs.clone()).await.unwrap();
    let third = cluster.add_node(1);
    let joined = cluster.join(third, 0).await;
    assert!(joined.get("epoch").is_some(), "{joined:?}");
    cluster
        .wait_state(third, "ok", Duration::from_secs(20))
        .await;
    let moves = cluster.topology(0).await.moves_towards(&[1, 2, 3]);
    for report in cluster.migrate(moves).await {
        assert!(report.get("keys").is_some(), "{report:?}");
    }
    let held = cluster.ask(third, support::command("DBSIZE")).await;
    assert!(
        held.as_int().unwrap() > 30,
        "the third node took its share: {held:?}"
    );
    // A plain connection's MGET over all three nodes: the node splits it as its user.
    let plain = tessera_client::Connection::open(&cluster.address(0), None, &config)
        .await
        .unwrap();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let reply = plain
        .request(support::command(&format!("MGET {}", names.join(" "))))
        .await
        .unwrap();
    let expected: Vec<Value> = pairs
        .iter()
        .map(|(_, v)| Value::Bytes(v.clone().into()))
        .collect();
    assert_eq!(reply, Value::Array(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_its_users_when_their_slots_move() {
    use futures_util::StreamExt;
    let mut cluster = TestCluster::formed(2, 2).await;
    let client = Client::connect(&cluster.address(0)).await.unwrap();
    let users: Vec<String> = (0..40).map(|i| format!("courier:{i}")).collect();
    client
        .presence_beat("courier:0", Duration::from_secs(60), Duration::ZERO, None)
        .await
        .unwrap();
    let mut watch = client.presence_watcher().await.unwrap();
    let baseline = watch.watch(users.clone()).await.unwrap();
    assert!(baseline[0].as_ref().is_some_and(|b| b.online));

    let third = cluster.add_node(2);
    cluster.join(third, 0).await;
    cluster
        .wait_state(third, "ok", Duration::from_secs(20))
        .await;
    let moves = cluster.topology(0).await.moves_towards(&[1, 2, 3]);
    cluster.migrate(moves).await;
    let after = cluster.topology(0).await;
    let moved: Vec<&String> = users
        .iter()
        .filter(|u| after.owner_id(tessera_cluster::key_slot(u.as_bytes())) == 3)
        .collect();
    assert!(moved.len() >= 5, "some watched users moved: {moved:?}");

    // Every change after the move reaches the one stream, once, moved users included.
    for user in &users[1..] {
        client
            .presence_beat(user.clone(), Duration::from_secs(60), Duration::ZERO, None)
            .await
            .unwrap();
    }
    client.presence_leave("courier:0").await.unwrap();
    let mut seen = HashMap::new();
    while seen.len() < users.len() {
        let change = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap_or_else(|_| panic!("changes missing; seen {seen:?}"))
            .expect("the watch is open");
        let user = String::from_utf8(change.user.to_vec()).unwrap();
        assert!(
            seen.insert(user.clone(), change.online).is_none(),
            "{user} twice"
        );
    }
    assert!(!seen["courier:0"]);
    assert!(users[1..].iter().all(|u| seen[u]), "{seen:?}");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taker_killed_mid_migration_loses_nothing_and_the_rebalance_finishes() {
    let flags = ["--appendonly", "yes"];
    let mut cluster = TestCluster::start_with(2, 1, &flags, None);
    cluster.form().await;
    cluster.wait_serving().await;
    let client = Client::connect(&cluster.address(0)).await.unwrap();
    let pairs: Vec<(String, String)> = (0..40_000)
        .map(|i| (format!("kept:{i}"), format!("value-{i}")))
        .collect();
    for batch in pairs.chunks(2_000) {
        client.mset(batch.to_vec()).await.unwrap();
    }
    let third = cluster.add_node(1);
    cluster.join(third, 0).await;
    cluster
        .wait_state(third, "ok", Duration::from_secs(20))
        .await;
    let moves = cluster.topology(0).await.moves_towards(&[1, 2, 3]);

    // Both givers move at once; the taker dies once some of its batches have landed.
    let migrations: Vec<_> = moves
        .into_iter()
        .map(|planned| {
            let giver = cluster.address(planned.from as usize - 1);
            let command =
                tessera_client::Command::Cluster(tessera_client::ClusterCommand::Migrate {
                    to: planned.to,
                    ranges: tessera_cluster::slot_runs(&planned.slots),
                });
            tokio::spawn(async move {
                support::plain_connection(&giver)
                    .await
                    .request(command)
                    .await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = cluster.ask(third, support::command("DBSIZE")).await;
        if held.as_int().unwrap() > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached the taker"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill(third);
    let mut failed = 0;
    for migration in migrations {
        match migration.await.unwrap() {
            Ok(report) => assert!(report.get("slots").is_some(), "{report:?}"),
            Err(error) => {
                // A typed refusal, not a hang: the taker was unreachable.
                assert!(error.server_code().is_some(), "{error}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the kill came before the migrations ended");

    // The taker comes back with what it acknowledged; every key is where the map says.
    cluster.restart(third);
    cluster.wait_serving().await;
    let names: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let values = client.mget(names.clone()).await.unwrap();
    for ((name, want), got) in pairs.iter().zip(&values) {
        assert_eq!(
            got.as_deref(),
            Some(want.as_bytes()),
            "{name} after the kill"
        );
    }
    // Running the rebalance again finishes it, replacing any copy a cut-off batch left.
    let moves = cluster.topology(0).await.moves_towards(&[1, 2, 3]);
    assert!(!moves.is_empty(), "the kill left slots to move");
    cluster.migrate(moves).await;
    assert!(cluster
        .topology(0)
        .await
        .moves_towards(&[1, 2, 3])
        .is_empty());
    let counts = key_counts(&cluster, &[0, 1, third]).await;
    assert_eq!(
        counts.iter().sum::<i64>(),
        40_000,
        "each key once: {counts:?}"
    );
    let values = client.mget(names).await.unwrap();
    assert!(values
        .iter()
        .zip(&pairs)
        .all(|(got, (_, want))| got.as_deref() == Some(want.as_bytes())));
}
