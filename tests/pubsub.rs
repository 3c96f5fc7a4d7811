//! Pub/sub against real server processes: native subscribers get every message once and
//! in each publisher's order from publishers on any shard, patterns, unsubscribing and
//! closing end delivery, a real Redis client subscribes over RESP, and keyspace
//! notifications reach native subscribers from writes and expiry on every shard.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use support::TestServer;
use tessera_client::{Client, Message};

#[tokio::test]
async fn every_subscriber_gets_every_message_once_in_each_publishers_order() {
    const SUBSCRIBERS: usize = 8;
    const PUBLISHERS: usize = 4;
    const MESSAGES: usize = 200;
    let server = TestServer::start(4);
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        // Separate clients land on different shards.
        let client = Client::connect(&server.address).await.unwrap();
        let subscriber = client.subscriber().await.unwrap();
        assert_eq!(subscriber.subscribe(["room:1"]).await.unwrap(), 1);
        subscribers.push(subscriber);
    }
    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let address = server.address.clone();
        publishers.push(tokio::spawn(async move {
            let client = Client::connect(&address).await.unwrap();
            for n in 0..MESSAGES {
                let reached = client
                    .publish("room:1", format!("{publisher}:{n}"))
                    .await
                    .unwrap();
                assert_eq!(
                    reached, SUBSCRIBERS as u64,
                    "every subscription was reached"
                );
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for mut subscriber in subscribers {
        let mut next: HashMap<usize, usize> = HashMap::new();
        for _ in 0..PUBLISHERS * MESSAGES {
            let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
                .await
                .expect("a message within 10 s")
                .expect("the stream is open");
            assert_eq!(&message.channel[..], b"room:1");
            let text = String::from_utf8(message.payload.to_vec()).unwrap();
            let (publisher, n) = text.split_once(':').unwrap();
            let (publisher, n): (usize, usize) = (publisher.parse().unwrap(), n.parse().unwrap());
            let expected = next.entry(publisher).or_default();
            assert_eq!(
                n, *expected,
                "publisher {publisher}'s messages in order, none lost or doubled"
            );
            *expected += 1;
        }
    }
}

#[tokio::test]
async fn patterns_unsubscribing_and_closing_end_delivery() {
    let server = TestServer::start(3);
    let client = Client::connect(&server.address).await.unwrap();
    let mut subscriber = client.subscriber().await.unwrap();
    assert_eq!(subscriber.psubscribe(["orders:*"]).await.unwrap(), 1);
    assert_eq!(subscriber.subscribe(["orders:eu"]).await.unwrap(), 2);
    assert_eq!(client.publish("orders:eu", "a").await.unwrap(), 2);
    let mut got = vec![
        subscriber.next().await.unwrap(),
        subscriber.next().await.unwrap(),
    ];
    got.sort_by_key(|m| m.pattern.is_some());
    assert_eq!(
        got,
        vec![
            Message {
                channel: "orders:eu".into(),
                payload: "a".into(),
                pattern: None,
            },
            Message {
                channel: "orders:eu".into(),
                payload: "a".into(),
                pattern: Some("orders:*".into()),
            },
        ]
    );
    assert_eq!(
        subscriber.unsubscribe(Vec::<String>::new()).await.unwrap(),
        1
    );
    assert_eq!(client.publish("orders:eu", "b").await.unwrap(), 1);
    assert_eq!(subscriber.punsubscribe(["orders:*"]).await.unwrap(), 0);
    assert_eq!(client.publish("orders:eu", "c").await.unwrap(), 0);
    let pattern_message = subscriber.next().await.unwrap();
    assert_eq!(&pattern_message.payload[..], b"b");

    subscriber.subscribe(["gone"]).await.unwrap();
    assert_eq!(client.publish("gone", "x").await.unwrap(), 1);
    drop(subscriber);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while client.publish("gone", "x").await.unwrap() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "closing did not end the subscription"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_redis_client_subscribes_over_resp() {
    let server = TestServer::start(2);
    let url = format!("redis://127.0.0.1:{}/", server.resp_port.unwrap());
    let client = redis::Client::open(url).unwrap();
    let mut listening = client.get_connection().unwrap();
    let mut publishing = client.get_connection().unwrap();
    let mut pubsub = listening.as_pubsub();
    pubsub.subscribe("news").unwrap();
    pubsub.psubscribe("alerts:*").unwrap();
    let reached: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut publishing)
        .unwrap();
    assert_eq!(reached, 1);
    let message = pubsub.get_message().unwrap();
    assert_eq!(message.get_channel_name(), "news");
    assert_eq!(message.get_payload::<String>().unwrap(), "hello");
    let _: i64 = redis::cmd("PUBLISH")
        .arg("alerts:db")
        .arg("down")
        .query(&mut publishing)
        .unwrap();
    let message = pubsub.get_message().unwrap();
    assert_eq!(message.get_channel_name(), "alerts:db");
    assert_eq!(message.get_pattern::<String>().unwrap(), "alerts:*");
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query(&mut publishing)
        .unwrap();
    assert_eq!(channels, ["news"]);
}

#[tokio::test]
async fn keyspace_notifications_announce_every_change_from_every_shard() {
    let server = TestServer::start(4);
    let url = format!("redis://127.0.0.1:{}/", server.resp_port.unwrap());
    let mut resp = redis::Client::open(url).unwrap().get_connection().unwrap();
    let client = Client::connect(&server.address).await.unwrap();
    let mut subscriber = client.subscriber().await.unwrap();
    subscriber.psubscribe(["__keyevent@0__:*"]).await.unwrap();
    // Off by default: nothing is announced.
    client.call(support::command("SET quiet 1")).await.unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("E$gxlz")
        .query(&mut resp)
        .unwrap();
    const KEYS: usize = 40;
    for n in 0..KEYS {
        client
            .call(support::command(&format!("SET key:{n} v PX 300")))
            .await
            .unwrap();
        // A push onto a list: the class is on; SREM of nothing changes nothing.
        client
            .call(support::command(&format!("RPUSH list:{n} a")))
            .await
            .unwrap();
        client
            .call(support::command(&format!("SREM set:{n} absent")))
            .await
            .unwrap();
        // SET ... GET writes a new key (its reply is the missing old value); under NX on
        // a key that exists it writes nothing.
        let none: Option<String> = redis::cmd("SET")
            .arg(format!("fresh:{n}"))
            .arg("v")
            .arg("GET")
            .query(&mut resp)
            .unwrap();
        assert_eq!(none, None);
        let old: Option<String> = redis::cmd("SET")
            .arg(format!("key:{n}"))
            .arg("w")
            .arg("NX")
            .arg("GET")
            .query(&mut resp)
            .unwrap();
        assert_eq!(old.as_deref(), Some("v"));
        // A ZADD that moves a member answers 0 and is announced; one that changes
        // nothing is not.
        for zadd in ["ZADD z:{n} 1 a", "ZADD z:{n} XX 2 a", "ZADD z:{n} 2 a"] {
            client
                .call(support::command(&zadd.replace("{n}", &n.to_string())))
                .await
                .unwrap();
        }
    }
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.get("expired").map_or(0, Vec::len) < KEYS {
        let message = tokio::time::timeout_at(deadline, subscriber.next())
            .await
            .expect("every key's events arrive")
            .unwrap();
        let channel = String::from_utf8_lossy(&message.channel).into_owned();
        let event = channel.strip_prefix("__keyevent@0__:").unwrap().to_string();
        let key = String::from_utf8_lossy(&message.payload).into_owned();
        seen.entry(event).or_default().push(key);
    }
    let sorted = |event: &str, prefix: &str| {
        let mut keys: Vec<String> = seen.get(event).cloned().unwrap_or_default();
        keys.retain(|key| key.starts_with(&format!("{prefix}:")));
        keys.sort();
        let mut want: Vec<String> = (0..KEYS).map(|n| format!("{prefix}:{n}")).collect();
        want.sort();
        (keys, want)
    };
    let (got, want) = sorted("set", "key");
    assert_eq!(got, want, "one set event per SET that wrote");
    let (got, want) = sorted("set", "fresh");
    assert_eq!(got, want, "SET ... GET of a new key is announced");
    let zadds = seen.get("zadd").cloned().unwrap_or_default();
    for n in 0..KEYS {
        let key = format!("z:{n}");
        let count = zadds.iter().filter(|k| **k == key).count();
        assert_eq!(count, 2, "{key}: the add and the move, not the no-op");
    }
    let (got, want) = sorted("rpush", "list");
    assert_eq!(got, want, "one rpush event per RPUSH");
    let (got, want) = sorted("expired", "key");
    assert_eq!(got, want, "every key announced once as it expired");
    assert!(
        !seen.contains_key("srem"),
        "a write that changed nothing is silent"
    );
    assert!(
        !seen.values().flatten().any(|k| k == "quiet"),
        "nothing was announced before the flags were set"
    );
}
