//! A bounded count of held slots, shared by every shard: how `--maxclients` is enforced.

use crate::atomic::{AtomicUsize, Ordering};

/// At most `max` slots held at once, across threads, without a lock.
#[derive(Debug)]
pub struct Slots {
    held: AtomicUsize,
    max: usize,
}

impl Slots {
    /// Creates a pool of `max` slots, none held.
    pub fn new(max: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot if one is free; never lets the count pass `max`, even for an instant.
    pub fn try_acquire(&self) -> bool {
        let mut held = self.held.load(Ordering::Relaxed);
        loop {
            if held >= self.max {
                return false;
            }
            match self.held.compare_exchange_weak(
                held,
                held + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => held = current,
            }
        }
    }

    /// Gives a slot back.
    pub fn release(&self) {
        let previous = self.held.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(previous > 0, "released a slot that was not held");
    }

    /// Slots held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The ceiling.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_ceiling_and_recovers_on_release() {
        let slots = Slots::new(2);
        assert!(slots.try_acquire());
        assert!(slots.try_acquire());
        assert!(!slots.try_acquire());
        slots.release();
        assert!(slots.try_acquire());
        assert_eq!(slots.held(), 2);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Three racing acquirers on two slots: exactly two win in every interleaving.
    #[test]
    fn never_more_winners_than_slots() {
        loom::model(|| {
            let slots = Arc::new(Slots::new(2));
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let slots = slots.clone();
                    loom::thread::spawn(move || slots.try_acquire())
                })
                .collect();
            let winners = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count();
            assert_eq!(winners, 2);
            assert_eq!(slots.held(), 2);
        });
    }

    /// A release racing an acquire on a full pool: the acquire may lose, but the count
    /// never exceeds the ceiling and ends consistent with who won.
    #[test]
    fn release_and_acquire_race_stays_consistent() {
        loom::model(|| {
            let slots = Arc::new(Slots::new(1));
            assert!(slots.try_acquire());
            let releaser = {
                let slots = slots.clone();
                loom::thread::spawn(move || slots.release())
            };
            let won = slots.try_acquire();
            releaser.join().unwrap();
            assert_eq!(slots.held(), usize::from(won));
        });
    }
}
