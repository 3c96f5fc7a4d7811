//! Timelines: capped, scored lists of ids with fan-out, paging and merges.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::{fixed, split_keys, Combine, Split};
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// TL.PUSH
    pub const TL_PUSH: u16 = 0x0080;
    /// TL.FANOUT
    pub const TL_FANOUT: u16 = 0x0081;
    /// TL.RANGE
    pub const TL_RANGE: u16 = 0x0082;
    /// TL.MERGE
    pub const TL_MERGE: u16 = 0x0083;
    /// TL.REMOVE
    pub const TL_REMOVE: u16 = 0x0084;
    /// TL.LEN
    pub const TL_LEN: u16 = 0x0085;
    /// TL.TRIM
    pub const TL_TRIM: u16 = 0x0086;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::TL_PUSH,
        name: "TL.PUSH",
        syntax: "key id [SCORE s] [CAP n]",
        wire: "key:bytes id:uvarint flags:u8 (1 score, 2 cap) [score:ivarint] [cap:uvarint]",
        reply: "INT 1 if added, 0 if the id was already there or is older than the cap keeps",
        summary: "Adds an id to a capped timeline kept newest first (score defaults to the id).",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_FANOUT,
        name: "TL.FANOUT",
        syntax: "id [SCORE s] [CAP n] key [key ...]",
        wire: "id:uvarint flags:u8 [score:ivarint] [cap:uvarint] count:uvarint key:bytes*count",
        reply: "INT timelines the id was added to",
        summary: "Pushes one id into many timelines in one call, split across the shards that own them.",
        writes: true,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::TL_RANGE,
        name: "TL.RANGE",
        syntax: "key [BEFORE cursor] [AFTER cursor] [LIMIT n]",
        wire: "key:bytes flags:u8 (1 before, 2 after) [before: score:ivarint id:uvarint] [after: score:ivarint id:uvarint] limit:uvarint (0 = 20)",
        reply: "MAP {items: ARRAY of [INT id, INT score] newest first, next: [INT score, INT id] cursor for older items, or NIL}",
        summary: "Pages a timeline: up to LIMIT items older than BEFORE and newer than AFTER; cursors never skip or repeat items as new ones arrive.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_MERGE,
        name: "TL.MERGE",
        syntax: "LIMIT n [BEFORE cursor] key [key ...]",
        wire: "limit:uvarint flags:u8 (1 before) [before: score:ivarint id:uvarint] count:uvarint key:bytes*count",
        reply: "as TL.RANGE, over the union of the timelines without duplicate ids",
        summary: "Merges several timelines on read (a home timeline plus celebrities'), deduplicated, with one cursor.",
        writes: false,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::TL_REMOVE,
        name: "TL.REMOVE",
        syntax: "key id",
        wire: "key:bytes id:uvarint",
        reply: "INT 1 if removed, else 0",
        summary: "Removes an id from a timeline.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_LEN,
        name: "TL.LEN",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT items in the timeline",
        summary: "Counts a timeline's items.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_TRIM,
        name: "TL.TRIM",
        syntax: "key keep",
        wire: "key:bytes keep:uvarint",
        reply: "INT items removed",
        summary: "Keeps only the newest items of a timeline.",
        writes: true,
        keys: KeySpec::Single,
    },
];

/// Default number of items a timeline keeps.
pub const DEFAULT_TIMELINE_CAP: u32 = 800;

/// Most items a timeline may keep.
pub const MAX_TIMELINE_CAP: u32 = 100_000;

/// Default page size of TL.RANGE and TL.MERGE.
pub const DEFAULT_PAGE: u32 = 20;

/// A position in a timeline: items are ordered by score, then id, newest (largest) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Score (defaults to the id).
    pub score: i64,
    /// Id.
    pub id: u64,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineCommand<P = Bytes> {
    /// TL.PUSH key id [SCORE s] [CAP n]
    Push {
        /// Timeline.
        key: P,
        /// Item and its score.
        item: Cursor,
        /// Cap to keep from now on.
        cap: Option<u32>,
    },
    /// TL.FANOUT id [SCORE s] [CAP n] key...
    Fanout {
        /// Item and its score.
        item: Cursor,
        /// Cap of each timeline.
        cap: Option<u32>,
        /// Timelines.
        keys: Vec<P>,
    },
    /// TL.RANGE key [BEFORE c] [AFTER c] [LIMIT n]
    Range {
        /// Timeline.
        key: P,
        /// Only items older than this.
        before: Option<Cursor>,
        /// Only items newer than this.
        after: Option<Cursor>,
        /// Most items returned.
        limit: u32,
    },
    /// TL.MERGE LIMIT n [BEFORE c] key...
    Merge {
        /// Most items returned.
        limit: u32,
        /// Only items older than this.
        before: Option<Cursor>,
        /// Timelines.
        keys: Vec<P>,
    },
    /// TL.REMOVE key id
    Remove {
        /// Timeline.
        key: P,
        /// Id removed.
        id: u64,
    },
    /// TL.LEN key
    Len(P),
    /// TL.TRIM key keep
    Trim {
        /// Timeline.
        key: P,
        /// Newest items kept.
        keep: u32,
    },
}

impl<P: Payload> TimelineCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            TimelineCommand::Push { .. } => opcode::TL_PUSH,
            TimelineCommand::Fanout { .. } => opcode::TL_FANOUT,
            TimelineCommand::Range { .. } => opcode::TL_RANGE,
            TimelineCommand::Merge { .. } => opcode::TL_MERGE,
            TimelineCommand::Remove { .. } => opcode::TL_REMOVE,
            TimelineCommand::Len(_) => opcode::TL_LEN,
            TimelineCommand::Trim { .. } => opcode::TL_TRIM,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            TimelineCommand::Push { key, .. }
            | TimelineCommand::Range { key, .. }
            | TimelineCommand::Remove { key, .. }
            | TimelineCommand::Len(key)
            | TimelineCommand::Trim { key, .. } => Some(key),
            TimelineCommand::Fanout { .. } | TimelineCommand::Merge { .. } => None,
        }
    }

    /// How the command splits across shards: fan-outs and merges by the owner of each
    /// timeline.
    pub fn split(&self, owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<TimelineCommand<Bytes>>> {
        match self {
            TimelineCommand::Fanout { item, cap, keys } => {
                let (item, cap) = (*item, *cap);
                Some(split_keys(keys, owner, fixed(Combine::Sum), |keys| {
                    TimelineCommand::Fanout { item, cap, keys }
                }))
            }
            TimelineCommand::Merge {
                limit,
                before,
                keys,
            } => {
                let (limit, before) = (*limit, *before);
                let combine = fixed(Combine::Merge { limit });
                Some(split_keys(keys, owner, combine, |keys| {
                    TimelineCommand::Merge {
                        limit,
                        before,
                        keys,
                    }
                }))
            }
            _ => None,
        }
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            TimelineCommand::Push { key, item, cap } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, item.id);
                put_item_options(buf, item, *cap);
            }
            TimelineCommand::Fanout { item, cap, keys } => {
                put_uvarint(buf, item.id);
                put_item_options(buf, item, *cap);
                put_list(buf, keys);
            }
            TimelineCommand::Range {
                key,
                before,
                after,
                limit,
            } => {
                put_bytes(buf, key.as_ref());
                buf.put_u8(u8::from(before.is_some()) | (u8::from(after.is_some()) << 1));
                for cursor in [before, after].into_iter().flatten() {
                    put_ivarint(buf, cursor.score);
                    put_uvarint(buf, cursor.id);
                }
                put_uvarint(buf, u64::from(*limit));
            }
            TimelineCommand::Merge {
                limit,
                before,
                keys,
            } => {
                put_uvarint(buf, u64::from(*limit));
                buf.put_u8(u8::from(before.is_some()));
                if let Some(cursor) = before {
                    put_ivarint(buf, cursor.score);
                    put_uvarint(buf, cursor.id);
                }
                put_list(buf, keys);
            }
            TimelineCommand::Remove { key, id } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *id);
            }
            TimelineCommand::Len(key) => put_bytes(buf, key.as_ref()),
            TimelineCommand::Trim { key, keep } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, u64::from(*keep));
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::TL_PUSH => {
                let key = read_key(r)?;
                let id = r.uvarint()?;
                let (item, cap) = read_item_options(r, id)?;
                TimelineCommand::Push { key, item, cap }
            }
            opcode::TL_FANOUT => {
                let id = r.uvarint()?;
                let (item, cap) = read_item_options(r, id)?;
                TimelineCommand::Fanout {
                    item,
                    cap,
                    keys: read_keys(r)?,
                }
            }
            opcode::TL_RANGE => {
                let key = read_key(r)?;
                let flags = r.u8()?;
                if flags & !3 != 0 {
                    return Err(DecodeError::Invalid("unknown TL.RANGE flag bits"));
                }
                let before = if flags & 1 != 0 {
                    Some(read_cursor(r)?)
                } else {
                    None
                };
                let after = if flags & 2 != 0 {
                    Some(read_cursor(r)?)
                } else {
                    None
                };
                TimelineCommand::Range {
                    key,
                    before,
                    after,
                    limit: read_page(r)?,
                }
            }
            opcode::TL_MERGE => {
                let limit = read_page(r)?;
                let before = match r.u8()? {
                    0 => None,
                    1 => Some(read_cursor(r)?),
                    _ => return Err(DecodeError::Invalid("unknown TL.MERGE flag bits")),
                };
                TimelineCommand::Merge {
                    limit,
                    before,
                    keys: read_keys(r)?,
                }
            }
            opcode::TL_REMOVE => TimelineCommand::Remove {
                key: read_key(r)?,
                id: r.uvarint()?,
            },
            opcode::TL_LEN => TimelineCommand::Len(read_key(r)?),
            opcode::TL_TRIM => {
                let key = read_key(r)?;
                let keep = u32::try_from(r.uvarint()?)
                    .map_err(|_| DecodeError::Invalid("keep out of range"))?;
                TimelineCommand::Trim { key, keep }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> TimelineCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_all = |keys: &[P]| keys.iter().map(own).collect();
        match self {
            TimelineCommand::Push { key, item, cap } => TimelineCommand::Push {
                key: own(key),
                item: *item,
                cap: *cap,
            },
            TimelineCommand::Fanout { item, cap, keys } => TimelineCommand::Fanout {
                item: *item,
                cap: *cap,
                keys: own_all(keys),
            },
            TimelineCommand::Range {
                key,
                before,
                after,
                limit,
            } => TimelineCommand::Range {
                key: own(key),
                before: *before,
                after: *after,
                limit: *limit,
            },
            TimelineCommand::Merge {
                limit,
                before,
                keys,
            } => TimelineCommand::Merge {
                limit: *limit,
                before: *before,
                keys: own_all(keys),
            },
            TimelineCommand::Remove { key, id } => TimelineCommand::Remove {
                key: own(key),
                id: *id,
            },
            TimelineCommand::Len(key) => TimelineCommand::Len(own(key)),
            TimelineCommand::Trim { key, keep } => TimelineCommand::Trim {
                key: own(key),
                keep: *keep,
            },
        }
    }
}

impl<P: Payload> TimelineCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::TL_PUSH | opcode::TL_FANOUT => {
                let mut words = Words::new(spec, args);
                let key = if spec.opcode == opcode::TL_PUSH {
                    Some(words.key()?)
                } else {
                    None
                };
                let id = words.int::<u64>()?;
                // SCORE and CAP come before a fan-out's keys, each at most once.
                let (mut score, mut cap) = (None, None);
                while words.remaining() >= 2 {
                    if score.is_none() && words.eat("SCORE") {
                        score = Some(words.int::<i64>()?);
                    } else if cap.is_none() && words.eat("CAP") {
                        cap = Some(text_cap(words.text()?)?);
                    } else {
                        break;
                    }
                }
                let item = Cursor {
                    score: score.unwrap_or(id as i64),
                    id,
                };
                match key {
                    Some(key) => {
                        words.finish()?;
                        TimelineCommand::Push { key, item, cap }
                    }
                    None => {
                        let keys = words.rest();
                        arity(!keys.is_empty())?;
                        TimelineCommand::Fanout {
                            item,
                            cap,
                            keys: keys.iter().map(text_key).collect::<Result<Vec<_>, _>>()?,
                        }
                    }
                }
            }
            opcode::TL_RANGE => {
                let mut words = Words::new(spec, args);
                let key = words.key()?;
                let (mut before, mut after, mut limit) = (None, None, DEFAULT_PAGE);
                words.options("syntax error in TL.RANGE options", |name, words| {
                    match name {
                        b"BEFORE" => before = Some(text_cursor(words.text()?)?),
                        b"AFTER" => after = Some(text_cursor(words.text()?)?),
                        b"LIMIT" => limit = text_page(words.text()?)?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                TimelineCommand::Range {
                    key,
                    before,
                    after,
                    limit,
                }
            }
            opcode::TL_MERGE => {
                let mut words = Words::new(spec, args);
                if !words.eat("LIMIT") {
                    return Err(words.arity());
                }
                let limit = text_page(words.text()?)?;
                let before = if words.eat("BEFORE") {
                    Some(text_cursor(words.text()?)?)
                } else {
                    None
                };
                let keys = words.rest();
                arity(!keys.is_empty())?;
                TimelineCommand::Merge {
                    limit,
                    before,
                    keys: keys.iter().map(text_key).collect::<Result<Vec<_>, _>>()?,
                }
            }
            opcode::TL_REMOVE => {
                arity(args.len() == 2)?;
                TimelineCommand::Remove {
                    key: text_key(&args[0])?,
                    id: parse_int::<u64>(args[1].as_ref())?,
                }
            }
            opcode::TL_LEN => {
                arity(args.len() == 1)?;
                TimelineCommand::Len(text_key(&args[0])?)
            }
            opcode::TL_TRIM => {
                arity(args.len() == 2)?;
                TimelineCommand::Trim {
                    key: text_key(&args[0])?,
                    keep: parse_int::<u32>(args[1].as_ref())?,
                }
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}

fn put_item_options(buf: &mut BytesMut, item: &Cursor, cap: Option<u32>) {
    let custom_score = item.score != item.id as i64;
    buf.put_u8(u8::from(custom_score) | (u8::from(cap.is_some()) << 1));
    if custom_score {
        put_ivarint(buf, item.score);
    }
    if let Some(cap) = cap {
        put_uvarint(buf, u64::from(cap));
    }
}

fn read_item_options<P: Payload>(
    r: &mut Reader<P>,
    id: u64,
) -> Result<(Cursor, Option<u32>), DecodeError> {
    let flags = r.u8()?;
    if flags & !3 != 0 {
        return Err(DecodeError::Invalid("unknown timeline flag bits"));
    }
    let score = if flags & 1 != 0 {
        r.ivarint()?
    } else {
        id as i64
    };
    let cap = if flags & 2 != 0 {
        let cap = r.uvarint()?;
        if !(1..=u64::from(MAX_TIMELINE_CAP)).contains(&cap) {
            return Err(DecodeError::Invalid("CAP must be between 1 and 100000"));
        }
        Some(cap as u32)
    } else {
        None
    };
    Ok((Cursor { score, id }, cap))
}

fn read_cursor<P: Payload>(r: &mut Reader<P>) -> Result<Cursor, DecodeError> {
    Ok(Cursor {
        score: r.ivarint()?,
        id: r.uvarint()?,
    })
}

fn read_page<P: Payload>(r: &mut Reader<P>) -> Result<u32, DecodeError> {
    match r.uvarint()? {
        0 => Ok(DEFAULT_PAGE),
        n if n <= u64::from(MAX_TIMELINE_CAP) => Ok(n as u32),
        _ => Err(DecodeError::Invalid("LIMIT must be at most 100000")),
    }
}

fn text_cap(word: &[u8]) -> Result<u32, ErrorReply> {
    let cap = parse_int::<u32>(word)?;
    if !(1..=MAX_TIMELINE_CAP).contains(&cap) {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "CAP must be between 1 and 100000",
        ));
    }
    Ok(cap)
}

fn text_page(word: &[u8]) -> Result<u32, ErrorReply> {
    let limit = parse_int::<u32>(word)?;
    if !(1..=MAX_TIMELINE_CAP).contains(&limit) {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "LIMIT must be between 1 and 100000",
        ));
    }
    Ok(limit)
}

/// A cursor as text: `score:id`, or just `id` when the score is the id.
fn text_cursor(word: &[u8]) -> Result<Cursor, ErrorReply> {
    let text = std::str::from_utf8(word).unwrap_or("");
    let (score, id) = match text.split_once(':') {
        Some((score, id)) => (score.parse::<i64>().ok(), id.parse::<u64>().ok()),
        None => {
            let id = text.parse::<u64>().ok();
            (id.and_then(|id| i64::try_from(id).ok()), id)
        }
    };
    match (score, id) {
        (Some(score), Some(id)) => Ok(Cursor { score, id }),
        _ => Err(ErrorReply::new(
            ErrorCode::Syntax,
            "a cursor is score:id or id",
        )),
    }
}
