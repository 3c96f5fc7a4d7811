//! Shard operations checked against their documented replies, on a bare keyspace.

use super::inventory::expire_reservations;
use super::limits::decide_windows;
use super::*;

fn apply(keyspace: &mut Keyspace, command: &Command, now: u64) -> Value {
    super::apply(keyspace, command, now).into_value()
}

fn is_error(value: &Value, code: ErrorCode) -> bool {
    matches!(value, Value::Error(e) if e.code == code as u16)
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn set_cmd(
    key: &'static str,
    value: &'static str,
    condition: SetCondition,
    expiry: SetExpiry,
    get: bool,
) -> Command {
    Command::Keys(KeyCommand::Set(SetArgs {
        key: b(key),
        value: b(value),
        condition,
        expiry,
        get,
    }))
}

#[test]
fn set_conditions_and_get_follow_redis() {
    let mut ks = Keyspace::new();
    let nx = set_cmd("k", "1", SetCondition::IfAbsent, SetExpiry::Clear, false);
    assert_eq!(apply(&mut ks, &nx, 0), Value::Ok);
    assert_eq!(apply(&mut ks, &nx, 0), Value::Nil);
    let xx_get = set_cmd("k", "2", SetCondition::IfPresent, SetExpiry::Clear, true);
    assert_eq!(apply(&mut ks, &xx_get, 0), Value::Bytes(b("1")));
    let xx_missing = set_cmd(
        "absent",
        "2",
        SetCondition::IfPresent,
        SetExpiry::Clear,
        false,
    );
    assert_eq!(apply(&mut ks, &xx_missing, 0), Value::Nil);
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Get(b("absent"))), 0),
        Value::Nil
    );
}

#[test]
fn keepttl_keeps_and_plain_set_clears() {
    let mut ks = Keyspace::new();
    apply(
        &mut ks,
        &set_cmd("k", "1", SetCondition::Always, SetExpiry::In(10_000), false),
        0,
    );
    apply(
        &mut ks,
        &set_cmd("k", "2", SetCondition::Always, SetExpiry::Keep, false),
        0,
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("k"))), 1000),
        Value::Int(9000)
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Ttl(b("k"))), 1000),
        Value::Int(9)
    );
    apply(
        &mut ks,
        &set_cmd("k", "3", SetCondition::Always, SetExpiry::Clear, false),
        0,
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Ttl(b("k"))), 1000),
        Value::Int(-1)
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Ttl(b("nope"))), 1000),
        Value::Int(-2)
    );
}

#[test]
fn expire_persist_and_negative_expire() {
    let mut ks = Keyspace::new();
    apply(
        &mut ks,
        &set_cmd("k", "v", SetCondition::Always, SetExpiry::Clear, false),
        0,
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Expire {
                key: b("k"),
                seconds: 5,
                condition: Default::default(),
            }),
            0
        ),
        Value::Int(1)
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Persist(b("k"))), 0),
        Value::Int(1)
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Persist(b("k"))), 0),
        Value::Int(0)
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::PExpire {
                key: b("k"),
                millis: 0,
                condition: Default::default(),
            }),
            0
        ),
        Value::Int(1)
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Get(b("k"))), 0),
        Value::Nil
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Expire {
                key: b("k"),
                seconds: 5,
                condition: Default::default(),
            }),
            0
        ),
        Value::Int(0)
    );
    let huge = Command::Keys(KeyCommand::Expire {
        key: b("k"),
        seconds: i64::MAX,
        condition: Default::default(),
    });
    assert!(is_error(
        &apply(&mut ks, &huge, 0),
        ErrorCode::InvalidExpire
    ));
}

#[test]
fn incr_parses_text_refuses_garbage_and_overflow_and_keeps_ttl() {
    let mut ks = Keyspace::new();
    apply(
        &mut ks,
        &set_cmd("n", "41", SetCondition::Always, SetExpiry::In(5000), false),
        0,
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::IncrBy {
                key: b("n"),
                delta: 1
            }),
            0
        ),
        Value::Int(42)
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Get(b("n"))), 0),
        Value::Bytes(b("42"))
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("n"))), 0),
        Value::Int(5000)
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::DecrBy {
                key: b("fresh"),
                delta: 3
            }),
            0
        ),
        Value::Int(-3)
    );
    for bad in ["x", " 1", "01", "+1", "99999999999999999999"] {
        ks.insert(b"bad", Blob::new(bad.as_bytes()).into(), None, 0);
        let reply = apply(
            &mut ks,
            &Command::Keys(KeyCommand::IncrBy {
                key: b("bad"),
                delta: 1,
            }),
            0,
        );
        assert!(is_error(&reply, ErrorCode::NotInteger), "{bad}");
    }
    ks.insert(b"max", Blob::Int(i64::MAX).into(), None, 0);
    let reply = apply(
        &mut ks,
        &Command::Keys(KeyCommand::IncrBy {
            key: b("max"),
            delta: 1,
        }),
        0,
    );
    assert!(is_error(&reply, ErrorCode::NotInteger));
    let reply = apply(
        &mut ks,
        &Command::Keys(KeyCommand::DecrBy {
            key: b("max"),
            delta: i64::MIN,
        }),
        0,
    );
    assert!(is_error(&reply, ErrorCode::NotInteger));
}

#[test]
fn dedup_first_writer_wins_and_keeps_its_expiry() {
    let mut ks = Keyspace::new();
    let dedup = |key: &'static str, ttl_ms| {
        Command::Dedup(DedupCommand::Check {
            key: b(key),
            ttl_ms,
        })
    };
    assert_eq!(apply(&mut ks, &dedup("imp", 1000), 0), Value::Bool(true));
    assert_eq!(apply(&mut ks, &dedup("imp", 5000), 10), Value::Bool(false));
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("imp"))), 10),
        Value::Int(990)
    );
    assert_eq!(
        apply(&mut ks, &dedup("imp", 1000), 1000),
        Value::Bool(true),
        "seen again after expiry"
    );
    let multi = Command::Dedup(DedupCommand::CheckMany {
        ttl_ms: 1000,
        keys: vec![b("x"), b("imp"), b("x")],
    });
    assert_eq!(
        apply(&mut ks, &multi, 1000),
        Value::Array(vec![
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(false)
        ])
    );
}

#[test]
fn counter_take_never_passes_the_floor() {
    let mut ks = Keyspace::new();
    let take = |amount, floor| {
        Command::Counters(CounterCommand::Take {
            key: b("c"),
            amount,
            floor,
        })
    };
    let outcome = |taken, remaining| {
        Value::Map(vec![
            (Value::text("taken"), Value::Bool(taken)),
            (Value::text("remaining"), Value::Int(remaining)),
        ])
    };
    assert_eq!(
        apply(&mut ks, &take(1, 0), 0),
        outcome(false, 0),
        "a missing counter is 0"
    );
    assert_eq!(
        apply(&mut ks, &Command::Keys(KeyCommand::Exists(vec![b("c")])), 0),
        Value::Int(0),
        "a refused take creates nothing"
    );
    assert_eq!(
        apply(
            &mut ks,
            &Command::Counters(CounterCommand::Put {
                key: b("c"),
                amount: 10
            }),
            0
        ),
        Value::Int(10)
    );
    assert_eq!(apply(&mut ks, &take(7, 0), 0), outcome(true, 3));
    assert_eq!(apply(&mut ks, &take(4, 0), 0), outcome(false, 3));
    assert_eq!(apply(&mut ks, &take(4, -1), 0), outcome(true, -1));
    assert_eq!(
        apply(&mut ks, &take(i64::MAX as u64, i64::MIN), 0),
        outcome(true, i64::MIN)
    );
    assert_eq!(
        apply(&mut ks, &take(1, i64::MIN), 0),
        outcome(false, i64::MIN),
        "no wrap-around"
    );
    ks.insert(b"text", Blob::new(b"abc").into(), None, 0);
    let refused = apply(
        &mut ks,
        &Command::Counters(CounterCommand::Take {
            key: b("text"),
            amount: 1,
            floor: 0,
        }),
        0,
    );
    assert!(is_error(&refused, ErrorCode::NotInteger));
}

#[test]
fn id_ranges_are_disjoint_and_contiguous() {
    let mut ks = Keyspace::new();
    let range = |size| {
        Command::Counters(CounterCommand::IdRange {
            key: b("ids"),
            size,
        })
    };
    assert_eq!(
        apply(&mut ks, &range(100), 0),
        Value::Array(vec![Value::Int(1), Value::Int(100)])
    );
    assert_eq!(
        apply(&mut ks, &range(1), 0),
        Value::Array(vec![Value::Int(101), Value::Int(101)])
    );
    ks.insert(b"ids", Blob::Int(i64::MAX - 1).into(), None, 0);
    assert!(
        matches!(apply(&mut ks, &range(2), 0), Value::Error(_)),
        "overflow is refused"
    );
}

mod native;

#[test]
fn a_transaction_runs_every_write_but_bounds_its_replies_together() {
    let mut keyspace = Keyspace::new();
    keyspace.reply_limit = 1000;
    keyspace.insert(b"{t}big", Blob::new(&[b'x'; 400]).into(), None, 1);
    let get = Command::Keys(KeyCommand::Get(b("{t}big")));
    let incr = Command::Keys(KeyCommand::IncrBy {
        key: b("{t}n"),
        delta: 1,
    });
    let tx = Command::Transactions(TxCommand::Tx(vec![get.clone(), get.clone(), get, incr]));
    let Value::Array(replies) = apply(&mut keyspace, &tx, 1) else {
        panic!("TX answers an array");
    };
    assert!(matches!(&replies[0], Value::Bytes(v) if v.len() == 400));
    assert!(matches!(&replies[1], Value::Bytes(v) if v.len() == 400));
    assert!(is_error(&replies[2], ErrorCode::ReplyTooLarge));
    // Past the bound a write still runs and its count still comes back.
    assert_eq!(replies[3], Value::Int(1));
    assert!(matches!(
        keyspace.get(b"{t}n", 1),
        Some(Stored::Blob(Blob::Int(1)))
    ));
}

#[test]
fn copy_keeps_the_expiry_and_random_key_finds_the_live_ones() {
    let mut keyspace = Keyspace::new();
    keyspace.insert(b"{t}a", Blob::new(b"v").into(), Some(10_000), 1);
    let copy = |replace| {
        Command::Keyspace(tessera_protocol::KeyspaceCommand::Copy {
            from: b("{t}a"),
            to: b("{t}b"),
            replace,
        })
    };
    assert_eq!(apply(&mut keyspace, &copy(false), 1), Value::Int(1));
    assert_eq!(keyspace.deadline(b"{t}b", 1), Some(Some(10_000)));
    assert_eq!(
        apply(&mut keyspace, &copy(false), 1),
        Value::Int(0),
        "the destination exists"
    );
    assert_eq!(apply(&mut keyspace, &copy(true), 1), Value::Int(1));
    keyspace.insert(b"lapsed", Blob::new(b"v").into(), Some(5), 1);
    for _ in 0..50 {
        let key = super::keyspace::random_key(&mut keyspace, 100).expect("live keys remain");
        assert!(
            key == b"{t}a"[..] || key == b"{t}b"[..],
            "never an expired key"
        );
    }
}

#[test]
fn sorted_sets_combine_with_weights_aggregates_and_plain_sets() {
    let mut keyspace = Keyspace::new();
    let run = |keyspace: &mut Keyspace, line: &str| {
        let words: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        apply(keyspace, &Command::parse_words(&words).unwrap(), 1)
    };
    run(&mut keyspace, "ZADD {z}a 1 x 2 y");
    run(&mut keyspace, "ZADD {z}b 10 y 20 z");
    run(&mut keyspace, "SADD {z}s x z");
    let scored = |value: Value| match value {
        Value::Array(items) => items
            .into_iter()
            .map(|pair| match pair {
                Value::Array(pair) => match (&pair[0], &pair[1]) {
                    (Value::Bytes(m), Value::Float(s)) => {
                        (String::from_utf8(m.to_vec()).unwrap(), *s)
                    }
                    other => panic!("a pair: {other:?}"),
                },
                other => panic!("a pair: {other:?}"),
            })
            .collect::<Vec<_>>(),
        other => panic!("an array: {other:?}"),
    };
    assert_eq!(
        scored(run(
            &mut keyspace,
            "ZUNION 2 {z}a {z}b WEIGHTS 2 1 WITHSCORES"
        )),
        [("x".into(), 2.0), ("y".into(), 14.0), ("z".into(), 20.0)]
    );
    assert_eq!(
        scored(run(
            &mut keyspace,
            "ZINTER 2 {z}a {z}b AGGREGATE MAX WITHSCORES"
        )),
        [("y".to_string(), 10.0)]
    );
    assert_eq!(
        scored(run(&mut keyspace, "ZUNION 2 {z}a {z}s WITHSCORES")),
        [("z".into(), 1.0), ("x".into(), 2.0), ("y".into(), 2.0)],
        "a set's members count at score 1; ties order by member"
    );
    assert_eq!(
        run(&mut keyspace, "ZDIFFSTORE {z}d 2 {z}a {z}b"),
        Value::Int(1)
    );
    assert_eq!(
        run(&mut keyspace, "ZINTERCARD 2 {z}a {z}b LIMIT 1"),
        Value::Int(1)
    );
    // An empty result leaves no destination.
    assert_eq!(
        run(&mut keyspace, "ZINTERSTORE {z}d 2 {z}a {z}none"),
        Value::Int(0)
    );
    assert!(!keyspace.contains(b"{z}d", 1));
    run(&mut keyspace, "SET {z}str v");
    assert!(is_error(
        &run(&mut keyspace, "ZUNION 2 {z}a {z}str"),
        ErrorCode::WrongType
    ));
}

#[test]
fn zset_pops_answer_flat_for_one_and_nested_for_a_count() {
    let mut keyspace = Keyspace::new();
    let run = |keyspace: &mut Keyspace, line: &str| {
        let words: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        apply(keyspace, &Command::parse_words(&words).unwrap(), 1)
    };
    run(&mut keyspace, "ZADD {z}b 1 x 2 y 3 z");
    assert_eq!(
        run(&mut keyspace, "BZPOPMAX {z}a {z}b 0"),
        Value::Array(vec![
            Value::Bytes(b("{z}b")),
            Value::Bytes(b("z")),
            Value::Float(3.0)
        ])
    );
    assert_eq!(
        run(&mut keyspace, "ZMPOP 2 {z}a {z}b MIN COUNT 5"),
        Value::Array(vec![
            Value::Bytes(b("{z}b")),
            Value::Array(vec![
                Value::Array(vec![Value::Bytes(b("x")), Value::Float(1.0)]),
                Value::Array(vec![Value::Bytes(b("y")), Value::Float(2.0)]),
            ]),
        ])
    );
    assert_eq!(run(&mut keyspace, "ZMPOP 1 {z}b MIN"), Value::Nil);
}
