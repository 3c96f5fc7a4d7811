//! Transactions: TX carries commands whose keys share one slot and runs them on its owner
//! as one step, nothing else running between them; RESP's MULTI/EXEC is built on it.

use bytes::{Bytes, BytesMut};

use super::arg::Words;
use super::split::Split;
use super::{Command, CommandSpec, KeySpec};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// TX
    pub const TX: u16 = 0x0160;
}

/// Most commands one transaction may carry.
pub const MAX_TX_COMMANDS: usize = 10_000;

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[CommandSpec {
    opcode: opcode::TX,
    name: "TX",
    syntax: "command [; command ...]",
    wire: "count:uvarint body:bytes*count (each a command's opcode and arguments)",
    reply: "ARRAY of each command's reply, in order (an error among them does not stop the rest)",
    summary: "Runs commands whose keys share one slot as one atomic step.",
    writes: true,
    keys: KeySpec::OneSlot,
}];

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxCommand<P = Bytes> {
    /// TX command; command; ...
    Tx(Vec<Command<P>>),
}

/// Why a command may not be part of a transaction, if it may not: it must name keys (or
/// be PING) and run whole on one shard.
pub fn refusal_in_tx(spec: &CommandSpec) -> Option<&'static str> {
    let whole_on_one_shard = matches!(
        spec.keys,
        KeySpec::Single | KeySpec::OneSlot | KeySpec::Many | KeySpec::Pairs
    );
    if spec.opcode == opcode::TX {
        Some("a transaction cannot hold another")
    } else if spec.opcode == super::admin::opcode::PING {
        None
    } else if !whole_on_one_shard || super::family_of(spec) == "geo" {
        Some("the command cannot run inside a transaction")
    } else {
        None
    }
}

impl<P: Payload> TxCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        opcode::TX
    }

    /// None: the owner is the slot every key shares.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// Calls `visit` with every key of every command.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        let TxCommand::Tx(commands) = self;
        commands
            .iter()
            .for_each(|command| command.for_each_key(visit));
    }

    /// How the command splits across shards: it never does.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<TxCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        let TxCommand::Tx(commands) = self;
        put_uvarint(buf, commands.len() as u64);
        let mut body = BytesMut::new();
        for command in commands {
            body.clear();
            command.encode(&mut body);
            put_bytes(buf, &body);
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        if op != opcode::TX {
            return Err(DecodeError::UnknownOpcode(op));
        }
        let count = r.count(3)?;
        if count > MAX_TX_COMMANDS {
            return Err(DecodeError::Invalid(
                "a transaction holds at most 10000 commands",
            ));
        }
        let mut commands = Vec::with_capacity(count);
        for _ in 0..count {
            let body = r.bytes()?;
            // Refused before it is decoded, so nested bodies cannot recurse deeply.
            if body.as_ref().get(..2) == Some(&opcode::TX.to_le_bytes()[..]) {
                return Err(DecodeError::Invalid("a transaction cannot hold another"));
            }
            let command = Command::decode(body)?;
            if let Some(why) = refusal_in_tx(command.spec()) {
                return Err(DecodeError::Invalid(why));
            }
            commands.push(command);
        }
        Ok(TxCommand::Tx(commands))
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> TxCommand<Bytes> {
        let TxCommand::Tx(commands) = self;
        TxCommand::Tx(commands.iter().map(Command::to_owned_bytes).collect())
    }
}

impl<P: Payload> TxCommand<P> {
    /// Parses `command [; command ...]`: each command's words, separated by `;`.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let words = Words::new(spec, args);
        let mut commands = Vec::new();
        for part in args.split(|word| word.as_ref() == b";") {
            if part.is_empty() {
                return Err(words.arity());
            }
            if part[0].as_ref().eq_ignore_ascii_case(spec.name.as_bytes()) {
                // Refused before it is parsed, so nested words cannot recurse deeply.
                return Err(ErrorReply::new(
                    crate::ErrorCode::Syntax,
                    "a transaction cannot hold another",
                ));
            }
            let command = Command::parse_words(part)?;
            if let Some(why) = refusal_in_tx(command.spec()) {
                return Err(ErrorReply::new(crate::ErrorCode::Syntax, why));
            }
            commands.push(command);
        }
        if commands.len() > MAX_TX_COMMANDS {
            return Err(ErrorReply::new(
                crate::ErrorCode::TooManyElements,
                "a transaction holds at most 10000 commands",
            ));
        }
        Ok(TxCommand::Tx(commands))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::from(w.to_string()))
            .collect()
    }

    #[test]
    fn a_transaction_reads_back_and_visits_every_key() {
        let command =
            Command::parse_words(&words("TX SET {u}a 1 ; INCRBY {u}a 2 ; MGET {u}a {u}b")).unwrap();
        let mut body = BytesMut::new();
        command.encode(&mut body);
        assert_eq!(Command::decode(body.freeze()).unwrap(), command);
        let mut keys = Vec::new();
        command.for_each_key(&mut |key| keys.push(String::from_utf8_lossy(key).into_owned()));
        assert_eq!(keys, ["{u}a", "{u}a", "{u}a", "{u}b"]);
    }

    #[test]
    fn commands_that_cannot_run_on_one_shard_are_refused() {
        for line in [
            "TX TX GET a",
            "TX FLUSHALL",
            "TX KEYS *",
            "TX GET a ; ; GET b",
        ] {
            assert!(Command::parse_words(&words(line)).is_err(), "{line}");
        }
        let mut body = BytesMut::new();
        Command::parse_words(&words("DBSIZE"))
            .unwrap()
            .encode(&mut body);
        let mut tx = BytesMut::new();
        bytes::BufMut::put_u16_le(&mut tx, opcode::TX);
        put_uvarint(&mut tx, 1);
        put_bytes(&mut tx, &body);
        assert!(Command::decode(tx.freeze()).is_err());
    }

    #[test]
    fn deeply_nested_bodies_are_refused_without_recursing() {
        let mut body = BytesMut::new();
        Command::parse_words(&words("PING"))
            .unwrap()
            .encode(&mut body);
        for _ in 0..1_000 {
            let mut outer = BytesMut::new();
            bytes::BufMut::put_u16_le(&mut outer, opcode::TX);
            put_uvarint(&mut outer, 1);
            put_bytes(&mut outer, &body);
            body = outer;
        }
        assert_eq!(
            Command::decode(body.freeze()),
            Err(DecodeError::Invalid("a transaction cannot hold another"))
        );
    }
}
