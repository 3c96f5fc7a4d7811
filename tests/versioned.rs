//! Versioned values under concurrent writers: compare-and-set has one winner per version.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{TestServer, SHARD_COUNTS};
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_writers_get_exactly_one_winner_per_version() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        assert_eq!(
            client
                .vset("spot:17", "free", Some(0), None)
                .await
                .unwrap()
                .version,
            1
        );
        for round in 0..5u64 {
            let version = 1 + round;
            let start = Arc::new(Barrier::new(100));
            let writers: Vec<_> = (0..100)
                .map(|writer| {
                    let (client, start) = (client.clone(), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        let claim = format!("held-by-{writer}");
                        let outcome = client
                            .vset("spot:17", claim, Some(version), None)
                            .await
                            .unwrap();
                        (writer, outcome)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for writer in writers {
                let (id, outcome) = writer.await.unwrap();
                if outcome.written {
                    assert_eq!(outcome.version, version + 1);
                    winners.push(id);
                } else {
                    assert_eq!(
                        outcome.version,
                        version + 1,
                        "losers learn the winner's version"
                    );
                }
            }
            assert_eq!(winners.len(), 1, "{shards} shards, version {version}");
            let (value, current) = client.vget("spot:17").await.unwrap().unwrap();
            assert_eq!(current, version + 1);
            assert_eq!(value, format!("held-by-{}", winners[0]));
        }
    }
}

#[tokio::test]
async fn a_trip_moves_through_its_states_once() {
    let server = TestServer::start(2);
    let client = server.client().await;
    let states = [
        "requested",
        "matching",
        "assigned",
        "picked_up",
        "completed",
    ];
    let mut version = 0;
    for state in states {
        let cas = client
            .vset(
                "trip:5",
                state,
                Some(version),
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        assert!(cas.written, "{state}");
        version = cas.version;
    }
    let replay = client
        .vset("trip:5", "matching", Some(2), None)
        .await
        .unwrap();
    assert!(!replay.written, "a stale transition is refused");
    assert_eq!(client.vget("trip:5").await.unwrap().unwrap().0, "completed");
    assert_eq!(client.vget("trip:unknown").await.unwrap(), None);
}
