//! CLIENT LIST, CLIENT KILL and CLIENT UNBLOCK over RESP with real Redis clients: every
//! shard's connections listed and closed, blocking pops ended from another connection.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use support::TestServer;

async fn connect(server: &TestServer) -> redis::aio::MultiplexedConnection {
    let port = server.resp_port.expect("RESP is on");
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn ask<T: redis::FromRedisValue>(
    redis: &mut redis::aio::MultiplexedConnection,
    command: &redis::Cmd,
) -> T {
    command.query_async(redis).await.unwrap()
}

/// CLIENT LIST's lines as field maps.
fn parse_list(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    text.lines()
        .map(|line| {
            line.split(' ')
                .filter_map(|field| field.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

async fn list(redis: &mut redis::aio::MultiplexedConnection, extra: &[&str]) -> Vec<Fields> {
    let text: String = ask(redis, redis::cmd("CLIENT").arg("LIST").arg(extra)).await;
    parse_list(&text)
}

type Fields = std::collections::HashMap<String, String>;

fn named<'a>(lines: &'a [Fields], name: &str) -> Option<&'a Fields> {
    lines.iter().find(|line| line["name"] == name)
}

#[tokio::test]
async fn client_list_shows_every_shards_connections_and_kill_closes_those_it_names() {
    let server = TestServer::start(4);
    let mut conns = Vec::new();
    let mut ids = Vec::new();
    for n in 0..6 {
        let mut redis = connect(&server).await;
        let () = ask(
            &mut redis,
            redis::cmd("CLIENT").arg("SETNAME").arg(format!("c{n}")),
        )
        .await;
        ids.push(ask::<i64>(&mut redis, redis::cmd("CLIENT").arg("ID")).await);
        conns.push(redis);
    }
    let lines = list(&mut conns[0], &[]).await;
    assert_eq!(
        lines.len(),
        6,
        "every connection, whichever shard serves it"
    );
    for (n, id) in ids.iter().enumerate() {
        let line = named(&lines, &format!("c{n}")).expect("listed by name");
        assert_eq!(line["id"], id.to_string());
        assert_eq!(line["db"], "0");
        assert_eq!(line["user"], "default");
        assert_eq!(line["flags"], "N");
        assert_eq!(line["resp"], "2");
        let expected = if n == 0 { "client|list" } else { "client|id" };
        assert_eq!(line["cmd"], expected);
        assert!(line["addr"].starts_with("127.0.0.1:"), "{line:?}");
        assert_eq!(
            line["laddr"],
            format!("127.0.0.1:{}", server.resp_port.unwrap())
        );
    }
    let only = list(&mut conns[0], &["ID", &ids[3].to_string(), "999"]).await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["name"], "c3");

    let info: String = ask(&mut conns[2], redis::cmd("CLIENT").arg("INFO")).await;
    assert_eq!(parse_list(&info)[0]["name"], "c2");

    let killed: i64 = ask(
        &mut conns[0],
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(ids[3]),
    )
    .await;
    assert_eq!(killed, 1);
    let after: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conns[3]).await;
    assert!(after.is_err(), "the killed connection is closed");

    // The old form names one address; OK, or an error when nobody is there.
    let c4 = named(&lines, "c4").unwrap()["addr"].clone();
    let () = ask(&mut conns[0], redis::cmd("CLIENT").arg("KILL").arg(&c4)).await;
    let nobody: redis::RedisResult<()> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg(&c4)
        .query_async(&mut conns[0])
        .await;
    assert!(nobody.unwrap_err().to_string().contains("No such client"));

    // SKIPME defaults to yes: every other connection of the user goes, the asker stays.
    let killed: i64 = ask(
        &mut conns[0],
        redis::cmd("CLIENT").arg("KILL").arg("USER").arg("default"),
    )
    .await;
    assert_eq!(killed, 3, "c1, c2 and c5");
    let left = list(&mut conns[0], &[]).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "c0");

    let bad: redis::RedisResult<()> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("sometimes")
        .query_async(&mut conns[0])
        .await;
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("Unknown client type 'sometimes'"));
}

#[test]
fn a_connection_that_kills_itself_is_answered_then_closed() {
    let server = TestServer::start(2);
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", server.resp_port.unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    stream.write_all(b"CLIENT ID\r\n").unwrap();
    reader.read_line(&mut line).unwrap();
    let id = line.trim().trim_start_matches(':').to_owned();
    stream
        .write_all(format!("CLIENT KILL ID {id} SKIPME no\r\n").as_bytes())
        .unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, ":1\r\n");
    line.clear();
    assert_eq!(
        reader.read_line(&mut line).unwrap(),
        0,
        "closed after the reply"
    );
}

/// Waits until the node counts `n` clients in a blocking pop.
async fn wait_blocked(redis: &mut redis::aio::MultiplexedConnection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = ask(redis, redis::cmd("INFO").arg("clients")).await;
        if info.contains(&format!("blocked_clients:{n}\r")) {
            return;
        }
        assert!(Instant::now() < deadline, "never blocked: {info}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn client_unblock_ends_a_blocking_pop_with_nil_or_an_unblocked_error() {
    let server = TestServer::start(4);
    let mut waiting = connect(&server).await;
    let mut other = connect(&server).await;
    let id: i64 = ask(&mut waiting, redis::cmd("CLIENT").arg("ID")).await;

    for (mode, expect_error) in [
        (None, false),
        (Some("TIMEOUT"), false),
        (Some("ERROR"), true),
    ] {
        let mut popper = waiting.clone();
        let pop = tokio::spawn(async move {
            redis::cmd("BLPOP")
                .arg("jobs")
                .arg(0)
                .query_async::<Option<Vec<String>>>(&mut popper)
                .await
        });
        wait_blocked(&mut other, 1).await;
        let unblocked: i64 = ask(
            &mut other,
            redis::cmd("CLIENT").arg("UNBLOCK").arg(id).arg(mode),
        )
        .await;
        assert_eq!(unblocked, 1);
        let answer = tokio::time::timeout(Duration::from_secs(10), pop)
            .await
            .expect("the pop ended")
            .unwrap();
        if expect_error {
            let error = answer.unwrap_err();
            assert_eq!(error.code(), Some("UNBLOCKED"));
            assert!(error
                .to_string()
                .contains("client unblocked via CLIENT UNBLOCK"));
        } else {
            assert_eq!(answer.unwrap(), None, "{mode:?} answers as a timeout would");
        }
        wait_blocked(&mut other, 0).await;
    }

    // A push after the unblock is not taken by the ended wait.
    let _: i64 = ask(&mut other, redis::cmd("RPUSH").arg("jobs").arg("j1")).await;
    let len: i64 = ask(&mut other, redis::cmd("LLEN").arg("jobs")).await;
    assert_eq!(len, 1);

    let not_waiting: i64 = ask(&mut other, redis::cmd("CLIENT").arg("UNBLOCK").arg(id)).await;
    assert_eq!(not_waiting, 0, "a connection not in a blocking pop");
    let bad: redis::RedisResult<i64> = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg("asd")
        .query_async(&mut other)
        .await;
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("value is not an integer or out of range"));
}
