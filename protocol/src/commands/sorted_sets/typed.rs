//! Typed sorted-set requests: each command with the reader of its reply.

use bytes::Bytes;

use super::super::hashes::Finite;
use super::super::request::{read, ShapeError, Typed};
use super::{add_flags, Bound, Selection, SortedSetCommand};
use crate::value::Value;

impl SortedSetCommand<Bytes> {
    /// ZADD of `(score, member)` pairs: answers how many members were new.
    pub fn zadd<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        pairs: impl IntoIterator<Item = (f64, M)>,
    ) -> Typed<u64> {
        Self::zadd_with(key, 0, pairs)
    }

    /// ZADD with `add_flags` (without INCR): answers members added (or changed, with CH).
    pub fn zadd_with<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        flags: u8,
        pairs: impl IntoIterator<Item = (f64, M)>,
    ) -> Typed<u64> {
        let pairs: Vec<(f64, Bytes)> = pairs.into_iter().map(|(s, m)| (s, m.into())).collect();
        let nan = pairs.iter().any(|(score, _)| score.is_nan());
        let command = SortedSetCommand::Add {
            key: key.into(),
            flags: flags & !add_flags::INCR,
            pairs: pairs.into_iter().map(|(s, m)| (score_of(s), m)).collect(),
        };
        Typed::new(command, read::count).refused_if(nan, NAN_SCORE)
    }

    /// ZINCRBY: the new score.
    pub fn zincrby(key: impl Into<Bytes>, delta: f64, member: impl Into<Bytes>) -> Typed<f64> {
        let command = SortedSetCommand::IncrBy {
            key: key.into(),
            delta: score_of(delta),
            member: member.into(),
        };
        Typed::new(command, read::float).refused_if(delta.is_nan(), NAN_SCORE)
    }

    /// ZREM: members removed.
    pub fn zrem<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        members: impl IntoIterator<Item = M>,
    ) -> Typed<u64> {
        let members = members.into_iter().map(Into::into).collect();
        Typed::new(
            SortedSetCommand::Rem {
                key: key.into(),
                members,
            },
            read::count,
        )
    }

    /// ZSCORE: the member's score, if it is there.
    pub fn zscore(key: impl Into<Bytes>, member: impl Into<Bytes>) -> Typed<Option<f64>> {
        let command = SortedSetCommand::Score {
            key: key.into(),
            member: member.into(),
        };
        Typed::new(command, read::optional_float)
    }

    /// ZMSCORE: each member's score, in the order given.
    pub fn zmscore<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        members: impl IntoIterator<Item = M>,
    ) -> Typed<Vec<Option<f64>>> {
        let members = members.into_iter().map(Into::into).collect();
        let command = SortedSetCommand::MScore {
            key: key.into(),
            members,
        };
        Typed::new(command, |reply| read::array(reply, read::optional_float))
    }

    /// ZRANK (or ZREVRANK with `rev`): the member's 0-based position, if it is there.
    pub fn zrank(key: impl Into<Bytes>, member: impl Into<Bytes>, rev: bool) -> Typed<Option<u64>> {
        let command = SortedSetCommand::Rank {
            key: key.into(),
            member: member.into(),
            rev,
            with_score: false,
        };
        Typed::new(command, |reply| {
            read::optional_int(reply).map(|rank| rank.map(|r| r as u64))
        })
    }

    /// ZRANGE by rank (`rev`: highest first), with scores.
    pub fn zrange(
        key: impl Into<Bytes>,
        start: i64,
        stop: i64,
        rev: bool,
    ) -> Typed<Vec<(Bytes, f64)>> {
        let command = SortedSetCommand::Range {
            key: key.into(),
            selection: Selection::Rank { start, stop },
            rev,
            limit: None,
            with_scores: true,
        };
        Typed::new(command, read_scored)
    }

    /// ZRANGE BYSCORE from `min` to `max` inclusive (`rev`: highest first), with scores,
    /// at most `limit` of them after skipping `offset`.
    pub fn zrange_by_score(
        key: impl Into<Bytes>,
        min: f64,
        max: f64,
        rev: bool,
        limit: Option<(i64, i64)>,
    ) -> Typed<Vec<(Bytes, f64)>> {
        let bound = |score| Bound {
            score: score_of(score),
            exclusive: false,
        };
        let command = SortedSetCommand::Range {
            key: key.into(),
            selection: Selection::Score {
                min: bound(min),
                max: bound(max),
            },
            rev,
            limit,
            with_scores: true,
        };
        Typed::new(command, read_scored).refused_if(min.is_nan() || max.is_nan(), NAN_SCORE)
    }

    /// ZCARD: how many members.
    pub fn zcard(key: impl Into<Bytes>) -> Typed<u64> {
        Typed::new(SortedSetCommand::Card(key.into()), read::count)
    }

    /// ZPOPMIN (or ZPOPMAX with `max`): the members removed, with their scores.
    pub fn zpop(key: impl Into<Bytes>, count: u64, max: bool) -> Typed<Vec<(Bytes, f64)>> {
        let command = SortedSetCommand::Pop {
            key: key.into(),
            count,
            max,
        };
        Typed::new(command, read_scored)
    }
}

/// A score for a typed request; NaN becomes zero in a request the client then refuses.
fn score_of(score: f64) -> Finite {
    Finite::new(score).unwrap_or(Finite::ZERO)
}

const NAN_SCORE: &str = "a score is not a number";

/// `[member, score]` pairs.
fn read_scored(reply: Value) -> Result<Vec<(Bytes, f64)>, ShapeError> {
    read::array(reply, |pair| match pair {
        Value::Array(fields) if fields.len() == 2 => {
            let mut fields = fields.into_iter();
            let member = read::bytes(fields.next().unwrap_or(Value::Nil))?;
            let score = read::float(fields.next().unwrap_or(Value::Nil))?;
            Ok((member, score))
        }
        other => Err(ShapeError::new("a [member, score] pair", &other)),
    })
}
