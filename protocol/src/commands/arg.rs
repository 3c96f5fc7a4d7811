//! Argument readers every family shares: keys and expiries on the wire, and as text.

use bytes::Bytes;

use super::{CommandSpec, MAX_EXPIRE_MS, MAX_KEY_BYTES};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{Payload, Reader};

/// Refuses a text command whose argument count does not fit its syntax.
pub(crate) fn arity(spec: &CommandSpec, ok: bool) -> Result<(), ErrorReply> {
    if ok {
        Ok(())
    } else {
        Err(ErrorReply::new(
            ErrorCode::Syntax,
            format!("wrong number of arguments: {} {}", spec.name, spec.syntax),
        ))
    }
}

/// The reply for a row handed to a family that has no parse arm for it.
pub(crate) fn not_in_family(spec: &CommandSpec) -> ErrorReply {
    ErrorReply::new(
        ErrorCode::UnknownCommand,
        format!("unknown command '{}'", spec.name),
    )
}

pub(crate) fn read_key<P: Payload>(r: &mut Reader<P>) -> Result<P, DecodeError> {
    let key = r.bytes()?;
    let len = key.as_ref().len();
    if len > MAX_KEY_BYTES {
        return Err(DecodeError::KeyTooLarge(len));
    }
    Ok(key)
}

pub(crate) fn read_keys<P: Payload>(r: &mut Reader<P>) -> Result<Vec<P>, DecodeError> {
    let count = r.count(1)?;
    if count == 0 {
        return Err(DecodeError::Invalid("at least one key is required"));
    }
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(read_key(r)?);
    }
    Ok(keys)
}

pub(crate) fn checked_ttl(ms: u64) -> Result<u64, DecodeError> {
    if ms == 0 || ms > MAX_EXPIRE_MS as u64 {
        return Err(DecodeError::InvalidExpire);
    }
    Ok(ms)
}

pub(crate) fn text_key(word: &Bytes) -> Result<Bytes, ErrorReply> {
    if word.len() > MAX_KEY_BYTES {
        return Err(ErrorReply::new(
            ErrorCode::KeyTooLarge,
            "key exceeds 65536 bytes",
        ));
    }
    Ok(word.clone())
}

pub(crate) fn parse_int<T: std::str::FromStr>(word: &[u8]) -> Result<T, ErrorReply> {
    std::str::from_utf8(word)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ErrorReply::new(
                ErrorCode::NotInteger,
                format!(
                    "value is not an integer or out of range: '{}'",
                    String::from_utf8_lossy(word)
                ),
            )
        })
}

pub(crate) fn parse_seconds(word: &[u8]) -> Result<u64, ErrorReply> {
    parse_int::<i64>(word)?
        .checked_mul(1000)
        .filter(|ms| (1..=MAX_EXPIRE_MS).contains(ms))
        .map(|ms| ms as u64)
        .ok_or_else(|| ErrorReply::new(ErrorCode::InvalidExpire, "invalid expire time"))
}
