//! Transactions against real server processes: TX on the native port (one slot, replies in
//! order, all-or-nothing after `kill -9`, each command's own ACL rule), and Redis's
//! WATCH/MULTI/EXEC from a real Redis client, where many clients' optimistic increments
//! of one counter lose none: the counter ends at the number of EXECs acknowledged.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use support::persist::{call, kill_9, start};
use support::{command, TestServer, SHARD_COUNTS};
use tessera_protocol::{ErrorCode, Value};

fn bytes(text: &str) -> Value {
    Value::Bytes(bytes::Bytes::copy_from_slice(text.as_bytes()))
}

#[tokio::test]
async fn tx_runs_commands_of_one_slot_in_order_at_every_shard_count() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let replies = client
            .call(command(
                "TX SET {cart}total 10 ; INCRBY {cart}total 5 ; GET {cart}total ; LPUSH {cart}items a ; PING",
            ))
            .await
            .unwrap();
        assert_eq!(
            replies,
            Value::Array(vec![
                Value::Ok,
                Value::Int(15),
                bytes("15"),
                Value::Int(1),
                Value::text("PONG"),
            ])
        );
        // An error inside does not stop the rest, as in Redis.
        let replies = client
            .call(command("TX LPUSH {cart}total x ; INCRBY {cart}total 1"))
            .await
            .unwrap();
        let Value::Array(replies) = replies else {
            panic!("TX answers an array");
        };
        assert!(
            matches!(&replies[0], Value::Error(e) if e.known_code() == Some(ErrorCode::WrongType))
        );
        assert_eq!(replies[1], Value::Int(16));
        let refused = client
            .call(command("TX SET a 1 ; SET b 2"))
            .await
            .unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::CrossShard),
            "{refused}"
        );
        assert_eq!(
            client.call(command("EXISTS a")).await.unwrap(),
            Value::Int(0)
        );
    }
}

#[tokio::test]
async fn a_tx_is_logged_as_one_record_and_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    call(&client, &["SADD", "{o}stock", "a", "b", "c"]).await;
    let taken = call(
        &client,
        &[
            "TX", "SPOP", "{o}stock", ";", "INCRBY", "{o}sold", "1", ";", "SET", "{o}state", "paid",
        ],
    )
    .await;
    let Value::Array(taken) = taken else {
        panic!("TX answers an array: {taken:?}");
    };
    drop(client);
    kill_9(server);

    let server = start(dir.path(), 3, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    assert_eq!(call(&client, &["GET", "{o}sold"]).await, bytes("1"));
    assert_eq!(call(&client, &["GET", "{o}state"]).await, bytes("paid"));
    assert_eq!(call(&client, &["SCARD", "{o}stock"]).await, Value::Int(2));
    // The member SPOP took inside the transaction is the one gone after the replay.
    assert_eq!(
        call(
            &client,
            &[
                "SISMEMBER",
                "{o}stock",
                &String::from_utf8_lossy(match &taken[0] {
                    Value::Bytes(member) => member,
                    other => panic!("SPOP answers a member: {other:?}"),
                })
            ]
        )
        .await,
        Value::Int(0)
    );
}

#[tokio::test]
async fn a_tx_may_do_only_what_each_of_its_commands_may() {
    let server = TestServer::start_with(&[
        "--shards",
        "2",
        "--requirepass",
        "admin-pw",
        "--user",
        "reader on >pw allkeys +@all -set",
    ]);
    let as_user = |user: &str, password: &str| tessera_client::ClientConfig {
        username: Some(user.into()),
        password: Some(password.into()),
        ..tessera_client::ClientConfig::default()
    };
    let reader = tessera_client::Client::connect_with(&server.address, as_user("reader", "pw"))
        .await
        .unwrap();
    let refused = reader
        .call(command("TX GET {u}a ; SET {u}a 1"))
        .await
        .unwrap_err();
    assert_eq!(refused.server_code(), Some(ErrorCode::NoPerm), "{refused}");
    let admin =
        tessera_client::Client::connect_with(&server.address, as_user("default", "admin-pw"))
            .await
            .unwrap();
    assert_eq!(
        admin.call(command("EXISTS {u}a")).await.unwrap(),
        Value::Int(0)
    );
    assert!(reader
        .call(command("TX GET {u}a ; INCRBY {u}a 1"))
        .await
        .is_ok());
}

#[test]
fn watched_increments_from_many_redis_clients_lose_nothing() {
    const CLIENTS: usize = 12;
    const INCREMENTS: usize = 40;
    let server = TestServer::start(4);
    let url = format!("redis://127.0.0.1:{}/", server.resp_port.unwrap());
    let aborted = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, aborted) = (url.clone(), aborted.clone());
            std::thread::spawn(move || {
                let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut acknowledged = 0;
                while acknowledged < INCREMENTS {
                    // Read, then write only if nobody wrote since: Redis's optimistic lock.
                    let () = redis::cmd("WATCH")
                        .arg("{c}counter")
                        .query(&mut redis)
                        .unwrap();
                    let now: Option<i64> = redis::cmd("GET")
                        .arg("{c}counter")
                        .query(&mut redis)
                        .unwrap();
                    let next = now.unwrap_or(0) + 1;
                    let done: Option<Vec<redis::Value>> = redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg("{c}counter")
                        .arg(next)
                        .cmd("INCR")
                        .arg("{c}writes")
                        .query(&mut redis)
                        .unwrap();
                    match done {
                        Some(_) => acknowledged += 1,
                        None => {
                            aborted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
    let counter: i64 = redis::cmd("GET")
        .arg("{c}counter")
        .query(&mut redis)
        .unwrap();
    let writes: i64 = redis::cmd("GET")
        .arg("{c}writes")
        .query(&mut redis)
        .unwrap();
    assert_eq!(acknowledged, CLIENTS * INCREMENTS);
    assert_eq!(
        counter as usize, acknowledged,
        "no acknowledged increment was lost"
    );
    assert_eq!(
        writes as usize, acknowledged,
        "each EXEC ran whole or not at all"
    );
    assert!(
        aborted.load(Ordering::Relaxed) > 0,
        "with {CLIENTS} clients racing, some EXEC must have found its key changed"
    );
}

#[tokio::test]
async fn multi_refuses_keys_of_several_slots_and_exec_then_aborts() {
    let server = TestServer::start(2);
    let mut redis =
        redis::Client::open(format!("redis://127.0.0.1:{}/", server.resp_port.unwrap()))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
    let _: () = redis::cmd("MULTI").query_async(&mut redis).await.unwrap();
    let queued: String = redis::cmd("SET")
        .arg("{a}x")
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(queued, "QUEUED");
    let refused = redis::cmd("SET")
        .arg("{b}y")
        .arg(1)
        .query_async::<String>(&mut redis)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused}");
    let aborted = redis::cmd("EXEC")
        .query_async::<redis::Value>(&mut redis)
        .await
        .unwrap_err();
    assert_eq!(aborted.code(), Some("EXECABORT"), "{aborted}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg("{a}x")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn a_write_after_watch_answered_always_aborts_the_transaction() {
    let server = TestServer::start(4);
    let url = format!("redis://127.0.0.1:{}/", server.resp_port.unwrap());
    for round in 0..40 {
        // Fresh connections each round, so the two land on many pairs of shards.
        let mut watcher = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut writer = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let () = redis::cmd("WATCH")
            .arg("{w}key")
            .query(&mut watcher)
            .unwrap();
        let () = redis::cmd("SET")
            .arg("{w}key")
            .arg(round)
            .query(&mut writer)
            .unwrap();
        let ran: Option<Vec<redis::Value>> = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg("{w}key")
            .query(&mut watcher)
            .unwrap();
        assert_eq!(
            ran, None,
            "round {round}: the SET after WATCH's OK aborts EXEC"
        );
    }
}
