//! Hash operations against Redis 7.4's documented replies, both storage forms, and a map model.

use super::*;

fn run(keyspace: &mut Keyspace, line: &str, now: u64) -> Value {
    let words: Vec<Bytes> = line
        .split_whitespace()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    let command = Command::parse_words(&words).expect("a valid command");
    super::super::apply(keyspace, &command, now).into_value()
}

fn b(text: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn fields_set_read_and_delete_like_redis() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, "hset h a 1 b 2", 0), Value::Int(2));
    assert_eq!(run(&mut ks, "hset h a 3 c 4", 0), Value::Int(1));
    assert_eq!(run(&mut ks, "hget h a", 0), b("3"));
    assert_eq!(
        run(&mut ks, "hmget h a x c", 0),
        Value::Array(vec![b("3"), Value::Nil, b("4")])
    );
    assert_eq!(run(&mut ks, "hlen h", 0), Value::Int(3));
    assert_eq!(run(&mut ks, "hsetnx h a 9", 0), Value::Int(0));
    assert_eq!(run(&mut ks, "hsetnx h d 9", 0), Value::Int(1));
    assert_eq!(run(&mut ks, "hstrlen h d", 0), Value::Int(1));
    assert_eq!(run(&mut ks, "hexists h x", 0), Value::Int(0));
    assert_eq!(run(&mut ks, "hdel h a b x", 0), Value::Int(2));
    assert_eq!(
        run(&mut ks, "hgetall h", 0),
        Value::Map(vec![(b("c"), b("4")), (b("d"), b("9"))])
    );
    assert_eq!(run(&mut ks, "hdel h c d", 0), Value::Int(2));
    assert!(!ks.contains(b"h", 0), "the key goes with its last field");
    assert_eq!(run(&mut ks, "hgetall h", 0), Value::Map(vec![]));
}

#[test]
fn increments_check_their_numbers() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, "hincrby h n 5", 0), Value::Int(5));
    assert_eq!(run(&mut ks, "hincrby h n -7", 0), Value::Int(-2));
    run(&mut ks, "hset h big 9223372036854775807 s x", 0);
    assert!(
        matches!(run(&mut ks, "hincrby h big 1", 0), Value::Error(e) if e.known_code() == Some(ErrorCode::NotInteger))
    );
    assert!(
        matches!(run(&mut ks, "hincrby h s 1", 0), Value::Error(e) if e.known_code() == Some(ErrorCode::NotInteger))
    );
    assert_eq!(run(&mut ks, "hincrbyfloat h f 10.5", 0), b("10.5"));
    assert_eq!(run(&mut ks, "hincrbyfloat h f 0.1", 0), b("10.6"));
    assert_eq!(run(&mut ks, "hincrbyfloat h n 2", 0), b("0"));
    assert!(
        matches!(run(&mut ks, "hincrbyfloat h s 1", 0), Value::Error(e) if e.known_code() == Some(ErrorCode::NotFloat))
    );
    run(&mut ks, "set plain v", 0);
    assert!(
        matches!(run(&mut ks, "hget plain a", 0), Value::Error(e) if e.known_code() == Some(ErrorCode::WrongType))
    );
    assert!(
        matches!(run(&mut ks, "get h", 0), Value::Error(e) if e.known_code() == Some(ErrorCode::WrongType))
    );
}

#[test]
fn field_expiry_follows_redis_7_4() {
    let mut ks = Keyspace::new();
    run(&mut ks, "hset h a 1 b 2 c 3", 0);
    let codes = |v: Value| v;
    assert_eq!(
        codes(run(&mut ks, "hpexpire h 100 FIELDS 3 a b missing", 0)),
        Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(-2)])
    );
    assert_eq!(
        run(&mut ks, "hpexpire h 50 GT FIELDS 2 a c", 0),
        Value::Array(vec![Value::Int(0), Value::Int(0)]),
        "GT: 50 is not later than 100, and no expiry is forever"
    );
    assert_eq!(
        run(&mut ks, "hpexpire h 50 LT FIELDS 2 a c", 0),
        Value::Array(vec![Value::Int(1), Value::Int(1)])
    );
    assert_eq!(
        run(&mut ks, "hpexpire h 70 NX FIELDS 1 a", 0),
        Value::Array(vec![Value::Int(0)])
    );
    assert_eq!(
        run(&mut ks, "hpttl h FIELDS 3 a b nope", 10),
        Value::Array(vec![Value::Int(40), Value::Int(90), Value::Int(-2)])
    );
    assert_eq!(
        run(&mut ks, "hpersist h FIELDS 2 b b", 10),
        Value::Array(vec![Value::Int(1), Value::Int(-1)])
    );
    assert_eq!(
        run(&mut ks, "hlen h", 60),
        Value::Int(1),
        "a and c lapsed at 50"
    );
    assert_eq!(run(&mut ks, "hget h a", 60), Value::Nil);
    assert_eq!(
        run(&mut ks, "hexpire h 0 FIELDS 1 b", 60),
        Value::Array(vec![Value::Int(2)])
    );
    assert!(!ks.contains(b"h", 60));
    assert_eq!(
        run(&mut ks, "httl nothere FIELDS 1 a", 60),
        Value::Array(vec![Value::Int(-2)])
    );
}

#[test]
fn same_size_writes_in_place_and_others_repack_without_touching_neighbours() {
    let mut ks = Keyspace::new();
    run(&mut ks, "hset h a x b yy c zzz", 0);
    run(&mut ks, "hset h b qq", 0);
    run(&mut ks, "hset h b longer", 0);
    run(&mut ks, "hset h a w", 0);
    run(&mut ks, "hpexpire h 200 FIELDS 1 c", 0);
    run(&mut ks, "hset h c 123", 0);
    assert_eq!(
        run(&mut ks, "hgetall h", 0),
        Value::Map(vec![
            (b("a"), b("w")),
            (b("b"), b("longer")),
            (b("c"), b("123"))
        ])
    );
    assert_eq!(
        run(&mut ks, "hpttl h FIELDS 1 c", 0),
        Value::Array(vec![Value::Int(-1)]),
        "the overwrite cleared the expiry, though it took a longer deadline varint"
    );
}

#[test]
fn a_table_hash_counts_its_expiring_fields_through_every_change() {
    let mut ks = Keyspace::new();
    for i in 0..200 {
        run(&mut ks, &format!("hset big f{i} v"), 0);
    }
    run(&mut ks, "hpexpire big 100 FIELDS 3 f1 f2 f3", 0);
    run(&mut ks, "hset big f1 again", 10);
    run(&mut ks, "hpersist big FIELDS 1 f2", 10);
    run(&mut ks, "hdel big f0", 10);
    assert_eq!(
        run(&mut ks, "hlen big", 150),
        Value::Int(198),
        "only f3 lapsed"
    );
    assert_eq!(
        run(&mut ks, "hpttl big FIELDS 3 f1 f2 f3", 150),
        Value::Array(vec![Value::Int(-1), Value::Int(-1), Value::Int(-2)])
    );
    run(&mut ks, "hpexpire big 50 FIELDS 1 f4", 150);
    for key in ks.take_due(200) {
        expire_fields(&mut ks, &key, 200);
    }
    assert_eq!(run(&mut ks, "hlen big", 200), Value::Int(197));
}

#[test]
fn a_set_clears_a_fields_expiry_and_an_increment_keeps_it() {
    let mut ks = Keyspace::new();
    run(&mut ks, "hset h a 1 n 1", 0);
    run(&mut ks, "hpexpire h 100 FIELDS 2 a n", 0);
    run(&mut ks, "hset h a 2", 0);
    run(&mut ks, "hincrby h n 1", 0);
    assert_eq!(
        run(&mut ks, "hpttl h FIELDS 2 a n", 0),
        Value::Array(vec![Value::Int(-1), Value::Int(100)])
    );
}

#[test]
fn timers_drop_expired_fields_nobody_reads() {
    let mut ks = Keyspace::new();
    run(&mut ks, "hset h a 1 b 2", 0);
    run(&mut ks, "hpexpire h 100 FIELDS 1 a", 0);
    run(&mut ks, "hpexpire h 200 FIELDS 1 b", 0);
    for key in ks.take_due(150) {
        expire_fields(&mut ks, &key, 150);
    }
    assert!(ks.contains(b"h", 150));
    assert!(ks.take_due(199).is_empty());
    for key in ks.take_due(200) {
        expire_fields(&mut ks, &key, 200);
    }
    assert!(
        !ks.contains(b"h", 200),
        "the last field lapsed, so did the key"
    );
}

#[test]
fn a_packed_hash_becomes_a_table_past_its_limits_and_keeps_every_field() {
    let mut ks = Keyspace::new();
    for i in 0..300 {
        run(&mut ks, &format!("hset h f{i} v{i}"), 0);
    }
    assert!(matches!(
        ks.get(b"h", 0),
        Some(Stored::Hash(FieldMap::Table(_)))
    ));
    assert_eq!(run(&mut ks, "hlen h", 0), Value::Int(300));
    assert_eq!(run(&mut ks, "hget h f299", 0), b("v299"));
    let long = "x".repeat(65);
    run(&mut ks, &format!("hset small f {long}"), 0);
    assert!(matches!(
        ks.get(b"small", 0),
        Some(Stored::Hash(FieldMap::Table(_)))
    ));
}

#[test]
fn random_writes_agree_with_a_map_model_in_both_forms() {
    use std::collections::HashMap;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for fields in [12, 300] {
        let mut ks = Keyspace::new();
        // field -> (value, deadline or 0)
        let mut model: HashMap<String, (String, u64)> = HashMap::new();
        for step in 0..4_000u64 {
            let now = step;
            model.retain(|_, (_, deadline)| *deadline == 0 || *deadline > now);
            let field = format!("f{}", next(fields));
            match next(5) {
                0 | 1 => {
                    let value = "v".repeat(1 + next(8) as usize);
                    let added = run(&mut ks, &format!("hset h {field} {value}"), now);
                    let absent = model.insert(field, (value, 0)).is_none();
                    assert_eq!(added, Value::Int(i64::from(absent)), "step {step}");
                }
                2 => {
                    run(&mut ks, &format!("hdel h {field}"), now);
                    model.remove(&field);
                }
                3 => {
                    let ttl = 1 + next(300);
                    run(&mut ks, &format!("hpexpire h {ttl} FIELDS 1 {field}"), now);
                    if let Some(entry) = model.get_mut(&field) {
                        entry.1 = now + ttl;
                    }
                }
                _ => {
                    run(&mut ks, &format!("hpersist h FIELDS 1 {field}"), now);
                    if let Some(entry) = model.get_mut(&field) {
                        entry.1 = 0;
                    }
                }
            }
            if step % 97 == 0 {
                let Value::Map(pairs) = run(&mut ks, "hgetall h", now) else {
                    panic!("HGETALL answers a map");
                };
                let mut got: Vec<(Value, Value)> = pairs;
                got.sort_by_key(|(f, _)| format!("{f:?}"));
                let mut want: Vec<(Value, Value)> =
                    model.iter().map(|(f, (v, _))| (b(f), b(v))).collect();
                want.sort_by_key(|(f, _)| format!("{f:?}"));
                assert_eq!(got, want, "{fields} fields, step {step}");
                for (f, (_, deadline)) in &model {
                    let left = match deadline {
                        0 => -1,
                        d => (d - now) as i64,
                    };
                    assert_eq!(
                        run(&mut ks, &format!("hpttl h FIELDS 1 {f}"), now),
                        Value::Array(vec![Value::Int(left)]),
                        "{f} at step {step}"
                    );
                }
            }
        }
    }
}

#[test]
fn random_fields_are_distinct_for_a_positive_count_and_repeat_for_a_negative_one() {
    let mut ks = Keyspace::new();
    run(&mut ks, "hset h a 1 b 2 c 3 d 4", 0);
    let names = |value: Value| match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Bytes(name) => String::from_utf8(name.to_vec()).unwrap(),
                other => panic!("a field name: {other:?}"),
            })
            .collect::<Vec<_>>(),
        other => panic!("an array: {other:?}"),
    };
    let mut distinct = names(run(&mut ks, "hrandfield h 3", 0));
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
    let mut all = names(run(&mut ks, "hrandfield h 10", 0));
    all.sort();
    assert_eq!(all, ["a", "b", "c", "d"]);
    let repeated = names(run(&mut ks, "hrandfield h -50", 0));
    assert_eq!(repeated.len(), 50);
    assert!(repeated
        .iter()
        .all(|name| ["a", "b", "c", "d"].contains(&name.as_str())));
    let Value::Array(pairs) = run(&mut ks, "hrandfield h 1 withvalues", 0) else {
        panic!("pairs");
    };
    assert!(matches!(&pairs[0], Value::Array(pair) if pair.len() == 2));
    assert_eq!(run(&mut ks, "hrandfield none", 0), Value::Nil);
    assert_eq!(run(&mut ks, "hrandfield none 3", 0), Value::Array(vec![]));
}
