//! A fixed set of numbered flags many threads read and a few set: one bit each, in words
//! of atomics, so a reader's check is one load.
//!
//! The server keeps one for the slots whose writes pause while they migrate: every shard
//! checks it on each write, and the migration sets and clears bits from another thread.
//! A flag set before a message is sent is seen by whoever receives that message (the
//! store releases, the load acquires), which is what a migration's barrier relies on.

use crate::atomic::{AtomicUsize, Ordering};

const WORD: usize = usize::BITS as usize;

/// `len` flags, all clear at first.
#[derive(Debug)]
pub struct Flags {
    words: Box<[AtomicUsize]>,
    /// How many flags are set, so a reader can skip the lookup when none are.
    set: AtomicUsize,
}

impl Flags {
    /// `len` clear flags.
    pub fn new(len: usize) -> Flags {
        Flags {
            words: (0..len.div_ceil(WORD))
                .map(|_| AtomicUsize::new(0))
                .collect(),
            set: AtomicUsize::new(0),
        }
    }

    /// Sets flag `at`; `false` if it was set already.
    ///
    /// # Panics
    /// If `at` is past the last flag.
    pub fn set(&self, at: usize) -> bool {
        let bit = 1 << (at % WORD);
        let was = self.words[at / WORD].fetch_or(bit, Ordering::AcqRel);
        let newly = was & bit == 0;
        if newly {
            self.set.fetch_add(1, Ordering::AcqRel);
        }
        newly
    }

    /// Clears flag `at`; `false` if it was clear already.
    ///
    /// # Panics
    /// If `at` is past the last flag.
    pub fn clear(&self, at: usize) -> bool {
        let bit = 1 << (at % WORD);
        let was = self.words[at / WORD].fetch_and(!bit, Ordering::AcqRel);
        let cleared = was & bit != 0;
        if cleared {
            self.set.fetch_sub(1, Ordering::AcqRel);
        }
        cleared
    }

    /// Whether flag `at` is set (`false` past the last flag).
    pub fn contains(&self, at: usize) -> bool {
        self.words
            .get(at / WORD)
            .is_some_and(|word| word.load(Ordering::Acquire) & (1 << (at % WORD)) != 0)
    }

    /// Whether any flag is set.
    pub fn any(&self) -> bool {
        self.set.load(Ordering::Acquire) != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn flags_set_and_clear_one_at_a_time() {
        let flags = Flags::new(16_384);
        assert!(!flags.any());
        assert!(flags.set(0) && flags.set(16_383) && flags.set(64));
        assert!(!flags.set(64), "already set");
        assert!(flags.contains(0) && flags.contains(64) && flags.contains(16_383));
        assert!(!flags.contains(1) && !flags.contains(63) && !flags.contains(16_384));
        assert!(flags.clear(64) && !flags.clear(64));
        assert!(!flags.contains(64));
        assert!(flags.clear(0) && flags.clear(16_383));
        assert!(!flags.any());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two threads flip neighbouring flags in one word at once while a third watches a
    /// flag set before a message: no change is lost, the count stays exact, and a flag set
    /// before a release is seen after the acquire.
    #[test]
    fn racing_flags_in_one_word_are_all_kept() {
        loom::model(|| {
            let flags = Arc::new(Flags::new(128));
            let ready = Arc::new(AtomicUsize::new(0));
            let setter = {
                let (flags, ready) = (flags.clone(), ready.clone());
                loom::thread::spawn(move || {
                    flags.set(1);
                    ready.store(1, Ordering::Release);
                    flags.set(2);
                    flags.clear(2);
                })
            };
            let other = {
                let flags = flags.clone();
                loom::thread::spawn(move || {
                    flags.set(3);
                })
            };
            if ready.load(Ordering::Acquire) == 1 {
                assert!(flags.contains(1), "a flag set before the message is seen");
                assert!(flags.any());
            }
            setter.join().unwrap();
            other.join().unwrap();
            assert!(flags.contains(1) && flags.contains(3) && !flags.contains(2));
            assert!(flags.any());
            flags.clear(1);
            flags.clear(3);
            assert!(!flags.any());
        });
    }
}
