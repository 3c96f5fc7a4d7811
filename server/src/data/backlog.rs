//! One shard's replication backlog: the latest change records, by stream offset, for
//! replicas to pull.
//!
//! A stream is named by its `run` (drawn when the shard starts) and counts bytes from 0.
//! Records arrive in the groups the journal hands over, each sealed for travel; a replica
//! always stands at a group boundary, since it only ever receives whole groups. Groups
//! older than the byte limit fall off the front, and a replica behind them copies the
//! shard afresh.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::data::codec::seal;

/// The segment number records travelling to a replica are sealed for.
pub const IN_FLIGHT: u64 = 0;

/// Most record bytes one pull hands out (a larger group travels alone).
pub const MAX_PULL_BYTES: usize = 1 << 20;

/// Why a pull cannot be served from the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// The stream is another one (the shard restarted, or it is not this shard's).
    OtherRun,
    /// The offset fell off the front, or is not one this stream reached.
    OutOfRange,
}

/// The latest record groups of one shard's stream.
pub struct Backlog {
    /// The stream's name.
    pub run: u64,
    /// Offset of the oldest group held.
    start: u64,
    /// Offset just past the newest group.
    end: u64,
    /// Each group with its offset, oldest first.
    groups: VecDeque<(u64, Bytes)>,
    /// Bytes held.
    held: usize,
    /// Bytes held at most (the newest group is always kept).
    limit: usize,
}

impl Backlog {
    /// An empty stream named `run` keeping at most `limit` bytes.
    pub fn new(run: u64, limit: usize) -> Backlog {
        Backlog {
            run,
            start: 0,
            end: 0,
            groups: VecDeque::new(),
            held: 0,
            limit,
        }
    }

    /// Offset just past the newest record: where a copy taken now stands.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Offset of the oldest record still held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Appends a group of framed records, sealing its copy for travel.
    pub fn push(&mut self, records: &[u8]) {
        if records.is_empty() {
            return;
        }
        let mut group = BytesMut::from(records);
        seal(&mut group, IN_FLIGHT);
        let len = group.len();
        self.groups.push_back((self.end, group.freeze()));
        self.end += len as u64;
        self.held += len;
        while self.held > self.limit && self.groups.len() > 1 {
            let (_, oldest) = self.groups.pop_front().expect("more than one group");
            self.held -= oldest.len();
            self.start = self.groups.front().map_or(self.end, |(at, _)| *at);
        }
    }

    /// The records after `offset` (up to about `MAX_PULL_BYTES`) and the offset past
    /// them; empty when `offset` is the end.
    ///
    /// # Errors
    /// `Gone` when this stream cannot continue from `run` and `offset`.
    pub fn read(&self, run: u64, offset: u64) -> Result<(Bytes, u64), Gone> {
        if run != self.run {
            return Err(Gone::OtherRun);
        }
        if offset == self.end {
            return Ok((Bytes::new(), offset));
        }
        if offset < self.start || offset > self.end {
            return Err(Gone::OutOfRange);
        }
        let first = self
            .groups
            .binary_search_by_key(&offset, |(at, _)| *at)
            .map_err(|_| Gone::OutOfRange)?;
        let mut out = BytesMut::new();
        let mut next = offset;
        for (_, group) in self.groups.range(first..) {
            if !out.is_empty() && out.len() + group.len() > MAX_PULL_BYTES {
                break;
            }
            out.extend_from_slice(group);
            next += group.len() as u64;
        }
        Ok((out.freeze(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::codec::{each_record, frame, Tail};

    fn group(payloads: &[&[u8]]) -> BytesMut {
        let mut records = BytesMut::new();
        for payload in payloads {
            frame(&mut records, |buf| buf.extend_from_slice(payload));
        }
        records
    }

    fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        let (tail, _) = each_record(bytes, IN_FLIGHT, 0, |body| seen.push(body.to_vec()));
        assert_eq!(tail, Tail::Clean, "every record travels sealed");
        seen
    }

    #[test]
    fn a_replica_reads_on_from_where_it_stands_until_it_falls_behind() {
        let mut backlog = Backlog::new(7, 100);
        backlog.push(&group(&[b"a", b"bb"]));
        let (first, next) = backlog.read(7, 0).unwrap();
        assert_eq!(payloads(&first), vec![b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(backlog.read(7, next).unwrap(), (Bytes::new(), next));
        backlog.push(&group(&[b"ccc"]));
        let (second, after) = backlog.read(7, next).unwrap();
        assert_eq!(payloads(&second), vec![b"ccc".to_vec()]);
        assert_eq!(after, backlog.end());
        assert_eq!(backlog.read(8, next), Err(Gone::OtherRun));
        assert_eq!(backlog.read(7, 1), Err(Gone::OutOfRange), "not a boundary");
        for _ in 0..10 {
            backlog.push(&group(&[&[9; 20]]));
        }
        assert!(backlog.start() > 0, "old groups fall off past the limit");
        assert_eq!(backlog.read(7, 0), Err(Gone::OutOfRange));
        let (tail, end) = backlog.read(7, backlog.start()).unwrap();
        assert_eq!(end, backlog.end());
        assert!(payloads(&tail).len() >= 3);
    }

    #[test]
    fn the_newest_group_is_kept_whatever_its_size() {
        let mut backlog = Backlog::new(1, 10);
        backlog.push(&group(&[&[1; 50]]));
        let (records, next) = backlog.read(1, 0).unwrap();
        assert_eq!(payloads(&records), vec![vec![1; 50]]);
        assert_eq!(next, backlog.end());
    }
}
