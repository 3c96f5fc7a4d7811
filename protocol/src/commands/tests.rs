//! The registry's own checks: every command round-trips, truncates and parses as documented.

use super::admin::Credentials;
use super::keys::set_flags;
use super::*;
use crate::geo::{GeoArea, GeoNear, GeoPoint};
use bytes::BufMut;

fn words(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn score(value: f64) -> hashes::Finite {
    hashes::Finite::new(value).unwrap()
}

fn bound(value: f64, exclusive: bool) -> sorted_sets::Bound {
    sorted_sets::Bound {
        score: score(value),
        exclusive,
    }
}

fn samples() -> Vec<Command> {
    [
        core_samples(),
        native_samples(),
        stock_and_social_samples(),
        geo_samples(),
        hash_samples(),
        sorted_set_samples(),
        cluster_samples(),
    ]
    .concat()
}

/// Cluster commands.
fn cluster_samples() -> Vec<Command> {
    use crate::commands::cluster::Member;
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Cluster(ClusterCommand::Myself),
        Command::Cluster(ClusterCommand::Create(vec![
            Member {
                id: 1,
                bus: k("127.0.0.1:17379"),
                addr: k("127.0.0.1:7379"),
                shards: 4,
            },
            Member {
                id: 2,
                bus: k("10.0.0.2:17379"),
                addr: k("10.0.0.2:7379"),
                shards: 1,
            },
        ])),
        Command::Cluster(ClusterCommand::Slots),
        Command::Cluster(ClusterCommand::Info),
        Command::Cluster(ClusterCommand::KeySlot(k("{user:42}.cart"))),
        Command::Cluster(ClusterCommand::Join(Member {
            id: 4,
            bus: k("127.0.0.1:17382"),
            addr: k("127.0.0.1:7382"),
            shards: 2,
        })),
        Command::Cluster(ClusterCommand::Migrate {
            to: 4,
            ranges: vec![(0, 99), (16383, 16383)],
        }),
        Command::Cluster(ClusterCommand::Import {
            reset: true,
            ranges: vec![(5, 5)],
            entries: k("framed entries"),
        }),
        Command::Cluster(ClusterCommand::Drop(vec![(10, 20)])),
        Command::Cluster(ClusterCommand::Forget(3)),
        Command::Cluster(ClusterCommand::Replicate(2)),
        Command::Cluster(ClusterCommand::Sync {
            session: 0,
            chunk: 0,
        }),
        Command::Cluster(ClusterCommand::Pull {
            run: 77,
            offset: 4096,
        }),
    ]
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

/// Admin and key commands.
fn core_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Admin(AdminCommand::Ping(None)),
        Command::Admin(AdminCommand::Ping(Some(k("hi")))),
        Command::Admin(AdminCommand::Hello {
            version: 1,
            shard: None,
            auth: None,
        }),
        Command::Admin(AdminCommand::Hello {
            version: 1,
            shard: Some(3),
            auth: None,
        }),
        Command::Admin(AdminCommand::Hello {
            version: 1,
            shard: None,
            auth: Some(Credentials {
                username: k("ops"),
                password: k("s3cret"),
            }),
        }),
        Command::Admin(AdminCommand::Auth {
            username: None,
            password: k("s3cret"),
        }),
        Command::Admin(AdminCommand::Auth {
            username: Some(k("ops")),
            password: k("s3cret"),
        }),
        Command::Admin(AdminCommand::AclWhoami),
        Command::Admin(AdminCommand::AclSetUser {
            username: k("ops"),
            rules: vec![k("on"), k(">pw"), k("~cache:*"), k("+@read")],
        }),
        Command::Admin(AdminCommand::AclDelUser(vec![k("ops"), k("old")])),
        Command::Admin(AdminCommand::AclList),
        Command::Admin(AdminCommand::AclCat(None)),
        Command::Admin(AdminCommand::AclCat(Some(k("geo")))),
        Command::Admin(AdminCommand::Info),
        Command::Admin(AdminCommand::DbSize),
        Command::Admin(AdminCommand::FlushAll),
        Command::Admin(AdminCommand::Snapshot),
        Command::Admin(AdminCommand::LastSave),
        Command::Keys(KeyCommand::Get(k("a"))),
        Command::Keys(KeyCommand::Set(SetArgs {
            key: k("a"),
            value: k("v"),
            condition: SetCondition::IfAbsent,
            expiry: SetExpiry::In(10_000),
            get: true,
        })),
        Command::Keys(KeyCommand::Set(SetArgs {
            key: k("a"),
            value: k(""),
            condition: SetCondition::IfPresent,
            expiry: SetExpiry::Keep,
            get: false,
        })),
        Command::Keys(KeyCommand::Del(vec![k("a"), k("b")])),
        Command::Keys(KeyCommand::Exists(vec![k("a")])),
        Command::Keys(KeyCommand::Expire {
            key: k("a"),
            seconds: -5,
        }),
        Command::Keys(KeyCommand::PExpire {
            key: k("a"),
            millis: 1500,
        }),
        Command::Keys(KeyCommand::Ttl(k("a"))),
        Command::Keys(KeyCommand::PTtl(k("a"))),
        Command::Keys(KeyCommand::Persist(k("a"))),
        Command::Keys(KeyCommand::IncrBy {
            key: k("n"),
            delta: i64::MIN,
        }),
        Command::Keys(KeyCommand::DecrBy {
            key: k("n"),
            delta: 7,
        }),
        Command::Keys(KeyCommand::MGet(vec![k("a"), k("b"), k("c")])),
        Command::Keys(KeyCommand::MSet(vec![(k("a"), k("1")), (k("b"), k("2"))])),
    ]
}

/// Rate limits, dedup, counters, idempotency and versioned values.
fn native_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Limits(LimitCommand::Check(RateLimit {
            key: k("client:1"),
            algorithm: Algorithm::Sliding,
            cost: 1,
            burst: 0,
            tiers: Tiers::new(&[
                Tier {
                    limit: 10,
                    window_ms: 1000,
                },
                Tier {
                    limit: 1000,
                    window_ms: 3_600_000,
                },
            ])
            .unwrap(),
        })),
        Command::Limits(LimitCommand::Peek(RateLimit {
            key: k("client:1"),
            algorithm: Algorithm::Gcra,
            cost: 2,
            burst: 5,
            tiers: Tiers::new(&[Tier {
                limit: 100,
                window_ms: 60_000,
            }])
            .unwrap(),
        })),
        Command::Limits(LimitCommand::Reset(k("client:1"))),
        Command::Idem(IdemCommand::Begin {
            key: k("pay:9"),
            ttl_ms: 86_400_000,
            lease_ms: 5000,
        }),
        Command::Idem(IdemCommand::Complete {
            key: k("pay:9"),
            token: 1,
            result: k("charged"),
        }),
        Command::Idem(IdemCommand::Get(k("pay:9"))),
        Command::Versioned(VersionedCommand::Get(k("spot:17"))),
        Command::Versioned(VersionedCommand::Set {
            key: k("spot:17"),
            value: k("reserved"),
            if_version: Some(0),
            ttl_ms: Some(900_000),
        }),
        Command::Versioned(VersionedCommand::Set {
            key: k("trip:5"),
            value: k("matching"),
            if_version: None,
            ttl_ms: None,
        }),
        Command::Dedup(DedupCommand::Check {
            key: k("imp:1"),
            ttl_ms: 3_600_000,
        }),
        Command::Dedup(DedupCommand::CheckMany {
            ttl_ms: 1000,
            keys: vec![k("a"), k("b")],
        }),
        Command::Counters(CounterCommand::Take {
            key: k("budget"),
            amount: 5,
            floor: -10,
        }),
        Command::Counters(CounterCommand::Put {
            key: k("budget"),
            amount: 100,
        }),
        Command::Counters(CounterCommand::IdRange {
            key: k("ids"),
            size: 1000,
        }),
    ]
}

/// Inventory, timelines and presence.
fn stock_and_social_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Inventory(InventoryCommand::Set {
            sku: k("{s1}:milk"),
            on_hand: 40,
            low: Some(5),
        }),
        Command::Inventory(InventoryCommand::Store(k("s1"))),
        Command::Timelines(TimelineCommand::Push {
            key: k("home:1"),
            item: Cursor {
                score: 900,
                id: 900,
            },
            cap: None,
        }),
        Command::Timelines(TimelineCommand::Fanout {
            item: Cursor { score: -5, id: 77 },
            cap: Some(800),
            keys: vec![k("home:1"), k("home:2")],
        }),
        Command::Timelines(TimelineCommand::Range {
            key: k("home:1"),
            before: Some(Cursor { score: 10, id: 10 }),
            after: Some(Cursor { score: 1, id: 1 }),
            limit: 20,
        }),
        Command::Timelines(TimelineCommand::Merge {
            limit: 50,
            before: None,
            keys: vec![k("home:1"), k("celeb:9")],
        }),
        Command::Timelines(TimelineCommand::Remove {
            key: k("home:1"),
            id: 900,
        }),
        Command::Timelines(TimelineCommand::Len(k("home:1"))),
        Command::Presence(PresenceCommand::Beat {
            user: k("u:1"),
            ttl_ms: 30_000,
            grace_ms: 0,
            meta: Some(k("eu/ios")),
        }),
        Command::Presence(PresenceCommand::Get(vec![k("u:1"), k("u:2")])),
        Command::Presence(PresenceCommand::Leave(k("u:1"))),
        Command::Presence(PresenceCommand::Watch(vec![k("u:1"), k("u:2")])),
        Command::Presence(PresenceCommand::Unwatch(vec![k("u:2")])),
        Command::Presence(PresenceCommand::Unwatch(vec![])),
        Command::Timelines(TimelineCommand::Trim {
            key: k("home:1"),
            keep: 100,
        }),
        Command::Inventory(InventoryCommand::Adjust {
            sku: k("{s1}:milk"),
            delta: -3,
        }),
        Command::Inventory(InventoryCommand::Get(k("{s1}:milk"))),
        Command::Inventory(InventoryCommand::Reserve {
            sku: k("{s1}:milk"),
            qty: 2,
            ttl_ms: 600_000,
            id: Some(k("order-9")),
        }),
        Command::Inventory(InventoryCommand::Confirm {
            sku: k("{s1}:milk"),
            id: k("order-9"),
        }),
        Command::Inventory(InventoryCommand::Release {
            sku: k("{s1}:milk"),
            id: k("r1"),
        }),
        Command::Inventory(InventoryCommand::ReserveMulti {
            ttl_ms: 600_000,
            items: vec![(k("{s1}:milk"), 1), (k("{s1}:eggs"), 12)],
        }),
    ]
}

/// Geo.
fn geo_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Geo(GeoCommand::Create {
            index: k("drivers"),
            resolution: 10,
        }),
        Command::Geo(GeoCommand::Upsert {
            index: k("drivers"),
            member: k("d:1"),
            at: GeoPoint::new(52.52, 13.405).unwrap(),
            status: Some(k("available")),
            ttl_ms: Some(30_000),
            meta: Some(k("car")),
        }),
        Command::Geo(GeoCommand::Near(GeoNear {
            index: k("drivers"),
            area: GeoArea {
                center: GeoPoint::new(-33.8688, 151.2093).unwrap(),
                radius_m: 2_000,
            },
            k: 5,
            status: Some(k("available")),
            with_dist: true,
            with_meta: false,
            claim_ms: Some(10_000),
        })),
        Command::Geo(GeoCommand::Claim {
            index: k("drivers"),
            member: k("d:1"),
            ttl_ms: 15_000,
        }),
        Command::Geo(GeoCommand::Confirm {
            index: k("drivers"),
            member: k("d:1"),
        }),
        Command::Geo(GeoCommand::Release {
            index: k("drivers"),
            member: k("d:1"),
        }),
        Command::Geo(GeoCommand::Remove {
            index: k("drivers"),
            member: k("d:1"),
        }),
        Command::Geo(GeoCommand::Get {
            index: k("drivers"),
            member: k("d:1"),
        }),
        Command::Geo(GeoCommand::Count {
            index: k("drivers"),
            area: Some(GeoArea {
                center: GeoPoint::new(0.0, 179.9999).unwrap(),
                radius_m: 500,
            }),
            status: None,
        }),
        Command::Geo(GeoCommand::Cells {
            index: k("drivers"),
            area: GeoArea {
                center: GeoPoint::new(40.0, -74.0).unwrap(),
                radius_m: 3_000,
            },
            resolution: 7,
            status: Some(k("available")),
        }),
    ]
}

/// Hashes.
fn hash_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Hashes(HashCommand::Set {
            key: k("h"),
            pairs: vec![(k("f"), k("v")), (k("g"), k(""))],
        }),
        Command::Hashes(HashCommand::SetNx {
            key: k("h"),
            field: k("f"),
            value: k("v"),
        }),
        Command::Hashes(HashCommand::Get {
            key: k("h"),
            field: k("f"),
        }),
        Command::Hashes(HashCommand::MGet {
            key: k("h"),
            fields: vec![k("f"), k("g")],
        }),
        Command::Hashes(HashCommand::Del {
            key: k("h"),
            fields: vec![k("f")],
        }),
        Command::Hashes(HashCommand::GetAll(k("h"))),
        Command::Hashes(HashCommand::Keys(k("h"))),
        Command::Hashes(HashCommand::Vals(k("h"))),
        Command::Hashes(HashCommand::Len(k("h"))),
        Command::Hashes(HashCommand::Exists {
            key: k("h"),
            field: k("f"),
        }),
        Command::Hashes(HashCommand::IncrBy {
            key: k("h"),
            field: k("n"),
            delta: -7,
        }),
        Command::Hashes(HashCommand::IncrByFloat {
            key: k("h"),
            field: k("x"),
            delta: hashes::Finite::new(-2.5).unwrap(),
        }),
        Command::Hashes(HashCommand::StrLen {
            key: k("h"),
            field: k("f"),
        }),
        Command::Hashes(HashCommand::Expire {
            key: k("h"),
            ttl: 30,
            unit: hashes::TimeUnit::Seconds,
            condition: hashes::ExpireCondition::IfLater,
            fields: vec![k("f"), k("g")],
        }),
        Command::Hashes(HashCommand::Expire {
            key: k("h"),
            ttl: 0,
            unit: hashes::TimeUnit::Millis,
            condition: hashes::ExpireCondition::Always,
            fields: vec![k("f")],
        }),
        Command::Hashes(HashCommand::Ttl {
            key: k("h"),
            unit: hashes::TimeUnit::Seconds,
            fields: vec![k("f")],
        }),
        Command::Hashes(HashCommand::Ttl {
            key: k("h"),
            unit: hashes::TimeUnit::Millis,
            fields: vec![k("f")],
        }),
        Command::Hashes(HashCommand::Persist {
            key: k("h"),
            fields: vec![k("f")],
        }),
    ]
}

/// Sorted sets.
fn sorted_set_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::SortedSets(SortedSetCommand::Add {
            key: k("z"),
            flags: sorted_sets::add_flags::GT | sorted_sets::add_flags::CH,
            pairs: vec![(score(1.5), k("a")), (score(f64::NEG_INFINITY), k("b"))],
        }),
        Command::SortedSets(SortedSetCommand::IncrBy {
            key: k("z"),
            delta: score(-2.0),
            member: k("a"),
        }),
        Command::SortedSets(SortedSetCommand::Rem {
            key: k("z"),
            members: vec![k("a")],
        }),
        Command::SortedSets(SortedSetCommand::Score {
            key: k("z"),
            member: k("a"),
        }),
        Command::SortedSets(SortedSetCommand::MScore {
            key: k("z"),
            members: vec![k("a"), k("b")],
        }),
        Command::SortedSets(SortedSetCommand::Rank {
            key: k("z"),
            member: k("a"),
            rev: false,
            with_score: true,
        }),
        Command::SortedSets(SortedSetCommand::Rank {
            key: k("z"),
            member: k("a"),
            rev: true,
            with_score: false,
        }),
        Command::SortedSets(SortedSetCommand::Range {
            key: k("z"),
            selection: sorted_sets::Selection::Score {
                min: bound(1.0, true),
                max: bound(f64::INFINITY, false),
            },
            rev: true,
            limit: Some((2, -1)),
            with_scores: true,
        }),
        Command::SortedSets(SortedSetCommand::Card(k("z"))),
        Command::SortedSets(SortedSetCommand::Count {
            key: k("z"),
            min: bound(0.0, false),
            max: bound(10.0, true),
        }),
        Command::SortedSets(SortedSetCommand::Pop {
            key: k("z"),
            count: 3,
            max: false,
        }),
        Command::SortedSets(SortedSetCommand::Pop {
            key: k("z"),
            count: 1,
            max: true,
        }),
        Command::SortedSets(SortedSetCommand::RemRangeByScore {
            key: k("z"),
            min: bound(f64::NEG_INFINITY, false),
            max: bound(0.0, true),
        }),
        Command::SortedSets(SortedSetCommand::RemRangeByRank {
            key: k("z"),
            start: 0,
            stop: -3,
        }),
    ]
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
