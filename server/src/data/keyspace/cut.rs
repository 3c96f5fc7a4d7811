//! Point-in-time snapshots of a keyspace that keeps changing (the versioned cut), and
//! the layout of the entries they save.

use std::hash::BuildHasher;

use super::{Found, Keyspace, Slot, StoredValue, NO_DEADLINE};
use crate::data::codec::{frame, Out};

/// A point-in-time snapshot being taken while the keyspace keeps changing.
///
/// Each slot is saved exactly once, as it was when the snapshot began: a sweep walks the
/// table's buckets a few at a time, and any change to a slot the sweep has not reached
/// saves the slot first. Slots made after the start are stamped as saved, so they are
/// left out. The snapshot costs the entries waiting to be written, never a copy of the
/// keyspace.
pub(super) struct Cut {
    /// The snapshot's number, stamped on each slot saved.
    number: u32,
    /// Next bucket the sweep looks at.
    cursor: usize,
    /// Buckets the table had when the sweep last looked; a resize moves slots between
    /// buckets, so the sweep starts over and the stamps skip what is saved already.
    buckets: usize,
    /// Saved entries, framed as records, not yet taken by the writer.
    entries: bytes::BytesMut,
    /// Entries saved so far.
    saved: u64,
}

/// Frames one entry as a snapshot saves it: `KEY_ENTRY`, key, deadline (0: none), then
/// the value.
pub fn save_entry<V: StoredValue>(
    entries: &mut bytes::BytesMut,
    key: &[u8],
    deadline: Option<u64>,
    value: &V,
) {
    frame(entries, |buf| {
        let mut out = Out::new(buf);
        out.byte(KEY_ENTRY);
        out.bytes(key);
        out.uint(deadline.unwrap_or(NO_DEADLINE));
        value.save(&mut out);
    });
}

/// A snapshot entry's first byte: a key and its value.
pub const KEY_ENTRY: u8 = 0;
/// A snapshot entry's first byte: one shard's view of a geo member.
pub const GEO_ENTRY: u8 = 1;

/// Frames one geo member as a snapshot saves it.
pub fn save_geo_entry(entries: &mut bytes::BytesMut, member: &crate::data::geo::SavedMember) {
    frame(entries, |buf| {
        let mut out = Out::new(buf);
        out.byte(GEO_ENTRY);
        member.save(&mut out);
    });
}

fn save_slot<V: StoredValue>(entries: &mut bytes::BytesMut, slot: &Slot<V>) {
    let deadline = slot.timing.deadline();
    let deadline = (deadline != NO_DEADLINE).then_some(deadline);
    save_entry(
        entries,
        slot.key.as_bytes().unwrap_or_default(),
        deadline,
        &slot.value,
    );
}

impl<V: StoredValue> Keyspace<V> {
    /// Begins a point-in-time snapshot: from now on, `cut_step` and every change save
    /// each slot as it is at this moment. Returns the snapshot's number.
    pub fn begin_cut(&mut self) -> u32 {
        self.last_cut = self.last_cut.wrapping_add(1);
        // Geo indexes are saved whole, here: their members are a small part of a
        // shard's state, and this keeps their cut exact without stamps of their own.
        let mut entries = bytes::BytesMut::new();
        let geo = self.geo.save_all();
        for member in &geo {
            save_geo_entry(&mut entries, member);
        }
        self.cut = Some(Cut {
            number: self.last_cut,
            cursor: 0,
            buckets: self.table.num_buckets(),
            entries,
            saved: geo.len() as u64,
        });
        self.last_cut
    }

    /// Whether a snapshot is being taken.
    pub fn is_cutting(&self) -> bool {
        self.cut.is_some()
    }

    /// Sweeps up to `budget` buckets for the snapshot being taken; `true` once every slot
    /// is saved (the entries are then all in `take_cut_entries`).
    pub fn cut_step(&mut self, budget: usize) -> bool {
        let Some(cut) = self.cut.as_mut() else {
            return true;
        };
        if cut.buckets != self.table.num_buckets() {
            cut.buckets = self.table.num_buckets();
            cut.cursor = 0;
        }
        let end = cut.cursor.saturating_add(budget).min(cut.buckets);
        for index in cut.cursor..end {
            if let Some(slot) = self.table.get_bucket_mut(index) {
                if slot.saved_in != cut.number {
                    slot.saved_in = cut.number;
                    save_slot(&mut cut.entries, slot);
                    cut.saved += 1;
                }
            }
        }
        cut.cursor = end;
        end == cut.buckets
    }

    /// Takes the entries saved since the last call, leaving `spare` (emptied) in their
    /// place; `None` if no snapshot is being taken.
    pub fn take_cut_entries(&mut self, spare: &mut bytes::BytesMut) -> Option<u64> {
        let cut = self.cut.as_mut()?;
        spare.clear();
        std::mem::swap(&mut cut.entries, spare);
        Some(cut.saved)
    }

    /// Ends the snapshot being taken (finished, or abandoned after a failure).
    pub fn end_cut(&mut self) {
        self.cut = None;
    }

    /// Saves the slot at `index` for the snapshot being taken, if it is not in it yet.
    pub(super) fn save_before_change(&mut self, index: usize) {
        let Some(cut) = self.cut.as_mut() else {
            return;
        };
        if let Some(slot) = self.table.get_bucket_mut(index) {
            if slot.saved_in != cut.number {
                slot.saved_in = cut.number;
                save_slot(&mut cut.entries, slot);
                cut.saved += 1;
            }
        }
    }

    /// Puts a loaded entry back, as it was saved: a snapshot's load, before any record is
    /// replayed, where every key is new (a snapshot saves each slot once, and the shards a
    /// reshard merges never shared a key), so no lookup is needed.
    pub fn restore(&mut self, key: &[u8], value: V, deadline: Option<u64>) {
        let hash = self.hash(key);
        debug_assert!(
            self.table
                .find_bucket_index(hash, |s| s.key.eq_bytes(key))
                .is_none(),
            "a snapshot holds each key once"
        );
        self.write(Found { hash, index: None }, key, value, deadline);
    }

    /// Makes room for `additional` more keys at once, so a load does not grow the table
    /// step by step.
    pub fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        self.table.reserve(additional, |s| {
            hasher.hash_one(s.key.as_bytes().unwrap_or_default())
        });
    }

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

    /// How many positions the table has now; positions stay put until it grows.
    pub fn table_positions(&self) -> usize {
        self.table.num_buckets()
    }

    /// The live keys (with their values) at table positions `from..from + count`, and
    /// the position after them (the table's size once the walk is past its end).
    pub fn keys_at(&self, from: usize, count: usize, now: u64) -> (usize, Vec<(&[u8], &V)>) {
        let end = from.saturating_add(count).min(self.table.num_buckets());
        let found = (from..end)
            .filter_map(|index| self.table.get_bucket(index))
            .filter(|slot| !slot.is_expired(now))
            .map(|slot| (slot.key.as_bytes().unwrap_or_default(), &slot.value))
            .collect();
        (end, found)
    }
}
