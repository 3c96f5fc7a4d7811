//! The RESP port with a real Redis client (the `redis` crate) and raw sockets: Redis's
//! replies and error texts, replies in request order across shards, RESP3, AUTH.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::TestServer;

fn resp_url(server: &TestServer, resp3: bool) -> String {
    let port = server.resp_port.expect("RESP is on");
    let protocol = if resp3 { "?protocol=resp3" } else { "" };
    format!("redis://127.0.0.1:{port}/{protocol}")
}

async fn connect(server: &TestServer, resp3: bool) -> redis::aio::MultiplexedConnection {
    redis::Client::open(resp_url(server, resp3))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Runs `command` on `redis`; a failure fails the test.
async fn ask<T: redis::FromRedisValue>(
    redis: &mut redis::aio::MultiplexedConnection,
    command: &redis::Cmd,
) -> T {
    command.query_async(redis).await.unwrap()
}

/// Sends raw bytes and reads what comes back within a short wait.
fn raw(server: &TestServer, request: &[u8]) -> String {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", server.resp_port.unwrap())).unwrap();
    stream.write_all(request).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_key_value_core_answers_as_redis_does() {
    let server = TestServer::start(4);
    let mut redis = connect(&server, false).await;
    let pong: String = ask(&mut redis, &redis::cmd("PING")).await;
    assert_eq!(pong, "PONG");
    let () = ask(&mut redis, redis::cmd("SET").arg("k").arg("v")).await;
    let got: Option<String> = ask(&mut redis, redis::cmd("GET").arg("k")).await;
    assert_eq!(got.as_deref(), Some("v"));
    let missing: Option<String> = ask(&mut redis, redis::cmd("GET").arg("nope")).await;
    assert_eq!(missing, None);
    let n: i64 = ask(&mut redis, redis::cmd("INCR").arg("n")).await;
    let n2: i64 = ask(&mut redis, redis::cmd("INCRBY").arg("n").arg(5)).await;
    let n3: i64 = ask(&mut redis, redis::cmd("DECR").arg("n")).await;
    assert_eq!((n, n2, n3), (1, 6, 5));
    let set: i64 = ask(&mut redis, redis::cmd("SETNX").arg("k").arg("other")).await;
    let fresh: i64 = ask(&mut redis, redis::cmd("SETNX").arg("k2").arg("x")).await;
    assert_eq!((set, fresh), (0, 1));
    let () = ask(&mut redis, redis::cmd("SETEX").arg("t").arg(100).arg("v")).await;
    let ttl: i64 = ask(&mut redis, redis::cmd("TTL").arg("t")).await;
    assert!((99..=100).contains(&ttl), "{ttl}");
    // Keys on all four shards, one request.
    let keys: Vec<String> = (0..20).map(|i| format!("m:{i}")).collect();
    let mut mset = redis::cmd("MSET");
    for key in &keys {
        mset.arg(key).arg(format!("{key}!"));
    }
    let () = mset.query_async(&mut redis).await.unwrap();
    let values: Vec<Option<String>> =
        ask(&mut redis, redis::cmd("MGET").arg(&keys).arg("absent")).await;
    assert_eq!(values.len(), 21);
    assert!(values[..20]
        .iter()
        .zip(&keys)
        .all(|(v, k)| v.as_deref() == Some(&format!("{k}!")[..])));
    assert_eq!(values[20], None);
    let exists: i64 = ask(&mut redis, redis::cmd("EXISTS").arg(&keys)).await;
    let removed: i64 = ask(&mut redis, redis::cmd("UNLINK").arg(&keys)).await;
    assert_eq!((exists, removed), (20, 20));

    let _: i64 = ask(
        &mut redis,
        redis::cmd("HSET")
            .arg("h")
            .arg("a")
            .arg("1")
            .arg("b")
            .arg("2"),
    )
    .await;
    let all: std::collections::HashMap<String, String> =
        ask(&mut redis, redis::cmd("HGETALL").arg("h")).await;
    assert_eq!(all.get("b").map(String::as_str), Some("2"));
    let () = ask(&mut redis, redis::cmd("HMSET").arg("h").arg("c").arg("3")).await;
    let _: i64 = ask(
        &mut redis,
        redis::cmd("ZADD")
            .arg("z")
            .arg(1.5)
            .arg("a")
            .arg(2)
            .arg("b"),
    )
    .await;
    let ranked: Vec<(String, f64)> = ask(
        &mut redis,
        redis::cmd("ZRANGE")
            .arg("z")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES"),
    )
    .await;
    assert_eq!(ranked, vec![("a".into(), 1.5), ("b".into(), 2.0)]);
    let popped: Vec<String> = ask(&mut redis, redis::cmd("ZPOPMIN").arg("z")).await;
    assert_eq!(popped, vec!["a".to_string(), "1.5".to_string()]);
    let size: i64 = ask(&mut redis, &redis::cmd("DBSIZE")).await;
    assert_eq!(size, 6, "k k2 n t h z");
}

#[tokio::test]
async fn errors_carry_redis_words() {
    let server = TestServer::start(2);
    let mut redis = connect(&server, false).await;
    let _: i64 = ask(&mut redis, redis::cmd("HSET").arg("h").arg("f").arg("v")).await;
    let wrong = redis::cmd("GET")
        .arg("h")
        .query_async::<String>(&mut redis)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("WRONGTYPE"), "{wrong}");
    assert_eq!(
        wrong.detail(),
        Some("Operation against a key holding the wrong kind of value")
    );
    let said = raw(
        &server,
        b"GET\r\nINCR h\r\nSET k v XX NX\r\nNOSUCH a b\r\nSELECT 1\r\nSELECT 0\r\n",
    );
    assert_eq!(
        said,
        "-ERR wrong number of arguments for 'get' command\r\n\
         -WRONGTYPE Operation against a key holding the wrong kind of value\r\n\
         -ERR syntax error\r\n\
         -ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n\
         -ERR DB index is out of range\r\n\
         +OK\r\n"
    );
    let _: () = ask(&mut redis, redis::cmd("SET").arg("s").arg("abc")).await;
    let not_int = raw(&server, b"INCR s\r\n");
    assert_eq!(not_int, "-ERR value is not an integer or out of range\r\n");
}

#[tokio::test]
async fn replies_come_in_request_order_across_shards() {
    let server = TestServer::start(4);
    // One pipeline of INCRs over keys on every shard, and reads of keys this connection's
    // shard does not own in between: answers must line up with the requests.
    let mut request = Vec::new();
    let mut expected = String::new();
    let mut counts = std::collections::HashMap::new();
    for i in 0..2_000 {
        let key = format!("c:{}", i % 37);
        let count = counts.entry(key.clone()).or_insert(0);
        *count += 1;
        request.extend_from_slice(
            format!("*2\r\n$4\r\nINCR\r\n${}\r\n{key}\r\n", key.len()).as_bytes(),
        );
        expected.push_str(&format!(":{count}\r\n"));
        if i % 100 == 0 {
            request.extend_from_slice(b"PING\r\n");
            expected.push_str("+PONG\r\n");
        }
    }
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.resp_port.unwrap()))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(&request).await.unwrap();
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut got))
        .await
        .expect("every reply within 10 s")
        .unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), expected);
}

#[tokio::test]
async fn hello_3_switches_to_resp3_maps_doubles_and_nulls() {
    let server = TestServer::start(2);
    let said = raw(
        &server,
        b"HSET h f v\r\nHELLO 3\r\nHGETALL h\r\nGET missing\r\nZADD z 2.5 m\r\nZSCORE z m\r\nHELLO 2\r\nGET missing\r\n",
    );
    let parts: Vec<&str> = said.split("\r\n").collect();
    assert_eq!(parts[0], ":1");
    assert!(parts[1].starts_with('%'), "HELLO 3 answers a map: {said}");
    assert!(
        said.contains("%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n:1\r\n,2.5\r\n"),
        "{said}"
    );
    assert!(said.ends_with("$-1\r\n"), "back on RESP2: {said}");
    let mut resp3 = connect(&server, true).await;
    let all: std::collections::HashMap<String, String> =
        ask(&mut resp3, redis::cmd("HGETALL").arg("h")).await;
    assert_eq!(all.get("f").map(String::as_str), Some("v"));
    let score: f64 = ask(&mut resp3, redis::cmd("ZSCORE").arg("z").arg("m")).await;
    assert_eq!(score, 2.5);
}

#[tokio::test]
async fn native_commands_run_over_resp() {
    let server = TestServer::start(2);
    let mut redis = connect(&server, false).await;
    let check = || {
        let mut cmd = redis::cmd("RL.CHECK");
        cmd.arg("api:1")
            .arg("LIMIT")
            .arg(2)
            .arg("WINDOW")
            .arg(60_000);
        cmd
    };
    let first: Vec<redis::Value> = check().query_async(&mut redis).await.unwrap();
    assert_eq!(first.len(), 8, "a map, flat under RESP2: {first:?}");
    let _: Vec<redis::Value> = check().query_async(&mut redis).await.unwrap();
    let third: std::collections::HashMap<String, redis::Value> =
        check().query_async(&mut redis).await.unwrap();
    assert_eq!(
        third.get("allowed"),
        Some(&redis::Value::Int(0)),
        "{third:?}"
    );
    let first_sighting: bool = ask(&mut redis, redis::cmd("DEDUP").arg("evt:1").arg(60)).await;
    let again: bool = ask(&mut redis, redis::cmd("DEDUP").arg("evt:1").arg(60)).await;
    assert_eq!((first_sighting, again), (true, false));
}

#[tokio::test]
async fn a_password_is_asked_for_before_anything_else() {
    let server = TestServer::start_with(&["--shards", "2", "--requirepass", "s3cret"]);
    let said = raw(&server, b"GET k\r\nAUTH wrong\r\nAUTH s3cret\r\nPING\r\n");
    assert_eq!(
        said,
        "-NOAUTH Authentication required.\r\n\
         -WRONGPASS invalid username-password pair or user is disabled.\r\n\
         +OK\r\n+PONG\r\n"
    );
    // Before authenticating, Redis's caps on request size hold.
    let capped = raw(&server, b"*20\r\n");
    assert_eq!(
        capped,
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    let url = format!("redis://:s3cret@127.0.0.1:{}/", server.resp_port.unwrap());
    let mut redis = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = ask(&mut redis, redis::cmd("SET").arg("k").arg("v")).await;
}

#[tokio::test]
async fn a_malformed_request_gets_redis_protocol_error_and_the_connection_closes() {
    let server = TestServer::start(1);
    assert_eq!(
        raw(&server, b"*1\r\n$-3\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        raw(&server, b"PING\r\n*1\r\nfoo\r\nPING\r\n"),
        "+PONG\r\n-ERR Protocol error: expected '$', got 'f'\r\n",
        "nothing after the bad request runs"
    );
    // Others are still served.
    let mut redis = connect(&server, false).await;
    let pong: String = ask(&mut redis, &redis::cmd("PING")).await;
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn lists_and_sets_answer_as_redis_does() {
    let server = TestServer::start(3);
    let mut redis = connect(&server, false).await;
    let len: i64 = ask(
        &mut redis,
        redis::cmd("RPUSH").arg("q").arg(&["a", "b", "c"]),
    )
    .await;
    assert_eq!(len, 3);
    let all: Vec<String> = ask(&mut redis, redis::cmd("LRANGE").arg("q").arg(0).arg(-1)).await;
    assert_eq!(all, ["a", "b", "c"]);
    let one: Option<String> = ask(&mut redis, redis::cmd("LPOP").arg("q")).await;
    assert_eq!(one.as_deref(), Some("a"));
    let none: Option<String> = ask(&mut redis, redis::cmd("LPOP").arg("missing")).await;
    assert_eq!(none, None);
    let moved: Option<String> =
        ask(&mut redis, redis::cmd("RPOPLPUSH").arg("{j}a").arg("{j}b")).await;
    assert_eq!(moved, None);
    let error = redis::cmd("LSET")
        .arg("missing")
        .arg(0)
        .arg("x")
        .query_async::<()>(&mut redis)
        .await
        .unwrap_err();
    assert_eq!(error.detail(), Some("no such key"), "{error}");

    let added: i64 = ask(
        &mut redis,
        redis::cmd("SADD").arg("{s}a").arg(&["1", "2", "3"]),
    )
    .await;
    assert_eq!(added, 3);
    let _: i64 = ask(
        &mut redis,
        redis::cmd("SADD").arg("{s}b").arg(&["2", "3", "4"]),
    )
    .await;
    let mut both: Vec<String> = ask(&mut redis, redis::cmd("SINTER").arg("{s}a").arg("{s}b")).await;
    both.sort();
    assert_eq!(both, ["2", "3"]);
    let flags: Vec<i64> = ask(
        &mut redis,
        redis::cmd("SMISMEMBER").arg("{s}a").arg(&["1", "9"]),
    )
    .await;
    assert_eq!(flags, [1, 0]);
    // Keys in different slots: Redis Cluster's refusal, word for word.
    assert_eq!(
        raw(&server, b"SUNION a-set another-set\r\n"),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(
        raw(&server, b"LPUSH {s}a x\r\n"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(
        raw(&server, b"LPUSH q\r\n"),
        "-ERR wrong number of arguments for 'lpush' command\r\n"
    );
}

#[tokio::test]
async fn the_keyspace_is_walked_typed_and_renamed_across_shards() {
    let server = TestServer::start(3);
    let mut redis = connect(&server, false).await;
    for i in 0..300 {
        let () = ask(
            &mut redis,
            redis::cmd("SET").arg(format!("user:{i}")).arg(i),
        )
        .await;
    }
    let _: i64 = ask(&mut redis, redis::cmd("RPUSH").arg("queue").arg("job")).await;
    let kind: String = ask(&mut redis, redis::cmd("TYPE").arg("queue")).await;
    assert_eq!(kind, "list");
    let mut keys: Vec<String> = ask(&mut redis, redis::cmd("KEYS").arg("user:1?")).await;
    keys.sort();
    assert_eq!(keys.len(), 10);
    // SCAN walks every shard: each key comes back, in steps, ending at cursor 0.
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let (next, found): (String, Vec<String>) = ask(
            &mut redis,
            redis::cmd("SCAN")
                .arg(&cursor)
                .arg("MATCH")
                .arg("user:*")
                .arg("COUNT")
                .arg(50),
        )
        .await;
        seen.extend(found);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 300);
    assert_eq!(
        raw(&server, b"RENAME {r}none {r}b\r\n"),
        "-ERR no such key\r\n"
    );
    let () = ask(&mut redis, redis::cmd("SET").arg("{r}a").arg("v")).await;
    let () = ask(&mut redis, redis::cmd("RENAME").arg("{r}a").arg("{r}b")).await;
    let got: Option<String> = ask(&mut redis, redis::cmd("GET").arg("{r}b")).await;
    assert_eq!(got.as_deref(), Some("v"));
    // CONFIG: what the node runs with, and Redis's encoding knobs accepted.
    let maxclients: Vec<String> =
        ask(&mut redis, redis::cmd("CONFIG").arg("GET").arg("maxcl*")).await;
    assert_eq!(maxclients[0], "maxclients");
    let () = ask(
        &mut redis,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("list-max-listpack-size")
            .arg("4"),
    )
    .await;
    let knob: Vec<String> = ask(
        &mut redis,
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("list-max-listpack-size"),
    )
    .await;
    assert_eq!(knob, ["list-max-listpack-size", "4"]);
    let () = ask(&mut redis, redis::cmd("FUNCTION").arg("FLUSH")).await;
}
