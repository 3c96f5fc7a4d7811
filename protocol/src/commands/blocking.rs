//! Popping from the first non-empty of several lists (LMPOP), and the blocking pops that
//! wait for one to be pushed to (BLPOP, BRPOP, BLMPOP, BLMOVE): what job queues wait on.
//!
//! The keys must share a slot, so a wait is registered on one shard and served there, in
//! the order clients began waiting, by the push that makes a list non-empty.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{read_key, read_keys, Words};
use super::lists::End;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// LMPOP
    pub const LMPOP: u16 = 0x0170;
    /// BLPOP
    pub const BLPOP: u16 = 0x0171;
    /// BRPOP
    pub const BRPOP: u16 = 0x0172;
    /// BLMPOP
    pub const BLMPOP: u16 = 0x0173;
    /// BLMOVE
    pub const BLMOVE: u16 = 0x0174;
    /// ZMPOP
    pub const ZMPOP: u16 = 0x0175;
    /// BZPOPMIN
    pub const BZPOPMIN: u16 = 0x0176;
    /// BZPOPMAX
    pub const BZPOPMAX: u16 = 0x0177;
    /// BZMPOP
    pub const BZMPOP: u16 = 0x0178;
}

/// Longest wait accepted, in milliseconds (a year); 0 waits for ever.
pub const MAX_BLOCK_MS: u64 = 365 * 24 * 3600 * 1000;

const fn row(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
) -> CommandSpec {
    super::spec_row(
        opcode,
        name,
        syntax,
        wire,
        reply,
        summary,
        true,
        KeySpec::OneSlot,
    )
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(
        opcode::LMPOP,
        "LMPOP",
        "numkeys key [key ...] LEFT|RIGHT [COUNT count]",
        "count:uvarint key:bytes*count end:u8 (0 left, 1 right) n:uvarint (>= 1)",
        "ARRAY [BYTES key, ARRAY of BYTES elements] from the first non-empty list, or NIL",
        "Pops up to n elements from the first of the lists that is not empty.",
    ),
    row(
        opcode::BLPOP,
        "BLPOP",
        "key [key ...] timeout",
        "count:uvarint key:bytes*count timeout_ms:uvarint (0 waits for ever)",
        "ARRAY [BYTES key, BYTES element], or NIL once the timeout passes",
        "Pops the head of the first non-empty list, waiting for a push if all are empty.",
    ),
    row(
        opcode::BRPOP,
        "BRPOP",
        "key [key ...] timeout",
        "as BLPOP",
        "ARRAY [BYTES key, BYTES element], or NIL once the timeout passes",
        "Pops the tail of the first non-empty list, waiting for a push if all are empty.",
    ),
    row(
        opcode::BLMPOP,
        "BLMPOP",
        "timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]",
        "count:uvarint key:bytes*count end:u8 n:uvarint timeout_ms:uvarint",
        "as LMPOP, or NIL once the timeout passes",
        "LMPOP, waiting for a push if every list is empty.",
    ),
    row(
        opcode::BLMOVE,
        "BLMOVE",
        "source destination LEFT|RIGHT LEFT|RIGHT timeout",
        "source:bytes destination:bytes from:u8 to:u8 timeout_ms:uvarint",
        "BYTES the element moved, or NIL once the timeout passes",
        "LMOVE, waiting for a push if the source is empty.",
    ),
    row(
        opcode::ZMPOP,
        "ZMPOP",
        "numkeys key [key ...] MIN|MAX [COUNT count]",
        "count:uvarint key:bytes*count max:u8 n:uvarint (>= 1)",
        "ARRAY [BYTES key, ARRAY of [BYTES member, FLOAT score]] from the first non-empty sorted set, or NIL",
        "Pops up to n of the lowest (or highest) scored members of the first non-empty sorted set.",
    ),
    row(
        opcode::BZPOPMIN,
        "BZPOPMIN",
        "key [key ...] timeout",
        "count:uvarint key:bytes*count timeout_ms:uvarint (0 waits for ever)",
        "ARRAY [BYTES key, BYTES member, FLOAT score], or NIL once the timeout passes",
        "Pops the lowest scored member of the first non-empty sorted set, waiting for one.",
    ),
    row(
        opcode::BZPOPMAX,
        "BZPOPMAX",
        "key [key ...] timeout",
        "as BZPOPMIN",
        "as BZPOPMIN",
        "Pops the highest scored member of the first non-empty sorted set, waiting for one.",
    ),
    row(
        opcode::BZMPOP,
        "BZMPOP",
        "timeout numkeys key [key ...] MIN|MAX [COUNT count]",
        "as ZMPOP, then timeout_ms:uvarint",
        "as ZMPOP, or NIL once the timeout passes",
        "ZMPOP, waiting for a member if every sorted set is empty.",
    ),
];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockingCommand<P = Bytes> {
    /// LMPOP, BLPOP, BRPOP, BLMPOP.
    Pop {
        /// Lists, tried in order.
        keys: Vec<P>,
        /// Which end.
        end: End,
        /// How many (LMPOP, BLMPOP: the reply holds an array); `None` for BLPOP/BRPOP.
        count: Option<u64>,
        /// How long to wait, in ms (0 for ever); `None` does not wait (LMPOP).
        block_ms: Option<u64>,
    },
    /// BLMOVE source destination from to timeout
    Move {
        /// List popped.
        source: P,
        /// List pushed.
        destination: P,
        /// End popped.
        from: End,
        /// End pushed.
        to: End,
        /// How long to wait, in ms (0 for ever).
        block_ms: u64,
    },
    /// ZMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
    ZPop {
        /// Sorted sets, tried in order.
        keys: Vec<P>,
        /// Highest scores first (MAX).
        max: bool,
        /// How many (ZMPOP, BZMPOP); `None` for BZPOPMIN/BZPOPMAX's one, answered flat.
        count: Option<u64>,
        /// How long to wait, in ms (0 for ever); `None` does not wait (ZMPOP).
        block_ms: Option<u64>,
    },
}

impl<P: Payload> BlockingCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            BlockingCommand::Pop { block_ms: None, .. } => opcode::LMPOP,
            BlockingCommand::Pop { count: Some(_), .. } => opcode::BLMPOP,
            BlockingCommand::Pop { end: End::Left, .. } => opcode::BLPOP,
            BlockingCommand::Pop { .. } => opcode::BRPOP,
            BlockingCommand::Move { .. } => opcode::BLMOVE,
            BlockingCommand::ZPop { block_ms: None, .. } => opcode::ZMPOP,
            BlockingCommand::ZPop { count: Some(_), .. } => opcode::BZMPOP,
            BlockingCommand::ZPop { max: false, .. } => opcode::BZPOPMIN,
            BlockingCommand::ZPop { .. } => opcode::BZPOPMAX,
        }
    }

    /// None: the owner is the slot every key shares.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// How long the command may wait, in ms (0 for ever); `None` if it never waits.
    pub fn block_ms(&self) -> Option<u64> {
        match self {
            BlockingCommand::Pop { block_ms, .. } | BlockingCommand::ZPop { block_ms, .. } => {
                *block_ms
            }
            BlockingCommand::Move { block_ms, .. } => Some(*block_ms),
        }
    }

    /// Calls `visit` with every key the command names.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        match self {
            BlockingCommand::Pop { keys, .. } | BlockingCommand::ZPop { keys, .. } => {
                keys.iter().for_each(|key| visit(key.as_ref()))
            }
            BlockingCommand::Move {
                source,
                destination,
                ..
            } => {
                visit(source.as_ref());
                visit(destination.as_ref());
            }
        }
    }

    /// The lists whose pushes can serve a wait.
    pub fn watched_lists(&self) -> Vec<&[u8]> {
        match self {
            BlockingCommand::Pop { keys, .. } | BlockingCommand::ZPop { keys, .. } => {
                keys.iter().map(AsRef::as_ref).collect()
            }
            BlockingCommand::Move { source, .. } => vec![source.as_ref()],
        }
    }

    /// How the command splits across shards: it never does.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<BlockingCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            BlockingCommand::Pop {
                keys,
                end,
                count,
                block_ms,
            } => {
                super::arg::put_list(buf, keys);
                if let Some(n) = count {
                    buf.put_u8(end.tag());
                    put_uvarint(buf, *n);
                }
                if let Some(ms) = block_ms {
                    put_uvarint(buf, *ms);
                }
            }
            BlockingCommand::Move {
                source,
                destination,
                from,
                to,
                block_ms,
            } => {
                put_bytes(buf, source.as_ref());
                put_bytes(buf, destination.as_ref());
                buf.put_u8(from.tag());
                buf.put_u8(to.tag());
                put_uvarint(buf, *block_ms);
            }
            BlockingCommand::ZPop {
                keys,
                max,
                count,
                block_ms,
            } => {
                super::arg::put_list(buf, keys);
                buf.put_u8(u8::from(*max));
                if let Some(n) = count {
                    put_uvarint(buf, *n);
                }
                if let Some(ms) = block_ms {
                    put_uvarint(buf, *ms);
                }
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let block = |r: &mut Reader<P>| match r.uvarint()? {
            ms if ms <= MAX_BLOCK_MS => Ok(ms),
            _ => Err(DecodeError::Invalid("a wait is at most a year")),
        };
        let count = |r: &mut Reader<P>| match r.uvarint()? {
            0 => Err(DecodeError::Invalid("COUNT is at least 1")),
            n => Ok(n),
        };
        Ok(match op {
            opcode::LMPOP | opcode::BLMPOP => {
                let keys = read_keys(r)?;
                let end = End::from_tag(r.u8()?)?;
                let n = count(r)?;
                let block_ms = if op == opcode::BLMPOP {
                    Some(block(r)?)
                } else {
                    None
                };
                BlockingCommand::Pop {
                    keys,
                    end,
                    count: Some(n),
                    block_ms,
                }
            }
            opcode::BLPOP | opcode::BRPOP => BlockingCommand::Pop {
                keys: read_keys(r)?,
                end: if op == opcode::BLPOP {
                    End::Left
                } else {
                    End::Right
                },
                count: None,
                block_ms: Some(block(r)?),
            },
            opcode::BLMOVE => BlockingCommand::Move {
                source: read_key(r)?,
                destination: read_key(r)?,
                from: End::from_tag(r.u8()?)?,
                to: End::from_tag(r.u8()?)?,
                block_ms: block(r)?,
            },
            opcode::ZMPOP | opcode::BZMPOP | opcode::BZPOPMIN | opcode::BZPOPMAX => {
                let keys = read_keys(r)?;
                let max = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("a flag is 0 or 1")),
                };
                let counted = matches!(op, opcode::ZMPOP | opcode::BZMPOP);
                let count = if counted { Some(count(r)?) } else { None };
                let block_ms = if op == opcode::ZMPOP {
                    None
                } else {
                    Some(block(r)?)
                };
                BlockingCommand::ZPop {
                    keys,
                    max,
                    count,
                    block_ms,
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> BlockingCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            BlockingCommand::Pop {
                keys,
                end,
                count,
                block_ms,
            } => BlockingCommand::Pop {
                keys: keys.iter().map(own).collect(),
                end: *end,
                count: *count,
                block_ms: *block_ms,
            },
            BlockingCommand::Move {
                source,
                destination,
                from,
                to,
                block_ms,
            } => BlockingCommand::Move {
                source: own(source),
                destination: own(destination),
                from: *from,
                to: *to,
                block_ms: *block_ms,
            },
            BlockingCommand::ZPop {
                keys,
                max,
                count,
                block_ms,
            } => BlockingCommand::ZPop {
                keys: keys.iter().map(own).collect(),
                max: *max,
                count: *count,
                block_ms: *block_ms,
            },
        }
    }
}

/// A timeout in seconds (a decimal, as Redis takes it), in milliseconds.
fn parse_timeout(word: &[u8]) -> Result<u64, ErrorReply> {
    let seconds = std::str::from_utf8(word)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .ok_or_else(|| {
            ErrorReply::new(ErrorCode::Syntax, "timeout is not a float or out of range")
        })?;
    if seconds < 0.0 {
        return Err(ErrorReply::new(ErrorCode::Syntax, "timeout is negative"));
    }
    let ms = (seconds * 1000.0).ceil();
    if ms > MAX_BLOCK_MS as f64 {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "timeout is out of range",
        ));
    }
    Ok(ms as u64)
}

/// BLPOP's and BZPOPMIN's `key [key ...] timeout`.
fn keys_then_timeout<P: Payload>(
    words: &mut Words<'_, P>,
    args: &[P],
) -> Result<(Vec<P>, u64), ErrorReply> {
    let Some((timeout, keys)) = args.split_last().filter(|(_, keys)| !keys.is_empty()) else {
        return Err(words.arity());
    };
    let keys = keys
        .iter()
        .map(|_| words.key())
        .collect::<Result<Vec<_>, _>>()?;
    words.word()?;
    Ok((keys, parse_timeout(timeout.as_ref())?))
}

/// `numkeys key... LEFT|RIGHT [COUNT n]`, as LMPOP and BLMPOP take them.
fn parse_mpop<P: Payload>(words: &mut Words<'_, P>) -> Result<(Vec<P>, End, u64), ErrorReply> {
    parse_multi_pop(words, End::parse)
}

/// ZMPOP's and BZMPOP's `numkeys key... MIN|MAX [COUNT n]`: whether MAX.
fn parse_zmpop<P: Payload>(words: &mut Words<'_, P>) -> Result<(Vec<P>, bool, u64), ErrorReply> {
    parse_multi_pop(words, |word| {
        if word.eq_ignore_ascii_case(b"MIN") {
            Ok(false)
        } else if word.eq_ignore_ascii_case(b"MAX") {
            Ok(true)
        } else {
            Err(ErrorReply::new(ErrorCode::Syntax, "syntax error"))
        }
    })
}

/// `numkeys key... WHICH [COUNT n]`, `which` reading the end or order word.
fn parse_multi_pop<P: Payload, T>(
    words: &mut Words<'_, P>,
    which: impl Fn(&[u8]) -> Result<T, ErrorReply>,
) -> Result<(Vec<P>, T, u64), ErrorReply> {
    let numkeys: i64 = words
        .int()
        .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "numkeys should be greater than 0"))?;
    if numkeys < 1 {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "numkeys should be greater than 0",
        ));
    }
    if numkeys as usize > words.remaining() {
        return Err(ErrorReply::new(ErrorCode::Syntax, "syntax error"));
    }
    let keys = (0..numkeys)
        .map(|_| words.key())
        .collect::<Result<Vec<_>, _>>()?;
    let end = which(words.text()?)?;
    let mut count = 1;
    let mut counted = false;
    words.options("syntax error", |name, words| {
        if name != b"COUNT" || std::mem::replace(&mut counted, true) {
            return Ok(false);
        }
        let n: i64 = words
            .int()
            .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "count should be greater than 0"))?;
        if n < 1 {
            return Err(ErrorReply::new(
                ErrorCode::Syntax,
                "count should be greater than 0",
            ));
        }
        count = n as u64;
        Ok(true)
    })?;
    Ok((keys, end, count))
}

impl<P: Payload> BlockingCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let command = match spec.opcode {
            opcode::LMPOP => {
                let (keys, end, count) = parse_mpop(&mut words)?;
                BlockingCommand::Pop {
                    keys,
                    end,
                    count: Some(count),
                    block_ms: None,
                }
            }
            opcode::BLMPOP => {
                let block_ms = parse_timeout(words.text()?)?;
                let (keys, end, count) = parse_mpop(&mut words)?;
                BlockingCommand::Pop {
                    keys,
                    end,
                    count: Some(count),
                    block_ms: Some(block_ms),
                }
            }
            opcode::BLPOP | opcode::BRPOP => {
                let (keys, timeout) = keys_then_timeout(&mut words, args)?;
                BlockingCommand::Pop {
                    keys,
                    end: if spec.opcode == opcode::BLPOP {
                        End::Left
                    } else {
                        End::Right
                    },
                    count: None,
                    block_ms: Some(timeout),
                }
            }
            opcode::ZMPOP | opcode::BZMPOP => {
                let block_ms = if spec.opcode == opcode::BZMPOP {
                    Some(parse_timeout(words.text()?)?)
                } else {
                    None
                };
                let (keys, max, count) = parse_zmpop(&mut words)?;
                BlockingCommand::ZPop {
                    keys,
                    max,
                    count: Some(count),
                    block_ms,
                }
            }
            opcode::BZPOPMIN | opcode::BZPOPMAX => {
                let (keys, timeout) = keys_then_timeout(&mut words, args)?;
                BlockingCommand::ZPop {
                    keys,
                    max: spec.opcode == opcode::BZPOPMAX,
                    count: None,
                    block_ms: Some(timeout),
                }
            }
            opcode::BLMOVE => BlockingCommand::Move {
                source: words.key()?,
                destination: words.key()?,
                from: End::parse(words.text()?)?,
                to: End::parse(words.text()?)?,
                block_ms: parse_timeout(words.text()?)?,
            },
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;

    fn parse(line: &str) -> Result<Command, ErrorReply> {
        let words: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::from(w.to_string()))
            .collect();
        Command::parse_words(&words)
    }

    #[test]
    fn every_form_reads_back_from_its_encoding() {
        for line in [
            "LMPOP 2 {q}a {q}b LEFT COUNT 3",
            "LMPOP 1 q RIGHT",
            "BLPOP {q}a {q}b 0.5",
            "BRPOP q 0",
            "BLMPOP 1.5 2 {q}a {q}b RIGHT",
            "BLMOVE {q}a {q}b LEFT RIGHT 10",
            "ZMPOP 2 {z}a {z}b MAX COUNT 2",
            "BZPOPMIN {z}a {z}b 1",
            "BZPOPMAX z 0",
            "BZMPOP 0.5 1 z MIN",
        ] {
            let command = parse(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
            let mut body = BytesMut::new();
            command.encode(&mut body);
            assert_eq!(Command::decode(body.freeze()).unwrap(), command, "{line}");
        }
        let Command::Blocking(BlockingCommand::Pop { block_ms, .. }) =
            parse("BLPOP q 0.0015").unwrap()
        else {
            panic!("BLPOP parses to Pop");
        };
        assert_eq!(block_ms, Some(2), "a fraction of a millisecond rounds up");
    }

    #[test]
    fn bad_arguments_are_refused_in_redis_words() {
        let message = |line: &str| parse(line).unwrap_err().message;
        assert_eq!(message("BLPOP q -1"), "timeout is negative");
        assert_eq!(
            message("BLPOP q abc"),
            "timeout is not a float or out of range"
        );
        assert_eq!(
            message("LMPOP 0 q LEFT"),
            "numkeys should be greater than 0"
        );
        assert_eq!(
            message("LMPOP 1 q LEFT COUNT 0"),
            "count should be greater than 0"
        );
        assert_eq!(message("LMPOP 1 q MIDDLE"), "syntax error");
        assert!(parse("BLPOP 1").is_err());
    }
}
