//! Recovery from the data folder, against real server processes: torn and damaged logs,
//! other shard counts, deadlines that lapse while the server is down, snapshots taken
//! under writes, and geo indexes.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::persist::{call, int_of, kill_9, scrub_clock_fields, start};
use support::TestServer;
use tessera_client::Client;
use tessera_protocol::Value;

/// The one shard's folder of a one-shard server's data folder.
fn shard_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let current = std::fs::read_to_string(dir.join("CURRENT")).expect("CURRENT");
    let generation = current.split_whitespace().nth(1).expect("a generation");
    dir.join(format!("gen-{generation}")).join("shard-0")
}

/// The log segment holding records, and where each record starts in it.
fn records_of(dir: &std::path::Path) -> (std::path::PathBuf, Vec<usize>) {
    let mut segments: Vec<_> = std::fs::read_dir(shard_dir(dir))
        .expect("shard folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tlog"))
        .collect();
    segments.sort();
    for segment in segments {
        let data = std::fs::read(&segment).expect("segment");
        let (mut at, mut starts) = (16, Vec::new());
        while at + 12 <= data.len() {
            starts.push(at);
            let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            at += 12 + len;
        }
        if !starts.is_empty() {
            return (segment, starts);
        }
    }
    panic!("no segment holds records");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Ten keys set one by one on a one-shard server, then a clean stop.
async fn ten_keys(dir: &std::path::Path) {
    let mut server = start(dir, 1, "always");
    let client = server.client().await;
    for k in 0..10 {
        call(&client, &["SET", &format!("k{k}"), &format!("v{k}")]).await;
    }
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

async fn present(client: &Client) -> Vec<usize> {
    let mut keys = Vec::new();
    for k in 0..10 {
        if call(client, &["GET", &format!("k{k}")]).await != Value::Nil {
            keys.push(k);
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_torn_anywhere_in_its_last_record_loses_only_that_record() {
    let pristine = tempfile::tempdir().unwrap();
    ten_keys(pristine.path()).await;
    let (segment, starts) = records_of(pristine.path());
    assert_eq!(starts.len(), 10, "one record per SET");
    let full = std::fs::metadata(&segment).unwrap().len() as usize;
    let last = *starts.last().unwrap();
    for cut in last + 1..full {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), copy.path());
        let (torn, _) = records_of(copy.path());
        let file = std::fs::OpenOptions::new().write(true).open(&torn).unwrap();
        file.set_len(cut as u64).unwrap();
        drop(file);
        let server = start(copy.path(), 1, "always");
        let client = server.client().await;
        assert_eq!(
            present(&client).await,
            (0..9).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        // The log goes on after the cut: a write now survives the next restart.
        call(&client, &["SET", "after", "cut"]).await;
        kill_9(server);
        let server = start(copy.path(), 1, "always");
        let client = server.client().await;
        assert_eq!(
            call(&client, &["GET", "after"]).await,
            Value::Bytes("cut".into())
        );
    }
}

/// Runs the server to completion on a folder it must refuse; returns its exit code and
/// what it wrote to stderr.
fn refused_start(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(support::binary("tessera-server"))
        .args(["--port", "0", "--shards", "1", "--dir"])
        .arg(dir)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("server runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_before_the_end_stops_the_start_unless_repair_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    ten_keys(dir.path()).await;
    let (segment, starts) = records_of(dir.path());
    let mut data = std::fs::read(&segment).unwrap();
    let damaged_at = starts[4];
    data[damaged_at + 14] ^= 0x10; // one bit of the fifth record's body
    std::fs::write(&segment, &data).unwrap();

    let (code, stderr) = refused_start(dir.path(), &[]);
    assert_ne!(code, Some(0), "the server must not start on a damaged log");
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains(name) && stderr.contains(&format!("offset {damaged_at}")),
        "the refusal names the file and offset: {stderr}"
    );
    assert!(
        stderr.contains("--repair-log"),
        "and says how to go on: {stderr}"
    );

    let server = TestServer::start_with(&[
        "--shards",
        "1",
        "--dir",
        dir.path().to_str().unwrap(),
        "--repair-log",
    ]);
    let client = server.client().await;
    assert_eq!(
        present(&client).await,
        vec![0, 1, 2, 3],
        "cut at the damage"
    );
}

/// Keys of every family, each with a deadline, for the shard-count moves.
fn family_key_writes(i: usize) -> Vec<Vec<String>> {
    let w = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let k = |name: &str| format!("{name}:{i}");
    vec![
        w(&["SET", &k("s"), &format!("v{i}"), "PX", "600000"]),
        w(&["INCRBY", &k("n"), &i.to_string()]),
        w(&["EXPIRE", &k("n"), "600"]),
        w(&["HSET", &k("h"), "f", &i.to_string()]),
        w(&["HPEXPIRE", &k("h"), "600000", "FIELDS", "1", "f"]),
        w(&["ZADD", &k("z"), &i.to_string(), "m"]),
        w(&["TL.PUSH", &k("tl"), &(i + 1).to_string()]),
        w(&["VSET", &k("v"), "x"]),
        w(&["INV.SET", &k("sku"), "ON_HAND", "5"]),
        w(&["INV.RESERVE", &k("sku"), "2", "TTL", "600", "ID", "o"]),
        w(&["DEDUP", &k("d"), "600"]),
        w(&["IDEM.BEGIN", &k("op"), "600"]),
        w(&["PRESENCE.BEAT", &k("u"), "TTL", "600"]),
        w(&[
            "RL.CHECK",
            &k("rl"),
            "LIMIT",
            "10",
            "WINDOW",
            "600000",
            "COST",
            "3",
        ]),
    ]
}

/// What every family key reads now, with its TTL rounded to a minute.
async fn family_key_reads(client: &Client, i: usize) -> Vec<Value> {
    let k = |name: &str| format!("{name}:{i}");
    let mut reads = Vec::new();
    for words in [
        vec!["GET".to_string(), k("s")],
        vec!["GET".to_string(), k("n")],
        vec!["HGETALL".to_string(), k("h")],
        vec![
            "ZRANGE".to_string(),
            k("z"),
            "0".into(),
            "-1".into(),
            "WITHSCORES".into(),
        ],
        vec!["TL.RANGE".to_string(), k("tl")],
        vec!["VGET".to_string(), k("v")],
        vec!["INV.GET".to_string(), k("sku")],
        vec!["IDEM.GET".to_string(), k("op")],
        vec![
            "RL.PEEK".to_string(),
            k("rl"),
            "LIMIT".into(),
            "10".into(),
            "WINDOW".into(),
            "600000".into(),
        ],
    ] {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut value = call(client, &words).await;
        scrub_clock_fields(&mut value);
        reads.push(value);
    }
    for key in [k("s"), k("n")] {
        let ttl = int_of(&call(client, &["TTL", &key]).await);
        reads.push(Value::Int((ttl + 30) / 60));
    }
    let ttl = call(client, &["HTTL", &k("h"), "FIELDS", "1", "f"]).await;
    reads.push(Value::Bool(matches!(&ttl, Value::Array(t) if matches!(t[..], [Value::Int(s)] if (500..=600).contains(&s)))));
    reads.push(call(client, &["DEDUP", &k("d"), "600"]).await);
    reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_on_another_shard_count_keeps_every_key_and_deadline() {
    const KEYS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 1, "everysec");
    let client = server.client().await;
    for i in 0..KEYS {
        for words in family_key_writes(i) {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let reply = call(&client, &words).await;
            assert!(!matches!(reply, Value::Error(_)), "{words:?}: {reply:?}");
        }
    }
    let mut before = Vec::new();
    for i in 0..KEYS {
        before.push(family_key_reads(&client, i).await);
    }
    // The dedup reads above wrote nothing new; what follows must read the same.
    let keys = client.dbsize().await.unwrap();
    kill_9(server);
    for shards in [3, 2, 1] {
        let server = start(dir.path(), shards, "everysec");
        let client = server.client().await;
        assert_eq!(client.dbsize().await.unwrap(), keys, "at {shards} shards");
        for (i, expected) in before.iter().enumerate() {
            assert_eq!(
                &family_key_reads(&client, i).await,
                expected,
                "key set {i} at {shards} shards"
            );
        }
        kill_9(server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_lapsed_while_the_server_was_down_has_lapsed_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "always");
    let client = server.client().await;
    call(&client, &["SET", "short", "x", "PX", "700"]).await;
    call(&client, &["SET", "long", "x", "EX", "600"]).await;
    call(&client, &["INV.SET", "sku", "ON_HAND", "5"]).await;
    call(
        &client,
        &["INV.RESERVE", "sku", "3", "TTL", "1", "ID", "lapses"],
    )
    .await;
    call(
        &client,
        &["INV.RESERVE", "sku", "1", "TTL", "600", "ID", "stays"],
    )
    .await;
    call(&client, &["IDEM.BEGIN", "op", "1"]).await;
    call(&client, &["HSET", "h", "a", "1", "b", "2"]).await;
    call(&client, &["HPEXPIRE", "h", "700", "FIELDS", "1", "a"]).await;
    kill_9(server);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let server = start(dir.path(), 2, "always");
    let client = server.client().await;
    assert_eq!(call(&client, &["EXISTS", "short"]).await, Value::Int(0));
    assert_eq!(call(&client, &["EXISTS", "long"]).await, Value::Int(1));
    let stock = client.inv_get("sku").await.unwrap().unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available),
        (5, 1, 4),
        "{stock:?}"
    );
    // The record lapsed while the server was down: the operation starts afresh.
    let begin = call(&client, &["IDEM.BEGIN", "op", "60"]).await;
    assert!(format!("{begin:?}").contains("\"new\""), "{begin:?}");
    assert_eq!(
        call(&client, &["HKEYS", "h"]).await,
        Value::Array(vec![Value::Bytes("b".into())])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_under_writes_replaces_the_log_before_it_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "everysec");
    let client = server.client().await;
    for i in 0..2_000 {
        call(&client, &["SET", &format!("base:{i}"), &i.to_string()]).await;
    }
    assert_eq!(client.lastsave().await.unwrap(), 0, "no snapshot yet");
    // Writers keep incrementing while the snapshot is cut.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (address, stop) = (server.address.clone(), stop.clone());
            tokio::spawn(async move {
                let client = Client::connect(&address).await.unwrap();
                let mut acked = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let reply = call(&client, &["INCRBY", &format!("count:{w}"), "1"]).await;
                    acked = int_of(&reply);
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.snapshot().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while client.lastsave().await.unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the snapshot completes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for writer in writers {
        acked.push(writer.await.unwrap());
    }
    // Each shard's folder now holds its snapshot and only the log after it.
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let generation = current.split_whitespace().nth(1).unwrap().to_string();
    for shard in 0..2 {
        let folder = dir
            .path()
            .join(format!("gen-{generation}"))
            .join(format!("shard-{shard}"));
        let names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let snapshots: Vec<&String> = names.iter().filter(|n| n.ends_with(".tsnap")).collect();
        assert_eq!(snapshots.len(), 1, "{names:?}");
        let number: u64 = snapshots[0][5..25].parse().unwrap();
        for name in names.iter().filter(|n| n.ends_with(".tlog")) {
            let segment: u64 = name[4..24].parse().unwrap();
            assert!(
                segment >= number,
                "segment {name} is covered by snapshot {number}"
            );
        }
    }
    kill_9(server);
    let server = start(dir.path(), 2, "everysec");
    let client = server.client().await;
    for i in (0..2_000).step_by(97) {
        assert_eq!(
            call(&client, &["GET", &format!("base:{i}")]).await,
            Value::Bytes(i.to_string().into())
        );
    }
    for (w, acked) in acked.iter().enumerate() {
        let count = int_of(&call(&client, &["GET", &format!("count:{w}")]).await);
        assert_eq!(count, *acked, "counter {w}");
    }
    assert!(
        client.lastsave().await.unwrap() > 0,
        "the loaded snapshot counts as the last save"
    );
}

/// What GEO.GET says of a member, without the fields that move with the clock.
async fn driver_view(client: &Client, member: &str) -> Value {
    let mut view = call(client, &["GEO.GET", "drivers", member]).await;
    if let Value::Map(fields) = &mut view {
        fields.retain(|(name, _)| *name != Value::text("age_ms"));
    }
    scrub_clock_fields(&mut view);
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_members_claims_and_moves_survive_kill_9_and_shard_count_changes() {
    const DRIVERS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 3, "always");
    let client = server.client().await;
    call(&client, &["GEO.CREATE", "drivers", "RES", "9"]).await;
    // Drivers spread over several cities, so partitions (and shards) differ; some move
    // between cities, changing shards, some get claimed, some confirmed, some leave.
    let city = |i: usize| {
        [
            (52.52, 13.40),
            (48.85, 2.35),
            (40.41, -3.70),
            (51.50, -0.12),
        ][i % 4]
    };
    for i in 0..DRIVERS {
        let (lat, lng) = city(i);
        let (lat, lng) = (lat + (i as f64) * 1e-4, lng + (i as f64) * 1e-4);
        let member = format!("d{i}");
        let words = [
            "GEO.UPSERT",
            "drivers",
            &member,
            &lat.to_string(),
            &lng.to_string(),
            "TTL",
            "600",
            "META",
            &format!("car-{i}"),
        ];
        call(&client, &words).await;
    }
    for i in (0..DRIVERS).step_by(5) {
        let (lat, lng) = city(i + 1);
        let member = format!("d{i}");
        call(
            &client,
            &[
                "GEO.UPSERT",
                "drivers",
                &member,
                &lat.to_string(),
                &lng.to_string(),
            ],
        )
        .await;
    }
    for i in (1..DRIVERS).step_by(7) {
        call(
            &client,
            &["GEO.CLAIM", "drivers", &format!("d{i}"), "TTL", "600"],
        )
        .await;
    }
    for i in (1..DRIVERS).step_by(14) {
        call(&client, &["GEO.CONFIRM", "drivers", &format!("d{i}")]).await;
    }
    for i in (3..DRIVERS).step_by(11) {
        call(&client, &["GEO.REMOVE", "drivers", &format!("d{i}")]).await;
    }
    let mut before = Vec::new();
    for i in 0..DRIVERS {
        before.push(driver_view(&client, &format!("d{i}")).await);
    }
    // Half the views were saved by a snapshot, the rest only by the log after it.
    client.snapshot().await.unwrap();
    while client.lastsave().await.unwrap() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in (2..DRIVERS).step_by(9) {
        let (lat, lng) = city(i + 2);
        call(
            &client,
            &[
                "GEO.UPSERT",
                "drivers",
                &format!("d{i}"),
                &lat.to_string(),
                &lng.to_string(),
            ],
        )
        .await;
        before[i] = driver_view(&client, &format!("d{i}")).await;
    }
    let count = call(&client, &["GEO.COUNT", "drivers"]).await;
    let near = call(
        &client,
        &["GEO.NEAR", "drivers", "48.85", "2.35", "10", "WITHMETA"],
    )
    .await;
    kill_9(server);
    for shards in [3, 2, 4] {
        let server = start(dir.path(), shards, "always");
        let client = server.client().await;
        assert_eq!(
            call(&client, &["GEO.COUNT", "drivers"]).await,
            count,
            "at {shards} shards"
        );
        for (i, expected) in before.iter().enumerate() {
            let member = format!("d{i}");
            assert_eq!(
                &driver_view(&client, &member).await,
                expected,
                "{member} at {shards} shards"
            );
        }
        if shards == 3 {
            let again = call(
                &client,
                &["GEO.NEAR", "drivers", "48.85", "2.35", "10", "WITHMETA"],
            )
            .await;
            assert_eq!(again, near, "the same nearest drivers");
        }
        // The directory follows: every member command still finds its driver.
        let claimed = call(&client, &["GEO.RELEASE", "drivers", "d1"]).await;
        assert_eq!(claimed, Value::Ok);
        call(&client, &["GEO.CLAIM", "drivers", "d1", "TTL", "600"]).await;
        before[1] = driver_view(&client, "d1").await;
        kill_9(server);
    }
}
