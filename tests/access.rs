//! Access control against a real server: passwords, ACL users and their rules, changes
//! reaching connected clients, and brute force slowed down.

mod support;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use support::TestServer;
use tessera_client::{Client, ClientConfig, Error};
use tessera_protocol::commands::admin::Credentials;
use tessera_protocol::{encode_request, AdminCommand, Command, ErrorCode, FrameDecoder, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn as_user(user: &str, password: &str) -> ClientConfig {
    ClientConfig {
        username: Some(user.into()),
        password: Some(password.into()),
        ..ClientConfig::default()
    }
}

fn code(result: Result<Value, Error>) -> Option<ErrorCode> {
    match result {
        Err(error) => error.server_code(),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

/// A raw connection that sends frames and reads replies in order.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    next_id: u32,
}

impl Raw {
    async fn open(address: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(address).await.unwrap(),
            buf: BytesMut::new(),
            next_id: 1,
        }
    }

    async fn send(&mut self, commands: &[Command]) {
        let mut out = BytesMut::new();
        for command in commands {
            encode_request(&mut out, self.next_id, command);
            self.next_id += 1;
        }
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next reply; `None` once the server closed.
    async fn reply(&mut self) -> Option<Value> {
        self.reply_with_id().await.map(|(_, value)| value)
    }

    /// The next reply and the request id it answers.
    async fn reply_with_id(&mut self) -> Option<(u32, Value)> {
        let decoder = FrameDecoder::default();
        loop {
            if let Some(frame) = decoder.decode(&mut self.buf).unwrap() {
                return Some((frame.id, Value::decode(frame.body).unwrap()));
            }
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf));
            match read.await.expect("server answers in time") {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

fn error_of(value: &Value) -> Option<ErrorCode> {
    match value {
        Value::Error(e) => e.known_code(),
        _ => None,
    }
}

#[tokio::test]
async fn requirepass_refuses_everything_until_authenticated() {
    let server = TestServer::start_with(&["--shards", "3", "--requirepass", "s3cret"]);
    let mut raw = Raw::open(&server.address).await;
    raw.send(&[
        support::command("GET k"),
        support::command("PING"),
        support::command("HELLO 2"),
        support::command("AUTH wrong"),
        support::command("AUTH s3cret"),
        support::command("SET k v"),
        support::command("ACL.WHOAMI"),
    ])
    .await;
    // A forwarded SET may be answered after later requests: read the replies by id.
    let mut replies = Vec::new();
    for _ in 0..7 {
        replies.push(raw.reply_with_id().await.unwrap());
    }
    replies.sort_by_key(|(id, _)| *id);
    let replies: Vec<Value> = replies.into_iter().map(|(_, value)| value).collect();
    assert_eq!(error_of(&replies[0]), Some(ErrorCode::NoAuth));
    assert_eq!(error_of(&replies[1]), Some(ErrorCode::NoAuth));
    assert_eq!(error_of(&replies[2]), Some(ErrorCode::NoAuth));
    assert_eq!(error_of(&replies[3]), Some(ErrorCode::WrongPass));
    assert_eq!(replies[4], Value::Ok);
    assert_eq!(replies[5], Value::Ok);
    assert_eq!(replies[6], Value::text("default"));

    // The client authenticates each of its per-shard connections in HELLO, so every
    // shard's keys work; without the password it cannot even connect.
    let config = ClientConfig {
        password: Some("s3cret".into()),
        ..ClientConfig::default()
    };
    let client = Client::connect_with(&server.address, config).await.unwrap();
    for i in 0..30 {
        client.set(format!("key:{i}"), "v").await.unwrap();
    }
    assert_eq!(client.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let refused = Client::connect(&server.address).await.err().unwrap();
    assert_eq!(refused.server_code(), Some(ErrorCode::NoAuth));
    let wrong = Client::connect_with(&server.address, as_user("default", "nope")).await;
    assert_eq!(
        wrong.err().unwrap().server_code(),
        Some(ErrorCode::WrongPass)
    );
}

#[tokio::test]
async fn users_get_only_their_commands_and_keys() {
    let server = TestServer::start_with(&[
        "--shards",
        "2",
        "--requirepass",
        "admin-pw",
        "--user",
        "reader on >r ~cache:* +@read",
        "--user",
        "app on >a allkeys +@all -@dangerous",
        "--user",
        "geo on >g ~fleet:* +@geo",
    ]);
    let reader = Client::connect_with(&server.address, as_user("reader", "r"))
        .await
        .unwrap();
    let app = Client::connect_with(&server.address, as_user("app", "a"))
        .await
        .unwrap();
    let admin = Client::connect_with(&server.address, as_user("default", "admin-pw"))
        .await
        .unwrap();
    app.set("cache:1", "hot").await.unwrap();
    app.set("user:1", "private").await.unwrap();
    assert_eq!(
        reader.get("cache:1").await.unwrap().as_deref(),
        Some(&b"hot"[..])
    );
    assert_eq!(
        code(reader.call(support::command("GET user:1")).await),
        Some(ErrorCode::NoPerm)
    );
    assert_eq!(
        code(reader.call(support::command("SET cache:1 x")).await),
        Some(ErrorCode::NoPerm)
    );
    // Every key of a multi-key command must be allowed.
    assert_eq!(
        code(reader.call(support::command("MGET cache:1 user:1")).await),
        Some(ErrorCode::NoPerm)
    );
    assert!(reader
        .call(support::command("MGET cache:1 cache:2"))
        .await
        .is_ok());
    // Dangerous and admin commands need their category.
    assert_eq!(
        code(app.call(support::command("FLUSHALL")).await),
        Some(ErrorCode::NoPerm)
    );
    assert_eq!(
        code(app.call(support::command("INFO")).await),
        Some(ErrorCode::NoPerm)
    );
    assert_eq!(
        code(app.call(support::command("ACL.SETUSER app +@all")).await),
        Some(ErrorCode::NoPerm)
    );
    assert_eq!(
        code(reader.call(support::command("ACL.LIST")).await),
        Some(ErrorCode::NoPerm)
    );
    // The handshake and WHOAMI are always allowed.
    assert_eq!(
        reader.call(support::command("PING")).await.unwrap(),
        Value::text("PONG")
    );
    assert_eq!(
        app.call(support::command("ACL.WHOAMI")).await.unwrap(),
        Value::text("app")
    );
    // A per-family category, over a geo index's name.
    let geo = Client::connect_with(&server.address, as_user("geo", "g"))
        .await
        .unwrap();
    assert!(geo
        .call(support::command("GEO.CREATE fleet:sf RES 9"))
        .await
        .is_ok());
    assert_eq!(
        code(geo.call(support::command("GEO.CREATE other RES 9")).await),
        Some(ErrorCode::NoPerm)
    );
    assert_eq!(
        code(geo.call(support::command("GET cache:1")).await),
        Some(ErrorCode::NoPerm)
    );
    assert!(admin.call(support::command("FLUSHALL")).await.is_ok());
    assert_eq!(reader.get("cache:1").await.unwrap(), None);
    let info = admin.call(support::command("INFO")).await.unwrap();
    let denied = info
        .get("totals")
        .and_then(|t| t.get("acl_denied"))
        .and_then(Value::as_int);
    assert_eq!(denied, Some(9));
}

#[tokio::test]
async fn acl_changes_reach_connected_clients() {
    let server = TestServer::start_with(&["--shards", "2", "--requirepass", "root"]);
    let admin = Client::connect_with(&server.address, as_user("default", "root"))
        .await
        .unwrap();
    assert_eq!(
        code(
            admin
                .call(support::command("ACL.SETUSER ops on >o +nosuchcommand"))
                .await
        ),
        Some(ErrorCode::Syntax)
    );
    admin
        .call(support::command("ACL.SETUSER ops on >o ~* +@read"))
        .await
        .unwrap();
    let ops = Client::connect_with(&server.address, as_user("ops", "o"))
        .await
        .unwrap();
    assert_eq!(
        code(ops.call(support::command("SET k v")).await),
        Some(ErrorCode::NoPerm)
    );
    admin
        .call(support::command("ACL.SETUSER ops +@write"))
        .await
        .unwrap();
    ops.call(support::command("SET k v")).await.unwrap();
    let list = admin.call(support::command("ACL.LIST")).await.unwrap();
    let Value::Array(lines) = list else {
        panic!("{list:?}")
    };
    let ops_line = lines
        .iter()
        .find_map(|line| match line {
            Value::Text(text) if text.starts_with("user ops") => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        ops_line.contains("+@read") && ops_line.contains("+@write"),
        "{ops_line}"
    );
    assert!(
        !ops_line.contains(">o"),
        "passwords are listed hashed: {ops_line}"
    );
    // A deleted user's connections are closed at their next request.
    assert_eq!(
        admin
            .call(support::command("ACL.DELUSER ops nobody"))
            .await
            .unwrap(),
        Value::Int(1)
    );
    assert!(ops.call(support::command("GET k")).await.is_err());
    assert_eq!(
        Client::connect_with(&server.address, as_user("ops", "o"))
            .await
            .err()
            .unwrap()
            .server_code(),
        Some(ErrorCode::WrongPass)
    );
    assert_eq!(
        code(admin.call(support::command("ACL.DELUSER default")).await),
        Some(ErrorCode::Syntax)
    );
}

#[tokio::test]
async fn failed_attempts_are_slowed_and_counted_while_others_are_served() {
    let server = TestServer::start_with(&["--shards", "1", "--requirepass", "right"]);
    let guesses: Vec<Command> = (0..6)
        .map(|i| {
            Command::Admin(AdminCommand::Auth {
                username: None,
                password: Bytes::from(format!("guess-{i}")),
            })
        })
        .collect();
    let mut attacker = Raw::open(&server.address).await;
    let started = Instant::now();
    attacker.send(&guesses).await;
    let client = Client::connect_with(&server.address, as_user("default", "right"))
        .await
        .unwrap();
    for _ in 0..6 {
        assert_eq!(
            error_of(&attacker.reply().await.unwrap()),
            Some(ErrorCode::WrongPass)
        );
        // Meanwhile another client on the same shard is answered at once.
        let ping = Instant::now();
        client.call(support::command("PING")).await.unwrap();
        assert!(ping.elapsed() < Duration::from_millis(500));
    }
    // Pipelining the guesses does not skip the waits: 50 + 100 + 200 + 400 + 800 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(1550),
        "{:?}",
        started.elapsed()
    );
    // HELLO with AUTH counts and waits the same way.
    let mut hello = Raw::open(&server.address).await;
    let hello_auth = |password: &str| {
        Command::Admin(AdminCommand::Hello {
            version: 2,
            shard: None,
            auth: Some(Credentials {
                username: Bytes::from_static(b"default"),
                password: Bytes::from(password.to_string()),
            }),
        })
    };
    hello.send(&[hello_auth("no"), hello_auth("right")]).await;
    assert_eq!(
        error_of(&hello.reply().await.unwrap()),
        Some(ErrorCode::WrongPass)
    );
    assert!(matches!(hello.reply().await, Some(Value::Map(_))));
    let info = client.call(support::command("INFO")).await.unwrap();
    let failures = info
        .get("totals")
        .and_then(|t| t.get("auth_failures"))
        .and_then(Value::as_int);
    assert_eq!(failures, Some(7));
}

#[tokio::test]
async fn acl_cat_lists_categories_and_their_commands() {
    let server = TestServer::start(1);
    let client = server.client().await;
    let Value::Array(categories) = client.call(support::command("ACL.CAT")).await.unwrap() else {
        panic!("ACL.CAT answers an array")
    };
    for wanted in ["read", "write", "admin", "dangerous", "geo", "sorted_sets"] {
        assert!(categories.contains(&Value::text(wanted)), "{wanted}");
    }
    let Value::Array(dangerous) = client
        .call(support::command("ACL.CAT @dangerous"))
        .await
        .unwrap()
    else {
        panic!("ACL.CAT dangerous answers an array")
    };
    assert!(dangerous.contains(&Value::text("flushall")));
    assert!(!dangerous.contains(&Value::text("get")));
    assert_eq!(
        code(client.call(support::command("ACL.CAT nosuch")).await),
        Some(ErrorCode::Syntax)
    );
    // With no password, every connection is the default user with every right.
    assert_eq!(
        client.call(support::command("ACL.WHOAMI")).await.unwrap(),
        Value::text("default")
    );
}

#[tokio::test]
async fn redis_clients_manage_users_with_acl_and_redis_categories() {
    let server = TestServer::start(2);
    let port = server.resp_port.expect("RESP is on");
    let open = |user: Option<(&str, &str)>| {
        let url = match user {
            Some((name, password)) => format!("redis://{name}:{password}@127.0.0.1:{port}/"),
            None => format!("redis://127.0.0.1:{port}/"),
        };
        async move {
            redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
        }
    };
    let mut admin = open(None).await.unwrap();
    let whoami: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(whoami, "default");
    let () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "cache",
            "on",
            ">pw",
            "~app:*",
            "+@string",
            "+@connection",
        ])
        .query_async(&mut admin)
        .await
        .unwrap();
    let users: Vec<String> = redis::cmd("ACL")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(
        users.iter().any(|u| u.starts_with("user cache on")),
        "{users:?}"
    );
    let strings: Vec<String> = redis::cmd("ACL")
        .arg(&["CAT", "string"])
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(strings.contains(&"get".to_string()) && strings.contains(&"append".to_string()));
    assert!(
        !strings.contains(&"del".to_string()),
        "DEL is @keyspace, as in Redis"
    );

    let mut cache = open(Some(("cache", "pw"))).await.unwrap();
    let () = redis::cmd("SET")
        .arg(&["app:1", "v"])
        .query_async(&mut cache)
        .await
        .unwrap();
    let denied = |result: redis::RedisResult<redis::Value>| {
        let error = result.expect_err("refused");
        assert_eq!(error.code(), Some("NOPERM"), "{error}");
    };
    denied(
        redis::cmd("SET")
            .arg(&["other:1", "v"])
            .query_async(&mut cache)
            .await,
    );
    denied(
        redis::cmd("HSET")
            .arg(&["app:h", "f", "v"])
            .query_async(&mut cache)
            .await,
    );
    denied(
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async(&mut cache)
            .await,
    );
    // The commands the RESP port answers itself are @admin, as in Redis.
    denied(
        redis::cmd("CONFIG")
            .arg(&["SET", "slowlog-log-slower-than", "0"])
            .query_async(&mut cache)
            .await,
    );
    denied(
        redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut cache)
            .await,
    );
    let name: Option<String> = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query_async(&mut cache)
        .await
        .unwrap();
    assert_eq!(name, None, "a connection's own CLIENT commands stay open");
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg(&["GET", "slowlog-max-len"])
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(config, ["slowlog-max-len", "128"]);
    assert!(open(Some(("cache", "wrong"))).await.is_err());

    let deleted: i64 = redis::cmd("ACL")
        .arg(&["DELUSER", "cache"])
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(open(Some(("cache", "pw"))).await.is_err());
}
