//! Sorted sets: members ordered by score, then by member bytes, as Redis orders them.
//!
//! Scores are doubles (infinities allowed, NaN refused) and travel as FLOAT. Score ranges
//! take `-inf`/`+inf` and a `(` prefix for an exclusive bound; rank ranges take negative
//! indices counting from the end.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::read_key;
use super::hashes::Finite;
use super::split::Split;
use super::CommandSpec;
use crate::error::DecodeError;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

mod text;
mod typed;

/// The family's opcodes; stable once published.
pub mod opcode {
    /// ZADD
    pub const ZADD: u16 = 0x00d0;
    /// ZINCRBY
    pub const ZINCRBY: u16 = 0x00d1;
    /// ZREM
    pub const ZREM: u16 = 0x00d2;
    /// ZSCORE
    pub const ZSCORE: u16 = 0x00d3;
    /// ZMSCORE
    pub const ZMSCORE: u16 = 0x00d4;
    /// ZRANK
    pub const ZRANK: u16 = 0x00d5;
    /// ZREVRANK
    pub const ZREVRANK: u16 = 0x00d6;
    /// ZRANGE
    pub const ZRANGE: u16 = 0x00d7;
    /// ZCARD
    pub const ZCARD: u16 = 0x00d8;
    /// ZCOUNT
    pub const ZCOUNT: u16 = 0x00d9;
    /// ZPOPMIN
    pub const ZPOPMIN: u16 = 0x00da;
    /// ZPOPMAX
    pub const ZPOPMAX: u16 = 0x00db;
    /// ZREMRANGEBYSCORE
    pub const ZREMRANGEBYSCORE: u16 = 0x00dc;
    /// ZREMRANGEBYRANK
    pub const ZREMRANGEBYRANK: u16 = 0x00dd;
    /// ZRANDMEMBER
    pub const ZRANDMEMBER: u16 = 0x00de;
}

const fn row(
    opcode: u16,
    writes: bool,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
) -> CommandSpec {
    super::keyed_row(opcode, name, syntax, wire, reply, summary, writes)
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(opcode::ZADD, true, "ZADD", "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]",
        "key:bytes flags:u8 (1 NX, 2 XX, 4 GT, 8 LT, 16 CH, 32 INCR) count:uvarint (score:f64 member:bytes)*count",
        "INT members added (with CH: added or changed); with INCR: FLOAT the new score, or NIL if a condition stopped it",
        "Adds members or updates their scores; NX only adds, XX only updates, GT/LT only raise/lower a score."),
    row(opcode::ZINCRBY, true, "ZINCRBY", "key increment member", "key:bytes increment:f64 member:bytes",
        "FLOAT the new score; NOT_FLOAT if it would be NaN", "Adds to a member's score (a new member starts at 0)."),
    row(opcode::ZREM, true, "ZREM", "key member [member ...]", "key:bytes count:uvarint member:bytes*count",
        "INT members removed; the key goes with its last member", "Removes members."),
    row(opcode::ZSCORE, false, "ZSCORE", "key member", "key:bytes member:bytes", "FLOAT, or NIL", "A member's score."),
    row(opcode::ZMSCORE, false, "ZMSCORE", "key member [member ...]", "key:bytes count:uvarint member:bytes*count",
        "ARRAY of FLOAT or NIL, in the order asked", "Several members' scores."),
    row(opcode::ZRANK, false, "ZRANK", "key member [WITHSCORE]", "key:bytes member:bytes withscore:u8",
        "INT rank from the lowest score (0-based), or NIL; WITHSCORE: ARRAY [INT rank, FLOAT score]",
        "A member's position from the lowest score."),
    row(opcode::ZREVRANK, false, "ZREVRANK", "key member [WITHSCORE]", "key:bytes member:bytes withscore:u8",
        "as ZRANK, from the highest score", "A member's position from the highest score."),
    row(opcode::ZRANGE, false, "ZRANGE", "key start stop [BYSCORE] [REV] [LIMIT offset count] [WITHSCORES]",
        "key:bytes flags:u8 (1 BYSCORE, 2 REV, 4 WITHSCORES, 8 LIMIT) (start:ivarint stop:ivarint | min:bound max:bound) [offset:ivarint count:ivarint]",
        "ARRAY of BYTES members; WITHSCORES: ARRAY of ARRAY [BYTES member, FLOAT score]",
        "Members by rank, or BYSCORE by score (REV: highest first, start and stop swapped as in Redis); LIMIT pages a score range."),
    row(opcode::ZCARD, false, "ZCARD", "key", "key:bytes", "INT members (0 if missing)", "Counts the members."),
    row(opcode::ZCOUNT, false, "ZCOUNT", "key min max", "key:bytes min:bound max:bound", "INT members with min <= score <= max",
        "Counts the members in a score range."),
    row(opcode::ZPOPMIN, true, "ZPOPMIN", "key [count]", "key:bytes count:uvarint",
        "ARRAY of ARRAY [BYTES member, FLOAT score], lowest first", "Removes and returns the lowest-scored members."),
    row(opcode::ZPOPMAX, true, "ZPOPMAX", "key [count]", "key:bytes count:uvarint",
        "ARRAY of ARRAY [BYTES member, FLOAT score], highest first", "Removes and returns the highest-scored members."),
    row(opcode::ZREMRANGEBYSCORE, true, "ZREMRANGEBYSCORE", "key min max", "key:bytes min:bound max:bound",
        "INT members removed", "Removes the members in a score range."),
    row(opcode::ZREMRANGEBYRANK, true, "ZREMRANGEBYRANK", "key start stop", "key:bytes start:ivarint stop:ivarint",
        "INT members removed", "Removes the members in a rank range."),
    row(opcode::ZRANDMEMBER, false, "ZRANDMEMBER", "key [count [WITHSCORES]]",
        "key:bytes has_count:u8 [count:ivarint with_scores:u8 if 1]",
        "without a count: BYTES a member, or NIL; with one: ARRAY of distinct members (a negative count: that many picks, repeats allowed), or of [member, score] pairs",
        "Picks members at random."),
];

/// ZADD flag bits on the wire.
pub mod add_flags {
    /// NX: only add new members.
    pub const NX: u8 = 0x01;
    /// XX: only update existing members.
    pub const XX: u8 = 0x02;
    /// GT: only raise a score.
    pub const GT: u8 = 0x04;
    /// LT: only lower a score.
    pub const LT: u8 = 0x08;
    /// CH: count changed members too.
    pub const CH: u8 = 0x10;
    /// INCR: add to the score, answer the new one.
    pub const INCR: u8 = 0x20;
    /// Every defined bit.
    pub const ALL: u8 = NX | XX | GT | LT | CH | INCR;
}

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The score.
    pub score: Finite,
    /// Whether the score itself is outside the range (`(` in text).
    pub exclusive: bool,
}

impl Bound {
    /// Whether `score` is on the range's side of this lower bound.
    pub fn admits_from_below(self, score: f64) -> bool {
        if self.exclusive {
            score > self.score.get()
        } else {
            score >= self.score.get()
        }
    }

    /// Whether `score` is on the range's side of this upper bound.
    pub fn admits_from_above(self, score: f64) -> bool {
        if self.exclusive {
            score < self.score.get()
        } else {
            score <= self.score.get()
        }
    }
}

/// Which members ZRANGE selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// By rank: inclusive, negative counts from the end.
    Rank {
        /// First rank.
        start: i64,
        /// Last rank.
        stop: i64,
    },
    /// By score, inclusive unless a bound is exclusive.
    Score {
        /// Lowest score.
        min: Bound,
        /// Highest score.
        max: Bound,
    },
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortedSetCommand<P = Bytes> {
    /// ZADD
    Add {
        /// Sorted set.
        key: P,
        /// `add_flags` bits.
        flags: u8,
        /// Scores and members.
        pairs: Vec<(Finite, P)>,
    },
    /// ZINCRBY
    IncrBy {
        /// Sorted set.
        key: P,
        /// Added to the score.
        delta: Finite,
        /// Member.
        member: P,
    },
    /// ZREM
    Rem {
        /// Sorted set.
        key: P,
        /// Members.
        members: Vec<P>,
    },
    /// ZSCORE
    Score {
        /// Sorted set.
        key: P,
        /// Member.
        member: P,
    },
    /// ZMSCORE
    MScore {
        /// Sorted set.
        key: P,
        /// Members.
        members: Vec<P>,
    },
    /// ZRANK / ZREVRANK
    Rank {
        /// Sorted set.
        key: P,
        /// Member.
        member: P,
        /// Counted from the highest score (ZREVRANK).
        rev: bool,
        /// Answer the score too.
        with_score: bool,
    },
    /// ZRANGE
    Range {
        /// Sorted set.
        key: P,
        /// Which members.
        selection: Selection,
        /// Highest first.
        rev: bool,
        /// LIMIT offset count (BYSCORE only); a negative count means all.
        limit: Option<(i64, i64)>,
        /// Answer scores too.
        with_scores: bool,
    },
    /// ZCARD
    Card(P),
    /// ZCOUNT
    Count {
        /// Sorted set.
        key: P,
        /// Lowest score.
        min: Bound,
        /// Highest score.
        max: Bound,
    },
    /// ZPOPMIN / ZPOPMAX
    Pop {
        /// Sorted set.
        key: P,
        /// Most members.
        count: u64,
        /// From the highest score (ZPOPMAX).
        max: bool,
    },
    /// ZREMRANGEBYSCORE
    RemRangeByScore {
        /// Sorted set.
        key: P,
        /// Lowest score.
        min: Bound,
        /// Highest score.
        max: Bound,
    },
    /// ZREMRANGEBYRANK
    RemRangeByRank {
        /// Sorted set.
        key: P,
        /// First rank.
        start: i64,
        /// Last rank.
        stop: i64,
    },
    /// ZRANDMEMBER key [count [WITHSCORES]]
    RandMember {
        /// Sorted set.
        key: P,
        /// How many, and whether with their scores; `None` for one member alone.
        count: Option<(i64, bool)>,
    },
}

impl<P: Payload> SortedSetCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        use SortedSetCommand as Z;
        match self {
            Z::Add { .. } => opcode::ZADD,
            Z::IncrBy { .. } => opcode::ZINCRBY,
            Z::Rem { .. } => opcode::ZREM,
            Z::Score { .. } => opcode::ZSCORE,
            Z::MScore { .. } => opcode::ZMSCORE,
            Z::Rank { rev: false, .. } => opcode::ZRANK,
            Z::Rank { .. } => opcode::ZREVRANK,
            Z::Range { .. } => opcode::ZRANGE,
            Z::Card(_) => opcode::ZCARD,
            Z::Count { .. } => opcode::ZCOUNT,
            Z::Pop { max: false, .. } => opcode::ZPOPMIN,
            Z::Pop { .. } => opcode::ZPOPMAX,
            Z::RemRangeByScore { .. } => opcode::ZREMRANGEBYSCORE,
            Z::RemRangeByRank { .. } => opcode::ZREMRANGEBYRANK,
            Z::RandMember { .. } => opcode::ZRANDMEMBER,
        }
    }

    /// The sorted set every command of the family names.
    pub fn single_key(&self) -> Option<&P> {
        use SortedSetCommand as Z;
        Some(match self {
            Z::Add { key, .. }
            | Z::IncrBy { key, .. }
            | Z::Rem { key, .. }
            | Z::Score { key, .. }
            | Z::MScore { key, .. }
            | Z::Rank { key, .. }
            | Z::Range { key, .. }
            | Z::Card(key)
            | Z::Count { key, .. }
            | Z::Pop { key, .. }
            | Z::RemRangeByScore { key, .. }
            | Z::RemRangeByRank { key, .. }
            | Z::RandMember { key, .. } => key,
        })
    }

    /// How the command splits across shards: none does, a sorted set lives on one shard.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<SortedSetCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        use SortedSetCommand as Z;
        put_bytes(buf, self.single_key().map_or(&[][..], AsRef::as_ref));
        let put_members = |buf: &mut BytesMut, members: &[P]| {
            put_uvarint(buf, members.len() as u64);
            members.iter().for_each(|m| put_bytes(buf, m.as_ref()));
        };
        match self {
            Z::Add { flags, pairs, .. } => {
                buf.put_u8(*flags);
                put_uvarint(buf, pairs.len() as u64);
                for (score, member) in pairs {
                    buf.put_f64_le(score.get());
                    put_bytes(buf, member.as_ref());
                }
            }
            Z::IncrBy { delta, member, .. } => {
                buf.put_f64_le(delta.get());
                put_bytes(buf, member.as_ref());
            }
            Z::Rem { members, .. } | Z::MScore { members, .. } => put_members(buf, members),
            Z::Score { member, .. } => put_bytes(buf, member.as_ref()),
            Z::Rank {
                member, with_score, ..
            } => {
                put_bytes(buf, member.as_ref());
                buf.put_u8(u8::from(*with_score));
            }
            Z::Range {
                selection,
                rev,
                limit,
                with_scores,
                ..
            } => {
                let by_score = matches!(selection, Selection::Score { .. });
                buf.put_u8(
                    u8::from(by_score)
                        | u8::from(*rev) << 1
                        | u8::from(*with_scores) << 2
                        | u8::from(limit.is_some()) << 3,
                );
                match selection {
                    Selection::Rank { start, stop } => {
                        put_ivarint(buf, *start);
                        put_ivarint(buf, *stop);
                    }
                    Selection::Score { min, max } => {
                        put_bound(buf, *min);
                        put_bound(buf, *max);
                    }
                }
                if let Some((offset, count)) = limit {
                    put_ivarint(buf, *offset);
                    put_ivarint(buf, *count);
                }
            }
            Z::Card(_) => {}
            Z::Count { min, max, .. } | Z::RemRangeByScore { min, max, .. } => {
                put_bound(buf, *min);
                put_bound(buf, *max);
            }
            Z::Pop { count, .. } => put_uvarint(buf, *count),
            Z::RemRangeByRank { start, stop, .. } => {
                put_ivarint(buf, *start);
                put_ivarint(buf, *stop);
            }
            Z::RandMember { count, .. } => match count {
                None => buf.put_u8(0),
                Some((n, with_scores)) => {
                    buf.put_u8(1);
                    put_ivarint(buf, *n);
                    buf.put_u8(u8::from(*with_scores));
                }
            },
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        use SortedSetCommand as Z;
        let key = read_key(r)?;
        Ok(match op {
            opcode::ZADD => {
                let flags = checked_add_flags(r.u8()?).map_err(DecodeError::Invalid)?;
                let count = r.count(9)?;
                if count == 0 || (flags & add_flags::INCR != 0 && count != 1) {
                    return Err(DecodeError::Invalid(
                        "ZADD needs one pair, or one with INCR",
                    ));
                }
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    pairs.push((read_score(r)?, r.bytes()?));
                }
                Z::Add { key, flags, pairs }
            }
            opcode::ZINCRBY => Z::IncrBy {
                key,
                delta: read_score(r)?,
                member: r.bytes()?,
            },
            opcode::ZREM | opcode::ZMSCORE => {
                let count = r.count(1)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("at least one member is required"));
                }
                let members = (0..count).map(|_| r.bytes()).collect::<Result<_, _>>()?;
                if op == opcode::ZREM {
                    Z::Rem { key, members }
                } else {
                    Z::MScore { key, members }
                }
            }
            opcode::ZSCORE => Z::Score {
                key,
                member: r.bytes()?,
            },
            opcode::ZRANK | opcode::ZREVRANK => Z::Rank {
                key,
                member: r.bytes()?,
                rev: op == opcode::ZREVRANK,
                with_score: read_flag(r)?,
            },
            opcode::ZRANGE => {
                let flags = r.u8()?;
                if flags & !0x0f != 0 {
                    return Err(DecodeError::Invalid("unknown ZRANGE flag bits"));
                }
                let selection = if flags & 1 != 0 {
                    Selection::Score {
                        min: read_bound(r)?,
                        max: read_bound(r)?,
                    }
                } else {
                    Selection::Rank {
                        start: r.ivarint()?,
                        stop: r.ivarint()?,
                    }
                };
                let limit = if flags & 8 != 0 {
                    if flags & 1 == 0 {
                        return Err(DecodeError::Invalid("LIMIT needs BYSCORE"));
                    }
                    Some((r.ivarint()?, r.ivarint()?))
                } else {
                    None
                };
                Z::Range {
                    key,
                    selection,
                    rev: flags & 2 != 0,
                    limit,
                    with_scores: flags & 4 != 0,
                }
            }
            opcode::ZCARD => Z::Card(key),
            opcode::ZCOUNT => Z::Count {
                key,
                min: read_bound(r)?,
                max: read_bound(r)?,
            },
            opcode::ZPOPMIN | opcode::ZPOPMAX => Z::Pop {
                key,
                count: r.uvarint()?,
                max: op == opcode::ZPOPMAX,
            },
            opcode::ZREMRANGEBYSCORE => Z::RemRangeByScore {
                key,
                min: read_bound(r)?,
                max: read_bound(r)?,
            },
            opcode::ZREMRANGEBYRANK => Z::RemRangeByRank {
                key,
                start: r.ivarint()?,
                stop: r.ivarint()?,
            },
            opcode::ZRANDMEMBER => Z::RandMember {
                key,
                count: if read_flag(r)? {
                    Some((r.ivarint()?, read_flag(r)?))
                } else {
                    None
                },
            },
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> SortedSetCommand<Bytes> {
        use SortedSetCommand as Z;
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_all = |members: &[P]| members.iter().map(own).collect::<Vec<_>>();
        match self {
            Z::Add { key, flags, pairs } => Z::Add {
                key: own(key),
                flags: *flags,
                pairs: pairs.iter().map(|(s, m)| (*s, own(m))).collect(),
            },
            Z::IncrBy { key, delta, member } => Z::IncrBy {
                key: own(key),
                delta: *delta,
                member: own(member),
            },
            Z::Rem { key, members } => Z::Rem {
                key: own(key),
                members: own_all(members),
            },
            Z::Score { key, member } => Z::Score {
                key: own(key),
                member: own(member),
            },
            Z::MScore { key, members } => Z::MScore {
                key: own(key),
                members: own_all(members),
            },
            Z::Rank {
                key,
                member,
                rev,
                with_score,
            } => Z::Rank {
                key: own(key),
                member: own(member),
                rev: *rev,
                with_score: *with_score,
            },
            Z::Range {
                key,
                selection,
                rev,
                limit,
                with_scores,
            } => Z::Range {
                key: own(key),
                selection: *selection,
                rev: *rev,
                limit: *limit,
                with_scores: *with_scores,
            },
            Z::Card(key) => Z::Card(own(key)),
            Z::Count { key, min, max } => Z::Count {
                key: own(key),
                min: *min,
                max: *max,
            },
            Z::Pop { key, count, max } => Z::Pop {
                key: own(key),
                count: *count,
                max: *max,
            },
            Z::RemRangeByScore { key, min, max } => Z::RemRangeByScore {
                key: own(key),
                min: *min,
                max: *max,
            },
            Z::RemRangeByRank { key, start, stop } => Z::RemRangeByRank {
                key: own(key),
                start: *start,
                stop: *stop,
            },
            Z::RandMember { key, count } => Z::RandMember {
                key: own(key),
                count: *count,
            },
        }
    }
}

fn checked_add_flags(flags: u8) -> Result<u8, &'static str> {
    use add_flags::*;
    if flags & !ALL != 0 {
        return Err("unknown ZADD flag bits");
    }
    if flags & NX != 0 && flags & XX != 0 {
        return Err("XX and NX options at the same time are not compatible");
    }
    if flags & (GT | LT) != 0 && (flags & NX != 0 || flags & (GT | LT) == GT | LT) {
        return Err("GT, LT, and/or NX options at the same time are not compatible");
    }
    Ok(flags)
}

fn read_score<P: Payload>(r: &mut Reader<P>) -> Result<Finite, DecodeError> {
    Finite::new(r.f64()?).ok_or(DecodeError::Invalid("a score must not be NaN"))
}

fn read_flag<P: Payload>(r: &mut Reader<P>) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid("a flag must be 0 or 1")),
    }
}

fn put_bound(buf: &mut BytesMut, bound: Bound) {
    buf.put_f64_le(bound.score.get());
    buf.put_u8(u8::from(bound.exclusive));
}

fn read_bound<P: Payload>(r: &mut Reader<P>) -> Result<Bound, DecodeError> {
    Ok(Bound {
        score: read_score(r)?,
        exclusive: read_flag(r)?,
    })
}
