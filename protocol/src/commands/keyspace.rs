//! The keyspace as a whole: a key's kind (TYPE), finding keys (KEYS, SCAN) and renaming
//! one (RENAME, RENAMENX, within a slot).
//!
//! A SCAN cursor names a shard and a position in its table: the walk goes shard by shard,
//! and within a shard from one table position to the next. Positions stay put until the
//! table grows; a cursor made before a growth starts that shard again, so every key
//! present for the whole walk is returned at least once (some perhaps twice).

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{read_key, Words};
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// TYPE
    pub const TYPE: u16 = 0x0140;
    /// KEYS
    pub const KEYS: u16 = 0x0141;
    /// SCAN
    pub const SCAN: u16 = 0x0142;
    /// RENAME
    pub const RENAME: u16 = 0x0143;
    /// RENAMENX
    pub const RENAMENX: u16 = 0x0144;
    /// MEMORY.USAGE
    pub const MEMORY_USAGE: u16 = 0x0145;
    /// COPY
    pub const COPY: u16 = 0x0146;
    /// RANDOMKEY
    pub const RANDOMKEY: u16 = 0x0147;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::TYPE,
        name: "TYPE",
        syntax: "key",
        wire: "key:bytes",
        reply: "TEXT the kind: string, list, set, zset, hash, or one of ours (ratelimit, idem, versioned, sku, timeline, presence); none if missing",
        summary: "Names the kind of value a key holds.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::KEYS,
        name: "KEYS",
        syntax: "pattern",
        wire: "pattern:bytes",
        reply: "ARRAY of BYTES keys matching the glob (REPLY_TOO_LARGE past the reply limit)",
        summary: "Lists every key matching a glob; a walk over every key, so SCAN suits large keyspaces.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::SCAN,
        name: "SCAN",
        syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]",
        wire: "cursor:uvarint has_pattern:u8 [pattern:bytes] count:uvarint has_type:u8 [type:bytes]",
        reply: "ARRAY [BYTES next cursor (0 when done), ARRAY of BYTES keys]",
        summary: "Walks the keys a few at a time; every key present for the whole walk is returned at least once.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::RENAME,
        name: "RENAME",
        syntax: "key newkey",
        wire: "key:bytes newkey:bytes",
        reply: "OK; NOT_FOUND if the key is missing; CROSS_SHARD unless both share a slot",
        summary: "Renames a key with its value and expiry, replacing whatever newkey held.",
        writes: true,
        keys: KeySpec::OneSlot,
    },
    CommandSpec {
        opcode: opcode::RENAMENX,
        name: "RENAMENX",
        syntax: "key newkey",
        wire: "key:bytes newkey:bytes",
        reply: "INT 1 if renamed, 0 if newkey exists; NOT_FOUND if the key is missing",
        summary: "RENAME only when newkey does not exist.",
        writes: true,
        keys: KeySpec::OneSlot,
    },
    CommandSpec {
        opcode: opcode::MEMORY_USAGE,
        name: "MEMORY.USAGE",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT about the bytes the key and its value hold, or NIL if missing",
        summary: "Estimates a key's memory (MEMORY USAGE over RESP).",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::COPY,
        name: "COPY",
        syntax: "source destination [REPLACE]",
        wire: "source:bytes destination:bytes replace:u8",
        reply: "INT 1 if copied, 0 if the source is missing or the destination exists (without REPLACE); CROSS_SHARD unless both share a slot",
        summary: "Copies a key's value and expiry to another key.",
        writes: true,
        keys: KeySpec::OneSlot,
    },
    CommandSpec {
        opcode: opcode::RANDOMKEY,
        name: "RANDOMKEY",
        syntax: "",
        wire: "(empty)",
        reply: "BYTES a key picked at random, or NIL if there is none",
        summary: "Picks a key at random, each about as likely.",
        writes: false,
        keys: KeySpec::AllShards,
    },
];

/// SCAN's COUNT when none is given, as Redis's.
pub const DEFAULT_SCAN_COUNT: u64 = 10;

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyspaceCommand<P = Bytes> {
    /// TYPE key
    Type(P),
    /// KEYS pattern
    Keys(P),
    /// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
    Scan {
        /// Where the walk is (0 to begin).
        cursor: u64,
        /// A glob keys must match.
        pattern: Option<P>,
        /// About how many table positions to look at.
        count: u64,
        /// Only keys of this kind (TYPE's names).
        kind: Option<P>,
    },
    /// MEMORY.USAGE key
    MemoryUsage(P),
    /// COPY source destination [REPLACE]
    Copy {
        /// The key copied.
        from: P,
        /// Where the copy goes.
        to: P,
        /// Overwrite the destination if it exists.
        replace: bool,
    },
    /// RANDOMKEY
    RandomKey,
    /// RENAME / RENAMENX key newkey
    Rename {
        /// The key renamed.
        from: P,
        /// Its new name.
        to: P,
        /// Only if `to` does not exist (RENAMENX).
        if_absent: bool,
    },
}

impl<P: Payload> KeyspaceCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            KeyspaceCommand::Type(_) => opcode::TYPE,
            KeyspaceCommand::Keys(_) => opcode::KEYS,
            KeyspaceCommand::Scan { .. } => opcode::SCAN,
            KeyspaceCommand::Rename {
                if_absent: false, ..
            } => opcode::RENAME,
            KeyspaceCommand::Rename { .. } => opcode::RENAMENX,
            KeyspaceCommand::MemoryUsage(_) => opcode::MEMORY_USAGE,
            KeyspaceCommand::Copy { .. } => opcode::COPY,
            KeyspaceCommand::RandomKey => opcode::RANDOMKEY,
        }
    }

    /// TYPE's key, or the key RENAME renames.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            KeyspaceCommand::Type(key)
            | KeyspaceCommand::MemoryUsage(key)
            | KeyspaceCommand::Copy { from: key, .. }
            | KeyspaceCommand::Rename { from: key, .. } => Some(key),
            KeyspaceCommand::Keys(_)
            | KeyspaceCommand::Scan { .. }
            | KeyspaceCommand::RandomKey => None,
        }
    }

    /// RENAME's new name, which must share the key's slot.
    pub fn second_key(&self) -> Option<&P> {
        match self {
            KeyspaceCommand::Rename { to, .. } | KeyspaceCommand::Copy { to, .. } => Some(to),
            _ => None,
        }
    }

    /// How the command splits across shards: none does.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<KeyspaceCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        let maybe = |buf: &mut BytesMut, value: &Option<P>| match value {
            None => buf.put_u8(0),
            Some(value) => {
                buf.put_u8(1);
                put_bytes(buf, value.as_ref());
            }
        };
        match self {
            KeyspaceCommand::Type(key)
            | KeyspaceCommand::Keys(key)
            | KeyspaceCommand::MemoryUsage(key) => put_bytes(buf, key.as_ref()),
            KeyspaceCommand::Scan {
                cursor,
                pattern,
                count,
                kind,
            } => {
                put_uvarint(buf, *cursor);
                maybe(buf, pattern);
                put_uvarint(buf, *count);
                maybe(buf, kind);
            }
            KeyspaceCommand::Rename { from, to, .. } => {
                put_bytes(buf, from.as_ref());
                put_bytes(buf, to.as_ref());
            }
            KeyspaceCommand::Copy { from, to, replace } => {
                put_bytes(buf, from.as_ref());
                put_bytes(buf, to.as_ref());
                buf.put_u8(u8::from(*replace));
            }
            KeyspaceCommand::RandomKey => {}
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let maybe = |r: &mut Reader<P>| match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(r.bytes()?)),
            _ => Err(DecodeError::Invalid("a flag is 0 or 1")),
        };
        Ok(match op {
            opcode::TYPE => KeyspaceCommand::Type(read_key(r)?),
            opcode::MEMORY_USAGE => KeyspaceCommand::MemoryUsage(read_key(r)?),
            opcode::COPY => KeyspaceCommand::Copy {
                from: read_key(r)?,
                to: read_key(r)?,
                replace: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("a flag is 0 or 1")),
                },
            },
            opcode::RANDOMKEY => KeyspaceCommand::RandomKey,
            opcode::KEYS => KeyspaceCommand::Keys(r.bytes()?),
            opcode::SCAN => {
                let cursor = r.uvarint()?;
                let pattern = maybe(r)?;
                let count = r.uvarint()?;
                if count == 0 {
                    return Err(DecodeError::Invalid("COUNT is at least 1"));
                }
                KeyspaceCommand::Scan {
                    cursor,
                    pattern,
                    count,
                    kind: maybe(r)?,
                }
            }
            opcode::RENAME | opcode::RENAMENX => KeyspaceCommand::Rename {
                from: read_key(r)?,
                to: read_key(r)?,
                if_absent: op == opcode::RENAMENX,
            },
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> KeyspaceCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            KeyspaceCommand::Type(key) => KeyspaceCommand::Type(own(key)),
            KeyspaceCommand::MemoryUsage(key) => KeyspaceCommand::MemoryUsage(own(key)),
            KeyspaceCommand::Copy { from, to, replace } => KeyspaceCommand::Copy {
                from: own(from),
                to: own(to),
                replace: *replace,
            },
            KeyspaceCommand::RandomKey => KeyspaceCommand::RandomKey,
            KeyspaceCommand::Keys(pattern) => KeyspaceCommand::Keys(own(pattern)),
            KeyspaceCommand::Scan {
                cursor,
                pattern,
                count,
                kind,
            } => KeyspaceCommand::Scan {
                cursor: *cursor,
                pattern: pattern.as_ref().map(own),
                count: *count,
                kind: kind.as_ref().map(own),
            },
            KeyspaceCommand::Rename {
                from,
                to,
                if_absent,
            } => KeyspaceCommand::Rename {
                from: own(from),
                to: own(to),
                if_absent: *if_absent,
            },
        }
    }
}

impl<P: Payload> KeyspaceCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let command = match spec.opcode {
            opcode::TYPE => KeyspaceCommand::Type(words.key()?),
            opcode::MEMORY_USAGE => KeyspaceCommand::MemoryUsage(words.key()?),
            opcode::COPY => {
                let (from, to) = (words.key()?, words.key()?);
                let mut replace = false;
                words.options("syntax error", |name, words| {
                    match name {
                        b"REPLACE" => replace = true,
                        // Only database 0 exists, as for SELECT.
                        b"DB" => match words.int::<i64>()? {
                            0 => {}
                            _ => {
                                return Err(ErrorReply::new(
                                    ErrorCode::Syntax,
                                    "DB index is out of range",
                                ))
                            }
                        },
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                KeyspaceCommand::Copy { from, to, replace }
            }
            opcode::RANDOMKEY => KeyspaceCommand::RandomKey,
            opcode::KEYS => KeyspaceCommand::Keys(words.bytes()?),
            opcode::SCAN => {
                let cursor = words
                    .int()
                    .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "invalid cursor"))?;
                let (mut pattern, mut count, mut kind) = (None, DEFAULT_SCAN_COUNT, None);
                words.options("syntax error", |name, words| {
                    match name {
                        b"MATCH" => pattern = Some(words.bytes()?),
                        b"TYPE" => kind = Some(words.bytes()?),
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
                KeyspaceCommand::Scan {
                    cursor,
                    pattern,
                    count,
                    kind,
                }
            }
            opcode::RENAME | opcode::RENAMENX => KeyspaceCommand::Rename {
                from: words.key()?,
                to: words.key()?,
                if_absent: spec.opcode == opcode::RENAMENX,
            },
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}
