//! Rate limits: sliding-window and GCRA checks over up to four tiers.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec, MAX_EXPIRE_MS};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// RL.CHECK
    pub const RL_CHECK: u16 = 0x0020;
    /// RL.PEEK
    pub const RL_PEEK: u16 = 0x0021;
    /// RL.RESET
    pub const RL_RESET: u16 = 0x0022;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::RL_CHECK,
        name: "RL.CHECK",
        syntax: "key LIMIT n WINDOW ms [LIMIT n WINDOW ms ...] [COST c] [ALGO sliding|gcra] [BURST b]",
        wire: "key:bytes algo:u8 (0 sliding, 1 gcra) cost:uvarint burst:uvarint (0 = limit) count:uvarint (limit:uvarint window_ms:uvarint)*count",
        reply: "MAP {allowed: BOOL, remaining: INT, reset_after_ms: INT, retry_after_ms: INT (0 if allowed, -1 if never)}",
        summary: "Checks cost units against every tier and consumes them from all tiers or from none.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::RL_PEEK,
        name: "RL.PEEK",
        syntax: "key LIMIT n WINDOW ms [LIMIT n WINDOW ms ...] [COST c] [ALGO sliding|gcra] [BURST b]",
        wire: "as RL.CHECK",
        reply: "as RL.CHECK",
        summary: "Answers what RL.CHECK would, without consuming anything.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::RL_RESET,
        name: "RL.RESET",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT 1 if there was state to forget, else 0",
        summary: "Forgets a rate limit's state, as if the key had never been checked.",
        writes: true,
        keys: KeySpec::Single,
    },
];

/// Most tiers one rate-limit key checks at once.
pub const MAX_TIERS: usize = 4;

/// One rate-limit tier: at most `limit` units per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tier {
    /// Units allowed per window.
    pub limit: u64,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

/// The tiers of one check, held inline (no allocation per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tiers {
    len: u8,
    items: [Tier; MAX_TIERS],
}

impl Tiers {
    /// Builds a list from 1 ..= `MAX_TIERS` tiers.
    pub fn new(tiers: &[Tier]) -> Option<Tiers> {
        if tiers.is_empty() || tiers.len() > MAX_TIERS {
            return None;
        }
        let mut items = [Tier::default(); MAX_TIERS];
        items[..tiers.len()].copy_from_slice(tiers);
        Some(Tiers {
            len: tiers.len() as u8,
            items,
        })
    }

    /// The tiers.
    pub fn as_slice(&self) -> &[Tier] {
        &self.items[..usize::from(self.len)]
    }
}

/// Rate-limit algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Sliding-window counter: two fixed buckets, the older weighted by its overlap.
    #[default]
    Sliding,
    /// Generic cell rate algorithm: even pacing with a burst allowance.
    Gcra,
}

/// Arguments of RL.CHECK and RL.PEEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit<P = Bytes> {
    /// Key holding the state.
    pub key: P,
    /// How units are counted.
    pub algorithm: Algorithm,
    /// Units this request costs.
    pub cost: u64,
    /// GCRA only: units that may arrive at once; 0 means the tier's limit.
    pub burst: u64,
    /// Limits that must all allow the request.
    pub tiers: Tiers,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitCommand<P = Bytes> {
    /// RL.CHECK key LIMIT n WINDOW ms ...
    Check(RateLimit<P>),
    /// RL.PEEK key LIMIT n WINDOW ms ...
    Peek(RateLimit<P>),
    /// RL.RESET key
    Reset(P),
}

impl<P: Payload> LimitCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            LimitCommand::Check(_) => opcode::RL_CHECK,
            LimitCommand::Peek(_) => opcode::RL_PEEK,
            LimitCommand::Reset(_) => opcode::RL_RESET,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            LimitCommand::Check(limit) | LimitCommand::Peek(limit) => Some(&limit.key),
            LimitCommand::Reset(key) => Some(key),
        }
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<LimitCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            LimitCommand::Check(limit) | LimitCommand::Peek(limit) => {
                put_bytes(buf, limit.key.as_ref());
                buf.put_u8(match limit.algorithm {
                    Algorithm::Sliding => 0,
                    Algorithm::Gcra => 1,
                });
                put_uvarint(buf, limit.cost);
                put_uvarint(buf, limit.burst);
                put_uvarint(buf, limit.tiers.as_slice().len() as u64);
                for tier in limit.tiers.as_slice() {
                    put_uvarint(buf, tier.limit);
                    put_uvarint(buf, tier.window_ms);
                }
            }
            LimitCommand::Reset(key) => put_bytes(buf, key.as_ref()),
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::RL_CHECK => LimitCommand::Check(read_rate_limit(r)?),
            opcode::RL_PEEK => LimitCommand::Peek(read_rate_limit(r)?),
            opcode::RL_RESET => LimitCommand::Reset(read_key(r)?),
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> LimitCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_rate_limit = |limit: &RateLimit<P>| RateLimit {
            key: own(&limit.key),
            algorithm: limit.algorithm,
            cost: limit.cost,
            burst: limit.burst,
            tiers: limit.tiers,
        };
        match self {
            LimitCommand::Check(limit) => LimitCommand::Check(own_rate_limit(limit)),
            LimitCommand::Peek(limit) => LimitCommand::Peek(own_rate_limit(limit)),
            LimitCommand::Reset(key) => LimitCommand::Reset(own(key)),
        }
    }
}

impl<P: Payload> LimitCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::RL_CHECK | opcode::RL_PEEK => {
                let limit = parse_rate_limit(spec, args)?;
                if spec.opcode == opcode::RL_CHECK {
                    LimitCommand::Check(limit)
                } else {
                    LimitCommand::Peek(limit)
                }
            }
            opcode::RL_RESET => {
                arity(args.len() == 1)?;
                LimitCommand::Reset(text_key(&args[0])?)
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}

/// Checks a rate limit's shape: 1 ..= `MAX_TIERS` tiers with limits and costs that fit
/// the 32-bit counters, windows within the expiry range, and GCRA with exactly one tier.
fn validate_rate_limit<P>(limit: &RateLimit<P>) -> Result<(), &'static str> {
    let max_units = u64::from(u32::MAX);
    for tier in limit.tiers.as_slice() {
        if !(1..=max_units).contains(&tier.limit) {
            return Err("LIMIT must be between 1 and 2^32-1");
        }
        if !(1..=MAX_EXPIRE_MS as u64).contains(&tier.window_ms) {
            return Err("WINDOW must be between 1 ms and 100 years");
        }
    }
    if limit.cost > max_units || limit.burst > max_units {
        return Err("COST and BURST must be at most 2^32-1");
    }
    match limit.algorithm {
        Algorithm::Gcra if limit.tiers.as_slice().len() != 1 => {
            Err("ALGO gcra takes exactly one LIMIT/WINDOW")
        }
        Algorithm::Sliding if limit.burst != 0 => Err("BURST applies to ALGO gcra only"),
        _ => Ok(()),
    }
}

fn read_rate_limit<P: Payload>(r: &mut Reader<P>) -> Result<RateLimit<P>, DecodeError> {
    let key = read_key(r)?;
    let algorithm = match r.u8()? {
        0 => Algorithm::Sliding,
        1 => Algorithm::Gcra,
        _ => return Err(DecodeError::Invalid("unknown rate-limit algorithm")),
    };
    let cost = r.uvarint()?;
    let burst = r.uvarint()?;
    let count = r.count(2)?;
    if count == 0 || count > MAX_TIERS {
        return Err(DecodeError::Invalid("a rate limit has 1 to 4 tiers"));
    }
    let mut tiers = [Tier::default(); MAX_TIERS];
    for tier in tiers.iter_mut().take(count) {
        *tier = Tier {
            limit: r.uvarint()?,
            window_ms: r.uvarint()?,
        };
    }
    let limit = RateLimit {
        key,
        algorithm,
        cost,
        burst,
        tiers: Tiers::new(&tiers[..count])
            .ok_or(DecodeError::Invalid("a rate limit has 1 to 4 tiers"))?,
    };
    validate_rate_limit(&limit).map_err(DecodeError::Invalid)?;
    Ok(limit)
}

fn parse_rate_limit<P: Payload>(
    spec: &'static CommandSpec,
    args: &[P],
) -> Result<RateLimit<P>, ErrorReply> {
    let syntax = |message: &str| ErrorReply::new(ErrorCode::Syntax, message);
    let mut words = Words::new(spec, args);
    let mut tiers = Vec::new();
    let mut limit = RateLimit {
        key: words.key()?,
        algorithm: Algorithm::Sliding,
        cost: 1,
        burst: 0,
        tiers: Tiers::default(),
    };
    words.options("syntax error in rate-limit options", |name, words| {
        match name {
            b"LIMIT" => {
                let n = words.int::<u64>()?;
                if !words.eat("WINDOW") {
                    return Err(syntax("LIMIT n must be followed by WINDOW ms"));
                }
                tiers.push(Tier {
                    limit: n,
                    window_ms: words.int::<u64>()?,
                });
            }
            b"COST" => limit.cost = words.int::<u64>()?,
            b"BURST" => limit.burst = words.int::<u64>()?,
            b"ALGO" => {
                limit.algorithm = match words.text()?.to_ascii_lowercase().as_slice() {
                    b"sliding" => Algorithm::Sliding,
                    b"gcra" => Algorithm::Gcra,
                    _ => return Err(syntax("ALGO is sliding or gcra")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    limit.tiers =
        Tiers::new(&tiers).ok_or_else(|| syntax("give 1 to 4 LIMIT n WINDOW ms tiers"))?;
    validate_rate_limit(&limit).map_err(syntax)?;
    Ok(limit)
}
