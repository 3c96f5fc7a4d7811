//! Bad input never panics the server: each bad frame gets a typed error or a clean close,
//! and well-behaved clients keep being served throughout.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_protocol::{AdminCommand, KeyCommand};

use bytes::{BufMut, Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use support::TestServer;
use tessera_protocol::{encode_request, Command, ErrorCode, FrameDecoder, Value, PUSH_ID};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one response frame; `None` on a clean close.
async fn read_reply(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<(u32, Value)> {
    let decoder = FrameDecoder::default();
    loop {
        if let Some(frame) = decoder.decode(buf).expect("server frames are well formed") {
            return Some((
                frame.id,
                Value::decode(frame.body).expect("server values decode"),
            ));
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(buf))
            .await
            .expect("server answers or closes in time");
        match read {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn error_code(value: &Value) -> Option<ErrorCode> {
    match value {
        Value::Error(e) => e.known_code(),
        _ => None,
    }
}

/// A frame with a hand-made body.
fn raw_frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.put_u32_le(body.len() as u32 + 4);
    frame.put_u32_le(id);
    frame.extend_from_slice(body);
    frame
}

async fn expect_usable(stream: &mut TcpStream, buf: &mut BytesMut) {
    let mut ping = BytesMut::new();
    encode_request(&mut ping, 99, &Command::Admin(AdminCommand::Ping(None)));
    stream.write_all(&ping).await.unwrap();
    assert_eq!(
        read_reply(stream, buf).await,
        Some((99, Value::text("PONG")))
    );
}

#[tokio::test]
async fn four_gib_length_prefix_gets_an_error_then_a_close() {
    let server = TestServer::start(2);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0])
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let (id, value) = read_reply(&mut stream, &mut buf)
        .await
        .expect("an error before the close");
    assert_eq!(id, PUSH_ID);
    assert_eq!(error_code(&value), Some(ErrorCode::FrameTooLarge));
    assert_eq!(
        read_reply(&mut stream, &mut buf).await,
        None,
        "then the connection closes"
    );
}

#[tokio::test]
async fn frame_shorter_than_its_header_closes_with_a_reason() {
    let server = TestServer::start(1);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream.write_all(&[2, 0, 0, 0, 0, 0]).await.unwrap();
    let mut buf = BytesMut::new();
    let (id, value) = read_reply(&mut stream, &mut buf).await.unwrap();
    assert_eq!(
        (id, error_code(&value)),
        (PUSH_ID, Some(ErrorCode::Protocol))
    );
    assert_eq!(read_reply(&mut stream, &mut buf).await, None);
}

#[tokio::test]
async fn request_id_zero_is_refused() {
    let server = TestServer::start(1);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let mut frame = BytesMut::new();
    encode_request(
        &mut frame,
        PUSH_ID,
        &Command::Admin(AdminCommand::Ping(None)),
    );
    stream.write_all(&frame).await.unwrap();
    let mut buf = BytesMut::new();
    let (id, value) = read_reply(&mut stream, &mut buf).await.unwrap();
    assert_eq!(
        (id, error_code(&value)),
        (PUSH_ID, Some(ErrorCode::Protocol))
    );
}

#[tokio::test]
async fn request_id_zero_with_an_undecodable_body_is_refused_and_closed() {
    let server = TestServer::start(1);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream
        .write_all(&raw_frame(PUSH_ID, &[0xff, 0xff, 1, 2, 3]))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let (id, value) = read_reply(&mut stream, &mut buf).await.unwrap();
    assert_eq!(
        (id, error_code(&value)),
        (PUSH_ID, Some(ErrorCode::Protocol))
    );
    assert_eq!(
        read_reply(&mut stream, &mut buf).await,
        None,
        "then the connection closes"
    );
}

#[tokio::test]
async fn hello_for_a_shard_past_any_node_is_no_such_shard() {
    let server = TestServer::start(2);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let mut body = BytesMut::new();
    body.put_u16_le(0x0002);
    body.put_u16_le(tessera_protocol::PROTOCOL_VERSION);
    tessera_protocol::wire::put_uvarint(&mut body, 70_001);
    body.put_u8(0);
    stream.write_all(&raw_frame(1, &body)).await.unwrap();
    let mut buf = BytesMut::new();
    let (id, value) = read_reply(&mut stream, &mut buf).await.unwrap();
    assert_eq!((id, error_code(&value)), (1, Some(ErrorCode::NoSuchShard)));
}

#[tokio::test]
async fn truncated_frames_are_dropped_with_the_connection() {
    let server = TestServer::start(2);
    for cut in [1, 3, 5, 9] {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        let mut frame = BytesMut::new();
        encode_request(
            &mut frame,
            1,
            &Command::Keys(KeyCommand::Get(Bytes::from_static(b"some-key"))),
        );
        stream.write_all(&frame[..cut]).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(
            read_reply(&mut stream, &mut buf).await,
            None,
            "cut at {cut}: closed without a reply"
        );
    }
    let client = server.client().await;
    client.ping().await.unwrap();
}

#[tokio::test]
async fn unknown_opcodes_and_bad_arguments_get_typed_errors_and_the_connection_survives() {
    let server = TestServer::start(2);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let mut buf = BytesMut::new();
    let long_key = {
        let mut body = vec![0x10, 0x00];
        let len = 70_000u32;
        body.extend_from_slice(&[
            (len & 0x7f) as u8 | 0x80,
            ((len >> 7) & 0x7f) as u8 | 0x80,
            (len >> 14) as u8,
        ]);
        body.extend(std::iter::repeat_n(b'k', len as usize));
        body
    };
    let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
        (
            "unknown opcode",
            vec![0xff, 0x7f],
            ErrorCode::UnknownCommand,
        ),
        ("empty body", vec![], ErrorCode::Protocol),
        ("one-byte opcode", vec![0x10], ErrorCode::Protocol),
        ("GET without a key", vec![0x10, 0x00], ErrorCode::Protocol),
        (
            "GET with trailing bytes",
            vec![0x10, 0x00, 1, b'k', 0],
            ErrorCode::Protocol,
        ),
        (
            "key length past the frame",
            vec![0x10, 0x00, 50, b'k'],
            ErrorCode::Protocol,
        ),
        (
            "SET with NX and XX",
            vec![0x11, 0x00, 1, b'k', 1, b'v', 0x03],
            ErrorCode::Syntax,
        ),
        (
            "SET with undefined flags",
            vec![0x11, 0x00, 1, b'k', 1, b'v', 0x80],
            ErrorCode::Syntax,
        ),
        (
            "SET with a zero expiry",
            vec![0x11, 0x00, 1, b'k', 1, b'v', 0x10, 0],
            ErrorCode::InvalidExpire,
        ),
        ("DEL with no keys", vec![0x12, 0x00, 0], ErrorCode::Syntax),
        (
            "MGET claiming a billion keys",
            vec![0x1b, 0x00, 0x80, 0x94, 0xeb, 0xdc, 0x03, 1, b'k'],
            ErrorCode::Protocol,
        ),
        ("MSET with no pairs", vec![0x1c, 0x00, 0], ErrorCode::Syntax),
        (
            "INCRBY with an overlong varint",
            [vec![0x19, 0x00, 1, b'k'], vec![0xff; 11]].concat(),
            ErrorCode::Protocol,
        ),
        (
            "PING with a bad flag",
            vec![0x01, 0x00, 7],
            ErrorCode::Syntax,
        ),
        (
            "HELLO for a huge shard",
            vec![0x02, 0x00, 2, 0, 0xff, 0xff, 0x7f, 0],
            ErrorCode::NoSuchShard,
        ),
        ("key over 64 KiB", long_key, ErrorCode::KeyTooLarge),
    ];
    for (i, (what, body, code)) in cases.into_iter().enumerate() {
        let id = i as u32 + 1;
        stream.write_all(&raw_frame(id, &body)).await.unwrap();
        let (reply_id, value) = read_reply(&mut stream, &mut buf)
            .await
            .unwrap_or_else(|| panic!("{what}: closed"));
        assert_eq!(reply_id, id, "{what}");
        assert_eq!(error_code(&value), Some(code), "{what}: {value:?}");
    }
    expect_usable(&mut stream, &mut buf).await;
    // Type errors come from the data, not the frame.
    let client = server.client().await;
    client.set("text", "abc").await.unwrap();
    assert_eq!(
        client.incr_by("text", 1).await.unwrap_err().server_code(),
        Some(ErrorCode::NotInteger)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_random_bytes_do_not_disturb_a_concurrent_client() {
    let server = TestServer::start_with(&["--shards", "2", "--max-frame-bytes", "65536"]);
    let stop = Arc::new(AtomicBool::new(false));
    let good_ops = Arc::new(AtomicU64::new(0));
    let client = server.client().await;
    let watcher = {
        let (stop, good_ops, client) = (stop.clone(), good_ops.clone(), client.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("good:{}", i % 100);
                client
                    .set(key.clone(), i.to_string())
                    .await
                    .expect("good client: set");
                let read = client.get(key).await.expect("good client: get");
                assert_eq!(read.as_deref(), Some(i.to_string().as_bytes()));
                good_ops.fetch_add(2, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let mut rng = SmallRng::seed_from_u64(0x7e55e7a);
    let mut sent = 0usize;
    let mut connections = 0;
    while sent < 10 * 1024 * 1024 {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        connections += 1;
        let mut payload = vec![0u8; rng.random_range(1..256 * 1024)];
        if connections % 2 == 0 {
            rng.fill_bytes(&mut payload);
        } else {
            // Well-framed requests with random bodies reach the command decoder.
            payload.clear();
            while payload.len() < 128 * 1024 {
                let mut body = vec![0u8; rng.random_range(0..64)];
                rng.fill_bytes(&mut body);
                if !body.is_empty() && rng.random_bool(0.7) {
                    // Every opcode but FLUSHALL, which would rightly wipe the good client's keys.
                    body[0] = loop {
                        let opcode = rng.random_range(0x01..0x1d);
                        if opcode != 0x05 {
                            break opcode;
                        }
                    };
                    if body.len() > 1 {
                        body[1] = 0;
                    }
                }
                payload.extend(raw_frame(rng.random_range(1..u32::MAX), &body));
            }
        }
        sent += payload.len();
        // The server may close mid-write; that is an answer too.
        let _ = stream.write_all(&payload).await;
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.expect("the good client saw no error");
    assert!(good_ops.load(Ordering::Relaxed) > 0);
    client.ping().await.unwrap();
    let info = client.info().await.unwrap();
    let bad = info
        .get("totals")
        .and_then(|t| t.get("bad_requests"))
        .and_then(Value::as_int)
        .unwrap();
    assert!(bad > 0, "the garbage was seen and counted");
}

/// The server's resident set, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_announce_big_frames_cost_only_what_arrived() {
    const STALLED: usize = 300;
    let server = TestServer::start(2);
    let mut first = TcpStream::connect(&server.address).await.unwrap();
    let mut buf = BytesMut::new();
    expect_usable(&mut first, &mut buf).await;
    let before = rss_kib(server.pid());
    // Each announces a 16 MiB frame and sends 10 bytes of it.
    let mut header = BytesMut::new();
    header.put_u32_le(16 << 20);
    header.put_u32_le(7);
    header.put_u16_le(0x0011);
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        stream.write_all(&header).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown < (STALLED as u64) * 128,
        "{STALLED} stalled headers grew the server by {grown} KiB (more than 128 KiB each)"
    );
    expect_usable(&mut first, &mut buf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_does_not_finish_arriving_is_closed_with_a_reason() {
    let server = TestServer::start_with(&["--shards", "1", "--frame-timeout", "1"]);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let mut request = BytesMut::new();
    encode_request(
        &mut request,
        5,
        &Command::Keys(KeyCommand::Set(tessera_protocol::SetArgs {
            key: Bytes::from_static(b"slow"),
            value: Bytes::from(vec![b'x'; 4096]),
            condition: Default::default(),
            expiry: Default::default(),
            get: false,
        })),
    );
    // Half the frame, then nothing: the rest never comes.
    stream
        .write_all(&request[..request.len() / 2])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = BytesMut::new();
    let (id, value) = read_reply(&mut stream, &mut buf)
        .await
        .expect("a reason first");
    assert_eq!(id, PUSH_ID);
    assert_eq!(error_code(&value), Some(ErrorCode::Protocol), "{value:?}");
    assert_eq!(
        read_reply(&mut stream, &mut buf).await,
        None,
        "then a close"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_watching_ones_stay() {
    let server = TestServer::start_with(&["--shards", "1", "--timeout", "1"]);
    let idle = support::plain_connection(&server.address).await;
    let watcher = support::plain_connection(&server.address).await;
    watcher
        .request(Command::Presence(tessera_protocol::PresenceCommand::Watch(
            vec![Bytes::from_static(b"someone")],
        )))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert!(
        idle.request(Command::Admin(AdminCommand::Ping(None)))
            .await
            .is_err(),
        "the idle connection was closed"
    );
    assert_eq!(
        watcher
            .request(Command::Admin(AdminCommand::Ping(None)))
            .await
            .unwrap(),
        Value::text("PONG"),
        "a watching connection idles on purpose"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_large_replies_costs_the_output_limit_not_their_sum() {
    const GETS: u32 = 200;
    let server = TestServer::start_with(&["--shards", "1", "--max-output-buffer-bytes", "8388608"]);
    let client = server.client().await;
    client.set("big", vec![b'x'; 1 << 20]).await.unwrap();
    let before = rss_kib(server.pid());
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let mut requests = BytesMut::new();
    for id in 1..=GETS {
        encode_request(
            &mut requests,
            id,
            &Command::Keys(KeyCommand::Get(Bytes::from_static(b"big"))),
        );
    }
    // 200 MiB of replies asked for at once, none read for a while.
    stream.write_all(&requests).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let grown = rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "the unread replies grew the server by {grown} KiB"
    );
    // Nothing was dropped: every reply comes once the client reads.
    let mut buf = BytesMut::new();
    for id in 1..=GETS {
        let (got, value) = read_reply(&mut stream, &mut buf).await.expect("a reply");
        assert_eq!(got, id);
        assert!(matches!(value, Value::Bytes(b) if b.len() == 1 << 20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mget_whose_reply_would_exceed_the_limit_is_refused_before_it_is_built() {
    let server = TestServer::start_with(&["--shards", "2", "--max-output-buffer-bytes", "8388608"]);
    let client = server.client().await;
    client.set("big", vec![b'x'; 1 << 20]).await.unwrap();
    client.set("small", "v").await.unwrap();
    let before = rss_kib(server.pid());
    let mut keys: Vec<&str> = vec!["big"; 1_000];
    keys.push("small");
    for routed in [true, false] {
        // Routed, the client splits by owner; plain, the server splits and gathers.
        let refused = if routed {
            client.mget(keys.clone()).await.map(|_| ())
        } else {
            let plain = support::plain_connection(&server.address).await;
            let keys = keys
                .iter()
                .map(|k| Bytes::copy_from_slice(k.as_bytes()))
                .collect();
            plain
                .request(Command::Keys(KeyCommand::MGet(keys)))
                .await
                .map(|_| ())
        };
        let error = refused.expect_err("a gigabyte of reply is refused");
        assert_eq!(
            error.server_code(),
            Some(ErrorCode::ReplyTooLarge),
            "{error}"
        );
    }
    let grown = rss_kib(server.pid()).saturating_sub(before);
    assert!(grown < 64 * 1024, "refusing grew the server by {grown} KiB");
    // Within the limit, the same command works.
    let values = client.mget(vec!["big", "big", "small"]).await.unwrap();
    assert_eq!(values.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_maxmemory_writes_that_add_data_are_refused_and_reads_and_deletes_go_on() {
    let server = TestServer::start_with(&["--shards", "2", "--maxmemory", "33554432"]);
    let client = server.client().await;
    let value = vec![b'x'; 256 << 10];
    let mut stored = Vec::new();
    let refused = loop {
        assert!(stored.len() < 1_000, "maxmemory never refused a write");
        let key = format!("k{}", stored.len());
        match client.set(key.clone(), value.clone()).await {
            Ok(_) => stored.push(key),
            Err(error) => break error,
        }
    };
    assert_eq!(refused.server_code(), Some(ErrorCode::Oom), "{refused}");
    // About the 32 MiB the node may hold: each shard refuses past its half.
    let held = stored.len() * value.len();
    assert!(
        (16 << 20..=40 << 20).contains(&held),
        "{held} bytes held at the refusal"
    );
    // Writes go on being refused once every shard holds its share (the other shard may
    // still have had room when the first refusal came): the node stays at maxmemory.
    let rss_before = rss_kib(server.pid());
    let mut extras = Vec::new();
    for i in 0..200 {
        if client.set(format!("extra{i}"), value.clone()).await.is_ok() {
            extras.push(format!("extra{i}"));
        }
    }
    let total = (stored.len() + extras.len()) * value.len();
    assert!(
        total <= (32 << 20) + 2 * value.len(),
        "{total} bytes accepted in all, over maxmemory and one value a shard"
    );
    assert!(
        rss_kib(server.pid()) < rss_before + 16 * 1024,
        "refused writes hold nothing"
    );
    // Reads and deletes go on, and a delete makes room again.
    assert_eq!(
        client
            .get(stored[0].clone())
            .await
            .unwrap()
            .map(|v| v.len()),
        Some(value.len())
    );
    assert_eq!(
        client.del(stored.clone()).await.unwrap(),
        stored.len() as u64
    );
    // Whichever shard "after" lands on has room once every key it held is gone.
    if !extras.is_empty() {
        client.del(extras).await.unwrap();
    }
    client.set("after", value.clone()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_past_the_output_hard_limit_closes_its_connection_only() {
    let server = TestServer::start_with(&["--shards", "1", "--max-output-buffer-bytes", "1048576"]);
    let client = server.client().await;
    let field = Bytes::from(vec![b'f'; 100 << 10]);
    let mut words = vec![Bytes::from_static(b"HSET"), Bytes::from_static(b"wide")];
    for i in 0..30 {
        words.push(Bytes::from(format!("field{i}")));
        words.push(field.clone());
    }
    client
        .call(Command::parse_words(&words).unwrap())
        .await
        .unwrap();
    // Whole-collection reads are measured first: 3 MB of fields against a 1 MiB limit is
    // a typed error, and the connection goes on.
    for read in ["HGETALL", "HVALS"] {
        let words = [Bytes::from(read), Bytes::from_static(b"wide")];
        let refused = client.call(Command::parse_words(&words).unwrap()).await;
        assert_eq!(
            refused.expect_err("refused").server_code(),
            Some(ErrorCode::ReplyTooLarge),
            "{read}"
        );
    }
    // One that is not (HMGET naming one big field 30 times) goes past twice the limit:
    // the reply is dropped, the client told, and only its connection closes.
    let mut hmget = vec![Bytes::from_static(b"HMGET"), Bytes::from_static(b"wide")];
    hmget.extend(std::iter::repeat_n(Bytes::from_static(b"field0"), 30));
    let plain = support::plain_connection(&server.address).await;
    let lost = plain
        .request(Command::parse_words(&hmget).unwrap())
        .await
        .expect_err("the connection closes");
    assert!(
        lost.to_string().contains("max-output-buffer-bytes"),
        "{lost}"
    );
    // Everyone else goes on, and a reply under the limit still works.
    let hlen = [Bytes::from_static(b"HLEN"), Bytes::from_static(b"wide")];
    assert_eq!(
        client
            .call(Command::parse_words(&hlen).unwrap())
            .await
            .unwrap(),
        Value::Int(30)
    );
    let info = client.info().await.unwrap();
    let closes = info
        .get("totals")
        .and_then(|t| t.get("output_limit_closes"))
        .and_then(Value::as_int);
    assert_eq!(closes, Some(1));
}
