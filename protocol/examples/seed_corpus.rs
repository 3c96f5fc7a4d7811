//! Writes the seed corpus for the fuzz targets: one file per golden request, plus framed
//! copies and a few hostile prefixes. Run `cargo run -p tessera-protocol --example seed_corpus`.

use bytes::{Bytes, BytesMut};
use std::path::Path;
use tessera_protocol::commands::hashes::{ExpireCondition, Finite, TimeUnit};
use tessera_protocol::commands::sorted_sets::{add_flags, Bound, Selection};
use tessera_protocol::commands::{
    End, HashCommand, ListCommand, SetCommand, SetOp, SortedSetCommand,
};
use tessera_protocol::geo::{GeoArea, GeoCommand, GeoNear, GeoPoint};
use tessera_protocol::{encode_request, Command, IdemCommand, SetArgs, SetCondition, SetExpiry};
use tessera_protocol::{
    AdminCommand, CounterCommand, DedupCommand, InventoryCommand, KeyCommand, PresenceCommand,
    VersionedCommand,
};

fn point(lat: f64, lng: f64) -> GeoPoint {
    GeoPoint::new(lat, lng).expect("a valid seed position")
}

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    let commands = vec![
        Command::Admin(AdminCommand::Ping(None)),
        Command::Admin(AdminCommand::Hello {
            version: 1,
            shard: Some(1),
            auth: None,
        }),
        Command::Admin(AdminCommand::Info),
        Command::Keys(KeyCommand::Get(b("user:1"))),
        Command::Keys(KeyCommand::Set(SetArgs {
            key: b("k"),
            value: b("value"),
            condition: SetCondition::IfAbsent,
            expiry: SetExpiry::In(60_000),
            get: true,
        })),
        Command::Keys(KeyCommand::Del(vec![b("a"), b("b")])),
        Command::Keys(KeyCommand::Expire {
            key: b("k"),
            seconds: 10,
            condition: Default::default(),
        }),
        Command::Keys(KeyCommand::IncrBy {
            key: b("n"),
            delta: -5,
        }),
        Command::Keys(KeyCommand::MGet(vec![b("a"), b("{tag}b")])),
        Command::Keys(KeyCommand::MSet(vec![(b("a"), b("1")), (b("b"), b("2"))])),
        Command::Dedup(DedupCommand::Check {
            key: b("imp:1"),
            ttl_ms: 3_600_000,
        }),
        Command::Counters(CounterCommand::Take {
            key: b("budget"),
            amount: 5,
            floor: -1,
        }),
        Command::Counters(CounterCommand::IdRange {
            key: b("ids"),
            size: 100,
        }),
        Command::Idem(IdemCommand::Begin {
            key: b("pay"),
            ttl_ms: 60_000,
            lease_ms: 5_000,
        }),
        Command::Idem(IdemCommand::Complete {
            key: b("pay"),
            token: 1,
            result: b("ok"),
        }),
        Command::Versioned(VersionedCommand::Set {
            key: b("spot"),
            value: b("held"),
            if_version: Some(0),
            ttl_ms: Some(900_000),
        }),
        Command::Inventory(InventoryCommand::Reserve {
            sku: b("{s}:milk"),
            qty: 2,
            ttl_ms: 60_000,
            id: Some(b("o-1")),
        }),
        Command::Inventory(InventoryCommand::Confirm {
            sku: b("{s}:milk"),
            id: b("o-1"),
        }),
        Command::Inventory(InventoryCommand::ReserveMulti {
            ttl_ms: 60_000,
            items: vec![(b("{s}:a"), 1), (b("{s}:b"), 2)],
        }),
        Command::Inventory(InventoryCommand::Set {
            sku: b("{s}:milk"),
            on_hand: 10,
            low: Some(2),
        }),
        Command::Presence(PresenceCommand::Watch(vec![b("u:1"), b("u:2")])),
        Command::Presence(PresenceCommand::Unwatch(vec![])),
        Command::Geo(GeoCommand::Upsert {
            index: b("drivers"),
            member: b("d:1"),
            at: point(52.52, 13.405),
            status: Some(b("available")),
            ttl_ms: Some(30_000),
            meta: Some(b("suv")),
        }),
        Command::Geo(GeoCommand::Near(GeoNear {
            index: b("drivers"),
            area: GeoArea {
                center: point(-89.99, 179.999),
                radius_m: 2_000,
            },
            k: 5,
            status: Some(b("available")),
            with_dist: true,
            with_meta: true,
            claim_ms: Some(15_000),
        })),
        Command::Geo(GeoCommand::Cells {
            index: b("drivers"),
            area: GeoArea {
                center: point(0.0, 0.0),
                radius_m: 5_000,
            },
            resolution: 7,
            status: None,
        }),
        Command::Hashes(HashCommand::Set {
            key: b("cart:{u1}"),
            pairs: vec![(b("sku:1"), b("2")), (b("note"), b(""))],
        }),
        Command::Hashes(HashCommand::Expire {
            key: b("session:9"),
            ttl: 1_500,
            unit: TimeUnit::Millis,
            condition: ExpireCondition::IfEarlier,
            fields: vec![b("token"), b("csrf")],
        }),
        Command::Hashes(HashCommand::IncrByFloat {
            key: b("trip:7"),
            field: b("fare"),
            delta: Finite::new(-0.25).expect("finite"),
        }),
        Command::SortedSets(SortedSetCommand::Add {
            key: b("lb:{game}"),
            flags: add_flags::XX | add_flags::GT | add_flags::CH,
            pairs: vec![(Finite::new(12.5).expect("finite"), b("ann"))],
        }),
        Command::SortedSets(SortedSetCommand::Range {
            key: b("jobs"),
            selection: Selection::Score {
                min: Bound {
                    score: Finite::new(f64::NEG_INFINITY).expect("not NaN"),
                    exclusive: false,
                },
                max: Bound {
                    score: Finite::new(1_700_000_000.0).expect("finite"),
                    exclusive: true,
                },
            },
            rev: true,
            limit: Some((0, 10)),
            with_scores: true,
        }),
        Command::Lists(ListCommand::Push {
            key: b("{jobs}pending"),
            end: End::Left,
            existing_only: false,
            elements: vec![b("job:1"), b("")],
        }),
        Command::Lists(ListCommand::Pos {
            key: b("l"),
            element: b("x"),
            rank: -2,
            count: Some(0),
            max_len: 50,
        }),
        Command::Lists(ListCommand::Move {
            source: b("{jobs}pending"),
            destination: b("{jobs}taken"),
            from: End::Right,
            to: End::Left,
        }),
        Command::Sets(SetCommand::Store {
            op: SetOp::Diff,
            destination: b("{u}d"),
            keys: vec![b("{u}a"), b("{u}b")],
        }),
        Command::Sets(SetCommand::Scan {
            key: b("s"),
            cursor: 42,
            pattern: Some(b("m[a-c]*")),
            count: 10,
        }),
    ];
    for dir in ["command_parser", "frame_decoder"] {
        std::fs::create_dir_all(root.join(dir))?;
    }
    for (i, command) in commands.iter().enumerate() {
        let mut body = BytesMut::new();
        command.encode(&mut body);
        std::fs::write(root.join(format!("command_parser/golden-{i:02}")), &body)?;
        let mut frame = BytesMut::new();
        encode_request(&mut frame, i as u32 + 1, command);
        encode_request(
            &mut frame,
            i as u32 + 100,
            &Command::Admin(AdminCommand::Ping(None)),
        );
        std::fs::write(root.join(format!("frame_decoder/golden-{i:02}")), &frame)?;
    }
    std::fs::write(
        root.join("command_parser/words-set"),
        b"SET key value NX PX 1500 GET",
    )?;
    std::fs::write(
        root.join("command_parser/words-geo-near"),
        b"GEO.NEAR drivers 52.52 13.405 5 RADIUS 2000 STATUS available WITHDIST CLAIM TTL 20",
    )?;
    std::fs::write(
        root.join("command_parser/words-geo-upsert"),
        b"GEO.UPSERT drivers d:9 -33.86 151.2 STATUS busy TTL 30 META van",
    )?;
    std::fs::write(
        root.join("command_parser/words-hexpire"),
        b"HEXPIRE session:9 10 GT FIELDS 2 token csrf",
    )?;
    std::fs::write(
        root.join("command_parser/words-zrange"),
        b"ZRANGE lb +inf (10 BYSCORE REV LIMIT 0 5 WITHSCORES",
    )?;
    std::fs::write(
        root.join("frame_decoder/huge-prefix"),
        [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0],
    )?;
    std::fs::write(root.join("frame_decoder/short-prefix"), [2, 0, 0, 0, 9, 9])?;
    resp_seeds(&root.join("resp_request"))
}

/// RESP requests as clients send them: multibulk (the first byte odd: authenticated),
/// inline lines with quotes, pipelines, and the malformed ones Redis's protocol tests send.
fn resp_seeds(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let multibulk = |words: &[&str]| {
        let mut out = format!("*{}\r\n", words.len());
        for word in words {
            out.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        out
    };
    let seeds: Vec<(&str, String)> = vec![
        (
            "set",
            format!("\x01{}", multibulk(&["SET", "k", "v", "EX", "10", "NX"])),
        ),
        (
            "pipeline",
            format!(
                "\x03{}{}",
                multibulk(&["INCR", "n"]),
                multibulk(&["GET", "n"])
            ),
        ),
        (
            "hset",
            format!("\x05{}", multibulk(&["HSET", "h", "f", "v", "g", "w"])),
        ),
        (
            "zadd",
            format!("\x07{}", multibulk(&["ZADD", "z", "1.5", "a", "+inf", "b"])),
        ),
        (
            "native",
            format!(
                "\x09{}",
                multibulk(&["RL.CHECK", "r", "LIMIT", "5", "WINDOW", "1000"])
            ),
        ),
        (
            "inline",
            "\x01set \"a b\" 'c\\'d' \"\\x41\\n\"\r\nGET a\n".into(),
        ),
        (
            "unauthenticated",
            format!("\x02{}", multibulk(&["AUTH", "pw"])),
        ),
        ("empty", "\x01\r\n*0\r\n*-1\r\nPING\r\n".into()),
        ("bad-count", "\x01*x\r\n".into()),
        ("bad-bulk", "\x01*1\r\n$-5\r\n".into()),
        ("not-dollar", "\x01*2\r\n$3\r\nGET\r\n:1\r\n".into()),
        ("unbalanced", "\x01set \"k v\r\n".into()),
        ("huge-count", "\x00*100000\r\n".into()),
        ("huge-bulk", "\x01*1\r\n$999999999\r\nabc".into()),
    ];
    for (name, seed) in seeds {
        std::fs::write(dir.join(name), seed.as_bytes())?;
    }
    Ok(())
}
