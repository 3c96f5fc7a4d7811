//! Durability against real server processes: `kill -9` at random moments under load from
//! many clients, then a restart on the same folder must hold every acknowledged write.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use support::TestServer;
use tessera_client::Client;
use tessera_protocol::{Command, Value};

fn command(words: &[&str]) -> Command {
    let words: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    Command::parse_words(&words).expect("test commands parse")
}

async fn call(client: &Client, words: &[&str]) -> Value {
    client
        .call(command(words))
        .await
        .unwrap_or_else(|error| panic!("{words:?}: {error}"))
}

fn start(dir: &std::path::Path, shards: usize, fsync: &str) -> TestServer {
    TestServer::start_with(&[
        "--shards",
        &shards.to_string(),
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--appendfsync",
        fsync,
    ])
}

fn kill_9(mut server: TestServer) {
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
}

/// The families a writer cycles through, one write per step.
const FAMILIES: u64 = 6;

/// What one writer was told: the steps the server acknowledged, and the one it sent last
/// without an answer (lost with the process, or applied and never acknowledged).
#[derive(Debug, Default, Clone)]
struct Acked {
    steps: u64,
    in_flight: Option<u64>,
}

/// One writer's step `step` in round `round`: a write to one family, on keys only it uses.
fn step_words(round: usize, writer: usize, step: u64) -> Vec<String> {
    let p = format!("r{round}:w{writer}");
    let s = step.to_string();
    let words: Vec<String> = match step % FAMILIES {
        0 => vec!["SET".into(), format!("{p}:s"), s],
        1 => vec!["INCRBY".into(), format!("{p}:n"), "1".into()],
        2 => vec!["HSET".into(), format!("{p}:h"), "last".into(), s],
        3 => vec!["ZADD".into(), format!("{p}:z"), s.clone(), format!("m{s}")],
        4 => vec!["VSET".into(), format!("{p}:v"), s],
        _ => vec!["DEDUP".into(), format!("{p}:d{s}"), "3600".into()],
    };
    words
}

/// Writes steps until `stop`, recording each acknowledgement; stops at the first error
/// (the server was killed). Odd writers use one plain connection, not routed to shards,
/// so their writes run on another shard than the one that answers them: the answer must
/// wait for the owner's log as the owner's own replies do.
async fn write_until_killed(
    address: String,
    round: usize,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> Acked {
    let mut acked = Acked::default();
    let (client, plain) = if writer % 2 == 0 {
        (Client::connect(&address).await.ok(), None)
    } else {
        let plain = tessera_client::Connection::open(&address, None, Duration::from_secs(5));
        (None, plain.await.ok())
    };
    if client.is_none() && plain.is_none() {
        return acked;
    }
    let mut step = 0;
    while !stop.load(Ordering::Relaxed) {
        let words = step_words(round, writer, step);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        acked.in_flight = Some(step);
        let reply = match (&client, &plain) {
            (Some(client), _) => client.call(command(&words)).await,
            (_, Some(plain)) => plain.request(command(&words)).await,
            _ => unreachable!("one of them is open"),
        };
        match reply {
            Err(tessera_client::Error::Server(error)) => panic!("{words:?} refused: {error:?}"),
            Ok(_) => {
                acked.steps = step + 1;
                acked.in_flight = None;
            }
            Err(_) => return acked,
        }
        step += 1;
    }
    acked
}

/// Steps below `acked.steps` of `family`, and whether the in-flight step is one of them.
fn counted(acked: &Acked, family: u64) -> (u64, bool) {
    let done = (0..acked.steps).filter(|s| s % FAMILIES == family).count() as u64;
    let maybe = acked.in_flight.is_some_and(|s| s % FAMILIES == family);
    (done, maybe)
}

fn last_of(acked: &Acked, family: u64) -> Option<u64> {
    (0..acked.steps).rev().find(|s| s % FAMILIES == family)
}

fn int_of(value: &Value) -> i64 {
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

/// Checks one writer's round against what it was told.
async fn check_writer(client: &Client, round: usize, writer: usize, acked: &Acked) {
    let p = format!("r{round}:w{writer}");
    let in_flight_is = |family: u64| acked.in_flight.filter(|s| s % FAMILIES == family);
    // Values read back: the last acknowledged write, or the one in flight.
    for (family, words) in [
        (0, vec!["GET".to_string(), format!("{p}:s")]),
        (
            2,
            vec!["HGET".to_string(), format!("{p}:h"), "last".to_string()],
        ),
    ] {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let got = call(client, &words).await;
        let got = (got != Value::Nil).then(|| int_of(&got) as u64);
        let allowed = [
            last_of(acked, family),
            in_flight_is(family).or(last_of(acked, family)),
        ];
        assert!(
            allowed.contains(&got),
            "{p} {words:?}: read {got:?}, acknowledged {allowed:?}"
        );
    }
    // Counts: every acknowledged write, and perhaps the one in flight.
    for (family, words) in [
        (1, vec!["GET".to_string(), format!("{p}:n")]),
        (3, vec!["ZCARD".to_string(), format!("{p}:z")]),
    ] {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let got = int_of(&call(client, &words).await) as u64;
        let (done, maybe) = counted(acked, family);
        assert!(
            got == done || (maybe && got == done + 1),
            "{p} {words:?}: {got}, acknowledged {done} (one more in flight: {maybe})"
        );
    }
    let (done, maybe) = counted(acked, 4);
    let version = match call(client, &["VGET", &format!("{p}:v")]).await {
        Value::Nil => 0,
        Value::Map(fields) => fields
            .iter()
            .find(|(k, _)| *k == Value::text("version"))
            .map_or(-1, |(_, v)| int_of(v)) as u64,
        other => panic!("VGET answered {other:?}"),
    };
    assert!(
        version == done || (maybe && version == done + 1),
        "{p}: version {version}, acknowledged {done} (one more in flight: {maybe})"
    );
    // Every acknowledged first sighting is remembered: seeing it again is not new.
    for step in (0..acked.steps).filter(|s| s % FAMILIES == 5) {
        let seen = call(client, &["DEDUP", &format!("{p}:d{step}"), "3600"]).await;
        assert_eq!(
            seen,
            Value::Bool(false),
            "{p}: dedup key of step {step} was forgotten"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_under_load() {
    kill_9_rounds("always", 20).await;
}

/// Under everysec a reply still waits for its record's write, so a crash of the process
/// (the page cache survives it) loses nothing acknowledged: the loss window is zero. Only
/// a crash of the machine can lose the last second, which no process-level test can show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everysec_loses_nothing_acknowledged_to_kill_9() {
    kill_9_rounds("everysec", 6).await;
}

async fn kill_9_rounds(fsync: &str, rounds: usize) {
    const WRITERS: usize = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x7e55e7a);
    let mut history: Vec<Vec<Acked>> = Vec::new();
    for round in 0..rounds {
        let shards = 1 + round % 3;
        let server = start(dir.path(), shards, fsync);
        let client = server.client().await;
        if let Some(previous) = history.last() {
            for (writer, acked) in previous.iter().enumerate() {
                check_writer(&client, round - 1, writer, acked).await;
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                tokio::spawn(write_until_killed(
                    server.address.clone(),
                    round,
                    writer,
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..600))).await;
        if round % 4 == 1 {
            // A snapshot under way when the process dies must leave the previous state
            // (the older snapshot and the log) in charge.
            let _ = client.snapshot().await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..80))).await;
        }
        kill_9(server);
        stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        for writer in writers {
            acked.push(writer.await.expect("writer task"));
        }
        let writes: u64 = acked.iter().map(|a| a.steps).sum();
        assert!(writes > 0, "round {round}: no write was acknowledged");
        history.push(acked);
    }
    // Every round's acknowledged writes, after the last crash, on yet another shard count.
    let server = start(dir.path(), 2, fsync);
    let client = server.client().await;
    for (round, acked) in history.iter().enumerate() {
        for (writer, acked) in acked.iter().enumerate() {
            check_writer(&client, round, writer, acked).await;
        }
    }
}

const SKUS: usize = 1000;
const STOCK: i64 = 3;

fn sku(i: usize) -> String {
    format!("sku:{i}")
}

/// What a shopper was told before the crash: units sold per SKU, and a confirm sent but
/// never answered (it may or may not have happened).
#[derive(Default)]
struct Sales {
    sold: std::collections::HashMap<usize, i64>,
    unanswered: Option<(usize, i64)>,
}

async fn shop_until_killed(client: Client, shopper: u64) -> Sales {
    use tessera_client::Reservation;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(shopper);
    let mut sales = Sales::default();
    let ttl = Duration::from_millis(400);
    for _ in 0..400 {
        let i = rng.random_range(0..SKUS);
        let qty = rng.random_range(1..=2u64);
        let Ok(reservation) = client.inv_reserve(sku(i), qty, ttl, None).await else {
            return sales;
        };
        let Reservation::Held { handle, .. } = reservation else {
            continue;
        };
        match rng.random_range(0..10) {
            0..=4 => {
                sales.unanswered = Some((i, qty as i64));
                match client.inv_confirm(&handle).await {
                    Ok(()) => *sales.sold.entry(i).or_default() += qty as i64,
                    Err(error) if error.server_code().is_some() => {} // lapsed first
                    Err(_) => return sales,
                }
                sales.unanswered = None;
            }
            5..=7 => match client.inv_release(&handle).await {
                Err(error) if error.server_code().is_none() => return sales,
                _ => {}
            },
            _ => {} // abandoned: its units come back at the TTL, crash or not
        }
    }
    sales
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_sale_never_oversells_and_loses_no_sale() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), 3, "always");
    let setup = server.client().await;
    for i in 0..SKUS {
        setup.inv_set(sku(i), STOCK, None).await.unwrap();
    }
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect(&server.address).await.unwrap());
    }
    let shoppers: Vec<_> = (0..200u64)
        .map(|shopper| {
            let client = clients[shopper as usize % clients.len()].clone();
            tokio::spawn(shop_until_killed(client, shopper))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    kill_9(server);
    let mut sold = std::collections::HashMap::<usize, i64>::new();
    let mut unanswered = std::collections::HashMap::<usize, i64>::new();
    for shopper in shoppers {
        let sales = shopper.await.expect("shopper task");
        for (i, qty) in sales.sold {
            *sold.entry(i).or_default() += qty;
        }
        if let Some((i, qty)) = sales.unanswered {
            *unanswered.entry(i).or_default() += qty;
        }
    }
    assert!(
        sold.values().sum::<i64>() > 0,
        "some sales were acknowledged"
    );

    let server = start(dir.path(), 3, "always");
    let client = server.client().await;
    for i in 0..SKUS {
        let stock = client
            .inv_get(sku(i))
            .await
            .unwrap()
            .expect("every SKU survives");
        assert!(
            0 <= stock.reserved && stock.reserved <= stock.on_hand,
            "{}: {stock:?}",
            sku(i)
        );
    }
    // Reservations that lapsed while the server was down, or lapse now, give their units
    // back; every acknowledged sale stays sold.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..SKUS {
        let stock = client.inv_get(sku(i)).await.unwrap().unwrap();
        assert_eq!(stock.reserved, 0, "{}: {stock:?}", sku(i));
        let sold_there = STOCK - stock.on_hand;
        let acknowledged = sold.get(&i).copied().unwrap_or(0);
        let maybe = unanswered.get(&i).copied().unwrap_or(0);
        assert!(
            acknowledged <= sold_there && sold_there <= acknowledged + maybe,
            "{}: {sold_there} sold, {acknowledged} acknowledged, {maybe} unanswered",
            sku(i)
        );
        assert_eq!(sold_there + stock.available + stock.reserved, STOCK);
    }
}

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

/// Fields that count down with the clock (lease and reset times) differ between two
/// reads a moment apart; rounding them to a minute keeps what a restart must keep.
fn scrub_clock_fields(value: &mut Value) {
    if let Value::Map(fields) = value {
        for (name, field) in fields.iter_mut() {
            let counts_down = matches!(name, Value::Text(t) if t.contains("_ms") || t.contains("ttl") || t.contains("reset"));
            if let (true, Value::Int(ms)) = (counts_down, &*field) {
                *field = Value::Int((ms + 30_000) / 60_000);
            }
            scrub_clock_fields(field);
        }
    }
    if let Value::Array(items) = value {
        items.iter_mut().for_each(scrub_clock_fields);
    }
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

fn prlimit_file_size(pid: u32, limit: &str) {
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}")])
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit --fsize={limit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_refuses_writes_serves_reads_and_loses_nothing() {
    for fsync in ["always", "everysec"] {
        let dir = tempfile::tempdir().unwrap();
        let server = start(dir.path(), 1, fsync);
        let client = server.client().await;
        call(&client, &["SET", "before", "kept"]).await;
        // The log segment may grow to 64 KiB; past that every write to it fails.
        prlimit_file_size(server.pid(), "65536:unlimited");
        let value = "x".repeat(1024);
        let writer = {
            let (address, value) = (server.address.clone(), value.clone());
            tokio::spawn(async move {
                let client = Client::connect(&address).await.unwrap();
                let mut acked = Vec::new();
                for i in 0..200 {
                    match client
                        .call(command(&["SET", &format!("big:{i}"), &value]))
                        .await
                    {
                        Ok(Value::Ok) => acked.push(i),
                        // Refused up front once the log failed.
                        Err(tessera_client::Error::Server(_)) => break,
                        other => panic!("SET big:{i}: {other:?}"),
                    }
                }
                acked
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let refusal = loop {
            assert!(std::time::Instant::now() < deadline, "writes get refused");
            // A write that lands just before the failure is held with the failed one, and so
            // is everything after it on its connection: each probe gets its own connection.
            let prober = Client::connect(&server.address).await.unwrap();
            let probe = prober.call(command(&["SET", "probe", "x"]));
            let got = tokio::time::timeout(Duration::from_millis(200), probe).await;
            if let Ok(Err(tessera_client::Error::Server(error))) = got {
                break error;
            }
        };
        assert_eq!(
            refusal.known_code(),
            Some(tessera_protocol::ErrorCode::Misconf),
            "{refusal:?}"
        );
        let reader = Client::connect(&server.address).await.unwrap();
        assert_eq!(
            call(&reader, &["GET", "before"]).await,
            Value::Bytes("kept".into()),
            "reads go on"
        );
        let info = format!("{:?}", reader.info().await.unwrap());
        assert!(
            info.contains("cannot write the log"),
            "INFO says what failed: {info}"
        );
        // Room again: the held write lands and is acknowledged, and writes are accepted.
        prlimit_file_size(server.pid(), "unlimited:unlimited");
        let acked = writer.await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !matches!(
            reader.call(command(&["SET", "probe", "y"])).await,
            Ok(Value::Ok)
        ) {
            assert!(
                std::time::Instant::now() < deadline,
                "writes are accepted again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kill_9(server);
        let server = start(dir.path(), 1, fsync);
        let client = server.client().await;
        assert_eq!(
            call(&client, &["GET", "before"]).await,
            Value::Bytes("kept".into())
        );
        assert_eq!(
            call(&client, &["GET", "probe"]).await,
            Value::Bytes("y".into())
        );
        for i in acked {
            assert_eq!(
                call(&client, &["GET", &format!("big:{i}")]).await,
                Value::Bytes(value.clone().into()),
                "acknowledged big:{i}"
            );
        }
    }
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
