//! An order-statistic index of scored members: members in score order in chunks of at
//! most 256 entries, a Fenwick tree over the chunk sizes (a rank in O(log n), an insert
//! moving at most one chunk's entries), and a table from member to score.
//! docs/DECISIONS.md has the measurement against crossbeam-skiplist.

use std::cmp::Ordering;
use std::rc::Rc;

/// Most entries in one chunk; a full chunk splits in two.
const CHUNK: usize = 256;

/// Redis's order: by score, then by member bytes. Scores are never NaN; -0 is stored as 0.
pub fn order(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// -0 and 0 are one score, as in Redis.
pub fn normal(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// A large set's members in order, in chunks, with a Fenwick tree of chunk sizes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ordered {
    pub(crate) chunks: Vec<Vec<(f64, Rc<[u8]>)>>,
    /// 1-based Fenwick tree over `chunks[i].len()`.
    sizes: Vec<usize>,
    pub(crate) scores: hashbrown::HashMap<Rc<[u8]>, f64>,
    /// Bytes of the members with their per-member overhead, kept as members come and go:
    /// memory accounting asks after each write, and summing them made writes linear.
    member_bytes: usize,
}

impl Ordered {
    /// Members in the index.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// A member's 0-based rank from the lowest score, if it is there.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = *self.scores.get(member)?;
        Some(self.rank_of((score, member)))
    }

    /// Sets a member's score, adding it if new.
    pub fn set(&mut self, score: f64, member: &[u8]) {
        self.remove(member);
        self.insert(normal(score), member);
    }

    /// The members at ranks `from..to`, lowest first.
    pub fn members(&self, from: usize, to: usize) -> Vec<&[u8]> {
        self.ranks(from, to).into_iter().map(|(_, m)| m).collect()
    }

    fn rebuild(&mut self) {
        self.sizes = vec![0; self.chunks.len() + 1];
        for i in 0..self.chunks.len() {
            self.grow(i, self.chunks[i].len() as isize);
        }
    }

    fn grow(&mut self, chunk: usize, by: isize) {
        let mut i = chunk + 1;
        while i < self.sizes.len() {
            self.sizes[i] = (self.sizes[i] as isize + by) as usize;
            i += i & i.wrapping_neg();
        }
    }

    /// Entries in the chunks before `chunk`.
    pub(crate) fn before(&self, chunk: usize) -> usize {
        let (mut i, mut sum) = (chunk, 0);
        while i > 0 {
            sum += self.sizes[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// The chunk an entry belongs in: the first whose last entry is not below it.
    fn chunk_of(&self, entry: (f64, &[u8])) -> usize {
        let at = self.chunks.partition_point(|chunk| {
            chunk
                .last()
                .is_some_and(|(s, m)| order((*s, m), entry) == Ordering::Less)
        });
        at.min(self.chunks.len().saturating_sub(1))
    }

    pub(crate) fn rank_of(&self, entry: (f64, &[u8])) -> usize {
        if self.chunks.is_empty() {
            return 0;
        }
        let chunk = self.chunk_of(entry);
        let within =
            self.chunks[chunk].partition_point(|(s, m)| order((*s, m), entry) == Ordering::Less);
        self.before(chunk) + within
    }

    pub(crate) fn insert(&mut self, score: f64, member: &[u8]) {
        let member: Rc<[u8]> = member.into();
        if self.scores.insert(member.clone(), score).is_none() {
            self.member_bytes += member.len() + 16;
        }
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
            self.rebuild();
        }
        let chunk = self.chunk_of((score, &member));
        let entries = &mut self.chunks[chunk];
        let at =
            entries.partition_point(|(s, m)| order((*s, m), (score, &member)) == Ordering::Less);
        entries.insert(at, (score, member));
        if entries.len() > CHUNK {
            let upper = entries.split_off(CHUNK / 2);
            self.chunks.insert(chunk + 1, upper);
            self.rebuild();
        } else {
            self.grow(chunk, 1);
        }
    }

    /// Removes a member, answering its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?;
        self.member_bytes -= member.len() + 16;
        let chunk = self.chunk_of((score, member));
        let entries = &mut self.chunks[chunk];
        if let Ok(at) = entries.binary_search_by(|(s, m)| order((*s, m), (score, member))) {
            entries.remove(at);
        }
        if entries.is_empty() {
            self.chunks.remove(chunk);
            self.rebuild();
        } else {
            self.grow(chunk, -1);
        }
        Some(score)
    }

    /// The chunk holding rank `rank`, and the rank's offset in it (a descent of the
    /// Fenwick tree).
    fn locate(&self, rank: usize) -> (usize, usize) {
        let (mut chunk, mut offset) = (0, rank);
        let mut step = self.sizes.len().next_power_of_two() / 2;
        while step > 0 {
            let next = chunk + step;
            if next < self.sizes.len() && self.sizes[next] <= offset {
                chunk = next;
                offset -= self.sizes[next];
            }
            step /= 2;
        }
        (chunk, offset)
    }

    /// The entries at ranks `from..to`, in order.
    pub(crate) fn ranks(&self, from: usize, to: usize) -> Vec<(f64, &[u8])> {
        let mut out = Vec::with_capacity(to.saturating_sub(from));
        let (first, offset) = self.locate(from);
        let mut skip = offset;
        for chunk in self.chunks.iter().skip(first) {
            for (score, member) in &chunk[skip.min(chunk.len())..] {
                if from + out.len() >= to {
                    return out;
                }
                out.push((*score, &member[..]));
            }
            skip = 0;
        }
        out
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(f64, Rc<[u8]>)>();
        // A chunk splits when it passes CHUNK entries, so its room is at most the 2 × CHUNK
        // its vector grew to: counted as that, not summed chunk by chunk on every write.
        self.member_bytes
            + self.chunks.len() * 2 * CHUNK * entry
            + self.scores.capacity() * (entry + 1)
            + self.sizes.capacity() * std::mem::size_of::<usize>()
    }
}
