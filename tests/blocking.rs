//! Blocking pops against real server processes: waiters served in the order they came by
//! pushes from other connections and shards, timeouts, a job queue drained by many
//! blocked workers (each job taken exactly once, none left behind), a closed waiter that
//! takes nothing, and served pops back after `kill -9`.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::persist::{call, kill_9, start};
use support::{command, TestServer};
use tessera_protocol::Value;

fn bytes(text: &str) -> Value {
    Value::Bytes(bytes::Bytes::copy_from_slice(text.as_bytes()))
}

fn pair(key: &str, element: &str) -> Value {
    Value::Array(vec![bytes(key), bytes(element)])
}

#[tokio::test]
async fn waiters_are_served_first_come_first_served_by_pushes_from_anywhere() {
    let server = TestServer::start(4);
    let mut waiters = Vec::new();
    for n in 0..3 {
        let client = server.client().await;
        waiters.push(tokio::spawn(async move {
            client.call(command("BLPOP {q}a {q}b 10")).await.unwrap()
        }));
        // Each waits before the next begins, so the order they came is known.
        let counted = server.client().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while blocked_clients(&counted).await < n + 1 {
            assert!(Instant::now() < deadline, "waiter {n} never blocked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let pusher = server.client().await;
    assert_eq!(
        pusher
            .call(command("RPUSH {q}b one two three"))
            .await
            .unwrap(),
        Value::Int(3),
        "the push answers the length before anyone is served"
    );
    let mut served = Vec::new();
    for waiter in waiters {
        served.push(waiter.await.unwrap());
    }
    assert_eq!(
        served,
        vec![
            pair("{q}b", "one"),
            pair("{q}b", "two"),
            pair("{q}b", "three")
        ]
    );
    assert_eq!(
        pusher.call(command("EXISTS {q}b")).await.unwrap(),
        Value::Int(0)
    );

    // A timeout answers nil, and leaves no waiter behind.
    let started = Instant::now();
    assert_eq!(
        pusher.call(command("BRPOP {q}a 0.2")).await.unwrap(),
        Value::Nil
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(blocked_clients(&pusher).await, 0);
}

async fn blocked_clients(client: &tessera_client::Client) -> usize {
    let info = client.call(command("INFO")).await.unwrap();
    let Value::Map(sections) = info else {
        panic!("INFO answers a map");
    };
    for (name, section) in sections {
        if name == Value::text("totals") {
            let Value::Map(fields) = section else {
                continue;
            };
            for (field, value) in fields {
                if field == Value::text("blocked_clients") {
                    let Value::Int(n) = value else {
                        panic!("a count")
                    };
                    return n as usize;
                }
            }
        }
    }
    panic!("INFO has no blocked_clients");
}

#[tokio::test]
async fn blocked_workers_take_each_job_exactly_once() {
    const JOBS: usize = 1_000;
    const WORKERS: usize = 16;
    let server = TestServer::start(4);
    let address = Arc::new(server.address.clone());
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let address = address.clone();
        workers.push(tokio::spawn(async move {
            let client = tessera_client::Client::connect(&address).await.unwrap();
            let mut taken = Vec::new();
            loop {
                // A short timeout ends the worker once the queue stays empty.
                match client
                    .call(command("BLMOVE {jobs}pending {jobs}done RIGHT LEFT 0.5"))
                    .await
                    .unwrap()
                {
                    Value::Bytes(job) => taken.push(String::from_utf8_lossy(&job).into_owned()),
                    Value::Nil => return taken,
                    other => panic!("BLMOVE answered {other:?}"),
                }
            }
        }));
    }
    let producer = server.client().await;
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(50) {
        let mut line = String::from("LPUSH {jobs}pending");
        for job in chunk {
            line.push_str(&format!(" job{job}"));
        }
        producer.call(command(&line)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for worker in workers {
        let taken = worker.await.unwrap();
        total += taken.len();
        seen.extend(taken);
    }
    assert_eq!(total, JOBS, "no job was taken twice");
    assert_eq!(seen.len(), JOBS, "every job was taken");
    assert_eq!(
        producer.call(command("LLEN {jobs}done")).await.unwrap(),
        Value::Int(JOBS as i64)
    );
}

#[tokio::test]
async fn a_closed_waiter_takes_nothing() {
    let server = TestServer::start(2);
    let waiter = server.client().await;
    let waiting = tokio::spawn(async move {
        let _ = waiter.call(command("BLPOP gone 0")).await;
    });
    let other = server.client().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(&other).await == 0 {
        assert!(Instant::now() < deadline, "the waiter never blocked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Dropping the task drops its client, which closes its connection.
    waiting.abort();
    let _ = waiting.await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(&other).await > 0 {
        assert!(Instant::now() < deadline, "closing did not end the wait");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    other.call(command("RPUSH gone kept")).await.unwrap();
    assert_eq!(
        other.call(command("LRANGE gone 0 -1")).await.unwrap(),
        Value::Array(vec![bytes("kept")])
    );
}

#[tokio::test]
async fn served_pops_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "always");
    let waiter = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        waiter
            .call(command("BLMOVE {w}in {w}out LEFT RIGHT 10"))
            .await
    });
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(&client).await == 0 {
        assert!(Instant::now() < deadline, "the waiter never blocked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call(&client, &["RPUSH", "{w}in", "a", "b"]).await;
    assert_eq!(waiting.await.unwrap().unwrap(), bytes("a"));
    drop(client);
    kill_9(server);

    let server = start(dir.path(), 3, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    assert_eq!(
        call(&client, &["LRANGE", "{w}in", "0", "-1"]).await,
        Value::Array(vec![bytes("b")])
    );
    assert_eq!(
        call(&client, &["LRANGE", "{w}out", "0", "-1"]).await,
        Value::Array(vec![bytes("a")])
    );
}
