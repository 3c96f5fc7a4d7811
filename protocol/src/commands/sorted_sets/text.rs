//! Sorted set commands as text: the words after the name, redis-cli style.

use crate::wire::Payload;

use super::super::arg::{parse_float, parse_int, Words};
use super::super::hashes::Finite;
use super::super::CommandSpec;
use super::*;
use crate::error::ErrorCode;
use crate::value::ErrorReply;

impl<P: Payload> SortedSetCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        use SortedSetCommand as Z;
        let mut words = Words::new(spec, args);
        let key = words.key()?;
        let command = match spec.opcode {
            opcode::ZADD => parse_add(key, &mut words)?,
            opcode::ZINCRBY => Z::IncrBy {
                key,
                delta: text_score(words.text()?)?,
                member: words.bytes()?,
            },
            opcode::ZREM | opcode::ZMSCORE => {
                let members = words.rest().to_vec();
                if members.is_empty() {
                    return Err(words.arity());
                }
                if spec.opcode == opcode::ZREM {
                    Z::Rem { key, members }
                } else {
                    Z::MScore { key, members }
                }
            }
            opcode::ZSCORE => Z::Score {
                key,
                member: words.bytes()?,
            },
            opcode::ZRANK | opcode::ZREVRANK => Z::Rank {
                key,
                member: words.bytes()?,
                rev: spec.opcode == opcode::ZREVRANK,
                with_score: words.eat("WITHSCORE"),
            },
            opcode::ZRANGE => parse_range(key, &mut words)?,
            opcode::ZCARD => Z::Card(key),
            opcode::ZCOUNT | opcode::ZREMRANGEBYSCORE => {
                let (min, max) = (text_bound(words.text()?)?, text_bound(words.text()?)?);
                if spec.opcode == opcode::ZCOUNT {
                    Z::Count { key, min, max }
                } else {
                    Z::RemRangeByScore { key, min, max }
                }
            }
            opcode::ZPOPMIN | opcode::ZPOPMAX => {
                let count = if words.remaining() > 0 {
                    let count: i64 = words.int()?;
                    u64::try_from(count).map_err(|_| {
                        ErrorReply::new(
                            ErrorCode::Syntax,
                            "value is out of range, must be positive",
                        )
                    })?
                } else {
                    1
                };
                Z::Pop {
                    key,
                    count,
                    max: spec.opcode == opcode::ZPOPMAX,
                }
            }
            opcode::ZRANDMEMBER => Z::RandMember {
                key,
                count: match words.remaining() {
                    0 => None,
                    _ => {
                        let n: i64 = words.int()?;
                        let with_scores = words.eat("WITHSCORES");
                        // Redis's bound: a pair count past it would overflow.
                        let bound = if with_scores { i64::MAX / 2 } else { i64::MAX };
                        if !(-bound..=bound).contains(&n) {
                            return Err(ErrorReply::new(
                                ErrorCode::Syntax,
                                "value is out of range",
                            ));
                        }
                        Some((n, with_scores))
                    }
                },
            },
            opcode::ZREMRANGEBYRANK => Z::RemRangeByRank {
                key,
                start: words.int()?,
                stop: words.int()?,
            },
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}

fn parse_add<P: Payload>(
    key: P,
    words: &mut Words<'_, P>,
) -> Result<SortedSetCommand<P>, ErrorReply> {
    const FLAGS: [(&str, u8); 6] = [
        ("NX", add_flags::NX),
        ("XX", add_flags::XX),
        ("GT", add_flags::GT),
        ("LT", add_flags::LT),
        ("CH", add_flags::CH),
        ("INCR", add_flags::INCR),
    ];
    let mut flags = 0;
    // Flags come first, in any order, until the first score.
    while let Some((_, bit)) = FLAGS.iter().find(|(word, _)| words.eat(word)) {
        flags |= bit;
    }
    let flags = checked_add_flags(flags).map_err(|why| ErrorReply::new(ErrorCode::Syntax, why))?;
    let rest = words.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(words.arity());
    }
    if flags & add_flags::INCR != 0 && rest.len() != 2 {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "INCR option supports a single increment-element pair",
        ));
    }
    let pairs = rest
        .chunks_exact(2)
        .map(|pair| Ok((text_score(pair[0].as_ref())?, pair[1].clone())))
        .collect::<Result<_, ErrorReply>>()?;
    Ok(SortedSetCommand::Add { key, flags, pairs })
}

fn parse_range<P: Payload>(
    key: P,
    words: &mut Words<'_, P>,
) -> Result<SortedSetCommand<P>, ErrorReply> {
    let (start, stop) = (words.word()?.clone(), words.word()?.clone());
    let (mut by_score, mut rev, mut limit, mut with_scores) = (false, false, None, false);
    words.options("syntax error in ZRANGE options", |name, words| {
        match name {
            b"BYSCORE" => by_score = true,
            b"REV" => rev = true,
            b"WITHSCORES" => with_scores = true,
            b"LIMIT" => limit = Some((words.int()?, words.int()?)),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let selection = if by_score {
        // Redis takes ZRANGE ... BYSCORE REV as max then min.
        let (low, high) = if rev {
            (&stop, &start)
        } else {
            (&start, &stop)
        };
        Selection::Score {
            min: text_bound(low.as_ref())?,
            max: text_bound(high.as_ref())?,
        }
    } else {
        if limit.is_some() {
            return Err(ErrorReply::new(
                ErrorCode::Syntax,
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        Selection::Rank {
            start: parse_int(start.as_ref())?,
            stop: parse_int(stop.as_ref())?,
        }
    };
    Ok(SortedSetCommand::Range {
        key,
        selection,
        rev,
        limit,
        with_scores,
    })
}

fn text_score(word: &[u8]) -> Result<Finite, ErrorReply> {
    let score = parse_float(word)?;
    Finite::new(score)
        .ok_or_else(|| ErrorReply::new(ErrorCode::NotFloat, "value is not a valid float"))
}

/// A score bound as text: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
fn text_bound(word: &[u8]) -> Result<Bound, ErrorReply> {
    let refused = || ErrorReply::new(ErrorCode::NotFloat, "min or max is not a float");
    let (exclusive, number) = match word.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let score = parse_float(number).map_err(|_| refused())?;
    Ok(Bound {
        score: Finite::new(score).ok_or_else(refused)?,
        exclusive,
    })
}
