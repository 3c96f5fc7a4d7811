//! Idempotency records: the first caller's result, kept for its retries.

use bytes::{Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec, MAX_EXPIRE_MS};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// IDEM.BEGIN
    pub const IDEM_BEGIN: u16 = 0x0050;
    /// IDEM.COMPLETE
    pub const IDEM_COMPLETE: u16 = 0x0051;
    /// IDEM.GET
    pub const IDEM_GET: u16 = 0x0052;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::IDEM_BEGIN,
        name: "IDEM.BEGIN",
        syntax: "key seconds [LEASE ms]",
        wire: "key:bytes ttl_ms:uvarint lease_ms:uvarint (0 = 30000)",
        reply: "MAP {state: TEXT new|in_progress|done, token: INT (new, in_progress), retry_after_ms: INT (in_progress), result: BYTES (done)}",
        summary: "Starts an idempotent operation: new (go ahead, holding a lease), in_progress (another caller holds the lease), or done with the stored result.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::IDEM_COMPLETE,
        name: "IDEM.COMPLETE",
        syntax: "key token result",
        wire: "key:bytes token:uvarint result:bytes",
        reply: "OK; NOT_FOUND if the record is gone, CONFLICT if the token's lease was taken over or the record is already done",
        summary: "Stores the result of the operation begun with token; every later IDEM.BEGIN returns it.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::IDEM_GET,
        name: "IDEM.GET",
        syntax: "key",
        wire: "key:bytes",
        reply: "as IDEM.BEGIN, or NIL if there is no record; changes nothing",
        summary: "Reads an idempotency record without starting anything.",
        writes: false,
        keys: KeySpec::Single,
    },
];

/// Lease an IDEM.BEGIN caller holds when it names none: 30 seconds.
pub const DEFAULT_LEASE_MS: u64 = 30_000;

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdemCommand<P = Bytes> {
    /// IDEM.BEGIN key seconds [LEASE ms]
    Begin {
        /// Idempotency key.
        key: P,
        /// How long the record (and its result) is kept, in milliseconds.
        ttl_ms: u64,
        /// How long a caller may hold the operation before another may take over.
        lease_ms: u64,
    },
    /// IDEM.COMPLETE key token result
    Complete {
        /// Idempotency key.
        key: P,
        /// Token IDEM.BEGIN handed out.
        token: u64,
        /// Result to store.
        result: P,
    },
    /// IDEM.GET key
    Get(P),
}

impl<P: Payload> IdemCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            IdemCommand::Begin { .. } => opcode::IDEM_BEGIN,
            IdemCommand::Complete { .. } => opcode::IDEM_COMPLETE,
            IdemCommand::Get(_) => opcode::IDEM_GET,
        }
    }

    /// The single key this command touches: the idempotency key.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            IdemCommand::Begin { key, .. }
            | IdemCommand::Complete { key, .. }
            | IdemCommand::Get(key) => Some(key),
        }
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<IdemCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            IdemCommand::Begin {
                key,
                ttl_ms,
                lease_ms,
            } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *ttl_ms);
                put_uvarint(buf, *lease_ms);
            }
            IdemCommand::Complete { key, token, result } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *token);
                put_bytes(buf, result.as_ref());
            }
            IdemCommand::Get(key) => put_bytes(buf, key.as_ref()),
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::IDEM_BEGIN => {
                let key = read_key(r)?;
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                let lease_ms = match r.uvarint()? {
                    0 => DEFAULT_LEASE_MS,
                    ms => checked_ttl(ms)?,
                };
                IdemCommand::Begin {
                    key,
                    ttl_ms,
                    lease_ms,
                }
            }
            opcode::IDEM_COMPLETE => IdemCommand::Complete {
                key: read_key(r)?,
                token: r.uvarint()?,
                result: r.bytes()?,
            },
            opcode::IDEM_GET => IdemCommand::Get(read_key(r)?),
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> IdemCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            IdemCommand::Begin {
                key,
                ttl_ms,
                lease_ms,
            } => IdemCommand::Begin {
                key: own(key),
                ttl_ms: *ttl_ms,
                lease_ms: *lease_ms,
            },
            IdemCommand::Complete { key, token, result } => IdemCommand::Complete {
                key: own(key),
                token: *token,
                result: own(result),
            },
            IdemCommand::Get(key) => IdemCommand::Get(own(key)),
        }
    }
}

impl<P: Payload> IdemCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::IDEM_BEGIN => {
                let lease_ms = match args {
                    [_, _] => DEFAULT_LEASE_MS,
                    [_, _, word, ms] if word.as_ref().eq_ignore_ascii_case(b"LEASE") => {
                        let ms = parse_int::<i64>(ms.as_ref())?;
                        if !(1..=MAX_EXPIRE_MS).contains(&ms) {
                            return Err(ErrorReply::new(
                                ErrorCode::InvalidExpire,
                                "invalid lease time",
                            ));
                        }
                        ms as u64
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                IdemCommand::Begin {
                    key: text_key(&args[0])?,
                    ttl_ms: parse_seconds(args[1].as_ref())?,
                    lease_ms,
                }
            }
            opcode::IDEM_COMPLETE => {
                let mut words = Words::new(spec, args);
                let complete = IdemCommand::Complete {
                    key: words.key()?,
                    token: words.int()?,
                    result: words.bytes()?,
                };
                words.finish()?;
                complete
            }
            opcode::IDEM_GET => {
                arity(args.len() == 1)?;
                IdemCommand::Get(text_key(&args[0])?)
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
