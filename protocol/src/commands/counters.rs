//! Bounded counters and id-block allocation.

use bytes::{Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// COUNTER.TAKE
    pub const COUNTER_TAKE: u16 = 0x0040;
    /// COUNTER.PUT
    pub const COUNTER_PUT: u16 = 0x0041;
    /// ID.RANGE
    pub const ID_RANGE: u16 = 0x0042;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::COUNTER_TAKE,
        name: "COUNTER.TAKE",
        syntax: "key amount [FLOOR floor]",
        wire: "key:bytes amount:uvarint floor:ivarint",
        reply: "MAP {taken: BOOL, remaining: INT}",
        summary: "Subtracts amount only if the result stays at or above floor (default 0); otherwise takes nothing. A missing key counts as 0.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::COUNTER_PUT,
        name: "COUNTER.PUT",
        syntax: "key amount",
        wire: "key:bytes amount:uvarint",
        reply: "INT the new value",
        summary: "Adds amount to a bounded counter (a top-up), refusing overflow.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::ID_RANGE,
        name: "ID.RANGE",
        syntax: "key size",
        wire: "key:bytes size:uvarint (1 ..= 2^40)",
        reply: "ARRAY [first: INT, last: INT], an inclusive block no other call ever gets",
        summary: "Hands out the next block of size ids from a sequence that starts at 1.",
        writes: true,
        keys: KeySpec::Single,
    },
];

/// Largest block ID.RANGE hands out at once.
pub const MAX_ID_BLOCK: u64 = 1 << 40;

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterCommand<P = Bytes> {
    /// COUNTER.TAKE key amount [FLOOR floor]
    Take {
        /// Counter.
        key: P,
        /// Amount to take.
        amount: u64,
        /// Lowest value the counter may reach.
        floor: i64,
    },
    /// COUNTER.PUT key amount
    Put {
        /// Counter.
        key: P,
        /// Amount to add.
        amount: u64,
    },
    /// ID.RANGE key size
    IdRange {
        /// Sequence.
        key: P,
        /// Ids in the block.
        size: u64,
    },
}

impl<P: Payload> CounterCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            CounterCommand::Take { .. } => opcode::COUNTER_TAKE,
            CounterCommand::Put { .. } => opcode::COUNTER_PUT,
            CounterCommand::IdRange { .. } => opcode::ID_RANGE,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            CounterCommand::Take { key, .. }
            | CounterCommand::Put { key, .. }
            | CounterCommand::IdRange { key, .. } => Some(key),
        }
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<CounterCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            CounterCommand::Take { key, amount, floor } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *amount);
                put_ivarint(buf, *floor);
            }
            CounterCommand::Put { key, amount: n } | CounterCommand::IdRange { key, size: n } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *n);
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::COUNTER_TAKE => CounterCommand::Take {
                key: read_key(r)?,
                amount: checked_amount(r.uvarint()?)?,
                floor: r.ivarint()?,
            },
            opcode::COUNTER_PUT => CounterCommand::Put {
                key: read_key(r)?,
                amount: checked_amount(r.uvarint()?)?,
            },
            opcode::ID_RANGE => {
                let key = read_key(r)?;
                let size = r.uvarint()?;
                if !(1..=MAX_ID_BLOCK).contains(&size) {
                    return Err(DecodeError::Invalid(
                        "ID.RANGE size must be between 1 and 2^40",
                    ));
                }
                CounterCommand::IdRange { key, size }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> CounterCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            CounterCommand::Take { key, amount, floor } => CounterCommand::Take {
                key: own(key),
                amount: *amount,
                floor: *floor,
            },
            CounterCommand::Put { key, amount } => CounterCommand::Put {
                key: own(key),
                amount: *amount,
            },
            CounterCommand::IdRange { key, size } => CounterCommand::IdRange {
                key: own(key),
                size: *size,
            },
        }
    }
}

impl<P: Payload> CounterCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::COUNTER_TAKE => {
                let floor = match args {
                    [_, _] => 0,
                    [_, _, word, floor] if word.as_ref().eq_ignore_ascii_case(b"FLOOR") => {
                        parse_int::<i64>(floor.as_ref())?
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                CounterCommand::Take {
                    key: text_key(&args[0])?,
                    amount: parse_amount(args[1].as_ref())?,
                    floor,
                }
            }
            opcode::COUNTER_PUT => {
                arity(args.len() == 2)?;
                CounterCommand::Put {
                    key: text_key(&args[0])?,
                    amount: parse_amount(args[1].as_ref())?,
                }
            }
            opcode::ID_RANGE => {
                arity(args.len() == 2)?;
                let size = parse_int::<u64>(args[1].as_ref())?;
                if !(1..=MAX_ID_BLOCK).contains(&size) {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "ID.RANGE size must be between 1 and 2^40",
                    ));
                }
                CounterCommand::IdRange {
                    key: text_key(&args[0])?,
                    size,
                }
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}

fn checked_amount(amount: u64) -> Result<u64, DecodeError> {
    if amount > i64::MAX as u64 {
        return Err(DecodeError::Invalid("amount exceeds 2^63-1"));
    }
    Ok(amount)
}

fn parse_amount(word: &[u8]) -> Result<u64, ErrorReply> {
    let amount = parse_int::<u64>(word)?;
    if amount > i64::MAX as u64 {
        return Err(ErrorReply::new(
            ErrorCode::NotInteger,
            "amount exceeds 2^63-1",
        ));
    }
    Ok(amount)
}
