//! The slow log, the latency monitor and the metrics endpoint, on real servers: a huge
//! MGET is logged with its arguments on both protocols, thresholds change at run time,
//! and `/metrics` counts exactly the requests clients made.

mod support;

use std::io::{Read, Write};

use support::TestServer;
use tessera_protocol::{Command, DiagnosticsCommand, KeyCommand, Value};

async fn resp(server: &TestServer) -> redis::aio::MultiplexedConnection {
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

/// Loads `count` keys `key:N` through MSET, a thousand at a time.
async fn load(redis: &mut redis::aio::MultiplexedConnection, count: usize) {
    for start in (0..count).step_by(1000) {
        let mut mset = redis::cmd("MSET");
        for n in start..(start + 1000).min(count) {
            mset.arg(format!("key:{n}")).arg("v");
        }
        let () = ask(redis, &mset).await;
    }
}

/// CONFIG SET `name` `value`, which must be accepted.
async fn config_set(
    redis: &mut redis::aio::MultiplexedConnection,
    name: &str,
    value: impl redis::ToRedisArgs,
) {
    let () = ask(redis, redis::cmd("CONFIG").arg("SET").arg(name).arg(value)).await;
}

fn mget(count: usize) -> redis::Cmd {
    let mut mget = redis::cmd("MGET");
    for n in 0..count {
        mget.arg(format!("key:{n}"));
    }
    mget
}

/// One slow log entry as Redis's SLOWLOG GET gives it.
#[derive(Debug)]
struct Entry {
    id: i64,
    micros: i64,
    args: Vec<String>,
    client: String,
    name: String,
}

fn entries(reply: redis::Value) -> Vec<Entry> {
    let redis::Value::Array(rows) = reply else {
        panic!("SLOWLOG GET answers an array: {reply:?}");
    };
    rows.into_iter()
        .map(|row| {
            let (id, _at, micros, args, client, name): (
                i64,
                i64,
                i64,
                Vec<String>,
                String,
                String,
            ) = redis::FromRedisValue::from_redis_value(row).unwrap();
            Entry {
                id,
                micros,
                args,
                client,
                name,
            }
        })
        .collect()
}

#[tokio::test]
async fn a_slow_mget_is_logged_with_its_arguments_until_reset() {
    let server = TestServer::start(4);
    let mut redis = resp(&server).await;
    let () = ask(
        &mut redis,
        redis::cmd("CLIENT").arg("SETNAME").arg("reporter"),
    )
    .await;
    load(&mut redis, 50_000).await;
    config_set(&mut redis, "slowlog-log-slower-than", 2_000).await;
    let () = ask(&mut redis, redis::cmd("SLOWLOG").arg("RESET")).await;
    let values: Vec<Option<String>> = ask(&mut redis, &mget(50_000)).await;
    assert_eq!(values.len(), 50_000);

    let logged = entries(ask(&mut redis, redis::cmd("SLOWLOG").arg("GET").arg(-1)).await);
    let slow = logged
        .iter()
        .find(|e| e.args.first().is_some_and(|a| a == "MGET"))
        .unwrap_or_else(|| panic!("the MGET is in the slow log: {logged:?}"));
    assert!(slow.micros >= 2_000, "{slow:?}");
    assert_eq!(slow.args.len(), 32, "Redis keeps 32 arguments: {slow:?}");
    assert_eq!(slow.args[1], "key:0");
    assert_eq!(slow.args[30], "key:29");
    assert_eq!(slow.args[31], "... (49970 more arguments)");
    assert_eq!(slow.name, "reporter");
    assert!(slow.client.starts_with("127.0.0.1:"), "{slow:?}");
    let ids: Vec<i64> = logged.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let len: i64 = ask(&mut redis, redis::cmd("SLOWLOG").arg("LEN")).await;
    assert!(len >= 1);
    let () = ask(&mut redis, redis::cmd("SLOWLOG").arg("RESET")).await;
    let after = entries(ask(&mut redis, redis::cmd("SLOWLOG").arg("GET")).await);
    assert!(
        after.iter().all(|e| e.args[0] != "MGET"),
        "RESET empties it: {after:?}"
    );

    // A negative threshold logs nothing, however slow.
    config_set(&mut redis, "slowlog-log-slower-than", -1).await;
    let got: Vec<String> = ask(
        &mut redis,
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("slowlog-log-slower-than"),
    )
    .await;
    assert_eq!(got, ["slowlog-log-slower-than", "-1"]);
    let () = ask(&mut redis, redis::cmd("SLOWLOG").arg("RESET")).await;
    let _: Vec<Option<String>> = ask(&mut redis, &mget(50_000)).await;
    let len: i64 = ask(&mut redis, redis::cmd("SLOWLOG").arg("LEN")).await;
    assert_eq!(len, 0);
    let refused = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg("many")
        .query_async::<()>(&mut redis)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("slowlog-max-len"), "{refused}");
    // Cluster clients route by COMMAND INFO's key positions: these name no key.
    let info: redis::Value = ask(
        &mut redis,
        redis::cmd("COMMAND")
            .arg("INFO")
            .arg("slowlog")
            .arg("latency"),
    )
    .await;
    let redis::Value::Array(rows) = info else {
        panic!("COMMAND INFO answers an array: {info:?}");
    };
    for row in rows {
        let redis::Value::Array(fields) = row else {
            panic!("a command's row: {row:?}");
        };
        assert_eq!(fields[3], redis::Value::Int(0), "first key: {fields:?}");
    }
}

#[tokio::test]
async fn native_clients_read_the_slowlog_with_each_requests_keys() {
    let server = TestServer::start_with(&["--shards", "2", "--slowlog-log-slower-than", "0"]);
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    let keys: Vec<bytes::Bytes> = (0..40).map(|n| format!("k{n}").into()).collect();
    client
        .call(Command::Keys(KeyCommand::MGet(keys)))
        .await
        .unwrap();
    let reply = client
        .call(Command::Diagnostics(DiagnosticsCommand::SlowlogGet(None)))
        .await
        .unwrap();
    let Value::Array(rows) = reply else {
        panic!("an array: {reply:?}");
    };
    let args_of = |row: &Value| match row {
        Value::Array(fields) => match &fields[3] {
            Value::Array(args) => args
                .iter()
                .map(|a| match a {
                    Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("arguments are bytes: {other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("arguments: {other:?}"),
        },
        other => panic!("an entry: {other:?}"),
    };
    // Threshold 0 logs every request; the MGET's entry names it and its keys.
    let mget = rows
        .iter()
        .map(args_of)
        .find(|args| args[0] == "MGET")
        .unwrap_or_else(|| panic!("the MGET is logged: {rows:?}"));
    assert_eq!(mget.len(), 32);
    assert_eq!(mget[1], "k0");
    assert_eq!(mget[31], "... (10 more arguments)");
    let len = client
        .call(Command::Diagnostics(DiagnosticsCommand::SlowlogLen))
        .await
        .unwrap();
    assert!(matches!(len, Value::Int(n) if n as usize >= rows.len()));
}

#[tokio::test]
async fn the_latency_monitor_keeps_slow_commands_until_reset() {
    let server = TestServer::start(2);
    let mut redis = resp(&server).await;
    load(&mut redis, 30_000).await;
    let latest: Vec<redis::Value> = ask(&mut redis, redis::cmd("LATENCY").arg("LATEST")).await;
    assert!(latest.is_empty(), "off by default: {latest:?}");
    config_set(&mut redis, "latency-monitor-threshold", 1).await;
    let _: Vec<Option<String>> = ask(&mut redis, &mget(30_000)).await;
    let latest: Vec<(String, i64, i64, i64)> =
        ask(&mut redis, redis::cmd("LATENCY").arg("LATEST")).await;
    let command = latest
        .iter()
        .find(|(event, ..)| event == "command")
        .unwrap_or_else(|| panic!("a command event: {latest:?}"));
    assert!(command.2 >= 1 && command.3 >= command.2, "{command:?}");
    let history: Vec<(i64, i64)> = ask(
        &mut redis,
        redis::cmd("LATENCY").arg("HISTORY").arg("command"),
    )
    .await;
    assert!(!history.is_empty());
    assert!(history.iter().all(|(_, ms)| *ms >= 1));
    let reset: i64 = ask(&mut redis, redis::cmd("LATENCY").arg("RESET")).await;
    assert!(reset >= 1);
    let latest: Vec<redis::Value> = ask(&mut redis, redis::cmd("LATENCY").arg("LATEST")).await;
    assert!(latest.is_empty(), "{latest:?}");
}

/// `GET path` on the metrics port: status line and body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the series written exactly as `series` (name and labels).
fn series(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

#[tokio::test]
async fn metrics_count_exactly_what_clients_did() {
    let server = TestServer::start(3);
    let port = server.metrics_port.expect("metrics are on");
    let (status, before) = http_get(port, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(
        before.ends_with("# EOF\n"),
        "OpenMetrics text ends with EOF"
    );
    let counted = |text: &str, cmd: &str| {
        series(text, &format!("tessera_commands_total{{cmd=\"{cmd}\"}}")).unwrap_or(0.0)
    };

    let mut redis = resp(&server).await;
    for n in 0..300 {
        let () = ask(&mut redis, redis::cmd("SET").arg(format!("m:{n}")).arg(n)).await;
    }
    let native = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    for n in 0..120 {
        native.get(format!("m:{n}")).await.unwrap();
    }
    let (_, after) = http_get(port, "/metrics");
    assert_eq!(counted(&after, "set") - counted(&before, "set"), 300.0);
    assert_eq!(counted(&after, "get") - counted(&before, "get"), 120.0);
    assert_eq!(
        series(
            &after,
            "tessera_commands_latency_seconds_count{cmd=\"set\"}"
        ),
        Some(counted(&after, "set")),
        "the histogram counts every call"
    );
    assert_eq!(
        series(
            &after,
            "tessera_commands_latency_seconds_bucket{le=\"+Inf\",cmd=\"set\"}"
        )
        .or_else(|| series(
            &after,
            "tessera_commands_latency_seconds_bucket{cmd=\"set\",le=\"+Inf\"}"
        )),
        Some(counted(&after, "set"))
    );
    assert_eq!(series(&after, "tessera_db_keys{db=\"db0\"}"), Some(300.0));
    let connected = series(&after, "tessera_connected_clients").unwrap();
    assert!(connected >= 2.0, "both clients are connected: {connected}");
    let read = |text: &str| series(text, "tessera_net_input_bytes_total").unwrap();
    assert!(read(&after) > read(&before) + 300.0 * 20.0);
    assert_eq!(series(&after, "tessera_shards"), Some(3.0));

    let (status, _) = http_get(port, "/other");
    assert!(status.contains("404"), "{status}");
}

#[tokio::test]
async fn metrics_report_the_log_and_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let durable = TestServer::start_with(&["--shards", "2", "--dir", data, "--appendonly", "yes"]);
    let client = tessera_client::Client::connect(&durable.address)
        .await
        .unwrap();
    for n in 0..50 {
        client.set(format!("d:{n}"), "value").await.unwrap();
    }
    let (_, text) = http_get(durable.metrics_port.unwrap(), "/metrics");
    assert_eq!(series(&text, "tessera_aof_enabled"), Some(1.0));
    let logged = series(&text, "tessera_aof_written_bytes_total").unwrap();
    assert!(logged >= 50.0 * 10.0, "every SET is in the log: {logged}");
    assert_eq!(series(&text, "tessera_cluster_enabled"), Some(0.0));

    let cluster = support::cluster::TestCluster::formed(2, 1).await;
    let mut owned = 0.0;
    for at in 0..2 {
        let (_, text) = http_get(cluster.metrics_port(at).unwrap(), "/metrics");
        assert_eq!(series(&text, "tessera_cluster_enabled"), Some(1.0));
        assert!(series(&text, "tessera_cluster_current_epoch").unwrap() >= 1.0);
        assert_eq!(series(&text, "tessera_cluster_known_nodes"), Some(2.0));
        assert_eq!(series(&text, "tessera_cluster_slots_migrating"), Some(0.0));
        owned += series(&text, "tessera_cluster_slots_owned").unwrap();
    }
    assert_eq!(owned, 16_384.0, "every slot has one owner");
}

#[tokio::test]
async fn idle_metrics_connections_are_bounded_and_timed_out() {
    let server = TestServer::start(1);
    let port = server.metrics_port.unwrap();
    let idle: Vec<std::net::TcpStream> = (0..80)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The data port is another matter: it serves as ever.
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    client.set("still", "served").await.unwrap();
    // Past the cap, connections are closed at once.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let closed = idle
        .iter()
        .filter(|stream| {
            stream.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            matches!((&**stream).read(&mut byte), Ok(0))
        })
        .count();
    assert_eq!(closed, 80 - 64, "{closed} of 80 closed");
    // The idle ones go after the header timeout, and scraping works again.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let (status, body) = http_get(port, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("tessera_db_keys"));
    drop(idle);
}

#[tokio::test]
async fn a_growing_table_is_a_latency_event() {
    let server = TestServer::start(1);
    let mut redis = resp(&server).await;
    config_set(&mut redis, "latency-monitor-threshold", 1).await;
    // Doubling past 100,000 keys moves every one of them: well over a millisecond.
    load(&mut redis, 200_000).await;
    let latest: Vec<(String, i64, i64, i64)> =
        ask(&mut redis, redis::cmd("LATENCY").arg("LATEST")).await;
    assert!(
        latest.iter().any(|(event, ..)| event == "table-growth"),
        "{latest:?}"
    );
}
