//! One sample of every command, for the registry's checks.

use super::super::admin::Credentials;
use super::super::*;
use crate::geo::{GeoArea, GeoNear, GeoPoint};

fn score(value: f64) -> hashes::Finite {
    hashes::Finite::new(value).unwrap()
}

fn bound(value: f64, exclusive: bool) -> sorted_sets::Bound {
    sorted_sets::Bound {
        score: score(value),
        exclusive,
    }
}

pub(super) fn samples() -> Vec<Command> {
    [
        core_samples(),
        native_samples(),
        stock_and_social_samples(),
        geo_samples(),
        hash_samples(),
        sorted_set_samples(),
        list_samples(),
        set_samples(),
        keyspace_samples(),
        string_samples(),
        blocking_samples(),
        pubsub_samples(),
        zrandmember_samples(),
        sorted_set_algebra_samples(),
        geo_set_samples(),
        vec![Command::Transactions(TxCommand::Tx(vec![
            Command::Keys(KeyCommand::Get(Bytes::from_static(b"{u}a"))),
            Command::Keys(KeyCommand::Del(vec![Bytes::from_static(b"{u}b")])),
        ]))],
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
                resp: k("127.0.0.1:6379"),
            },
            Member {
                id: 2,
                bus: k("10.0.0.2:17379"),
                addr: k("10.0.0.2:7379"),
                shards: 1,
                resp: Bytes::new(),
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
            resp: k("127.0.0.1:6382"),
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
            replica: 3,
        }),
        Command::Cluster(ClusterCommand::Wait {
            replicas: 1,
            timeout_ms: 500,
        }),
        Command::Cluster(ClusterCommand::ReadOnly),
        Command::Cluster(ClusterCommand::ReadWrite),
        Command::Cluster(ClusterCommand::Failover(2)),
    ]
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
        Command::Keys(KeyCommand::Set(SetArgs {
            key: k("a"),
            value: k("v"),
            condition: SetCondition::Always,
            expiry: SetExpiry::At(1_700_000_000_000),
            get: false,
        })),
        Command::Keys(KeyCommand::Del(vec![k("a"), k("b")])),
        Command::Keys(KeyCommand::Exists(vec![k("a")])),
        Command::Keys(KeyCommand::Expire {
            key: k("a"),
            seconds: -5,
            condition: Default::default(),
        }),
        Command::Keys(KeyCommand::PExpire {
            key: k("a"),
            millis: 1500,
            condition: Default::default(),
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
fn zrandmember_samples() -> Vec<Command> {
    use crate::commands::SortedSetCommand as Z;
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::SortedSets(Z::RandMember {
            key: k("z"),
            count: None,
        }),
        Command::SortedSets(Z::RandMember {
            key: k("z"),
            count: Some((-3, true)),
        }),
    ]
}

fn hash_samples() -> Vec<Command> {
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Hashes(HashCommand::RandField {
            key: k("h"),
            count: None,
        }),
        Command::Hashes(HashCommand::RandField {
            key: k("h"),
            count: Some((-5, true)),
        }),
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

/// Lists.
fn list_samples() -> Vec<Command> {
    use crate::commands::lists::{End, ListCommand as L};
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    let push = |end, existing_only| {
        Command::Lists(L::Push {
            key: k("l"),
            end,
            existing_only,
            elements: vec![k("a"), k(""), k("c")],
        })
    };
    vec![
        push(End::Left, false),
        push(End::Right, false),
        push(End::Left, true),
        push(End::Right, true),
        Command::Lists(L::Pop {
            key: k("l"),
            end: End::Left,
            count: None,
        }),
        Command::Lists(L::Pop {
            key: k("l"),
            end: End::Right,
            count: Some(3),
        }),
        Command::Lists(L::Len(k("l"))),
        Command::Lists(L::Range {
            key: k("l"),
            start: 0,
            stop: -1,
        }),
        Command::Lists(L::Index {
            key: k("l"),
            index: -2,
        }),
        Command::Lists(L::Set {
            key: k("l"),
            index: 1,
            element: k("b"),
        }),
        Command::Lists(L::Rem {
            key: k("l"),
            count: -2,
            element: k("a"),
        }),
        Command::Lists(L::Trim {
            key: k("l"),
            start: 1,
            stop: -2,
        }),
        Command::Lists(L::Pos {
            key: k("l"),
            element: k("a"),
            rank: -1,
            count: Some(0),
            max_len: 100,
        }),
        Command::Lists(L::Insert {
            key: k("l"),
            after: true,
            pivot: k("a"),
            element: k("z"),
        }),
        Command::Lists(L::Move {
            source: k("{q}a"),
            destination: k("{q}b"),
            from: End::Right,
            to: End::Left,
        }),
    ]
}

/// Sets.
fn set_samples() -> Vec<Command> {
    use crate::commands::sets::{SetCommand as S, SetOp};
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    let keys = || vec![k("{s}a"), k("{s}b")];
    vec![
        Command::Sets(S::Add {
            key: k("s"),
            members: vec![k("x"), k("y")],
        }),
        Command::Sets(S::Rem {
            key: k("s"),
            members: vec![k("x")],
        }),
        Command::Sets(S::Members(k("s"))),
        Command::Sets(S::IsMember {
            key: k("s"),
            member: k("x"),
        }),
        Command::Sets(S::MIsMember {
            key: k("s"),
            members: vec![k("x"), k("q")],
        }),
        Command::Sets(S::Card(k("s"))),
        Command::Sets(S::Pop {
            key: k("s"),
            count: Some(2),
        }),
        Command::Sets(S::RandMember {
            key: k("s"),
            count: Some(-5),
        }),
        Command::Sets(S::Move {
            source: k("{s}a"),
            destination: k("{s}b"),
            member: k("x"),
        }),
        Command::Sets(S::Combine {
            op: SetOp::Inter,
            keys: keys(),
        }),
        Command::Sets(S::Combine {
            op: SetOp::Union,
            keys: keys(),
        }),
        Command::Sets(S::Combine {
            op: SetOp::Diff,
            keys: keys(),
        }),
        Command::Sets(S::Store {
            op: SetOp::Inter,
            destination: k("{s}d"),
            keys: keys(),
        }),
        Command::Sets(S::Store {
            op: SetOp::Union,
            destination: k("{s}d"),
            keys: keys(),
        }),
        Command::Sets(S::Store {
            op: SetOp::Diff,
            destination: k("{s}d"),
            keys: keys(),
        }),
        Command::Sets(S::InterCard {
            keys: keys(),
            limit: 3,
        }),
        Command::Sets(S::Scan {
            key: k("s"),
            cursor: 17,
            pattern: Some(k("a*")),
            count: 10,
        }),
    ]
}

/// The keyspace as a whole.
fn keyspace_samples() -> Vec<Command> {
    use crate::commands::keyspace::KeyspaceCommand as K;
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Keyspace(K::Type(k("k"))),
        Command::Keyspace(K::MemoryUsage(k("k"))),
        Command::Keyspace(K::Copy {
            from: k("{u}a"),
            to: k("{u}b"),
            replace: true,
        }),
        Command::Keyspace(K::RandomKey),
        Command::Keyspace(K::Keys(k("user:*"))),
        Command::Keyspace(K::Scan {
            cursor: 1 << 48,
            pattern: Some(k("a?c")),
            count: 100,
            kind: Some(k("hash")),
        }),
        Command::Keyspace(K::Rename {
            from: k("{u}a"),
            to: k("{u}b"),
            if_absent: false,
        }),
        Command::Keyspace(K::Rename {
            from: k("{u}a"),
            to: k("{u}b"),
            if_absent: true,
        }),
    ]
}

fn string_samples() -> Vec<Command> {
    use crate::commands::hashes::{ExpireCondition, TimeUnit};
    use crate::commands::strings::{GetExpiry, StringCommand as S};
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Strings(S::Append {
            key: k("k"),
            value: k("abc"),
        }),
        Command::Strings(S::Strlen(k("k"))),
        Command::Strings(S::GetRange {
            key: k("k"),
            start: -3,
            end: -1,
        }),
        Command::Strings(S::SetRange {
            key: k("k"),
            offset: 300,
            value: k("xyz"),
        }),
        Command::Strings(S::GetDel(k("k"))),
        Command::Strings(S::GetEx {
            key: k("k"),
            expiry: GetExpiry::At(1_700_000_000_000),
        }),
        Command::Strings(S::IncrByFloat {
            key: k("k"),
            delta: score(-2.5),
        }),
        Command::Strings(S::MSetNx(vec![(k("{t}a"), k("1")), (k("{t}b"), k("2"))])),
        Command::Strings(S::ExpireAt {
            key: k("k"),
            at: 1_700_000_000,
            unit: TimeUnit::Seconds,
            condition: ExpireCondition::IfLater,
        }),
        Command::Strings(S::ExpireAt {
            key: k("k"),
            at: -1,
            unit: TimeUnit::Millis,
            condition: ExpireCondition::Always,
        }),
        Command::Strings(S::ExpireTime {
            key: k("k"),
            unit: TimeUnit::Seconds,
        }),
        Command::Strings(S::ExpireTime {
            key: k("k"),
            unit: TimeUnit::Millis,
        }),
        Command::Strings(S::SetBit {
            key: k("k"),
            offset: 1000,
            bit: true,
        }),
        Command::Strings(S::GetBit {
            key: k("k"),
            offset: 7,
        }),
    ]
}

fn blocking_samples() -> Vec<Command> {
    use crate::commands::blocking::BlockingCommand as B;
    use crate::commands::lists::End;
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::Blocking(B::Pop {
            keys: vec![k("{q}a"), k("{q}b")],
            end: End::Left,
            count: Some(2),
            block_ms: None,
        }),
        Command::Blocking(B::Pop {
            keys: vec![k("q")],
            end: End::Left,
            count: None,
            block_ms: Some(0),
        }),
        Command::Blocking(B::Pop {
            keys: vec![k("q")],
            end: End::Right,
            count: None,
            block_ms: Some(1500),
        }),
        Command::Blocking(B::Pop {
            keys: vec![k("q")],
            end: End::Right,
            count: Some(1),
            block_ms: Some(10),
        }),
        Command::Blocking(B::Move {
            source: k("{q}a"),
            destination: k("{q}b"),
            from: End::Right,
            to: End::Left,
            block_ms: 100,
        }),
        Command::Blocking(B::ZPop {
            keys: vec![k("{z}a"), k("{z}b")],
            max: true,
            count: Some(3),
            block_ms: None,
        }),
        Command::Blocking(B::ZPop {
            keys: vec![k("z")],
            max: false,
            count: None,
            block_ms: Some(0),
        }),
        Command::Blocking(B::ZPop {
            keys: vec![k("z")],
            max: true,
            count: None,
            block_ms: Some(10),
        }),
        Command::Blocking(B::ZPop {
            keys: vec![k("z")],
            max: false,
            count: Some(1),
            block_ms: Some(10),
        }),
    ]
}

fn pubsub_samples() -> Vec<Command> {
    use crate::commands::pubsub::PubSubCommand as P;
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    vec![
        Command::PubSub(P::Subscribe {
            names: vec![k("news"), k("chat")],
            patterns: false,
        }),
        Command::PubSub(P::Unsubscribe {
            names: vec![],
            patterns: false,
        }),
        Command::PubSub(P::Subscribe {
            names: vec![k("chat:*")],
            patterns: true,
        }),
        Command::PubSub(P::Unsubscribe {
            names: vec![k("chat:*")],
            patterns: true,
        }),
        Command::PubSub(P::Publish {
            channel: k("chat:1"),
            message: k("hello"),
            local: false,
        }),
        Command::PubSub(P::Publish {
            channel: k("chat:1"),
            message: k("hello"),
            local: true,
        }),
    ]
}

fn sorted_set_algebra_samples() -> Vec<Command> {
    use crate::commands::sorted_set_algebra::{
        Aggregate, Inputs, SetAlgebra, SortedSetAlgebraCommand as A,
    };
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    let inputs = |weights: Option<Vec<f64>>, aggregate| Inputs {
        keys: vec![k("{z}a"), k("{z}b")],
        weights: weights.map(|w| w.into_iter().map(score).collect()),
        aggregate,
    };
    let mut samples = Vec::new();
    for op in [SetAlgebra::Union, SetAlgebra::Inter, SetAlgebra::Diff] {
        samples.push(Command::SortedSetAlgebra(A::Combine {
            op,
            inputs: inputs(Some(vec![2.0, 0.5]), Aggregate::Max),
            with_scores: true,
        }));
        samples.push(Command::SortedSetAlgebra(A::Store {
            op,
            destination: k("{z}d"),
            inputs: inputs(None, Aggregate::Sum),
        }));
    }
    samples.push(Command::SortedSetAlgebra(A::RangeStore {
        destination: k("{z}d"),
        range: SortedSetCommand::Range {
            key: k("{z}a"),
            selection: sorted_sets::Selection::Rank { start: 0, stop: -1 },
            rev: true,
            limit: None,
            with_scores: false,
        },
    }));
    samples.push(Command::SortedSetAlgebra(A::InterCard {
        keys: vec![k("{z}a"), k("{z}b")],
        limit: 3,
    }));
    samples
}

fn geo_set_samples() -> Vec<Command> {
    use crate::commands::geo_sets::{
        with, AddCondition, Area, Center, GeoSetCommand as G, Order, Point, Query, Unit,
    };
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    let point = |longitude, latitude| Point::new(longitude, latitude).unwrap();
    let query = |center, area, with| Query {
        center,
        area,
        unit: Unit::Kilometers,
        order: Order::Nearest,
        count: 3,
        any: true,
        with,
    };
    vec![
        Command::GeoSets(G::Add {
            key: k("g"),
            condition: AddCondition::IfPresent,
            changed: true,
            points: vec![(point(13.361389, 38.115556), k("Palermo"))],
        }),
        Command::GeoSets(G::Pos {
            key: k("g"),
            members: vec![k("a"), k("b")],
        }),
        Command::GeoSets(G::Dist {
            key: k("g"),
            from: k("a"),
            to: k("b"),
            unit: Unit::Miles,
        }),
        Command::GeoSets(G::Hash {
            key: k("g"),
            members: vec![k("a")],
        }),
        Command::GeoSets(G::Search {
            key: k("g"),
            query: query(
                Center::Member(k("a")),
                Area::Box {
                    width: 4.0,
                    height: 2.0,
                },
                with::ALL,
            ),
        }),
        Command::GeoSets(G::SearchStore {
            destination: k("{g}d"),
            source: k("{g}s"),
            query: query(Center::Point(point(15.0, 37.0)), Area::Radius(200.0), 0),
            store_distance: true,
        }),
        Command::Diagnostics(DiagnosticsCommand::SlowlogGet(Some(10))),
        Command::Diagnostics(DiagnosticsCommand::SlowlogGet(None)),
        Command::Diagnostics(DiagnosticsCommand::SlowlogLen),
        Command::Diagnostics(DiagnosticsCommand::SlowlogReset),
        Command::Diagnostics(DiagnosticsCommand::LatencyLatest),
        Command::Diagnostics(DiagnosticsCommand::LatencyHistory(k("command"))),
        Command::Diagnostics(DiagnosticsCommand::LatencyReset(vec![])),
        Command::Diagnostics(DiagnosticsCommand::LatencyReset(vec![
            k("command"),
            k("expire-cycle"),
        ])),
    ]
}
