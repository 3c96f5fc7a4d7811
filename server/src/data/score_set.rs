//! A sorted set's members: a score-ordered set with ranks.
//!
//! A small set (Redis's listpack limits: at most 128 members of at most 64 bytes) is one
//! packed buffer kept in order and scanned, a few bytes per member. A larger one is a
//! `data::ordered::Ordered` index.

use std::cmp::Ordering;

use bytes::Bytes;
use tessera_protocol::commands::hashes::Finite;
use tessera_protocol::commands::sorted_sets::{Bound, Selection};

use crate::data::codec::{Damaged, In, Out};
use crate::data::ordered::{normal, order, Ordered};

/// Most members a packed set holds before it becomes an index.
const PACKED_MAX_MEMBERS: usize = 128;
/// Longest member a packed set holds.
const PACKED_MAX_BYTES: usize = 64;

/// A sorted set's members.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreSet {
    /// Entries in order: `score:f64 len:uvarint member`.
    Packed(Box<[u8]>),
    /// An index, for sets past the packed limits.
    Indexed(Box<Ordered>),
}

impl Eq for ScoreSet {}

impl Default for ScoreSet {
    fn default() -> Self {
        ScoreSet::Packed(Box::default())
    }
}

fn packed(buf: &[u8]) -> impl Iterator<Item = (f64, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let score = f64::from_le_bytes(buf.get(at..at + 8)?.try_into().ok()?);
        at += 8;
        let (mut len, mut shift) = (0usize, 0);
        while let Some(&byte) = buf.get(at) {
            at += 1;
            len |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let member = buf.get(at..at + len)?;
        at += len;
        Some((score, member))
    })
}

fn pack<'a>(entries: impl Iterator<Item = (f64, &'a [u8])>) -> Box<[u8]> {
    let mut out = Vec::new();
    for (score, member) in entries {
        out.extend_from_slice(&score.to_le_bytes());
        let mut len = member.len();
        while len >= 0x80 {
            out.push(len as u8 | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(member);
    }
    out.into_boxed_slice()
}

impl ScoreSet {
    /// Saves every member with its score, lowest first.
    pub fn save(&self, out: &mut Out<'_>) {
        out.uint(self.len() as u64);
        let mut put = |(score, member): (f64, &[u8])| {
            out.float(score);
            out.bytes(member);
        };
        match self {
            ScoreSet::Packed(buf) => packed(buf).for_each(&mut put),
            ScoreSet::Indexed(index) => index.ranks(0, index.len()).into_iter().for_each(put),
        }
    }

    /// Reads members `save` wrote.
    ///
    /// # Errors
    /// The bytes are damaged, or a score is not a number.
    pub fn load(input: &mut In<'_>) -> Result<ScoreSet, Damaged> {
        let mut set = ScoreSet::default();
        for _ in 0..input.count()? {
            let score = input.float()?;
            if score.is_nan() {
                return Err(Damaged("a member's score is not a number"));
            }
            set.put(score, input.bytes()?);
        }
        Ok(set)
    }

    /// Members in the set.
    pub fn len(&self) -> usize {
        match self {
            ScoreSet::Packed(buf) => packed(buf).count(),
            ScoreSet::Indexed(index) => index.scores.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ScoreSet::Packed(buf) => packed(buf).find(|(_, m)| *m == member).map(|(s, _)| s),
            ScoreSet::Indexed(index) => index.scores.get(member).copied(),
        }
    }

    /// A member's rank from the lowest score and its score, in one look.
    pub(crate) fn position(&self, member: &[u8]) -> Option<(usize, f64)> {
        match self {
            ScoreSet::Packed(buf) => packed(buf)
                .enumerate()
                .find(|(_, (_, m))| *m == member)
                .map(|(rank, (score, _))| (rank, score)),
            ScoreSet::Indexed(index) => {
                let score = *index.scores.get(member)?;
                Some((index.rank_of((score, member)), score))
            }
        }
    }

    /// Members strictly below a lower bound, or not above an upper one: a rank.
    pub(crate) fn rank_of_bound(&self, bound: Bound, lower: bool) -> usize {
        let inside = |score: f64| {
            if lower {
                bound.admits_from_below(score)
            } else {
                !bound.admits_from_above(score)
            }
        };
        match self {
            ScoreSet::Packed(buf) => packed(buf).take_while(|(s, _)| !inside(*s)).count(),
            ScoreSet::Indexed(index) => {
                // Scores rise along the chunks, so the first inside entry is in the first
                // chunk whose last entry is inside.
                let chunks = &index.chunks;
                let chunk = chunks.partition_point(|c| c.last().is_some_and(|(s, _)| !inside(*s)));
                match chunks.get(chunk) {
                    None => index.scores.len(),
                    Some(entries) => {
                        index.before(chunk) + entries.partition_point(|(s, _)| !inside(*s))
                    }
                }
            }
        }
    }

    /// The entries at ranks `from..to`, owned.
    pub(crate) fn ranks(&self, from: usize, to: usize) -> Vec<(Bytes, f64)> {
        let own = |(score, member): (f64, &[u8])| (Bytes::copy_from_slice(member), score);
        match self {
            ScoreSet::Packed(buf) => packed(buf)
                .skip(from)
                .take(to.saturating_sub(from))
                .map(own)
                .collect(),
            ScoreSet::Indexed(index) => index.ranks(from, to).into_iter().map(own).collect(),
        }
    }

    pub(crate) fn put(&mut self, score: f64, member: &[u8]) {
        let score = normal(score);
        if let ScoreSet::Indexed(index) = self {
            index.remove(member);
            index.insert(score, member);
            return;
        }
        let ScoreSet::Packed(buf) = self else { return };
        let mut entries: Vec<(f64, &[u8])> = packed(buf).filter(|(_, m)| *m != member).collect();
        let at = entries.partition_point(|e| order(*e, (score, member)) == Ordering::Less);
        entries.insert(at, (score, member));
        if entries.len() > PACKED_MAX_MEMBERS || member.len() > PACKED_MAX_BYTES {
            let mut index = Ordered::default();
            for (score, member) in entries {
                index.insert(score, member);
            }
            *self = ScoreSet::Indexed(Box::new(index));
        } else {
            *buf = pack(entries.into_iter());
        }
    }

    pub(crate) fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            ScoreSet::Packed(buf) => {
                if !packed(buf).any(|(_, m)| m == member) {
                    return false;
                }
                *buf = pack(packed(buf).filter(|(_, m)| *m != member));
                true
            }
            ScoreSet::Indexed(index) => index.remove(member).is_some(),
        }
    }

    /// The entries scored in `min..max` (`max` itself left out), lent out of the set,
    /// lowest first.
    pub(crate) fn scored_within(&self, min: f64, max: f64) -> Vec<(f64, &[u8])> {
        let bound = |score, exclusive| Bound {
            score: Finite::new(score).unwrap_or(Finite::ZERO),
            exclusive,
        };
        let (from, to) = self.score_span(bound(min, false), bound(max, true));
        match self {
            ScoreSet::Packed(buf) => packed(buf).skip(from).take(to - from).collect(),
            ScoreSet::Indexed(index) => index.ranks(from, to),
        }
    }

    /// Every entry, lowest score first, owned.
    pub(crate) fn entries(&self) -> Vec<(Bytes, f64)> {
        self.ranks(0, self.len())
    }

    /// A set holding these entries.
    pub(crate) fn from_entries(entries: impl IntoIterator<Item = (Bytes, f64)>) -> ScoreSet {
        let mut set = ScoreSet::default();
        for (member, score) in entries {
            set.put(score, &member);
        }
        set
    }

    /// Heap bytes owned, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            ScoreSet::Packed(buf) => buf.len(),
            ScoreSet::Indexed(index) => std::mem::size_of::<Ordered>() + index.heap_bytes(),
        }
    }

    /// The ranks (lowest first) ZRANGE answers: by rank or score, REV counting ranks from
    /// the highest score, LIMIT paging from the end the reply starts at.
    pub(crate) fn select(
        &self,
        selection: Selection,
        rev: bool,
        limit: Option<(i64, i64)>,
    ) -> (usize, usize) {
        let (mut from, mut to) = match selection {
            Selection::Rank { start, stop } => {
                let (from, to) = self.rank_span(start, stop);
                if rev {
                    (self.len() - to, self.len() - from)
                } else {
                    (from, to)
                }
            }
            Selection::Score { min, max } => self.score_span(min, max),
        };
        if let Some((offset, count)) = limit {
            let span = to - from;
            let skip = usize::try_from(offset).unwrap_or(span).min(span);
            let keep = usize::try_from(count).unwrap_or(span).min(span - skip);
            if rev {
                to -= skip;
                from = to - keep;
            } else {
                from += skip;
                to = from + keep;
            }
        }
        (from, to)
    }

    /// The members at ranks `from..to`, lent out of the set.
    pub(crate) fn members(&self, from: usize, to: usize) -> Vec<&[u8]> {
        match self {
            ScoreSet::Packed(buf) => packed(buf)
                .skip(from)
                .take(to.saturating_sub(from))
                .map(|(_, member)| member)
                .collect(),
            ScoreSet::Indexed(index) => index.members(from, to),
        }
    }

    /// The rank range `start..=stop` (negative from the end) as `from..to`, Redis-style.
    pub(crate) fn rank_span(&self, start: i64, stop: i64) -> (usize, usize) {
        let len = self.len() as i64;
        let start = if start < 0 { start + len } else { start }.max(0);
        let stop = if stop < 0 { stop + len } else { stop }.min(len - 1);
        if start > stop || start >= len {
            (0, 0)
        } else {
            (start as usize, stop as usize + 1)
        }
    }

    /// The ranks with scores in `min..=max`.
    pub(crate) fn score_span(&self, min: Bound, max: Bound) -> (usize, usize) {
        let from = self.rank_of_bound(min, true);
        let to = self.rank_of_bound(max, false);
        (from, to.max(from))
    }
}
