//! Races between many real clients on one server: NX has exactly one winner, counters add up.

mod support;

use std::sync::Arc;
use tessera_protocol::KeyCommand;

use bytes::Bytes;
use support::{open_many, TestServer, SHARD_COUNTS};
use tessera_protocol::{Command, SetArgs, SetCondition, SetExpiry, Value};
use tokio::sync::Barrier;

const CLIENTS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_clients_racing_set_nx_have_one_winner() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let connections = open_many(&server.address, CLIENTS).await;
        for round in 0..3 {
            let key = Bytes::from(format!("race:{round}"));
            let start = Arc::new(Barrier::new(CLIENTS));
            let tasks: Vec<_> = connections
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, connection)| {
                    let (key, start) = (key.clone(), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        let reply = connection
                            .request(Command::Keys(KeyCommand::Set(SetArgs {
                                key,
                                value: Bytes::from(format!("client-{i}")),
                                condition: SetCondition::IfAbsent,
                                expiry: SetExpiry::In(60_000),
                                get: false,
                            })))
                            .await
                            .expect("no client sees an error");
                        (i, reply)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for task in tasks {
                let (i, reply) = task.await.unwrap();
                match reply {
                    Value::Ok => winners.push(i),
                    Value::Nil => {}
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            assert_eq!(
                winners.len(),
                1,
                "{shards} shards, round {round}: winners {winners:?}"
            );
            let stored = connections[0]
                .request(Command::Keys(KeyCommand::Get(key)))
                .await
                .unwrap();
            assert_eq!(
                stored,
                Value::Bytes(Bytes::from(format!("client-{}", winners[0])))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_are_never_lost() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let connections = open_many(&server.address, 100).await;
        let tasks: Vec<_> = connections
            .into_iter()
            .map(|connection| {
                tokio::spawn(async move {
                    let answers: Vec<_> = (0..50)
                        .map(|i| {
                            connection.start(Command::Keys(KeyCommand::IncrBy {
                                key: Bytes::from(format!("counter:{}", i % 5)),
                                delta: 1,
                            }))
                        })
                        .collect();
                    for answer in answers {
                        assert!(matches!(answer.await.unwrap().unwrap(), Value::Int(_)));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let client = server.client().await;
        let totals = client
            .mget((0..5).map(|i| format!("counter:{i}")))
            .await
            .unwrap();
        for total in totals {
            assert_eq!(total.as_deref(), Some(&b"1000"[..]));
        }
    }
}
