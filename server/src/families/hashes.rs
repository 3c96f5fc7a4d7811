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

/// Most fields a packed hash holds before it becomes a table.
const PACKED_MAX_FIELDS: usize = 128;
/// Longest field name or value a packed hash holds.
const PACKED_MAX_BYTES: usize = 64;
/// Deadline meaning "never expires".
const NEVER: u64 = 0;

/// One field as read out of a hash.
struct Field<'a> {
    name: &'a [u8],
    value: &'a [u8],
    /// Milliseconds on the server clock, or `NEVER`.
    deadline: u64,
}

/// A field's value and deadline in the table form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    value: Box<[u8]>,
    deadline: u64,
}

/// The table form: fields, and how many of them have a deadline, so a hash without field
/// expiry never scans for one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldTable {
    fields: hashbrown::HashMap<Box<[u8]>, Slot>,
    expiring: usize,
}

/// A hash's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldMap {
    /// `expiring:uvarint` (fields with a deadline), then entries one after another:
    /// `deadline:uvarint name_len:uvarint name value_len:uvarint value`. Empty when the
    /// hash is.
    Packed(Box<[u8]>),
    /// A table, for hashes past the packed limits.
    Table(Box<FieldTable>),
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap::Packed(Box::default())
    }
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push(value as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn take_varint(buf: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    while let Some(&byte) = buf.get(*at) {
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    value
}

/// A packed buffer's count of fields with a deadline, and where its entries start.
fn header(buf: &[u8]) -> (u64, usize) {
    let mut at = 0;
    let expiring = take_varint(buf, &mut at);
    (expiring, at)
}

/// Reads the packed entries in order.
fn packed(buf: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let (_, mut at) = header(buf);
    std::iter::from_fn(move || {
        if at >= buf.len() {
            return None;
        }
        let deadline = take_varint(buf, &mut at);
        let len = take_varint(buf, &mut at) as usize;
        let name = &buf[at..at + len];
        at += len;
        let len = take_varint(buf, &mut at) as usize;
        let value = &buf[at..at + len];
        at += len;
        Some(Field {
            name,
            value,
            deadline,
        })
    })
}

/// A packed buffer holding `fields`, its header counted.
fn repack<'a>(fields: impl Iterator<Item = Field<'a>>) -> Box<[u8]> {
    let mut body = Vec::new();
    let mut expiring = 0;
    for field in fields {
        expiring += u64::from(field.deadline != NEVER);
        put_varint(&mut body, field.deadline);
        put_varint(&mut body, field.name.len() as u64);
        body.extend_from_slice(field.name);
        put_varint(&mut body, field.value.len() as u64);
        body.extend_from_slice(field.value);
    }
    if body.is_empty() {
        return Box::default();
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    put_varint(&mut out, expiring);
    out.extend_from_slice(&body);
    out.into_boxed_slice()
}

fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Rewrites a live field in place when its new value and deadline take the bytes the old
/// ones took and it keeps (or keeps lacking) a deadline: the usual HSET of a same-size
/// value and HINCRBY of a same-width number. `false` (and nothing changed) otherwise.
fn overwrite(buf: &mut [u8], name: &[u8], value: &[u8], deadline: u64, now: u64) -> bool {
    let (_, mut at) = header(buf);
    while at < buf.len() {
        let start = at;
        let old_deadline = take_varint(buf, &mut at);
        let len = take_varint(buf, &mut at) as usize;
        let matches = &buf[at..at + len] == name;
        at += len;
        let value_len = take_varint(buf, &mut at) as usize;
        let value_at = at;
        at += value_len;
        if !matches {
            continue;
        }
        let fits = live(old_deadline, now)
            && value_len == value.len()
            && (old_deadline == NEVER) == (deadline == NEVER)
            && varint_len(old_deadline) == varint_len(deadline);
        if !fits {
            return false;
        }
        let mut encoded = Vec::with_capacity(10);
        put_varint(&mut encoded, deadline);
        buf[start..start + encoded.len()].copy_from_slice(&encoded);
        buf[value_at..value_at + value_len].copy_from_slice(value);
        return true;
    }
    false
}

fn live(deadline: u64, now: u64) -> bool {
    deadline == NEVER || deadline > now
}

impl FieldMap {
    fn iter(&self) -> Box<dyn Iterator<Item = Field<'_>> + '_> {
        match self {
            FieldMap::Packed(buf) => Box::new(packed(buf)),
            FieldMap::Table(table) => Box::new(table.fields.iter().map(|(name, slot)| Field {
                name,
                value: &slot.value,
                deadline: slot.deadline,
            })),
        }
    }

    /// Live fields at `now`, in storage order.
    fn live(&self, now: u64) -> impl Iterator<Item = Field<'_>> {
        self.iter().filter(move |field| live(field.deadline, now))
    }

    fn find(&self, name: &[u8], now: u64) -> Option<Field<'_>> {
        match self {
            FieldMap::Packed(buf) => packed(buf).find(|f| f.name == name),
            FieldMap::Table(table) => table.fields.get_key_value(name).map(|(name, slot)| Field {
                name,
                value: &slot.value,
                deadline: slot.deadline,
            }),
        }
        .filter(|field| live(field.deadline, now))
    }

    /// Live fields at `now`.
    pub fn len(&self, now: u64) -> usize {
        self.live(now).count()
    }

    /// Whether no field is live at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        self.live(now).next().is_none()
    }

    /// The earliest field deadline, if any field has one; free for hashes without.
    fn earliest_deadline(&self) -> Option<u64> {
        let expiring = match self {
            FieldMap::Packed(buf) => header(buf).0 as usize,
            FieldMap::Table(table) => table.expiring,
        };
        if expiring == 0 {
            return None;
        }
        self.iter()
            .map(|f| f.deadline)
            .filter(|&d| d != NEVER)
            .min()
    }

    /// Writes `value` (and `deadline`) to `name`; `true` if the field is new.
    fn put(&mut self, name: &[u8], value: &[u8], deadline: u64, now: u64) -> bool {
        if let FieldMap::Table(table) = self {
            let slot = Slot {
                value: value.into(),
                deadline,
            };
            let previous = table.fields.insert(name.into(), slot);
            let was_expiring = previous.as_ref().is_some_and(|slot| slot.deadline != NEVER);
            table.expiring =
                table.expiring + usize::from(deadline != NEVER) - usize::from(was_expiring);
            return previous.is_none_or(|slot| !live(slot.deadline, now));
        }
        let FieldMap::Packed(buf) = self else {
            return false;
        };
        if overwrite(buf, name, value, deadline, now) {
            return false;
        }
        let mut new = true;
        let mut fields = 0;
        let written = Field {
            name,
            value,
            deadline,
        };
        let kept = packed(buf).filter(|field| {
            if field.name == name {
                new = !live(field.deadline, now);
                return false;
            }
            fields += 1;
            true
        });
        let out = repack(kept.chain(std::iter::once(written)));
        *buf = out;
        if fields + 1 > PACKED_MAX_FIELDS
            || name.len() > PACKED_MAX_BYTES
            || value.len() > PACKED_MAX_BYTES
        {
            self.make_table();
        }
        new
    }

    fn make_table(&mut self) {
        let mut table = FieldTable::default();
        for field in self.iter() {
            table.expiring += usize::from(field.deadline != NEVER);
            let slot = Slot {
                value: field.value.into(),
                deadline: field.deadline,
            };
            table.fields.insert(field.name.into(), slot);
        }
        *self = FieldMap::Table(Box::new(table));
    }

    /// Keeps the fields `keep` says to, rewriting a packed buffer only if one goes.
    fn retain(&mut self, mut keep: impl FnMut(&Field<'_>) -> bool) -> usize {
        match self {
            FieldMap::Table(table) => {
                let (before, mut dropped_expiring) = (table.fields.len(), 0);
                table.fields.retain(|name, slot| {
                    let kept = keep(&Field {
                        name,
                        value: &slot.value,
                        deadline: slot.deadline,
                    });
                    dropped_expiring += usize::from(!kept && slot.deadline != NEVER);
                    kept
                });
                table.expiring -= dropped_expiring;
                before - table.fields.len()
            }
            FieldMap::Packed(buf) => {
                if packed(buf).all(|f| keep(&f)) {
                    return 0;
                }
                let before = packed(buf).count();
                let out = repack(packed(buf).filter(|f| keep(f)));
                *buf = out;
                before - packed(buf).count()
            }
        }
    }

    /// Drops fields whose deadline has passed.
    fn purge(&mut self, now: u64) {
        if self.earliest_deadline().is_some_and(|d| d <= now) {
            self.retain(|f| live(f.deadline, now));
        }
    }

    /// Sets a live field's deadline (`NEVER` clears it); `false` if the field is missing.
    fn set_deadline(&mut self, name: &[u8], deadline: u64, now: u64) -> bool {
        match self {
            FieldMap::Table(table) => match table.fields.get_mut(name) {
                Some(slot) if live(slot.deadline, now) => {
                    table.expiring = table.expiring + usize::from(deadline != NEVER)
                        - usize::from(slot.deadline != NEVER);
                    slot.deadline = deadline;
                    true
                }
                _ => false,
            },
            FieldMap::Packed(_) => {
                let Some(value) = self.find(name, now).map(|f| f.value.to_vec()) else {
                    return false;
                };
                self.put(name, &value, deadline, now);
                true
            }
        }
    }

    /// Heap bytes owned, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            FieldMap::Packed(buf) => buf.len(),
            FieldMap::Table(table) => {
                let entry = std::mem::size_of::<(Box<[u8]>, Slot)>() + 1;
                let named: usize = table
                    .fields
                    .iter()
                    .map(|(name, slot)| name.len() + slot.value.len())
                    .sum();
                std::mem::size_of::<FieldTable>() + table.fields.capacity() * entry + named
            }
        }
    }
}

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
            fields.put(field.as_ref(), next.to_string().as_bytes(), deadline, now);
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
        _ => read(keyspace, key, now, command),
    };
    result.unwrap_or_else(Value::Error)
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

/// The reads: HGET, HMGET, HGETALL, HKEYS, HVALS, HLEN, HEXISTS, HSTRLEN, HTTL, HPTTL.
fn read<P: Payload>(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    command: &HashCommand<P>,
) -> Result<Value, ErrorReply> {
    let empty = FieldMap::default();
    let fields = match keyspace.get(key, now) {
        Some(Stored::Hash(fields)) => fields,
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        None => &empty,
    };
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
            fields.purge(now);
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
fn format_decimal(value: f64) -> String {
    let text = value.to_string();
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
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
}
