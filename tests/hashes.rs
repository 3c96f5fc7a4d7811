//! Hashes against a real server at 1 and several shards: Redis's replies, per-field
//! expiry, WRONGTYPE across kinds, and atomic increments under many concurrent clients.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use support::{TestServer, SHARD_COUNTS};
use tessera_protocol::commands::hashes::ExpireCondition;
use tessera_protocol::commands::HashCommand as H;
use tessera_protocol::ErrorCode;
use tokio::sync::Barrier;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test]
async fn a_cart_lives_in_a_hash() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let cart = "cart:{user:7}";
        assert_eq!(
            client
                .run(H::hset(cart, [("sku:1", "2"), ("sku:2", "1")]))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            client.run(H::hset(cart, [("sku:1", "3")])).await.unwrap(),
            0
        );
        assert!(!client.run(H::hsetnx(cart, "sku:1", "9")).await.unwrap());
        assert!(client.run(H::hsetnx(cart, "note", "gift")).await.unwrap());
        assert_eq!(
            client.run(H::hget(cart, "sku:1")).await.unwrap(),
            Some(b("3"))
        );
        assert_eq!(
            client.run(H::hmget(cart, ["sku:2", "nope"])).await.unwrap(),
            vec![Some(b("1")), None]
        );
        assert_eq!(client.run(H::hincrby(cart, "sku:2", 4)).await.unwrap(), 5);
        assert_eq!(
            client
                .run(H::hincrbyfloat(cart, "total", 10.5))
                .await
                .unwrap(),
            10.5
        );
        assert_eq!(client.run(H::hlen(cart)).await.unwrap(), 4);
        assert_eq!(client.run(H::hstrlen(cart, "note")).await.unwrap(), 4);
        assert!(client.run(H::hexists(cart, "note")).await.unwrap());
        let mut all = client.run(H::hgetall(cart)).await.unwrap();
        all.sort();
        assert_eq!(
            all,
            vec![
                (b("note"), b("gift")),
                (b("sku:1"), b("3")),
                (b("sku:2"), b("5")),
                (b("total"), b("10.5")),
            ]
        );
        let mut keys = client.run(H::hkeys(cart)).await.unwrap();
        keys.sort();
        assert_eq!(keys, vec![b("note"), b("sku:1"), b("sku:2"), b("total")]);
        assert_eq!(client.run(H::hvals(cart)).await.unwrap().len(), 4);
        assert_eq!(
            client
                .run(H::hdel(cart, ["note", "sku:1", "sku:2", "total"]))
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            client.exists([cart]).await.unwrap(),
            0,
            "{shards} shards: the key goes with its last field"
        );
    }
}

#[tokio::test]
async fn fields_expire_on_their_own_and_the_key_goes_with_the_last() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let session = "session:42";
        client
            .run(H::hset(session, [("token", "t"), ("user", "42")]))
            .await
            .unwrap();
        let codes = client
            .run(H::hpexpire(
                session,
                Duration::from_millis(300),
                ExpireCondition::Always,
                ["token", "missing"],
            ))
            .await
            .unwrap();
        assert_eq!(codes, vec![1, -2]);
        let refused = client
            .run(H::hpexpire(
                session,
                Duration::from_secs(60),
                ExpireCondition::IfNone,
                ["token"],
            ))
            .await
            .unwrap();
        assert_eq!(refused, vec![0], "NX: the field already has an expiry");
        let left = client
            .run(H::hpttl(session, ["token", "user"]))
            .await
            .unwrap();
        assert!((1..=300).contains(&left[0]), "{left:?}");
        assert_eq!(left[1], -1);
        client
            .run(H::hpexpire(
                session,
                Duration::from_millis(300),
                ExpireCondition::Always,
                ["user"],
            ))
            .await
            .unwrap();
        assert_eq!(
            client.run(H::hpersist(session, ["user"])).await.unwrap(),
            vec![1]
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(client.run(H::hget(session, "token")).await.unwrap(), None);
        assert_eq!(client.run(H::hlen(session)).await.unwrap(), 1);
        client
            .run(H::hpexpire(
                session,
                Duration::from_millis(100),
                ExpireCondition::Always,
                ["user"],
            ))
            .await
            .unwrap();
        // Nobody reads the hash again: the shard's timer removes the field, and the key.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(client.dbsize().await.unwrap(), 0, "{shards} shards");
    }
}

#[tokio::test]
async fn kinds_do_not_mix() {
    let server = TestServer::start(2);
    let client = server.client().await;
    client.set("plain", "v").await.unwrap();
    let refused = client.run(H::hget("plain", "f")).await.unwrap_err();
    assert_eq!(refused.server_code(), Some(ErrorCode::WrongType));
    client.run(H::hset("h", [("n", "abc")])).await.unwrap();
    assert_eq!(
        client.get("h").await.unwrap_err().server_code(),
        Some(ErrorCode::WrongType)
    );
    let not_int = client.run(H::hincrby("h", "n", 1)).await.unwrap_err();
    assert_eq!(not_int.server_code(), Some(ErrorCode::NotInteger));
    let not_float = client
        .run(H::hincrbyfloat("h", "n", 1.0))
        .await
        .unwrap_err();
    assert_eq!(not_float.server_code(), Some(ErrorCode::NotFloat));
    let nan = client
        .run(H::hincrbyfloat("h", "x", f64::NAN))
        .await
        .unwrap_err();
    assert!(
        matches!(nan, tessera_client::Error::InvalidArgument(_)),
        "{nan}"
    );
    assert!(client.ping().await.is_ok(), "the connection survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_are_never_lost() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let clients = 50;
        let rounds = 20;
        let start = Arc::new(Barrier::new(clients));
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, start) = (client.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let mut seen = Vec::with_capacity(rounds);
                    for _ in 0..rounds {
                        seen.push(
                            client
                                .run(H::hincrby("budget:ad:9", "spent", 1))
                                .await
                                .unwrap(),
                        );
                    }
                    seen
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        // Every reply is a distinct value from 1 to the total: no increment was lost or
        // applied twice.
        acknowledged.sort_unstable();
        let total = (clients * rounds) as i64;
        assert_eq!(
            acknowledged,
            (1..=total).collect::<Vec<_>>(),
            "{shards} shards"
        );
        assert_eq!(
            client.run(H::hget("budget:ad:9", "spent")).await.unwrap(),
            Some(Bytes::from(total.to_string()))
        );
    }
}
