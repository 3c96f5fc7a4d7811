//! The native families' operations: rate limits, idempotency, versioned values, inventory,
//! presence, multi-key parts, and replaying mutation records.

use super::*;

fn limit(algorithm: Algorithm, tiers: &[(u64, u64)], cost: u64) -> RateLimit {
    let tiers: Vec<Tier> = tiers
        .iter()
        .map(|&(limit, window_ms)| Tier { limit, window_ms })
        .collect();
    RateLimit {
        key: b("client"),
        algorithm,
        cost,
        burst: 0,
        tiers: tessera_protocol::commands::Tiers::new(&tiers).unwrap(),
    }
}

fn field(reply: &Value, name: &str) -> Value {
    reply.get(name).cloned().unwrap_or(Value::Nil)
}

#[test]
fn multi_tier_limits_consume_from_all_or_none() {
    let mut ks = Keyspace::new();
    // 3 per second and 5 per minute.
    let check = Command::Limits(LimitCommand::Check(limit(
        Algorithm::Sliding,
        &[(3, 1000), (5, 60_000)],
        1,
    )));
    let allowed = |ks: &mut Keyspace, now| field(&apply(ks, &check, now), "allowed");
    for _ in 0..3 {
        assert_eq!(allowed(&mut ks, 0), Value::Bool(true));
    }
    assert_eq!(
        allowed(&mut ks, 0),
        Value::Bool(false),
        "the per-second tier is full"
    );
    // Seconds later the per-second tier has room, the minute tier has 2 left.
    assert_eq!(allowed(&mut ks, 2000), Value::Bool(true));
    assert_eq!(allowed(&mut ks, 2000), Value::Bool(true));
    let denied = apply(&mut ks, &check, 2000);
    assert_eq!(
        field(&denied, "allowed"),
        Value::Bool(false),
        "the minute tier is full"
    );
    assert_eq!(field(&denied, "remaining"), Value::Int(0));
    assert!(matches!(field(&denied, "retry_after_ms"), Value::Int(ms) if ms > 1000));
}

#[test]
fn a_denied_multi_tier_check_counts_in_no_tier() {
    let tiers = [
        Tier {
            limit: 3,
            window_ms: 1000,
        },
        Tier {
            limit: 1,
            window_ms: 60_000,
        },
    ];
    let mut windows = [Window::default(); 2];
    assert!(decide_windows(&mut windows, &tiers, 1, 0, true).0.allowed);
    let before = windows;
    let (decision, _) = decide_windows(&mut windows, &tiers, 1, 0, true);
    assert!(!decision.allowed, "the minute tier is full");
    assert_eq!(
        windows, before,
        "and the second tier, which had room, counted nothing"
    );
}

#[test]
fn a_denied_multi_tier_check_reports_what_each_tier_has_left() {
    // 8 per hour and 12 per two hours: after 5, a request for 6 is denied by the first
    // tier, and 3 remain (not 1, which is what the second tier would keep after taking 6).
    let mut ks = Keyspace::new();
    let check = |cost| {
        Command::Limits(LimitCommand::Check(limit(
            Algorithm::Sliding,
            &[(8, 3_600_000), (12, 7_200_000)],
            cost,
        )))
    };
    let first = apply(&mut ks, &check(5), 0);
    assert_eq!(
        (field(&first, "allowed"), field(&first, "remaining")),
        (Value::Bool(true), Value::Int(3))
    );
    let denied = apply(&mut ks, &check(6), 1);
    assert_eq!(
        (field(&denied, "allowed"), field(&denied, "remaining")),
        (Value::Bool(false), Value::Int(3))
    );
    let last = apply(&mut ks, &check(3), 2);
    assert_eq!(
        (field(&last, "allowed"), field(&last, "remaining")),
        (Value::Bool(true), Value::Int(0))
    );
}

#[test]
fn peek_reset_and_wrong_type() {
    let mut ks = Keyspace::new();
    let check = Command::Limits(LimitCommand::Check(limit(Algorithm::Gcra, &[(2, 1000)], 1)));
    let peek = Command::Limits(LimitCommand::Peek(limit(Algorithm::Gcra, &[(2, 1000)], 1)));
    assert_eq!(field(&apply(&mut ks, &peek, 0), "remaining"), Value::Int(1));
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Exists(vec![b("client")])),
            0
        ),
        Value::Int(0),
        "PEEK creates nothing"
    );
    apply(&mut ks, &check, 0);
    apply(&mut ks, &check, 0);
    assert_eq!(
        field(&apply(&mut ks, &peek, 0), "allowed"),
        Value::Bool(false)
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Limits(LimitCommand::Reset(b("client"))),
            0
        ),
        Value::Int(1)
    );
    assert_eq!(
        field(&apply(&mut ks, &peek, 0), "allowed"),
        Value::Bool(true)
    );
    assert!(matches!(
        apply(&mut ks, &Command::Keys(KeyCommand::Get(b("client"))), 0),
        Value::Nil
    ));
    apply(&mut ks, &check, 0);
    assert!(is_error(
        &apply(&mut ks, &Command::Keys(KeyCommand::Get(b("client"))), 0),
        ErrorCode::WrongType
    ));
    ks.insert(b"text", Blob::new(b"v").into(), None, 0);
    let on_text = Command::Limits(LimitCommand::Check(RateLimit {
        key: b("text"),
        ..limit(Algorithm::Sliding, &[(1, 1000)], 1)
    }));
    assert!(is_error(&apply(&mut ks, &on_text, 0), ErrorCode::WrongType));
}

#[test]
fn idle_rate_limit_state_expires() {
    let mut ks = Keyspace::new();
    apply(
        &mut ks,
        &Command::Limits(LimitCommand::Check(limit(
            Algorithm::Sliding,
            &[(10, 1000)],
            1,
        ))),
        500,
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("client"))), 500),
        Value::Int(1500)
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Exists(vec![b("client")])),
            2000
        ),
        Value::Int(0)
    );
}

#[test]
fn idempotency_hands_out_one_lease_and_then_the_result() {
    let mut ks = Keyspace::new();
    let begin = Command::Idem(IdemCommand::Begin {
        key: b("pay"),
        ttl_ms: 60_000,
        lease_ms: 100,
    });
    let state = |reply: &Value| field(reply, "state");
    let first = apply(&mut ks, &begin, 0);
    assert_eq!(
        (state(&first), field(&first, "token")),
        (Value::text("new"), Value::Int(1))
    );
    let retry = apply(&mut ks, &begin, 50);
    assert_eq!(state(&retry), Value::text("in_progress"));
    assert_eq!(field(&retry, "retry_after_ms"), Value::Int(50));
    // The first caller crashed: after its lease another takes over with a new token.
    let takeover = apply(&mut ks, &begin, 100);
    assert_eq!(
        (state(&takeover), field(&takeover, "token")),
        (Value::text("new"), Value::Int(2))
    );
    let stale = Command::Idem(IdemCommand::Complete {
        key: b("pay"),
        token: 1,
        result: b("charged"),
    });
    assert!(is_error(&apply(&mut ks, &stale, 120), ErrorCode::Conflict));
    let complete = Command::Idem(IdemCommand::Complete {
        key: b("pay"),
        token: 2,
        result: b("charged"),
    });
    assert_eq!(apply(&mut ks, &complete, 120), Value::Ok);
    let done = apply(&mut ks, &begin, 5000);
    assert_eq!(
        (state(&done), field(&done, "result")),
        (Value::text("done"), Value::Bytes(b("charged")))
    );
    assert!(is_error(
        &apply(&mut ks, &complete, 130),
        ErrorCode::Conflict
    ));
    assert_eq!(
        apply(&mut ks, &Command::Idem(IdemCommand::Get(b("pay"))), 130),
        done
    );
    // The record, result included, lives for its ttl.
    assert_eq!(
        apply(&mut ks, &Command::Idem(IdemCommand::Get(b("pay"))), 60_000),
        Value::Nil
    );
    let missing = Command::Idem(IdemCommand::Complete {
        key: b("gone"),
        token: 1,
        result: b("x"),
    });
    assert!(is_error(&apply(&mut ks, &missing, 0), ErrorCode::NotFound));
}

#[test]
fn versioned_values_compare_and_set() {
    let mut ks = Keyspace::new();
    let vset = |value: &'static str, if_version| {
        Command::Versioned(VersionedCommand::Set {
            key: b("spot"),
            value: b(value),
            if_version,
            ttl_ms: None,
        })
    };
    let outcome = |ok, version| {
        Value::Map(vec![
            (Value::text("ok"), Value::Bool(ok)),
            (Value::text("version"), Value::Int(version)),
        ])
    };
    assert_eq!(
        apply(&mut ks, &vset("free", Some(0)), 0),
        outcome(true, 1),
        "0 = must not exist"
    );
    assert_eq!(apply(&mut ks, &vset("x", Some(0)), 0), outcome(false, 1));
    assert_eq!(apply(&mut ks, &vset("held", Some(1)), 0), outcome(true, 2));
    assert_eq!(
        apply(&mut ks, &vset("stale", Some(1)), 0),
        outcome(false, 2),
        "a stale version loses"
    );
    assert_eq!(apply(&mut ks, &vset("forced", None), 0), outcome(true, 3));
    assert_eq!(
        apply(
            &mut ks,
            &Command::Versioned(VersionedCommand::Get(b("spot"))),
            0
        ),
        Value::Map(vec![
            (Value::text("value"), Value::Bytes(b("forced"))),
            (Value::text("version"), Value::Int(3))
        ])
    );
    let expiring = Command::Versioned(VersionedCommand::Set {
        key: b("spot"),
        value: b("v"),
        if_version: Some(3),
        ttl_ms: Some(100),
    });
    assert_eq!(apply(&mut ks, &expiring, 0), outcome(true, 4));
    assert_eq!(
        apply(
            &mut ks,
            &Command::Versioned(VersionedCommand::Get(b("spot"))),
            100
        ),
        Value::Nil,
        "expired with its ttl"
    );
    assert_eq!(
        apply(&mut ks, &vset("again", Some(0)), 100),
        outcome(true, 1),
        "and starts over"
    );
    ks.insert(b"plain", Blob::new(b"v").into(), None, 0);
    let on_plain = Command::Versioned(VersionedCommand::Set {
        key: b("plain"),
        value: b("v"),
        if_version: None,
        ttl_ms: None,
    });
    assert!(is_error(
        &apply(&mut ks, &on_plain, 0),
        ErrorCode::WrongType
    ));
}

#[test]
fn store_figures_follow_every_change_to_its_skus() {
    let mut ks = Keyspace::new();
    let figures = |ks: &mut Keyspace| {
        let reply = apply(ks, &Command::Inventory(InventoryCommand::Store(b("s1"))), 0);
        (
            field(&reply, "skus"),
            field(&reply, "sold_out"),
            field(&reply, "low_stock"),
        )
    };
    let set = |sku: &'static str, on_hand, low| {
        Command::Inventory(InventoryCommand::Set {
            sku: b(sku),
            on_hand,
            low,
        })
    };
    apply(&mut ks, &set("{s1}:milk", 3, Some(1)), 0);
    apply(&mut ks, &set("{s1}:eggs", 0, None), 0);
    apply(&mut ks, &set("other", 0, None), 0);
    assert_eq!(
        figures(&mut ks),
        (Value::Int(2), Value::Int(1), Value::Int(0))
    );
    let reserve = Command::Inventory(InventoryCommand::Reserve {
        sku: b("{s1}:milk"),
        qty: 2,
        ttl_ms: 100,
        id: None,
    });
    apply(&mut ks, &reserve, 0);
    assert_eq!(
        figures(&mut ks),
        (Value::Int(2), Value::Int(1), Value::Int(1)),
        "one left is low"
    );
    expire_reservations(&mut ks, b"{s1}:milk", 100);
    assert_eq!(
        figures(&mut ks),
        (Value::Int(2), Value::Int(1), Value::Int(0)),
        "the lapse gave it back"
    );
    apply(
        &mut ks,
        &Command::Inventory(InventoryCommand::Adjust {
            sku: b("{s1}:eggs"),
            delta: 5,
        }),
        0,
    );
    assert_eq!(
        figures(&mut ks),
        (Value::Int(2), Value::Int(0), Value::Int(0))
    );
    apply(
        &mut ks,
        &Command::Keys(KeyCommand::Del(vec![b("{s1}:eggs")])),
        0,
    );
    assert_eq!(
        figures(&mut ks),
        (Value::Int(1), Value::Int(0), Value::Int(0))
    );
    apply(
        &mut ks,
        &Command::Keys(KeyCommand::Set(SetArgs {
            key: b("{s1}:milk"),
            value: b("x"),
            condition: SetCondition::Always,
            expiry: SetExpiry::Clear,
            get: false,
        })),
        0,
    );
    assert_eq!(
        figures(&mut ks),
        (Value::Int(0), Value::Int(0), Value::Int(0)),
        "overwritten by a string"
    );
}

#[test]
fn presence_lasts_ttl_plus_grace_and_leave_ends_it() {
    let mut ks = Keyspace::new();
    let beat = |ttl_ms, meta: Option<&'static str>| {
        Command::Presence(PresenceCommand::Beat {
            user: b("u"),
            ttl_ms,
            grace_ms: 50,
            meta: meta.map(b),
        })
    };
    let online = |ks: &mut Keyspace, now| {
        let Value::Array(rows) = apply(
            ks,
            &Command::Presence(PresenceCommand::Get(vec![b("u"), b("nobody")])),
            now,
        ) else {
            panic!("array")
        };
        assert_eq!(rows[1], Value::Nil, "never seen");
        let Value::Array(row) = &rows[0] else {
            panic!("a row")
        };
        (row[0].clone(), row[1].clone(), row[2].clone())
    };
    assert_eq!(
        apply(&mut ks, &beat(100, Some("eu/ios")), 0),
        Value::Bool(true),
        "came online"
    );
    assert_eq!(
        apply(&mut ks, &beat(100, None), 60),
        Value::Bool(false),
        "already online"
    );
    assert_eq!(
        online(&mut ks, 200),
        (
            Value::Bool(true),
            Value::Int(140),
            Value::Bytes(b("eu/ios"))
        ),
        "grace"
    );
    assert_eq!(
        online(&mut ks, 210).0,
        Value::Bool(false),
        "offline at last beat + ttl + grace"
    );
    assert_eq!(
        apply(&mut ks, &beat(100, None), 300),
        Value::Bool(true),
        "a reconnect after the grace"
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Presence(PresenceCommand::Leave(b("u"))),
            310
        ),
        Value::Int(1)
    );
    assert_eq!(
        online(&mut ks, 311).0,
        Value::Bool(false),
        "a clean leave is at once"
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Presence(PresenceCommand::Leave(b("u"))),
            312
        ),
        Value::Int(0)
    );
}

#[test]
fn multi_key_parts() {
    let mut ks = Keyspace::new();
    apply(
        &mut ks,
        &Command::Keys(KeyCommand::MSet(vec![(b("a"), b("1")), (b("b"), b("2"))])),
        0,
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::MGet(vec![b("a"), b("x"), b("b")])),
            0
        ),
        Value::Array(vec![Value::Bytes(b("1")), Value::Nil, Value::Bytes(b("2"))])
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Exists(vec![b("a"), b("a"), b("x")])),
            0
        ),
        Value::Int(2)
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Del(vec![b("a"), b("x")])),
            0
        ),
        Value::Int(1)
    );
    assert_eq!(
        apply(&mut ks, &Command::Admin(AdminCommand::DbSize), 0),
        Value::Int(1)
    );
    assert_eq!(
        apply(&mut ks, &Command::Admin(AdminCommand::FlushAll), 0),
        Value::Ok
    );
    assert_eq!(
        apply(&mut ks, &Command::Admin(AdminCommand::DbSize), 0),
        Value::Int(0)
    );
}

#[test]
fn replaying_the_records_rebuilds_the_same_keyspace() {
    let mut live = Keyspace::new();
    live.start_journal();
    let script = [
        "set a 1 px 500",
        "incrby n 5",
        "mset m1 x m2 y",
        "del m2",
        "hset h f 1 g 2",
        "hpexpire h 300 FIELDS 1 g",
        "hincrby h f 41",
        "zadd z 1 a 2 b 3 c",
        "zincrby z 10 a",
        "zpopmin z",
        "rl.check api:7 limit 3 window 1000 cost 2",
        "dedup seen:1 60",
        "inv.set sku:1 on_hand 10",
        "inv.reserve sku:1 3 ttl 60 id order-9",
        "tl.push feed:1 42",
        "presence.beat u:1 ttl 30",
        "vset v one",
        "get a",
        "hget h f",
        "zrange z 0 -1",
    ];
    for (step, line) in script.iter().enumerate() {
        let words: Vec<Bytes> = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let command = Command::parse_words(&words).unwrap();
        super::super::apply(&mut live, &command, 1_000 + step as u64 * 10);
    }
    let mut journal = bytes::BytesMut::new();
    live.take_journal(&mut journal);
    let records = crate::persist::log::unframe(&journal);
    assert_eq!(records.len(), script.len() - 3, "reads leave no record");
    let mut replica = Keyspace::new();
    for record in &records {
        let mutation = Mutation::decode(record.clone()).unwrap();
        mutation.replay(&mut replica);
    }
    // Read both at the same later moments: the replay kept values, scores, fields, field
    // expiries, key expiries and reservations.
    for now in [1_300, 1_600, 2_000] {
        for line in [
            "get a",
            "get n",
            "get m1",
            "exists m2",
            "hgetall h",
            "zrange z 0 -1 WITHSCORES",
            "rl.peek api:7 limit 3 window 1000 cost 2",
            "dedup seen:1 60",
            "inv.get sku:1",
            "tl.range feed:1",
            "presence.get u:1",
            "vget v",
            "dbsize",
        ] {
            let words: Vec<Bytes> = line
                .split_whitespace()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            let command = Command::parse_words(&words).unwrap();
            assert_eq!(
                super::super::apply(&mut replica, &command, now).into_value(),
                super::super::apply(&mut live, &command, now).into_value(),
                "{line} at {now}"
            );
        }
    }
}
