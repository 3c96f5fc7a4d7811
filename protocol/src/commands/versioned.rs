//! Versioned values with compare-and-set.

use bytes::{Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// VGET
    pub const VGET: u16 = 0x0060;
    /// VSET
    pub const VSET: u16 = 0x0061;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::VGET,
        name: "VGET",
        syntax: "key",
        wire: "key:bytes",
        reply: "MAP {value: BYTES, version: INT}, or NIL",
        summary: "Returns a versioned value and its version.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::VSET,
        name: "VSET",
        syntax: "key value [IFVERSION v] [EX seconds]",
        wire: "key:bytes value:bytes if_version:uvarint (0 = none, v + 1 = must be v) ttl_ms:uvarint (0 = no expiry)",
        reply: "MAP {ok: BOOL, version: INT}: the new version, or on a conflict the current one (0 if absent)",
        summary: "Writes a versioned value, optionally only if its version still matches (0 = must not exist): compare-and-set.",
        writes: true,
        keys: KeySpec::Single,
    },
];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionedCommand<P = Bytes> {
    /// VGET key
    Get(P),
    /// VSET key value [IFVERSION v] [EX seconds]
    Set {
        /// Key.
        key: P,
        /// New value.
        value: P,
        /// Write only if the current version is this (0 = the key must not exist).
        if_version: Option<u64>,
        /// Expiry in milliseconds; `None` = never expires.
        ttl_ms: Option<u64>,
    },
}

impl<P: Payload> VersionedCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            VersionedCommand::Get(_) => opcode::VGET,
            VersionedCommand::Set { .. } => opcode::VSET,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            VersionedCommand::Get(key) | VersionedCommand::Set { key, .. } => Some(key),
        }
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<VersionedCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            VersionedCommand::Get(key) => put_bytes(buf, key.as_ref()),
            VersionedCommand::Set {
                key,
                value,
                if_version,
                ttl_ms,
            } => {
                put_bytes(buf, key.as_ref());
                put_bytes(buf, value.as_ref());
                put_uvarint(buf, if_version.map_or(0, |v| v.saturating_add(1)));
                put_uvarint(buf, ttl_ms.unwrap_or(0));
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::VGET => VersionedCommand::Get(read_key(r)?),
            opcode::VSET => {
                let key = read_key(r)?;
                let value = r.bytes()?;
                let if_version = match r.uvarint()? {
                    0 => None,
                    v => Some(v - 1),
                };
                let ttl_ms = match r.uvarint()? {
                    0 => None,
                    ms => Some(checked_ttl(ms)?),
                };
                VersionedCommand::Set {
                    key,
                    value,
                    if_version,
                    ttl_ms,
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> VersionedCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            VersionedCommand::Get(key) => VersionedCommand::Get(own(key)),
            VersionedCommand::Set {
                key,
                value,
                if_version,
                ttl_ms,
            } => VersionedCommand::Set {
                key: own(key),
                value: own(value),
                if_version: *if_version,
                ttl_ms: *ttl_ms,
            },
        }
    }
}

impl<P: Payload> VersionedCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::VGET => {
                arity(args.len() == 1)?;
                VersionedCommand::Get(text_key(&args[0])?)
            }
            opcode::VSET => {
                let mut words = Words::new(spec, args);
                let (key, value) = (words.key()?, words.bytes()?);
                let (mut if_version, mut ttl_ms) = (None, None);
                words.options("syntax error in VSET options", |name, words| {
                    match name {
                        b"IFVERSION" if if_version.is_none() => if_version = Some(words.int()?),
                        b"EX" if ttl_ms.is_none() => ttl_ms = Some(words.seconds()?),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                if if_version == Some(u64::MAX) {
                    return Err(ErrorReply::new(ErrorCode::Syntax, "IFVERSION out of range"));
                }
                VersionedCommand::Set {
                    key,
                    value,
                    if_version,
                    ttl_ms,
                }
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
