//! List commands as text: the words after the name, redis-cli style.

use crate::wire::Payload;

use super::super::arg::Words;
use super::super::CommandSpec;
use super::{opcode, End, ListCommand};
use crate::error::ErrorCode;
use crate::value::ErrorReply;

/// Redis's refusal of a negative count.
fn out_of_range() -> ErrorReply {
    ErrorReply::new(ErrorCode::Syntax, "value is out of range, must be positive")
}

impl<P: Payload> ListCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        let key = words.key()?;
        let end = |left: u16| {
            if spec.opcode == left {
                End::Left
            } else {
                End::Right
            }
        };
        let command = match spec.opcode {
            opcode::LPUSH | opcode::RPUSH | opcode::LPUSHX | opcode::RPUSHX => {
                let elements = words.rest().to_vec();
                if elements.is_empty() {
                    return Err(words.arity());
                }
                ListCommand::Push {
                    key,
                    end: if matches!(spec.opcode, opcode::LPUSH | opcode::LPUSHX) {
                        End::Left
                    } else {
                        End::Right
                    },
                    existing_only: matches!(spec.opcode, opcode::LPUSHX | opcode::RPUSHX),
                    elements,
                }
            }
            opcode::LPOP | opcode::RPOP => {
                let count = match words.remaining() {
                    0 => None,
                    _ => Some(u64::try_from(words.int::<i64>()?).map_err(|_| out_of_range())?),
                };
                ListCommand::Pop {
                    key,
                    end: end(opcode::LPOP),
                    count,
                }
            }
            opcode::LLEN => ListCommand::Len(key),
            opcode::LRANGE | opcode::LTRIM => {
                let (start, stop) = (words.int()?, words.int()?);
                if spec.opcode == opcode::LRANGE {
                    ListCommand::Range { key, start, stop }
                } else {
                    ListCommand::Trim { key, start, stop }
                }
            }
            opcode::LINDEX => ListCommand::Index {
                key,
                index: words.int()?,
            },
            opcode::LSET => ListCommand::Set {
                key,
                index: words.int()?,
                element: words.bytes()?,
            },
            opcode::LREM => ListCommand::Rem {
                key,
                count: words.int()?,
                element: words.bytes()?,
            },
            opcode::LPOS => parse_pos(key, &mut words)?,
            opcode::LINSERT => {
                let after = if words.eat("AFTER") {
                    true
                } else if words.eat("BEFORE") {
                    false
                } else {
                    words.word()?;
                    return Err(ErrorReply::new(ErrorCode::Syntax, "syntax error"));
                };
                ListCommand::Insert {
                    key,
                    after,
                    pivot: words.bytes()?,
                    element: words.bytes()?,
                }
            }
            opcode::LMOVE => ListCommand::Move {
                source: key,
                destination: words.key()?,
                from: End::parse(words.text()?)?,
                to: End::parse(words.text()?)?,
            },
            _ => return Err(words.arity()),
        };
        words.finish()?;
        Ok(command)
    }
}

fn parse_pos<P: Payload>(key: P, words: &mut Words<'_, P>) -> Result<ListCommand<P>, ErrorReply> {
    let element = words.bytes()?;
    let (mut rank, mut count, mut max_len) = (1i64, None, 0u64);
    words.options("syntax error", |name, words| {
        match name {
            b"RANK" => {
                rank = words.int()?;
                if rank == 0 || rank == i64::MIN {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                    ));
                }
            }
            b"COUNT" => {
                let n: i64 = words.int()?;
                count = Some(u64::try_from(n).map_err(|_| {
                    ErrorReply::new(ErrorCode::Syntax, "COUNT can't be negative")
                })?);
            }
            b"MAXLEN" => {
                let n: i64 = words.int()?;
                max_len = u64::try_from(n).map_err(|_| {
                    ErrorReply::new(ErrorCode::Syntax, "MAXLEN can't be negative")
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(ListCommand::Pos {
        key,
        element,
        rank,
        count,
        max_len,
    })
}
