//! Hashes on one shard: a compact field map with per-field expiry, and the H* commands.
//!
//! A small hash (Redis's listpack limits: at most 128 fields, names and values of at most
//! 64 bytes) is one packed buffer scanned in order, which costs a few bytes per field
//! instead of two allocations and a table slot. A larger one is a hash table. Expired
//! fields are dropped when the hash is next touched, and a timer per hash, set for its
//! earliest field deadline, drops them when nobody touches it; the key goes with its last
//! field.

use super::counters::parse_canonical_int;
use super::*;
use tessera_protocol::commands::hashes::{ExpireCondition, HashCommand, TimeUnit};

mod fields;

use fields::{Field, NEVER};
pub use fields::{FieldMap, FieldTable, Slot};

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &HashCommand<P>, now: u64) -> Value {
    let key = command.single_key().map_or(&[][..], AsRef::as_ref);
    let result = match command {
        HashCommand::Set { pairs, .. } => write(keyspace, key, now, |fields| {
            let added = pairs
                .iter()
                .filter(|(f, v)| fields.put(f.as_ref(), v.as_ref(), NEVER, now))
                .count();
            Ok(Value::Int(added as i64))
        }),
        HashCommand::SetNx { field, value, .. } => write(keyspace, key, now, |fields| {
            let absent = fields.find(field.as_ref(), now).is_none();
            if absent {
                fields.put(field.as_ref(), value.as_ref(), NEVER, now);
            }
            Ok(Value::Int(i64::from(absent)))
        }),
        HashCommand::IncrBy { field, delta, .. } => write(keyspace, key, now, |fields| {
            let (current, deadline) = current_of(fields, field.as_ref(), now);
            let current = match current {
                None => 0,
                Some(text) => parse_canonical_int(text).ok_or_else(|| {
                    ErrorReply::new(ErrorCode::NotInteger, "hash value is not an integer")
                })?,
            };
            let next = current.checked_add(*delta).ok_or_else(|| {
                ErrorReply::new(
                    ErrorCode::NotInteger,
                    "increment or decrement would overflow",
                )
            })?;
            // Formatted on the stack: an increment allocates nothing when it fits in place.
            let mut digits = [0u8; 20];
            let len = {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut digits[..]);
                let _ = write!(cursor, "{next}");
                cursor.position() as usize
            };
            fields.put(field.as_ref(), &digits[..len], deadline, now);
            Ok(Value::Int(next))
        }),
        HashCommand::IncrByFloat { field, delta, .. } => write(keyspace, key, now, |fields| {
            let (current, deadline) = current_of(fields, field.as_ref(), now);
            let current = match current {
                None => 0.0,
                Some(text) => std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        ErrorReply::new(ErrorCode::NotFloat, "hash value is not a float")
                    })?,
            };
            let next = current + delta.get();
            if !next.is_finite() {
                return Err(ErrorReply::new(
                    ErrorCode::NotFloat,
                    "increment would produce NaN or Infinity",
                ));
            }
            let text = format_decimal(next);
            fields.put(field.as_ref(), text.as_bytes(), deadline, now);
            Ok(Value::Bytes(Bytes::from(text)))
        }),
        HashCommand::Del { fields: names, .. } => {
            change(keyspace, key, now, Value::Int(0), |fields| {
                let removed = fields.retain(|f| !names.iter().any(|n| n.as_ref() == f.name));
                Ok(Value::Int(removed as i64))
            })
        }
        HashCommand::Expire {
            ttl,
            unit,
            condition,
            fields: names,
            ..
        } => {
            let missing = Value::Array(vec![Value::Int(-2); names.len()]);
            let deadline = now + ttl * unit.millis() as u64;
            change(keyspace, key, now, missing, |fields| {
                let codes = names
                    .iter()
                    .map(|name| {
                        expire_field(fields, name.as_ref(), *ttl, deadline, *condition, now)
                    })
                    .collect();
                Ok(Value::Array(codes))
            })
        }
        HashCommand::Persist { fields: names, .. } => {
            let missing = Value::Array(vec![Value::Int(-2); names.len()]);
            change(keyspace, key, now, missing, |fields| {
                let codes = names
                    .iter()
                    .map(
                        |name| match fields.find(name.as_ref(), now).map(|f| f.deadline) {
                            None => Value::Int(-2),
                            Some(NEVER) => Value::Int(-1),
                            Some(_) => {
                                fields.set_deadline(name.as_ref(), NEVER, now);
                                Value::Int(1)
                            }
                        },
                    )
                    .collect();
                Ok(Value::Array(codes))
            })
        }
        HashCommand::RandField { count, .. } => rand_field(keyspace, key, *count, now),
        _ => read(keyspace, key, now, command),
    };
    result.unwrap_or_else(Value::Error)
}

/// HRANDFIELD: positions picked first (distinct for a positive count, with repeats for a
/// negative one), then only the picked fields copied out.
fn rand_field(
    keyspace: &mut Keyspace,
    key: &[u8],
    count: Option<(i64, bool)>,
    now: u64,
) -> Result<Value, ErrorReply> {
    let len = match keyspace.get(key, now) {
        Some(Stored::Hash(fields)) => fields.len(now),
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        None => 0,
    };
    let (wanted, with_values) = count.unwrap_or((1, false));
    if len == 0 {
        return Ok(if count.is_some() {
            Value::Array(vec![])
        } else {
            Value::Nil
        });
    }
    let limit = keyspace.reply_limit;
    // Each pick costs at least a few bytes of reply: refuse a count no reply could hold
    // before drawing a single one.
    super::within_reply_limit(wanted.unsigned_abs().saturating_mul(4) as usize, limit)?;
    let picks = super::random_positions(keyspace, len, wanted);
    let Some(Stored::Hash(fields)) = keyspace.get(key, now) else {
        return Ok(Value::Nil);
    };
    let live: Vec<Field<'_>> = fields.live(now).collect();
    let size: usize = picks
        .iter()
        .map(|&at| live[at].name.len() + usize::from(with_values) * live[at].value.len())
        .sum();
    super::within_reply_limit(size, limit)?;
    let bytes = |value: &[u8]| Value::Bytes(Bytes::copy_from_slice(value));
    let reply = |at: usize| match with_values {
        true => Value::Array(vec![bytes(live[at].name), bytes(live[at].value)]),
        false => bytes(live[at].name),
    };
    Ok(match count {
        None => reply(picks[0]),
        Some(_) => Value::Array(picks.into_iter().map(reply).collect()),
    })
}

/// HGET's value, lent out of the keyspace until the reply is written.
///
/// # Errors
/// WRONGTYPE for a key of another kind.
pub fn get<'a>(
    keyspace: &'a mut Keyspace,
    key: &[u8],
    field: &[u8],
    now: u64,
) -> Result<Option<&'a [u8]>, Value> {
    match keyspace.get(key, now) {
        Some(Stored::Hash(fields)) => Ok(fields.find(field, now).map(|f| f.value)),
        Some(_) => Err(wrong_type()),
        None => Ok(None),
    }
}

/// The bytes HGETALL, HKEYS or HVALS would copy out of `fields`; `None` for other reads.
fn whole_reply_size<P>(fields: &FieldMap, now: u64, command: &HashCommand<P>) -> Option<usize> {
    let (names, values) = match command {
        HashCommand::GetAll(_) => (true, true),
        HashCommand::Keys(_) => (true, false),
        HashCommand::Vals(_) => (false, true),
        _ => return None,
    };
    Some(
        fields
            .live(now)
            .map(|f| usize::from(names) * f.name.len() + usize::from(values) * f.value.len())
            .sum(),
    )
}

/// The reads: HGET, HMGET, HGETALL, HKEYS, HVALS, HLEN, HEXISTS, HSTRLEN, HTTL, HPTTL.
fn read<P: Payload>(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    command: &HashCommand<P>,
) -> Result<Value, ErrorReply> {
    let limit = keyspace.reply_limit;
    let empty = FieldMap::default();
    let fields = match keyspace.get(key, now) {
        Some(Stored::Hash(fields)) => fields,
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        None => &empty,
    };
    if let Some(size) = whole_reply_size(fields, now, command) {
        super::within_reply_limit(size, limit)?;
    }
    let bytes = |value: &[u8]| Value::Bytes(Bytes::copy_from_slice(value));
    let value_of = |name: &P| {
        fields
            .find(name.as_ref(), now)
            .map_or(Value::Nil, |f| bytes(f.value))
    };
    Ok(match command {
        HashCommand::Get { field, .. } => value_of(field),
        HashCommand::MGet { fields: names, .. } => {
            Value::Array(names.iter().map(value_of).collect())
        }
        HashCommand::GetAll(_) => Value::Map(
            fields
                .live(now)
                .map(|f| (bytes(f.name), bytes(f.value)))
                .collect(),
        ),
        HashCommand::Keys(_) => Value::Array(fields.live(now).map(|f| bytes(f.name)).collect()),
        HashCommand::Vals(_) => Value::Array(fields.live(now).map(|f| bytes(f.value)).collect()),
        HashCommand::Len(_) => Value::Int(fields.len(now) as i64),
        HashCommand::Exists { field, .. } => {
            Value::Int(i64::from(fields.find(field.as_ref(), now).is_some()))
        }
        HashCommand::StrLen { field, .. } => Value::Int(
            fields
                .find(field.as_ref(), now)
                .map_or(0, |f| f.value.len() as i64),
        ),
        HashCommand::Ttl {
            unit,
            fields: names,
            ..
        } => Value::Array(
            names
                .iter()
                .map(|name| match fields.find(name.as_ref(), now) {
                    None => Value::Int(-2),
                    Some(Field {
                        deadline: NEVER, ..
                    }) => Value::Int(-1),
                    Some(field) => {
                        let left = field.deadline.saturating_sub(now) as i64;
                        Value::Int(match unit {
                            TimeUnit::Seconds => (left + 500) / 1000,
                            TimeUnit::Millis => left,
                        })
                    }
                })
                .collect(),
        ),
        _ => Value::error(ErrorCode::Internal, "not a hash read"),
    })
}

/// A field's current text and deadline, for the increments (which keep the deadline).
fn current_of<'a>(fields: &'a FieldMap, name: &[u8], now: u64) -> (Option<&'a [u8]>, u64) {
    match fields.find(name, now) {
        Some(field) => (Some(field.value), field.deadline),
        None => (None, NEVER),
    }
}

/// One field of HEXPIRE: its reply code.
fn expire_field(
    fields: &mut FieldMap,
    name: &[u8],
    ttl: u64,
    deadline: u64,
    condition: ExpireCondition,
    now: u64,
) -> Value {
    let Some(current) = fields.find(name, now).map(|f| f.deadline) else {
        return Value::Int(-2);
    };
    // No expiry counts as forever for GT and LT.
    let current_or_forever = if current == NEVER { u64::MAX } else { current };
    let allowed = match condition {
        ExpireCondition::Always => true,
        ExpireCondition::IfNone => current == NEVER,
        ExpireCondition::IfSome => current != NEVER,
        ExpireCondition::IfLater => deadline > current_or_forever,
        ExpireCondition::IfEarlier => deadline < current_or_forever,
        ExpireCondition::IfSomeEarlier => current != NEVER && deadline < current_or_forever,
    };
    if !allowed {
        return Value::Int(0);
    }
    if ttl == 0 {
        fields.retain(|f| f.name != name);
        return Value::Int(2);
    }
    fields.set_deadline(name, deadline, now);
    Value::Int(1)
}

/// Runs a write on the hash at `key`, creating it if missing.
fn write(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    change: impl FnOnce(&mut FieldMap) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        let mut fields = FieldMap::default();
        let reply = change(&mut fields)?;
        let timer = fields.earliest_deadline();
        keyspace.write(found, key, Stored::Hash(fields), None);
        if let Some(at) = timer {
            keyspace.schedule(at, key);
        }
        return Ok(reply);
    }
    apply_to_existing(keyspace, found, key, now, change)
}

/// Runs a change on an existing hash; a missing key answers `missing` and creates nothing.
fn change(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    missing: Value,
    change: impl FnOnce(&mut FieldMap) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        return Ok(missing);
    }
    apply_to_existing(keyspace, found, key, now, change)
}

fn apply_to_existing(
    keyspace: &mut Keyspace,
    found: Found,
    key: &[u8],
    now: u64,
    change: impl FnOnce(&mut FieldMap) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Hash(fields) => {
            let before = fields.earliest_deadline();
            fields.purge_given(before, now);
            let reply = change(fields);
            let after = fields.earliest_deadline();
            Some((
                reply,
                fields.is_empty(now),
                after.filter(|a| Some(*a) != before),
            ))
        }
        _ => None,
    });
    match outcome.flatten() {
        None => Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        Some((reply, empty, timer)) => {
            if empty {
                keyspace.remove(key, now);
            } else if let Some(at) = timer {
                keyspace.schedule(at, key);
            }
            reply
        }
    }
}

/// A hash's timer has come: drop its expired fields, the key with the last of them, and
/// look again at the next deadline.
pub fn expire_fields(keyspace: &mut Keyspace, key: &[u8], now: u64) {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Hash(fields) => {
            fields.purge(now);
            Some((fields.is_empty(now), fields.earliest_deadline()))
        }
        _ => None,
    });
    match outcome.flatten() {
        Some((true, _)) => {
            keyspace.remove(key, now);
        }
        Some((false, Some(at))) => keyspace.schedule(at, key),
        _ => {}
    }
}

/// A decimal as Redis writes HINCRBYFLOAT results: the shortest text that reads back as
/// the same number, without a trailing `.0`.
pub(crate) fn format_decimal(value: f64) -> String {
    let text = value.to_string();
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests;
