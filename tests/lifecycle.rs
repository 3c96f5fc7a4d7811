//! Starting, stopping and losing a server: config files, maxclients, graceful shutdown,
//! and a client that survives a restart.

mod support;

use std::time::Duration;
use tessera_protocol::{AdminCommand, KeyCommand};

use bytes::Bytes;
use support::TestServer;
use tessera_client::{Client, Error, ErrorCode};
use tessera_protocol::Command;

#[tokio::test]
async fn config_file_settings_apply_and_flags_win() {
    let dir = std::env::temp_dir().join(format!("tessera-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tessera.toml");
    std::fs::write(&path, "port = 0\nshards = 3\nnode-id = \"from-file\"\n").unwrap();
    let server = TestServer::start_with_config(&path);
    let client = server.client().await;
    assert_eq!(client.hello().shards, 3);
    assert_eq!(client.hello().node_id, "from-file");
    drop(server);
    let server = TestServer::start_with(&["--config", path.to_str().unwrap(), "--shards", "2"]);
    assert_eq!(server.client().await.hello().shards, 2);
    std::fs::write(&path, "shards = \"many\"\n").unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(2),
        "a bad config file is refused at start"
    );
}

#[tokio::test]
async fn maxclients_refuses_with_a_typed_error() {
    let server = TestServer::start_with(&["--shards", "1", "--maxclients", "2"]);
    let first = support::plain_connection(&server.address).await;
    let _second = support::plain_connection(&server.address).await;
    let third = tessera_client::Connection::open(
        &server.address,
        None,
        &tessera_client::ClientConfig::default(),
    )
    .await;
    match third {
        Err(Error::ConnectionLost(reason)) => assert!(reason.contains("MAX_CLIENTS"), "{reason}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    drop(first);
    // The freed slot is usable again once the server has seen the close.
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(c) = tessera_client::Connection::open(
            &server.address,
            None,
            &tessera_client::ClientConfig::default(),
        )
        .await
        {
            reopened = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reopened
        .expect("a slot frees when a client leaves")
        .request(Command::Admin(AdminCommand::Ping(None)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    for signal in ["TERM", "INT"] {
        let mut server = TestServer::start(2);
        let client = server.client().await;
        let mut pipeline = client.pipeline();
        let keys: Vec<Bytes> = (0..5000).map(|i| Bytes::from(format!("k{i}"))).collect();
        for chunk in keys.chunks(50) {
            pipeline.add(Command::Keys(KeyCommand::MSet(
                chunk.iter().map(|k| (k.clone(), k.clone())).collect(),
            )));
        }
        let in_flight = tokio::spawn(pipeline.execute());
        tokio::time::sleep(Duration::from_millis(5)).await;
        server.signal(signal);
        let replies = in_flight.await.unwrap().unwrap();
        // Every request the server had read was answered; any it had not read fails as lost,
        // never with a wrong answer.
        for reply in replies {
            match reply {
                Ok(value) => assert_eq!(value, tessera_protocol::Value::Ok),
                Err(Error::ConnectionLost(_)) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(
            server.wait_exit(Duration::from_secs(10)),
            Some(0),
            "SIG{signal} exits 0"
        );
    }
}

#[tokio::test]
async fn client_fails_in_flight_requests_and_reconnects_after_a_restart() {
    let mut server = TestServer::start(2);
    let port = server.port.to_string();
    let client = Client::connect(&server.address).await.unwrap();
    client.set("before", "1").await.unwrap();
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5));
    let lost = client.get("before").await.unwrap_err();
    assert!(
        matches!(lost, Error::ConnectionLost(_) | Error::Connect { .. }),
        "{lost}"
    );
    let restarted = TestServer::start_with(&["--port", &port, "--shards", "2"]);
    let mut result = client.set("after", "2").await;
    for _ in 0..20 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        result = client.set("after", "2").await;
    }
    assert!(result.unwrap(), "the client reconnected on its own");
    assert_eq!(
        client.get("after").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        client.get("before").await.unwrap(),
        None,
        "a restarted in-memory server is empty"
    );
    let err = client
        .call(Command::Admin(AdminCommand::Hello {
            version: 7,
            shard: None,
            auth: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::UnsupportedVersion));
    drop(restarted);
}

#[tokio::test]
async fn a_stopped_server_times_requests_out_and_answers_once_resumed() {
    let server = TestServer::start(1);
    let config = tessera_client::ClientConfig {
        request_timeout: Some(Duration::from_millis(300)),
        ..tessera_client::ClientConfig::default()
    };
    let client = Client::connect_with(&server.address, config).await.unwrap();
    client.set("k", "v").await.unwrap();
    server.signal("STOP");
    let stalled = client.get("k").await.unwrap_err();
    server.signal("CONT");
    assert!(matches!(stalled, Error::Timeout(_)), "{stalled}");
    assert_eq!(
        client.get("k").await.unwrap().as_deref(),
        Some(&b"v"[..]),
        "the same connection serves once the server runs again"
    );
}

#[tokio::test]
async fn sigterm_exits_within_the_timeout_while_a_client_does_not_read() {
    use tokio::io::AsyncWriteExt;
    let mut server = TestServer::start_with(&["--shards", "1", "--shutdown-timeout", "1"]);
    let client = server.client().await;
    client.set("big", vec![b'x'; 1 << 20]).await.unwrap();
    // A client that asks for the megabyte again and again and never reads a reply: the
    // server's writes to it block once the socket buffers fill.
    let mut stalled = tokio::net::TcpStream::connect(&server.address)
        .await
        .unwrap();
    let mut requests = bytes::BytesMut::new();
    for id in 1..=64 {
        tessera_protocol::encode_request(
            &mut requests,
            id,
            &Command::Keys(KeyCommand::Get(Bytes::from_static(b"big"))),
        );
    }
    stalled.write_all(&requests).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = std::time::Instant::now();
    server.signal("TERM");
    let code = server.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "the server exits cleanly");
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "within the 1 s timeout and some slack, not {:?}",
        asked.elapsed()
    );
    drop(stalled);
}

#[tokio::test]
async fn a_second_server_on_a_port_in_use_is_refused_not_let_share_it() {
    let server = TestServer::start(1);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--port", &server.port.to_string(), "--appendonly", "no"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(
        server.client().await.ping().await.is_ok(),
        "the first one serves on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_above_the_open_file_limit_is_lowered_and_the_rest_are_told() {
    use std::io::{BufRead, BufReader};
    // 64 descriptors: 36 go to the server itself (one shard), so 28 clients fit.
    let mut child = std::process::Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(support::binary("tessera-server"))
        .args(["--port", "0", "--shards", "1", "--appendonly", "no"])
        .args(["--maxclients", "10000", "--log-level", "warn"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("prlimit runs the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let opened = tessera_client::Connection::open(
            &address,
            None,
            &tessera_client::ClientConfig::default(),
        )
        .await;
        match opened {
            Ok(connection) => admitted.push(connection),
            Err(Error::ConnectionLost(reason)) if reason.contains("MAX_CLIENTS") => refused += 1,
            Err(other) => panic!("a client past the limit must be told, not left: {other}"),
        }
    }
    assert_eq!(admitted.len(), 28, "maxclients fits the descriptors");
    assert_eq!(refused, 12);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("maxclients lowered"), "{stderr}");
}

#[tokio::test]
async fn protected_mode_still_serves_loopback_clients() {
    // Bound to every interface with no password: protected mode is on, and a client on
    // loopback is served as ever (clients from elsewhere get DENIED; see server::admits).
    let server = TestServer::start_with(&["--bind", "0.0.0.0", "--shards", "1"]);
    let client = Client::connect(&format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    client.set("k", "v").await.unwrap();
    assert_eq!(client.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}
