//! Shard-side operations: synchronous functions on one shard's keyspace that return values.
//!
//! Nothing here knows about connections, replies or other shards; a coordinator hands in a
//! command whose keys this shard owns and gets a `Value` back.

use bytes::Bytes;
use tessera_protocol::command::MAX_EXPIRE_MS;
use tessera_protocol::wire::Payload;
use tessera_protocol::{Command, ErrorCode, SetArgs, SetCondition, SetExpiry, Value};

use crate::keyspace::{Blob, Found, Keyspace};

/// A shard operation's result: a value, or a stored value lent out until the reply is
/// written, so a local GET copies its bytes once, straight into the output buffer.
pub enum Reply<'a> {
    /// A value built for the reply.
    Value(Value),
    /// A stored value, read in place.
    Stored(&'a Blob),
}

impl Reply<'_> {
    /// The reply as an owned value, for sending to another shard.
    pub fn into_value(self) -> Value {
        match self {
            Reply::Value(value) => value,
            Reply::Stored(blob) => to_value(blob),
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Value(Value::Error(_)))
    }
}

/// Runs a key command (or the key-owning part of a multi-key one) on `keyspace`.
///
/// Commands without keys that every shard answers (DBSIZE, FLUSHALL) are included; INFO,
/// PING and HELLO are not shard operations and reply with an internal error here.
pub fn apply<'a, P: Payload>(
    keyspace: &'a mut Keyspace,
    command: &Command<P>,
    now: u64,
) -> Reply<'a> {
    if let Command::Get(key) = command {
        return match keyspace.get(key.as_ref(), now) {
            Some(blob) => Reply::Stored(blob),
            None => Reply::Value(Value::Nil),
        };
    }
    Reply::Value(apply_owned(keyspace, command, now))
}

fn apply_owned<P: Payload>(keyspace: &mut Keyspace, command: &Command<P>, now: u64) -> Value {
    match command {
        Command::Get(key) => keyspace.get(key.as_ref(), now).map_or(Value::Nil, to_value),
        Command::Set(args) => set(keyspace, args, now),
        Command::Del(keys) => count(keys, |k| keyspace.remove(k, now)),
        Command::Exists(keys) => count(keys, |k| keyspace.contains(k, now)),
        Command::Expire { key, seconds } => match seconds.checked_mul(1000) {
            Some(ms) => expire(keyspace, key.as_ref(), ms, now),
            None => invalid_expire(),
        },
        Command::PExpire { key, millis } => expire(keyspace, key.as_ref(), *millis, now),
        Command::Ttl(key) => ttl(keyspace, key.as_ref(), now, |ms| (ms + 500) / 1000),
        Command::PTtl(key) => ttl(keyspace, key.as_ref(), now, |ms| ms),
        Command::Persist(key) => {
            let had_deadline = matches!(keyspace.deadline(key.as_ref(), now), Some(Some(_)));
            if had_deadline {
                keyspace.set_deadline(key.as_ref(), None, now);
            }
            Value::Int(i64::from(had_deadline))
        }
        Command::IncrBy { key, delta } => incr_by(keyspace, key.as_ref(), *delta, now),
        Command::DecrBy { key, delta } => match delta.checked_neg() {
            Some(delta) => incr_by(keyspace, key.as_ref(), delta, now),
            None => overflow(),
        },
        Command::MGet(keys) => Value::Array(
            keys.iter()
                .map(|k| keyspace.get(k.as_ref(), now).map_or(Value::Nil, to_value))
                .collect(),
        ),
        Command::MSet(pairs) => {
            for (key, value) in pairs {
                keyspace.insert(key.as_ref(), Blob::new(value.as_ref()), None, now);
            }
            Value::Ok
        }
        Command::Dedup { key, ttl_ms } => Value::Bool(dedup(keyspace, key.as_ref(), *ttl_ms, now)),
        Command::DedupMulti { ttl_ms, keys } => Value::Array(
            keys.iter()
                .map(|key| Value::Bool(dedup(keyspace, key.as_ref(), *ttl_ms, now)))
                .collect(),
        ),
        Command::CounterTake { key, amount, floor } => {
            counter_take(keyspace, key.as_ref(), *amount as i64, *floor, now)
        }
        Command::CounterPut { key, amount } => incr_by(keyspace, key.as_ref(), *amount as i64, now),
        Command::IdRange { key, size } => id_range(keyspace, key.as_ref(), *size as i64, now),
        Command::DbSize => Value::Int(keyspace.len() as i64),
        Command::FlushAll => {
            keyspace.clear();
            Value::Ok
        }
        Command::Ping(_) | Command::Hello { .. } | Command::Info => {
            Value::error(ErrorCode::Internal, "not a shard operation")
        }
    }
}

/// Renders a stored value as the bytes a client reads.
pub fn to_value(stored: &Blob) -> Value {
    match stored.as_bytes() {
        Some(bytes) => Value::Bytes(Bytes::copy_from_slice(bytes)),
        None => match stored {
            Blob::Int(n) => Value::Bytes(Bytes::from(n.to_string())),
            _ => Value::Nil,
        },
    }
}

fn count<P: Payload>(keys: &[P], mut hit: impl FnMut(&[u8]) -> bool) -> Value {
    Value::Int(keys.iter().filter(|k| hit(k.as_ref())).count() as i64)
}

fn set<P: Payload>(keyspace: &mut Keyspace, args: &SetArgs<P>, now: u64) -> Value {
    let key = args.key.as_ref();
    let found = keyspace.find(key, now);
    let current_deadline = keyspace.deadline_of(&found);
    let proceed = match args.condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => !found.exists(),
        SetCondition::IfPresent => found.exists(),
    };
    let old = if args.get {
        keyspace.value(&found).map_or(Value::Nil, to_value)
    } else {
        Value::Nil
    };
    if !proceed {
        return old;
    }
    let deadline = match args.expiry {
        SetExpiry::Clear => None,
        SetExpiry::Keep => current_deadline.flatten(),
        SetExpiry::In(ms) => Some(now + ms),
    };
    keyspace.write(found, key, Blob::new(args.value.as_ref()), deadline);
    if args.get {
        old
    } else {
        Value::Ok
    }
}

fn expire(keyspace: &mut Keyspace, key: &[u8], ms: i64, now: u64) -> Value {
    if ms > MAX_EXPIRE_MS {
        return invalid_expire();
    }
    let applied = if ms <= 0 {
        keyspace.remove(key, now)
    } else {
        keyspace.set_deadline(key, Some(now + ms as u64), now)
    };
    Value::Int(i64::from(applied))
}

fn ttl(keyspace: &mut Keyspace, key: &[u8], now: u64, scale: impl Fn(i64) -> i64) -> Value {
    match keyspace.deadline(key, now) {
        None => Value::Int(-2),
        Some(None) => Value::Int(-1),
        Some(Some(deadline)) => Value::Int(scale(deadline.saturating_sub(now) as i64)),
    }
}

/// Records `key` for `ttl_ms` unless it is already there; `true` for the first sighting.
fn dedup(keyspace: &mut Keyspace, key: &[u8], ttl_ms: u64, now: u64) -> bool {
    let found = keyspace.find(key, now);
    if found.exists() {
        return false;
    }
    keyspace.write(found, key, Blob::new(b""), Some(now + ttl_ms));
    true
}

/// The integer a counter holds: `Ok(None)` if the key is missing, `Err` with the reply to
/// send if it holds something that is not an integer.
fn read_counter(keyspace: &Keyspace, found: &Found) -> Result<Option<i64>, Value> {
    match keyspace.value(found) {
        None => Ok(None),
        Some(Blob::Int(n)) => Ok(Some(*n)),
        Some(text) => text
            .as_bytes()
            .and_then(parse_canonical_int)
            .map(Some)
            .ok_or_else(|| {
                Value::error(
                    ErrorCode::NotInteger,
                    "value is not an integer or out of range",
                )
            }),
    }
}

/// Stores `value` in a counter, keeping an existing key's expiry.
fn write_counter(keyspace: &mut Keyspace, found: Found, key: &[u8], value: i64) {
    if found.exists() {
        keyspace.replace_value(&found, Blob::Int(value));
    } else {
        keyspace.write(found, key, Blob::Int(value), None);
    }
}

fn incr_by(keyspace: &mut Keyspace, key: &[u8], delta: i64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let current = match read_counter(keyspace, &found) {
        Ok(current) => current.unwrap_or(0),
        Err(reply) => return reply,
    };
    let Some(next) = current.checked_add(delta) else {
        return overflow();
    };
    write_counter(keyspace, found, key, next);
    Value::Int(next)
}

fn counter_take(keyspace: &mut Keyspace, key: &[u8], amount: i64, floor: i64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let current = match read_counter(keyspace, &found) {
        Ok(current) => current.unwrap_or(0),
        Err(reply) => return reply,
    };
    let next = current.checked_sub(amount).filter(|next| *next >= floor);
    if let Some(next) = next {
        write_counter(keyspace, found, key, next);
    }
    Value::Map(vec![
        (Value::text("taken"), Value::Bool(next.is_some())),
        (
            Value::text("remaining"),
            Value::Int(next.unwrap_or(current)),
        ),
    ])
}

fn id_range(keyspace: &mut Keyspace, key: &[u8], size: i64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let last_issued = match read_counter(keyspace, &found) {
        Ok(current) => current.unwrap_or(0),
        Err(reply) => return reply,
    };
    let Some(last) = last_issued.checked_add(size) else {
        return overflow();
    };
    write_counter(keyspace, found, key, last);
    Value::Array(vec![Value::Int(last_issued + 1), Value::Int(last)])
}

/// Parses an integer written the way `to_value` would write it back (no `+`, no spaces,
/// no leading zeros), so INCRBY never silently rewrites a value's text.
fn parse_canonical_int(raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

fn overflow() -> Value {
    Value::error(
        ErrorCode::NotInteger,
        "increment or decrement would overflow",
    )
}

fn invalid_expire() -> Value {
    Value::error(ErrorCode::InvalidExpire, "invalid expire time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(keyspace: &mut Keyspace, command: &Command, now: u64) -> Value {
        super::apply(keyspace, command, now).into_value()
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
        Command::Set(SetArgs {
            key: b(key),
            value: b(value),
            condition,
            expiry,
            get,
        })
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
        assert_eq!(apply(&mut ks, &Command::Get(b("absent")), 0), Value::Nil);
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
            apply(&mut ks, &Command::PTtl(b("k")), 1000),
            Value::Int(9000)
        );
        assert_eq!(apply(&mut ks, &Command::Ttl(b("k")), 1000), Value::Int(9));
        apply(
            &mut ks,
            &set_cmd("k", "3", SetCondition::Always, SetExpiry::Clear, false),
            0,
        );
        assert_eq!(apply(&mut ks, &Command::Ttl(b("k")), 1000), Value::Int(-1));
        assert_eq!(
            apply(&mut ks, &Command::Ttl(b("nope")), 1000),
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
                &Command::Expire {
                    key: b("k"),
                    seconds: 5
                },
                0
            ),
            Value::Int(1)
        );
        assert_eq!(apply(&mut ks, &Command::Persist(b("k")), 0), Value::Int(1));
        assert_eq!(apply(&mut ks, &Command::Persist(b("k")), 0), Value::Int(0));
        assert_eq!(
            apply(
                &mut ks,
                &Command::PExpire {
                    key: b("k"),
                    millis: 0
                },
                0
            ),
            Value::Int(1)
        );
        assert_eq!(apply(&mut ks, &Command::Get(b("k")), 0), Value::Nil);
        assert_eq!(
            apply(
                &mut ks,
                &Command::Expire {
                    key: b("k"),
                    seconds: 5
                },
                0
            ),
            Value::Int(0)
        );
        let huge = Command::Expire {
            key: b("k"),
            seconds: i64::MAX,
        };
        assert!(
            matches!(apply(&mut ks, &huge, 0), Value::Error(e) if e.code == ErrorCode::InvalidExpire as u16)
        );
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
                &Command::IncrBy {
                    key: b("n"),
                    delta: 1
                },
                0
            ),
            Value::Int(42)
        );
        assert_eq!(
            apply(&mut ks, &Command::Get(b("n")), 0),
            Value::Bytes(b("42"))
        );
        assert_eq!(apply(&mut ks, &Command::PTtl(b("n")), 0), Value::Int(5000));
        assert_eq!(
            apply(
                &mut ks,
                &Command::DecrBy {
                    key: b("fresh"),
                    delta: 3
                },
                0
            ),
            Value::Int(-3)
        );
        for bad in ["x", " 1", "01", "+1", "99999999999999999999"] {
            ks.insert(b"bad", Blob::new(bad.as_bytes()), None, 0);
            let reply = apply(
                &mut ks,
                &Command::IncrBy {
                    key: b("bad"),
                    delta: 1,
                },
                0,
            );
            assert!(
                matches!(reply, Value::Error(e) if e.code == ErrorCode::NotInteger as u16),
                "{bad}"
            );
        }
        ks.insert(b"max", Blob::Int(i64::MAX), None, 0);
        let reply = apply(
            &mut ks,
            &Command::IncrBy {
                key: b("max"),
                delta: 1,
            },
            0,
        );
        assert!(matches!(reply, Value::Error(e) if e.code == ErrorCode::NotInteger as u16));
        let reply = apply(
            &mut ks,
            &Command::DecrBy {
                key: b("max"),
                delta: i64::MIN,
            },
            0,
        );
        assert!(matches!(reply, Value::Error(e) if e.code == ErrorCode::NotInteger as u16));
    }

    #[test]
    fn dedup_first_writer_wins_and_keeps_its_expiry() {
        let mut ks = Keyspace::new();
        let dedup = |key: &'static str, ttl_ms| Command::Dedup {
            key: b(key),
            ttl_ms,
        };
        assert_eq!(apply(&mut ks, &dedup("imp", 1000), 0), Value::Bool(true));
        assert_eq!(apply(&mut ks, &dedup("imp", 5000), 10), Value::Bool(false));
        assert_eq!(
            apply(&mut ks, &Command::PTtl(b("imp")), 10),
            Value::Int(990)
        );
        assert_eq!(
            apply(&mut ks, &dedup("imp", 1000), 1000),
            Value::Bool(true),
            "seen again after expiry"
        );
        let multi = Command::DedupMulti {
            ttl_ms: 1000,
            keys: vec![b("x"), b("imp"), b("x")],
        };
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
        let take = |amount, floor| Command::CounterTake {
            key: b("c"),
            amount,
            floor,
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
            apply(&mut ks, &Command::Exists(vec![b("c")]), 0),
            Value::Int(0),
            "a refused take creates nothing"
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::CounterPut {
                    key: b("c"),
                    amount: 10
                },
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
        ks.insert(b"text", Blob::new(b"abc"), None, 0);
        let refused = apply(
            &mut ks,
            &Command::CounterTake {
                key: b("text"),
                amount: 1,
                floor: 0,
            },
            0,
        );
        assert!(matches!(refused, Value::Error(e) if e.code == ErrorCode::NotInteger as u16));
    }

    #[test]
    fn id_ranges_are_disjoint_and_contiguous() {
        let mut ks = Keyspace::new();
        let range = |size| Command::IdRange {
            key: b("ids"),
            size,
        };
        assert_eq!(
            apply(&mut ks, &range(100), 0),
            Value::Array(vec![Value::Int(1), Value::Int(100)])
        );
        assert_eq!(
            apply(&mut ks, &range(1), 0),
            Value::Array(vec![Value::Int(101), Value::Int(101)])
        );
        ks.insert(b"ids", Blob::Int(i64::MAX - 1), None, 0);
        assert!(
            matches!(apply(&mut ks, &range(2), 0), Value::Error(_)),
            "overflow is refused"
        );
    }

    #[test]
    fn multi_key_parts() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            &Command::MSet(vec![(b("a"), b("1")), (b("b"), b("2"))]),
            0,
        );
        assert_eq!(
            apply(&mut ks, &Command::MGet(vec![b("a"), b("x"), b("b")]), 0),
            Value::Array(vec![Value::Bytes(b("1")), Value::Nil, Value::Bytes(b("2"))])
        );
        assert_eq!(
            apply(&mut ks, &Command::Exists(vec![b("a"), b("a"), b("x")]), 0),
            Value::Int(2)
        );
        assert_eq!(
            apply(&mut ks, &Command::Del(vec![b("a"), b("x")]), 0),
            Value::Int(1)
        );
        assert_eq!(apply(&mut ks, &Command::DbSize, 0), Value::Int(1));
        assert_eq!(apply(&mut ks, &Command::FlushAll, 0), Value::Ok);
        assert_eq!(apply(&mut ks, &Command::DbSize, 0), Value::Int(0));
    }
}
