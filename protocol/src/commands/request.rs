//! Typed requests: a command paired with how its reply reads, so a client can offer a
//! family's typed calls with no code of its own for that family.

use bytes::Bytes;

use super::Command;
use crate::value::Value;

/// A reply whose shape is not the one its command documents.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct ShapeError {
    /// What the command's reply should have been.
    pub expected: &'static str,
    /// What came instead.
    pub got: String,
}

impl ShapeError {
    /// The error for `got` where `expected` was due.
    pub fn new(expected: &'static str, got: &Value) -> ShapeError {
        ShapeError {
            expected,
            got: format!("{got:?}"),
        }
    }
}

/// Reads a reply value (never an error reply: those are reported before reading).
pub type ReadReply<T> = fn(Value) -> Result<T, ShapeError>;

/// A command and the reader of its reply.
#[derive(Debug, Clone)]
pub struct Typed<T> {
    /// The command to send.
    pub command: Command,
    /// How its reply reads.
    pub read: ReadReply<T>,
    /// Why the arguments cannot form a request (a NaN where a number is due): a client
    /// refuses it without sending anything.
    pub refused: Option<&'static str>,
}

impl<T> Typed<T> {
    /// Pairs `command` with the reader of its reply.
    pub fn new(command: impl Into<Command>, read: ReadReply<T>) -> Typed<T> {
        Typed {
            command: command.into(),
            read,
            refused: None,
        }
    }

    /// The same request, refused for `reason` when `refuse` holds.
    pub fn refused_if(mut self, refuse: bool, reason: &'static str) -> Typed<T> {
        if refuse {
            self.refused = Some(reason);
        }
        self
    }
}

/// Readers for the reply shapes families share.
pub mod read {
    use super::*;

    /// An INT.
    ///
    /// # Errors
    /// Any other shape.
    pub fn int(value: Value) -> Result<i64, ShapeError> {
        match value {
            Value::Int(n) => Ok(n),
            other => Err(ShapeError::new("an integer", &other)),
        }
    }

    /// An INT that counts something, so it is never negative.
    ///
    /// # Errors
    /// Any other shape, or a negative integer.
    pub fn count(value: Value) -> Result<u64, ShapeError> {
        match value {
            Value::Int(n) if n >= 0 => Ok(n as u64),
            other => Err(ShapeError::new("a count", &other)),
        }
    }

    /// An INT 0 or 1, or a BOOL.
    ///
    /// # Errors
    /// Any other shape.
    pub fn flag(value: Value) -> Result<bool, ShapeError> {
        match value {
            Value::Int(0) | Value::Bool(false) => Ok(false),
            Value::Int(1) | Value::Bool(true) => Ok(true),
            other => Err(ShapeError::new("0 or 1", &other)),
        }
    }

    /// OK.
    ///
    /// # Errors
    /// Any other shape.
    pub fn ok(value: Value) -> Result<(), ShapeError> {
        match value {
            Value::Ok => Ok(()),
            other => Err(ShapeError::new("OK", &other)),
        }
    }

    /// BYTES or NIL.
    ///
    /// # Errors
    /// Any other shape.
    pub fn optional_bytes(value: Value) -> Result<Option<Bytes>, ShapeError> {
        match value {
            Value::Nil => Ok(None),
            Value::Bytes(bytes) => Ok(Some(bytes)),
            other => Err(ShapeError::new("bytes or nil", &other)),
        }
    }

    /// BYTES.
    ///
    /// # Errors
    /// Any other shape.
    pub fn bytes(value: Value) -> Result<Bytes, ShapeError> {
        match value {
            Value::Bytes(bytes) => Ok(bytes),
            other => Err(ShapeError::new("bytes", &other)),
        }
    }

    /// A FLOAT or NIL.
    ///
    /// # Errors
    /// Any other shape.
    pub fn optional_float(value: Value) -> Result<Option<f64>, ShapeError> {
        match value {
            Value::Nil => Ok(None),
            Value::Float(x) => Ok(Some(x)),
            other => Err(ShapeError::new("a float or nil", &other)),
        }
    }

    /// A FLOAT.
    ///
    /// # Errors
    /// Any other shape.
    pub fn float(value: Value) -> Result<f64, ShapeError> {
        match value {
            Value::Float(x) => Ok(x),
            other => Err(ShapeError::new("a float", &other)),
        }
    }

    /// An INT or NIL.
    ///
    /// # Errors
    /// Any other shape.
    pub fn optional_int(value: Value) -> Result<Option<i64>, ShapeError> {
        match value {
            Value::Nil => Ok(None),
            Value::Int(n) => Ok(Some(n)),
            other => Err(ShapeError::new("an integer or nil", &other)),
        }
    }

    /// An ARRAY, each element read by `item`.
    ///
    /// # Errors
    /// Any other shape, or an element `item` refuses.
    pub fn array<T>(
        value: Value,
        item: impl Fn(Value) -> Result<T, ShapeError>,
    ) -> Result<Vec<T>, ShapeError> {
        match value {
            Value::Array(items) => items.into_iter().map(item).collect(),
            other => Err(ShapeError::new("an array", &other)),
        }
    }

    /// An ARRAY of alternating elements, read in pairs.
    ///
    /// # Errors
    /// Any other shape, an odd length, or an element the readers refuse.
    pub fn pairs<A, B>(
        value: Value,
        first: impl Fn(Value) -> Result<A, ShapeError>,
        second: impl Fn(Value) -> Result<B, ShapeError>,
    ) -> Result<Vec<(A, B)>, ShapeError> {
        let Value::Array(items) = value else {
            return Err(ShapeError::new("an array of pairs", &value));
        };
        if items.len() % 2 != 0 {
            return Err(ShapeError::new(
                "an even-length array",
                &Value::Array(items),
            ));
        }
        let mut items = items.into_iter();
        let mut out = Vec::with_capacity(items.len() / 2);
        while let (Some(a), Some(b)) = (items.next(), items.next()) {
            out.push((first(a)?, second(b)?));
        }
        Ok(out)
    }
}
