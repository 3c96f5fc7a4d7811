//! The key/value family on one shard: GET/SET, expiry, INCRBY/DECRBY, MGET/MSET.

use super::counters::incr_by;
use super::*;
use tessera_protocol::commands::hashes::ExpireCondition;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &KeyCommand<P>, now: u64) -> Value {
    let reply = run(keyspace, command, now);
    if !keyspace.watches.is_empty() {
        // SET, MSET, DEL and the expiry commands can replace or remove a watched user's
        // presence record; its watchers must hear it.
        let written: Vec<&[u8]> = match command {
            KeyCommand::Set(args) => vec![args.key.as_ref()],
            KeyCommand::Del(keys) => keys.iter().map(AsRef::as_ref).collect(),
            KeyCommand::MSet(pairs) => pairs.iter().map(|(key, _)| key.as_ref()).collect(),
            KeyCommand::Expire { key, .. } | KeyCommand::PExpire { key, .. } => vec![key.as_ref()],
            _ => Vec::new(),
        };
        for key in written {
            watch::key_written(keyspace, key, now);
        }
    }
    reply
}

fn run<P: Payload>(keyspace: &mut Keyspace, command: &KeyCommand<P>, now: u64) -> Value {
    match command {
        KeyCommand::Get(key) => match keyspace.get(key.as_ref(), now) {
            Some(Stored::Blob(blob)) => to_value(blob),
            Some(_) => wrong_type(),
            None => Value::Nil,
        },
        KeyCommand::Set(args) => set(keyspace, args, now),
        KeyCommand::Del(keys) => count(keys, |k| keyspace.remove(k, now)),
        KeyCommand::Exists(keys) => count(keys, |k| keyspace.contains(k, now)),
        KeyCommand::Expire {
            key,
            seconds,
            condition,
        } => match seconds.checked_mul(1000) {
            Some(ms) => expire(keyspace, key.as_ref(), ms, *condition, now),
            None => invalid_expire("expire"),
        },
        KeyCommand::PExpire {
            key,
            millis,
            condition,
        } => match expire(keyspace, key.as_ref(), *millis, *condition, now) {
            Value::Error(_) => invalid_expire("pexpire"),
            reply => reply,
        },
        KeyCommand::Ttl(key) => ttl(keyspace, key.as_ref(), now, |ms| (ms + 500) / 1000),
        KeyCommand::PTtl(key) => ttl(keyspace, key.as_ref(), now, |ms| ms),
        KeyCommand::Persist(key) => {
            let had_deadline = matches!(keyspace.deadline(key.as_ref(), now), Some(Some(_)));
            if had_deadline {
                keyspace.set_deadline(key.as_ref(), None, now);
            }
            Value::Int(i64::from(had_deadline))
        }
        KeyCommand::IncrBy { key, delta } => incr_by(keyspace, key.as_ref(), *delta, now),
        KeyCommand::DecrBy { key, delta } => match delta.checked_neg() {
            Some(delta) => incr_by(keyspace, key.as_ref(), delta, now),
            None => overflow(),
        },
        KeyCommand::MGet(keys) => match mget(keyspace, keys, now) {
            Ok(values) => Value::Array(
                values
                    .into_iter()
                    .map(|value| value.map_or(Value::Nil, Value::Bytes))
                    .collect(),
            ),
            Err(error) => Value::Error(error),
        },
        KeyCommand::MSet(pairs) => {
            for (key, value) in pairs {
                keyspace.insert(key.as_ref(), Blob::new(value.as_ref()).into(), None, now);
            }
            Value::Ok
        }
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
    let old = match (args.get, keyspace.value(&found)) {
        (true, Some(Stored::Blob(blob))) => to_value(blob),
        (true, Some(_)) => return wrong_type(),
        _ => Value::Nil,
    };
    if !proceed {
        return old;
    }
    let deadline = match args.expiry {
        SetExpiry::Clear => None,
        SetExpiry::Keep => current_deadline.flatten(),
        SetExpiry::In(ms) => Some(now + ms),
        SetExpiry::At(at) if at > now + MAX_EXPIRE_MS as u64 => return invalid_expire("set"),
        SetExpiry::At(at) => Some(at),
    };
    if deadline.is_some_and(|at| at <= now) {
        // Written and lapsed at once, as Redis has it: the key is simply gone.
        keyspace.remove(key, now);
    } else {
        keyspace.write(found, key, Blob::new(args.value.as_ref()).into(), deadline);
    }
    if args.get {
        old
    } else {
        Value::Ok
    }
}

fn expire(
    keyspace: &mut Keyspace,
    key: &[u8],
    ms: i64,
    condition: ExpireCondition,
    now: u64,
) -> Value {
    if ms > MAX_EXPIRE_MS {
        return invalid_expire("expire");
    }
    // A time to live of zero or less is a time already past, whatever its size.
    let at = (now as i64).checked_add(ms).unwrap_or(0);
    super::strings::expire_at(keyspace, key, at, condition, now)
}

fn ttl(keyspace: &mut Keyspace, key: &[u8], now: u64, scale: impl Fn(i64) -> i64) -> Value {
    match keyspace.deadline(key, now) {
        None => Value::Int(-2),
        Some(None) => Value::Int(-1),
        Some(Some(deadline)) => Value::Int(scale(deadline.saturating_sub(now) as i64)),
    }
}

/// Each key's value in order; `None` for a missing key or one of another kind.
pub fn mget<P: Payload>(
    keyspace: &mut Keyspace,
    keys: &[P],
    now: u64,
) -> Result<Vec<Option<Bytes>>, ErrorReply> {
    // Measure before copying: a request naming a large value many times is refused
    // before it costs the memory its reply would.
    let mut size = 0usize;
    for key in keys {
        if let Some(Stored::Blob(blob)) = keyspace.get(key.as_ref(), now) {
            size += blob.as_bytes().map_or(20, <[u8]>::len);
        }
    }
    super::within_reply_limit(size, keyspace.reply_limit)?;
    Ok(keys
        .iter()
        .map(|k| match keyspace.get(k.as_ref(), now) {
            Some(Stored::Blob(blob)) => match to_value(blob) {
                Value::Bytes(bytes) => Some(bytes),
                _ => None,
            },
            _ => None,
        })
        .collect())
}
