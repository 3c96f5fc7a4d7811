//! Sets: distinct members under one key, with Redis's S* commands.
//!
//! Commands over several sets (SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD,
//! SMOVE) need every key in one slot (a `{hash tag}`), as Redis Cluster does, so they run
//! on one shard and each is atomic. SPOP is journaled as the SREM of what it popped, so a
//! replica or a replayed log removes the same members.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{put_list, read_key, read_keys, Words};
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::{ErrorReply, Value};
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

use super::request::{read, Typed};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// SADD
    pub const SADD: u16 = 0x0120;
    /// SREM
    pub const SREM: u16 = 0x0121;
    /// SMEMBERS
    pub const SMEMBERS: u16 = 0x0122;
    /// SISMEMBER
    pub const SISMEMBER: u16 = 0x0123;
    /// SMISMEMBER
    pub const SMISMEMBER: u16 = 0x0124;
    /// SCARD
    pub const SCARD: u16 = 0x0125;
    /// SPOP
    pub const SPOP: u16 = 0x0126;
    /// SRANDMEMBER
    pub const SRANDMEMBER: u16 = 0x0127;
    /// SMOVE
    pub const SMOVE: u16 = 0x0128;
    /// SINTER
    pub const SINTER: u16 = 0x0129;
    /// SUNION
    pub const SUNION: u16 = 0x012a;
    /// SDIFF
    pub const SDIFF: u16 = 0x012b;
    /// SINTERSTORE
    pub const SINTERSTORE: u16 = 0x012c;
    /// SUNIONSTORE
    pub const SUNIONSTORE: u16 = 0x012d;
    /// SDIFFSTORE
    pub const SDIFFSTORE: u16 = 0x012e;
    /// SINTERCARD
    pub const SINTERCARD: u16 = 0x012f;
    /// SSCAN
    pub const SSCAN: u16 = 0x0130;
}

#[allow(clippy::too_many_arguments)]
const fn row(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
    writes: bool,
    keys: KeySpec,
) -> CommandSpec {
    super::spec_row(opcode, name, syntax, wire, reply, summary, writes, keys)
}

const ONE: KeySpec = KeySpec::Single;
const SLOT: KeySpec = KeySpec::OneSlot;

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(opcode::SADD, "SADD", "key member [member ...]", "key:bytes count:uvarint member:bytes*count",
        "INT members added (those already present count 0)", "Adds members, creating the set if missing.", true, ONE),
    row(opcode::SREM, "SREM", "key member [member ...]", "key:bytes count:uvarint member:bytes*count",
        "INT members removed; the key goes with its last member", "Removes members.", true, ONE),
    row(opcode::SMEMBERS, "SMEMBERS", "key", "key:bytes",
        "ARRAY of BYTES (empty if the key is missing)", "Lists every member.", false, ONE),
    row(opcode::SISMEMBER, "SISMEMBER", "key member", "key:bytes member:bytes",
        "INT 1 if a member, else 0", "Tells whether one is a member.", false, ONE),
    row(opcode::SMISMEMBER, "SMISMEMBER", "key member [member ...]", "key:bytes count:uvarint member:bytes*count",
        "ARRAY of INT 1 or 0, one per member given", "Tells whether each is a member.", false, ONE),
    row(opcode::SCARD, "SCARD", "key", "key:bytes",
        "INT members (0 if the key is missing)", "Counts the members.", false, ONE),
    row(opcode::SPOP, "SPOP", "key [count]", "key:bytes has_count:u8 [count:uvarint]",
        "BYTES or NIL without a count; with one, ARRAY of BYTES", "Removes and returns random members.", true, ONE),
    row(opcode::SRANDMEMBER, "SRANDMEMBER", "key [count]", "key:bytes has_count:u8 [count:ivarint]",
        "BYTES or NIL without a count; with one, ARRAY of BYTES: distinct members for a positive count, possibly repeated for a negative one",
        "Returns random members without removing them.", false, ONE),
    row(opcode::SMOVE, "SMOVE", "source destination member", "source:bytes destination:bytes member:bytes",
        "INT 1 if moved, 0 if the member was not in the source", "Moves a member from one set to another, atomically.", true, SLOT),
    row(opcode::SINTER, "SINTER", "key [key ...]", "count:uvarint key:bytes*count",
        "ARRAY of BYTES", "The members every set has (a missing key is the empty set).", false, SLOT),
    row(opcode::SUNION, "SUNION", "key [key ...]", "count:uvarint key:bytes*count",
        "ARRAY of BYTES", "The members any of the sets has.", false, SLOT),
    row(opcode::SDIFF, "SDIFF", "key [key ...]", "count:uvarint key:bytes*count",
        "ARRAY of BYTES", "The members of the first set that none of the others has.", false, SLOT),
    row(opcode::SINTERSTORE, "SINTERSTORE", "destination key [key ...]", "destination:bytes count:uvarint key:bytes*count",
        "INT members stored; an empty result deletes the destination", "SINTER, stored at the destination.", true, SLOT),
    row(opcode::SUNIONSTORE, "SUNIONSTORE", "destination key [key ...]", "destination:bytes count:uvarint key:bytes*count",
        "INT members stored", "SUNION, stored at the destination.", true, SLOT),
    row(opcode::SDIFFSTORE, "SDIFFSTORE", "destination key [key ...]", "destination:bytes count:uvarint key:bytes*count",
        "INT members stored", "SDIFF, stored at the destination.", true, SLOT),
    row(opcode::SINTERCARD, "SINTERCARD", "numkeys key [key ...] [LIMIT limit]", "count:uvarint key:bytes*count limit:uvarint (0 none)",
        "INT the size of the intersection, or the limit if it is reached first", "Counts SINTER's members without listing them.", false, SLOT),
    row(opcode::SSCAN, "SSCAN", "key cursor [MATCH pattern] [COUNT count]", "key:bytes cursor:uvarint has_pattern:u8 [pattern:bytes] count:uvarint",
        "ARRAY [BYTES next cursor (0 when done), ARRAY of BYTES members]",
        "Walks the members a few at a time; every member present for the whole walk is returned at least once.", false, ONE),
];

/// Which combination of sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Members every set has.
    Inter,
    /// Members any set has.
    Union,
    /// Members of the first set that no other has.
    Diff,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetCommand<P = Bytes> {
    /// SADD key member...
    Add {
        /// Set.
        key: P,
        /// Members.
        members: Vec<P>,
    },
    /// SREM key member...
    Rem {
        /// Set.
        key: P,
        /// Members.
        members: Vec<P>,
    },
    /// SMEMBERS key
    Members(P),
    /// SISMEMBER key member
    IsMember {
        /// Set.
        key: P,
        /// Member.
        member: P,
    },
    /// SMISMEMBER key member...
    MIsMember {
        /// Set.
        key: P,
        /// Members.
        members: Vec<P>,
    },
    /// SCARD key
    Card(P),
    /// SPOP key [count]
    Pop {
        /// Set.
        key: P,
        /// How many; without one the reply is one member, not an array.
        count: Option<u64>,
    },
    /// SRANDMEMBER key [count]
    RandMember {
        /// Set.
        key: P,
        /// How many: distinct if positive, with repeats if negative.
        count: Option<i64>,
    },
    /// SMOVE source destination member
    Move {
        /// Set the member leaves.
        source: P,
        /// Set it joins.
        destination: P,
        /// Member.
        member: P,
    },
    /// SINTER / SUNION / SDIFF key...
    Combine {
        /// Which combination.
        op: SetOp,
        /// Sets, in order (SDIFF subtracts the rest from the first).
        keys: Vec<P>,
    },
    /// SINTERSTORE / SUNIONSTORE / SDIFFSTORE destination key...
    Store {
        /// Which combination.
        op: SetOp,
        /// Where the result goes (replacing whatever is there).
        destination: P,
        /// Sets combined.
        keys: Vec<P>,
    },
    /// SINTERCARD numkeys key... [LIMIT limit]
    InterCard {
        /// Sets.
        keys: Vec<P>,
        /// Stop counting here (0 never).
        limit: u64,
    },
    /// SSCAN key cursor [MATCH pattern] [COUNT count]
    Scan {
        /// Set.
        key: P,
        /// Where the walk is (0 to begin).
        cursor: u64,
        /// A glob members must match.
        pattern: Option<P>,
        /// About how many members to look at.
        count: u64,
    },
}

impl<P: Payload> SetCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            SetCommand::Add { .. } => opcode::SADD,
            SetCommand::Rem { .. } => opcode::SREM,
            SetCommand::Members(_) => opcode::SMEMBERS,
            SetCommand::IsMember { .. } => opcode::SISMEMBER,
            SetCommand::MIsMember { .. } => opcode::SMISMEMBER,
            SetCommand::Card(_) => opcode::SCARD,
            SetCommand::Pop { .. } => opcode::SPOP,
            SetCommand::RandMember { .. } => opcode::SRANDMEMBER,
            SetCommand::Move { .. } => opcode::SMOVE,
            SetCommand::Combine { op, .. } => match op {
                SetOp::Inter => opcode::SINTER,
                SetOp::Union => opcode::SUNION,
                SetOp::Diff => opcode::SDIFF,
            },
            SetCommand::Store { op, .. } => match op {
                SetOp::Inter => opcode::SINTERSTORE,
                SetOp::Union => opcode::SUNIONSTORE,
                SetOp::Diff => opcode::SDIFFSTORE,
            },
            SetCommand::InterCard { .. } => opcode::SINTERCARD,
            SetCommand::Scan { .. } => opcode::SSCAN,
        }
    }

    /// The key the command is routed by: its set, SMOVE's source, a STORE's destination,
    /// or the first of several sets (all of which share its slot).
    pub fn single_key(&self) -> Option<&P> {
        match self {
            SetCommand::Add { key, .. }
            | SetCommand::Rem { key, .. }
            | SetCommand::IsMember { key, .. }
            | SetCommand::MIsMember { key, .. }
            | SetCommand::Pop { key, .. }
            | SetCommand::RandMember { key, .. }
            | SetCommand::Scan { key, .. }
            | SetCommand::Members(key)
            | SetCommand::Card(key) => Some(key),
            SetCommand::Move { source, .. } => Some(source),
            SetCommand::Store { destination, .. } => Some(destination),
            SetCommand::Combine { keys, .. } | SetCommand::InterCard { keys, .. } => keys.first(),
        }
    }

    /// Every key the command names, for the slot check and access control.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        match self {
            SetCommand::Move {
                source,
                destination,
                ..
            } => {
                visit(source.as_ref());
                visit(destination.as_ref());
            }
            SetCommand::Store {
                destination, keys, ..
            } => {
                visit(destination.as_ref());
                keys.iter().for_each(|key| visit(key.as_ref()));
            }
            SetCommand::Combine { keys, .. } | SetCommand::InterCard { keys, .. } => {
                keys.iter().for_each(|key| visit(key.as_ref()))
            }
            other => {
                if let Some(key) = other.single_key() {
                    visit(key.as_ref());
                }
            }
        }
    }

    /// How the command splits across shards: none does (several sets share a slot).
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<SetCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            SetCommand::Add { key, members }
            | SetCommand::Rem { key, members }
            | SetCommand::MIsMember { key, members } => {
                put_bytes(buf, key.as_ref());
                put_list(buf, members);
            }
            SetCommand::Members(key) | SetCommand::Card(key) => put_bytes(buf, key.as_ref()),
            SetCommand::IsMember { key, member } => {
                put_bytes(buf, key.as_ref());
                put_bytes(buf, member.as_ref());
            }
            SetCommand::Pop { key, count } => {
                put_bytes(buf, key.as_ref());
                match count {
                    None => buf.put_u8(0),
                    Some(count) => {
                        buf.put_u8(1);
                        put_uvarint(buf, *count);
                    }
                }
            }
            SetCommand::RandMember { key, count } => {
                put_bytes(buf, key.as_ref());
                match count {
                    None => buf.put_u8(0),
                    Some(count) => {
                        buf.put_u8(1);
                        put_ivarint(buf, *count);
                    }
                }
            }
            SetCommand::Move {
                source,
                destination,
                member,
            } => {
                put_bytes(buf, source.as_ref());
                put_bytes(buf, destination.as_ref());
                put_bytes(buf, member.as_ref());
            }
            SetCommand::Combine { keys, .. } => put_list(buf, keys),
            SetCommand::Store {
                destination, keys, ..
            } => {
                put_bytes(buf, destination.as_ref());
                put_list(buf, keys);
            }
            SetCommand::InterCard { keys, limit } => {
                put_list(buf, keys);
                put_uvarint(buf, *limit);
            }
            SetCommand::Scan {
                key,
                cursor,
                pattern,
                count,
            } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *cursor);
                match pattern {
                    None => buf.put_u8(0),
                    Some(pattern) => {
                        buf.put_u8(1);
                        put_bytes(buf, pattern.as_ref());
                    }
                }
                put_uvarint(buf, *count);
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let flag = |r: &mut Reader<P>| match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("a flag is 0 or 1")),
        };
        let set_op = |inter, union| {
            if op == inter {
                SetOp::Inter
            } else if op == union {
                SetOp::Union
            } else {
                SetOp::Diff
            }
        };
        Ok(match op {
            opcode::SADD | opcode::SREM | opcode::SMISMEMBER => {
                let key = read_key(r)?;
                let members = read_members(r)?;
                match op {
                    opcode::SADD => SetCommand::Add { key, members },
                    opcode::SREM => SetCommand::Rem { key, members },
                    _ => SetCommand::MIsMember { key, members },
                }
            }
            opcode::SMEMBERS => SetCommand::Members(read_key(r)?),
            opcode::SCARD => SetCommand::Card(read_key(r)?),
            opcode::SISMEMBER => SetCommand::IsMember {
                key: read_key(r)?,
                member: r.bytes()?,
            },
            opcode::SPOP => {
                let key = read_key(r)?;
                let count = if flag(r)? { Some(r.uvarint()?) } else { None };
                SetCommand::Pop { key, count }
            }
            opcode::SRANDMEMBER => {
                let key = read_key(r)?;
                let count = if flag(r)? { Some(r.ivarint()?) } else { None };
                SetCommand::RandMember { key, count }
            }
            opcode::SMOVE => SetCommand::Move {
                source: read_key(r)?,
                destination: read_key(r)?,
                member: r.bytes()?,
            },
            opcode::SINTER | opcode::SUNION | opcode::SDIFF => SetCommand::Combine {
                op: set_op(opcode::SINTER, opcode::SUNION),
                keys: read_keys(r)?,
            },
            opcode::SINTERSTORE | opcode::SUNIONSTORE | opcode::SDIFFSTORE => SetCommand::Store {
                op: set_op(opcode::SINTERSTORE, opcode::SUNIONSTORE),
                destination: read_key(r)?,
                keys: read_keys(r)?,
            },
            opcode::SINTERCARD => SetCommand::InterCard {
                keys: read_keys(r)?,
                limit: r.uvarint()?,
            },
            opcode::SSCAN => {
                let key = read_key(r)?;
                let cursor = r.uvarint()?;
                let pattern = if flag(r)? { Some(r.bytes()?) } else { None };
                let count = r.uvarint()?;
                if count == 0 {
                    return Err(DecodeError::Invalid("COUNT is at least 1"));
                }
                SetCommand::Scan {
                    key,
                    cursor,
                    pattern,
                    count,
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> SetCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let all = |items: &[P]| items.iter().map(own).collect::<Vec<_>>();
        match self {
            SetCommand::Add { key, members } => SetCommand::Add {
                key: own(key),
                members: all(members),
            },
            SetCommand::Rem { key, members } => SetCommand::Rem {
                key: own(key),
                members: all(members),
            },
            SetCommand::MIsMember { key, members } => SetCommand::MIsMember {
                key: own(key),
                members: all(members),
            },
            SetCommand::Members(key) => SetCommand::Members(own(key)),
            SetCommand::Card(key) => SetCommand::Card(own(key)),
            SetCommand::IsMember { key, member } => SetCommand::IsMember {
                key: own(key),
                member: own(member),
            },
            SetCommand::Pop { key, count } => SetCommand::Pop {
                key: own(key),
                count: *count,
            },
            SetCommand::RandMember { key, count } => SetCommand::RandMember {
                key: own(key),
                count: *count,
            },
            SetCommand::Move {
                source,
                destination,
                member,
            } => SetCommand::Move {
                source: own(source),
                destination: own(destination),
                member: own(member),
            },
            SetCommand::Combine { op, keys } => SetCommand::Combine {
                op: *op,
                keys: all(keys),
            },
            SetCommand::Store {
                op,
                destination,
                keys,
            } => SetCommand::Store {
                op: *op,
                destination: own(destination),
                keys: all(keys),
            },
            SetCommand::InterCard { keys, limit } => SetCommand::InterCard {
                keys: all(keys),
                limit: *limit,
            },
            SetCommand::Scan {
                key,
                cursor,
                pattern,
                count,
            } => SetCommand::Scan {
                key: own(key),
                cursor: *cursor,
                pattern: pattern.as_ref().map(own),
                count: *count,
            },
        }
    }
}

fn read_members<P: Payload>(r: &mut Reader<P>) -> Result<Vec<P>, DecodeError> {
    let count = r.count(1)?;
    if count == 0 {
        return Err(DecodeError::Invalid("at least one member is required"));
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(r.bytes()?);
    }
    Ok(members)
}

/// SSCAN's COUNT when none is given, as Redis's.
pub const DEFAULT_SCAN_COUNT: u64 = 10;

impl<P: Payload> SetCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let set_op = |inter, union| {
            if spec.opcode == inter {
                SetOp::Inter
            } else if spec.opcode == union {
                SetOp::Union
            } else {
                SetOp::Diff
            }
        };
        let command = match spec.opcode {
            opcode::SADD | opcode::SREM | opcode::SMISMEMBER => {
                let key = words.key()?;
                let members = words.rest().to_vec();
                if members.is_empty() {
                    return Err(words.arity());
                }
                match spec.opcode {
                    opcode::SADD => SetCommand::Add { key, members },
                    opcode::SREM => SetCommand::Rem { key, members },
                    _ => SetCommand::MIsMember { key, members },
                }
            }
            opcode::SMEMBERS => SetCommand::Members(words.key()?),
            opcode::SCARD => SetCommand::Card(words.key()?),
            opcode::SISMEMBER => SetCommand::IsMember {
                key: words.key()?,
                member: words.bytes()?,
            },
            opcode::SPOP => {
                let key = words.key()?;
                let count = match words.remaining() {
                    0 => None,
                    _ => Some(u64::try_from(words.int::<i64>()?).map_err(|_| {
                        ErrorReply::new(
                            ErrorCode::Syntax,
                            "value is out of range, must be positive",
                        )
                    })?),
                };
                SetCommand::Pop { key, count }
            }
            opcode::SRANDMEMBER => {
                let key = words.key()?;
                let count = match words.remaining() {
                    0 => None,
                    _ => {
                        let n: i64 = words.int()?;
                        if n == i64::MIN {
                            return Err(ErrorReply::new(
                                ErrorCode::Syntax,
                                "value is out of range",
                            ));
                        }
                        Some(n)
                    }
                };
                SetCommand::RandMember { key, count }
            }
            opcode::SMOVE => SetCommand::Move {
                source: words.key()?,
                destination: words.key()?,
                member: words.bytes()?,
            },
            opcode::SINTER | opcode::SUNION | opcode::SDIFF => {
                let keys = text_keys(&mut words)?;
                SetCommand::Combine {
                    op: set_op(opcode::SINTER, opcode::SUNION),
                    keys,
                }
            }
            opcode::SINTERSTORE | opcode::SUNIONSTORE | opcode::SDIFFSTORE => {
                let destination = words.key()?;
                SetCommand::Store {
                    op: set_op(opcode::SINTERSTORE, opcode::SUNIONSTORE),
                    destination,
                    keys: text_keys(&mut words)?,
                }
            }
            opcode::SINTERCARD => parse_intercard(&mut words)?,
            opcode::SSCAN => {
                let key = words.key()?;
                let cursor = words
                    .int()
                    .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "invalid cursor"))?;
                let (mut pattern, mut count) = (None, DEFAULT_SCAN_COUNT);
                words.options("syntax error", |name, words| {
                    match name {
                        b"MATCH" => pattern = Some(words.bytes()?),
                        b"COUNT" => {
                            let n: i64 = words.int()?;
                            if n < 1 {
                                return Err(ErrorReply::new(ErrorCode::Syntax, "syntax error"));
                            }
                            count = n as u64;
                        }
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SetCommand::Scan {
                    key,
                    cursor,
                    pattern,
                    count,
                }
            }
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}

fn text_keys<P: Payload>(words: &mut Words<'_, P>) -> Result<Vec<P>, ErrorReply> {
    let mut keys = Vec::with_capacity(words.remaining());
    while words.remaining() > 0 {
        keys.push(words.key()?);
    }
    if keys.is_empty() {
        return Err(words.arity());
    }
    Ok(keys)
}

fn parse_intercard<P: Payload>(words: &mut Words<'_, P>) -> Result<SetCommand<P>, ErrorReply> {
    let numkeys: i64 = words.int().unwrap_or(0);
    if numkeys <= 0 {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "numkeys should be greater than 0",
        ));
    }
    if numkeys as u64 > words.remaining() as u64 {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "Number of keys can't be greater than number of args",
        ));
    }
    let mut keys = Vec::with_capacity(numkeys as usize);
    for _ in 0..numkeys {
        keys.push(words.key()?);
    }
    let mut limit = 0;
    words.options("syntax error", |name, words| {
        if name != b"LIMIT" {
            return Ok(false);
        }
        if words.remaining() == 0 {
            return Err(ErrorReply::new(ErrorCode::Syntax, "syntax error"));
        }
        let n: i64 = words.int().unwrap_or(-1);
        limit = u64::try_from(n)
            .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "LIMIT can't be negative"))?;
        Ok(true)
    })?;
    Ok(SetCommand::InterCard { keys, limit })
}

impl SetCommand<Bytes> {
    /// SADD: answers how many members were new.
    pub fn sadd<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        members: impl IntoIterator<Item = M>,
    ) -> Typed<u64> {
        let command = SetCommand::Add {
            key: key.into(),
            members: members.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, read::count)
    }

    /// SREM: answers how many members were removed.
    pub fn srem<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        members: impl IntoIterator<Item = M>,
    ) -> Typed<u64> {
        let command = SetCommand::Rem {
            key: key.into(),
            members: members.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, read::count)
    }

    /// SMEMBERS: every member, in no particular order.
    pub fn smembers(key: impl Into<Bytes>) -> Typed<Vec<Bytes>> {
        Typed::new(SetCommand::Members(key.into()), |reply| {
            read::array(reply, read::bytes)
        })
    }

    /// SISMEMBER: whether it is a member.
    pub fn sismember(key: impl Into<Bytes>, member: impl Into<Bytes>) -> Typed<bool> {
        let command = SetCommand::IsMember {
            key: key.into(),
            member: member.into(),
        };
        Typed::new(command, read::flag)
    }

    /// SCARD: how many members.
    pub fn scard(key: impl Into<Bytes>) -> Typed<u64> {
        Typed::new(SetCommand::Card(key.into()), read::count)
    }

    /// SPOP of up to `count` members: those removed.
    pub fn spop(key: impl Into<Bytes>, count: u64) -> Typed<Vec<Bytes>> {
        let command = SetCommand::Pop {
            key: key.into(),
            count: Some(count),
        };
        Typed::new(command, |reply| match reply {
            Value::Nil => Ok(Vec::new()),
            other => read::array(other, read::bytes),
        })
    }
}
