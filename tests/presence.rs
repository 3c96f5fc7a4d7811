//! Presence end to end: heartbeats with TTL and grace, batch lookups across shards, leave.

mod support;

use std::time::Duration;

use bytes::Bytes;
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
