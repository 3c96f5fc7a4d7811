//! The string commands read from text, with Redis's options and refusals.

use crate::wire::Payload;

use super::{opcode, GetExpiry, StringCommand, BIT_OFFSET_LIMIT};
use crate::commands::arg::{parse_float, Words};
use crate::commands::hashes::{ExpireCondition, Finite, TimeUnit};
use crate::commands::CommandSpec;
use crate::error::ErrorCode;
use crate::value::ErrorReply;

/// `invalid expire time in 'getex' command`, as Redis words it.
fn invalid_expire(command: &str) -> ErrorReply {
    ErrorReply::new(
        ErrorCode::InvalidExpire,
        format!("invalid expire time in '{command}' command"),
    )
}

/// Reads `[NX|XX|GT|LT]` to the end of the words, refusing Redis's incompatible pairs.
pub(crate) fn expire_condition<P: Payload>(
    words: &mut Words<'_, P>,
) -> Result<ExpireCondition, ErrorReply> {
    let mut condition = ExpireCondition::Always;
    let incompatible = |message: &str| ErrorReply::new(ErrorCode::Syntax, message);
    words.options("", |name, _| {
        let next = match name {
            b"NX" => ExpireCondition::IfNone,
            b"XX" => ExpireCondition::IfSome,
            b"GT" => ExpireCondition::IfLater,
            b"LT" => ExpireCondition::IfEarlier,
            other => {
                return Err(ErrorReply::new(
                    ErrorCode::Syntax,
                    format!("Unsupported option {}", String::from_utf8_lossy(other)),
                ))
            }
        };
        condition = match (condition, next) {
            (ExpireCondition::Always, next) => next,
            (same, next) if same == next => next,
            (ExpireCondition::IfNone, _) | (_, ExpireCondition::IfNone) => {
                return Err(incompatible(
                    "NX and XX, GT or LT options at the same time are not compatible",
                ))
            }
            (ExpireCondition::IfLater, ExpireCondition::IfEarlier)
            | (
                ExpireCondition::IfEarlier | ExpireCondition::IfSomeEarlier,
                ExpireCondition::IfLater,
            ) => {
                return Err(incompatible(
                    "GT and LT options at the same time are not compatible",
                ))
            }
            // XX with GT: GT already fails without an expiry, no expiry being forever.
            (ExpireCondition::IfSome, ExpireCondition::IfLater)
            | (ExpireCondition::IfLater, ExpireCondition::IfSome) => ExpireCondition::IfLater,
            _ => ExpireCondition::IfSomeEarlier,
        };
        Ok(true)
    })?;
    Ok(condition)
}

impl<P: Payload> StringCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let unit = match spec.opcode {
            opcode::EXPIREAT | opcode::EXPIRETIME => TimeUnit::Seconds,
            _ => TimeUnit::Millis,
        };
        let command = match spec.opcode {
            opcode::APPEND => StringCommand::Append {
                key: words.key()?,
                value: words.bytes()?,
            },
            opcode::STRLEN => StringCommand::Strlen(words.key()?),
            opcode::GETDEL => StringCommand::GetDel(words.key()?),
            opcode::GETRANGE => StringCommand::GetRange {
                key: words.key()?,
                start: words.int()?,
                end: words.int()?,
            },
            opcode::SETRANGE => {
                let key = words.key()?;
                let offset: i64 = words.int()?;
                let offset = u64::try_from(offset)
                    .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "offset is out of range"))?;
                StringCommand::SetRange {
                    key,
                    offset,
                    value: words.bytes()?,
                }
            }
            opcode::GETEX => {
                let key = words.key()?;
                let expiry = parse_getex(&mut words)?;
                StringCommand::GetEx { key, expiry }
            }
            opcode::INCRBYFLOAT => {
                let key = words.key()?;
                let delta = parse_float(words.text()?)?;
                StringCommand::IncrByFloat {
                    key,
                    delta: Finite::new(delta).unwrap_or(Finite::ZERO),
                }
            }
            opcode::MSETNX => {
                if words.remaining() == 0 || !words.remaining().is_multiple_of(2) {
                    return Err(words.arity());
                }
                let mut pairs = Vec::with_capacity(words.remaining() / 2);
                while words.remaining() > 0 {
                    pairs.push((words.key()?, words.bytes()?));
                }
                StringCommand::MSetNx(pairs)
            }
            opcode::EXPIREAT | opcode::PEXPIREAT => {
                let key = words.key()?;
                let at: i64 = words.int()?;
                if unit == TimeUnit::Seconds && at.checked_mul(1000).is_none() {
                    return Err(invalid_expire(&spec.name.to_ascii_lowercase()));
                }
                StringCommand::ExpireAt {
                    key,
                    at,
                    unit,
                    condition: expire_condition(&mut words)?,
                }
            }
            opcode::EXPIRETIME | opcode::PEXPIRETIME => StringCommand::ExpireTime {
                key: words.key()?,
                unit,
            },
            opcode::SETBIT | opcode::GETBIT => {
                let key = words.key()?;
                let out_of_range = |what: &str| {
                    ErrorReply::new(
                        ErrorCode::NotInteger,
                        format!("{what} is not an integer or out of range"),
                    )
                };
                let offset = words
                    .int::<u64>()
                    .ok()
                    .filter(|offset| *offset < BIT_OFFSET_LIMIT)
                    .ok_or_else(|| out_of_range("bit offset"))?;
                if spec.opcode == opcode::GETBIT {
                    StringCommand::GetBit { key, offset }
                } else {
                    let bit = match words.text()? {
                        b"0" => false,
                        b"1" => true,
                        _ => return Err(out_of_range("bit")),
                    };
                    StringCommand::SetBit { key, offset, bit }
                }
            }
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}

/// GETEX's one optional expiry.
fn parse_getex<P: Payload>(words: &mut Words<'_, P>) -> Result<GetExpiry, ErrorReply> {
    let syntax = || ErrorReply::new(ErrorCode::Syntax, "syntax error");
    let mut expiry = GetExpiry::Keep;
    words.options("syntax error", |name, words| {
        if expiry != GetExpiry::Keep {
            return Err(syntax());
        }
        let scale = match name {
            b"PERSIST" => {
                expiry = GetExpiry::Persist;
                return Ok(true);
            }
            b"EX" | b"EXAT" => 1000,
            b"PX" | b"PXAT" => 1,
            _ => return Ok(false),
        };
        let n: i64 = words.int()?;
        let ms = n
            .checked_mul(scale)
            .filter(|ms| *ms > 0)
            .ok_or_else(|| invalid_expire("getex"))?;
        expiry = if name.ends_with(b"AT") {
            GetExpiry::At(ms as u64)
        } else if ms > crate::commands::MAX_EXPIRE_MS {
            return Err(invalid_expire("getex"));
        } else {
            GetExpiry::In(ms as u64)
        };
        Ok(true)
    })?;
    Ok(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;
    use bytes::BytesMut;

    fn parse(line: &str) -> Result<Command, ErrorReply> {
        let words: Vec<bytes::Bytes> = line
            .split(' ')
            .map(|w| bytes::Bytes::from(w.to_string()))
            .collect();
        Command::parse_words(&words)
    }

    fn round_trip(line: &str) -> Command {
        let command = parse(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        let mut body = BytesMut::new();
        command.encode(&mut body);
        let decoded = Command::decode(body.freeze()).unwrap();
        assert_eq!(decoded, command, "{line}");
        command
    }

    #[test]
    fn every_command_reads_back_from_its_encoding() {
        for line in [
            "APPEND k abc",
            "STRLEN k",
            "GETRANGE k 0 -1",
            "SETRANGE k 5 xyz",
            "GETDEL k",
            "GETEX k",
            "GETEX k PERSIST",
            "GETEX k EX 10",
            "GETEX k PXAT 1700000000000",
            "INCRBYFLOAT k -1.5",
            "MSETNX {t}a 1 {t}b 2",
            "EXPIREAT k 1700000000 GT",
            "PEXPIREAT k 1700000000000",
            "EXPIRETIME k",
            "PEXPIRETIME k",
            "EXPIRE k 10 NX",
            "SETBIT k 7 1",
            "GETBIT k 4294967295",
            "PEXPIRE k 10 LT",
        ] {
            round_trip(line);
        }
        let Command::Strings(StringCommand::ExpireAt { condition, .. }) =
            round_trip("EXPIREAT k 10 xx gt")
        else {
            panic!("EXPIREAT parses to ExpireAt");
        };
        assert_eq!(condition, ExpireCondition::IfLater);
    }

    #[test]
    fn bad_arguments_are_refused_in_redis_words() {
        let message = |line: &str| parse(line).unwrap_err().message;
        assert_eq!(
            message("GETEX k EX 0"),
            "invalid expire time in 'getex' command"
        );
        assert_eq!(message("GETEX k EX 10 PERSIST"), "syntax error");
        assert_eq!(message("SETRANGE k -1 x"), "offset is out of range");
        assert_eq!(
            message("EXPIREAT k 10 NX XX"),
            "NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            message("EXPIREAT k 10 GT LT"),
            "GT and LT options at the same time are not compatible"
        );
        assert_eq!(message("EXPIREAT k 10 SOON"), "Unsupported option SOON");
        assert_eq!(
            message("EXPIREAT k 9223372036854775807"),
            "invalid expire time in 'expireat' command"
        );
        assert!(parse("INCRBYFLOAT k abc").is_err());
        assert_eq!(
            message("SETBIT k 4294967296 1"),
            "bit offset is not an integer or out of range"
        );
        assert_eq!(
            message("SETBIT k 0 2"),
            "bit is not an integer or out of range"
        );
        assert!(parse("MSETNX a 1 b").is_err());
    }
}
