//! The string commands against real server processes: in-place edits, partial reads,
//! GETEX and absolute expiry at every shard count, MSETNX raced by many clients (one
//! winner per key set, and what it wrote is what is stored), and every edit back after
//! `kill -9` and a restart at another shard count.

mod support;

use std::sync::Arc;

use support::persist::{call, kill_9, start};
use support::{command, TestServer, SHARD_COUNTS};
use tessera_protocol::{ErrorCode, Value};

fn bytes(text: &str) -> Value {
    Value::Bytes(bytes::Bytes::copy_from_slice(text.as_bytes()))
}

#[tokio::test]
async fn string_edits_answer_as_redis_does_at_every_shard_count() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let run = |line: &'static str| {
            let client = &client;
            async move { client.call(command(line)).await }
        };
        assert_eq!(run("APPEND greeting hello").await.unwrap(), Value::Int(5));
        assert_eq!(run("APPEND greeting _world").await.unwrap(), Value::Int(11));
        assert_eq!(run("STRLEN greeting").await.unwrap(), Value::Int(11));
        assert_eq!(
            run("GETRANGE greeting -5 -1").await.unwrap(),
            bytes("world")
        );
        assert_eq!(run("SETRANGE greeting 0 J").await.unwrap(), Value::Int(11));
        assert_eq!(run("GET greeting").await.unwrap(), bytes("Jello_world"));
        assert_eq!(run("INCRBYFLOAT price 10.5").await.unwrap(), bytes("10.5"));
        assert_eq!(run("INCRBYFLOAT price 0.1").await.unwrap(), bytes("10.6"));
        assert_eq!(run("SETBIT flags 9 1").await.unwrap(), Value::Int(0));
        assert_eq!(run("GETBIT flags 9").await.unwrap(), Value::Int(1));
        assert_eq!(run("STRLEN flags").await.unwrap(), Value::Int(2));

        assert_eq!(
            run("GETEX greeting EX 100").await.unwrap(),
            bytes("Jello_world")
        );
        let ttl = run("TTL greeting").await.unwrap();
        assert!(matches!(ttl, Value::Int(99..=100)), "{ttl:?}");
        // GT against a later expiry fails; LT succeeds and the new deadline reads back.
        assert_eq!(run("EXPIRE greeting 200 LT").await.unwrap(), Value::Int(0));
        assert_eq!(
            run("EXPIREAT greeting 4102444800 GT").await.unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            run("EXPIRETIME greeting").await.unwrap(),
            Value::Int(4102444800)
        );
        assert_eq!(run("GETDEL greeting").await.unwrap(), bytes("Jello_world"));
        assert_eq!(run("EXISTS greeting").await.unwrap(), Value::Int(0));

        client.call(command("RPUSH {l}q x")).await.unwrap();
        let refused = run("APPEND {l}q x").await.unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::WrongType),
            "{refused}"
        );
        let refused = run("MSETNX one 1 two 2").await.unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::CrossShard),
            "{refused}"
        );
        let refused = run("SETRANGE big 2000000000 x").await.unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::ValueTooLarge),
            "{refused}"
        );
        assert_eq!(run("EXISTS big").await.unwrap(), Value::Int(0));
    }
}

#[tokio::test]
async fn msetnx_raced_by_many_clients_has_one_winner_per_key_set() {
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 50;
    let server = TestServer::start(4);
    let address = Arc::new(server.address.clone());
    let mut racers = Vec::new();
    for racer in 0..CLIENTS {
        let address = address.clone();
        racers.push(tokio::spawn(async move {
            let client = tessera_client::Client::connect(&address).await.unwrap();
            let mut won = Vec::new();
            for round in 0..ROUNDS {
                let line = format!(
                    "MSETNX {{r{round}}}a {racer} {{r{round}}}b {racer} {{r{round}}}c {racer}"
                );
                if client.call(command(&line)).await.unwrap() == Value::Int(1) {
                    won.push(round);
                }
            }
            (racer, won)
        }));
    }
    let mut winner_of = vec![None; ROUNDS];
    for racer in racers {
        let (racer, won) = racer.await.unwrap();
        for round in won {
            assert!(winner_of[round].is_none(), "round {round} had two winners");
            winner_of[round] = Some(racer);
        }
    }
    let client = server.client().await;
    for (round, winner) in winner_of.into_iter().enumerate() {
        let winner = winner.unwrap_or_else(|| panic!("round {round} had no winner"));
        let line = format!("MGET {{r{round}}}a {{r{round}}}b {{r{round}}}c");
        let stored = client.call(command(&line)).await.unwrap();
        let expected = bytes(&winner.to_string());
        assert_eq!(
            stored,
            Value::Array(vec![expected.clone(), expected.clone(), expected]),
            "round {round}: the acknowledged winner's values are the stored ones"
        );
    }
}

#[tokio::test]
async fn string_edits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    call(&client, &["SET", "doc", "hello"]).await;
    call(&client, &["APPEND", "doc", " world"]).await;
    call(&client, &["SETRANGE", "doc", "0", "J"]).await;
    call(&client, &["INCRBYFLOAT", "total", "2.25"]).await;
    call(&client, &["INCRBYFLOAT", "total", "0.5"]).await;
    call(&client, &["SETBIT", "bits", "3", "1"]).await;
    call(&client, &["SET", "session", "s"]).await;
    call(&client, &["EXPIREAT", "session", "4102444800"]).await;
    call(&client, &["SET", "gone", "g"]).await;
    call(&client, &["GETEX", "gone", "PXAT", "1"]).await;
    call(&client, &["SET", "{m}a", "1"]).await;
    call(&client, &["MSETNX", "{m}a", "2", "{m}b", "2"]).await;
    drop(client);
    kill_9(server);

    let server = start(dir.path(), 3, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    assert_eq!(call(&client, &["GET", "doc"]).await, bytes("Jello world"));
    assert_eq!(call(&client, &["GET", "total"]).await, bytes("2.75"));
    assert_eq!(call(&client, &["GETBIT", "bits", "3"]).await, Value::Int(1));
    assert_eq!(
        call(&client, &["EXPIRETIME", "session"]).await,
        Value::Int(4102444800)
    );
    assert_eq!(call(&client, &["EXISTS", "gone"]).await, Value::Int(0));
    assert_eq!(call(&client, &["EXISTS", "{m}b"]).await, Value::Int(0));
    assert_eq!(call(&client, &["GET", "{m}a"]).await, bytes("1"));
}
