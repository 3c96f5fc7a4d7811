//! Typed hash requests: each command with the reader of its reply.

use bytes::Bytes;

use super::super::arg::parse_float;
use super::super::request::{read, ShapeError, Typed};
use super::{ExpireCondition, Finite, HashCommand, TimeUnit};
use crate::value::Value;

impl HashCommand<Bytes> {
    /// HSET: answers how many fields were new.
    pub fn hset<F: Into<Bytes>, V: Into<Bytes>>(
        key: impl Into<Bytes>,
        pairs: impl IntoIterator<Item = (F, V)>,
    ) -> Typed<u64> {
        let pairs = pairs.into_iter().map(|(f, v)| (f.into(), v.into()));
        let command = HashCommand::Set {
            key: key.into(),
            pairs: pairs.collect(),
        };
        Typed::new(command, read::count)
    }

    /// HSETNX: answers whether the field was set.
    pub fn hsetnx(
        key: impl Into<Bytes>,
        field: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Typed<bool> {
        let command = HashCommand::SetNx {
            key: key.into(),
            field: field.into(),
            value: value.into(),
        };
        Typed::new(command, read::flag)
    }

    /// HGET: the field's value, if any.
    pub fn hget(key: impl Into<Bytes>, field: impl Into<Bytes>) -> Typed<Option<Bytes>> {
        let command = HashCommand::Get {
            key: key.into(),
            field: field.into(),
        };
        Typed::new(command, read::optional_bytes)
    }

    /// HMGET: each field's value, in the order given.
    pub fn hmget<F: Into<Bytes>>(
        key: impl Into<Bytes>,
        fields: impl IntoIterator<Item = F>,
    ) -> Typed<Vec<Option<Bytes>>> {
        let command = HashCommand::MGet {
            key: key.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, |reply| read::array(reply, read::optional_bytes))
    }

    /// HDEL: answers how many fields were removed.
    pub fn hdel<F: Into<Bytes>>(
        key: impl Into<Bytes>,
        fields: impl IntoIterator<Item = F>,
    ) -> Typed<u64> {
        let command = HashCommand::Del {
            key: key.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, read::count)
    }

    /// HGETALL: every field and value.
    pub fn hgetall(key: impl Into<Bytes>) -> Typed<Vec<(Bytes, Bytes)>> {
        Typed::new(HashCommand::GetAll(key.into()), read_map)
    }

    /// HKEYS: the field names.
    pub fn hkeys(key: impl Into<Bytes>) -> Typed<Vec<Bytes>> {
        Typed::new(HashCommand::Keys(key.into()), |reply| {
            read::array(reply, read::bytes)
        })
    }

    /// HVALS: the values.
    pub fn hvals(key: impl Into<Bytes>) -> Typed<Vec<Bytes>> {
        Typed::new(HashCommand::Vals(key.into()), |reply| {
            read::array(reply, read::bytes)
        })
    }

    /// HLEN: how many fields.
    pub fn hlen(key: impl Into<Bytes>) -> Typed<u64> {
        Typed::new(HashCommand::Len(key.into()), read::count)
    }

    /// HEXISTS: whether the field exists.
    pub fn hexists(key: impl Into<Bytes>, field: impl Into<Bytes>) -> Typed<bool> {
        let command = HashCommand::Exists {
            key: key.into(),
            field: field.into(),
        };
        Typed::new(command, read::flag)
    }

    /// HINCRBY: the new value.
    pub fn hincrby(key: impl Into<Bytes>, field: impl Into<Bytes>, delta: i64) -> Typed<i64> {
        let command = HashCommand::IncrBy {
            key: key.into(),
            field: field.into(),
            delta,
        };
        Typed::new(command, read::int)
    }

    /// HINCRBYFLOAT: the new value. A `delta` that is not finite is refused before sending.
    pub fn hincrbyfloat(key: impl Into<Bytes>, field: impl Into<Bytes>, delta: f64) -> Typed<f64> {
        let command = HashCommand::IncrByFloat {
            key: key.into(),
            field: field.into(),
            delta: Finite::new(delta).unwrap_or(Finite::ZERO),
        };
        Typed::new(command, read_decimal)
            .refused_if(!delta.is_finite(), "the increment is not a finite number")
    }

    /// HSTRLEN: the value's length.
    pub fn hstrlen(key: impl Into<Bytes>, field: impl Into<Bytes>) -> Typed<u64> {
        let command = HashCommand::StrLen {
            key: key.into(),
            field: field.into(),
        };
        Typed::new(command, read::count)
    }

    /// HPEXPIRE: one code per field (see the module's doc).
    pub fn hpexpire<F: Into<Bytes>>(
        key: impl Into<Bytes>,
        ttl: std::time::Duration,
        condition: ExpireCondition,
        fields: impl IntoIterator<Item = F>,
    ) -> Typed<Vec<i64>> {
        let command = HashCommand::Expire {
            key: key.into(),
            ttl: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            unit: TimeUnit::Millis,
            condition,
            fields: fields.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, |reply| read::array(reply, read::int))
    }

    /// HPTTL: each field's milliseconds left, -1 without expiry, -2 if missing.
    pub fn hpttl<F: Into<Bytes>>(
        key: impl Into<Bytes>,
        fields: impl IntoIterator<Item = F>,
    ) -> Typed<Vec<i64>> {
        let command = HashCommand::Ttl {
            key: key.into(),
            unit: TimeUnit::Millis,
            fields: fields.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, |reply| read::array(reply, read::int))
    }

    /// HPERSIST: one code per field: 1 removed, -1 no expiry, -2 missing.
    pub fn hpersist<F: Into<Bytes>>(
        key: impl Into<Bytes>,
        fields: impl IntoIterator<Item = F>,
    ) -> Typed<Vec<i64>> {
        let command = HashCommand::Persist {
            key: key.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, |reply| read::array(reply, read::int))
    }
}

/// HGETALL's MAP as pairs.
fn read_map(reply: Value) -> Result<Vec<(Bytes, Bytes)>, ShapeError> {
    match reply {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(field, value)| Ok((read::bytes(field)?, read::bytes(value)?)))
            .collect(),
        other => Err(ShapeError::new("a map", &other)),
    }
}

/// HINCRBYFLOAT's decimal text as a number.
fn read_decimal(reply: Value) -> Result<f64, ShapeError> {
    let text = read::bytes(reply)?;
    parse_float(&text).map_err(|_| ShapeError {
        expected: "a decimal number",
        got: String::from_utf8_lossy(&text).into_owned(),
    })
}
