//! Hash commands as text: the words after the name, redis-cli style.

use crate::wire::Payload;

use super::super::arg::{parse_float, Words};
use super::super::{CommandSpec, MAX_KEY_BYTES};
use super::{checked_field_ttl, opcode, ExpireCondition, Finite, HashCommand, TimeUnit};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;

impl<P: Payload> HashCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let key = words.key()?;
        let command = match spec.opcode {
            opcode::HSET => {
                if words.remaining() == 0 || !words.remaining().is_multiple_of(2) {
                    return Err(words.arity());
                }
                let mut pairs = Vec::with_capacity(words.remaining() / 2);
                while words.remaining() > 0 {
                    pairs.push((text_field(words.bytes()?)?, words.bytes()?));
                }
                HashCommand::Set { key, pairs }
            }
            opcode::HSETNX => HashCommand::SetNx {
                key,
                field: text_field(words.bytes()?)?,
                value: words.bytes()?,
            },
            opcode::HGET => HashCommand::Get {
                key,
                field: text_field(words.bytes()?)?,
            },
            opcode::HEXISTS => HashCommand::Exists {
                key,
                field: text_field(words.bytes()?)?,
            },
            opcode::HSTRLEN => HashCommand::StrLen {
                key,
                field: text_field(words.bytes()?)?,
            },
            opcode::HMGET | opcode::HDEL => {
                let fields = text_fields(words.rest())?;
                if fields.is_empty() {
                    return Err(words.arity());
                }
                if spec.opcode == opcode::HMGET {
                    HashCommand::MGet { key, fields }
                } else {
                    HashCommand::Del { key, fields }
                }
            }
            opcode::HRANDFIELD => {
                let count = match words.remaining() {
                    0 => None,
                    _ => {
                        let n: i64 = words.int()?;
                        let with_values = words.eat("WITHVALUES");
                        // Redis's bound: a pair count past it would overflow.
                        let bound = if with_values { i64::MAX / 2 } else { i64::MAX };
                        if !(-bound..=bound).contains(&n) {
                            return Err(ErrorReply::new(
                                ErrorCode::Syntax,
                                "value is out of range",
                            ));
                        }
                        Some((n, with_values))
                    }
                };
                HashCommand::RandField { key, count }
            }
            opcode::HGETALL => HashCommand::GetAll(key),
            opcode::HKEYS => HashCommand::Keys(key),
            opcode::HVALS => HashCommand::Vals(key),
            opcode::HLEN => HashCommand::Len(key),
            opcode::HINCRBY => HashCommand::IncrBy {
                key,
                field: text_field(words.bytes()?)?,
                delta: words.int()?,
            },
            opcode::HINCRBYFLOAT => {
                let field = text_field(words.bytes()?)?;
                let delta = Finite::new(parse_float(words.text()?)?)
                    .filter(|d| d.get().is_finite())
                    .ok_or_else(|| {
                        ErrorReply::new(ErrorCode::NotFloat, "value is NaN or Infinity")
                    })?;
                HashCommand::IncrByFloat { key, field, delta }
            }
            opcode::HEXPIRE | opcode::HPEXPIRE => {
                let unit = if spec.opcode == opcode::HEXPIRE {
                    TimeUnit::Seconds
                } else {
                    TimeUnit::Millis
                };
                let ttl: i64 = words.int()?;
                let ttl = u64::try_from(ttl)
                    .map_err(|_| DecodeError::InvalidExpire)
                    .and_then(|ttl| checked_field_ttl(ttl, unit))
                    .map_err(|_| {
                        ErrorReply::new(ErrorCode::InvalidExpire, "invalid expire time")
                    })?;
                let condition = if words.eat("NX") {
                    ExpireCondition::IfNone
                } else if words.eat("XX") {
                    ExpireCondition::IfSome
                } else if words.eat("GT") {
                    ExpireCondition::IfLater
                } else if words.eat("LT") {
                    ExpireCondition::IfEarlier
                } else {
                    ExpireCondition::Always
                };
                HashCommand::Expire {
                    key,
                    ttl,
                    unit,
                    condition,
                    fields: text_field_list(&mut words)?,
                }
            }
            opcode::HTTL | opcode::HPTTL => HashCommand::Ttl {
                key,
                unit: if spec.opcode == opcode::HTTL {
                    TimeUnit::Seconds
                } else {
                    TimeUnit::Millis
                },
                fields: text_field_list(&mut words)?,
            },
            opcode::HPERSIST => HashCommand::Persist {
                key,
                fields: text_field_list(&mut words)?,
            },
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}

const FIELDS: &str = "FIELDS numfields field [field ...]";

fn text_field<P: Payload>(word: P) -> Result<P, ErrorReply> {
    if word.as_ref().len() > MAX_KEY_BYTES {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "a field name exceeds 65536 bytes",
        ));
    }
    Ok(word)
}

fn text_fields<P: Payload>(words: &[P]) -> Result<Vec<P>, ErrorReply> {
    words.iter().cloned().map(text_field).collect()
}

/// `FIELDS numfields field...`, the count matching the fields given.
fn text_field_list<P: Payload>(words: &mut Words<'_, P>) -> Result<Vec<P>, ErrorReply> {
    let syntax = |message: &str| ErrorReply::new(ErrorCode::Syntax, format!("{message}: {FIELDS}"));
    if !words.eat("FIELDS") {
        return Err(syntax("missing FIELDS"));
    }
    let count: u64 = words.int()?;
    if count == 0 {
        return Err(syntax("numfields must be greater than 0"));
    }
    if count != words.remaining() as u64 {
        return Err(syntax("numfields must match the number of fields"));
    }
    text_fields(words.rest())
}
