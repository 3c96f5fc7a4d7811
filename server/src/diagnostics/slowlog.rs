//! The slow log: one shard's newest requests that took longer than the threshold, and
//! the merge of every shard's into the one list SLOWLOG.GET answers.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tessera_protocol::Value;

/// Arguments an entry keeps, as in Redis: past this the last kept one says how many more.
pub const MAX_ARGS: usize = 32;
/// Bytes an argument keeps, as in Redis: past this it says how many more there were.
pub const MAX_ARG_BYTES: usize = 128;

/// One slow request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    /// Unique and rising across the node's shards, so merged entries order by it.
    pub id: u64,
    /// When it completed, Unix seconds.
    pub unix_secs: u64,
    /// How long it ran, in microseconds.
    pub micros: u64,
    /// Its arguments, bounded by `MAX_ARGS` and `MAX_ARG_BYTES`.
    pub args: Vec<Bytes>,
    /// The client's `ip:port`.
    pub client: Bytes,
    /// The client's name (CLIENT SETNAME), empty if none.
    pub name: Bytes,
}

impl SlowEntry {
    /// The entry as Redis's SLOWLOG GET shows one.
    pub fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::Int(self.id as i64),
            Value::Int(self.unix_secs as i64),
            Value::Int(self.micros as i64),
            Value::Array(self.args.iter().cloned().map(Value::Bytes).collect()),
            Value::Bytes(self.client.clone()),
            Value::Bytes(self.name.clone()),
        ])
    }
}

/// Arguments as an entry keeps them: at most `MAX_ARGS` (the last kept one then says how
/// many more there were), each cut at `MAX_ARG_BYTES` with a note of what was cut. They
/// are copied into one buffer, so an entry costs one allocation however many it keeps.
pub fn bounded_args<'a>(args: impl ExactSizeIterator<Item = &'a [u8]> + Clone) -> Vec<Bytes> {
    let total = args.len();
    let kept = if total > MAX_ARGS {
        MAX_ARGS - 1
    } else {
        total
    };
    let note = |arg: &[u8]| {
        (arg.len() > MAX_ARG_BYTES)
            .then(|| format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES))
    };
    let more = (total > kept).then(|| format!("... ({} more arguments)", total - kept));
    let size: usize = args
        .clone()
        .take(kept)
        .map(|arg| arg.len().min(MAX_ARG_BYTES) + note(arg).map_or(0, |n| n.len()))
        .sum::<usize>()
        + more.as_ref().map_or(0, String::len);
    let mut buffer = BytesMut::with_capacity(size);
    let mut ends = Vec::with_capacity(kept + 1);
    for arg in args.take(kept) {
        buffer.extend_from_slice(&arg[..arg.len().min(MAX_ARG_BYTES)]);
        if let Some(note) = note(arg) {
            buffer.extend_from_slice(note.as_bytes());
        }
        ends.push(buffer.len());
    }
    if let Some(more) = more {
        buffer.extend_from_slice(more.as_bytes());
        ends.push(buffer.len());
    }
    let buffer = buffer.freeze();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let arg = buffer.slice(start..end);
            start = end;
            arg
        })
        .collect()
}

/// One shard's slow log, newest last.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<SlowEntry>,
}

impl SlowLog {
    /// Adds an entry, dropping the oldest past `max_len` (0 keeps none).
    pub fn push(&mut self, entry: SlowEntry, max_len: usize) {
        self.entries.push_back(entry);
        while self.entries.len() > max_len {
            self.entries.pop_front();
        }
    }

    /// The newest `count` entries (all of them for `None`), newest first.
    pub fn newest(&self, count: Option<u64>) -> Vec<SlowEntry> {
        let count = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        self.entries.iter().rev().take(count).cloned().collect()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newest entry's id (0: none).
    pub fn last_id(&self) -> u64 {
        self.entries.back().map_or(0, |e| e.id)
    }

    /// Forgets every entry.
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

/// Every shard's newest entries merged: the newest `count` of them all, newest first.
pub fn merge(parts: Vec<Vec<SlowEntry>>, count: Option<u64>) -> Vec<SlowEntry> {
    let mut all: Vec<SlowEntry> = parts.into_iter().flatten().collect();
    all.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.id));
    if let Some(count) = count {
        all.truncate(usize::try_from(count).unwrap_or(usize::MAX));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64) -> SlowEntry {
        SlowEntry {
            id,
            unix_secs: 1,
            micros: 2,
            args: vec![Bytes::from_static(b"GET")],
            client: Bytes::from_static(b"127.0.0.1:1"),
            name: Bytes::new(),
        }
    }

    #[test]
    fn keeps_the_newest_up_to_its_length() {
        let mut log = SlowLog::default();
        for id in 1..=5 {
            log.push(entry(id), 3);
        }
        assert_eq!(log.len(), 3);
        let ids: Vec<u64> = log.newest(None).iter().map(|e| e.id).collect();
        assert_eq!(ids, [5, 4, 3]);
        assert_eq!(log.newest(Some(1))[0].id, 5);
        log.push(entry(6), 0);
        assert!(log.is_empty(), "a length of 0 keeps nothing");
    }

    #[test]
    fn shards_merge_newest_first() {
        let merged = merge(
            vec![vec![entry(5), entry(2)], vec![entry(4), entry(3)]],
            Some(3),
        );
        let ids: Vec<u64> = merged.iter().map(|e| e.id).collect();
        assert_eq!(ids, [5, 4, 3]);
    }

    #[test]
    fn arguments_are_bounded_as_redis_bounds_them() {
        let long = [b'x'; 200];
        let args: Vec<&[u8]> = std::iter::repeat_n(&long[..], 40).collect();
        let bounded = bounded_args(args.into_iter());
        assert_eq!(bounded.len(), MAX_ARGS);
        assert_eq!(
            &bounded[0][MAX_ARG_BYTES..],
            b"... (72 more bytes)".as_slice()
        );
        assert_eq!(&bounded[31][..], b"... (9 more arguments)".as_slice());
        let short: Vec<&[u8]> = vec![b"GET", b"k"];
        assert_eq!(bounded_args(short.into_iter()), [&b"GET"[..], &b"k"[..]]);
    }
}
