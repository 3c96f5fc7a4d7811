//! Timelines end to end: fan-out across shards, cursor paging under concurrent pushes,
//! merge-on-read across shards.

mod support;

use support::{TestServer, SHARD_COUNTS};
use tessera_client::ErrorCode;

#[tokio::test]
async fn fanout_to_ten_thousand_timelines_lands_everywhere_exactly_once() {
    let server = TestServer::start(3);
    let client = server.client().await;
    let followers: Vec<String> = (0..10_000).map(|i| format!("home:{i}")).collect();
    assert_eq!(
        client
            .tl_fanout(42, None, None, followers.clone())
            .await
            .unwrap(),
        10_000
    );
    assert_eq!(
        client
            .tl_fanout(42, None, None, followers.clone())
            .await
            .unwrap(),
        0,
        "duplicates are ignored"
    );
    assert_eq!(
        client
            .tl_fanout(43, None, None, followers.clone())
            .await
            .unwrap(),
        10_000
    );
    for follower in followers.iter().step_by(997) {
        let page = client
            .tl_range(follower.clone(), None, None, 10)
            .await
            .unwrap();
        assert_eq!(page.items, vec![(43, 43), (42, 42)], "{follower}");
    }
}

#[tokio::test]
async fn paging_while_new_items_arrive_sees_each_item_once_in_order() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        for id in 1..=95u64 {
            client.tl_push("home:7", id, None, None).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut arriving = 1000u64;
        loop {
            let page = client.tl_range("home:7", cursor, None, 10).await.unwrap();
            seen.extend(page.items.iter().map(|(id, _)| *id));
            client
                .tl_push("home:7", arriving, None, None)
                .await
                .unwrap();
            arriving += 1;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(
            seen,
            (1..=95u64).rev().collect::<Vec<_>>(),
            "{shards} shards"
        );
        let newer = client
            .tl_range(
                "home:7",
                None,
                Some(tessera_client::Cursor { score: 95, id: 95 }),
                3,
            )
            .await
            .unwrap();
        assert_eq!(
            newer.items.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![1002, 1001, 1000]
        );
        assert_eq!(
            client.tl_len("home:7").await.unwrap(),
            95 + seen.len().div_ceil(10) as u64
        );
    }
}

#[tokio::test]
async fn merge_reads_several_timelines_across_shards_as_one() {
    let server = TestServer::start(3);
    let client = server.client().await;
    for id in (0..60u64).step_by(2) {
        client.tl_push("home:1", id, None, None).await.unwrap();
    }
    for id in (1..60u64).step_by(3) {
        client.tl_push("celebrity:9", id, None, None).await.unwrap();
    }
    client.tl_push("celebrity:9", 4, None, None).await.unwrap();
    let mut expected: Vec<u64> = (0..60).filter(|i| i % 2 == 0 || i % 3 == 1).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    let mut merged = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .tl_merge(["home:1", "celebrity:9", "nobody"], cursor, 7)
            .await
            .unwrap();
        merged.extend(page.items.iter().map(|(id, _)| *id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        merged, expected,
        "the merged stream, each id once, newest first"
    );
    client.set("plain", "v").await.unwrap();
    let err = client.tl_push("plain", 1, None, None).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::WrongType));
    assert_eq!(
        client
            .tl_fanout(5, None, None, ["plain", "home:1"])
            .await
            .unwrap(),
        1,
        "fan-out skips it"
    );
    assert_eq!(
        client
            .tl_range("plain", None, None, 5)
            .await
            .unwrap_err()
            .server_code(),
        Some(ErrorCode::WrongType)
    );
}
