//! Hashes: fields and values under one key, with Redis 7.4's per-field expiry.
//!
//! Replies follow Redis: HSET counts new fields, HGETALL is a map, HINCRBYFLOAT answers
//! the new value as text, and the field-expiry commands answer one code per field
//! (`-2` no such field, `-1` no expiry, `0` condition not met, `1` set, `2` deleted).

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{checked_ttl, read_key};
use super::split::Split;
use super::{CommandSpec, KeySpec, MAX_KEY_BYTES};
use crate::error::DecodeError;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

mod text;
mod typed;

/// The family's opcodes; stable once published.
pub mod opcode {
    /// HSET
    pub const HSET: u16 = 0x00b0;
    /// HSETNX
    pub const HSETNX: u16 = 0x00b1;
    /// HGET
    pub const HGET: u16 = 0x00b2;
    /// HMGET
    pub const HMGET: u16 = 0x00b3;
    /// HDEL
    pub const HDEL: u16 = 0x00b4;
    /// HGETALL
    pub const HGETALL: u16 = 0x00b5;
    /// HKEYS
    pub const HKEYS: u16 = 0x00b6;
    /// HVALS
    pub const HVALS: u16 = 0x00b7;
    /// HLEN
    pub const HLEN: u16 = 0x00b8;
    /// HEXISTS
    pub const HEXISTS: u16 = 0x00b9;
    /// HINCRBY
    pub const HINCRBY: u16 = 0x00ba;
    /// HINCRBYFLOAT
    pub const HINCRBYFLOAT: u16 = 0x00bb;
    /// HSTRLEN
    pub const HSTRLEN: u16 = 0x00bc;
    /// HEXPIRE
    pub const HEXPIRE: u16 = 0x00bd;
    /// HPEXPIRE
    pub const HPEXPIRE: u16 = 0x00be;
    /// HTTL
    pub const HTTL: u16 = 0x00bf;
    /// HPTTL
    pub const HPTTL: u16 = 0x00c0;
    /// HPERSIST
    pub const HPERSIST: u16 = 0x00c1;
    /// HRANDFIELD
    pub const HRANDFIELD: u16 = 0x00c2;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::HSET,
        name: "HSET",
        syntax: "key field value [field value ...]",
        wire: "key:bytes count:uvarint (field:bytes value:bytes)*count",
        reply: "INT fields added (fields that existed are overwritten and count 0)",
        summary: "Sets fields of a hash, creating it if missing; an overwritten field loses its expiry.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HSETNX,
        name: "HSETNX",
        syntax: "key field value",
        wire: "key:bytes field:bytes value:bytes",
        reply: "INT 1 if the field was set, 0 if it existed",
        summary: "Sets a field only if it does not exist.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HGET,
        name: "HGET",
        syntax: "key field",
        wire: "key:bytes field:bytes",
        reply: "BYTES, or NIL if the field or key is missing",
        summary: "Reads one field.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HMGET,
        name: "HMGET",
        syntax: "key field [field ...]",
        wire: "key:bytes count:uvarint field:bytes*count",
        reply: "ARRAY of BYTES or NIL, one per field in the order given",
        summary: "Reads several fields of one hash.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HDEL,
        name: "HDEL",
        syntax: "key field [field ...]",
        wire: "key:bytes count:uvarint field:bytes*count",
        reply: "INT fields removed; the key goes with its last field",
        summary: "Removes fields.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HGETALL,
        name: "HGETALL",
        syntax: "key",
        wire: "key:bytes",
        reply: "MAP {field: value} (empty if the key is missing)",
        summary: "Reads every field and value.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HKEYS,
        name: "HKEYS",
        syntax: "key",
        wire: "key:bytes",
        reply: "ARRAY of BYTES field names",
        summary: "Lists the field names.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HVALS,
        name: "HVALS",
        syntax: "key",
        wire: "key:bytes",
        reply: "ARRAY of BYTES values, in the order HKEYS lists their fields",
        summary: "Lists the values.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HLEN,
        name: "HLEN",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT fields (0 if the key is missing)",
        summary: "Counts the fields.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HEXISTS,
        name: "HEXISTS",
        syntax: "key field",
        wire: "key:bytes field:bytes",
        reply: "INT 1 if the field exists, else 0",
        summary: "Tells whether a field exists.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HINCRBY,
        name: "HINCRBY",
        syntax: "key field increment",
        wire: "key:bytes field:bytes increment:ivarint",
        reply: "INT the new value; NOT_INTEGER if the field is not an integer or would overflow",
        summary: "Adds to an integer field (a missing field is 0); the field keeps its expiry.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HINCRBYFLOAT,
        name: "HINCRBYFLOAT",
        syntax: "key field increment",
        wire: "key:bytes field:bytes increment:f64 (finite)",
        reply: "BYTES the new value as decimal text; NOT_FLOAT if the field is not a number or the result is not finite",
        summary: "Adds to a decimal field (a missing field is 0); the field keeps its expiry.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HSTRLEN,
        name: "HSTRLEN",
        syntax: "key field",
        wire: "key:bytes field:bytes",
        reply: "INT the value's length in bytes (0 if missing)",
        summary: "Length of one field's value.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HEXPIRE,
        name: "HEXPIRE",
        syntax: "key seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]",
        wire: "key:bytes seconds:uvarint condition:u8 (0 none, 1 NX, 2 XX, 3 GT, 4 LT) count:uvarint field:bytes*count",
        reply: "ARRAY of INT per field: -2 no such field, 0 condition not met, 1 expiry set, 2 deleted (expiry 0)",
        summary: "Sets the fields' time to live in seconds; NX only without one, XX only with one, GT/LT only if later/earlier (no expiry counts as forever).",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HPEXPIRE,
        name: "HPEXPIRE",
        syntax: "key milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]",
        wire: "key:bytes milliseconds:uvarint condition:u8 count:uvarint field:bytes*count",
        reply: "as HEXPIRE",
        summary: "HEXPIRE in milliseconds.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HTTL,
        name: "HTTL",
        syntax: "key FIELDS numfields field [field ...]",
        wire: "key:bytes count:uvarint field:bytes*count",
        reply: "ARRAY of INT per field: seconds left (rounded), -1 no expiry, -2 no such field",
        summary: "Each field's time to live in seconds.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HPTTL,
        name: "HPTTL",
        syntax: "key FIELDS numfields field [field ...]",
        wire: "key:bytes count:uvarint field:bytes*count",
        reply: "ARRAY of INT per field: milliseconds left, -1 no expiry, -2 no such field",
        summary: "Each field's time to live in milliseconds.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HPERSIST,
        name: "HPERSIST",
        syntax: "key FIELDS numfields field [field ...]",
        wire: "key:bytes count:uvarint field:bytes*count",
        reply: "ARRAY of INT per field: 1 expiry removed, -1 no expiry, -2 no such field",
        summary: "Removes the fields' expiry.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::HRANDFIELD,
        name: "HRANDFIELD",
        syntax: "key [count [WITHVALUES]]",
        wire: "key:bytes has_count:u8 [count:ivarint with_values:u8 if 1]",
        reply: "without a count: BYTES a field, or NIL; with one: ARRAY of distinct fields (a negative count: that many picks, repeats allowed), or of [field, value] pairs",
        summary: "Picks fields at random.",
        writes: false,
        keys: KeySpec::Single,
    },
];

/// When HEXPIRE may change a field's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    /// Always.
    #[default]
    Always,
    /// Only if the field has no expiry (NX).
    IfNone,
    /// Only if the field has an expiry (XX).
    IfSome,
    /// Only if the new expiry is later (GT); no expiry counts as forever.
    IfLater,
    /// Only if the new expiry is earlier (LT); no expiry counts as forever.
    IfEarlier,
    /// Only if there is an expiry and the new one is earlier (XX and LT together).
    IfSomeEarlier,
}

impl ExpireCondition {
    pub(crate) fn tag(self) -> u8 {
        match self {
            ExpireCondition::Always => 0,
            ExpireCondition::IfNone => 1,
            ExpireCondition::IfSome => 2,
            ExpireCondition::IfLater => 3,
            ExpireCondition::IfEarlier => 4,
            ExpireCondition::IfSomeEarlier => 5,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Result<ExpireCondition, DecodeError> {
        Ok(match tag {
            0 => ExpireCondition::Always,
            1 => ExpireCondition::IfNone,
            2 => ExpireCondition::IfSome,
            3 => ExpireCondition::IfLater,
            4 => ExpireCondition::IfEarlier,
            5 => ExpireCondition::IfSomeEarlier,
            _ => return Err(DecodeError::Invalid("unknown expire condition")),
        })
    }
}

/// The unit a field-expiry command counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds (HEXPIRE, HTTL).
    Seconds,
    /// Milliseconds (HPEXPIRE, HPTTL).
    Millis,
}

impl TimeUnit {
    /// Milliseconds in one unit.
    pub fn millis(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1000,
            TimeUnit::Millis => 1,
        }
    }
}

/// A finite number (never NaN), so requests holding one compare and hash exactly.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Finite(f64);

impl Eq for Finite {}

impl Finite {
    /// Zero.
    pub const ZERO: Finite = Finite(0.0);

    /// `value` if it is a number (infinities allowed, NaN refused).
    pub fn new(value: f64) -> Option<Finite> {
        (!value.is_nan()).then_some(Finite(value))
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashCommand<P = Bytes> {
    /// HSET key field value [field value ...]
    Set {
        /// Hash.
        key: P,
        /// Fields and their new values.
        pairs: Vec<(P, P)>,
    },
    /// HSETNX key field value
    SetNx {
        /// Hash.
        key: P,
        /// Field.
        field: P,
        /// Value, if the field is new.
        value: P,
    },
    /// HGET key field
    Get {
        /// Hash.
        key: P,
        /// Field.
        field: P,
    },
    /// HMGET key field...
    MGet {
        /// Hash.
        key: P,
        /// Fields.
        fields: Vec<P>,
    },
    /// HDEL key field...
    Del {
        /// Hash.
        key: P,
        /// Fields.
        fields: Vec<P>,
    },
    /// HGETALL key
    GetAll(P),
    /// HKEYS key
    Keys(P),
    /// HVALS key
    Vals(P),
    /// HLEN key
    Len(P),
    /// HEXISTS key field
    Exists {
        /// Hash.
        key: P,
        /// Field.
        field: P,
    },
    /// HINCRBY key field increment
    IncrBy {
        /// Hash.
        key: P,
        /// Field.
        field: P,
        /// Amount added.
        delta: i64,
    },
    /// HINCRBYFLOAT key field increment
    IncrByFloat {
        /// Hash.
        key: P,
        /// Field.
        field: P,
        /// Amount added.
        delta: Finite,
    },
    /// HSTRLEN key field
    StrLen {
        /// Hash.
        key: P,
        /// Field.
        field: P,
    },
    /// HEXPIRE / HPEXPIRE key time [condition] FIELDS n field...
    Expire {
        /// Hash.
        key: P,
        /// Time to live, in `unit`s.
        ttl: u64,
        /// Seconds (HEXPIRE) or milliseconds (HPEXPIRE).
        unit: TimeUnit,
        /// When a field's expiry may change.
        condition: ExpireCondition,
        /// Fields.
        fields: Vec<P>,
    },
    /// HTTL / HPTTL key FIELDS n field...
    Ttl {
        /// Hash.
        key: P,
        /// Seconds (HTTL) or milliseconds (HPTTL).
        unit: TimeUnit,
        /// Fields.
        fields: Vec<P>,
    },
    /// HPERSIST key FIELDS n field...
    Persist {
        /// Hash.
        key: P,
        /// Fields.
        fields: Vec<P>,
    },
    /// HRANDFIELD key [count [WITHVALUES]]
    RandField {
        /// Hash.
        key: P,
        /// How many, and whether with their values; `None` for one field alone.
        count: Option<(i64, bool)>,
    },
}

impl<P: Payload> HashCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            HashCommand::Set { .. } => opcode::HSET,
            HashCommand::SetNx { .. } => opcode::HSETNX,
            HashCommand::Get { .. } => opcode::HGET,
            HashCommand::MGet { .. } => opcode::HMGET,
            HashCommand::Del { .. } => opcode::HDEL,
            HashCommand::GetAll(_) => opcode::HGETALL,
            HashCommand::Keys(_) => opcode::HKEYS,
            HashCommand::Vals(_) => opcode::HVALS,
            HashCommand::Len(_) => opcode::HLEN,
            HashCommand::Exists { .. } => opcode::HEXISTS,
            HashCommand::IncrBy { .. } => opcode::HINCRBY,
            HashCommand::IncrByFloat { .. } => opcode::HINCRBYFLOAT,
            HashCommand::StrLen { .. } => opcode::HSTRLEN,
            HashCommand::Expire {
                unit: TimeUnit::Seconds,
                ..
            } => opcode::HEXPIRE,
            HashCommand::Expire { .. } => opcode::HPEXPIRE,
            HashCommand::Ttl {
                unit: TimeUnit::Seconds,
                ..
            } => opcode::HTTL,
            HashCommand::Ttl { .. } => opcode::HPTTL,
            HashCommand::Persist { .. } => opcode::HPERSIST,
            HashCommand::RandField { .. } => opcode::HRANDFIELD,
        }
    }

    /// The hash every command of the family names.
    pub fn single_key(&self) -> Option<&P> {
        Some(match self {
            HashCommand::Set { key, .. }
            | HashCommand::SetNx { key, .. }
            | HashCommand::Get { key, .. }
            | HashCommand::MGet { key, .. }
            | HashCommand::Del { key, .. }
            | HashCommand::Exists { key, .. }
            | HashCommand::IncrBy { key, .. }
            | HashCommand::IncrByFloat { key, .. }
            | HashCommand::StrLen { key, .. }
            | HashCommand::Expire { key, .. }
            | HashCommand::Ttl { key, .. }
            | HashCommand::Persist { key, .. }
            | HashCommand::RandField { key, .. } => key,
            HashCommand::GetAll(key)
            | HashCommand::Keys(key)
            | HashCommand::Vals(key)
            | HashCommand::Len(key) => key,
        })
    }

    /// How the command splits across shards: none does, a hash lives on one shard.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<HashCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        let put_all = |buf: &mut BytesMut, fields: &[P]| {
            put_uvarint(buf, fields.len() as u64);
            for field in fields {
                put_bytes(buf, field.as_ref());
            }
        };
        put_bytes(buf, self.single_key().map_or(&[][..], AsRef::as_ref));
        match self {
            HashCommand::Set { pairs, .. } => {
                put_uvarint(buf, pairs.len() as u64);
                for (field, value) in pairs {
                    put_bytes(buf, field.as_ref());
                    put_bytes(buf, value.as_ref());
                }
            }
            HashCommand::SetNx { field, value, .. } => {
                put_bytes(buf, field.as_ref());
                put_bytes(buf, value.as_ref());
            }
            HashCommand::Get { field, .. }
            | HashCommand::Exists { field, .. }
            | HashCommand::StrLen { field, .. } => put_bytes(buf, field.as_ref()),
            HashCommand::MGet { fields, .. }
            | HashCommand::Del { fields, .. }
            | HashCommand::Ttl { fields, .. }
            | HashCommand::Persist { fields, .. } => put_all(buf, fields),
            HashCommand::RandField { count, .. } => match count {
                None => buf.put_u8(0),
                Some((n, with_values)) => {
                    buf.put_u8(1);
                    put_ivarint(buf, *n);
                    buf.put_u8(u8::from(*with_values));
                }
            },
            HashCommand::GetAll(_)
            | HashCommand::Keys(_)
            | HashCommand::Vals(_)
            | HashCommand::Len(_) => {}
            HashCommand::IncrBy { field, delta, .. } => {
                put_bytes(buf, field.as_ref());
                put_ivarint(buf, *delta);
            }
            HashCommand::IncrByFloat { field, delta, .. } => {
                put_bytes(buf, field.as_ref());
                buf.put_f64_le(delta.get());
            }
            HashCommand::Expire {
                ttl,
                condition,
                fields,
                ..
            } => {
                put_uvarint(buf, *ttl);
                buf.put_u8(condition.tag());
                put_all(buf, fields);
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let key = read_key(r)?;
        Ok(match op {
            opcode::HSET => {
                let count = r.count(2)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("HSET needs at least one field"));
                }
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    pairs.push((read_field(r)?, r.bytes()?));
                }
                HashCommand::Set { key, pairs }
            }
            opcode::HSETNX => HashCommand::SetNx {
                key,
                field: read_field(r)?,
                value: r.bytes()?,
            },
            opcode::HGET => HashCommand::Get {
                key,
                field: read_field(r)?,
            },
            opcode::HEXISTS => HashCommand::Exists {
                key,
                field: read_field(r)?,
            },
            opcode::HSTRLEN => HashCommand::StrLen {
                key,
                field: read_field(r)?,
            },
            opcode::HMGET => HashCommand::MGet {
                key,
                fields: read_fields(r)?,
            },
            opcode::HDEL => HashCommand::Del {
                key,
                fields: read_fields(r)?,
            },
            opcode::HGETALL => HashCommand::GetAll(key),
            opcode::HKEYS => HashCommand::Keys(key),
            opcode::HVALS => HashCommand::Vals(key),
            opcode::HLEN => HashCommand::Len(key),
            opcode::HRANDFIELD => {
                let flag = |r: &mut Reader<P>| match r.u8()? {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(DecodeError::Invalid("a flag is 0 or 1")),
                };
                let count = if flag(r)? {
                    Some((r.ivarint()?, flag(r)?))
                } else {
                    None
                };
                HashCommand::RandField { key, count }
            }
            opcode::HINCRBY => HashCommand::IncrBy {
                key,
                field: read_field(r)?,
                delta: r.ivarint()?,
            },
            opcode::HINCRBYFLOAT => {
                let field = read_field(r)?;
                let delta = r.f64()?;
                let delta = Finite::new(delta)
                    .filter(|d| d.get().is_finite())
                    .ok_or(DecodeError::Invalid("increment must be a finite number"))?;
                HashCommand::IncrByFloat { key, field, delta }
            }
            opcode::HEXPIRE | opcode::HPEXPIRE => {
                let unit = if op == opcode::HEXPIRE {
                    TimeUnit::Seconds
                } else {
                    TimeUnit::Millis
                };
                let ttl = checked_field_ttl(r.uvarint()?, unit)?;
                let condition = ExpireCondition::from_tag(r.u8()?)?;
                HashCommand::Expire {
                    key,
                    ttl,
                    unit,
                    condition,
                    fields: read_fields(r)?,
                }
            }
            opcode::HTTL | opcode::HPTTL => HashCommand::Ttl {
                key,
                unit: if op == opcode::HTTL {
                    TimeUnit::Seconds
                } else {
                    TimeUnit::Millis
                },
                fields: read_fields(r)?,
            },
            opcode::HPERSIST => HashCommand::Persist {
                key,
                fields: read_fields(r)?,
            },
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> HashCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_all = |fields: &[P]| fields.iter().map(own).collect::<Vec<_>>();
        match self {
            HashCommand::Set { key, pairs } => HashCommand::Set {
                key: own(key),
                pairs: pairs.iter().map(|(f, v)| (own(f), own(v))).collect(),
            },
            HashCommand::SetNx { key, field, value } => HashCommand::SetNx {
                key: own(key),
                field: own(field),
                value: own(value),
            },
            HashCommand::Get { key, field } => HashCommand::Get {
                key: own(key),
                field: own(field),
            },
            HashCommand::MGet { key, fields } => HashCommand::MGet {
                key: own(key),
                fields: own_all(fields),
            },
            HashCommand::Del { key, fields } => HashCommand::Del {
                key: own(key),
                fields: own_all(fields),
            },
            HashCommand::GetAll(key) => HashCommand::GetAll(own(key)),
            HashCommand::Keys(key) => HashCommand::Keys(own(key)),
            HashCommand::Vals(key) => HashCommand::Vals(own(key)),
            HashCommand::Len(key) => HashCommand::Len(own(key)),
            HashCommand::RandField { key, count } => HashCommand::RandField {
                key: own(key),
                count: *count,
            },
            HashCommand::Exists { key, field } => HashCommand::Exists {
                key: own(key),
                field: own(field),
            },
            HashCommand::IncrBy { key, field, delta } => HashCommand::IncrBy {
                key: own(key),
                field: own(field),
                delta: *delta,
            },
            HashCommand::IncrByFloat { key, field, delta } => HashCommand::IncrByFloat {
                key: own(key),
                field: own(field),
                delta: *delta,
            },
            HashCommand::StrLen { key, field } => HashCommand::StrLen {
                key: own(key),
                field: own(field),
            },
            HashCommand::Expire {
                key,
                ttl,
                unit,
                condition,
                fields,
            } => HashCommand::Expire {
                key: own(key),
                ttl: *ttl,
                unit: *unit,
                condition: *condition,
                fields: own_all(fields),
            },
            HashCommand::Ttl { key, unit, fields } => HashCommand::Ttl {
                key: own(key),
                unit: *unit,
                fields: own_all(fields),
            },
            HashCommand::Persist { key, fields } => HashCommand::Persist {
                key: own(key),
                fields: own_all(fields),
            },
        }
    }
}

/// A field expiry in milliseconds-or-seconds, within the expiry range (0 deletes).
fn checked_field_ttl(ttl: u64, unit: TimeUnit) -> Result<u64, DecodeError> {
    let ms = ttl.checked_mul(unit.millis() as u64);
    match ms {
        Some(0) => Ok(0),
        Some(ms) => checked_ttl(ms).map(|_| ttl),
        None => Err(DecodeError::InvalidExpire),
    }
}

fn read_field<P: Payload>(r: &mut Reader<P>) -> Result<P, DecodeError> {
    let field = r.bytes()?;
    if field.as_ref().len() > MAX_KEY_BYTES {
        return Err(DecodeError::Invalid("a field name exceeds 65536 bytes"));
    }
    Ok(field)
}

fn read_fields<P: Payload>(r: &mut Reader<P>) -> Result<Vec<P>, DecodeError> {
    let count = r.count(1)?;
    if count == 0 {
        return Err(DecodeError::Invalid("at least one field is required"));
    }
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        fields.push(read_field(r)?);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests;
