//! The registry's own checks: every command round-trips, truncates and parses as documented.

use super::admin::Credentials;
use super::keys::set_flags;
use super::*;
use bytes::BufMut;

mod samples;
use samples::samples;

fn words(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

#[test]
fn slot_ranges_are_checked_on_the_wire_and_as_text() {
    let words = |line: &str| -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    };
    for bad in [
        "CLUSTER.DROP 5 4",
        "CLUSTER.DROP 0 16384",
        "CLUSTER.DROP 1",
        "CLUSTER.MIGRATE 2 1",
        "CLUSTER.IMPORT SOME 1 2 x",
    ] {
        assert!(Command::parse_words(&words(bad)).is_err(), "{bad}");
    }
    let parsed = Command::parse_words(&words("CLUSTER.IMPORT more 3 7 data")).unwrap();
    assert_eq!(
        parsed,
        Command::Cluster(ClusterCommand::Import {
            reset: false,
            ranges: vec![(3, 7)],
            entries: Bytes::from_static(b"data"),
        })
    );
    // A range past the last slot is refused on the wire too.
    let mut wire = BytesMut::new();
    Command::<Bytes>::Cluster(ClusterCommand::Drop(vec![(1, 2)])).encode(&mut wire);
    let last = wire.len() - 2;
    wire[last..].copy_from_slice(&16384u16.to_le_bytes());
    assert!(Command::decode(wire.freeze()).is_err());
}

fn encoded(command: &Command) -> Bytes {
    let mut buf = BytesMut::new();
    command.encode(&mut buf);
    buf.freeze()
}

#[test]
fn every_command_is_found_by_its_name_in_any_case() {
    for spec in COMMANDS {
        for spelled in [spec.name.to_string(), spec.name.to_ascii_lowercase()] {
            let found = spec_by_name(&spelled).map(|found| found.opcode);
            assert_eq!(found, Some(spec.opcode), "{spelled}");
        }
    }
    assert!(spec_by_name("NO.SUCH.COMMAND").is_none());
    assert!(spec_by_name(&"G".repeat(1000)).is_none());
}

#[test]
fn table_is_ordered_unique_and_covers_every_variant() {
    for pair in COMMANDS.windows(2) {
        assert!(
            pair[0].opcode < pair[1].opcode,
            "{} out of order",
            pair[1].name
        );
    }
    let covered: std::collections::BTreeSet<u16> = samples().iter().map(Command::opcode).collect();
    let table: std::collections::BTreeSet<u16> = COMMANDS.iter().map(|s| s.opcode).collect();
    assert_eq!(
        covered, table,
        "every table row has a sample and vice versa"
    );
}

#[test]
fn table_index_points_at_the_commands_own_row() {
    for command in samples() {
        assert_eq!(
            COMMANDS[command.table_index()].opcode,
            command.opcode(),
            "{command:?}"
        );
    }
}

#[test]
fn every_command_round_trips() {
    for command in samples() {
        assert_eq!(Command::decode(encoded(&command)).unwrap(), command);
    }
}

#[test]
fn borrowed_decode_matches_owned_decode() {
    for command in samples() {
        let body = encoded(&command);
        let borrowed = Command::<&[u8]>::decode(&body[..]).unwrap();
        assert_eq!(borrowed.to_owned_bytes(), command);
    }
}

#[test]
fn every_truncation_fails_without_panicking() {
    for command in samples() {
        let whole = encoded(&command);
        for cut in 0..whole.len() {
            assert!(
                Command::decode(whole.slice(..cut)).is_err(),
                "{command:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut buf = BytesMut::new();
    Command::Keys(KeyCommand::Get(Bytes::from_static(b"k"))).encode(&mut buf);
    buf.put_u8(0);
    assert_eq!(
        Command::decode(buf.freeze()),
        Err(DecodeError::TrailingBytes(1))
    );
}

#[test]
fn set_byte_layout() {
    let bytes = encoded(&Command::parse_words(&words("SET k v NX EX 10")).unwrap());
    assert_eq!(
        &bytes[..],
        &[
            0x11,
            0x00,
            1,
            b'k',
            1,
            b'v',
            set_flags::NX | set_flags::TTL,
            0x90,
            0x4e
        ]
    );
}

#[test]
fn get_byte_layout() {
    assert_eq!(
        &encoded(&Command::Keys(KeyCommand::Get(Bytes::from_static(b"k"))))[..],
        &[0x10, 0x00, 1, b'k']
    );
}

#[test]
fn unknown_opcode_is_typed() {
    let err = Command::decode(Bytes::from_static(&[0xff, 0x7f])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownCommand);
}

#[test]
fn conflicting_set_flags_are_refused() {
    let body = Bytes::from_static(&[0x11, 0x00, 1, b'k', 1, b'v', set_flags::NX | set_flags::XX]);
    assert!(matches!(
        Command::decode(body),
        Err(DecodeError::Invalid(_))
    ));
    let zero_ttl = Bytes::from_static(&[0x11, 0x00, 1, b'k', 1, b'v', set_flags::TTL, 0]);
    assert_eq!(Command::decode(zero_ttl), Err(DecodeError::InvalidExpire));
}

#[test]
fn oversize_key_is_refused_with_its_code() {
    let mut buf = BytesMut::new();
    Command::Keys(KeyCommand::Get(Bytes::from(vec![b'x'; MAX_KEY_BYTES + 1]))).encode(&mut buf);
    assert_eq!(
        Command::decode(buf.freeze()).unwrap_err().code(),
        ErrorCode::KeyTooLarge
    );
}

#[test]
fn words_parse_like_redis_cli() {
    assert_eq!(
        Command::parse_words(&words("set k v ex 10 get")).unwrap(),
        Command::Keys(KeyCommand::Set(SetArgs {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            condition: SetCondition::Always,
            expiry: SetExpiry::In(10_000),
            get: true,
        }))
    );
    assert_eq!(
        Command::parse_words(&words("hello 1 shard 2")).unwrap(),
        Command::Admin(AdminCommand::Hello {
            version: 1,
            shard: Some(2),
            auth: None,
        })
    );
    assert_eq!(
        Command::parse_words(&words("hello 1 auth ops pw shard 2")).unwrap(),
        Command::Admin(AdminCommand::Hello {
            version: 1,
            shard: Some(2),
            auth: Some(Credentials {
                username: Bytes::from_static(b"ops"),
                password: Bytes::from_static(b"pw"),
            }),
        })
    );
    assert_eq!(
        Command::parse_words(&words("auth pw")).unwrap(),
        Command::Admin(AdminCommand::Auth {
            username: None,
            password: Bytes::from_static(b"pw"),
        })
    );
    assert!(Command::parse_words(&words("hello auth ops")).is_err());
    assert_eq!(
        Command::parse_words(&words("counter.take budget 5 floor -10")).unwrap(),
        Command::Counters(CounterCommand::Take {
            key: Bytes::from_static(b"budget"),
            amount: 5,
            floor: -10
        })
    );
    assert_eq!(
        Command::parse_words(&words("dedup.multi 60 a b")).unwrap(),
        Command::Dedup(DedupCommand::CheckMany {
            ttl_ms: 60_000,
            keys: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        })
    );
    let parsed = Command::parse_words(&words(
        "rl.check c limit 10 window 1000 limit 100 window 60000 cost 2",
    ))
    .unwrap();
    let Command::Limits(LimitCommand::Check(limit)) = parsed else {
        panic!("RL.CHECK parses to RlCheck")
    };
    assert_eq!(limit.cost, 2);
    assert_eq!(limit.tiers.as_slice().len(), 2);
    let err = |line| Command::parse_words(&words(line)).unwrap_err().known_code();
    assert_eq!(err("rl.check c limit 10"), Some(ErrorCode::Syntax));
    assert_eq!(err("rl.check c limit 0 window 10"), Some(ErrorCode::Syntax));
    assert_eq!(
        err("rl.check c limit 1 window 1 limit 1 window 2 algo gcra"),
        Some(ErrorCode::Syntax)
    );
    assert_eq!(
        err("rl.check c limit 1 window 1 burst 3"),
        Some(ErrorCode::Syntax)
    );
    assert_eq!(err("dedup k 0"), Some(ErrorCode::InvalidExpire));
    assert_eq!(err("counter.take k -1"), Some(ErrorCode::NotInteger));
    assert_eq!(err("counter.take k 1 floor"), Some(ErrorCode::Syntax));
    assert_eq!(err("id.range k 0"), Some(ErrorCode::Syntax));
    assert_eq!(err("nosuch a"), Some(ErrorCode::UnknownCommand));
    assert_eq!(err("get"), Some(ErrorCode::Syntax));
    assert_eq!(err("set k v nx xx"), Some(ErrorCode::Syntax));
    assert_eq!(err("set k v ex 0"), Some(ErrorCode::InvalidExpire));
    assert_eq!(err("set k v ex 1 px 5"), Some(ErrorCode::Syntax));
    assert_eq!(err("incrby k ten"), Some(ErrorCode::NotInteger));
    assert_eq!(err("mset a 1 b"), Some(ErrorCode::Syntax));
}

/// Text lines for commands of every family, each one the text parser accepts.
const TEXT_LINES: &[&str] = &[
    "PING hello",
    "HELLO 3 SHARD 1 AUTH ops pw",
    "AUTH ops pw",
    "ACL.SETUSER ops on >pw ~* +@all",
    "GET k",
    "SET k v NX PX 500 GET",
    "DEL a b c",
    "EXPIRE k 10 GT",
    "INCRBY k -3",
    "MSET a 1 b 2",
    "RL.CHECK api LIMIT 10 WINDOW 1000 LIMIT 100 WINDOW 60000 COST 2",
    "RL.PEEK api LIMIT 10 WINDOW 1000 ALGO gcra BURST 3",
    "DEDUP order:1 60",
    "DEDUP.MULTI 60 a b",
    "COUNTER.TAKE budget 5 FLOOR -10",
    "ID.RANGE orders 100",
    "IDEM.BEGIN pay:1 60 LEASE 5000",
    "IDEM.COMPLETE pay:1 7 result",
    "VSET doc body IFVERSION 3 EX 60",
    "INV.SET sku1 ON_HAND 10 LOW 2",
    "INV.RESERVE sku1 2 TTL 30 ID cart7",
    "INV.CONFIRM sku1#cart7",
    "INV.RESERVE.MULTI TTL 30 a 1 b 2",
    "TL.PUSH feed 41 SCORE 5 CAP 100",
    "TL.FANOUT 41 SCORE 5 CAP 10 f1 f2",
    "TL.MERGE LIMIT 10 f1 f2",
    "PRESENCE.BEAT u1 TTL 30 GRACE 500 META web",
    "PRESENCE.WATCH u1 u2",
    "GEO.CREATE drivers RES 9",
    "GEO.UPSERT drivers d1 52.5 13.4 STATUS free TTL 30 META car",
    "GEO.NEAR drivers 52.5 13.4 5 RADIUS 1000 WITHDIST CLAIM TTL 15",
    "GEO.COUNT drivers WITHIN 52.5 13.4 500",
    "GEO.CELLS drivers 52.5 13.4 1000 RES 7",
    "HSET h f1 v1 f2 v2",
    "HEXPIRE h 10 NX FIELDS 2 f1 f2",
    "HRANDFIELD h 3 WITHVALUES",
    "ZADD z NX CH 1 a 2 b",
    "ZRANGE z 0 10 BYSCORE LIMIT 0 5 WITHSCORES",
    "ZRANK z a WITHSCORE",
    "CLUSTER.JOIN 3 127.0.0.1:7000 127.0.0.1:6000 2 -",
    "CLUSTER.IMPORT more 3 7 data",
    "CLUSTER.MIGRATE 2 0 100",
    "LPUSH l a b c",
    "LPOS l a RANK 1 COUNT 2 MAXLEN 10",
    "LMOVE a b LEFT RIGHT",
    "SINTERCARD 2 a b LIMIT 3",
    "SSCAN s 0 MATCH a* COUNT 10",
    "SCAN 0 MATCH k* COUNT 100 TYPE string",
    "COPY a b REPLACE",
    "GETEX k PXAT 99999999999",
    "SETBIT k 7 1",
    "TX SET a 1 ; INCRBY a 2",
    "LMPOP 2 a b LEFT COUNT 3",
    "BLMPOP 0.5 2 a b RIGHT",
    "BZMPOP 1 1 z MAX COUNT 2",
    "SUBSCRIBE news sport",
    "ZUNIONSTORE out 2 a b WEIGHTS 1 2 AGGREGATE MAX",
    "ZRANGESTORE out z 0 -1 REV",
    "GEOADD g NX 13.4 52.5 a 13.5 52.6 b",
    "GEOSEARCH g FROMLONLAT 13.4 52.5 BYRADIUS 5 KM ASC COUNT 3 ANY",
    "SLOWLOG.GET 10",
    "LATENCY.RESET command",
];

#[test]
fn text_parses_the_same_borrowed_and_owned_and_the_wire_takes_what_text_takes() {
    for line in TEXT_LINES {
        let owned_words = words(line);
        let owned = Command::parse_words(&owned_words).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        let borrowed_words: Vec<&[u8]> = owned_words.iter().map(|w| &w[..]).collect();
        let borrowed = Command::<&[u8]>::parse_words(&borrowed_words).unwrap();
        assert_eq!(borrowed.to_owned_bytes(), owned, "{line}");
        // The RESP port runs what the text parser gives it without a trip through the
        // wire decoder, so the decoder must accept all of it unchanged.
        assert_eq!(Command::decode(encoded(&owned)), Ok(owned), "{line}");
    }
}
