//! Dedup marks: first writer wins, with a TTL.

use bytes::{Bytes, BytesMut};

use super::arg::*;
use super::split::{positions, split_keys, Split};
use super::{CommandSpec, KeySpec};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// DEDUP
    pub const DEDUP: u16 = 0x0030;
    /// DEDUP.MULTI
    pub const DEDUP_MULTI: u16 = 0x0031;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::DEDUP,
        name: "DEDUP",
        syntax: "key seconds",
        wire: "key:bytes ttl_ms:uvarint",
        reply: "BOOL true for the first sighting, false for a duplicate",
        summary: "Records a key for a time unless it is already recorded: first writer wins, and the first sighting's expiry stands.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DEDUP_MULTI,
        name: "DEDUP.MULTI",
        syntax: "seconds key [key ...]",
        wire: "ttl_ms:uvarint count:uvarint key:bytes*count",
        reply: "ARRAY of BOOL, one per key in the order given (a key named twice is a duplicate the second time)",
        summary: "DEDUP for many keys in one call, split across the shards that own them.",
        writes: true,
        keys: KeySpec::Many,
    },
];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupCommand<P = Bytes> {
    /// DEDUP key seconds
    Check {
        /// Key recorded.
        key: P,
        /// Expiry of a first sighting, in milliseconds.
        ttl_ms: u64,
    },
    /// DEDUP.MULTI seconds key...
    CheckMany {
        /// Expiry of each first sighting, in milliseconds.
        ttl_ms: u64,
        /// Keys recorded.
        keys: Vec<P>,
    },
}

impl<P: Payload> DedupCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            DedupCommand::Check { .. } => opcode::DEDUP,
            DedupCommand::CheckMany { .. } => opcode::DEDUP_MULTI,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            DedupCommand::Check { key, .. } => Some(key),
            DedupCommand::CheckMany { .. } => None,
        }
    }

    /// How the command splits across shards: DEDUP.MULTI by the owner of each key.
    pub fn split(&self, owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<DedupCommand<Bytes>>> {
        match self {
            DedupCommand::CheckMany { ttl_ms, keys } => {
                let ttl_ms = *ttl_ms;
                Some(split_keys(keys, owner, positions(keys.len()), |keys| {
                    DedupCommand::CheckMany { ttl_ms, keys }
                }))
            }
            DedupCommand::Check { .. } => None,
        }
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            DedupCommand::Check { key, ttl_ms } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *ttl_ms);
            }
            DedupCommand::CheckMany { ttl_ms, keys } => {
                put_uvarint(buf, *ttl_ms);
                put_list(buf, keys);
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::DEDUP => DedupCommand::Check {
                key: read_key(r)?,
                ttl_ms: checked_ttl(r.uvarint()?)?,
            },
            opcode::DEDUP_MULTI => {
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                DedupCommand::CheckMany {
                    ttl_ms,
                    keys: read_keys(r)?,
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> DedupCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_all = |keys: &[P]| keys.iter().map(own).collect();
        match self {
            DedupCommand::Check { key, ttl_ms } => DedupCommand::Check {
                key: own(key),
                ttl_ms: *ttl_ms,
            },
            DedupCommand::CheckMany { ttl_ms, keys } => DedupCommand::CheckMany {
                ttl_ms: *ttl_ms,
                keys: own_all(keys),
            },
        }
    }
}

impl<P: Payload> DedupCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::DEDUP => {
                arity(args.len() == 2)?;
                DedupCommand::Check {
                    key: text_key(&args[0])?,
                    ttl_ms: parse_seconds(args[1].as_ref())?,
                }
            }
            opcode::DEDUP_MULTI => {
                arity(args.len() >= 2)?;
                DedupCommand::CheckMany {
                    ttl_ms: parse_seconds(args[0].as_ref())?,
                    keys: args[1..]
                        .iter()
                        .map(text_key)
                        .collect::<Result<Vec<_>, _>>()?,
                }
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
