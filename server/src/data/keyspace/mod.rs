//! One shard's keys: a flat hash table of slots with lazy and sampled active expiry.
//!
//! Keys with a deadline are also listed, by hash, in `volatile`; each such slot knows its
//! position there. Active expiry samples that list at random, Redis-style, so it never
//! scans the keyspace and costs nothing for keys without a deadline.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

pub use crate::data::blob::Blob;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tessera_cluster::hash_tag;

use crate::data::codec::Out;
use crate::data::geo::GeoShard;
use crate::data::inventory::StockLevel;
use crate::data::watch::Watches;

mod evict;
mod wheel;
pub use evict::Policy;
use evict::Timing;
use wheel::ExpiryWheel;

/// A store's figures, kept up to date with every change to its SKUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreFigures {
    /// SKUs in the store.
    pub skus: i64,
    /// SKUs with nothing available.
    pub sold_out: i64,
    /// SKUs at or below their low-stock mark (not sold out).
    pub low_stock: i64,
}

/// What a value adds to the shard's totals: its heap bytes and, for a SKU, its level.
#[derive(Clone, Copy)]
struct Footprint {
    heap: usize,
    stock: Option<StockLevel>,
}

impl Footprint {
    fn of<V: StoredValue>(value: &V) -> Footprint {
        Footprint {
            heap: value.heap_bytes(),
            stock: value.stock(),
        }
    }
}

/// What the keyspace needs from the values it holds.
pub trait StoredValue: std::fmt::Debug {
    /// Heap bytes owned, for memory accounting.
    fn heap_bytes(&self) -> usize;

    /// Writes the value as a snapshot saves it.
    fn save(&self, out: &mut Out<'_>);

    /// A SKU's stock level: SKUs named with a `{store}` tag count toward its figures.
    fn stock(&self) -> Option<StockLevel> {
        None
    }
}

impl StoredValue for Blob {
    fn heap_bytes(&self) -> usize {
        Blob::heap_bytes(self)
    }

    fn save(&self, out: &mut Out<'_>) {
        match self {
            Blob::Int(n) => {
                out.byte(1);
                out.int(*n);
            }
            _ => {
                out.byte(0);
                out.bytes(self.as_bytes().unwrap_or_default());
            }
        }
    }
}

/// Where a lookup landed: the key's hash and, if it is live, its bucket. Valid until the
/// keyspace is next changed; the write methods consume it so it cannot outlive that.
#[derive(Debug)]
pub struct Found {
    hash: u64,
    index: Option<usize>,
}

impl Found {
    /// Whether the key exists and is live.
    pub fn exists(&self) -> bool {
        self.index.is_some()
    }
}

/// Deadline value meaning "never expires".
const NO_DEADLINE: u64 = 0;
/// Keys sampled per active-expiry round: enough that a round with few expired keys says
/// truly few are (below a tenth, a 64-key sample of a keyspace a third expired is
/// practically never).
const SAMPLES_PER_ROUND: usize = 64;
/// A cycle goes on while more than this share of a round's sample had expired (Redis's
/// acceptable stale share, 10%).
const ACCEPTABLE_STALE_PERCENT: usize = 10;
/// Rounds between looks at the clock.
const ROUNDS_PER_CLOCK_CHECK: usize = 16;

#[derive(Debug)]
struct Slot<V> {
    key: Blob,
    value: V,
    /// The deadline (milliseconds on the server clock, or `NO_DEADLINE`) and the access
    /// stamp eviction reads.
    timing: Timing,
    /// Position in `Keyspace::volatile` while `deadline != NO_DEADLINE`.
    volatile_index: u32,
    /// The snapshot this slot is already in, or was created after the start of.
    saved_in: u32,
}

impl<V> Slot<V> {
    fn is_expired(&self, now: u64) -> bool {
        let deadline = self.timing.deadline();
        deadline != NO_DEADLINE && deadline <= now
    }
}

/// A shard's keys and values.
pub struct Keyspace<V> {
    /// Per store (hash tag), figures over its SKUs.
    stores: hashbrown::HashMap<Box<[u8]>, StoreFigures>,
    /// Keys to look at again at a given time (reservations that may lapse), earliest first.
    timers: BinaryHeap<Reverse<(u64, Box<[u8]>)>>,
    /// Presence watches on this shard's users; they outlive FLUSHALL, being connection
    /// state rather than data.
    pub watches: Watches,
    /// Transaction watches on this shard's keys; connection state too.
    pub tx_watches: crate::data::tx_watch::TxWatches,
    /// Clients waiting in a blocking pop on this shard's lists; connection state too.
    pub blocked: crate::data::blocked::Blocked,
    /// Keyspace notifications raised and not yet published.
    pub notices: crate::data::notices::Notices,
    /// The shard's latency monitor: table growth is timed here, the shard's other events
    /// are noted here too.
    pub latency: crate::diagnostics::latency::LatencyMonitor,
    /// Geo indexes: the partitions and member homes this shard holds.
    pub geo: GeoShard,
    table: HashTable<Slot<V>>,
    hasher: DefaultHashBuilder,
    volatile: Vec<u64>,
    heap_bytes: usize,
    rng: u64,
    expired_total: u64,
    /// Records of changes not yet taken by the log, once something (a log, a replica
    /// stream) listens, framed as the log writes them.
    journal: Option<bytes::BytesMut>,
    /// Bytes at the journal's front already copied to the backlog.
    shipped: usize,
    /// The latest records for replicas, when this node may have some.
    pub backlog: Option<crate::data::backlog::Backlog>,
    /// The snapshot being taken, if one is.
    cut: Option<Cut>,
    /// The geo indexes' bytes as last counted.
    geo_bytes: usize,
    /// Bytes of stored values one reply may carry (an MGET's values, for one); a request
    /// that would need more is refused before its reply is built.
    pub reply_limit: usize,
    /// Longest string value APPEND and SETRANGE may build (Redis's proto-max-bulk-len).
    pub value_limit: usize,
    /// The number of the last snapshot begun.
    last_cut: u32,
    /// Which keys go at maxmemory; the access stamps follow it.
    pub eviction: Policy,
    /// Keys due to lapse in the next few seconds, for prompt removal.
    wheel: ExpiryWheel,
    /// Keys removed by eviction.
    evicted_total: u64,
    /// The clock as of the last lookup, for stamping keys a write adds.
    last_now: u64,
}

impl<V: StoredValue> Default for Keyspace<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: StoredValue> Keyspace<V> {
    /// Creates an empty keyspace.
    pub fn new() -> Self {
        let hasher = DefaultHashBuilder::default();
        let rng = hasher.hash_one(0x07e5_5e7a_u64) | 1;
        Self {
            stores: hashbrown::HashMap::new(),
            timers: BinaryHeap::new(),
            watches: Watches::default(),
            tx_watches: Default::default(),
            blocked: Default::default(),
            notices: Default::default(),
            latency: Default::default(),
            geo: GeoShard::default(),
            table: HashTable::new(),
            hasher,
            volatile: Vec::new(),
            heap_bytes: 0,
            rng,
            expired_total: 0,
            journal: None,
            shipped: 0,
            backlog: None,
            cut: None,
            reply_limit: usize::MAX,
            value_limit: usize::MAX,
            geo_bytes: 0,
            last_cut: 0,
            eviction: Policy::Noeviction,
            wheel: ExpiryWheel::default(),
            evicted_total: 0,
            last_now: 0,
        }
    }

    /// Keeps the record of every change from now on, for `take_journal`.
    pub fn start_journal(&mut self) {
        self.journal.get_or_insert_with(bytes::BytesMut::new);
        self.geo.start_journal();
    }

    /// The buffer a change's record is appended to, if changes are recorded.
    pub fn journal(&mut self) -> Option<&mut bytes::BytesMut> {
        self.journal.as_mut()
    }

    /// Puts records taken by `take_journal` back in front of any made since, for a write
    /// that failed and will be retried.
    pub fn give_back_journal(&mut self, records: &mut bytes::BytesMut) {
        if let Some(journal) = self.journal.as_mut() {
            // Whatever was taken had been shipped on the way out.
            self.shipped += records.len();
            records.extend_from_slice(journal);
            std::mem::swap(journal, records);
            records.clear();
        }
    }

    /// Runs `work` with the records of its changes kept apart, and answers them too
    /// (`None` when changes are not recorded), so a caller can record them as one.
    pub fn journal_aside<R>(
        &mut self,
        work: impl FnOnce(&mut Self) -> R,
    ) -> (R, Option<bytes::BytesMut>) {
        let Some(outer) = self.journal.replace(bytes::BytesMut::new()) else {
            self.journal = None;
            return (work(self), None);
        };
        let result = work(self);
        let inner = self.journal.replace(outer);
        (result, inner)
    }

    /// Bytes of records waiting to be taken.
    pub fn journal_len(&self) -> usize {
        self.journal.as_ref().map_or(0, |j| j.len())
    }

    /// Takes the records made since the last call, leaving `spare` (emptied) in their
    /// place so the two buffers' allocations are reused.
    pub fn take_journal(&mut self, spare: &mut bytes::BytesMut) {
        spare.clear();
        self.ship_journal();
        if let Some(journal) = self.journal.as_mut() {
            std::mem::swap(journal, spare);
        }
        self.shipped = 0;
    }

    /// Ships the records not yet shipped and forgets them, keeping the buffer: for a
    /// node with no log, whose journal only feeds the backlog.
    pub fn ship_and_clear_journal(&mut self) {
        self.ship_journal();
        if let Some(journal) = self.journal.as_mut() {
            journal.clear();
        }
        self.shipped = 0;
    }

    /// Copies the records not yet shipped to the backlog, so a replica's copy taken now
    /// and the stream after it meet exactly.
    pub fn ship_journal(&mut self) {
        let (Some(journal), Some(backlog)) = (self.journal.as_ref(), self.backlog.as_mut()) else {
            return;
        };
        backlog.push(&journal[self.shipped..]);
        self.shipped = journal.len();
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Finds a live key's bucket, removing it first if it has expired (lazy expiry).
    fn find_live(&mut self, hash: u64, key: &[u8], now: u64) -> Option<usize> {
        // A write that follows a lookup of a missing key stamps it with this time.
        self.last_now = now;
        let index = self
            .table
            .find_bucket_index(hash, |s| s.key.eq_bytes(key))?;
        if self.table.get_bucket(index)?.is_expired(now) {
            self.remove_expired(index);
            return None;
        }
        self.touch(index, now);
        Some(index)
    }

    /// Removes an expired key, counted and announced as expired.
    fn remove_expired(&mut self, index: usize) {
        let slot = self.remove_at(index);
        self.expired_total += 1;
        let key = slot.key.as_bytes().unwrap_or_default();
        self.notices
            .raise(crate::data::notices::class::EXPIRED, "expired", key);
    }

    fn remove_at(&mut self, index: usize) -> Slot<V> {
        self.save_before_change(index);
        let Ok(entry) = self.table.get_bucket_entry(index) else {
            unreachable!("bucket index came from a lookup in this same call");
        };
        let (slot, _) = entry.remove();
        self.heap_bytes -= slot.key.heap_bytes();
        self.settle(
            slot.key.as_bytes().unwrap_or_default(),
            Some(Footprint::of(&slot.value)),
            None,
        );
        if slot.timing.deadline() != NO_DEADLINE {
            self.unlink_volatile(slot.volatile_index as usize);
        }
        if !self.tx_watches.is_empty() {
            // A key gone by expiry or eviction changed as much as one deleted.
            self.tx_watches
                .touch(slot.key.as_bytes().unwrap_or_default());
        }
        slot
    }

    fn unlink_volatile(&mut self, position: usize) {
        let last = self.volatile.len() - 1;
        self.volatile.swap_remove(position);
        if position != last {
            let moved_hash = self.volatile[position];
            let moved = self.table.find_mut(moved_hash, |s| {
                s.timing.deadline() != NO_DEADLINE && s.volatile_index as usize == last
            });
            debug_assert!(moved.is_some(), "volatile list and table agree");
            if let Some(slot) = moved {
                slot.volatile_index = position as u32;
            }
        }
    }

    fn set_deadline_at(&mut self, index: usize, hash: u64, deadline: u64) {
        self.save_before_change(index);
        if deadline != NO_DEADLINE {
            self.wheel.schedule(hash, deadline, self.last_now);
        }
        let volatile_len = self.volatile.len() as u32;
        let Some(slot) = self.table.get_bucket_mut(index) else {
            return;
        };
        match (
            slot.timing.deadline() != NO_DEADLINE,
            deadline != NO_DEADLINE,
        ) {
            (false, false) => {}
            (true, true) => slot.timing.set_deadline(deadline),
            (false, true) => {
                slot.timing.set_deadline(deadline);
                slot.volatile_index = volatile_len;
                self.volatile.push(hash);
            }
            (true, false) => {
                slot.timing.set_deadline(NO_DEADLINE);
                let position = slot.volatile_index as usize;
                self.unlink_volatile(position);
            }
        }
    }

    /// Looks `key` up once; expired keys are removed on the way (lazy expiry).
    pub fn find(&mut self, key: &[u8], now: u64) -> Found {
        let hash = self.hash(key);
        let index = self.find_live(hash, key, now);
        Found { hash, index }
    }

    /// The value at a lookup's result.
    pub fn value(&self, found: &Found) -> Option<&V> {
        self.table.get_bucket(found.index?).map(|s| &s.value)
    }

    /// The deadline at a lookup's result: `Some(None)` if it never expires, `None` if absent.
    pub fn deadline_of(&self, found: &Found) -> Option<Option<u64>> {
        let deadline = self.table.get_bucket(found.index?)?.timing.deadline();
        Some((deadline != NO_DEADLINE).then_some(deadline))
    }

    /// Writes `value` with `deadline` (`None` = never expires) where `found` points,
    /// inserting `key` if it was absent; returns the previous value.
    pub fn write(
        &mut self,
        found: Found,
        key: &[u8],
        value: V,
        deadline: Option<u64>,
    ) -> Option<V> {
        let deadline = deadline.unwrap_or(NO_DEADLINE);
        if let Some(index) = found.index {
            self.save_before_change(index);
            let after = Footprint::of(&value);
            let slot = self.table.get_bucket_mut(index)?;
            let old = std::mem::replace(&mut slot.value, value);
            self.settle(key, Some(Footprint::of(&old)), Some(after));
            self.set_deadline_at(index, found.hash, deadline);
            return Some(old);
        }
        let volatile_index = if deadline == NO_DEADLINE {
            0
        } else {
            self.wheel.schedule(found.hash, deadline, self.last_now);
            self.volatile.push(found.hash);
            (self.volatile.len() - 1) as u32
        };
        self.settle(key, None, Some(Footprint::of(&value)));
        self.notices
            .raise(crate::data::notices::class::NEW, "new", key);
        let key = Blob::new(key);
        self.heap_bytes += key.heap_bytes();
        let saved_in = self.last_cut;
        let timing = Timing::new(deadline, self.fresh_stamp(self.last_now));
        // A full table doubles on this insert, moving every key: the moment a latency
        // monitor wants to see.
        let grows = self.table.len() == self.table.capacity() && self.latency.threshold_ms() > 0;
        let began = grows.then(std::time::Instant::now);
        let hasher = &self.hasher;
        self.table.insert_unique(
            found.hash,
            Slot {
                key,
                value,
                timing,
                volatile_index,
                saved_in,
            },
            |s| hasher.hash_one(s.key.as_bytes().unwrap_or_default()),
        );
        if let Some(began) = began {
            self.latency
                .note(crate::diagnostics::latency::TABLE_GROWTH, began.elapsed());
        }
        None
    }

    /// Changes the value where `found` points in place, keeping the memory count right;
    /// `None` if the key is absent.
    pub fn update<R>(&mut self, found: &Found, change: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.save_before_change(found.index?);
        let slot = self.table.get_bucket_mut(found.index?)?;
        let before = Footprint::of(&slot.value);
        let result = change(&mut slot.value);
        let after = Footprint::of(&slot.value);
        if before.stock != after.stock {
            let key = slot.key.as_bytes().unwrap_or_default().to_vec();
            self.settle(&key, Some(before), Some(after));
        } else {
            self.heap_bytes = self.heap_bytes + after.heap - before.heap;
        }
        Some(result)
    }

    /// Moves the shard's totals from a value's old footprint to its new one.
    fn settle(&mut self, key: &[u8], before: Option<Footprint>, after: Option<Footprint>) {
        self.heap_bytes =
            self.heap_bytes + after.map_or(0, |f| f.heap) - before.map_or(0, |f| f.heap);
        let levels = (before.and_then(|f| f.stock), after.and_then(|f| f.stock));
        if levels.0 == levels.1 {
            return;
        }
        let store = hash_tag(key);
        if store.len() == key.len() {
            // Only SKUs named with a {store} hash tag belong to a store.
            return;
        }
        if !self.stores.contains_key(store) {
            self.stores.insert(store.into(), StoreFigures::default());
        }
        let Some(figures) = self.stores.get_mut(store) else {
            return;
        };
        for (level, sign) in [(levels.0, -1), (levels.1, 1)] {
            let Some(level) = level else { continue };
            figures.skus += sign;
            match level {
                StockLevel::SoldOut => figures.sold_out += sign,
                StockLevel::Low => figures.low_stock += sign,
                StockLevel::Normal => {}
            }
        }
        if figures.skus == 0 {
            self.stores.remove(store);
        }
    }

    /// A store's figures (zero if it has no SKUs here).
    pub fn store(&self, store: &[u8]) -> StoreFigures {
        self.stores.get(store).copied().unwrap_or_default()
    }

    /// Sets the deadline where `found` points (`None` = never expires).
    pub fn set_deadline_of(&mut self, found: &Found, deadline: Option<u64>) {
        if let Some(index) = found.index {
            self.set_deadline_at(index, found.hash, deadline.unwrap_or(NO_DEADLINE));
        }
    }

    /// Replaces the value where `found` points, keeping its deadline; `false` if absent.
    pub fn replace_value(&mut self, found: &Found, value: V) -> bool {
        if let Some(index) = found.index {
            self.save_before_change(index);
        }
        let Some(slot) = found.index.and_then(|i| self.table.get_bucket_mut(i)) else {
            return false;
        };
        let after = Footprint::of(&value);
        let before = Footprint::of(&std::mem::replace(&mut slot.value, value));
        if before.stock != after.stock {
            let key = slot.key.as_bytes().unwrap_or_default().to_vec();
            self.settle(&key, Some(before), Some(after));
        } else {
            self.heap_bytes = self.heap_bytes + after.heap - before.heap;
        }
        true
    }

    /// The live value of `key`.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&V> {
        let found = self.find(key, now);
        self.table.get_bucket(found.index?).map(|s| &s.value)
    }

    /// Whether `key` exists and is live.
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.find(key, now).exists()
    }

    /// Writes `value` under `key` with `deadline`, returning the previous live value.
    pub fn insert(&mut self, key: &[u8], value: V, deadline: Option<u64>, now: u64) -> Option<V> {
        let found = self.find(key, now);
        self.write(found, key, value, deadline)
    }

    /// Removes `key`; `true` if it was live.
    pub fn remove(&mut self, key: &[u8], now: u64) -> bool {
        match self.find(key, now).index {
            Some(index) => {
                self.remove_at(index);
                true
            }
            None => false,
        }
    }

    /// The deadline of a live key: `Some(None)` if it never expires, `None` if absent.
    pub fn deadline(&mut self, key: &[u8], now: u64) -> Option<Option<u64>> {
        let found = self.find(key, now);
        self.deadline_of(&found)
    }

    /// Sets or clears the deadline of a live key; `false` if absent.
    pub fn set_deadline(&mut self, key: &[u8], deadline: Option<u64>, now: u64) -> bool {
        let found = self.find(key, now);
        let Some(index) = found.index else {
            return false;
        };
        self.set_deadline_at(index, found.hash, deadline.unwrap_or(NO_DEADLINE));
        true
    }

    /// Live and not-yet-collected keys.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Keys that carry a deadline.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Keys removed by eviction since start.
    pub fn evicted_total(&self) -> u64 {
        self.evicted_total
    }

    /// Keys removed because their deadline passed, lazily or actively.
    pub fn expired_total(&self) -> u64 {
        self.expired_total
    }

    /// Asks to be given `key` again by `take_due` once `at` has come.
    pub fn schedule(&mut self, at: u64, key: &[u8]) {
        self.timers.push(Reverse((at, key.into())));
    }

    /// Keys whose scheduled time has come, each once, earliest first.
    pub fn take_due(&mut self, now: u64) -> Vec<Box<[u8]>> {
        let mut due = Vec::new();
        while self
            .timers
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
        {
            if let Some(Reverse((_, key))) = self.timers.pop() {
                if due.last() != Some(&key) {
                    due.push(key);
                }
            }
        }
        due
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        if self.cut.is_some() {
            // The snapshot still needs what was there when it began.
            while !self.cut_step(usize::MAX) {}
        }
        self.stores.clear();
        self.timers.clear();
        self.watches.timers_cleared();
        let journaled = self.geo.is_journaled();
        self.geo = GeoShard::default();
        if journaled {
            self.geo.start_journal();
        }
        self.table = HashTable::new();
        self.volatile = Vec::new();
        self.wheel.clear();
        self.heap_bytes = 0;
    }

    /// Bytes held: table allocation, key and value bytes, and the expiry list.
    pub fn memory_bytes(&self) -> usize {
        self.table.allocation_size()
            + self.heap_bytes
            + self.timers.capacity() * std::mem::size_of::<Reverse<(u64, Box<[u8]>)>>()
            + self.volatile.capacity() * std::mem::size_of::<u64>()
            + self.wheel.heap_bytes()
            + self.geo_bytes
    }

    /// Counts the geo indexes' bytes again (a walk over their members, so it runs on the
    /// expiry tick, not per request).
    pub fn refresh_geo_bytes(&mut self) {
        self.geo_bytes = self.geo.heap_bytes();
    }

    /// A pseudo-random number from this keyspace's own generator (no shared state).
    pub fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for picking samples, and free of any shared state.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Removes the keys the wheel says lapsed in the ticks now past, within `budget`;
    /// how many went.
    pub fn expire_due(&mut self, now: u64, budget: std::time::Duration) -> usize {
        // The wheel is set aside while its entries are removed from the table.
        let mut wheel = std::mem::replace(&mut self.wheel, ExpiryWheel::set_aside());
        let mut removed = 0;
        wheel.run_due(now, budget, |hash| {
            if let Some(index) = self.table.find_bucket_index(hash, |s| s.is_expired(now)) {
                self.remove_expired(index);
                removed += 1;
            }
        });
        self.wheel = wheel;
        removed
    }

    /// One active-expiry cycle: samples keys with deadlines, removes the expired ones, and
    /// repeats while more than a tenth of a sample had expired, for at most `budget` of
    /// time (checked every few rounds), so expiry keeps up with keys that lapse by the
    /// hundred thousand a second without one cycle holding the shard. Returns keys removed.
    pub fn expire_cycle(&mut self, now: u64, budget: std::time::Duration) -> usize {
        let started = std::time::Instant::now();
        let mut removed = 0;
        for round in 1.. {
            let samples = SAMPLES_PER_ROUND.min(self.volatile.len());
            if samples == 0 {
                break;
            }
            let mut expired = 0;
            for _ in 0..samples {
                if self.volatile.is_empty() {
                    break;
                }
                let position = (self.next_random() % self.volatile.len() as u64) as usize;
                let hash = self.volatile[position];
                let index = self.table.find_bucket_index(hash, |s| {
                    s.timing.deadline() != NO_DEADLINE && s.volatile_index as usize == position
                });
                let Some(index) = index else {
                    debug_assert!(false, "volatile entry without its slot");
                    continue;
                };
                if self
                    .table
                    .get_bucket(index)
                    .is_some_and(|s| s.is_expired(now))
                {
                    self.remove_expired(index);
                    expired += 1;
                }
            }
            removed += expired;
            if expired * 100 <= samples * ACCEPTABLE_STALE_PERCENT {
                break;
            }
            if round % ROUNDS_PER_CLOCK_CHECK == 0 && started.elapsed() >= budget {
                break;
            }
        }
        removed
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        assert_eq!(
            self.volatile.len(),
            self.table
                .iter()
                .filter(|s| s.timing.deadline() != NO_DEADLINE)
                .count()
        );
        for slot in self
            .table
            .iter()
            .filter(|s| s.timing.deadline() != NO_DEADLINE)
        {
            assert_eq!(
                self.volatile[slot.volatile_index as usize],
                self.hash(slot.key.as_bytes().unwrap())
            );
        }
        let heap: usize = self
            .table
            .iter()
            .map(|s| s.key.heap_bytes() + s.value.heap_bytes())
            .sum();
        assert_eq!(heap, self.heap_bytes);
    }
}

mod cut;
use cut::Cut;
pub use cut::{save_entry, save_geo_entry, GEO_ENTRY, KEY_ENTRY};

#[cfg(test)]
mod tests;
