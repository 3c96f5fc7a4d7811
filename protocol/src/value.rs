//! Reply values: a small tagged tree that every response body is exactly one of.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, ErrorCode};
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Reader};

/// Deepest nesting of arrays and maps a decoder accepts.
pub const MAX_DEPTH: usize = 32;

/// Value tags, one byte each.
pub mod tag {
    /// No value (a missing key).
    pub const NIL: u8 = 0x00;
    /// Success without data.
    pub const OK: u8 = 0x01;
    /// Zigzag varint integer.
    pub const INT: u8 = 0x02;
    /// Length-prefixed bytes.
    pub const BYTES: u8 = 0x03;
    /// Length-prefixed UTF-8 text.
    pub const TEXT: u8 = 0x04;
    /// Count then that many values.
    pub const ARRAY: u8 = 0x05;
    /// Count then that many key/value pairs of values.
    pub const MAP: u8 = 0x06;
    /// Little-endian IEEE 754 double.
    pub const FLOAT: u8 = 0x07;
    /// One byte, 0 or 1.
    pub const BOOL: u8 = 0x08;
    /// `u16` code then UTF-8 message.
    pub const ERROR: u8 = 0x0f;
}

/// One reply value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent (e.g. GET of a missing key).
    Nil,
    /// Success without data.
    Ok,
    /// A signed 64-bit integer.
    Int(i64),
    /// Binary-safe bytes.
    Bytes(Bytes),
    /// UTF-8 text (names, INFO fields).
    Text(String),
    /// An ordered list.
    Array(Vec<Value>),
    /// Ordered key/value pairs.
    Map(Vec<(Value, Value)>),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An error reply with a stable code.
    Error(ErrorReply),
}

/// An error reply: stable code plus a lowercase human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// Raw wire code; `ErrorCode::from_u16` names it when known.
    pub code: u16,
    /// Explanation for people.
    pub message: String,
}

impl ErrorReply {
    /// Builds an error reply from a known code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code as u16,
            message: message.into(),
        }
    }

    /// The named code, if this client knows it.
    pub fn known_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_u16(self.code)
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.known_code() {
            Some(code) => write!(f, "{} {}", code.name(), self.message),
            None => write!(f, "E{} {}", self.code, self.message),
        }
    }
}

impl Value {
    /// Shorthand for an error value.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Value {
        Value::Error(ErrorReply::new(code, message))
    }

    /// Shorthand for a text value.
    pub fn text(text: impl Into<String>) -> Value {
        Value::Text(text.into())
    }

    /// Appends the encoding of `self`.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Value::Nil => buf.put_u8(tag::NIL),
            Value::Ok => buf.put_u8(tag::OK),
            Value::Int(n) => {
                buf.put_u8(tag::INT);
                put_ivarint(buf, *n);
            }
            Value::Bytes(b) => {
                buf.put_u8(tag::BYTES);
                put_bytes(buf, b);
            }
            Value::Text(t) => {
                buf.put_u8(tag::TEXT);
                put_bytes(buf, t.as_bytes());
            }
            Value::Array(items) => {
                buf.put_u8(tag::ARRAY);
                put_uvarint(buf, items.len() as u64);
                for item in items {
                    item.encode(buf);
                }
            }
            Value::Map(pairs) => {
                buf.put_u8(tag::MAP);
                put_uvarint(buf, pairs.len() as u64);
                for (k, v) in pairs {
                    k.encode(buf);
                    v.encode(buf);
                }
            }
            Value::Float(x) => {
                buf.put_u8(tag::FLOAT);
                buf.put_f64_le(*x);
            }
            Value::Bool(b) => {
                buf.put_u8(tag::BOOL);
                buf.put_u8(u8::from(*b));
            }
            Value::Error(e) => {
                buf.put_u8(tag::ERROR);
                buf.put_u16_le(e.code);
                put_bytes(buf, e.message.as_bytes());
            }
        }
    }

    /// Decodes one value that must fill `body` exactly.
    ///
    /// # Errors
    /// Any `DecodeError` for malformed, truncated or over-deep input.
    pub fn decode(body: Bytes) -> Result<Value, DecodeError> {
        let mut reader = Reader::new(body);
        let value = Self::read(&mut reader, 0)?;
        reader.finish()?;
        Ok(value)
    }

    /// Reads one value from `reader`, `depth` levels inside containers.
    pub fn read(reader: &mut Reader, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        Ok(match reader.u8()? {
            tag::NIL => Value::Nil,
            tag::OK => Value::Ok,
            tag::INT => Value::Int(reader.ivarint()?),
            tag::BYTES => Value::Bytes(reader.bytes()?),
            tag::TEXT => Value::Text(reader.text()?),
            tag::ARRAY => {
                let count = reader.count(1)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(Self::read(reader, depth + 1)?);
                }
                Value::Array(items)
            }
            tag::MAP => {
                let count = reader.count(2)?;
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let k = Self::read(reader, depth + 1)?;
                    let v = Self::read(reader, depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            tag::FLOAT => Value::Float(reader.f64()?),
            tag::BOOL => match reader.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(DecodeError::Invalid("bool must be 0 or 1")),
            },
            tag::ERROR => {
                let code = reader.u16()?;
                let message = reader.text()?;
                Value::Error(ErrorReply { code, message })
            }
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }

    /// Looks a field up by text key when `self` is a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The integer inside, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(value: &Value) -> BytesMut {
        let mut buf = BytesMut::new();
        value.encode(&mut buf);
        buf
    }

    #[test]
    fn byte_layout_of_each_tag() {
        assert_eq!(&encoded(&Value::Nil)[..], &[0x00]);
        assert_eq!(&encoded(&Value::Ok)[..], &[0x01]);
        assert_eq!(&encoded(&Value::Int(-3))[..], &[0x02, 0x05]);
        assert_eq!(
            &encoded(&Value::Bytes(Bytes::from_static(b"hi")))[..],
            &[0x03, 2, b'h', b'i']
        );
        assert_eq!(
            &encoded(&Value::Array(vec![Value::Nil, Value::Int(1)]))[..],
            &[0x05, 2, 0x00, 0x02, 0x02]
        );
        assert_eq!(
            &encoded(&Value::error(ErrorCode::WrongType, "x"))[..],
            &[0x0f, 4, 0, 1, b'x']
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut raw = [tag::ARRAY, 1].repeat(MAX_DEPTH + 2);
        raw.push(tag::NIL);
        assert_eq!(
            Value::decode(Bytes::from(raw)),
            Err(DecodeError::TooDeep(MAX_DEPTH))
        );
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let value = Value::Map(vec![
            (
                Value::text("a"),
                Value::Array(vec![Value::Int(300), Value::Float(1.5)]),
            ),
            (Value::text("b"), Value::error(ErrorCode::Syntax, "bad")),
        ]);
        let whole = encoded(&value).freeze();
        for cut in 0..whole.len() {
            assert!(Value::decode(whole.slice(..cut)).is_err(), "cut at {cut}");
        }
        assert_eq!(Value::decode(whole).unwrap(), value);
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            Just(Value::Ok),
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|v| Value::Bytes(v.into())),
            "[a-z]{0,8}".prop_map(Value::Text),
            any::<bool>().prop_map(Value::Bool),
            (1u16..20, "[a-z ]{0,8}")
                .prop_map(|(code, message)| Value::Error(ErrorReply { code, message })),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(value in arb_value()) {
            let buf = encoded(&value).freeze();
            prop_assert_eq!(Value::decode(buf).unwrap(), value);
        }

        #[test]
        fn random_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Value::decode(Bytes::from(raw));
        }
    }
}
