//! Rate limits end to end: exact under concurrency within a window, tiers all-or-nothing,
//! GCRA pacing, and what a client needs for its 429 headers.

mod support;

use std::time::Duration;

use support::{TestServer, SHARD_COUNTS};
use tessera_client::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_allow_exactly_the_limit_within_a_window() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        // The server's clock starts with the server, so the whole test is inside the first
        // one-minute bucket and the limit is exact.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .rate_limit("api:tenant-7")
                        .limit(50, Duration::from_secs(60))
                        .check()
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            let decision = task.await.unwrap();
            if decision.allowed {
                allowed += 1;
                assert_eq!(decision.retry_after, Some(Duration::ZERO));
            } else {
                assert_eq!(decision.remaining, 0);
                assert!(decision.retry_after.unwrap() > Duration::ZERO);
            }
        }
        assert_eq!(allowed, 50, "{shards} shards");
        let peek = client
            .rate_limit("api:tenant-7")
            .limit(50, Duration::from_secs(60))
            .peek()
            .await
            .unwrap();
        assert!(!peek.allowed);
        assert!(peek.reset_after > Duration::from_secs(60));
        assert!(client.rate_limit_reset("api:tenant-7").await.unwrap());
        let fresh = client
            .rate_limit("api:tenant-7")
            .limit(50, Duration::from_secs(60))
            .check()
            .await
            .unwrap();
        assert_eq!((fresh.allowed, fresh.remaining), (true, 49));
    }
}

#[tokio::test]
async fn tiers_are_checked_together_and_gcra_paces() {
    let server = TestServer::start(2);
    let client = server.client().await;
    let check = || {
        client
            .rate_limit("user:9")
            .limit(2, Duration::from_secs(1))
            .limit(3, Duration::from_secs(3600))
            .check()
    };
    assert!(check().await.unwrap().allowed);
    assert!(check().await.unwrap().allowed);
    let per_second = check().await.unwrap();
    assert!(!per_second.allowed);
    // Sliding window: the full previous second must slide half out before one more fits.
    let wait = per_second.retry_after.unwrap();
    assert!(wait <= Duration::from_millis(1500), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert!(
        check().await.unwrap().allowed,
        "allowed once retry_after has passed"
    );
    let hourly = check().await.unwrap();
    assert!(!hourly.allowed, "the hour tier is spent");
    assert!(hourly.retry_after.unwrap() > Duration::from_secs(60));

    // One per 10 s with a burst of two: slow enough that a loaded machine cannot refill
    // the bucket between the calls.
    let gcra = || {
        client
            .rate_limit("pacer")
            .limit(6, Duration::from_secs(60))
            .gcra(2)
            .check()
    };
    assert!(gcra().await.unwrap().allowed);
    assert!(gcra().await.unwrap().allowed);
    let paced = gcra().await.unwrap();
    assert!(!paced.allowed, "the burst of two is used up");
    let wait = paced.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
        "{wait:?}"
    );
    let never = client
        .rate_limit("pacer")
        .limit(6, Duration::from_secs(60))
        .gcra(2)
        .cost(3)
        .peek()
        .await
        .unwrap();
    assert_eq!(never.retry_after, None, "a cost above the burst never fits");

    client.set("plain", "v").await.unwrap();
    for (key, limit, code) in [
        ("plain", 1, ErrorCode::WrongType),
        ("bad", 0, ErrorCode::Syntax),
    ] {
        let refused = client
            .rate_limit(key)
            .limit(limit, Duration::from_secs(1))
            .check()
            .await;
        assert_eq!(refused.unwrap_err().server_code(), Some(code), "{key}");
    }
}

#[tokio::test]
async fn every_shard_count_agrees_on_a_fresh_key() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let check = || {
            client
                .rate_limit("k")
                .limit(3, Duration::from_secs(10))
                .cost(2)
                .check()
        };
        let first = check().await.unwrap();
        assert_eq!((first.allowed, first.remaining), (true, 1));
        assert!(!check().await.unwrap().allowed);
    }
}

#[tokio::test]
async fn limiter_falls_back_while_the_server_is_down_and_returns_to_it() {
    use tessera_client::{BreakerConfig, Fallback, RateLimiter, Source};
    let mut server = TestServer::start(2);
    let port = server.port.to_string();
    let client = server.client().await;
    let config = BreakerConfig {
        failures_to_open: 2,
        probe_interval: Duration::from_millis(300),
        call_timeout: Duration::from_millis(250),
    };
    let local = RateLimiter::new(client.clone(), Fallback::Local, config);
    let open = RateLimiter::new(client.clone(), Fallback::FailOpen, config);
    let closed = RateLimiter::new(client.clone(), Fallback::FailClosed, config);
    let tiers = [(3, Duration::from_secs(60))];
    let first = local.check("user:1", &tiers, 1).await.unwrap();
    assert_eq!(
        (first.source, first.decision.allowed),
        (Source::Server, true)
    );

    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5));
    // Link failures are answered by the fallback; two of them open the breaker.
    let mut allowed_locally = 0;
    for _ in 0..6 {
        let verdict = local.check("user:1", &tiers, 1).await.unwrap();
        assert_eq!(verdict.source, Source::Fallback);
        allowed_locally += u32::from(verdict.decision.allowed);
    }
    assert!(local.is_open(), "consecutive failures opened the breaker");
    assert_eq!(
        allowed_locally, 3,
        "the local limiter enforces the same limit"
    );
    assert!(
        open.check("user:1", &tiers, 1)
            .await
            .unwrap()
            .decision
            .allowed,
        "fail open"
    );
    assert!(
        !closed
            .check("user:1", &tiers, 1)
            .await
            .unwrap()
            .decision
            .allowed,
        "fail closed"
    );

    let _restarted = TestServer::start_with(&["--port", &port, "--shards", "2"]);
    let mut back = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let verdict = local.check("user:2", &tiers, 1).await.unwrap();
        if verdict.source == Source::Server {
            back = Some(verdict);
            break;
        }
    }
    let back = back.expect("a probe reached the restarted server");
    assert!(back.decision.allowed);
    assert!(!local.is_open(), "a successful probe closes the breaker");
}
