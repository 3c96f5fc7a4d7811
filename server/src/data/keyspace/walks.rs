//! Walks over a keyspace: every entry, SCAN's steps, and a key picked at random.

use super::table::WalkCursor;
use super::{Keyspace, Slot, StoredValue, NO_DEADLINE};

impl<V: StoredValue> Keyspace<V> {
    /// Every key with its value and deadline, in no order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &V, Option<u64>)> {
        self.table.iter().map(|slot| {
            (
                slot.key.as_bytes().unwrap_or_default(),
                &slot.value,
                (slot.timing.deadline() != NO_DEADLINE).then_some(slot.timing.deadline()),
            )
        })
    }

    /// One SCAN step: the live keys (with their values) in the next `count` buckets from
    /// `cursor`, and where the next step goes on (`None` once the table is walked). A key
    /// present for the whole walk is answered at least once.
    pub fn scan(
        &self,
        cursor: WalkCursor,
        count: usize,
        now: u64,
    ) -> (Option<WalkCursor>, Vec<(&[u8], &V)>) {
        let mut found = Vec::new();
        let next = self.table.walk(cursor, count, |slot| {
            if !slot.is_expired(now) {
                found.push((slot.key.as_bytes().unwrap_or_default(), &slot.value));
            }
        });
        (next, found)
    }

    /// A live key picked at random: a few random probes, then a walk from a random place,
    /// so a sparse table still answers in bounded steps.
    pub fn random_key(&mut self, now: u64) -> Option<&[u8]> {
        if self.table.is_empty() {
            return None;
        }
        let live = |slot: &Slot<V>| !slot.is_expired(now);
        let mut found = None;
        for _ in 0..RANDOM_PROBES {
            let random = self.next_random();
            found = self
                .table
                .probe(random)
                .filter(|&at| self.table.get(at).is_some_and(live));
            if found.is_some() {
                break;
            }
        }
        if found.is_none() {
            let random = self.next_random();
            found = self.table.first_from(random, live);
        }
        self.table.get(found?).and_then(|slot| slot.key.as_bytes())
    }
}

/// Random places tried before walking from one for a live key.
const RANDOM_PROBES: usize = 64;
