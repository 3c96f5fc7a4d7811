//! A set of distinct byte strings: constant-time add, remove, lookup and random pick, and a
//! cursor walk that returns every member present for the whole walk.
//!
//! Members live in a vector, densely, with a hash table of their positions beside it. A
//! removal moves the last member into the hole, so positions stay dense (which makes a
//! random pick one index) and a member only ever moves down. A walk therefore goes from
//! the top position down: nothing it has not reached yet can move above it.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// Distinct members, densely numbered from 0.
#[derive(Clone, Default)]
pub struct Members {
    items: Vec<Box<[u8]>>,
    positions: HashTable<u32>,
    hasher: DefaultHashBuilder,
    bytes: usize,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.items.iter().map(|m| String::from_utf8_lossy(m)))
            .finish()
    }
}

impl PartialEq for Members {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

impl Eq for Members {}

impl Members {
    /// How many members.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every member, in position order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|m| &m[..])
    }

    /// The member at `position` (below `len`).
    pub fn at(&self, position: usize) -> &[u8] {
        &self.items[position]
    }

    /// The members' own bytes, for memory accounting.
    pub fn member_bytes(&self) -> usize {
        self.bytes
    }

    /// Heap bytes held, counted in constant time.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.positions.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.bytes
    }

    fn find(&self, member: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(member);
        self.positions
            .find(hash, |&at| &self.items[at as usize][..] == member)
            .map(|&at| at as usize)
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.find(member).is_some()
    }

    /// Adds `member`; whether it was new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        let hash = self.hasher.hash_one(member);
        let Members {
            items,
            positions,
            hasher,
            bytes,
        } = self;
        if positions
            .find(hash, |&at| &items[at as usize][..] == member)
            .is_some()
        {
            return false;
        }
        let at = u32::try_from(items.len()).expect("a set holds fewer than 2^32 members");
        positions.insert_unique(hash, at, |&at| hasher.hash_one(&items[at as usize][..]));
        items.push(member.into());
        *bytes += member.len();
        true
    }

    /// Removes `member`; whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.find(member) {
            Some(at) => {
                self.take_at(at);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the member at `position` (below `len`); the last member takes
    /// its place.
    pub fn take_at(&mut self, position: usize) -> Box<[u8]> {
        let hash = self.hasher.hash_one(&self.items[position][..]);
        if let Ok(entry) = self
            .positions
            .find_entry(hash, |&at| at as usize == position)
        {
            entry.remove();
        }
        let last = self.items.len() - 1;
        if position != last {
            let moved = self.hasher.hash_one(&self.items[last][..]);
            if let Some(slot) = self.positions.find_mut(moved, |&at| at as usize == last) {
                *slot = position as u32;
            }
        }
        let member = self.items.swap_remove(position);
        self.bytes -= member.len();
        member
    }

    /// One step of a walk: the members at positions below `cursor` (the whole set when
    /// `cursor` is 0), at most `count` of them from the top down, and the cursor to pass
    /// next (0 when the walk is done).
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, &[Box<[u8]>]) {
        let top = match cursor {
            0 => self.items.len(),
            cursor => usize::try_from(cursor).map_or(self.items.len(), |c| c.min(self.items.len())),
        };
        let bottom = top.saturating_sub(count.max(1));
        (bottom as u64, &self.items[bottom..top])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn adds_removes_and_finds_like_a_set() {
        let mut set = Members::default();
        let mut model = BTreeSet::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let member = format!("m{}", rng % 500).into_bytes();
            if rng.is_multiple_of(3) {
                assert_eq!(set.remove(&member), model.remove(&member));
            } else {
                assert_eq!(set.insert(&member), model.insert(member.clone()));
            }
            assert_eq!(set.len(), model.len());
        }
        for member in &model {
            assert!(set.contains(member));
        }
        let listed: BTreeSet<Vec<u8>> = set.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(listed, model);
        assert_eq!(
            set.member_bytes(),
            model.iter().map(Vec::len).sum::<usize>()
        );
    }

    #[test]
    fn a_walk_returns_every_member_present_throughout_despite_changes() {
        let mut set = Members::default();
        for i in 0..1_000 {
            set.insert(format!("keep{i}").as_bytes());
            set.insert(format!("drop{i}").as_bytes());
        }
        let mut seen = BTreeSet::new();
        let (mut cursor, mut step, mut added) = (0, 0, 0);
        loop {
            let (next, members) = set.scan(cursor, 37);
            seen.extend(members.iter().map(|m| m.to_vec()));
            // Between steps, members come and go: the walk must still see every keeper.
            for _ in 0..20 {
                set.remove(format!("drop{step}").as_bytes());
                step += 1;
            }
            for _ in 0..5 {
                set.insert(format!("new{added}").as_bytes());
                added += 1;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..1_000 {
            assert!(seen.contains(format!("keep{i}").as_bytes()), "keep{i}");
        }
    }
}
