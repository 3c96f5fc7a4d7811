//! Lists: elements in order under one key, pushed and popped at either end, as Redis's.
//!
//! Indices count from 0 at the head and from -1 at the tail, as Redis's do. A list goes
//! with its last element. LMOVE names two keys; both must share a slot (a `{hash tag}`),
//! as Redis Cluster requires, so the move runs on one shard and is atomic.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{put_list, read_key};
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

mod text;
mod typed;

/// The family's opcodes; stable once published.
pub mod opcode {
    /// LPUSH
    pub const LPUSH: u16 = 0x0100;
    /// RPUSH
    pub const RPUSH: u16 = 0x0101;
    /// LPUSHX
    pub const LPUSHX: u16 = 0x0102;
    /// RPUSHX
    pub const RPUSHX: u16 = 0x0103;
    /// LPOP
    pub const LPOP: u16 = 0x0104;
    /// RPOP
    pub const RPOP: u16 = 0x0105;
    /// LLEN
    pub const LLEN: u16 = 0x0106;
    /// LRANGE
    pub const LRANGE: u16 = 0x0107;
    /// LINDEX
    pub const LINDEX: u16 = 0x0108;
    /// LSET
    pub const LSET: u16 = 0x0109;
    /// LREM
    pub const LREM: u16 = 0x010a;
    /// LTRIM
    pub const LTRIM: u16 = 0x010b;
    /// LPOS
    pub const LPOS: u16 = 0x010c;
    /// LINSERT
    pub const LINSERT: u16 = 0x010d;
    /// LMOVE
    pub const LMOVE: u16 = 0x010e;
}

use super::keyed_row as row;

/// A row for a command naming two lists that must share a slot.
const fn two_keys(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
    writes: bool,
) -> CommandSpec {
    CommandSpec {
        keys: KeySpec::OneSlot,
        ..row(opcode, name, syntax, wire, reply, summary, writes)
    }
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(
        opcode::LPUSH,
        "LPUSH",
        "key element [element ...]",
        "key:bytes count:uvarint element:bytes*count",
        "INT the list's length after the push",
        "Pushes elements at the head, one after another (the last given ends up first).",
        true,
    ),
    row(
        opcode::RPUSH,
        "RPUSH",
        "key element [element ...]",
        "key:bytes count:uvarint element:bytes*count",
        "INT the list's length after the push",
        "Pushes elements at the tail.",
        true,
    ),
    row(
        opcode::LPUSHX,
        "LPUSHX",
        "key element [element ...]",
        "key:bytes count:uvarint element:bytes*count",
        "INT the list's length after the push (0 if there was no list)",
        "LPUSH only onto a list that exists.",
        true,
    ),
    row(
        opcode::RPUSHX,
        "RPUSHX",
        "key element [element ...]",
        "key:bytes count:uvarint element:bytes*count",
        "INT the list's length after the push (0 if there was no list)",
        "RPUSH only onto a list that exists.",
        true,
    ),
    row(
        opcode::LPOP,
        "LPOP",
        "key [count]",
        "key:bytes has_count:u8 [count:uvarint]",
        "BYTES or NIL without a count; with one, ARRAY of BYTES (NIL if the key is missing)",
        "Removes and returns elements from the head.",
        true,
    ),
    row(
        opcode::RPOP,
        "RPOP",
        "key [count]",
        "key:bytes has_count:u8 [count:uvarint]",
        "as LPOP",
        "Removes and returns elements from the tail.",
        true,
    ),
    row(
        opcode::LLEN,
        "LLEN",
        "key",
        "key:bytes",
        "INT elements (0 if the key is missing)",
        "Counts the elements.",
        false,
    ),
    row(
        opcode::LRANGE,
        "LRANGE",
        "key start stop",
        "key:bytes start:ivarint stop:ivarint",
        "ARRAY of BYTES from start to stop, both included",
        "Reads a range of elements; negative indices count from the tail.",
        false,
    ),
    row(
        opcode::LINDEX,
        "LINDEX",
        "key index",
        "key:bytes index:ivarint",
        "BYTES, or NIL if out of range",
        "Reads one element.",
        false,
    ),
    row(
        opcode::LSET,
        "LSET",
        "key index element",
        "key:bytes index:ivarint element:bytes",
        "OK; NOT_FOUND if the key is missing, SYNTAX if the index is out of range",
        "Replaces one element.",
        true,
    ),
    row(
        opcode::LREM,
        "LREM",
        "key count element",
        "key:bytes count:ivarint element:bytes",
        "INT elements removed",
        "Removes elements equal to one: the first count from the head (count > 0), from the tail (count < 0), or all (0).",
        true,
    ),
    row(
        opcode::LTRIM,
        "LTRIM",
        "key start stop",
        "key:bytes start:ivarint stop:ivarint",
        "OK",
        "Keeps only the elements from start to stop.",
        true,
    ),
    row(
        opcode::LPOS,
        "LPOS",
        "key element [RANK rank] [COUNT count] [MAXLEN len]",
        "key:bytes element:bytes rank:ivarint (not 0) has_count:u8 [count:uvarint] maxlen:uvarint (0 no limit)",
        "INT index or NIL without COUNT; with it, ARRAY of INT (COUNT 0 means every match)",
        "Finds the indices of elements equal to one; RANK -1 searches from the tail.",
        false,
    ),
    row(
        opcode::LINSERT,
        "LINSERT",
        "key BEFORE|AFTER pivot element",
        "key:bytes after:u8 pivot:bytes element:bytes",
        "INT the length after the insert, -1 if the pivot is missing, 0 if the key is",
        "Inserts an element next to the first one equal to the pivot.",
        true,
    ),
    two_keys(
        opcode::LMOVE,
        "LMOVE",
        "source destination LEFT|RIGHT LEFT|RIGHT",
        "source:bytes destination:bytes from:u8 (0 left, 1 right) to:u8",
        "BYTES the element moved, or NIL if the source is empty; CROSS_SHARD unless both keys share a slot",
        "Pops from one end of a list and pushes onto an end of another (or the same) list, atomically.",
        true,
    ),
];

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head (LEFT, index 0).
    Left,
    /// The tail (RIGHT, index -1).
    Right,
}

impl End {
    pub(crate) fn tag(self) -> u8 {
        match self {
            End::Left => 0,
            End::Right => 1,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Result<End, DecodeError> {
        match tag {
            0 => Ok(End::Left),
            1 => Ok(End::Right),
            _ => Err(DecodeError::Invalid("an end is 0 (left) or 1 (right)")),
        }
    }

    pub(crate) fn parse(word: &[u8]) -> Result<End, ErrorReply> {
        if word.eq_ignore_ascii_case(b"LEFT") {
            Ok(End::Left)
        } else if word.eq_ignore_ascii_case(b"RIGHT") {
            Ok(End::Right)
        } else {
            Err(ErrorReply::new(ErrorCode::Syntax, "syntax error"))
        }
    }
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCommand<P = Bytes> {
    /// LPUSH / RPUSH / LPUSHX / RPUSHX key element...
    Push {
        /// List.
        key: P,
        /// Where the elements go.
        end: End,
        /// Only onto a list that exists (the X forms).
        existing_only: bool,
        /// Elements, pushed one after another.
        elements: Vec<P>,
    },
    /// LPOP / RPOP key [count]
    Pop {
        /// List.
        key: P,
        /// Where they come from.
        end: End,
        /// How many; without one the reply is one element, not an array.
        count: Option<u64>,
    },
    /// LLEN key
    Len(P),
    /// LRANGE key start stop
    Range {
        /// List.
        key: P,
        /// First index.
        start: i64,
        /// Last index, included.
        stop: i64,
    },
    /// LINDEX key index
    Index {
        /// List.
        key: P,
        /// Index.
        index: i64,
    },
    /// LSET key index element
    Set {
        /// List.
        key: P,
        /// Index.
        index: i64,
        /// New element.
        element: P,
    },
    /// LREM key count element
    Rem {
        /// List.
        key: P,
        /// How many and from which end (see the row).
        count: i64,
        /// Element removed.
        element: P,
    },
    /// LTRIM key start stop
    Trim {
        /// List.
        key: P,
        /// First index kept.
        start: i64,
        /// Last index kept.
        stop: i64,
    },
    /// LPOS key element [RANK r] [COUNT c] [MAXLEN m]
    Pos {
        /// List.
        key: P,
        /// Element sought.
        element: P,
        /// Which match first: 1 the first from the head, -1 the first from the tail.
        rank: i64,
        /// How many matches (0 all); without one the reply is one index.
        count: Option<u64>,
        /// How many elements to look at (0 all).
        max_len: u64,
    },
    /// LINSERT key BEFORE|AFTER pivot element
    Insert {
        /// List.
        key: P,
        /// After the pivot (else before).
        after: bool,
        /// Element to insert next to.
        pivot: P,
        /// Element inserted.
        element: P,
    },
    /// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
    Move {
        /// List popped.
        source: P,
        /// List pushed.
        destination: P,
        /// End popped.
        from: End,
        /// End pushed.
        to: End,
    },
}

impl<P: Payload> ListCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            ListCommand::Push {
                end, existing_only, ..
            } => match (end, existing_only) {
                (End::Left, false) => opcode::LPUSH,
                (End::Right, false) => opcode::RPUSH,
                (End::Left, true) => opcode::LPUSHX,
                (End::Right, true) => opcode::RPUSHX,
            },
            ListCommand::Pop { end: End::Left, .. } => opcode::LPOP,
            ListCommand::Pop { .. } => opcode::RPOP,
            ListCommand::Len(_) => opcode::LLEN,
            ListCommand::Range { .. } => opcode::LRANGE,
            ListCommand::Index { .. } => opcode::LINDEX,
            ListCommand::Set { .. } => opcode::LSET,
            ListCommand::Rem { .. } => opcode::LREM,
            ListCommand::Trim { .. } => opcode::LTRIM,
            ListCommand::Pos { .. } => opcode::LPOS,
            ListCommand::Insert { .. } => opcode::LINSERT,
            ListCommand::Move { .. } => opcode::LMOVE,
        }
    }

    /// The list the command runs on (LMOVE's source; its destination shares the slot).
    pub fn single_key(&self) -> Option<&P> {
        Some(match self {
            ListCommand::Push { key, .. }
            | ListCommand::Pop { key, .. }
            | ListCommand::Range { key, .. }
            | ListCommand::Index { key, .. }
            | ListCommand::Set { key, .. }
            | ListCommand::Rem { key, .. }
            | ListCommand::Trim { key, .. }
            | ListCommand::Pos { key, .. }
            | ListCommand::Insert { key, .. }
            | ListCommand::Len(key) => key,
            ListCommand::Move { source, .. } => source,
        })
    }

    /// The other key an LMOVE names, which must share the first key's slot.
    pub fn second_key(&self) -> Option<&P> {
        match self {
            ListCommand::Move { destination, .. } => Some(destination),
            _ => None,
        }
    }

    /// How the command splits across shards: none does.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<ListCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        put_bytes(buf, self.single_key().map_or(&[][..], AsRef::as_ref));
        match self {
            ListCommand::Push { elements, .. } => put_list(buf, elements),
            ListCommand::Pop { count, .. } => put_count(buf, *count),
            ListCommand::Len(_) => {}
            ListCommand::Range { start, stop, .. } | ListCommand::Trim { start, stop, .. } => {
                put_ivarint(buf, *start);
                put_ivarint(buf, *stop);
            }
            ListCommand::Index { index, .. } => put_ivarint(buf, *index),
            ListCommand::Set { index, element, .. } => {
                put_ivarint(buf, *index);
                put_bytes(buf, element.as_ref());
            }
            ListCommand::Rem { count, element, .. } => {
                put_ivarint(buf, *count);
                put_bytes(buf, element.as_ref());
            }
            ListCommand::Pos {
                element,
                rank,
                count,
                max_len,
                ..
            } => {
                put_bytes(buf, element.as_ref());
                put_ivarint(buf, *rank);
                put_count(buf, *count);
                put_uvarint(buf, *max_len);
            }
            ListCommand::Insert {
                after,
                pivot,
                element,
                ..
            } => {
                buf.put_u8(u8::from(*after));
                put_bytes(buf, pivot.as_ref());
                put_bytes(buf, element.as_ref());
            }
            ListCommand::Move {
                destination,
                from,
                to,
                ..
            } => {
                put_bytes(buf, destination.as_ref());
                buf.put_u8(from.tag());
                buf.put_u8(to.tag());
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let key = read_key(r)?;
        let end = |left: u16| if op == left { End::Left } else { End::Right };
        Ok(match op {
            opcode::LPUSH | opcode::RPUSH | opcode::LPUSHX | opcode::RPUSHX => {
                let count = r.count(1)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("a push needs at least one element"));
                }
                let mut elements = Vec::with_capacity(count);
                for _ in 0..count {
                    elements.push(r.bytes()?);
                }
                ListCommand::Push {
                    key,
                    end: if matches!(op, opcode::LPUSH | opcode::LPUSHX) {
                        End::Left
                    } else {
                        End::Right
                    },
                    existing_only: matches!(op, opcode::LPUSHX | opcode::RPUSHX),
                    elements,
                }
            }
            opcode::LPOP | opcode::RPOP => ListCommand::Pop {
                key,
                end: end(opcode::LPOP),
                count: read_count(r)?,
            },
            opcode::LLEN => ListCommand::Len(key),
            opcode::LRANGE => ListCommand::Range {
                key,
                start: r.ivarint()?,
                stop: r.ivarint()?,
            },
            opcode::LTRIM => ListCommand::Trim {
                key,
                start: r.ivarint()?,
                stop: r.ivarint()?,
            },
            opcode::LINDEX => ListCommand::Index {
                key,
                index: r.ivarint()?,
            },
            opcode::LSET => ListCommand::Set {
                key,
                index: r.ivarint()?,
                element: r.bytes()?,
            },
            opcode::LREM => ListCommand::Rem {
                key,
                count: r.ivarint()?,
                element: r.bytes()?,
            },
            opcode::LPOS => {
                let element = r.bytes()?;
                let rank = r.ivarint()?;
                if rank == 0 || rank == i64::MIN {
                    return Err(DecodeError::Invalid("RANK is not 0"));
                }
                ListCommand::Pos {
                    key,
                    element,
                    rank,
                    count: read_count(r)?,
                    max_len: r.uvarint()?,
                }
            }
            opcode::LINSERT => {
                let after = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("after is 0 or 1")),
                };
                ListCommand::Insert {
                    key,
                    after,
                    pivot: r.bytes()?,
                    element: r.bytes()?,
                }
            }
            opcode::LMOVE => ListCommand::Move {
                source: key,
                destination: read_key(r)?,
                from: End::from_tag(r.u8()?)?,
                to: End::from_tag(r.u8()?)?,
            },
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> ListCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            ListCommand::Push {
                key,
                end,
                existing_only,
                elements,
            } => ListCommand::Push {
                key: own(key),
                end: *end,
                existing_only: *existing_only,
                elements: elements.iter().map(own).collect(),
            },
            ListCommand::Pop { key, end, count } => ListCommand::Pop {
                key: own(key),
                end: *end,
                count: *count,
            },
            ListCommand::Len(key) => ListCommand::Len(own(key)),
            ListCommand::Range { key, start, stop } => ListCommand::Range {
                key: own(key),
                start: *start,
                stop: *stop,
            },
            ListCommand::Index { key, index } => ListCommand::Index {
                key: own(key),
                index: *index,
            },
            ListCommand::Set {
                key,
                index,
                element,
            } => ListCommand::Set {
                key: own(key),
                index: *index,
                element: own(element),
            },
            ListCommand::Rem {
                key,
                count,
                element,
            } => ListCommand::Rem {
                key: own(key),
                count: *count,
                element: own(element),
            },
            ListCommand::Trim { key, start, stop } => ListCommand::Trim {
                key: own(key),
                start: *start,
                stop: *stop,
            },
            ListCommand::Pos {
                key,
                element,
                rank,
                count,
                max_len,
            } => ListCommand::Pos {
                key: own(key),
                element: own(element),
                rank: *rank,
                count: *count,
                max_len: *max_len,
            },
            ListCommand::Insert {
                key,
                after,
                pivot,
                element,
            } => ListCommand::Insert {
                key: own(key),
                after: *after,
                pivot: own(pivot),
                element: own(element),
            },
            ListCommand::Move {
                source,
                destination,
                from,
                to,
            } => ListCommand::Move {
                source: own(source),
                destination: own(destination),
                from: *from,
                to: *to,
            },
        }
    }
}

fn put_count(buf: &mut BytesMut, count: Option<u64>) {
    match count {
        None => buf.put_u8(0),
        Some(count) => {
            buf.put_u8(1);
            put_uvarint(buf, count);
        }
    }
}

fn read_count<P: Payload>(r: &mut Reader<P>) -> Result<Option<u64>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.uvarint()?)),
        _ => Err(DecodeError::Invalid("has_count is 0 or 1")),
    }
}
