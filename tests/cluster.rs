//! Clusters of real server processes on loopback: formation, routing by slot, redirects,
//! and what survives `kill -9` and SIGSTOP.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::cluster::TestCluster;
use support::haversine_m;
use tessera_client::{Client, ClusterCommand, Command, ErrorCode, Reply as Value};

async fn dbsize(address: &str) -> i64 {
    let reply = support::cluster::call(address, support::command("DBSIZE")).await;
    reply.as_int().expect("DBSIZE answers an integer")
}

#[tokio::test]
async fn three_nodes_split_the_keys_by_slot_and_redirect_the_rest() {
    let cluster = TestCluster::formed(3, 2).await;
    let client = Client::connect(&cluster.address(0)).await.unwrap();
    assert!(client.is_cluster());
    assert_eq!(client.epoch(), 1);

    let keys: Vec<String> = (0..3_000).map(|i| format!("user:{i}")).collect();
    let mut expected: HashMap<String, i64> = HashMap::new();
    for key in &keys {
        client.set(key.clone(), format!("v-{key}")).await.unwrap();
        *expected.entry(client.node_of(key.as_bytes())).or_default() += 1;
    }
    for at in 0..3 {
        let held = dbsize(&cluster.address(at)).await;
        assert_eq!(
            Some(&held),
            expected.get(&cluster.address(at)),
            "node {}",
            at + 1
        );
        // Rendezvous over three nodes gives each about a third.
        assert!((800..1_200).contains(&held), "node {} holds {held}", at + 1);
    }

    // A cross-node MGET comes back whole and in the caller's order.
    let asked: Vec<String> = keys.iter().rev().take(1_000).cloned().collect();
    let values = client.mget(asked.clone()).await.unwrap();
    for (key, value) in asked.iter().zip(values) {
        assert_eq!(value.as_deref(), Some(format!("v-{key}").as_bytes()));
    }
    assert_eq!(client.del(asked.clone()).await.unwrap(), 1_000);
    assert_eq!(client.exists(asked).await.unwrap(), 0);

    // A plain connection asking the wrong node is told where the slot lives.
    let key = keys
        .iter()
        .find(|k| client.node_of(k.as_bytes()) != cluster.address(0))
        .unwrap();
    let plain = support::plain_connection(&cluster.address(0)).await;
    let moved = plain
        .request(support::command(&format!("GET {key}")))
        .await
        .unwrap_err();
    assert_eq!(moved.server_code(), Some(ErrorCode::Moved));
    let slot = support::cluster::call(
        &cluster.address(0),
        support::command(&format!("CLUSTER.KEYSLOT {key}")),
    )
    .await;
    let message = moved.to_string();
    assert!(
        message.contains(&format!(
            "{} {} 1",
            slot.as_int().unwrap(),
            client.node_of(key.as_bytes())
        )),
        "{message}"
    );
    // A geo index is placed by its name, even for commands every shard takes part in.
    let index = (0..)
        .map(|i| format!("{{city{i}}}drivers"))
        .find(|k| client.node_of(k.as_bytes()) != cluster.address(0))
        .unwrap();
    let misplaced = plain
        .request(support::command(&format!("GEO.CREATE {index} RES 9")))
        .await
        .unwrap_err();
    assert_eq!(misplaced.server_code(), Some(ErrorCode::Moved));
    assert!(plain.request(support::command("DBSIZE")).await.is_ok());
    // Several nodes' keys in one plain request: the node runs it across the owners.
    let spread: Vec<&String> = keys.iter().take(20).collect();
    let nodes: std::collections::HashSet<String> = spread
        .iter()
        .map(|k| client.node_of(k.as_bytes()))
        .collect();
    assert_eq!(nodes.len(), 3, "20 keys reach every node");
    let line = format!(
        "MSET {}",
        spread
            .iter()
            .map(|k| format!("{k} y-{k}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(
        plain.request(support::command(&line)).await.unwrap(),
        Value::Ok
    );
    let names = spread
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let Value::Array(values) = plain
        .request(support::command(&format!("MGET {names}")))
        .await
        .unwrap()
    else {
        panic!("MGET answers an ARRAY");
    };
    let expected: Vec<Value> = spread
        .iter()
        .map(|k| Value::Bytes(format!("y-{k}").into()))
        .collect();
    assert_eq!(values, expected, "in the order asked, from every node");
    for key in &spread {
        assert_eq!(
            client.get((*key).clone()).await.unwrap().as_deref(),
            Some(format!("y-{key}").as_bytes())
        );
    }
    assert_eq!(
        plain
            .request(support::command(&format!("DEL {names}")))
            .await
            .unwrap(),
        Value::Int(20)
    );
    // A cart is all-or-nothing only on one shard: across nodes it is still refused.
    let cart = format!(
        "INV.RESERVE.MULTI TTL 60 {}",
        spread
            .iter()
            .map(|k| format!("{k} 1"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let refused = plain.request(support::command(&cart)).await.unwrap_err();
    assert_eq!(
        refused.server_code(),
        Some(ErrorCode::CrossNode),
        "{refused}"
    );
}

#[tokio::test]
async fn every_node_publishes_the_same_slot_map_and_a_second_create_is_refused() {
    let cluster = TestCluster::formed(3, 1).await;
    let maps: Vec<Value> = futures_util::future::join_all((0..3).map(|at| {
        support::cluster::call_owned(cluster.address(at), Command::Cluster(ClusterCommand::Slots))
    }))
    .await;
    assert!(maps.windows(2).all(|pair| pair[0] == pair[1]), "{maps:?}");
    let Some(Value::Array(ranges)) = maps[0].get("ranges") else {
        panic!("{:?}", maps[0]);
    };
    let mut next = 0;
    for range in ranges {
        let Value::Array(three) = range else {
            panic!("{range:?}")
        };
        assert_eq!(three[0].as_int(), Some(next));
        next = three[1].as_int().unwrap() + 1;
    }
    assert_eq!(next, 16_384, "the ranges cover every slot once");
    let again = support::plain_connection(&cluster.address(1)).await;
    let refused = again
        .request(support::command(
            "CLUSTER.CREATE 2 127.0.0.1:1 127.0.0.1:2 1 -",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.server_code(), Some(ErrorCode::Conflict));
}

#[tokio::test]
async fn a_node_that_is_not_formed_serves_no_keys() {
    let cluster = TestCluster::start(1, 1);
    let plain = support::plain_connection(&cluster.address(0)).await;
    let refused = plain.request(support::command("GET k")).await.unwrap_err();
    assert_eq!(refused.server_code(), Some(ErrorCode::ClusterDown));
    assert_eq!(
        plain
            .request(support::command("CLUSTER.KEYSLOT foo"))
            .await
            .unwrap(),
        Value::Int(12_182)
    );
}

/// Writes one key per running node (but `skip`) through the client, so each node's
/// slots are exercised; answers which nodes took a write.
async fn one_write_per_node(
    client: &Client,
    cluster: &TestCluster,
    round: usize,
    skip: Option<usize>,
) -> Vec<usize> {
    let mut served = Vec::new();
    for at in 0..cluster.nodes.len() {
        if cluster.nodes[at].is_none() || skip == Some(at) {
            continue;
        }
        let key = (0..)
            .map(|i| format!("probe:{round}:{i}"))
            .find(|k| client.node_of(k.as_bytes()) == cluster.address(at))
            .unwrap();
        client
            .set(key.clone(), "v")
            .await
            .unwrap_or_else(|e| panic!("node {}: {e}", at + 1));
        served.push(at);
    }
    served
}

#[tokio::test]
async fn killing_a_follower_then_the_leader_leaves_the_other_nodes_serving() {
    let mut cluster = TestCluster::formed(3, 1).await;
    let leader = cluster.leader().await;
    let follower = (0..3).find(|&at| at != leader).unwrap();
    let seed = (0..3).find(|&at| at != follower).unwrap();
    let client = Client::connect(&cluster.address(seed)).await.unwrap();

    cluster.kill(follower);
    for round in 0..10 {
        assert_eq!(
            one_write_per_node(&client, &cluster, round, None)
                .await
                .len(),
            2
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.restart(follower);
    cluster
        .wait_state(follower, "ok", Duration::from_secs(20))
        .await;

    // Now the leader: the two left elect another before their leases run out.
    cluster.kill(leader);
    let survivor = (0..3).find(|&at| at != leader).unwrap();
    let client = Client::connect(&cluster.address(survivor)).await.unwrap();
    for round in 10..30 {
        assert_eq!(
            one_write_per_node(&client, &cluster, round, None)
                .await
                .len(),
            2
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    let info = cluster.info(survivor).await;
    assert_eq!(info.get("epoch"), Some(&Value::Int(1)), "{info:?}");
}

#[tokio::test]
async fn a_paused_node_confirms_the_cluster_before_it_serves_again() {
    let cluster = TestCluster::formed(3, 1).await;
    let leader = cluster.leader().await;
    let paused = (0..3).find(|&at| at != leader).unwrap();
    let node = cluster.nodes[paused].as_ref().unwrap();
    let plain = support::plain_connection(&cluster.address(paused)).await;
    node.signal("STOP");
    // Longer than the lease: when it wakes, what it knew has lapsed.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let client = Client::connect(&cluster.address(leader)).await.unwrap();
    assert_eq!(
        one_write_per_node(&client, &cluster, 0, Some(paused))
            .await
            .len(),
        2
    );
    node.signal("CONT");
    let key = (0..)
        .map(|i| format!("after:{i}"))
        .find(|k| client.node_of(k.as_bytes()) == cluster.address(paused))
        .unwrap();
    // The first request after waking is refused until the node has heard from a quorum;
    // once it has, it serves.
    let first = plain
        .request(support::command(&format!("SET {key} v")))
        .await;
    if let Err(error) = &first {
        assert_eq!(error.server_code(), Some(ErrorCode::ClusterDown), "{error}");
    }
    cluster
        .wait_state(paused, "ok", Duration::from_secs(10))
        .await;
    plain
        .request(support::command(&format!("SET {key} v")))
        .await
        .unwrap();
}

/// A reply through the cluster client, which must succeed.
async fn run(client: &Client, line: &str) -> Value {
    client
        .call(support::command(line))
        .await
        .unwrap_or_else(|error| panic!("{line}: {error}"))
}

#[tokio::test]
async fn every_family_works_through_the_client_across_nodes() {
    let cluster = TestCluster::formed(3, 2).await;
    let client = Client::connect(&cluster.address(1)).await.unwrap();
    let keys = |prefix: &str| -> Vec<String> { (0..24).map(|i| format!("{prefix}:{i}")).collect() };
    let nodes_of = |names: &[String]| -> std::collections::HashSet<String> {
        names.iter().map(|k| client.node_of(k.as_bytes())).collect()
    };
    assert_eq!(nodes_of(&keys("h")).len(), 3, "24 keys reach every node");

    for key in keys("h") {
        assert_eq!(
            run(&client, &format!("HSET {key} f 1 g 2")).await,
            Value::Int(2)
        );
        assert_eq!(
            run(&client, &format!("HINCRBY {key} f 5")).await,
            Value::Int(6)
        );
    }
    for key in keys("z") {
        run(&client, &format!("ZADD {key} 1 a 2 b 3 c")).await;
        assert_eq!(run(&client, &format!("ZRANK {key} c")).await, Value::Int(2));
    }
    for key in keys("rl") {
        let reply = run(&client, &format!("RL.CHECK {key} LIMIT 2 WINDOW 60000")).await;
        assert_eq!(reply.get("allowed"), Some(&Value::Bool(true)), "{reply:?}");
    }
    let dedup = format!("DEDUP.MULTI 60 {}", keys("d").join(" "));
    let first = run(&client, &dedup).await;
    let again = run(&client, &dedup).await;
    assert_eq!(
        first,
        Value::Array(vec![Value::Bool(true); 24]),
        "{first:?}"
    );
    assert_eq!(
        again,
        Value::Array(vec![Value::Bool(false); 24]),
        "{again:?}"
    );
    for key in keys("c") {
        run(&client, &format!("COUNTER.PUT {key} 10")).await;
        let take = run(&client, &format!("COUNTER.TAKE {key} 4")).await;
        assert_eq!(take.get("remaining"), Some(&Value::Int(6)), "{take:?}");
        run(&client, &format!("VSET v{key} x")).await;
        run(&client, &format!("IDEM.BEGIN i{key} 60")).await;
    }
    for sku in keys("sku") {
        run(&client, &format!("INV.SET {sku} ON_HAND 3")).await;
    }
    // A cart over several nodes: the client reserves each node's part.
    let lines: Vec<(String, u64)> = keys("sku").into_iter().map(|s| (s, 2)).collect();
    let cart = client
        .inv_reserve_cart(Duration::from_secs(60), lines.clone())
        .await
        .unwrap();
    assert!(
        matches!(&cart, tessera_client::Cart::Held(h) if h.len() == 24),
        "{cart:?}"
    );
    let short = client
        .inv_reserve_cart(Duration::from_secs(60), lines)
        .await
        .unwrap();
    assert!(
        matches!(short, tessera_client::Cart::Short(_)),
        "nothing oversells: {short:?}"
    );

    // Timelines: a fan-out to every node, then a merge across them.
    let timelines = keys("tl");
    assert_eq!(
        client
            .tl_fanout(7, Some(7), None, timelines.clone())
            .await
            .unwrap(),
        24
    );
    for (i, timeline) in timelines.iter().enumerate() {
        client
            .tl_push(timeline.clone(), 100 + i as u64, Some(100 + i as i64), None)
            .await
            .unwrap();
    }
    let page = client.tl_merge(timelines.clone(), None, 5).await.unwrap();
    let ids: Vec<u64> = page.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![123, 122, 121, 120, 119]);
    assert!(page.next.is_some());

    // Presence on every node, read back in one call.
    let users = keys("u");
    for user in &users[..12] {
        client
            .presence_beat(
                user.clone(),
                Duration::from_secs(30),
                Duration::from_secs(5),
                None,
            )
            .await
            .unwrap();
    }
    let seen = client.presence_get(users.clone()).await.unwrap();
    assert_eq!(seen.iter().filter(|p| p.is_some()).count(), 12);
    assert!(seen[..12].iter().all(Option::is_some));

    // Geo: one index per city, the cities on different nodes; nearest-5 equals brute force.
    let cities = [
        ("{berlin}drivers", 52.52, 13.405),
        ("{paris}drivers", 48.8566, 2.3522),
        ("{rome}drivers", 41.9028, 12.4964),
        ("{oslo}drivers", 59.9139, 10.7522),
    ];
    let homes: std::collections::HashSet<String> = cities
        .iter()
        .map(|c| client.node_of(c.0.as_bytes()))
        .collect();
    assert!(homes.len() >= 2, "the cities live on more than one node");
    for (index, lat, lng) in cities {
        let geo = client.geo(index);
        geo.create(9).await.unwrap();
        let mut drivers = Vec::new();
        for i in 0..200 {
            let (dlat, dlng) = (
                (i % 20) as f64 * 0.002 - 0.02,
                (i / 20) as f64 * 0.003 - 0.015,
            );
            let at = (lat + dlat, lng + dlng);
            geo.upsert(format!("d{i}"), at.0, at.1).await.unwrap();
            drivers.push((format!("d{i}"), at));
        }
        let nearest = geo.near(lat, lng).k(5).radius(3_000).await.unwrap();
        drivers
            .sort_by(|a, b| haversine_m((lat, lng), a.1).total_cmp(&haversine_m((lat, lng), b.1)));
        // Equal distances may come in either order: compare the distances themselves.
        let expected: Vec<f64> = drivers[..5]
            .iter()
            .map(|d| haversine_m((lat, lng), d.1))
            .collect();
        assert_eq!(nearest.len(), 5, "{index}");
        for (got, want) in nearest.iter().zip(expected) {
            assert!((got.distance_m - want).abs() < 0.5, "{index}: {nearest:?}");
        }
        assert_eq!(geo.count(None).await.unwrap(), 200, "{index}");
    }
    // Every node took its share of the keys.
    for at in 0..3 {
        assert!(dbsize(&cluster.address(at)).await > 50, "node {}", at + 1);
    }
}

#[tokio::test]
async fn presence_watches_span_nodes_and_see_every_change_once() {
    use futures_util::StreamExt;
    let cluster = TestCluster::formed(3, 2).await;
    let client = Client::connect(&cluster.address(0)).await.unwrap();
    let users: Vec<String> = (0..24).map(|i| format!("rider:{i}")).collect();
    let nodes: std::collections::HashSet<String> =
        users.iter().map(|u| client.node_of(u.as_bytes())).collect();
    assert_eq!(nodes.len(), 3, "24 users on every node");
    client
        .presence_beat("rider:0", Duration::from_secs(60), Duration::ZERO, None)
        .await
        .unwrap();
    let mut watch = client.presence_watcher().await.unwrap();
    let baseline = watch.watch(users.clone()).await.unwrap();
    assert!(baseline[0].as_ref().unwrap().online, "in the order asked");
    assert!(baseline[1..].iter().all(Option::is_none), "{baseline:?}");
    for user in &users[1..] {
        client
            .presence_beat(user.clone(), Duration::from_secs(60), Duration::ZERO, None)
            .await
            .unwrap();
    }
    client.presence_leave("rider:0").await.unwrap();
    let mut seen = std::collections::HashMap::new();
    while seen.len() < users.len() {
        let change = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("every change arrives")
            .expect("the watch is open");
        let user = String::from_utf8(change.user.to_vec()).unwrap();
        assert!(
            seen.insert(user.clone(), change.online).is_none(),
            "{user} changed once"
        );
    }
    assert!(!seen["rider:0"], "rider:0 left");
    assert!(users[1..].iter().all(|u| seen[u]), "{seen:?}");
    assert_eq!(watch.unwatch(users.clone()).await.unwrap(), 24);
}
