//! Publish/subscribe: channels a connection subscribes to, glob patterns over channel
//! names, and PUBLISH, whose messages reach subscribers as push frames.
//!
//! A message push is `ARRAY ["message", channel, payload]`, or for a pattern
//! `ARRAY ["pmessage", pattern, channel, payload]`.

use bytes::{Bytes, BytesMut};

use super::arg::{put_list, read_key, Words};
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// SUBSCRIBE
    pub const SUBSCRIBE: u16 = 0x0180;
    /// UNSUBSCRIBE
    pub const UNSUBSCRIBE: u16 = 0x0181;
    /// PSUBSCRIBE
    pub const PSUBSCRIBE: u16 = 0x0182;
    /// PUNSUBSCRIBE
    pub const PUNSUBSCRIBE: u16 = 0x0183;
    /// PUBLISH
    pub const PUBLISH: u16 = 0x0184;
    /// PUBLISH.LOCAL
    pub const PUBLISH_LOCAL: u16 = 0x0185;
}

/// Most channels and patterns one connection may subscribe to.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 100_000;

const fn row(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
    keys: KeySpec,
) -> CommandSpec {
    super::spec_row(opcode, name, syntax, wire, reply, summary, false, keys)
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(
        opcode::SUBSCRIBE,
        "SUBSCRIBE",
        "channel [channel ...]",
        "count:uvarint (>= 1) channel:bytes*count",
        "INT the connection's subscriptions (channels and patterns) after; messages follow as pushes",
        "Subscribes the connection to channels.",
        KeySpec::Watch,
    ),
    row(
        opcode::UNSUBSCRIBE,
        "UNSUBSCRIBE",
        "[channel ...]",
        "count:uvarint channel:bytes*count (none: every channel)",
        "INT the connection's subscriptions after",
        "Ends subscriptions to channels, or to every channel.",
        KeySpec::Watch,
    ),
    row(
        opcode::PSUBSCRIBE,
        "PSUBSCRIBE",
        "pattern [pattern ...]",
        "count:uvarint (>= 1) pattern:bytes*count",
        "INT the connection's subscriptions after",
        "Subscribes the connection to every channel matching glob patterns.",
        KeySpec::Watch,
    ),
    row(
        opcode::PUNSUBSCRIBE,
        "PUNSUBSCRIBE",
        "[pattern ...]",
        "count:uvarint pattern:bytes*count (none: every pattern)",
        "INT the connection's subscriptions after",
        "Ends pattern subscriptions, or every one.",
        KeySpec::Watch,
    ),
    row(
        opcode::PUBLISH,
        "PUBLISH",
        "channel message",
        "channel:bytes message:bytes",
        "INT subscriptions the message was pushed to (channel and pattern ones)",
        "Sends a message to the channel's subscribers; in a cluster every other node passes it to its own.",
        KeySpec::None,
    ),
    row(
        opcode::PUBLISH_LOCAL,
        "PUBLISH.LOCAL",
        "channel message",
        "channel:bytes message:bytes",
        "INT subscriptions on this node the message was pushed to",
        "Sends a message to the channel's subscribers on this node only: how the nodes of a cluster pass on each other's PUBLISH.",
        KeySpec::None,
    ),
];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubCommand<P = Bytes> {
    /// SUBSCRIBE / PSUBSCRIBE
    Subscribe {
        /// Channels, or patterns.
        names: Vec<P>,
        /// Whether they are patterns (PSUBSCRIBE).
        patterns: bool,
    },
    /// UNSUBSCRIBE / PUNSUBSCRIBE
    Unsubscribe {
        /// Channels, or patterns; none for every one.
        names: Vec<P>,
        /// Whether they are patterns (PUNSUBSCRIBE).
        patterns: bool,
    },
    /// PUBLISH / PUBLISH.LOCAL channel message
    Publish {
        /// Channel.
        channel: P,
        /// Payload.
        message: P,
        /// Whether it stays on this node (PUBLISH.LOCAL, a cluster peer passing it on).
        local: bool,
    },
}

impl<P: Payload> PubSubCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            PubSubCommand::Subscribe {
                patterns: false, ..
            } => opcode::SUBSCRIBE,
            PubSubCommand::Subscribe { .. } => opcode::PSUBSCRIBE,
            PubSubCommand::Unsubscribe {
                patterns: false, ..
            } => opcode::UNSUBSCRIBE,
            PubSubCommand::Unsubscribe { .. } => opcode::PUNSUBSCRIBE,
            PubSubCommand::Publish { local: false, .. } => opcode::PUBLISH,
            PubSubCommand::Publish { .. } => opcode::PUBLISH_LOCAL,
        }
    }

    /// None: channels are not keys.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// How the command splits across shards: the coordinator routes channels itself.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<PubSubCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            PubSubCommand::Subscribe { names, .. } | PubSubCommand::Unsubscribe { names, .. } => {
                put_list(buf, names)
            }
            PubSubCommand::Publish {
                channel, message, ..
            } => {
                put_bytes(buf, channel.as_ref());
                put_bytes(buf, message.as_ref());
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        let names = |r: &mut Reader<P>, at_least_one: bool| {
            let count = r.count(1)?;
            if at_least_one && count == 0 {
                return Err(DecodeError::Invalid("at least one channel is required"));
            }
            (0..count)
                .map(|_| read_key(r))
                .collect::<Result<Vec<_>, _>>()
        };
        let patterns = matches!(op, opcode::PSUBSCRIBE | opcode::PUNSUBSCRIBE);
        Ok(match op {
            opcode::SUBSCRIBE | opcode::PSUBSCRIBE => PubSubCommand::Subscribe {
                names: names(r, true)?,
                patterns,
            },
            opcode::UNSUBSCRIBE | opcode::PUNSUBSCRIBE => PubSubCommand::Unsubscribe {
                names: names(r, false)?,
                patterns,
            },
            opcode::PUBLISH | opcode::PUBLISH_LOCAL => PubSubCommand::Publish {
                channel: read_key(r)?,
                message: r.bytes()?,
                local: op == opcode::PUBLISH_LOCAL,
            },
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> PubSubCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            PubSubCommand::Subscribe { names, patterns } => PubSubCommand::Subscribe {
                names: names.iter().map(own).collect(),
                patterns: *patterns,
            },
            PubSubCommand::Unsubscribe { names, patterns } => PubSubCommand::Unsubscribe {
                names: names.iter().map(own).collect(),
                patterns: *patterns,
            },
            PubSubCommand::Publish {
                channel,
                message,
                local,
            } => PubSubCommand::Publish {
                channel: own(channel),
                message: own(message),
                local: *local,
            },
        }
    }
}

impl<P: Payload> PubSubCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let patterns = matches!(spec.opcode, opcode::PSUBSCRIBE | opcode::PUNSUBSCRIBE);
        let command = match spec.opcode {
            opcode::SUBSCRIBE | opcode::PSUBSCRIBE => {
                if args.is_empty() {
                    return Err(words.arity());
                }
                PubSubCommand::Subscribe {
                    names: (0..args.len())
                        .map(|_| words.key())
                        .collect::<Result<_, _>>()?,
                    patterns,
                }
            }
            opcode::UNSUBSCRIBE | opcode::PUNSUBSCRIBE => PubSubCommand::Unsubscribe {
                names: (0..args.len())
                    .map(|_| words.key())
                    .collect::<Result<_, _>>()?,
                patterns,
            },
            opcode::PUBLISH | opcode::PUBLISH_LOCAL => PubSubCommand::Publish {
                channel: words.key()?,
                message: words.bytes()?,
                local: spec.opcode == opcode::PUBLISH_LOCAL,
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

    #[test]
    fn every_form_reads_back_from_its_encoding() {
        for line in [
            "SUBSCRIBE news chat",
            "UNSUBSCRIBE",
            "UNSUBSCRIBE news",
            "PSUBSCRIBE chat:*",
            "PUNSUBSCRIBE",
            "PUBLISH chat:1 hello",
            "PUBLISH.LOCAL chat:1 hello",
        ] {
            let words: Vec<Bytes> = line
                .split(' ')
                .map(|w| Bytes::from(w.to_string()))
                .collect();
            let command = Command::parse_words(&words).unwrap();
            let mut body = BytesMut::new();
            command.encode(&mut body);
            assert_eq!(Command::decode(body.freeze()).unwrap(), command, "{line}");
        }
        assert!(Command::parse_words(&[Bytes::from_static(b"SUBSCRIBE")]).is_err());
    }
}
