//! Every command end to end against a real server, at one shard and at several.

mod support;

use std::time::Duration;
use tessera_protocol::{AdminCommand, KeyCommand};

use bytes::Bytes;
use support::{TestServer, SHARD_COUNTS};
use tessera_client::{Client, ErrorCode, Ttl};
use tessera_protocol::{Command, Value};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn each_shard_count<F, Fut>(case: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        assert_eq!(usize::from(client.hello().shards), shards);
        case(client).await;
        drop(server);
    }
}

#[tokio::test]
async fn ping_and_hello() {
    each_shard_count(|client| async move {
        client.ping().await.unwrap();
        let echoed = client
            .call(Command::Admin(AdminCommand::Ping(Some(b("hi")))))
            .await
            .unwrap();
        assert_eq!(echoed, Value::Bytes(b("hi")));
        let hello = client
            .call(Command::Admin(AdminCommand::Hello {
                version: 2,
                shard: None,
                auth: None,
            }))
            .await
            .unwrap();
        assert_eq!(hello.get("version"), Some(&Value::Int(2)));
        let refused = client
            .call(Command::Admin(AdminCommand::Hello {
                version: 99,
                shard: None,
                auth: None,
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.server_code(), Some(ErrorCode::UnsupportedVersion));
    })
    .await;
}

#[tokio::test]
async fn hello_moves_a_connection_to_the_shard_it_asks_for() {
    let server = TestServer::start(3);
    for shard in 0..3u16 {
        let connection = tessera_client::Connection::open(
            &server.address,
            Some(shard),
            &tessera_client::ClientConfig::default(),
        )
        .await
        .unwrap();
        assert_eq!(connection.hello().shard, shard);
        // A key this shard owns is served without forwarding.
        let key = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| tessera_cluster::shard_for_key(k.as_bytes(), 3) == shard)
            .unwrap();
        connection
            .request(Command::Keys(KeyCommand::Set(tessera_protocol::SetArgs {
                key: b(&key),
                value: b("v"),
                condition: Default::default(),
                expiry: Default::default(),
                get: false,
            })))
            .await
            .unwrap();
    }
    let missing = tessera_client::Connection::open(
        &server.address,
        Some(7),
        &tessera_client::ClientConfig::default(),
    )
    .await;
    assert_eq!(
        missing.err().and_then(|e| e.server_code()),
        Some(ErrorCode::NoSuchShard)
    );
    let client = server.client().await;
    let info = client.info().await.unwrap();
    let forwarded = info
        .get("totals")
        .and_then(|t| t.get("forwarded_out"))
        .cloned();
    // INFO itself asks the two other shards; the routed SETs added nothing.
    assert_eq!(
        forwarded,
        Some(Value::Int(2)),
        "routed requests never hop between shards"
    );
}

#[tokio::test]
async fn set_and_get_with_every_option() {
    each_shard_count(|client| async move {
        assert!(client.set("k", "v1").await.unwrap());
        assert_eq!(client.get("k").await.unwrap(), Some(b("v1")));
        assert!(
            !client.set("k", "v2").nx().await.unwrap(),
            "NX on an existing key"
        );
        assert!(client.set("k", "v2").xx().await.unwrap());
        assert!(
            !client.set("absent", "x").xx().await.unwrap(),
            "XX on a missing key"
        );
        assert_eq!(client.get("absent").await.unwrap(), None);
        assert_eq!(client.set("k", "v3").get().await.unwrap(), Some(b("v2")));
        assert!(client.set("k", "v4").ex(100).await.unwrap());
        assert!(client.set("k", "v5").keep_ttl().await.unwrap());
        let Ttl::Expires(left) = client.ttl("k").await.unwrap() else {
            panic!("KEEPTTL kept the expiry")
        };
        assert!(left > Duration::from_secs(95) && left <= Duration::from_secs(100));
        assert!(client.set("k", "v6").await.unwrap());
        assert_eq!(
            client.ttl("k").await.unwrap(),
            Ttl::Persistent,
            "plain SET clears the expiry"
        );
        let empty = Bytes::new();
        assert!(client.set("empty", empty.clone()).await.unwrap());
        assert_eq!(client.get("empty").await.unwrap(), Some(empty));
        let binary = Bytes::from(vec![0u8, 255, 10, 13]);
        client.set(binary.clone(), binary.clone()).await.unwrap();
        assert_eq!(client.get(binary.clone()).await.unwrap(), Some(binary));
    })
    .await;
}

#[tokio::test]
async fn del_exists_and_counters() {
    each_shard_count(|client| async move {
        client
            .mset([("a", "1"), ("b", "2"), ("c", "3")])
            .await
            .unwrap();
        assert_eq!(client.exists(["a", "b", "zz", "a"]).await.unwrap(), 3);
        assert_eq!(client.del(["a", "zz"]).await.unwrap(), 1);
        assert_eq!(client.exists(["a"]).await.unwrap(), 0);
        assert_eq!(client.incr_by("b", 40).await.unwrap(), 42);
        assert_eq!(client.decr_by("b", 50).await.unwrap(), -8);
        assert_eq!(client.incr_by("new", 5).await.unwrap(), 5);
        assert_eq!(client.get("b").await.unwrap(), Some(b("-8")));
        client.set("text", "abc").await.unwrap();
        let err = client.incr_by("text", 1).await.unwrap_err();
        assert_eq!(err.server_code(), Some(ErrorCode::NotInteger));
        client.set("max", i64::MAX.to_string()).await.unwrap();
        let err = client.incr_by("max", 1).await.unwrap_err();
        assert_eq!(err.server_code(), Some(ErrorCode::NotInteger));
        // The server splits a multi-key command itself when a plain connection sends it.
        let connection = client.connection(0).await.unwrap();
        let keys: Vec<Bytes> = ["b", "c", "nope", "new"].iter().map(|k| b(k)).collect();
        assert_eq!(
            connection
                .request(Command::Keys(KeyCommand::Exists(keys.clone())))
                .await
                .unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            connection
                .request(Command::Keys(KeyCommand::Del(keys)))
                .await
                .unwrap(),
            Value::Int(3)
        );
    })
    .await;
}

#[tokio::test]
async fn expire_ttl_and_persist() {
    each_shard_count(|client| async move {
        assert_eq!(client.ttl("missing").await.unwrap(), Ttl::Missing);
        client.set("k", "v").await.unwrap();
        assert_eq!(client.ttl("k").await.unwrap(), Ttl::Persistent);
        assert!(client.expire("k", Duration::from_secs(50)).await.unwrap());
        let ttl = client
            .call(Command::Keys(KeyCommand::Ttl(b("k"))))
            .await
            .unwrap();
        assert_eq!(ttl, Value::Int(50));
        let pttl = client
            .call(Command::Keys(KeyCommand::PTtl(b("k"))))
            .await
            .unwrap()
            .as_int()
            .unwrap();
        assert!((49_000..=50_000).contains(&pttl));
        assert!(client.persist("k").await.unwrap());
        assert!(!client.persist("k").await.unwrap());
        assert!(!client
            .expire("missing", Duration::from_secs(1))
            .await
            .unwrap());
        let seconds = client
            .call(Command::Keys(KeyCommand::Expire {
                key: b("k"),
                seconds: 30,
                condition: Default::default(),
            }))
            .await
            .unwrap();
        assert_eq!(seconds, Value::Int(1));
        let gone = client
            .call(Command::Keys(KeyCommand::Expire {
                key: b("k"),
                seconds: -1,
                condition: Default::default(),
            }))
            .await
            .unwrap();
        assert_eq!(gone, Value::Int(1), "a past expiry deletes");
        assert_eq!(client.get("k").await.unwrap(), None);
        client.set("k", "v").await.unwrap();
        let err = client
            .call(Command::Keys(KeyCommand::Expire {
                key: b("k"),
                seconds: i64::MAX,
                condition: Default::default(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.server_code(), Some(ErrorCode::InvalidExpire));
    })
    .await;
}

#[tokio::test]
async fn keys_expire_lazily_and_actively() {
    each_shard_count(|client| async move {
        client.set("lazy", "v").px(300).await.unwrap();
        client.set("kept", "v").await.unwrap();
        let mut pipeline = client.pipeline();
        for i in 0..500 {
            pipeline.add(Command::Keys(KeyCommand::Set(tessera_protocol::SetArgs {
                key: b(&format!("active:{i}")),
                value: b("v"),
                condition: Default::default(),
                expiry: tessera_protocol::SetExpiry::In(300),
                get: false,
            })));
        }
        for result in pipeline.execute().await.unwrap() {
            assert_eq!(result.unwrap(), Value::Ok);
        }
        assert_eq!(client.dbsize().await.unwrap(), 502);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            client.get("lazy").await.unwrap(),
            None,
            "expired keys are never returned"
        );
        // Nobody reads the active:* keys; background sampling must remove them.
        let mut size = u64::MAX;
        for _ in 0..50 {
            size = client.dbsize().await.unwrap();
            if size == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(size, 1, "only the key without a deadline is left");
        let info = client.info().await.unwrap();
        let expired = info
            .get("totals")
            .and_then(|t| t.get("expired_keys"))
            .and_then(Value::as_int);
        assert_eq!(expired, Some(501));
    })
    .await;
}

#[tokio::test]
async fn cross_shard_mget_and_mset_keep_order() {
    let server = TestServer::start(2);
    let client = server.client().await;
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    let shards: std::collections::BTreeSet<u16> =
        keys.iter().map(|k| client.shard_of(k.as_bytes())).collect();
    assert_eq!(shards.len(), 2, "the keys really span both shards");
    // Server-side split: one MSET and one MGET on a single connection.
    let connection = client.connection(0).await.unwrap();
    let pairs = keys
        .iter()
        .map(|k| (b(k), b(&format!("value-of-{k}"))))
        .collect();
    assert_eq!(
        connection
            .request(Command::Keys(KeyCommand::MSet(pairs)))
            .await
            .unwrap(),
        Value::Ok
    );
    let mut asked: Vec<Bytes> = keys.iter().map(|k| b(k)).collect();
    asked.insert(500, b("missing"));
    let Value::Array(values) = connection
        .request(Command::Keys(KeyCommand::MGet(asked.clone())))
        .await
        .unwrap()
    else {
        panic!("MGET answers with an array");
    };
    assert_eq!(values.len(), 1001);
    for (key, value) in asked.iter().zip(&values) {
        if &key[..] == b"missing" {
            assert_eq!(value, &Value::Nil);
        } else {
            let expected = format!("value-of-{}", String::from_utf8_lossy(key));
            assert_eq!(value, &Value::Bytes(b(&expected)));
        }
    }
    // Client-side split gives the same answer.
    let via_client = client.mget(asked.clone()).await.unwrap();
    let as_values: Vec<Value> = via_client
        .into_iter()
        .map(|v| v.map_or(Value::Nil, Value::Bytes))
        .collect();
    assert_eq!(as_values, values);
    assert_eq!(client.dbsize().await.unwrap(), 1000);
    client.flushall().await.unwrap();
    assert_eq!(client.dbsize().await.unwrap(), 0);
}

#[tokio::test]
async fn info_reports_per_shard_counters() {
    each_shard_count(|client| async move {
        for i in 0..50 {
            client.set(format!("k{i}"), "v").await.unwrap();
            client.get(format!("k{i}")).await.unwrap();
        }
        let info = client.info().await.unwrap();
        let shards = match info.get("shards") {
            Some(Value::Array(rows)) => rows.clone(),
            other => panic!("shards row list, got {other:?}"),
        };
        assert_eq!(shards.len(), usize::from(client.hello().shards));
        let keys: i64 = shards
            .iter()
            .filter_map(|s| s.get("keys").and_then(Value::as_int))
            .sum();
        assert_eq!(keys, 50);
        let totals = info.get("totals").unwrap();
        assert!(totals.get("memory_bytes").and_then(Value::as_int).unwrap() > 0);
        assert!(totals.get("connections").and_then(Value::as_int).unwrap() >= 1);
        let set = info.get("commands").and_then(|c| c.get("SET")).unwrap();
        assert_eq!(set.get("calls"), Some(&Value::Int(50)));
        assert!(matches!(set.get("p99_us"), Some(Value::Float(p)) if *p > 0.0));
    })
    .await;
}

#[tokio::test]
async fn pipelined_requests_all_complete_on_one_connection() {
    each_shard_count(|client| async move {
        let mut pipeline = client.pipeline();
        for i in 0..2000 {
            pipeline.add(Command::Keys(KeyCommand::IncrBy {
                key: b(&format!("c{}", i % 10)),
                delta: 1,
            }));
        }
        let replies = pipeline.execute().await.unwrap();
        assert_eq!(replies.len(), 2000);
        let last: Vec<i64> = replies[1990..]
            .iter()
            .map(|r| r.as_ref().unwrap().as_int().unwrap())
            .collect();
        assert_eq!(
            last,
            vec![200; 10],
            "each counter saw its 200 increments in order"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_stream_of_short_lived_keys_few_expired_ones_are_held() {
    // Writers stream SETs with a 200 ms TTL; every so often the keys held (INFO) are
    // compared with the keys acknowledged in the 200 ms before: the rest lapsed but are
    // still held. Without the expiry wheel, sampling alone held about half the live set.
    let server = TestServer::start(2);
    let acks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<std::time::Instant>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, acks, stop) = (server.client().await, acks.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut pipeline = client.pipeline();
                for _ in 0..200 {
                    n += 1;
                    pipeline.add(Command::Keys(KeyCommand::Set(tessera_protocol::SetArgs {
                        key: b(&format!("short:{writer}:{n}")),
                        value: b("v"),
                        condition: Default::default(),
                        expiry: tessera_protocol::SetExpiry::In(200),
                        get: false,
                    })));
                }
                let replies = pipeline.execute().await.unwrap();
                let at = std::time::Instant::now();
                acks.lock()
                    .unwrap()
                    .extend(std::iter::repeat_n(at, replies.len()));
            }
        }));
    }
    let reader = server.client().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut stale_shares = Vec::new();
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let held = reader.dbsize().await.unwrap() as f64;
        let now = std::time::Instant::now();
        let live = acks
            .lock()
            .unwrap()
            .iter()
            .filter(|at| now.duration_since(**at) < Duration::from_millis(200))
            .count() as f64;
        stale_shares.push((held - live) / live.max(1.0));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    stale_shares.sort_by(f64::total_cmp);
    let median = stale_shares[stale_shares.len() / 2];
    assert!(
        median < 0.25,
        "expired but held, as a share of the live set: {stale_shares:?}"
    );
}
