//! Bounded counters and id blocks on one shard; INCRBY shares their counter step.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &CounterCommand<P>, now: u64) -> Value {
    match command {
        CounterCommand::Take { key, amount, floor } => {
            counter_take(keyspace, key.as_ref(), *amount as i64, *floor, now)
        }
        CounterCommand::Put { key, amount } => incr_by(keyspace, key.as_ref(), *amount as i64, now),
        CounterCommand::IdRange { key, size } => {
            id_range(keyspace, key.as_ref(), *size as i64, now)
        }
    }
}

/// The integer a counter holds: `Ok(None)` if the key is missing, `Err` with the reply to
/// send if it holds something that is not an integer.
fn read_counter(keyspace: &Keyspace, found: &Found) -> Result<Option<i64>, Value> {
    match keyspace.value(found) {
        None => Ok(None),
        Some(Stored::Blob(Blob::Int(n))) => Ok(Some(*n)),
        Some(Stored::Blob(text)) => text
            .as_bytes()
            .and_then(parse_canonical_int)
            .map(Some)
            .ok_or_else(|| {
                Value::error(
                    ErrorCode::NotInteger,
                    "value is not an integer or out of range",
                )
            }),
        Some(_) => Err(wrong_type()),
    }
}

/// Stores `value` in a counter, keeping an existing key's expiry.
fn write_counter(keyspace: &mut Keyspace, found: Found, key: &[u8], value: i64) {
    if found.exists() {
        keyspace.replace_value(&found, Blob::Int(value).into());
    } else {
        keyspace.write(found, key, Blob::Int(value).into(), None);
    }
}

/// Adds `delta` to a counter (a missing key is 0); returns the values before and after.
fn add_to_counter(
    keyspace: &mut Keyspace,
    key: &[u8],
    delta: i64,
    now: u64,
) -> Result<(i64, i64), Value> {
    let found = keyspace.find(key, now);
    let before = read_counter(keyspace, &found)?.unwrap_or(0);
    let after = before.checked_add(delta).ok_or_else(overflow)?;
    write_counter(keyspace, found, key, after);
    Ok((before, after))
}

pub(super) fn incr_by(keyspace: &mut Keyspace, key: &[u8], delta: i64, now: u64) -> Value {
    match add_to_counter(keyspace, key, delta, now) {
        Ok((_, after)) => Value::Int(after),
        Err(reply) => reply,
    }
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
    match add_to_counter(keyspace, key, size, now) {
        Ok((last_issued, last)) => {
            Value::Array(vec![Value::Int(last_issued + 1), Value::Int(last)])
        }
        Err(reply) => reply,
    }
}

/// Parses an integer written the way `to_value` would write it back (no `+`, no spaces,
/// no leading zeros), so INCRBY never silently rewrites a value's text.
pub(super) fn parse_canonical_int(raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}
