//! A timing wheel of the deadlines due soon, so a short-lived key is removed within a
//! tick of lapsing instead of waiting to be sampled.
//!
//! Each bucket covers one tick of deadlines and holds the hashes of keys given a deadline
//! in it; a deadline further off than the wheel reaches is left to sampling. Entries are
//! hints: a key whose deadline moved, or that went, is found not expired (or not at all)
//! when its bucket comes due, and skipped.

use std::time::{Duration, Instant};

/// Milliseconds of deadlines one bucket covers.
pub const TICK_MS: u64 = 10;
/// Buckets: the wheel reaches 2.56 s ahead.
const BUCKETS: usize = 256;

/// Hashes of keys due in each of the next `BUCKETS` ticks.
#[derive(Debug)]
pub struct ExpiryWheel {
    buckets: Vec<Vec<u64>>,
    /// The next tick to process; every tick before it is done.
    cursor: u64,
}

impl Default for ExpiryWheel {
    fn default() -> Self {
        ExpiryWheel {
            buckets: vec![Vec::new(); BUCKETS],
            cursor: 0,
        }
    }
}

impl ExpiryWheel {
    /// A wheel with no buckets, holding nothing, to stand in while the real one is
    /// borrowed; it must not be scheduled into.
    pub fn set_aside() -> ExpiryWheel {
        ExpiryWheel {
            buckets: Vec::new(),
            cursor: 0,
        }
    }

    /// Notes that the key with `hash` lapses at `deadline`, if that is within reach.
    pub fn schedule(&mut self, hash: u64, deadline: u64, now: u64) {
        if self.cursor == 0 && now > 0 {
            self.cursor = now / TICK_MS;
        }
        let tick = deadline / TICK_MS;
        if self.buckets.is_empty() {
            return;
        }
        // Only ticks of this turn of the wheel: ones already passed are left to lazy
        // expiry and sampling, as are ones a whole turn or more away.
        if tick < self.cursor || tick >= self.cursor + BUCKETS as u64 {
            return;
        }
        self.buckets[(tick % BUCKETS as u64) as usize].push(hash);
    }

    /// Calls `expire` with each hash of the ticks wholly past at `now`, until `budget` is
    /// spent (what is left waits for the next call). The bytes of entries left behind are
    /// given back as buckets empty.
    pub fn run_due(&mut self, now: u64, budget: Duration, mut expire: impl FnMut(u64)) {
        if self.cursor == 0 {
            self.cursor = now / TICK_MS;
            return;
        }
        let started = Instant::now();
        let mut checked = 0usize;
        while (self.cursor + 1) * TICK_MS <= now {
            let bucket = &mut self.buckets[(self.cursor % BUCKETS as u64) as usize];
            while let Some(hash) = bucket.pop() {
                expire(hash);
                checked += 1;
                if checked.is_multiple_of(256) && started.elapsed() >= budget {
                    return;
                }
            }
            if bucket.capacity() > 4096 {
                bucket.shrink_to(1024);
            }
            self.cursor += 1;
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<u64>())
            .sum()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        for bucket in &mut self.buckets {
            *bucket = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_hashes_come_out_once_their_tick_has_passed() {
        let mut wheel = ExpiryWheel::default();
        wheel.schedule(1, 1_005, 1_000);
        wheel.schedule(2, 1_050, 1_000);
        wheel.schedule(3, 1_000 + 10_000, 1_000); // past the wheel's reach: sampling's
        let mut seen = Vec::new();
        wheel.run_due(1_009, Duration::from_secs(1), |h| seen.push(h));
        assert!(seen.is_empty(), "tick 100 is not over at 1009");
        wheel.run_due(1_010, Duration::from_secs(1), |h| seen.push(h));
        assert_eq!(seen, [1]);
        wheel.run_due(5_000, Duration::from_secs(1), |h| seen.push(h));
        assert_eq!(seen, [1, 2]);
        wheel.schedule(4, 900, 5_000);
        wheel.run_due(6_000, Duration::from_secs(1), |h| seen.push(h));
        assert_eq!(
            seen,
            [1, 2],
            "a deadline already passed is left to lazy expiry"
        );
    }
}
