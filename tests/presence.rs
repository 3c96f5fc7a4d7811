//! Presence end to end: heartbeats with TTL and grace, batch lookups across shards, leave.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use support::{TestServer, SHARD_COUNTS};

#[tokio::test]
async fn presence_expires_at_ttl_plus_grace_not_before() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let (ttl, grace) = (Duration::from_millis(600), Duration::from_millis(600));
        let users: Vec<String> = (0..200).map(|i| format!("user:{i}")).collect();
        for user in &users {
            let meta = Some(Bytes::from(format!("eu/{user}")));
            assert!(
                client
                    .presence_beat(user.clone(), ttl, grace, meta)
                    .await
                    .unwrap(),
                "came online"
            );
        }
        assert!(
            !client
                .presence_beat("user:0", ttl, grace, None)
                .await
                .unwrap(),
            "already online"
        );
        // Past the TTL, within the grace: still online (a quick reconnect would not flap).
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mut asked = users.clone();
        asked.push("never-seen".into());
        let rows = client.presence_get(asked.clone()).await.unwrap();
        assert_eq!(rows.len(), 201);
        assert!(rows[200].is_none(), "unknown users are None");
        for (user, row) in users.iter().zip(&rows) {
            let row = row.as_ref().unwrap();
            assert!(row.online, "{user} is within its grace");
            assert_eq!(
                row.meta.as_deref(),
                Some(format!("eu/{user}").as_bytes()),
                "metadata kept"
            );
        }
        // Past TTL + grace: offline, last seen still known.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let rows = client.presence_get(users.clone()).await.unwrap();
        for row in rows {
            let row = row.unwrap();
            assert!(!row.online);
            assert!(row.last_seen >= Duration::from_millis(1200));
        }
        assert!(
            client
                .presence_beat("user:1", ttl, grace, None)
                .await
                .unwrap(),
            "back online"
        );
        assert!(client.presence_leave("user:1").await.unwrap());
        let row = client
            .presence_get(["user:1"])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert!(!row.online, "a clean leave is offline at once");
    }
}

/// Collects changes until `want` have arrived or `limit` passes.
async fn collect(
    watch: &mut tessera_client::PresenceWatch,
    want: usize,
    limit: Duration,
) -> Vec<tessera_client::PresenceChange> {
    let mut changes = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while changes.len() < want {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(change)) => changes.push(change),
            Ok(None) | Err(_) => break,
        }
    }
    changes
}

async fn watched_users(client: &tessera_client::Client) -> i64 {
    let info = client.info().await.unwrap();
    info.get("totals")
        .and_then(|t| t.get("watched_users"))
        .and_then(|v| v.as_int())
        .expect("INFO reports watched users")
}

#[tokio::test]
async fn watches_push_each_change_once_in_order() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let users: Vec<String> = (0..30).map(|i| format!("watched:{i}")).collect();
        client
            .presence_beat("watched:0", Duration::from_secs(60), Duration::ZERO, None)
            .await
            .unwrap();
        let mut watch = client.presence_watcher().await.unwrap();
        let baseline = watch.watch(users.clone()).await.unwrap();
        assert!(baseline[0].as_ref().unwrap().online, "baseline says online");
        assert!(baseline[1].is_none(), "never seen");
        client.presence_leave("watched:0").await.unwrap();

        // Each user: online, offline by LEAVE, online again, offline when the TTL lapses.
        let ttl = Duration::from_millis(400);
        for user in &users {
            let meta = Some(Bytes::from(format!("meta:{user}")));
            client
                .presence_beat(user.clone(), ttl, Duration::ZERO, meta)
                .await
                .unwrap();
        }
        for user in &users {
            client.presence_leave(user.clone()).await.unwrap();
        }
        for user in &users {
            client
                .presence_beat(user.clone(), ttl, Duration::ZERO, None)
                .await
                .unwrap();
            // A heartbeat while online is not a change.
            client
                .presence_beat(user.clone(), ttl, Duration::ZERO, None)
                .await
                .unwrap();
        }
        let changes = collect(&mut watch, 1 + 4 * users.len(), Duration::from_secs(10)).await;
        let mut per_user: std::collections::HashMap<Bytes, Vec<bool>> = Default::default();
        for change in &changes {
            per_user
                .entry(change.user.clone())
                .or_default()
                .push(change.online);
            if change.online {
                assert_eq!(
                    change.meta.as_deref(),
                    Some(format!("meta:{}", String::from_utf8_lossy(&change.user)).as_bytes()),
                    "online pushes carry the heartbeat's metadata"
                );
            }
        }
        for user in &users {
            let mut expected = vec![true, false, true, false];
            if user == "watched:0" {
                expected.insert(0, false);
            }
            assert_eq!(
                per_user.get(user.as_bytes()),
                Some(&expected),
                "{user} at {shards} shards"
            );
        }
        // Nothing more: no change was pushed twice.
        let extra = collect(&mut watch, 1, Duration::from_millis(700)).await;
        assert!(extra.is_empty(), "unexpected pushes {extra:?}");
    }
}

#[tokio::test]
async fn unwatch_and_disconnect_stop_pushes() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let beat = |user: &'static str| {
            let client = client.clone();
            async move {
                client
                    .presence_beat(user, Duration::from_secs(60), Duration::ZERO, None)
                    .await
                    .unwrap()
            }
        };
        let mut watch = client.presence_watcher().await.unwrap();
        watch.watch(["a", "b", "c"]).await.unwrap();
        assert_eq!(watch.unwatch(["a", "nobody"]).await.unwrap(), 1);
        beat("a").await;
        beat("b").await;
        let changes = collect(&mut watch, 2, Duration::from_millis(800)).await;
        let users: Vec<&[u8]> = changes.iter().map(|c| &c.user[..]).collect();
        assert_eq!(users, vec![&b"b"[..]], "only the still-watched user");

        assert_eq!(watch.unwatch_all().await.unwrap(), 2);
        assert_eq!(watched_users(&client).await, 0);
        beat("c").await;
        assert!(collect(&mut watch, 1, Duration::from_millis(500))
            .await
            .is_empty());

        // Watchers that disconnect are forgotten by every owner shard.
        let many: Vec<String> = (0..40).map(|i| format!("gone:{i}")).collect();
        let mut leaving = client.presence_watcher().await.unwrap();
        leaving.watch(many.clone()).await.unwrap();
        assert_eq!(watched_users(&client).await, 40);
        drop(leaving);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while watched_users(&client).await != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "watches outlived their connection"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn every_watcher_hears_a_change_exactly_once() {
    let server = TestServer::start(3);
    let client = server.client().await;
    let mut watchers = Vec::new();
    for _ in 0..50 {
        let mut watch = client.presence_watcher().await.unwrap();
        watch.watch(["star"]).await.unwrap();
        watchers.push(watch);
    }
    // Heartbeats from many clients at once: one came-online change, not one per beat.
    let beats = (0..20).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .presence_beat("star", Duration::from_secs(60), Duration::ZERO, None)
                .await
                .unwrap()
        })
    });
    let came_online = futures_util::future::join_all(beats)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(came_online, 1);
    client.presence_leave("star").await.unwrap();
    for watch in &mut watchers {
        let changes = collect(watch, 2, Duration::from_secs(5)).await;
        let states: Vec<bool> = changes.iter().map(|c| c.online).collect();
        assert_eq!(states, vec![true, false]);
    }
    // Give any duplicate time to arrive, then look once more at every watcher.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for watch in &mut watchers {
        let extra = collect(watch, 1, Duration::from_millis(5)).await;
        assert!(extra.is_empty(), "pushed twice: {extra:?}");
    }
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_closed_and_others_carry_on() {
    use tessera_protocol::{
        encode_request, AdminCommand, Command, PresenceCommand, PROTOCOL_VERSION,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(&["--shards", "2", "--max-push-buffer-bytes", "65536"]);
    let users: Vec<Bytes> = (0..2_000)
        .map(|i| Bytes::from(format!("fan:{i}")))
        .collect();
    // A watcher with a tiny receive window that reads its two replies, then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut watcher = socket
        .connect(server.address.parse().unwrap())
        .await
        .unwrap();
    let mut request = bytes::BytesMut::new();
    let hello = Command::Admin(AdminCommand::Hello {
        version: PROTOCOL_VERSION,
        shard: None,
        auth: None,
    });
    encode_request(&mut request, 1, &hello);
    encode_request(
        &mut request,
        2,
        &Command::Presence(PresenceCommand::Watch(users.clone())),
    );
    watcher.write_all(&request).await.unwrap();
    let mut first = vec![0u8; 1024];
    assert!(watcher.read(&mut first).await.unwrap() > 0);

    let client = server.client().await;
    let watched = |client: tessera_client::Client| async move {
        let info = client.info().await.unwrap();
        info.get("totals")
            .and_then(|t| t.get("watched_users"))
            .and_then(|v| v.as_int())
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while watched(client.clone()).await < 2_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch never registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every round pushes two changes per user (~140 KB); socket buffers take some, the
    // server's limit the rest.
    let connection = client.connection(0).await.unwrap();
    let mut closed = false;
    for _ in 0..100 {
        let mut answers = Vec::with_capacity(users.len() * 2);
        for user in &users {
            answers.push(connection.start(Command::Presence(PresenceCommand::Beat {
                user: user.clone(),
                ttl_ms: 60_000,
                grace_ms: 0,
                meta: None,
            })));
            answers.push(connection.start(Command::Presence(PresenceCommand::Leave(user.clone()))));
        }
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        if watched(client.clone()).await == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "a watcher that never reads was never closed");
    // Everyone else is still served.
    assert!(client
        .presence_beat("after", Duration::from_secs(5), Duration::ZERO, None)
        .await
        .unwrap());
    // The closed watcher reads what was sent before the close, then end of stream.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), watcher.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "the server closed the socket"
    );
}

#[tokio::test]
async fn deleting_or_overwriting_a_watched_record_is_pushed_at_once() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let users = ["gone:del", "gone:set", "gone:mset", "gone:pexpire"];
        let long = Duration::from_secs(600);
        for user in users {
            client
                .presence_beat(user, long, Duration::ZERO, None)
                .await
                .unwrap();
        }
        let mut watch = client.presence_watcher().await.unwrap();
        watch.watch(users.map(String::from).to_vec()).await.unwrap();
        client.del(["gone:del"]).await.unwrap();
        client
            .set("gone:set", "not a presence record")
            .await
            .unwrap();
        client.mset([("gone:mset", "x")]).await.unwrap();
        client
            .expire("gone:pexpire", Duration::from_millis(200))
            .await
            .unwrap();
        // Each goes offline long before its 600 s TTL: three at once, the last when its
        // new deadline removes it.
        let changes = collect(&mut watch, 4, Duration::from_secs(3)).await;
        let mut offline: Vec<String> = changes
            .iter()
            .filter(|c| !c.online)
            .map(|c| String::from_utf8_lossy(&c.user).into_owned())
            .collect();
        offline.sort();
        assert_eq!(
            offline,
            ["gone:del", "gone:mset", "gone:pexpire", "gone:set"],
            "{shards} shards"
        );
    }
}
