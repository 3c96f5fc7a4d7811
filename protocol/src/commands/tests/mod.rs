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
