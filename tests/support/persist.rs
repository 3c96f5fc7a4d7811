//! Helpers for the tests of servers that keep their data on disk.

use std::time::Duration;

use bytes::Bytes;
use tessera_client::Client;
use tessera_protocol::{Command, Value};

use super::TestServer;

/// A command from its words, as the CLI would send it.
pub fn command(words: &[&str]) -> Command {
    let words: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    Command::parse_words(&words).expect("test commands parse")
}

/// Sends a command by its words; panics on a link failure or an error reply.
pub async fn call(client: &Client, words: &[&str]) -> Value {
    client
        .call(command(words))
        .await
        .unwrap_or_else(|error| panic!("{words:?}: {error}"))
}

/// Starts a server keeping its data in `dir`.
pub fn start(dir: &std::path::Path, shards: usize, fsync: &str) -> TestServer {
    TestServer::start_with(&[
        "--shards",
        &shards.to_string(),
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--appendfsync",
        fsync,
    ])
}

/// `kill -9`, then waits for the process to be gone.
pub fn kill_9(mut server: TestServer) {
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
}

/// An integer reply, or a number written as bytes; `NIL` is 0.
pub fn int_of(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(-1),
        Value::Nil => 0,
        other => panic!("not a number: {other:?}"),
    }
}

/// Fields that count down with the clock (lease and reset times) differ between two
/// reads a moment apart; whether each is still running is what a restart must keep.
pub fn scrub_clock_fields(value: &mut Value) {
    if let Value::Map(fields) = value {
        for (name, field) in fields.iter_mut() {
            let counts_down = matches!(name, Value::Text(t) if t.contains("_ms") || t.contains("ttl") || t.contains("reset"));
            if let (true, Value::Int(ms)) = (counts_down, &*field) {
                // Whether it is still running, not its value: any rounding of a countdown
                // has a boundary that two reads a moment apart can fall either side of.
                *field = Value::Bool(*ms > 0);
            }
            scrub_clock_fields(field);
        }
    }
    if let Value::Array(items) = value {
        items.iter_mut().for_each(scrub_clock_fields);
    }
}
