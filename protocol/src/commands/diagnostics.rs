//! What a node says about its own speed: the slow log (SLOWLOG.*) and the latency
//! monitor (LATENCY.*), each kept per shard and merged when read.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// SLOWLOG.GET
    pub const SLOWLOG_GET: u16 = 0x01B0;
    /// SLOWLOG.LEN
    pub const SLOWLOG_LEN: u16 = 0x01B1;
    /// SLOWLOG.RESET
    pub const SLOWLOG_RESET: u16 = 0x01B2;
    /// LATENCY.LATEST
    pub const LATENCY_LATEST: u16 = 0x01B3;
    /// LATENCY.HISTORY
    pub const LATENCY_HISTORY: u16 = 0x01B4;
    /// LATENCY.RESET
    pub const LATENCY_RESET: u16 = 0x01B5;
}

/// Entries SLOWLOG.GET answers when no count is given, as in Redis.
pub const SLOWLOG_DEFAULT_COUNT: u64 = 10;

const fn every_shard(
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
        false,
        KeySpec::AllShards,
    )
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    every_shard(
        opcode::SLOWLOG_GET,
        "SLOWLOG.GET",
        "[count]",
        "all:u8 [count:uvarint] (all = 1: every entry, and no count follows)",
        "ARRAY of entries, newest first: ARRAY [INT id, INT unix seconds, INT microseconds, ARRAY of BYTES arguments, BYTES client address, BYTES client name]",
        "Reads the slow log: the newest count requests (10 by default, all of them for a negative count) that took longer than slowlog-log-slower-than, from every shard.",
    ),
    every_shard(
        opcode::SLOWLOG_LEN,
        "SLOWLOG.LEN",
        "",
        "(empty)",
        "INT entries held, all shards together",
        "Counts the slow log's entries.",
    ),
    every_shard(
        opcode::SLOWLOG_RESET,
        "SLOWLOG.RESET",
        "",
        "(empty)",
        "OK",
        "Empties the slow log on every shard.",
    ),
    every_shard(
        opcode::LATENCY_LATEST,
        "LATENCY.LATEST",
        "",
        "(empty)",
        "ARRAY of ARRAY [TEXT event, INT unix seconds of the latest, INT its milliseconds, INT the most milliseconds seen]",
        "Lists each latency event that took at least latency-monitor-threshold: its latest and its worst, over every shard.",
    ),
    every_shard(
        opcode::LATENCY_HISTORY,
        "LATENCY.HISTORY",
        "event",
        "event:bytes",
        "ARRAY of ARRAY [INT unix seconds, INT milliseconds], oldest first, the worst of each second",
        "Lists one event's samples (the last 160 per shard), every shard's merged.",
    ),
    every_shard(
        opcode::LATENCY_RESET,
        "LATENCY.RESET",
        "[event ...]",
        "count:uvarint event:bytes*count (0 = every event)",
        "INT event series reset, counted once per event",
        "Forgets the samples of the events named, or of every event.",
    ),
];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnosticsCommand<P = Bytes> {
    /// SLOWLOG.GET [count]: `None` reads every entry.
    SlowlogGet(Option<u64>),
    /// SLOWLOG.LEN
    SlowlogLen,
    /// SLOWLOG.RESET
    SlowlogReset,
    /// LATENCY.LATEST
    LatencyLatest,
    /// LATENCY.HISTORY event
    LatencyHistory(P),
    /// LATENCY.RESET [event ...]: none named resets every event.
    LatencyReset(Vec<P>),
}

impl<P: Payload> DiagnosticsCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            DiagnosticsCommand::SlowlogGet(_) => opcode::SLOWLOG_GET,
            DiagnosticsCommand::SlowlogLen => opcode::SLOWLOG_LEN,
            DiagnosticsCommand::SlowlogReset => opcode::SLOWLOG_RESET,
            DiagnosticsCommand::LatencyLatest => opcode::LATENCY_LATEST,
            DiagnosticsCommand::LatencyHistory(_) => opcode::LATENCY_HISTORY,
            DiagnosticsCommand::LatencyReset(_) => opcode::LATENCY_RESET,
        }
    }

    /// The single key this command touches: none here.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// How the command splits across shards: every shard answers it whole.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<DiagnosticsCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            DiagnosticsCommand::SlowlogGet(Some(count)) => {
                buf.put_u8(0);
                put_uvarint(buf, *count);
            }
            DiagnosticsCommand::SlowlogGet(None) => buf.put_u8(1),
            DiagnosticsCommand::LatencyHistory(event) => {
                crate::wire::put_bytes(buf, event.as_ref())
            }
            DiagnosticsCommand::LatencyReset(events) => put_list(buf, events),
            DiagnosticsCommand::SlowlogLen
            | DiagnosticsCommand::SlowlogReset
            | DiagnosticsCommand::LatencyLatest => {}
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::SLOWLOG_GET => match r.u8()? {
                0 => DiagnosticsCommand::SlowlogGet(Some(r.uvarint()?)),
                1 => DiagnosticsCommand::SlowlogGet(None),
                _ => return Err(DecodeError::Invalid("all must be 0 or 1")),
            },
            opcode::SLOWLOG_LEN => DiagnosticsCommand::SlowlogLen,
            opcode::SLOWLOG_RESET => DiagnosticsCommand::SlowlogReset,
            opcode::LATENCY_LATEST => DiagnosticsCommand::LatencyLatest,
            opcode::LATENCY_HISTORY => DiagnosticsCommand::LatencyHistory(r.bytes()?),
            opcode::LATENCY_RESET => {
                let count = r.count(1)?;
                DiagnosticsCommand::LatencyReset(
                    (0..count).map(|_| r.bytes()).collect::<Result<_, _>>()?,
                )
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> DiagnosticsCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            DiagnosticsCommand::SlowlogGet(count) => DiagnosticsCommand::SlowlogGet(*count),
            DiagnosticsCommand::SlowlogLen => DiagnosticsCommand::SlowlogLen,
            DiagnosticsCommand::SlowlogReset => DiagnosticsCommand::SlowlogReset,
            DiagnosticsCommand::LatencyLatest => DiagnosticsCommand::LatencyLatest,
            DiagnosticsCommand::LatencyHistory(event) => {
                DiagnosticsCommand::LatencyHistory(own(event))
            }
            DiagnosticsCommand::LatencyReset(events) => {
                DiagnosticsCommand::LatencyReset(events.iter().map(own).collect())
            }
        }
    }
}

impl<P: Payload> DiagnosticsCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::SLOWLOG_GET => {
                arity(args.len() <= 1)?;
                match args.first() {
                    None => DiagnosticsCommand::SlowlogGet(Some(SLOWLOG_DEFAULT_COUNT)),
                    // A negative count reads every entry, as in Redis.
                    Some(count) => DiagnosticsCommand::SlowlogGet(
                        u64::try_from(parse_int::<i64>(count.as_ref())?).ok(),
                    ),
                }
            }
            opcode::SLOWLOG_LEN => {
                arity(args.is_empty())?;
                DiagnosticsCommand::SlowlogLen
            }
            opcode::SLOWLOG_RESET => {
                arity(args.is_empty())?;
                DiagnosticsCommand::SlowlogReset
            }
            opcode::LATENCY_LATEST => {
                arity(args.is_empty())?;
                DiagnosticsCommand::LatencyLatest
            }
            opcode::LATENCY_HISTORY => {
                arity(args.len() == 1)?;
                DiagnosticsCommand::LatencyHistory(args[0].clone())
            }
            opcode::LATENCY_RESET => DiagnosticsCommand::LatencyReset(args.to_vec()),
            _ => return Err(not_in_family(spec)),
        })
    }
}
