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

/// Writes `count:uvarint item:bytes*count`, as `read_keys` reads it.
pub(crate) fn put_list<P: AsRef<[u8]>>(buf: &mut bytes::BytesMut, items: &[P]) {
    crate::wire::put_uvarint(buf, items.len() as u64);
    for item in items {
        crate::wire::put_bytes(buf, item.as_ref());
    }
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

pub(crate) fn text_key<P: Payload>(word: &P) -> Result<P, ErrorReply> {
    if word.as_ref().len() > MAX_KEY_BYTES {
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

/// A cursor over a text command's arguments: the one place that reads keys, integers,
/// flags and options-with-values, and reports a wrong argument count.
pub(crate) struct Words<'a, P = Bytes> {
    spec: &'static CommandSpec,
    words: &'a [P],
    at: usize,
}

impl<'a, P: Payload> Words<'a, P> {
    /// A cursor at the first argument after the command's name.
    pub(crate) fn new(spec: &'static CommandSpec, words: &'a [P]) -> Words<'a, P> {
        Words { spec, words, at: 0 }
    }

    /// The error for a wrong number of arguments.
    pub(crate) fn arity(&self) -> ErrorReply {
        match arity(self.spec, false) {
            Err(error) => error,
            Ok(()) => not_in_family(self.spec),
        }
    }

    /// The next word.
    ///
    /// # Errors
    /// `Syntax` (wrong number of arguments) when none is left.
    pub(crate) fn word(&mut self) -> Result<&'a P, ErrorReply> {
        let word = self.words.get(self.at).ok_or_else(|| self.arity())?;
        self.at += 1;
        Ok(word)
    }

    /// The next word's bytes.
    ///
    /// # Errors
    /// As `word`.
    pub(crate) fn text(&mut self) -> Result<&'a [u8], ErrorReply> {
        Ok(self.word()?.as_ref())
    }

    /// The next word as a key.
    ///
    /// # Errors
    /// As `word`; `KeyTooLarge` for a key over the limit.
    pub(crate) fn key(&mut self) -> Result<P, ErrorReply> {
        text_key(self.word()?)
    }

    /// The next word as bytes.
    ///
    /// # Errors
    /// As `word`.
    pub(crate) fn bytes(&mut self) -> Result<P, ErrorReply> {
        self.word().cloned()
    }

    /// The next word as an integer.
    ///
    /// # Errors
    /// As `word`; `NotInteger` for anything else.
    pub(crate) fn int<T: std::str::FromStr>(&mut self) -> Result<T, ErrorReply> {
        parse_int(self.text()?)
    }

    /// Consumes the next word if it is `flag` (any case).
    pub(crate) fn eat(&mut self, flag: &str) -> bool {
        let matches = self
            .words
            .get(self.at)
            .is_some_and(|word| word.as_ref().eq_ignore_ascii_case(flag.as_bytes()));
        if matches {
            self.at += 1;
        }
        matches
    }

    /// The next word as a time to live given in seconds, in milliseconds.
    ///
    /// # Errors
    /// As `word`; `NotInteger` or `InvalidExpire`.
    pub(crate) fn seconds(&mut self) -> Result<u64, ErrorReply> {
        parse_seconds(self.text()?)
    }

    /// Reads `NAME value...` options to the end: `option` gets each name upper-cased and
    /// reads its values from the cursor, answering `false` for a name it does not know,
    /// which is refused as `Syntax` with `refusal`.
    ///
    /// # Errors
    /// `option`'s errors; `Syntax` for an unknown option.
    pub(crate) fn options(
        &mut self,
        refusal: &'static str,
        mut option: impl FnMut(&[u8], &mut Self) -> Result<bool, ErrorReply>,
    ) -> Result<(), ErrorReply> {
        while let Some(name) = self.words.get(self.at) {
            self.at += 1;
            if !option(&name.as_ref().to_ascii_uppercase(), self)? {
                return Err(ErrorReply::new(ErrorCode::Syntax, refusal));
            }
        }
        Ok(())
    }

    /// Words not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.words.len() - self.at
    }

    /// Every word not read yet, consumed.
    pub(crate) fn rest(&mut self) -> &'a [P] {
        let rest = &self.words[self.at..];
        self.at = self.words.len();
        rest
    }

    /// Ends the command: every word must have been read.
    ///
    /// # Errors
    /// `Syntax` when words are left over.
    pub(crate) fn finish(&self) -> Result<(), ErrorReply> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.arity())
        }
    }
}

/// A decimal number as Redis reads one: `inf`, `+inf` and `-inf` allowed, NaN refused.
///
/// # Errors
/// `NotFloat` for anything that is not a number.
pub(crate) fn parse_float(word: &[u8]) -> Result<f64, ErrorReply> {
    std::str::from_utf8(word)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|x| !x.is_nan())
        .ok_or_else(|| ErrorReply::new(ErrorCode::NotFloat, "value is not a valid float"))
}
