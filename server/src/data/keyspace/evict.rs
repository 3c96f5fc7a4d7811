//! Eviction at maxmemory: each slot's access stamp, and picking a victim from a random
//! sample by the policy, as Redis approximates LRU, LFU and TTL order.

use super::{Keyspace, StoredValue, NO_DEADLINE};

/// Which keys go when the node holds its maxmemory (Redis's `maxmemory-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// None: writes that add data are refused with OOM.
    #[default]
    Noeviction,
    /// The least recently used of any keys.
    AllkeysLru,
    /// The least frequently used of any keys.
    AllkeysLfu,
    /// Any key.
    AllkeysRandom,
    /// The least recently used of keys with a deadline.
    VolatileLru,
    /// The least frequently used of keys with a deadline.
    VolatileLfu,
    /// The key with a deadline nearest to its deadline.
    VolatileTtl,
    /// Any key with a deadline.
    VolatileRandom,
}

impl Policy {
    /// Every policy, by its Redis name.
    pub const ALL: [(Policy, &'static str); 8] = [
        (Policy::Noeviction, "noeviction"),
        (Policy::AllkeysLru, "allkeys-lru"),
        (Policy::AllkeysLfu, "allkeys-lfu"),
        (Policy::AllkeysRandom, "allkeys-random"),
        (Policy::VolatileLru, "volatile-lru"),
        (Policy::VolatileLfu, "volatile-lfu"),
        (Policy::VolatileTtl, "volatile-ttl"),
        (Policy::VolatileRandom, "volatile-random"),
    ];

    /// Its Redis name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(policy, _)| *policy == self)
            .map_or("noeviction", |(_, name)| name)
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileTtl
                | Policy::VolatileRandom
        )
    }

    fn counts_frequency(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(policy, _)| *policy)
            .ok_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|(_, name)| *name).collect();
                format!("expected one of {}, not {text:?}", names.join(", "))
            })
    }
}

/// Bits of a slot's timing word that hold the deadline (milliseconds since the Unix
/// epoch: good until the year 2527, past any deadline a command may set).
const DEADLINE_BITS: u32 = 44;
const DEADLINE_MASK: u64 = (1 << DEADLINE_BITS) - 1;
/// The access stamp's bits: the rest of the word.
const STAMP_BITS: u32 = 64 - DEADLINE_BITS;
const STAMP_MASK: u32 = (1 << STAMP_BITS) - 1;
/// LFU: the stamp's low bits are a logarithmic use counter, the rest the minute it was
/// last decayed.
const COUNTER_BITS: u32 = 8;
const COUNTER_MAX: u32 = (1 << COUNTER_BITS) - 1;
/// A new key's LFU counter, as Redis's `LFU_INIT_VAL`: it is not evicted before it has had
/// a chance to be used.
const COUNTER_INIT: u32 = 5;
/// Redis's `lfu-log-factor`: about a million uses reach the top of the counter.
const LOG_FACTOR: u64 = 10;
/// Keys looked at per eviction.
pub const SAMPLES: usize = 10;

/// A slot's deadline and its access stamp, in one word, so a slot stays one cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing(u64);

impl Timing {
    /// A timing with `deadline` (`NO_DEADLINE` for none) and `stamp`.
    pub fn new(deadline: u64, stamp: u32) -> Timing {
        debug_assert!(
            deadline <= DEADLINE_MASK,
            "deadline {deadline} past the year 2527"
        );
        Timing((deadline & DEADLINE_MASK) | (u64::from(stamp & STAMP_MASK) << DEADLINE_BITS))
    }

    /// The deadline, or `NO_DEADLINE`.
    pub fn deadline(self) -> u64 {
        self.0 & DEADLINE_MASK
    }

    /// Sets the deadline, keeping the stamp.
    pub fn set_deadline(&mut self, deadline: u64) {
        *self = Timing::new(deadline, self.stamp());
    }

    /// The access stamp.
    pub fn stamp(self) -> u32 {
        (self.0 >> DEADLINE_BITS) as u32
    }

    fn set_stamp(&mut self, stamp: u32) {
        *self = Timing::new(self.deadline(), stamp);
    }
}

/// The LRU clock: seconds, wrapping at the stamp's width (12 days), as Redis's wraps at 24
/// bits.
fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & STAMP_MASK
}

/// Seconds since `stamp`, on the wrapping clock.
fn idle_seconds(stamp: u32, now_ms: u64) -> u32 {
    lru_clock(now_ms).wrapping_sub(stamp) & STAMP_MASK
}

/// The LFU clock: minutes, wrapping at what is left of the stamp after the counter.
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) as u32) & (STAMP_MASK >> COUNTER_BITS)
}

/// An LFU counter after the minutes since it was last decayed: one step per minute, as
/// Redis's default `lfu-decay-time` of 1.
fn decayed(stamp: u32, now_ms: u64) -> u32 {
    let counter = stamp & COUNTER_MAX;
    let since =
        lfu_minutes(now_ms).wrapping_sub(stamp >> COUNTER_BITS) & (STAMP_MASK >> COUNTER_BITS);
    counter.saturating_sub(since)
}

impl<V: StoredValue> Keyspace<V> {
    /// The stamp a new key gets under the policy.
    pub(super) fn fresh_stamp(&self, now: u64) -> u32 {
        match self.eviction {
            Policy::AllkeysLfu | Policy::VolatileLfu => {
                (lfu_minutes(now) << COUNTER_BITS) | COUNTER_INIT
            }
            _ => lru_clock(now),
        }
    }

    /// Notes a use of the key at bucket `index`: its LRU stamp, or a probabilistic step
    /// of its LFU counter (Redis's logarithmic counter).
    pub(super) fn touch(&mut self, index: usize, now: u64) {
        if self.eviction == Policy::Noeviction {
            return;
        }
        let frequency = self.eviction.counts_frequency();
        let roll = if frequency { self.next_random() } else { 0 };
        let Some(slot) = self.table.get_bucket_mut(index) else {
            return;
        };
        let stamp = if frequency {
            let mut counter = decayed(slot.timing.stamp(), now);
            let base = u64::from(counter.saturating_sub(COUNTER_INIT));
            // The chance of a step falls as 1 / (base × factor + 1).
            if counter < COUNTER_MAX && roll % (base * LOG_FACTOR + 1) == 0 {
                counter += 1;
            }
            (lfu_minutes(now) << COUNTER_BITS) | counter
        } else {
            lru_clock(now)
        };
        slot.timing.set_stamp(stamp);
    }

    /// Removes one key the policy picks from a random sample: its key, for the log to
    /// record the deletion, and the bytes that made room for (its slot and what it held on
    /// the heap); `None` if the policy has nothing to evict.
    pub fn evict_one(&mut self, now: u64) -> Option<(Box<[u8]>, usize)> {
        if self.eviction == Policy::Noeviction {
            return None;
        }
        let mut best: Option<(usize, u64)> = None;
        for index in self.eviction_sample() {
            let Some(slot) = self.table.get_bucket(index) else {
                continue;
            };
            let deadline = slot.timing.deadline();
            // Higher is a better victim; an expired key is the best of all.
            let score = if deadline != NO_DEADLINE && deadline <= now {
                u64::MAX
            } else {
                match self.eviction {
                    Policy::AllkeysLru | Policy::VolatileLru => {
                        u64::from(idle_seconds(slot.timing.stamp(), now))
                    }
                    Policy::AllkeysLfu | Policy::VolatileLfu => {
                        u64::from(COUNTER_MAX - decayed(slot.timing.stamp(), now))
                    }
                    Policy::VolatileTtl => u64::MAX - 1 - deadline,
                    _ => 0,
                }
            };
            if best.is_none_or(|(_, top)| score > top) {
                best = Some((index, score));
            }
        }
        let (index, _) = best?;
        let heap_before = self.heap_bytes;
        let slot = self.remove_at(index);
        self.evicted_total += 1;
        let key = slot.key.as_bytes().unwrap_or_default();
        self.notices
            .raise(crate::data::notices::class::EVICTED, "evicted", key);
        let freed = heap_before.saturating_sub(self.heap_bytes) + std::mem::size_of_val(&slot);
        Some((slot.key.as_bytes().unwrap_or_default().into(), freed))
    }

    /// Bucket indexes of up to `SAMPLES` random live keys the policy may evict.
    fn eviction_sample(&mut self) -> Vec<usize> {
        let mut picked = Vec::with_capacity(SAMPLES);
        if self.eviction.volatile_only() {
            for _ in 0..SAMPLES.min(self.volatile.len()) {
                let position = (self.next_random() % self.volatile.len() as u64) as usize;
                let hash = self.volatile[position];
                let index = self.table.find_bucket_index(hash, |s| {
                    s.timing.deadline() != NO_DEADLINE && s.volatile_index as usize == position
                });
                picked.extend(index);
            }
            return picked;
        }
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return picked;
        }
        // The table is at least an eighth full, so a few probes find each sample.
        let mut probes = 0;
        while picked.len() < SAMPLES.min(self.table.len()) && probes < SAMPLES * 64 {
            probes += 1;
            let index = (self.next_random() % buckets as u64) as usize;
            if self.table.get_bucket(index).is_some() && !picked.contains(&index) {
                picked.push(index);
            }
        }
        if picked.is_empty() {
            // A table emptied far below its size (it does not shrink): walk from a random
            // bucket to the next full one.
            let start = (self.next_random() % buckets as u64) as usize;
            picked.extend(
                (0..buckets)
                    .map(|step| (start + step) % buckets)
                    .find(|&index| self.table.get_bucket(index).is_some()),
            );
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timing_keeps_its_deadline_and_stamp_apart() {
        let far = 4_000_000_000_000; // the year 2096, in ms
        let mut timing = Timing::new(far, STAMP_MASK);
        assert_eq!((timing.deadline(), timing.stamp()), (far, STAMP_MASK));
        timing.set_deadline(NO_DEADLINE);
        assert_eq!(
            (timing.deadline(), timing.stamp()),
            (NO_DEADLINE, STAMP_MASK)
        );
        timing.set_stamp(7);
        assert_eq!((timing.deadline(), timing.stamp()), (NO_DEADLINE, 7));
        assert!(far + (tessera_protocol::commands::MAX_EXPIRE_MS as u64) < DEADLINE_MASK);
    }

    #[test]
    fn idle_time_and_decay_survive_the_clock_wrapping() {
        let wrap_ms = u64::from(STAMP_MASK + 1) * 1000;
        let stamp = lru_clock(wrap_ms - 5_000);
        assert_eq!(idle_seconds(stamp, wrap_ms + 5_000), 10);
        let counter = (lfu_minutes(0) << COUNTER_BITS) | 20;
        assert_eq!(decayed(counter, 3 * 60_000), 17);
        assert_eq!(decayed(counter, 600 * 60_000), 0);
    }

    #[test]
    fn policies_parse_by_their_redis_names() {
        for (policy, name) in Policy::ALL {
            assert_eq!(name.parse::<Policy>(), Ok(policy));
            assert_eq!(policy.name(), name);
        }
        assert!("lru".parse::<Policy>().is_err());
    }
}

#[cfg(test)]
mod eviction_tests {
    use super::*;
    use crate::data::keyspace::Blob;

    #[test]
    fn eviction_goes_on_until_the_keyspace_is_empty() {
        for (policy, _) in Policy::ALL {
            let mut keyspace: Keyspace<Blob> = Keyspace::new();
            keyspace.eviction = policy;
            for i in 0..500u32 {
                let deadline = (i % 2 == 0).then_some(1_000_000 + u64::from(i));
                keyspace.insert(format!("k{i}").as_bytes(), Blob::new(b"value"), deadline, 1);
            }
            let mut evicted = 0;
            while keyspace.evict_one(2).is_some() {
                evicted += 1;
            }
            let expected = match policy {
                Policy::Noeviction => 0,
                p if p.volatile_only() => 250,
                _ => 500,
            };
            assert_eq!(evicted, expected, "{policy:?}");
            assert_eq!(keyspace.len(), 500 - expected, "{policy:?}");
        }
    }
}
