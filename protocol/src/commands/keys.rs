//! The key/value family: GET/SET and their expiry, counters and multi-key forms.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::hashes::ExpireCondition;
use super::split::{fixed, group_by_owner, positions, split_keys, Combine, Split};
use super::{CommandSpec, KeySpec, MAX_EXPIRE_MS};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// GET
    pub const GET: u16 = 0x0010;
    /// SET
    pub const SET: u16 = 0x0011;
    /// DEL
    pub const DEL: u16 = 0x0012;
    /// EXISTS
    pub const EXISTS: u16 = 0x0013;
    /// EXPIRE
    pub const EXPIRE: u16 = 0x0014;
    /// PEXPIRE
    pub const PEXPIRE: u16 = 0x0015;
    /// TTL
    pub const TTL: u16 = 0x0016;
    /// PTTL
    pub const PTTL: u16 = 0x0017;
    /// PERSIST
    pub const PERSIST: u16 = 0x0018;
    /// INCRBY
    pub const INCRBY: u16 = 0x0019;
    /// DECRBY
    pub const DECRBY: u16 = 0x001a;
    /// MGET
    pub const MGET: u16 = 0x001b;
    /// MSET
    pub const MSET: u16 = 0x001c;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::GET,
        name: "GET",
        syntax: "key",
        wire: "key:bytes",
        reply: "BYTES value, or NIL",
        summary: "Returns the value of a key.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::SET,
        name: "SET",
        syntax: "key value [NX|XX] [EX seconds|PX milliseconds|EXAT unix-seconds|PXAT unix-milliseconds|KEEPTTL] [GET]",
        wire: "key:bytes value:bytes flags:u8 [ttl_ms:uvarint if flags & 0x10 (a Unix time if flags & 0x20)]",
        reply: "OK, or NIL if NX/XX was not met; with GET: the old BYTES value or NIL",
        summary:
            "Sets a key's value, optionally only if absent (NX) or present (XX), with an expiry.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DEL,
        name: "DEL",
        syntax: "key [key ...]",
        wire: "count:uvarint key:bytes*count",
        reply: "INT keys removed",
        summary: "Deletes keys.",
        writes: true,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::EXISTS,
        name: "EXISTS",
        syntax: "key [key ...]",
        wire: "count:uvarint key:bytes*count",
        reply: "INT keys that exist (a key named twice counts twice)",
        summary: "Counts how many of the keys exist.",
        writes: false,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::EXPIRE,
        name: "EXPIRE",
        syntax: "key seconds [NX|XX|GT|LT]",
        wire: "key:bytes seconds:ivarint [condition:u8 (1 NX, 2 XX, 3 GT, 4 LT, 5 XX and LT)]",
        reply: "INT 1 if the expiry was set, 0 if the key does not exist or the condition failed",
        summary: "Sets a key's time to live in seconds; zero or less deletes it.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PEXPIRE,
        name: "PEXPIRE",
        syntax: "key milliseconds [NX|XX|GT|LT]",
        wire: "key:bytes milliseconds:ivarint [condition:u8]",
        reply: "INT 1 if the expiry was set, 0 if the key does not exist or the condition failed",
        summary: "Sets a key's time to live in milliseconds; zero or less deletes it.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TTL,
        name: "TTL",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT seconds left (rounded to the nearest), -1 without expiry, -2 if missing",
        summary: "Returns a key's remaining time to live in seconds.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PTTL,
        name: "PTTL",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT milliseconds left, -1 without expiry, -2 if missing",
        summary: "Returns a key's remaining time to live in milliseconds.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PERSIST,
        name: "PERSIST",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT 1 if an expiry was removed, else 0",
        summary: "Removes a key's expiry.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INCRBY,
        name: "INCRBY",
        syntax: "key delta",
        wire: "key:bytes delta:ivarint",
        reply: "INT the new value",
        summary: "Adds to an integer value (a missing key counts as 0), refusing overflow.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DECRBY,
        name: "DECRBY",
        syntax: "key delta",
        wire: "key:bytes delta:ivarint",
        reply: "INT the new value",
        summary: "Subtracts from an integer value (a missing key counts as 0), refusing overflow.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::MGET,
        name: "MGET",
        syntax: "key [key ...]",
        wire: "count:uvarint key:bytes*count",
        reply: "ARRAY of BYTES or NIL, in the order asked",
        summary: "Returns the values of many keys, from every shard that owns one.",
        writes: false,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::MSET,
        name: "MSET",
        syntax: "key value [key value ...]",
        wire: "count:uvarint (key:bytes value:bytes)*count",
        reply: "OK",
        summary: "Sets many keys; atomic per shard, not across shards.",
        writes: true,
        keys: KeySpec::Pairs,
    },
];

/// EXPIRE's optional condition: absent on the wire when there is none.
fn read_condition<P: Payload>(r: &mut Reader<P>) -> Result<ExpireCondition, DecodeError> {
    if r.remaining() == 0 {
        return Ok(ExpireCondition::Always);
    }
    match ExpireCondition::from_tag(r.u8()?)? {
        ExpireCondition::Always => Err(DecodeError::Invalid("an absent condition is not sent")),
        condition => Ok(condition),
    }
}

/// Write condition of SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always write.
    #[default]
    Always,
    /// Write only if the key is absent (NX).
    IfAbsent,
    /// Write only if the key exists (XX).
    IfPresent,
}

/// What SET does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// Remove any expiry (plain SET).
    #[default]
    Clear,
    /// Keep the current expiry (KEEPTTL).
    Keep,
    /// Expire this many milliseconds from now (EX, PX).
    In(u64),
    /// Expire at this Unix time in milliseconds (EXAT, PXAT); a time past deletes.
    At(u64),
}

/// Arguments of SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArgs<P = Bytes> {
    /// Key to write.
    pub key: P,
    /// New value.
    pub value: P,
    /// NX / XX.
    pub condition: SetCondition,
    /// EX / PX / KEEPTTL.
    pub expiry: SetExpiry,
    /// Return the previous value (GET).
    pub get: bool,
}

/// SET flag bits on the wire.
pub mod set_flags {
    /// NX
    pub const NX: u8 = 0x01;
    /// XX
    pub const XX: u8 = 0x02;
    /// GET
    pub const GET: u8 = 0x04;
    /// KEEPTTL
    pub const KEEPTTL: u8 = 0x08;
    /// A `ttl_ms` field follows.
    pub const TTL: u8 = 0x10;
    /// With `TTL`: the field is a Unix time in milliseconds, not a time to live.
    pub const AT: u8 = 0x20;
    /// Every defined bit.
    pub const ALL: u8 = NX | XX | GET | KEEPTTL | TTL | AT;
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCommand<P = Bytes> {
    /// GET key
    Get(P),
    /// SET key value ...
    Set(SetArgs<P>),
    /// DEL key...
    Del(Vec<P>),
    /// EXISTS key...
    Exists(Vec<P>),
    /// EXPIRE key seconds
    Expire {
        /// Key.
        key: P,
        /// Seconds from now; zero or less deletes.
        seconds: i64,
        /// NX / XX / GT / LT.
        condition: ExpireCondition,
    },
    /// PEXPIRE key milliseconds
    PExpire {
        /// Key.
        key: P,
        /// Milliseconds from now; zero or less deletes.
        millis: i64,
        /// NX / XX / GT / LT.
        condition: ExpireCondition,
    },
    /// TTL key
    Ttl(P),
    /// PTTL key
    PTtl(P),
    /// PERSIST key
    Persist(P),
    /// INCRBY key delta
    IncrBy {
        /// Key.
        key: P,
        /// Amount added.
        delta: i64,
    },
    /// DECRBY key delta
    DecrBy {
        /// Key.
        key: P,
        /// Amount subtracted.
        delta: i64,
    },
    /// MGET key...
    MGet(Vec<P>),
    /// MSET key value...
    MSet(Vec<(P, P)>),
}

impl<P: Payload> KeyCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            KeyCommand::Get(_) => opcode::GET,
            KeyCommand::Set(_) => opcode::SET,
            KeyCommand::Del(_) => opcode::DEL,
            KeyCommand::Exists(_) => opcode::EXISTS,
            KeyCommand::Expire { .. } => opcode::EXPIRE,
            KeyCommand::PExpire { .. } => opcode::PEXPIRE,
            KeyCommand::Ttl(_) => opcode::TTL,
            KeyCommand::PTtl(_) => opcode::PTTL,
            KeyCommand::Persist(_) => opcode::PERSIST,
            KeyCommand::IncrBy { .. } => opcode::INCRBY,
            KeyCommand::DecrBy { .. } => opcode::DECRBY,
            KeyCommand::MGet(_) => opcode::MGET,
            KeyCommand::MSet(_) => opcode::MSET,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            KeyCommand::Get(key)
            | KeyCommand::Ttl(key)
            | KeyCommand::PTtl(key)
            | KeyCommand::Persist(key)
            | KeyCommand::Expire { key, .. }
            | KeyCommand::PExpire { key, .. }
            | KeyCommand::IncrBy { key, .. }
            | KeyCommand::DecrBy { key, .. } => Some(key),
            KeyCommand::Set(args) => Some(&args.key),
            KeyCommand::Del(_)
            | KeyCommand::Exists(_)
            | KeyCommand::MGet(_)
            | KeyCommand::MSet(_) => None,
        }
    }

    /// How the command splits across shards: by the owner of each key.
    pub fn split(&self, owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<KeyCommand<Bytes>>> {
        Some(match self {
            KeyCommand::Del(keys) => split_keys(keys, owner, fixed(Combine::Sum), KeyCommand::Del),
            KeyCommand::Exists(keys) => {
                split_keys(keys, owner, fixed(Combine::Sum), KeyCommand::Exists)
            }
            KeyCommand::MGet(keys) => {
                split_keys(keys, owner, positions(keys.len()), KeyCommand::MGet)
            }
            KeyCommand::MSet(pairs) => {
                let keys: Vec<&[u8]> = pairs.iter().map(|(key, _)| key.as_ref()).collect();
                let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
                let parts = group_by_owner(&keys, owner)
                    .into_iter()
                    .map(|(shard, group)| {
                        let part = group.iter().map(|&i| (own(&pairs[i].0), own(&pairs[i].1)));
                        (shard, KeyCommand::MSet(part.collect()))
                    })
                    .collect();
                Split {
                    parts,
                    combine: Combine::AllOk,
                }
            }
            _ => return None,
        })
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            KeyCommand::Get(key)
            | KeyCommand::Ttl(key)
            | KeyCommand::PTtl(key)
            | KeyCommand::Persist(key) => put_bytes(buf, key.as_ref()),
            KeyCommand::Set(args) => {
                put_bytes(buf, args.key.as_ref());
                put_bytes(buf, args.value.as_ref());
                let mut flags = 0u8;
                match args.condition {
                    SetCondition::Always => {}
                    SetCondition::IfAbsent => flags |= set_flags::NX,
                    SetCondition::IfPresent => flags |= set_flags::XX,
                }
                if args.get {
                    flags |= set_flags::GET;
                }
                match args.expiry {
                    SetExpiry::Clear => buf.put_u8(flags),
                    SetExpiry::Keep => buf.put_u8(flags | set_flags::KEEPTTL),
                    SetExpiry::In(ms) => {
                        buf.put_u8(flags | set_flags::TTL);
                        put_uvarint(buf, ms);
                    }
                    SetExpiry::At(ms) => {
                        buf.put_u8(flags | set_flags::TTL | set_flags::AT);
                        put_uvarint(buf, ms);
                    }
                }
            }
            KeyCommand::Del(keys) | KeyCommand::Exists(keys) | KeyCommand::MGet(keys) => {
                put_list(buf, keys);
            }
            KeyCommand::Expire {
                key,
                seconds: n,
                condition,
            }
            | KeyCommand::PExpire {
                key,
                millis: n,
                condition,
            } => {
                put_bytes(buf, key.as_ref());
                put_ivarint(buf, *n);
                // Absent when there is none, so the form without one stays as it was.
                if *condition != ExpireCondition::Always {
                    buf.put_u8(condition.tag());
                }
            }
            KeyCommand::IncrBy { key, delta: n } | KeyCommand::DecrBy { key, delta: n } => {
                put_bytes(buf, key.as_ref());
                put_ivarint(buf, *n);
            }
            KeyCommand::MSet(pairs) => {
                put_uvarint(buf, pairs.len() as u64);
                for (key, value) in pairs {
                    put_bytes(buf, key.as_ref());
                    put_bytes(buf, value.as_ref());
                }
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::GET => KeyCommand::Get(read_key(r)?),
            opcode::TTL => KeyCommand::Ttl(read_key(r)?),
            opcode::PTTL => KeyCommand::PTtl(read_key(r)?),
            opcode::PERSIST => KeyCommand::Persist(read_key(r)?),
            opcode::SET => {
                let key = read_key(r)?;
                let value = r.bytes()?;
                let flags = r.u8()?;
                if flags & !set_flags::ALL != 0 {
                    return Err(DecodeError::Invalid("unknown SET flag bits"));
                }
                let condition = match (flags & set_flags::NX != 0, flags & set_flags::XX != 0) {
                    (false, false) => SetCondition::Always,
                    (true, false) => SetCondition::IfAbsent,
                    (false, true) => SetCondition::IfPresent,
                    (true, true) => return Err(DecodeError::Invalid("NX and XX are exclusive")),
                };
                if flags & (set_flags::AT | set_flags::TTL) == set_flags::AT {
                    return Err(DecodeError::Invalid("AT comes with TTL"));
                }
                let expiry = match (flags & set_flags::KEEPTTL != 0, flags & set_flags::TTL != 0) {
                    (false, false) => SetExpiry::Clear,
                    (true, false) => SetExpiry::Keep,
                    (false, true) if flags & set_flags::AT != 0 => SetExpiry::At(r.uvarint()?),
                    (false, true) => SetExpiry::In(checked_ttl(r.uvarint()?)?),
                    (true, true) => {
                        return Err(DecodeError::Invalid("KEEPTTL and an expiry are exclusive"))
                    }
                };
                KeyCommand::Set(SetArgs {
                    key,
                    value,
                    condition,
                    expiry,
                    get: flags & set_flags::GET != 0,
                })
            }
            opcode::DEL => KeyCommand::Del(read_keys(r)?),
            opcode::EXISTS => KeyCommand::Exists(read_keys(r)?),
            opcode::MGET => KeyCommand::MGet(read_keys(r)?),
            opcode::EXPIRE => KeyCommand::Expire {
                key: read_key(r)?,
                seconds: r.ivarint()?,
                condition: read_condition(r)?,
            },
            opcode::PEXPIRE => KeyCommand::PExpire {
                key: read_key(r)?,
                millis: r.ivarint()?,
                condition: read_condition(r)?,
            },
            opcode::INCRBY => KeyCommand::IncrBy {
                key: read_key(r)?,
                delta: r.ivarint()?,
            },
            opcode::DECRBY => KeyCommand::DecrBy {
                key: read_key(r)?,
                delta: r.ivarint()?,
            },
            opcode::MSET => {
                let count = r.count(2)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("MSET needs at least one pair"));
                }
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = read_key(r)?;
                    pairs.push((key, r.bytes()?));
                }
                KeyCommand::MSet(pairs)
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> KeyCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_all = |keys: &[P]| keys.iter().map(own).collect();
        match self {
            KeyCommand::Get(key) => KeyCommand::Get(own(key)),
            KeyCommand::Set(args) => KeyCommand::Set(SetArgs {
                key: own(&args.key),
                value: own(&args.value),
                condition: args.condition,
                expiry: args.expiry,
                get: args.get,
            }),
            KeyCommand::Del(keys) => KeyCommand::Del(own_all(keys)),
            KeyCommand::Exists(keys) => KeyCommand::Exists(own_all(keys)),
            KeyCommand::Expire {
                key,
                seconds,
                condition,
            } => KeyCommand::Expire {
                key: own(key),
                seconds: *seconds,
                condition: *condition,
            },
            KeyCommand::PExpire {
                key,
                millis,
                condition,
            } => KeyCommand::PExpire {
                key: own(key),
                millis: *millis,
                condition: *condition,
            },
            KeyCommand::Ttl(key) => KeyCommand::Ttl(own(key)),
            KeyCommand::PTtl(key) => KeyCommand::PTtl(own(key)),
            KeyCommand::Persist(key) => KeyCommand::Persist(own(key)),
            KeyCommand::IncrBy { key, delta } => KeyCommand::IncrBy {
                key: own(key),
                delta: *delta,
            },
            KeyCommand::DecrBy { key, delta } => KeyCommand::DecrBy {
                key: own(key),
                delta: *delta,
            },
            KeyCommand::MGet(keys) => KeyCommand::MGet(own_all(keys)),
            KeyCommand::MSet(pairs) => {
                KeyCommand::MSet(pairs.iter().map(|(k, v)| (own(k), own(v))).collect())
            }
        }
    }
}

impl<P: Payload> KeyCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::GET | opcode::TTL | opcode::PTTL | opcode::PERSIST => {
                arity(args.len() == 1)?;
                let key = text_key(&args[0])?;
                match spec.opcode {
                    opcode::GET => KeyCommand::Get(key),
                    opcode::TTL => KeyCommand::Ttl(key),
                    opcode::PTTL => KeyCommand::PTtl(key),
                    _ => KeyCommand::Persist(key),
                }
            }
            opcode::SET => parse_set(spec, args)?,
            opcode::DEL | opcode::EXISTS | opcode::MGET => {
                arity(!args.is_empty())?;
                let keys = args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?;
                match spec.opcode {
                    opcode::DEL => KeyCommand::Del(keys),
                    opcode::EXISTS => KeyCommand::Exists(keys),
                    _ => KeyCommand::MGet(keys),
                }
            }
            opcode::EXPIRE | opcode::PEXPIRE => {
                let mut words = Words::new(spec, args);
                let key = words.key()?;
                let n = words.int::<i64>()?;
                let condition = super::strings::expire_condition(&mut words)?;
                if spec.opcode == opcode::EXPIRE {
                    KeyCommand::Expire {
                        key,
                        seconds: n,
                        condition,
                    }
                } else {
                    KeyCommand::PExpire {
                        key,
                        millis: n,
                        condition,
                    }
                }
            }
            opcode::INCRBY | opcode::DECRBY => {
                arity(args.len() == 2)?;
                let key = text_key(&args[0])?;
                let n = parse_int::<i64>(args[1].as_ref())?;
                match spec.opcode {
                    opcode::INCRBY => KeyCommand::IncrBy { key, delta: n },
                    _ => KeyCommand::DecrBy { key, delta: n },
                }
            }
            opcode::MSET => {
                let mut words = Words::new(spec, args);
                if words.remaining() == 0 || !words.remaining().is_multiple_of(2) {
                    return Err(words.arity());
                }
                let mut pairs = Vec::with_capacity(words.remaining() / 2);
                while words.remaining() > 0 {
                    pairs.push((words.key()?, words.bytes()?));
                }
                KeyCommand::MSet(pairs)
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}

fn parse_set<P: Payload>(
    spec: &'static CommandSpec,
    args: &[P],
) -> Result<KeyCommand<P>, ErrorReply> {
    let syntax = || ErrorReply::new(ErrorCode::Syntax, "syntax error in SET options");
    let mut words = Words::new(spec, args);
    let mut args = SetArgs {
        key: words.key()?,
        value: words.bytes()?,
        condition: SetCondition::Always,
        expiry: SetExpiry::Clear,
        get: false,
    };
    let mut expiry_given = false;
    words.options("syntax error in SET options", |name, words| {
        match name {
            b"NX" | b"XX" => {
                if args.condition != SetCondition::Always {
                    return Err(syntax());
                }
                args.condition = if name == b"NX" {
                    SetCondition::IfAbsent
                } else {
                    SetCondition::IfPresent
                };
            }
            b"GET" => args.get = true,
            b"KEEPTTL" | b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                if std::mem::replace(&mut expiry_given, true) {
                    return Err(syntax());
                }
                args.expiry = if name == b"KEEPTTL" {
                    SetExpiry::Keep
                } else {
                    let n = words.int::<i64>().map_err(|e| match e.known_code() {
                        Some(ErrorCode::Syntax) => syntax(),
                        _ => e,
                    })?;
                    let ms = if name.starts_with(b"EX") {
                        n.checked_mul(1000)
                    } else {
                        Some(n)
                    };
                    let at = name.ends_with(b"AT");
                    let ms = ms
                        .filter(|ms| *ms >= 1 && (at || *ms <= MAX_EXPIRE_MS))
                        .ok_or_else(|| {
                            ErrorReply::new(
                                ErrorCode::InvalidExpire,
                                "invalid expire time in 'set' command",
                            )
                        })?;
                    if at {
                        SetExpiry::At(ms as u64)
                    } else {
                        SetExpiry::In(ms as u64)
                    }
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(KeyCommand::Set(args))
}
