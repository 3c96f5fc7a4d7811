//! Sorted sets combined: the union, intersection or difference of several (sets count as
//! sorted sets of score 1), weighted and aggregated as Redis does, answered or stored,
//! and the size of an intersection. Every key must share one slot.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{put_list, read_key, read_keys, Words};
use super::hashes::Finite;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// ZUNION
    pub const ZUNION: u16 = 0x0190;
    /// ZINTER
    pub const ZINTER: u16 = 0x0191;
    /// ZDIFF
    pub const ZDIFF: u16 = 0x0192;
    /// ZUNIONSTORE
    pub const ZUNIONSTORE: u16 = 0x0193;
    /// ZINTERSTORE
    pub const ZINTERSTORE: u16 = 0x0194;
    /// ZDIFFSTORE
    pub const ZDIFFSTORE: u16 = 0x0195;
    /// ZINTERCARD
    pub const ZINTERCARD: u16 = 0x0196;
    /// ZRANGESTORE
    pub const ZRANGESTORE: u16 = 0x0197;
}

const fn row(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
    writes: bool,
) -> CommandSpec {
    super::spec_row(
        opcode,
        name,
        syntax,
        wire,
        reply,
        summary,
        writes,
        KeySpec::OneSlot,
    )
}

const COMBINE_WIRE: &str = "count:uvarint key:bytes*count weights:u8 [weight:f64*count if 1] aggregate:u8 (0 sum, 1 min, 2 max) withscores:u8";
const STORE_WIRE: &str = "destination:bytes, then as ZUNION without withscores";

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(
        opcode::ZUNION,
        "ZUNION",
        "numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]",
        COMBINE_WIRE,
        "ARRAY of BYTES members by score; WITHSCORES: ARRAY of [BYTES member, FLOAT score]",
        "Members of any of the sets, each scored by its weighted scores aggregated.",
        false,
    ),
    row(
        opcode::ZINTER,
        "ZINTER",
        "numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]",
        COMBINE_WIRE,
        "as ZUNION",
        "Members of every one of the sets.",
        false,
    ),
    row(
        opcode::ZDIFF,
        "ZDIFF",
        "numkeys key [key ...] [WITHSCORES]",
        COMBINE_WIRE,
        "as ZUNION",
        "Members of the first set in none of the others, with their scores there.",
        false,
    ),
    row(
        opcode::ZUNIONSTORE,
        "ZUNIONSTORE",
        "destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]",
        STORE_WIRE,
        "INT members stored (an empty result deletes the destination)",
        "ZUNION into a key.",
        true,
    ),
    row(
        opcode::ZINTERSTORE,
        "ZINTERSTORE",
        "destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]",
        STORE_WIRE,
        "INT members stored",
        "ZINTER into a key.",
        true,
    ),
    row(
        opcode::ZDIFFSTORE,
        "ZDIFFSTORE",
        "destination numkeys key [key ...]",
        STORE_WIRE,
        "INT members stored",
        "ZDIFF into a key.",
        true,
    ),
    row(
        opcode::ZINTERCARD,
        "ZINTERCARD",
        "numkeys key [key ...] [LIMIT limit]",
        "count:uvarint key:bytes*count limit:uvarint (0 = none)",
        "INT members in every set, counting to the limit",
        "Counts an intersection without building it.",
        false,
    ),
    row(
        opcode::ZRANGESTORE,
        "ZRANGESTORE",
        "destination source start stop [BYSCORE] [REV] [LIMIT offset count]",
        "destination:bytes range:bytes (a ZRANGE body without WITHSCORES)",
        "INT members stored (an empty range deletes the destination)",
        "ZRANGE into a key, scores kept.",
        true,
    ),
];

/// How the sets combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAlgebra {
    /// In any.
    Union,
    /// In all.
    Inter,
    /// In the first and none of the others.
    Diff,
}

/// How a member's weighted scores become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    /// Their sum (a NaN from opposite infinities counts as 0, as in Redis).
    #[default]
    Sum,
    /// The lowest.
    Min,
    /// The highest.
    Max,
}

/// The inputs of a combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs<P = Bytes> {
    /// Sorted sets (or sets).
    pub keys: Vec<P>,
    /// One weight per key; `None` for all 1.
    pub weights: Option<Vec<Finite>>,
    /// How scores aggregate.
    pub aggregate: Aggregate,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortedSetAlgebraCommand<P = Bytes> {
    /// ZUNION / ZINTER / ZDIFF
    Combine {
        /// Which.
        op: SetAlgebra,
        /// The sets and how they combine.
        inputs: Inputs<P>,
        /// Answer scores too.
        with_scores: bool,
    },
    /// ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE
    Store {
        /// Which.
        op: SetAlgebra,
        /// Where the result goes.
        destination: P,
        /// The sets and how they combine.
        inputs: Inputs<P>,
    },
    /// ZRANGESTORE destination source ...
    RangeStore {
        /// Where the range goes.
        destination: P,
        /// The ZRANGE it stores (never WITHSCORES).
        range: super::SortedSetCommand<P>,
    },
    /// ZINTERCARD numkeys key... [LIMIT n]
    InterCard {
        /// Sorted sets.
        keys: Vec<P>,
        /// Stop counting here (0: count all).
        limit: u64,
    },
}

fn put_inputs<P: Payload>(buf: &mut BytesMut, inputs: &Inputs<P>) {
    put_list(buf, &inputs.keys);
    match &inputs.weights {
        None => buf.put_u8(0),
        Some(weights) => {
            buf.put_u8(1);
            weights.iter().for_each(|w| buf.put_f64_le(w.get()));
        }
    }
    buf.put_u8(match inputs.aggregate {
        Aggregate::Sum => 0,
        Aggregate::Min => 1,
        Aggregate::Max => 2,
    });
}

fn read_inputs<P: Payload>(r: &mut Reader<P>) -> Result<Inputs<P>, DecodeError> {
    let keys = read_keys(r)?;
    let weights = match r.u8()? {
        0 => None,
        1 => Some(
            (0..keys.len())
                .map(|_| Finite::new(r.f64()?).ok_or(DecodeError::Invalid("a weight is NaN")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => return Err(DecodeError::Invalid("a flag is 0 or 1")),
    };
    let aggregate = match r.u8()? {
        0 => Aggregate::Sum,
        1 => Aggregate::Min,
        2 => Aggregate::Max,
        _ => return Err(DecodeError::Invalid("unknown aggregate")),
    };
    Ok(Inputs {
        keys,
        weights,
        aggregate,
    })
}

fn op_of(op: u16) -> SetAlgebra {
    match op {
        opcode::ZUNION | opcode::ZUNIONSTORE => SetAlgebra::Union,
        opcode::ZINTER | opcode::ZINTERSTORE => SetAlgebra::Inter,
        _ => SetAlgebra::Diff,
    }
}

impl<P: Payload> SortedSetAlgebraCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        use SortedSetAlgebraCommand as C;
        match self {
            C::Combine {
                op: SetAlgebra::Union,
                ..
            } => opcode::ZUNION,
            C::Combine {
                op: SetAlgebra::Inter,
                ..
            } => opcode::ZINTER,
            C::Combine { .. } => opcode::ZDIFF,
            C::Store {
                op: SetAlgebra::Union,
                ..
            } => opcode::ZUNIONSTORE,
            C::Store {
                op: SetAlgebra::Inter,
                ..
            } => opcode::ZINTERSTORE,
            C::Store { .. } => opcode::ZDIFFSTORE,
            C::InterCard { .. } => opcode::ZINTERCARD,
            C::RangeStore { .. } => opcode::ZRANGESTORE,
        }
    }

    /// The key that names the slot: the destination, or the first input.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            SortedSetAlgebraCommand::Store { destination, .. }
            | SortedSetAlgebraCommand::RangeStore { destination, .. } => Some(destination),
            SortedSetAlgebraCommand::Combine { inputs, .. } => inputs.keys.first(),
            SortedSetAlgebraCommand::InterCard { keys, .. } => keys.first(),
        }
    }

    /// Calls `visit` with every key the command names.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        let keys = match self {
            SortedSetAlgebraCommand::Store {
                destination,
                inputs,
                ..
            } => {
                visit(destination.as_ref());
                &inputs.keys
            }
            SortedSetAlgebraCommand::Combine { inputs, .. } => &inputs.keys,
            SortedSetAlgebraCommand::InterCard { keys, .. } => keys,
            SortedSetAlgebraCommand::RangeStore { destination, range } => {
                visit(destination.as_ref());
                if let Some(source) = range.single_key() {
                    visit(source.as_ref());
                }
                return;
            }
        };
        keys.iter().for_each(|key| visit(key.as_ref()));
    }

    /// How the command splits across shards: it never does.
    pub fn split(
        &self,
        _owner: &dyn Fn(&[u8]) -> u16,
    ) -> Option<Split<SortedSetAlgebraCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            SortedSetAlgebraCommand::Combine {
                inputs,
                with_scores,
                ..
            } => {
                put_inputs(buf, inputs);
                buf.put_u8(u8::from(*with_scores));
            }
            SortedSetAlgebraCommand::Store {
                destination,
                inputs,
                ..
            } => {
                put_bytes(buf, destination.as_ref());
                put_inputs(buf, inputs);
            }
            SortedSetAlgebraCommand::InterCard { keys, limit } => {
                put_list(buf, keys);
                put_uvarint(buf, *limit);
            }
            SortedSetAlgebraCommand::RangeStore { destination, range } => {
                put_bytes(buf, destination.as_ref());
                let mut body = BytesMut::new();
                body.put_u16_le(range.opcode());
                range.encode(&mut body);
                put_bytes(buf, &body);
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::ZUNION | opcode::ZINTER | opcode::ZDIFF => SortedSetAlgebraCommand::Combine {
                op: op_of(op),
                inputs: read_inputs(r)?,
                with_scores: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("a flag is 0 or 1")),
                },
            },
            opcode::ZUNIONSTORE | opcode::ZINTERSTORE | opcode::ZDIFFSTORE => {
                SortedSetAlgebraCommand::Store {
                    op: op_of(op),
                    destination: read_key(r)?,
                    inputs: read_inputs(r)?,
                }
            }
            opcode::ZINTERCARD => SortedSetAlgebraCommand::InterCard {
                keys: read_keys(r)?,
                limit: r.uvarint()?,
            },
            opcode::ZRANGESTORE => {
                let destination = read_key(r)?;
                let body = r.bytes()?;
                if body.as_ref().get(..2) != Some(&super::opcode::ZRANGE.to_le_bytes()[..]) {
                    return Err(DecodeError::Invalid("ZRANGESTORE carries a ZRANGE"));
                }
                match super::Command::decode(body)? {
                    super::Command::SortedSets(
                        range @ super::SortedSetCommand::Range {
                            with_scores: false, ..
                        },
                    ) => SortedSetAlgebraCommand::RangeStore { destination, range },
                    _ => return Err(DecodeError::Invalid("ZRANGESTORE carries a ZRANGE")),
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> SortedSetAlgebraCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_inputs = |inputs: &Inputs<P>| Inputs {
            keys: inputs.keys.iter().map(own).collect(),
            weights: inputs.weights.clone(),
            aggregate: inputs.aggregate,
        };
        match self {
            SortedSetAlgebraCommand::Combine {
                op,
                inputs,
                with_scores,
            } => SortedSetAlgebraCommand::Combine {
                op: *op,
                inputs: own_inputs(inputs),
                with_scores: *with_scores,
            },
            SortedSetAlgebraCommand::Store {
                op,
                destination,
                inputs,
            } => SortedSetAlgebraCommand::Store {
                op: *op,
                destination: own(destination),
                inputs: own_inputs(inputs),
            },
            SortedSetAlgebraCommand::InterCard { keys, limit } => {
                SortedSetAlgebraCommand::InterCard {
                    keys: keys.iter().map(own).collect(),
                    limit: *limit,
                }
            }
            SortedSetAlgebraCommand::RangeStore { destination, range } => {
                SortedSetAlgebraCommand::RangeStore {
                    destination: own(destination),
                    range: range.to_owned_bytes(),
                }
            }
        }
    }
}

fn syntax() -> ErrorReply {
    ErrorReply::new(ErrorCode::Syntax, "syntax error")
}

/// `numkeys key...`, as Redis reads and refuses it.
fn parse_keys<P: Payload>(words: &mut Words<'_, P>, name: &str) -> Result<Vec<P>, ErrorReply> {
    let numkeys: i64 = words.int()?;
    if numkeys < 1 {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            format!(
                "at least 1 input key is needed for '{}' command",
                name.to_lowercase()
            ),
        ));
    }
    if numkeys as usize > words.remaining() {
        return Err(syntax());
    }
    (0..numkeys).map(|_| words.key()).collect()
}

/// `[WEIGHTS w...] [AGGREGATE ...] [WITHSCORES]` after the keys; answers the inputs and
/// whether WITHSCORES came.
fn parse_options<P: Payload>(
    words: &mut Words<'_, P>,
    keys: Vec<P>,
    weighted: bool,
    scores_allowed: bool,
) -> Result<(Inputs<P>, bool), ErrorReply> {
    let mut inputs = Inputs {
        keys,
        weights: None,
        aggregate: Aggregate::Sum,
    };
    let mut with_scores = false;
    let count = inputs.keys.len();
    words.options("syntax error", |name, words| {
        match name {
            b"WEIGHTS" if weighted => {
                let mut weights = Vec::with_capacity(count);
                for _ in 0..count {
                    let word = words.word().map_err(|_| syntax())?;
                    let weight = super::arg::parse_float(word.as_ref()).map_err(|_| {
                        ErrorReply::new(ErrorCode::NotFloat, "weight value is not a float")
                    })?;
                    weights.push(Finite::new(weight).unwrap_or(Finite::ZERO));
                }
                inputs.weights = Some(weights);
            }
            b"AGGREGATE" if weighted => {
                let word = words
                    .word()
                    .map_err(|_| syntax())?
                    .as_ref()
                    .to_ascii_uppercase();
                inputs.aggregate = match &word[..] {
                    b"SUM" => Aggregate::Sum,
                    b"MIN" => Aggregate::Min,
                    b"MAX" => Aggregate::Max,
                    _ => return Err(syntax()),
                };
            }
            b"WITHSCORES" if scores_allowed => with_scores = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((inputs, with_scores))
}

impl<P: Payload> SortedSetAlgebraCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let op = op_of(spec.opcode);
        let weighted = op != SetAlgebra::Diff;
        Ok(match spec.opcode {
            opcode::ZUNION | opcode::ZINTER | opcode::ZDIFF => {
                let keys = parse_keys(&mut words, spec.name)?;
                let (inputs, with_scores) = parse_options(&mut words, keys, weighted, true)?;
                SortedSetAlgebraCommand::Combine {
                    op,
                    inputs,
                    with_scores,
                }
            }
            opcode::ZUNIONSTORE | opcode::ZINTERSTORE | opcode::ZDIFFSTORE => {
                let destination = words.key()?;
                let keys = parse_keys(&mut words, spec.name)?;
                let (inputs, _) = parse_options(&mut words, keys, weighted, false)?;
                SortedSetAlgebraCommand::Store {
                    op,
                    destination,
                    inputs,
                }
            }
            opcode::ZRANGESTORE => {
                let destination = words.key()?;
                let zrange =
                    super::spec_by_opcode(super::sorted_sets::opcode::ZRANGE).ok_or_else(syntax)?;
                match super::SortedSetCommand::parse(zrange, words.rest())? {
                    range @ super::SortedSetCommand::Range {
                        with_scores: false, ..
                    } => SortedSetAlgebraCommand::RangeStore { destination, range },
                    _ => return Err(syntax()),
                }
            }
            opcode::ZINTERCARD => {
                let keys = parse_keys(&mut words, spec.name)?;
                let mut limit = 0;
                words.options("syntax error", |name, words| {
                    if name != b"LIMIT" {
                        return Ok(false);
                    }
                    let word = words.word().map_err(|_| syntax())?;
                    let n: i64 = super::arg::parse_int(word.as_ref()).map_err(|_| {
                        ErrorReply::new(ErrorCode::Syntax, "LIMIT can't be negative")
                    })?;
                    limit = u64::try_from(n).map_err(|_| {
                        ErrorReply::new(ErrorCode::Syntax, "LIMIT can't be negative")
                    })?;
                    Ok(true)
                })?;
                SortedSetAlgebraCommand::InterCard { keys, limit }
            }
            _ => return Err(words.arity()),
        })
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
            "ZUNION 2 {z}a {z}b WEIGHTS 2 0.5 AGGREGATE MAX WITHSCORES",
            "ZINTER 1 z",
            "ZDIFF 2 {z}a {z}b WITHSCORES",
            "ZUNIONSTORE {z}d 2 {z}a {z}b AGGREGATE MIN",
            "ZINTERSTORE {z}d 2 {z}a {z}b WEIGHTS 1 -1",
            "ZDIFFSTORE {z}d 1 {z}a",
            "ZINTERCARD 2 {z}a {z}b LIMIT 5",
            "ZRANGESTORE {z}d {z}a 0 -1",
            "ZRANGESTORE {z}d {z}a 5 0 BYSCORE REV LIMIT 0 2",
        ] {
            let command = parse(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
            let mut body = BytesMut::new();
            command.encode(&mut body);
            assert_eq!(Command::decode(body.freeze()).unwrap(), command, "{line}");
        }
    }

    #[test]
    fn bad_arguments_are_refused_in_redis_words() {
        let message = |line: &str| parse(line).unwrap_err().message;
        assert_eq!(
            message("ZUNION 0 a"),
            "at least 1 input key is needed for 'zunion' command"
        );
        assert_eq!(message("ZUNION 3 a b"), "syntax error");
        assert_eq!(message("ZDIFF 1 a WEIGHTS 2"), "syntax error");
        assert_eq!(
            message("ZUNION 1 a WEIGHTS x"),
            "weight value is not a float"
        );
        assert_eq!(message("ZUNIONSTORE d 1 a WITHSCORES"), "syntax error");
        assert_eq!(
            message("ZINTERCARD 1 a LIMIT -1"),
            "LIMIT can't be negative"
        );
        assert_eq!(message("ZRANGESTORE d a 0 -1 WITHSCORES"), "syntax error");
    }
}
