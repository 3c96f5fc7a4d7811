//! A byte count many threads change at once: one padded stripe per thread (threads past
//! the stripe count share), so a change never contends, and a reader sums the stripes.
//!
//! This is how the server counts the bytes its allocator hands out: every allocation adds
//! to the calling thread's stripe and every free subtracts from the freeing thread's, so
//! one stripe may go negative (memory freed on a thread other than the one that took it)
//! while the sum stays exact.

use crate::atomic::{AtomicUsize, Ordering};

/// Stripes in a tally: enough for every shard thread of a large machine.
pub const STRIPES: usize = 64;

/// One stripe, alone on its cache line.
#[derive(Debug)]
#[repr(align(64))]
struct Stripe(AtomicUsize);

/// A signed count kept in stripes; changes are relaxed atomic adds on the caller's stripe.
#[derive(Debug)]
pub struct Tally {
    stripes: [Stripe; STRIPES],
}

impl Tally {
    /// A tally at zero, usable in a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Tally {
        Tally {
            stripes: [const { Stripe(AtomicUsize::new(0)) }; STRIPES],
        }
    }

    /// A tally at zero.
    #[cfg(loom)]
    pub fn new() -> Tally {
        Tally {
            stripes: std::array::from_fn(|_| Stripe(AtomicUsize::new(0))),
        }
    }

    /// Adds `delta` (negative to subtract) on stripe `stripe` (taken modulo the count).
    pub fn add(&self, stripe: usize, delta: isize) {
        // Two's complement: adding a negative delta as usize wraps to the subtraction.
        self.stripes[stripe % STRIPES]
            .0
            .fetch_add(delta as usize, Ordering::Relaxed);
    }

    /// The sum of every stripe. Exact once the changes it should see have happened
    /// before the call; while they race, a sum that each change's effect is in or not.
    pub fn total(&self) -> isize {
        self.stripes.iter().fold(0usize, |sum, stripe| {
            sum.wrapping_add(stripe.0.load(Ordering::Relaxed))
        }) as isize
    }
}

#[cfg(not(loom))]
impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn frees_on_another_stripe_still_sum_to_what_is_held() {
        let tally = Tally::new();
        tally.add(0, 1000);
        tally.add(3, -400);
        tally.add(STRIPES + 3, 50);
        assert_eq!(tally.total(), 650);
        tally.add(0, -1000);
        assert_eq!(tally.total(), -350);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two threads allocate and free on their own stripes and on a shared one while a
    /// third reads: every read lies within what could have been held, and the final sum
    /// is exact.
    #[test]
    fn racing_changes_sum_exactly() {
        loom::model(|| {
            let tally = Arc::new(Tally::new());
            let workers: Vec<_> = [(0usize, 7isize), (1, 11)]
                .into_iter()
                .map(|(stripe, bytes)| {
                    let tally = tally.clone();
                    loom::thread::spawn(move || {
                        tally.add(stripe, bytes);
                        // Freed on the shared stripe, as a buffer handed to another thread.
                        tally.add(2, -bytes);
                        tally.add(stripe, bytes);
                    })
                })
                .collect();
            let seen = tally.total();
            assert!((-18..=36).contains(&seen), "{seen}");
            for worker in workers {
                worker.join().unwrap();
            }
            assert_eq!(tally.total(), 18);
        });
    }
}
