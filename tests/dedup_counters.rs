//! Dedup, bounded counters and id blocks under many real concurrent clients.

mod support;

use std::sync::Arc;
use std::time::Duration;
use tessera_protocol::DedupCommand;

use bytes::Bytes;
use support::{open_many, TestServer, SHARD_COUNTS};
use tessera_client::{Client, ErrorCode};
use tessera_protocol::{Command, Value};
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_clients_on_one_dedup_key_see_exactly_one_first() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        // Plain connections: most requests are forwarded to the key's owner.
        let connections = open_many(&server.address, 1000).await;
        let start = Arc::new(Barrier::new(connections.len()));
        let tasks: Vec<_> = connections
            .into_iter()
            .map(|connection| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let command = Command::Dedup(DedupCommand::Check {
                        key: Bytes::from_static(b"impression:7f3a"),
                        ttl_ms: 3_600_000,
                    });
                    connection
                        .request(command)
                        .await
                        .expect("no client sees an error")
                })
            })
            .collect();
        let mut firsts = 0;
        for task in tasks {
            match task.await.unwrap() {
                Value::Bool(true) => firsts += 1,
                Value::Bool(false) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(firsts, 1, "{shards} shards");
    }
}

#[tokio::test]
async fn dedup_many_answers_per_key_in_order_across_shards() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let ttl = Duration::from_secs(2);
        assert!(client.dedup("seen", ttl).await.unwrap());
        let keys = ["a", "seen", "b", "a", "c"];
        assert_eq!(
            client.dedup_many(keys, ttl).await.unwrap(),
            vec![true, false, true, false, true]
        );
        // The server-side split gives the same answers on one plain connection.
        let connection = client.connection(0).await.unwrap();
        let reply = connection
            .request(Command::Dedup(DedupCommand::CheckMany {
                ttl_ms: 2000,
                keys: ["a", "d", "d"]
                    .iter()
                    .map(|k| Bytes::from_static(k.as_bytes()))
                    .collect(),
            }))
            .await
            .unwrap();
        assert_eq!(
            reply,
            Value::Array(vec![
                Value::Bool(false),
                Value::Bool(true),
                Value::Bool(false)
            ])
        );
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert!(
            client.dedup("seen", ttl).await.unwrap(),
            "a record expires with its ttl"
        );
        let err = client.dedup("k", Duration::ZERO).await.unwrap_err();
        assert_eq!(err.server_code(), Some(ErrorCode::InvalidExpire));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_never_pass_the_floor_and_account_for_every_unit() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        const STOCK: i64 = 1000;
        client.counter_put("budget", STOCK as u64).await.unwrap();
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut taken = 0;
                    for j in 0..20u64 {
                        let amount = 1 + (i * 7 + j) % 5;
                        let outcome = client.counter_take("budget", amount, 0).await.unwrap();
                        assert!(outcome.remaining >= 0, "the floor held: {outcome:?}");
                        if outcome.taken {
                            taken += amount as i64;
                        }
                    }
                    taken
                })
            })
            .collect();
        let mut total_taken = 0;
        for task in tasks {
            total_taken += task.await.unwrap();
        }
        let left = client.counter_take("budget", 0, 0).await.unwrap().remaining;
        assert_eq!(
            total_taken + left,
            STOCK,
            "every unit is taken once or still there"
        );
        assert!(
            left < 5,
            "demand exceeded stock, so at most a refused remainder is left"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_blocks_from_many_clients_are_disjoint_and_contiguous() {
    let server = TestServer::start(3);
    let client = Client::connect(&server.address).await.unwrap();
    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut blocks = Vec::new();
                for j in 0..10u64 {
                    blocks.push(
                        client
                            .id_range("short-urls", 1 + (i + j) % 50)
                            .await
                            .unwrap(),
                    );
                }
                blocks
            })
        })
        .collect();
    let mut blocks = Vec::new();
    for task in tasks {
        blocks.extend(task.await.unwrap());
    }
    blocks.sort_by_key(|b| *b.start());
    assert_eq!(*blocks[0].start(), 1);
    for pair in blocks.windows(2) {
        assert_eq!(
            *pair[0].end() + 1,
            *pair[1].start(),
            "no gap and no overlap"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_get_one_runner_then_the_stored_result() {
    use tessera_client::Idem;
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let day = Duration::from_secs(86_400);
        let lease = Duration::from_secs(30);
        let start = Arc::new(Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (client, start) = (client.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    client
                        .idem_begin("payment:order-81", day, lease)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut runners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Idem::New { token } => runners.push(token),
                Idem::InProgress { retry_after, .. } => assert!(retry_after > Duration::ZERO),
                Idem::Done(_) => panic!("nothing is done yet"),
            }
        }
        assert_eq!(
            runners,
            vec![1],
            "{shards} shards: exactly one caller runs the payment"
        );
        client
            .idem_complete("payment:order-81", 1, "charge:ch_42")
            .await
            .unwrap();
        for _ in 0..10 {
            let retry = client
                .idem_begin("payment:order-81", day, lease)
                .await
                .unwrap();
            assert_eq!(
                retry,
                Idem::Done(Bytes::from_static(b"charge:ch_42")),
                "the original answer"
            );
        }
        let second = client
            .idem_complete("payment:order-81", 1, "charge:ch_43")
            .await
            .unwrap_err();
        assert_eq!(second.server_code(), Some(ErrorCode::Conflict));
    }
}

#[tokio::test]
async fn a_crashed_holder_loses_its_lease() {
    use tessera_client::Idem;
    let server = TestServer::start(2);
    let client = server.client().await;
    let (ttl, lease) = (Duration::from_secs(60), Duration::from_secs(1));
    assert_eq!(
        client.idem_begin("job", ttl, lease).await.unwrap(),
        Idem::New { token: 1 }
    );
    assert!(matches!(
        client.idem_begin("job", ttl, lease).await.unwrap(),
        Idem::InProgress { .. }
    ));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        client.idem_begin("job", ttl, lease).await.unwrap(),
        Idem::New { token: 2 }
    );
    let stale = client.idem_complete("job", 1, "late").await.unwrap_err();
    assert_eq!(
        stale.server_code(),
        Some(ErrorCode::Conflict),
        "the crashed holder cannot complete"
    );
    client.idem_complete("job", 2, "ok").await.unwrap();
    assert_eq!(
        client.idem_get("job").await.unwrap(),
        Some(Idem::Done(Bytes::from_static(b"ok")))
    );
    assert_eq!(client.idem_get("unknown").await.unwrap(), None);
}
