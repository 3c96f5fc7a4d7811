//! Sorted sets against a real server at 1 and several shards: a leaderboard, a delayed-job
//! queue drained by concurrent workers (every job popped exactly once), and WRONGTYPE.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use support::{TestServer, SHARD_COUNTS};
use tessera_protocol::commands::sorted_sets::add_flags;
use tessera_protocol::commands::SortedSetCommand as Z;
use tessera_protocol::ErrorCode;
use tokio::sync::Barrier;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test]
async fn a_leaderboard_ranks_and_pages() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let board = "lb:{game:1}";
        let players = (0..300).map(|i| ((i * 7 % 300) as f64, format!("p{i:03}")));
        assert_eq!(client.run(Z::zadd(board, players)).await.unwrap(), 300);
        assert_eq!(client.run(Z::zcard(board)).await.unwrap(), 300);
        let top = client.run(Z::zrange(board, 0, 2, true)).await.unwrap();
        assert_eq!(
            top.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            vec![299.0, 298.0, 297.0]
        );
        let best = &top[0].0;
        assert_eq!(
            client
                .run(Z::zrank(board, best.clone(), true))
                .await
                .unwrap(),
            Some(0)
        );
        assert_eq!(
            client
                .run(Z::zrank(board, best.clone(), false))
                .await
                .unwrap(),
            Some(299)
        );
        assert_eq!(
            client.run(Z::zincrby(board, 1000.0, "p000")).await.unwrap(),
            1000.0
        );
        assert_eq!(
            client.run(Z::zrank(board, "p000", true)).await.unwrap(),
            Some(0)
        );
        let page = client
            .run(Z::zrange_by_score(board, 10.0, 20.0, false, Some((2, 3))))
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            vec![12.0, 13.0, 14.0]
        );
        // GT never lowers a score; CH counts the change.
        let changed = client
            .run(Z::zadd_with(
                board,
                add_flags::GT | add_flags::CH,
                [(1.0, "p000"), (5000.0, "p001")],
            ))
            .await
            .unwrap();
        assert_eq!(changed, 1, "{shards} shards");
        assert_eq!(
            client.run(Z::zscore(board, "p000")).await.unwrap(),
            Some(1000.0)
        );
        assert_eq!(
            client
                .run(Z::zmscore(board, ["p001", "nobody"]))
                .await
                .unwrap(),
            vec![Some(5000.0), None]
        );
        assert_eq!(
            client
                .run(Z::zrem(board, ["p001", "nobody"]))
                .await
                .unwrap(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_pop_every_due_job_exactly_once() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let queue = "jobs:due";
        let jobs = 600;
        let added = client
            .run(Z::zadd(
                queue,
                (0..jobs).map(|i| (i as f64, format!("job:{i}"))),
            ))
            .await
            .unwrap();
        assert_eq!(added, jobs as u64);
        let workers = 30;
        let start = Arc::new(Barrier::new(workers));
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (client, start) = (client.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let mut mine = Vec::new();
                    loop {
                        let popped = client.run(Z::zpop(queue, 3, false)).await.unwrap();
                        if popped.is_empty() {
                            return mine;
                        }
                        mine.extend(popped);
                    }
                })
            })
            .collect();
        // The checker: the union of what the workers were acknowledged is every job, and
        // no job was handed to two workers.
        let mut seen = HashSet::new();
        for task in tasks {
            for (job, _) in task.await.unwrap() {
                assert!(seen.insert(job.clone()), "{job:?} popped twice");
            }
        }
        assert_eq!(seen.len(), jobs, "{shards} shards");
        assert_eq!(
            client.exists([queue]).await.unwrap(),
            0,
            "the key goes with its last member"
        );
    }
}

#[tokio::test]
async fn kinds_do_not_mix_and_bad_scores_are_refused() {
    let server = TestServer::start(2);
    let client = server.client().await;
    client.set("plain", "v").await.unwrap();
    let refused = client
        .run(Z::zadd("plain", [(1.0, "m")]))
        .await
        .unwrap_err();
    assert_eq!(refused.server_code(), Some(ErrorCode::WrongType));
    client
        .run(Z::zadd("z", [(f64::INFINITY, "top")]))
        .await
        .unwrap();
    let nan = client
        .run(Z::zincrby("z", f64::NEG_INFINITY, "top"))
        .await
        .unwrap_err();
    assert_eq!(nan.server_code(), Some(ErrorCode::NotFloat));
    let unsent = client
        .run(Z::zadd("z", [(f64::NAN, "m")]))
        .await
        .unwrap_err();
    assert!(
        matches!(unsent, tessera_client::Error::InvalidArgument(_)),
        "{unsent}"
    );
    assert_eq!(
        client.run(Z::zscore("z", "top")).await.unwrap(),
        Some(f64::INFINITY)
    );
    assert_eq!(
        client.run(Z::zrange("z", 0, -1, false)).await.unwrap(),
        vec![(b("top"), f64::INFINITY)]
    );
}

#[tokio::test]
async fn a_range_past_the_reply_limit_is_refused_before_it_is_built() {
    let server =
        support::TestServer::start_with(&["--shards", "1", "--max-output-buffer-bytes", "65536"]);
    let client = server.client().await;
    let mut words: Vec<bytes::Bytes> = vec!["ZADD".into(), "big".into()];
    for i in 0..20_000 {
        words.push(i.to_string().into());
        words.push(format!("member:{i:08}").into());
    }
    client
        .call(tessera_client::Command::parse_words(&words).unwrap())
        .await
        .unwrap();
    for line in ["ZRANGE big 0 -1", "ZRANGE big 0 -1 WITHSCORES"] {
        let words: Vec<bytes::Bytes> = line
            .split(' ')
            .map(|w| bytes::Bytes::from(w.to_string()))
            .collect();
        let refused = client
            .call(tessera_client::Command::parse_words(&words).unwrap())
            .await
            .expect_err("refused");
        assert_eq!(
            refused.server_code(),
            Some(tessera_client::ErrorCode::ReplyTooLarge),
            "{line}"
        );
    }
    let words: Vec<bytes::Bytes> = "ZRANGE big 0 9"
        .split(' ')
        .map(|w| bytes::Bytes::from(w.to_string()))
        .collect();
    let ten = client
        .call(tessera_client::Command::parse_words(&words).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(ten, tessera_client::Reply::Array(ref m) if m.len() == 10),
        "{ten:?}"
    );
}
