//! The rest of Redis's string commands: editing a value in place (APPEND, SETRANGE),
//! reading part of it (STRLEN, GETRANGE), reading while deleting or re-timing it (GETDEL,
//! GETEX), float increments, MSETNX, and expiry at an absolute time.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::read_key;
use super::hashes::{ExpireCondition, Finite, TimeUnit};
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::DecodeError;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

mod text;
pub(crate) use text::expire_condition;

/// The family's opcodes; stable once published.
pub mod opcode {
    /// APPEND
    pub const APPEND: u16 = 0x0150;
    /// STRLEN
    pub const STRLEN: u16 = 0x0151;
    /// GETRANGE
    pub const GETRANGE: u16 = 0x0152;
    /// SETRANGE
    pub const SETRANGE: u16 = 0x0153;
    /// GETDEL
    pub const GETDEL: u16 = 0x0154;
    /// GETEX
    pub const GETEX: u16 = 0x0155;
    /// INCRBYFLOAT
    pub const INCRBYFLOAT: u16 = 0x0156;
    /// MSETNX
    pub const MSETNX: u16 = 0x0157;
    /// EXPIREAT
    pub const EXPIREAT: u16 = 0x0158;
    /// PEXPIREAT
    pub const PEXPIREAT: u16 = 0x0159;
    /// EXPIRETIME
    pub const EXPIRETIME: u16 = 0x015a;
    /// PEXPIRETIME
    pub const PEXPIRETIME: u16 = 0x015b;
    /// SETBIT
    pub const SETBIT: u16 = 0x015c;
    /// GETBIT
    pub const GETBIT: u16 = 0x015d;
}

/// Bit offsets are below this, as Redis's (512 MiB of bits).
pub const BIT_OFFSET_LIMIT: u64 = 1 << 32;

use super::keyed_row as row;

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(
        opcode::APPEND,
        "APPEND",
        "key value",
        "key:bytes value:bytes",
        "INT the value's length after",
        "Appends to a string value, creating it if missing.",
        true,
    ),
    row(
        opcode::STRLEN,
        "STRLEN",
        "key",
        "key:bytes",
        "INT the value's length in bytes (0 if missing)",
        "Returns the length of a string value.",
        false,
    ),
    row(
        opcode::GETRANGE,
        "GETRANGE",
        "key start end",
        "key:bytes start:ivarint end:ivarint",
        "BYTES the bytes from start to end inclusive (negative counts from the end)",
        "Returns part of a string value.",
        false,
    ),
    row(
        opcode::SETRANGE,
        "SETRANGE",
        "key offset value",
        "key:bytes offset:uvarint value:bytes",
        "INT the value's length after; TOO_LARGE past the node's bulk limit",
        "Overwrites part of a string value from an offset, padding with zero bytes.",
        true,
    ),
    row(
        opcode::GETDEL,
        "GETDEL",
        "key",
        "key:bytes",
        "BYTES the value, or NIL",
        "Returns a string value and deletes the key.",
        true,
    ),
    row(
        opcode::GETEX,
        "GETEX",
        "key [EX seconds|PX milliseconds|EXAT unix-seconds|PXAT unix-milliseconds|PERSIST]",
        "key:bytes how:u8 (0 keep, 1 persist, 2 in, 3 at) [ms:uvarint if how >= 2]",
        "BYTES the value, or NIL",
        "Returns a string value and changes its expiry.",
        true,
    ),
    row(
        opcode::INCRBYFLOAT,
        "INCRBYFLOAT",
        "key delta",
        "key:bytes delta:f64",
        "BYTES the new value as a decimal",
        "Adds a decimal to a numeric string value (a missing key counts as 0).",
        true,
    ),
    CommandSpec {
        opcode: opcode::MSETNX,
        name: "MSETNX",
        syntax: "key value [key value ...]",
        wire: "count:uvarint (key:bytes value:bytes)*count",
        reply: "INT 1 if every key was set, 0 if any existed (then none is)",
        summary: "Sets many keys of one slot only if none of them exists.",
        writes: true,
        keys: KeySpec::OneSlot,
    },
    row(
        opcode::EXPIREAT,
        "EXPIREAT",
        "key unix-seconds [NX|XX|GT|LT]",
        "key:bytes at:ivarint condition:u8 (0 none, 1 NX, 2 XX, 3 GT, 4 LT, 5 XX and LT)",
        "INT 1 if set (a time past deletes the key), 0 if missing or the condition failed",
        "Sets a key's expiry to a Unix time in seconds.",
        true,
    ),
    row(
        opcode::PEXPIREAT,
        "PEXPIREAT",
        "key unix-milliseconds [NX|XX|GT|LT]",
        "key:bytes at:ivarint condition:u8",
        "INT 1 if set (a time past deletes the key), 0 if missing or the condition failed",
        "Sets a key's expiry to a Unix time in milliseconds.",
        true,
    ),
    row(
        opcode::EXPIRETIME,
        "EXPIRETIME",
        "key",
        "key:bytes",
        "INT the Unix time in seconds it expires at, -1 without expiry, -2 if missing",
        "Returns when a key expires, in Unix seconds.",
        false,
    ),
    row(
        opcode::PEXPIRETIME,
        "PEXPIRETIME",
        "key",
        "key:bytes",
        "INT the Unix time in milliseconds it expires at, -1 without expiry, -2 if missing",
        "Returns when a key expires, in Unix milliseconds.",
        false,
    ),
    row(
        opcode::SETBIT,
        "SETBIT",
        "key offset 0|1",
        "key:bytes offset:uvarint bit:u8",
        "INT the bit's value before",
        "Sets one bit of a string value (bit 0 is the first byte's high bit), growing it with zeros.",
        true,
    ),
    row(
        opcode::GETBIT,
        "GETBIT",
        "key offset",
        "key:bytes offset:uvarint",
        "INT the bit's value (0 past the end)",
        "Returns one bit of a string value.",
        false,
    ),
];

/// What GETEX does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExpiry {
    /// Leave it as it is.
    Keep,
    /// Remove it (PERSIST).
    Persist,
    /// Expire this many milliseconds from now (EX, PX).
    In(u64),
    /// Expire at this Unix time in milliseconds (EXAT, PXAT); a time past deletes.
    At(u64),
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringCommand<P = Bytes> {
    /// APPEND key value
    Append {
        /// Key.
        key: P,
        /// Bytes appended.
        value: P,
    },
    /// STRLEN key
    Strlen(P),
    /// GETRANGE key start end
    GetRange {
        /// Key.
        key: P,
        /// First byte (negative counts from the end).
        start: i64,
        /// Last byte, inclusive.
        end: i64,
    },
    /// SETRANGE key offset value
    SetRange {
        /// Key.
        key: P,
        /// Where the bytes go.
        offset: u64,
        /// The bytes written.
        value: P,
    },
    /// GETDEL key
    GetDel(P),
    /// GETEX key [expiry]
    GetEx {
        /// Key.
        key: P,
        /// The expiry change.
        expiry: GetExpiry,
    },
    /// INCRBYFLOAT key delta
    IncrByFloat {
        /// Key.
        key: P,
        /// Amount added.
        delta: Finite,
    },
    /// MSETNX key value...
    MSetNx(Vec<(P, P)>),
    /// EXPIREAT / PEXPIREAT key time [condition]
    ExpireAt {
        /// Key.
        key: P,
        /// Unix time in `unit`s.
        at: i64,
        /// Seconds (EXPIREAT) or milliseconds (PEXPIREAT).
        unit: TimeUnit,
        /// NX / XX / GT / LT.
        condition: ExpireCondition,
    },
    /// SETBIT key offset bit
    SetBit {
        /// Key.
        key: P,
        /// Which bit, from the first byte's high bit.
        offset: u64,
        /// The bit's new value.
        bit: bool,
    },
    /// GETBIT key offset
    GetBit {
        /// Key.
        key: P,
        /// Which bit.
        offset: u64,
    },
    /// EXPIRETIME / PEXPIRETIME key
    ExpireTime {
        /// Key.
        key: P,
        /// Seconds (EXPIRETIME) or milliseconds (PEXPIRETIME).
        unit: TimeUnit,
    },
}

impl<P: Payload> StringCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            StringCommand::Append { .. } => opcode::APPEND,
            StringCommand::Strlen(_) => opcode::STRLEN,
            StringCommand::GetRange { .. } => opcode::GETRANGE,
            StringCommand::SetRange { .. } => opcode::SETRANGE,
            StringCommand::GetDel(_) => opcode::GETDEL,
            StringCommand::GetEx { .. } => opcode::GETEX,
            StringCommand::IncrByFloat { .. } => opcode::INCRBYFLOAT,
            StringCommand::MSetNx(_) => opcode::MSETNX,
            StringCommand::ExpireAt {
                unit: TimeUnit::Seconds,
                ..
            } => opcode::EXPIREAT,
            StringCommand::ExpireAt { .. } => opcode::PEXPIREAT,
            StringCommand::ExpireTime {
                unit: TimeUnit::Seconds,
                ..
            } => opcode::EXPIRETIME,
            StringCommand::ExpireTime { .. } => opcode::PEXPIRETIME,
            StringCommand::SetBit { .. } => opcode::SETBIT,
            StringCommand::GetBit { .. } => opcode::GETBIT,
        }
    }

    /// The key the command runs on; MSETNX's first key, whose slot the others share.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            StringCommand::Append { key, .. }
            | StringCommand::Strlen(key)
            | StringCommand::GetRange { key, .. }
            | StringCommand::SetRange { key, .. }
            | StringCommand::GetDel(key)
            | StringCommand::GetEx { key, .. }
            | StringCommand::IncrByFloat { key, .. }
            | StringCommand::ExpireAt { key, .. }
            | StringCommand::SetBit { key, .. }
            | StringCommand::GetBit { key, .. }
            | StringCommand::ExpireTime { key, .. } => Some(key),
            StringCommand::MSetNx(pairs) => pairs.first().map(|(key, _)| key),
        }
    }

    /// Calls `visit` with every key the command names.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        match self {
            StringCommand::MSetNx(pairs) => pairs.iter().for_each(|(key, _)| visit(key.as_ref())),
            other => {
                if let Some(key) = other.single_key() {
                    visit(key.as_ref());
                }
            }
        }
    }

    /// How the command splits across shards: none does (MSETNX is atomic on one slot).
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<StringCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            StringCommand::Append { key, value } => {
                put_bytes(buf, key.as_ref());
                put_bytes(buf, value.as_ref());
            }
            StringCommand::Strlen(key)
            | StringCommand::GetDel(key)
            | StringCommand::ExpireTime { key, .. } => put_bytes(buf, key.as_ref()),
            StringCommand::GetRange { key, start, end } => {
                put_bytes(buf, key.as_ref());
                put_ivarint(buf, *start);
                put_ivarint(buf, *end);
            }
            StringCommand::SetRange { key, offset, value } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *offset);
                put_bytes(buf, value.as_ref());
            }
            StringCommand::SetBit { key, offset, bit } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *offset);
                buf.put_u8(u8::from(*bit));
            }
            StringCommand::GetBit { key, offset } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *offset);
            }
            StringCommand::GetEx { key, expiry } => {
                put_bytes(buf, key.as_ref());
                match expiry {
                    GetExpiry::Keep => buf.put_u8(0),
                    GetExpiry::Persist => buf.put_u8(1),
                    GetExpiry::In(ms) => {
                        buf.put_u8(2);
                        put_uvarint(buf, *ms);
                    }
                    GetExpiry::At(ms) => {
                        buf.put_u8(3);
                        put_uvarint(buf, *ms);
                    }
                }
            }
            StringCommand::IncrByFloat { key, delta } => {
                put_bytes(buf, key.as_ref());
                buf.put_f64_le(delta.get());
            }
            StringCommand::MSetNx(pairs) => {
                put_uvarint(buf, pairs.len() as u64);
                for (key, value) in pairs {
                    put_bytes(buf, key.as_ref());
                    put_bytes(buf, value.as_ref());
                }
            }
            StringCommand::ExpireAt {
                key, at, condition, ..
            } => {
                put_bytes(buf, key.as_ref());
                put_ivarint(buf, *at);
                buf.put_u8(condition.tag());
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let unit = match op {
            opcode::EXPIREAT | opcode::EXPIRETIME => TimeUnit::Seconds,
            _ => TimeUnit::Millis,
        };
        Ok(match op {
            opcode::APPEND => StringCommand::Append {
                key: read_key(r)?,
                value: r.bytes()?,
            },
            opcode::STRLEN => StringCommand::Strlen(read_key(r)?),
            opcode::GETDEL => StringCommand::GetDel(read_key(r)?),
            opcode::GETRANGE => StringCommand::GetRange {
                key: read_key(r)?,
                start: r.ivarint()?,
                end: r.ivarint()?,
            },
            opcode::SETRANGE => StringCommand::SetRange {
                key: read_key(r)?,
                offset: r.uvarint()?,
                value: r.bytes()?,
            },
            opcode::GETEX => {
                let key = read_key(r)?;
                let expiry = match r.u8()? {
                    0 => GetExpiry::Keep,
                    1 => GetExpiry::Persist,
                    2 => GetExpiry::In(super::arg::checked_ttl(r.uvarint()?)?),
                    3 => GetExpiry::At(r.uvarint()?),
                    _ => return Err(DecodeError::Invalid("unknown GETEX expiry")),
                };
                StringCommand::GetEx { key, expiry }
            }
            opcode::INCRBYFLOAT => StringCommand::IncrByFloat {
                key: read_key(r)?,
                delta: Finite::new(r.f64()?).ok_or(DecodeError::Invalid("delta is NaN"))?,
            },
            opcode::MSETNX => {
                let count = r.count(2)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("MSETNX needs at least one pair"));
                }
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = read_key(r)?;
                    pairs.push((key, r.bytes()?));
                }
                StringCommand::MSetNx(pairs)
            }
            opcode::EXPIREAT | opcode::PEXPIREAT => StringCommand::ExpireAt {
                key: read_key(r)?,
                at: r.ivarint()?,
                unit,
                condition: ExpireCondition::from_tag(r.u8()?)?,
            },
            opcode::EXPIRETIME | opcode::PEXPIRETIME => StringCommand::ExpireTime {
                key: read_key(r)?,
                unit,
            },
            opcode::SETBIT | opcode::GETBIT => {
                let key = read_key(r)?;
                let offset = r.uvarint()?;
                if offset >= BIT_OFFSET_LIMIT {
                    return Err(DecodeError::Invalid("bit offset out of range"));
                }
                if op == opcode::GETBIT {
                    StringCommand::GetBit { key, offset }
                } else {
                    let bit = match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError::Invalid("a bit is 0 or 1")),
                    };
                    StringCommand::SetBit { key, offset, bit }
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> StringCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            StringCommand::Append { key, value } => StringCommand::Append {
                key: own(key),
                value: own(value),
            },
            StringCommand::Strlen(key) => StringCommand::Strlen(own(key)),
            StringCommand::GetRange { key, start, end } => StringCommand::GetRange {
                key: own(key),
                start: *start,
                end: *end,
            },
            StringCommand::SetRange { key, offset, value } => StringCommand::SetRange {
                key: own(key),
                offset: *offset,
                value: own(value),
            },
            StringCommand::GetDel(key) => StringCommand::GetDel(own(key)),
            StringCommand::GetEx { key, expiry } => StringCommand::GetEx {
                key: own(key),
                expiry: *expiry,
            },
            StringCommand::IncrByFloat { key, delta } => StringCommand::IncrByFloat {
                key: own(key),
                delta: *delta,
            },
            StringCommand::MSetNx(pairs) => {
                StringCommand::MSetNx(pairs.iter().map(|(k, v)| (own(k), own(v))).collect())
            }
            StringCommand::ExpireAt {
                key,
                at,
                unit,
                condition,
            } => StringCommand::ExpireAt {
                key: own(key),
                at: *at,
                unit: *unit,
                condition: *condition,
            },
            StringCommand::ExpireTime { key, unit } => StringCommand::ExpireTime {
                key: own(key),
                unit: *unit,
            },
            StringCommand::SetBit { key, offset, bit } => StringCommand::SetBit {
                key: own(key),
                offset: *offset,
                bit: *bit,
            },
            StringCommand::GetBit { key, offset } => StringCommand::GetBit {
                key: own(key),
                offset: *offset,
            },
        }
    }
}
