//! Lists and sets against real server processes at 1 and several shards: Redis's replies,
//! one slot for multi-key commands, a job queue drained by many concurrent workers (each
//! job taken exactly once), and both kinds back after `kill -9` and a restart.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use support::persist::{call, kill_9, start};
use support::{TestServer, SHARD_COUNTS};
use tessera_protocol::commands::{End, ListCommand as L, SetCommand as S};
use tessera_protocol::{ErrorCode, Value};

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn texts(items: Vec<Bytes>) -> Vec<String> {
    items
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

#[tokio::test]
async fn lists_and_sets_answer_as_redis_does_at_every_shard_count() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        assert_eq!(
            client
                .run(L::push("q", End::Right, ["a", "b", "c"]))
                .await
                .unwrap(),
            3
        );
        assert_eq!(client.run(L::push("q", End::Left, ["z"])).await.unwrap(), 4);
        assert_eq!(
            texts(client.run(L::lrange("q", 0, -1)).await.unwrap()),
            ["z", "a", "b", "c"]
        );
        assert_eq!(
            texts(client.run(L::pop("q", End::Right, 2)).await.unwrap()),
            ["c", "b"]
        );
        assert_eq!(client.run(L::llen("q")).await.unwrap(), 2);
        assert!(client
            .run(L::pop("nothing", End::Left, 5))
            .await
            .unwrap()
            .is_empty());

        assert_eq!(client.run(S::sadd("s", ["x", "y", "x"])).await.unwrap(), 2);
        assert!(client.run(S::sismember("s", "x")).await.unwrap());
        assert_eq!(client.run(S::scard("s")).await.unwrap(), 2);
        let mut members = texts(client.run(S::smembers("s")).await.unwrap());
        members.sort();
        assert_eq!(members, ["x", "y"]);

        // A kind mismatch is WRONGTYPE both ways.
        let refused = client.run(S::sadd("q", ["x"])).await.unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::WrongType),
            "{refused}"
        );
        let refused = client.run(L::llen("s")).await.unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::WrongType),
            "{refused}"
        );

        // Keys sharing a tag combine; keys in different slots are refused.
        client.run(S::sadd("{u}a", ["1", "2", "3"])).await.unwrap();
        client.run(S::sadd("{u}b", ["2", "3", "4"])).await.unwrap();
        let inter = client
            .call(support::command("SINTERSTORE {u}both {u}a {u}b"))
            .await
            .unwrap();
        assert_eq!(inter, Value::Int(2));
        let refused = client
            .call(support::command("SINTER a-set another-set"))
            .await
            .unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::CrossShard),
            "{refused}"
        );
        let refused = client
            .run(L::lmove("q", "elsewhere", End::Left, End::Left))
            .await
            .unwrap_err();
        assert_eq!(
            refused.server_code(),
            Some(ErrorCode::CrossShard),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn many_workers_take_each_job_exactly_once() {
    const JOBS: usize = 2_000;
    const WORKERS: usize = 16;
    let server = TestServer::start(4);
    let client = server.client().await;
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(200) {
        let jobs: Vec<String> = chunk.iter().map(|i| format!("job{i}")).collect();
        client
            .run(L::push("{jobs}pending", End::Left, jobs))
            .await
            .unwrap();
    }
    let address = Arc::new(server.address.clone());
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let address = address.clone();
        workers.push(tokio::spawn(async move {
            let client = tessera_client::Client::connect(&address).await.unwrap();
            let processing = format!("{{jobs}}processing:{worker}");
            let mut taken = Vec::new();
            // The reliable-queue pattern: move a job to this worker's list atomically,
            // then acknowledge it by removing it there.
            while let Some(job) = client
                .run(L::lmove(
                    "{jobs}pending",
                    processing.clone(),
                    End::Right,
                    End::Left,
                ))
                .await
                .unwrap()
            {
                let words = ["LREM", processing.as_str(), "1"];
                let mut words: Vec<Bytes> = words.iter().map(|w| b(w)).collect();
                words.push(job.clone());
                let removed = client
                    .call(tessera_protocol::Command::parse_words(&words).unwrap())
                    .await
                    .unwrap();
                assert_eq!(removed, Value::Int(1));
                taken.push(String::from_utf8_lossy(&job).into_owned());
            }
            taken
        }));
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
    assert_eq!(client.run(L::llen("{jobs}pending")).await.unwrap(), 0);
}

#[tokio::test]
async fn lists_and_sets_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    call(&client, &["RPUSH", "l", "1", "2", "3", "4"]).await;
    call(&client, &["LSET", "l", "0", "first"]).await;
    call(&client, &["SADD", "s", "a", "b", "c", "d", "e"]).await;
    let popped = call(&client, &["SPOP", "s", "2"]).await;
    drop(client);
    kill_9(server);

    let server = start(dir.path(), 3, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    assert_eq!(
        texts(client.run(L::lrange("l", 0, -1)).await.unwrap()),
        ["first", "2", "3", "4"]
    );
    let left: BTreeSet<Bytes> = client
        .run(S::smembers("s"))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(left.len(), 3);
    let Value::Array(popped) = popped else {
        panic!("SPOP with a count answers an array: {popped:?}")
    };
    for member in popped {
        let Value::Bytes(member) = member else {
            panic!("a member")
        };
        assert!(
            !left.contains(&member),
            "a popped member stays popped after replay"
        );
    }
}
