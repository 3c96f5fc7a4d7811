//! Connection and node commands: PING, HELLO, INFO, DBSIZE, FLUSHALL, SNAPSHOT, LASTSAVE.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec, PROTOCOL_VERSION};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// PING
    pub const PING: u16 = 0x0001;
    /// HELLO
    pub const HELLO: u16 = 0x0002;
    /// INFO
    pub const INFO: u16 = 0x0003;
    /// DBSIZE
    pub const DBSIZE: u16 = 0x0004;
    /// FLUSHALL
    pub const FLUSHALL: u16 = 0x0005;
    /// SNAPSHOT
    pub const SNAPSHOT: u16 = 0x0006;
    /// LASTSAVE
    pub const LASTSAVE: u16 = 0x0007;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::PING,
        name: "PING",
        syntax: "[message]",
        wire: "has_message:u8 [message:bytes]",
        reply: "TEXT \"PONG\", or BYTES message",
        summary: "Checks the connection is alive.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::HELLO,
        name: "HELLO",
        syntax: "[version] [SHARD n]",
        wire: "version:u16 shard:uvarint (0 = any shard, n = shard n-1)",
        reply: "MAP {version, node_id, shards, epoch, shard, server}",
        summary: "Negotiates the protocol version and tells the client how to route; may move the connection to a chosen shard.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::INFO,
        name: "INFO",
        syntax: "",
        wire: "(empty)",
        reply: "MAP of server, totals and per-shard statistics",
        summary: "Reports per-shard operations, connections, keys, memory and latency percentiles.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::DBSIZE,
        name: "DBSIZE",
        syntax: "",
        wire: "(empty)",
        reply: "INT live keys on this node",
        summary: "Counts the keys on every shard.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::FLUSHALL,
        name: "FLUSHALL",
        syntax: "",
        wire: "(empty)",
        reply: "OK",
        summary: "Deletes every key on every shard.",
        writes: true,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::SNAPSHOT,
        name: "SNAPSHOT",
        syntax: "",
        wire: "(empty)",
        reply: "OK once every shard has begun (or was already taking) a snapshot",
        summary: "Starts a point-in-time snapshot on every shard, in the background (like BGSAVE); the log before it is then dropped.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::LASTSAVE,
        name: "LASTSAVE",
        syntax: "",
        wire: "(empty)",
        reply: "INT Unix seconds of the oldest shard's last completed snapshot (0: a shard has none)",
        summary: "Tells when every shard last completed a snapshot, so a caller can see a SNAPSHOT finish.",
        writes: false,
        keys: KeySpec::AllShards,
    },
];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand<P = Bytes> {
    /// PING [message]
    Ping(Option<P>),
    /// HELLO version [SHARD n]
    Hello {
        /// Protocol version the client speaks.
        version: u16,
        /// Shard the connection should be served by, if any.
        shard: Option<u16>,
    },
    /// INFO
    Info,
    /// DBSIZE
    DbSize,
    /// FLUSHALL
    FlushAll,
    /// SNAPSHOT
    Snapshot,
    /// LASTSAVE
    LastSave,
}

impl<P: Payload> AdminCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            AdminCommand::Ping(_) => opcode::PING,
            AdminCommand::Hello { .. } => opcode::HELLO,
            AdminCommand::Info => opcode::INFO,
            AdminCommand::DbSize => opcode::DBSIZE,
            AdminCommand::FlushAll => opcode::FLUSHALL,
            AdminCommand::Snapshot => opcode::SNAPSHOT,
            AdminCommand::LastSave => opcode::LASTSAVE,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<AdminCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            AdminCommand::Ping(message) => match message {
                Some(m) => {
                    buf.put_u8(1);
                    put_bytes(buf, m.as_ref());
                }
                None => buf.put_u8(0),
            },
            AdminCommand::Hello { version, shard } => {
                buf.put_u16_le(*version);
                put_uvarint(buf, shard.map_or(0, |s| u64::from(s) + 1));
            }
            AdminCommand::Info
            | AdminCommand::DbSize
            | AdminCommand::FlushAll
            | AdminCommand::Snapshot
            | AdminCommand::LastSave => {}
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::PING => match r.u8()? {
                0 => AdminCommand::Ping(None),
                1 => AdminCommand::Ping(Some(r.bytes()?)),
                _ => return Err(DecodeError::Invalid("has_message must be 0 or 1")),
            },
            opcode::HELLO => {
                let version = r.u16()?;
                // Shard n travels as n + 1. A number past any node's shards still reaches
                // the connection, which answers NO_SUCH_SHARD.
                let shard = match r.uvarint()? {
                    0 => None,
                    n => Some(u16::try_from(n - 1).unwrap_or(u16::MAX)),
                };
                AdminCommand::Hello { version, shard }
            }
            opcode::INFO => AdminCommand::Info,
            opcode::DBSIZE => AdminCommand::DbSize,
            opcode::FLUSHALL => AdminCommand::FlushAll,
            opcode::SNAPSHOT => AdminCommand::Snapshot,
            opcode::LASTSAVE => AdminCommand::LastSave,
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> AdminCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            AdminCommand::Ping(message) => AdminCommand::Ping(message.as_ref().map(own)),
            AdminCommand::Hello { version, shard } => AdminCommand::Hello {
                version: *version,
                shard: *shard,
            },
            AdminCommand::Info => AdminCommand::Info,
            AdminCommand::DbSize => AdminCommand::DbSize,
            AdminCommand::FlushAll => AdminCommand::FlushAll,
            AdminCommand::Snapshot => AdminCommand::Snapshot,
            AdminCommand::LastSave => AdminCommand::LastSave,
        }
    }
}

impl AdminCommand<Bytes> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[Bytes]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::PING => {
                arity(args.len() <= 1)?;
                AdminCommand::Ping(args.first().cloned())
            }
            opcode::HELLO => {
                let mut version = PROTOCOL_VERSION;
                let mut shard = None;
                let mut rest = args;
                if let Some((first, tail)) = rest.split_first() {
                    if !first.eq_ignore_ascii_case(b"SHARD") {
                        version = parse_int::<u16>(first)?;
                        rest = tail;
                    }
                }
                match rest {
                    [] => {}
                    [word, n] if word.eq_ignore_ascii_case(b"SHARD") => {
                        shard = Some(u16::try_from(parse_int::<u64>(n)?).unwrap_or(u16::MAX))
                    }
                    _ => arity(false)?,
                }
                AdminCommand::Hello { version, shard }
            }
            opcode::INFO => {
                arity(args.is_empty())?;
                AdminCommand::Info
            }
            opcode::DBSIZE => {
                arity(args.is_empty())?;
                AdminCommand::DbSize
            }
            opcode::FLUSHALL => {
                arity(args.is_empty())?;
                AdminCommand::FlushAll
            }
            opcode::SNAPSHOT => {
                arity(args.is_empty())?;
                AdminCommand::Snapshot
            }
            opcode::LASTSAVE => {
                arity(args.is_empty())?;
                AdminCommand::LastSave
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
