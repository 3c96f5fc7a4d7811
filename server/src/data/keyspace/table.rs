//! The key table: a fixed directory of small hash tables, so the table grows one segment
//! at a time instead of moving every key at once.
//!
//! A single hash table doubles in one step, and at millions of keys that step held a
//! shard for tens of milliseconds. Here a key's hash picks one of `SEGMENTS` tables and
//! only that table ever grows on its insert, so the longest pause is a segment's doubling:
//! the shard's keys over `SEGMENTS`. Keys never move between segments, which keeps SCAN
//! cursors and the snapshot sweep valid in every segment they have finished.

use hashbrown::HashTable;

/// Bits of a place that name its segment.
const SEGMENT_BITS: u32 = 10;
/// Tables in the directory.
pub const SEGMENTS: usize = 1 << SEGMENT_BITS;
/// Where a hash's segment bits start: clear of the low bits a segment's buckets use and of
/// the top seven its control bytes use.
const SEGMENT_SHIFT: u32 = 32;

/// A position in the table: a segment and a bucket in it, in one word. Valid until the
/// table is next changed.
pub type Place = usize;

/// A position a walk over the table resumes at: a segment, its size when the walk was
/// there, and a bucket in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkCursor {
    /// The segment the walk is in.
    pub segment: usize,
    /// That segment's buckets, as a power of two, when the walk was last in it: if it has
    /// grown since, its keys have moved and the walk starts that segment again.
    pub size_log2: u32,
    /// The next bucket.
    pub bucket: usize,
}

impl WalkCursor {
    /// The start of a walk.
    pub const START: WalkCursor = WalkCursor {
        segment: 0,
        size_log2: 0,
        bucket: 0,
    };
}

/// A table of `T`s by 64-bit hash, grown a segment at a time.
pub struct Table<T> {
    segments: Box<[HashTable<T>]>,
    len: usize,
    /// Bytes the segments have allocated, kept as they grow so the memory count is one read.
    allocated: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            segments: (0..SEGMENTS).map(|_| HashTable::new()).collect(),
            len: 0,
            allocated: 0,
        }
    }
}

fn segment_of(hash: u64) -> usize {
    (hash >> SEGMENT_SHIFT) as usize & (SEGMENTS - 1)
}

fn place(segment: usize, bucket: usize) -> Place {
    bucket << SEGMENT_BITS | segment
}

fn split(place: Place) -> (usize, usize) {
    (place & (SEGMENTS - 1), place >> SEGMENT_BITS)
}

impl<T> Table<T> {
    /// The place of the entry with `hash` that `eq` accepts.
    pub fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<Place> {
        let segment = segment_of(hash);
        let bucket = self.segments[segment].find_bucket_index(hash, eq)?;
        Some(place(segment, bucket))
    }

    /// The entry with `hash` that `eq` accepts, to change in place.
    pub fn find_mut(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&mut T> {
        self.segments[segment_of(hash)].find_mut(hash, eq)
    }

    /// The entry at `place`, if one is there.
    pub fn get(&self, place: Place) -> Option<&T> {
        let (segment, bucket) = split(place);
        self.segments.get(segment)?.get_bucket(bucket)
    }

    /// The entry at `place`, to change in place.
    pub fn get_mut(&mut self, place: Place) -> Option<&mut T> {
        let (segment, bucket) = split(place);
        self.segments.get_mut(segment)?.get_bucket_mut(bucket)
    }

    /// Takes the entry at `place` out.
    pub fn remove(&mut self, place: Place) -> Option<T> {
        let (segment, bucket) = split(place);
        let entry = self
            .segments
            .get_mut(segment)?
            .get_bucket_entry(bucket)
            .ok()?;
        self.len -= 1;
        Some(entry.remove().0)
    }

    /// Whether inserting an entry with `hash` would grow its segment.
    pub fn grows_on_insert(&self, hash: u64) -> bool {
        let segment = &self.segments[segment_of(hash)];
        segment.len() == segment.capacity()
    }

    /// Adds an entry no other has the key of; `rehash` gives an entry's hash, for a
    /// segment that grows.
    pub fn insert_unique(&mut self, hash: u64, value: T, rehash: impl Fn(&T) -> u64) {
        let segment = &mut self.segments[segment_of(hash)];
        let before = segment.allocation_size();
        segment.insert_unique(hash, value, rehash);
        self.allocated = self.allocated + segment.allocation_size() - before;
        self.len += 1;
    }

    /// Makes room for `additional` more entries spread evenly by hash, so a load does not
    /// grow every segment step by step.
    pub fn reserve(&mut self, additional: usize, rehash: impl Fn(&T) -> u64) {
        // A few percent over the even share covers the spread of a uniform hash.
        let share = additional / SEGMENTS + additional / SEGMENTS / 16 + 1;
        for segment in self.segments.iter_mut() {
            let before = segment.allocation_size();
            segment.reserve(share, &rehash);
            self.allocated = self.allocated + segment.allocation_size() - before;
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.segments.iter().flat_map(|segment| segment.iter())
    }

    /// Bytes the segments have allocated.
    pub fn allocation_size(&self) -> usize {
        self.allocated
    }

    /// The place a random word points at, if an entry is there: a random segment, then a
    /// random bucket in it.
    pub fn probe(&self, random: u64) -> Option<Place> {
        let segment = random as usize & (SEGMENTS - 1);
        let buckets = self.segments[segment].num_buckets();
        if buckets == 0 {
            return None;
        }
        let bucket = ((random >> SEGMENT_BITS) % buckets as u64) as usize;
        self.segments[segment].get_bucket(bucket)?;
        Some(place(segment, bucket))
    }

    /// The first place from a random start, wrapping around, whose entry `accept` takes:
    /// for a table so sparse that random probes keep missing.
    pub fn first_from(&self, random: u64, mut accept: impl FnMut(&T) -> bool) -> Option<Place> {
        let start = random as usize & (SEGMENTS - 1);
        let start_buckets = self.segments[start].num_buckets();
        let from = ((random >> SEGMENT_BITS) as usize)
            .checked_rem(start_buckets)
            .unwrap_or(0);
        // The start segment from a random bucket, every other segment, then the start
        // segment's head.
        let others = (1..SEGMENTS).map(|step| {
            let segment = (start + step) % SEGMENTS;
            (segment, 0..self.segments[segment].num_buckets())
        });
        std::iter::once((start, from..start_buckets))
            .chain(others)
            .chain(std::iter::once((start, 0..from)))
            .find_map(|(segment, buckets)| {
                let table = &self.segments[segment];
                buckets
                    .into_iter()
                    .find(|&bucket| table.get_bucket(bucket).is_some_and(&mut accept))
                    .map(|bucket| place(segment, bucket))
            })
    }

    /// Walks up to `budget` buckets from `cursor`, handing `visit` each entry there, and
    /// answers where the walk goes on (`None` once it is past the last segment). A cursor
    /// whose segment has grown since starts that segment again.
    pub fn walk<'a>(
        &'a self,
        cursor: WalkCursor,
        budget: usize,
        mut visit: impl FnMut(&'a T),
    ) -> Option<WalkCursor> {
        let (spans, next) = self.plan(cursor, budget);
        for (segment, buckets) in spans {
            let table = &self.segments[segment];
            buckets
                .filter_map(|b| table.get_bucket(b))
                .for_each(&mut visit);
        }
        next
    }

    /// Like `walk`, handing `visit` each entry to change in place.
    pub fn walk_mut(
        &mut self,
        cursor: WalkCursor,
        budget: usize,
        mut visit: impl FnMut(&mut T),
    ) -> Option<WalkCursor> {
        let (spans, next) = self.plan(cursor, budget);
        for (segment, buckets) in spans {
            let table = &mut self.segments[segment];
            for bucket in buckets {
                if let Some(entry) = table.get_bucket_mut(bucket) {
                    visit(entry);
                }
            }
        }
        next
    }

    /// The bucket ranges a walk of `budget` buckets from `cursor` covers, segment by
    /// segment, and where it goes on after them.
    fn plan(
        &self,
        cursor: WalkCursor,
        budget: usize,
    ) -> (Vec<(usize, std::ops::Range<usize>)>, Option<WalkCursor>) {
        let mut spans = Vec::new();
        let mut at = self.settle(cursor);
        let mut left = budget;
        while let Some(mut cursor) = at {
            if left == 0 {
                break;
            }
            let buckets = self.segments[cursor.segment].num_buckets();
            let end = buckets.min(cursor.bucket.saturating_add(left));
            spans.push((cursor.segment, cursor.bucket..end));
            left -= end - cursor.bucket;
            cursor.bucket = end;
            at = if end < buckets {
                Some(cursor)
            } else {
                self.settle(WalkCursor {
                    segment: cursor.segment + 1,
                    ..WalkCursor::START
                })
            };
        }
        (spans, at)
    }

    /// The cursor as the table stands now: restarted in its segment if that grew, and
    /// past any segments with nothing in them; `None` past the last.
    fn settle(&self, mut cursor: WalkCursor) -> Option<WalkCursor> {
        while let Some(table) = self.segments.get(cursor.segment) {
            let size_log2 = table.num_buckets().max(1).trailing_zeros();
            if cursor.size_log2 != size_log2 {
                cursor.size_log2 = size_log2;
                cursor.bucket = 0;
            }
            if table.is_empty() {
                cursor = WalkCursor {
                    segment: cursor.segment + 1,
                    ..WalkCursor::START
                };
                continue;
            }
            return Some(cursor);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::DefaultHashBuilder;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::hash::BuildHasher;

    /// A table of numbers hashed as the keyspace hashes keys.
    struct Numbers {
        table: Table<u64>,
        hasher: DefaultHashBuilder,
    }

    impl Numbers {
        fn new() -> Self {
            Self {
                table: Table::default(),
                hasher: DefaultHashBuilder::default(),
            }
        }

        fn insert(&mut self, n: u64) {
            let hasher = &self.hasher;
            self.table
                .insert_unique(hasher.hash_one(n), n, |&m| hasher.hash_one(m));
        }

        fn find(&self, n: u64) -> Option<Place> {
            self.table.find(self.hasher.hash_one(n), |&m| m == n)
        }

        /// Every number a walk of `budget` buckets a step answers, with how often.
        fn walk_counts(&self, budget: usize) -> BTreeMap<u64, usize> {
            let mut seen = BTreeMap::new();
            let mut at = Some(WalkCursor::START);
            while let Some(cursor) = at {
                at = self
                    .table
                    .walk(cursor, budget, |&n| *seen.entry(n).or_insert(0) += 1);
            }
            seen
        }
    }

    #[test]
    fn segments_stay_balanced_so_a_growth_step_moves_a_small_share() {
        let mut numbers = Numbers::new();
        for n in 0..400_000 {
            numbers.insert(n);
        }
        let largest = numbers
            .table
            .segments
            .iter()
            .map(HashTable::num_buckets)
            .max()
            .unwrap_or(0);
        let mean = numbers
            .table
            .segments
            .iter()
            .map(HashTable::num_buckets)
            .sum::<usize>()
            / SEGMENTS;
        // A uniform hash leaves every segment within one doubling of the rest, so the
        // longest pause is a 1/SEGMENTS-sized move, not the whole table's.
        assert!(
            largest <= 2 * mean,
            "largest {largest} buckets, mean {mean}"
        );
        assert_eq!(numbers.table.len(), 400_000);
        assert_eq!(
            numbers.table.allocation_size(),
            numbers
                .table
                .segments
                .iter()
                .map(HashTable::allocation_size)
                .sum::<usize>()
        );
    }

    #[test]
    fn random_probes_land_only_on_entries_and_a_sparse_table_is_still_found() {
        let mut numbers = Numbers::new();
        for n in 0..10_000 {
            numbers.insert(n);
        }
        for n in 1..10_000 {
            let at = numbers.find(n).expect("inserted");
            assert_eq!(numbers.table.remove(at), Some(n));
        }
        let only = numbers.find(0).expect("kept");
        let mut probed = 0;
        for random in 0..20_000u64 {
            let random = random.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            if let Some(at) = numbers.table.probe(random) {
                assert_eq!(at, only);
                probed += 1;
            }
            assert_eq!(numbers.table.first_from(random, |_| true), Some(only));
        }
        assert!(probed < 20_000, "a sparse table misses most probes");
        assert_eq!(numbers.table.first_from(7, |&n| n != 0), None);
    }

    proptest! {
        #[test]
        fn a_still_table_is_walked_once_over_at_any_step(
            count in 0u64..3_000,
            budget in 1usize..5_000,
        ) {
            let mut numbers = Numbers::new();
            for n in 0..count {
                numbers.insert(n);
            }
            let seen = numbers.walk_counts(budget);
            prop_assert_eq!(seen.len() as u64, count);
            prop_assert!(seen.values().all(|&times| times == 1));
        }

        #[test]
        fn a_walk_while_the_table_grows_answers_every_entry_there_throughout(
            count in 1u64..2_000,
            budget in 1usize..200,
            added_per_step in 1u64..500,
        ) {
            let mut numbers = Numbers::new();
            for n in 0..count {
                numbers.insert(n);
            }
            let mut seen = BTreeMap::new();
            // Growth stops after a while: a walk that keeps losing its place to growing
            // segments, as SCAN does, ends once they stop.
            let last = count * 4;
            let mut next = count;
            let mut at = Some(WalkCursor::START);
            while let Some(cursor) = at {
                at = numbers
                    .table
                    .walk(cursor, budget, |&n| *seen.entry(n).or_insert(0) += 1);
                let added = next..(next + added_per_step).min(last);
                next = added.end;
                added.for_each(|n| numbers.insert(n));
            }
            for n in 0..count {
                prop_assert!(seen.contains_key(&n), "{} was never answered", n);
            }
        }
    }
}
