//! Cluster mode over RESP against a real three-node cluster: CLUSTER SLOTS, SHARDS, NODES
//! and INFO in Redis's shapes with every node's RESP address, MOVED pointing Redis clients
//! at the owner's RESP port, and a Redis Cluster client (the `redis` crate's) routing by
//! itself with every write read back from whichever node owns it.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use redis::AsyncCommands;
use support::cluster::TestCluster;

/// One request on a fresh RESP connection to node `at`, answered as raw RESP text.
fn raw(cluster: &TestCluster, at: usize, request: &str) -> String {
    let port = cluster.nodes[at].as_ref().unwrap().resp_port.unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn resp_ports(cluster: &TestCluster) -> Vec<u16> {
    cluster
        .nodes
        .iter()
        .map(|node| node.as_ref().unwrap().resp_port.unwrap())
        .collect()
}

#[tokio::test]
async fn the_slot_map_reads_as_redis_cluster_writes_it() {
    let cluster = TestCluster::formed(3, 2).await;
    let ports = resp_ports(&cluster);
    let url = format!("redis://127.0.0.1:{}/", ports[0]);
    let mut redis = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    // CLUSTER SLOTS: runs covering every slot once, each owned at one of the RESP ports.
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut covered = vec![false; 16384];
    for run in &slots {
        let redis::Value::Array(run) = run else {
            panic!("{run:?}")
        };
        let (first, last): (usize, usize) = (
            redis::from_redis_value(run[0].clone()).unwrap(),
            redis::from_redis_value(run[1].clone()).unwrap(),
        );
        let (_host, port, id): (String, u16, String) =
            redis::from_redis_value(run[2].clone()).unwrap();
        assert!(ports.contains(&port), "{port} is a RESP port");
        assert_eq!(id.len(), 40);
        for (slot, seen) in covered.iter_mut().enumerate().take(last + 1).skip(first) {
            assert!(!*seen, "slot {slot} is listed once");
            *seen = true;
        }
    }
    assert!(covered.iter().all(|&c| c), "every slot is listed");

    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    assert!(info.contains("cluster_known_nodes:3"), "{info}");

    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut redis)
        .await
        .unwrap();
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("myself,master")).count(),
        1
    );
    let myid: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        nodes.contains(&format!("{myid} 127.0.0.1:{}@", ports[0])),
        "{nodes}"
    );

    let shards: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SHARDS")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(shards.len(), 3);
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg("{user1000}.following")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(slot, 3443);

    // A key owned elsewhere is MOVED to the owner's RESP port, not its native one.
    let mut moved = 0;
    for n in 0..40 {
        let key = format!("key:{n}");
        let reply = raw(
            &cluster,
            0,
            &format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()),
        );
        if let Some(rest) = reply.strip_prefix("-MOVED ") {
            let port: u16 = rest.trim().rsplit(':').next().unwrap().parse().unwrap();
            assert!(ports[1..].contains(&port), "{reply}");
            moved += 1;
        }
    }
    assert!(moved > 0, "some of 40 keys live on the other two nodes");
}

#[tokio::test]
async fn a_redis_cluster_client_routes_by_itself() {
    let cluster = TestCluster::formed(3, 2).await;
    let urls: Vec<String> = resp_ports(&cluster)
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}/"))
        .collect();
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut redis = client.get_async_connection().await.unwrap();
    for n in 0..300 {
        let () = redis
            .set(format!("user:{n}"), format!("value {n}"))
            .await
            .unwrap();
        let _: i64 = redis.incr(format!("{{user:{n}}}.visits"), 2).await.unwrap();
    }
    for n in 0..300 {
        let value: String = redis.get(format!("user:{n}")).await.unwrap();
        assert_eq!(value, format!("value {n}"));
        let visits: i64 = redis.get(format!("{{user:{n}}}.visits")).await.unwrap();
        assert_eq!(visits, 2);
    }
    // A transaction of one slot's keys, and geo on a key of any slot.
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("{cart:7}.items", 1)
        .incr("{cart:7}.total", 250)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 250));
    let added: i64 = redis::cmd("GEOADD")
        .arg("drivers:rome")
        .arg(12.4964)
        .arg(41.9028)
        .arg("d1")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(added, 1);

    // Every node holds only keys whose slots it owns, and together they hold all of them.
    let mut total = 0;
    for port in resp_ports(&cluster) {
        let mut node = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let size: i64 = redis::cmd("DBSIZE").query_async(&mut node).await.unwrap();
        total += size;
    }
    assert_eq!(total, 600 + 2 + 1);
}

#[tokio::test]
async fn publish_reaches_subscribers_on_every_node_once() {
    use futures_util::StreamExt;

    let cluster = TestCluster::formed(3, 2).await;
    let ports = resp_ports(&cluster);
    let client =
        |at: usize| redis::Client::open(format!("redis://127.0.0.1:{}/", ports[at])).unwrap();
    // A RESP subscriber on each node, and a native one on node 1.
    let mut listeners = Vec::new();
    for at in 0..3 {
        let mut pubsub = client(at).get_async_pubsub().await.unwrap();
        pubsub.subscribe("chat:room").await.unwrap();
        listeners.push(pubsub);
    }
    let native = tessera_client::Client::connect(&cluster.address(1))
        .await
        .unwrap();
    let mut native_subscriber = native.subscriber().await.unwrap();
    native_subscriber.subscribe(["chat:room"]).await.unwrap();

    let mut publisher = client(0).get_multiplexed_async_connection().await.unwrap();
    const MESSAGES: usize = 50;
    for n in 0..MESSAGES {
        let here: i64 = redis::cmd("PUBLISH")
            .arg("chat:room")
            .arg(format!("m{n}"))
            .query_async(&mut publisher)
            .await
            .unwrap();
        assert_eq!(
            here, 1,
            "PUBLISH counts this node's subscribers, as Redis Cluster's"
        );
    }
    let within = Duration::from_secs(10);
    for (at, pubsub) in listeners.iter_mut().enumerate() {
        let mut messages = pubsub.on_message();
        for n in 0..MESSAGES {
            let message = tokio::time::timeout(within, messages.next())
                .await
                .unwrap_or_else(|_| panic!("node {at} heard message {n}"))
                .unwrap();
            assert_eq!(message.get_channel_name(), "chat:room");
            assert_eq!(message.get_payload::<String>().unwrap(), format!("m{n}"));
        }
    }
    for n in 0..MESSAGES {
        let message = tokio::time::timeout(within, native_subscriber.next())
            .await
            .expect("the native subscriber heard it")
            .unwrap();
        assert_eq!(&message.payload[..], format!("m{n}").as_bytes());
    }
    // Each message crossed to each peer once: nothing more arrives.
    let mut messages = listeners[2].on_message();
    let extra = tokio::time::timeout(Duration::from_millis(300), messages.next()).await;
    assert!(extra.is_err(), "a relayed message is not relayed again");
}
