//! Typed list requests: each command with the reader of its reply.

use bytes::Bytes;

use super::super::request::{read, Typed};
use super::{End, ListCommand};
use crate::value::Value;

impl ListCommand<Bytes> {
    /// LPUSH or RPUSH: answers the list's length after the push.
    pub fn push<E: Into<Bytes>>(
        key: impl Into<Bytes>,
        end: End,
        elements: impl IntoIterator<Item = E>,
    ) -> Typed<u64> {
        let command = ListCommand::Push {
            key: key.into(),
            end,
            existing_only: false,
            elements: elements.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, read::count)
    }

    /// LPOP or RPOP of up to `count` elements: those popped, in pop order.
    pub fn pop(key: impl Into<Bytes>, end: End, count: u64) -> Typed<Vec<Bytes>> {
        let command = ListCommand::Pop {
            key: key.into(),
            end,
            count: Some(count),
        };
        Typed::new(command, |reply| match reply {
            Value::Nil => Ok(Vec::new()),
            other => read::array(other, read::bytes),
        })
    }

    /// LLEN: how many elements.
    pub fn llen(key: impl Into<Bytes>) -> Typed<u64> {
        Typed::new(ListCommand::Len(key.into()), read::count)
    }

    /// LRANGE: the elements from `start` to `stop`, both included.
    pub fn lrange(key: impl Into<Bytes>, start: i64, stop: i64) -> Typed<Vec<Bytes>> {
        let command = ListCommand::Range {
            key: key.into(),
            start,
            stop,
        };
        Typed::new(command, |reply| read::array(reply, read::bytes))
    }

    /// LMOVE: the element moved, if the source had one.
    pub fn lmove(
        source: impl Into<Bytes>,
        destination: impl Into<Bytes>,
        from: End,
        to: End,
    ) -> Typed<Option<Bytes>> {
        let command = ListCommand::Move {
            source: source.into(),
            destination: destination.into(),
            from,
            to,
        };
        Typed::new(command, read::optional_bytes)
    }
}
