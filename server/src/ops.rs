//! Shard-side operations: synchronous functions on one shard's keyspace that return values.
//!
//! Nothing here knows about connections, replies or other shards; a coordinator hands in a
//! command whose keys this shard owns and gets a `Value` back.

use bytes::Bytes;
use tessera_protocol::command::MAX_EXPIRE_MS;
use tessera_protocol::wire::Payload;
use tessera_protocol::{Command, ErrorCode, SetArgs, SetCondition, SetExpiry, Value};

use crate::keyspace::{Blob, Keyspace};

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

fn incr_by(keyspace: &mut Keyspace, key: &[u8], delta: i64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let current = match keyspace.value(&found) {
        None => None,
        Some(Blob::Int(n)) => Some(*n),
        Some(text) => match text.as_bytes().and_then(parse_canonical_int) {
            Some(n) => Some(n),
            None => {
                return Value::error(
                    ErrorCode::NotInteger,
                    "value is not an integer or out of range",
                )
            }
        },
    };
    let Some(next) = current.unwrap_or(0).checked_add(delta) else {
        return overflow();
    };
    if found.exists() {
        keyspace.replace_value(&found, Blob::Int(next));
    } else {
        keyspace.write(found, key, Blob::Int(next), None);
    }
    Value::Int(next)
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
