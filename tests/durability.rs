//! Durability against real server processes: `kill -9` at random moments under load from
//! many clients, and a disk that fails, then a restart on the same folder must hold every
//! acknowledged write.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use support::persist::{call, command, int_of, kill_9, start};
use tessera_client::Client;
use tessera_protocol::Value;

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
    let (client, plain) = if writer.is_multiple_of(2) {
        (Client::connect(&address).await.ok(), None)
    } else {
        let config = tessera_client::ClientConfig::default();
        let plain = tessera_client::Connection::open(&address, None, &config);
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

/// Awaits `future`, failing the test (naming `what`) if it takes over 30 s.
async fn within<F: std::future::Future>(future: F, what: &str) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 30 s"))
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
            let prober = within(Client::connect(&server.address), "a prober connects")
                .await
                .unwrap();
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
        let reader = within(Client::connect(&server.address), "the reader connects")
            .await
            .unwrap();
        assert_eq!(
            within(call(&reader, &["GET", "before"]), "a read while failing").await,
            Value::Bytes("kept".into()),
            "reads go on"
        );
        let info = format!(
            "{:?}",
            within(reader.info(), "INFO while failing").await.unwrap()
        );
        assert!(
            info.contains("cannot write the log"),
            "INFO says what failed: {info}"
        );
        // Room again: the held write lands and is acknowledged, and writes are accepted.
        prlimit_file_size(server.pid(), "unlimited:unlimited");
        let acked = within(writer, "the held write, once there is room")
            .await
            .unwrap();
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
