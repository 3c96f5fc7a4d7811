//! Batched mailboxes between shards: one producer pushes whole batches, one consumer takes all.
//!
//! A `Mailbox` is a lock-free stack of batches. The producer pushes a batch with one CAS;
//! the consumer takes everything with one swap and reverses it to restore sending order.
//! Because the consumer only ever swaps in null, and a push only links to whatever head it
//! saw, no ABA problem can arise.
//!
//! Waking is left to the caller but made cheap: `push` reports whether the mailbox was
//! empty, and only that push needs to wake the consumer. If it was not empty, an earlier
//! push already issued the wake and the consumer has not drained yet, so it will see this
//! batch too. The loom model in `tests` checks exactly this: no batch is lost, reordered or
//! delivered twice, and no wake-up is missed.

use std::ptr;

use crate::atomic::{AtomicPtr, Ordering};

struct Node<T> {
    batch: Vec<T>,
    next: *mut Node<T>,
}

/// A single-producer, single-consumer queue of message batches.
pub struct Mailbox<T> {
    head: AtomicPtr<Node<T>>,
}

// SAFETY: batches move between threads by value; `T: Send` is all that requires. The raw
// pointers are owned exclusively by whichever side holds them after the CAS or swap.
unsafe impl<T: Send> Send for Mailbox<T> {}
// SAFETY: all shared access goes through the atomic head.
unsafe impl<T: Send> Sync for Mailbox<T> {}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// Creates an empty mailbox.
    pub fn new() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pushes one batch; returns `true` if the mailbox was empty, meaning the caller must
    /// wake the consumer.
    pub fn push(&self, batch: Vec<T>) -> bool {
        let node = Box::into_raw(Box::new(Node {
            batch,
            next: ptr::null_mut(),
        }));
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is ours until the CAS publishes it.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return head.is_null(),
                Err(current) => head = current,
            }
        }
    }

    /// Takes every pushed batch, oldest first.
    pub fn take_all(&self) -> Vec<Vec<T>> {
        let mut node = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        let mut batches = Vec::new();
        while !node.is_null() {
            // SAFETY: the swap made this chain ours alone; each node came from Box::into_raw.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
            batches.push(boxed.batch);
        }
        batches.reverse();
        batches
    }

    /// Whether nothing is waiting; a hint only, since a push may land right after.
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire).is_null()
    }
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn batches_come_out_in_push_order() {
        let mailbox = Mailbox::new();
        assert!(mailbox.push(vec![1, 2]));
        assert!(!mailbox.push(vec![3]));
        assert_eq!(mailbox.take_all(), vec![vec![1, 2], vec![3]]);
        assert!(mailbox.is_empty());
        assert!(mailbox.push(vec![4]), "empty again after a take");
    }

    #[test]
    fn undelivered_batches_are_dropped_with_the_mailbox() {
        let counter = Arc::new(());
        let mailbox = Mailbox::new();
        mailbox.push(vec![counter.clone(), counter.clone()]);
        drop(mailbox);
        assert_eq!(Arc::strong_count(&counter), 1);
    }

    #[test]
    fn threads_deliver_everything_exactly_once() {
        let mailbox = Arc::new(Mailbox::new());
        let producer = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                for i in 0..10_000u32 {
                    mailbox.push(vec![i]);
                }
            })
        };
        let mut received = Vec::new();
        while received.len() < 10_000 {
            for batch in mailbox.take_all() {
                received.extend(batch);
            }
            std::thread::yield_now();
        }
        producer.join().unwrap();
        assert_eq!(received, (0..10_000).collect::<Vec<_>>());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Notify};

    /// The production protocol: wake only on an empty-to-non-empty push; the consumer
    /// drains, then parks until woken. Loom explores every interleaving and reports a
    /// deadlock if a wake-up can be lost.
    #[test]
    fn no_batch_or_wakeup_is_lost() {
        loom::model(|| {
            let mailbox = Arc::new(Mailbox::new());
            let wake = Arc::new(Notify::new());
            let producer = {
                let mailbox = mailbox.clone();
                let wake = wake.clone();
                loom::thread::spawn(move || {
                    for i in 0..3u32 {
                        if mailbox.push(vec![i]) {
                            wake.notify();
                        }
                    }
                })
            };
            let mut received = Vec::new();
            loop {
                for batch in mailbox.take_all() {
                    received.extend(batch);
                }
                if received.len() == 3 {
                    break;
                }
                wake.wait();
            }
            producer.join().unwrap();
            assert_eq!(received, vec![0, 1, 2]);
        });
    }

    /// Two producers on one mailbox (a consumer that is also woken by others) still see
    /// every batch exactly once, each producer's batches in its own order.
    #[test]
    fn concurrent_pushes_and_takes_keep_per_producer_order() {
        loom::model(|| {
            let mailbox = Arc::new(Mailbox::new());
            let spawn_producer = |base: u32| {
                let mailbox = mailbox.clone();
                loom::thread::spawn(move || {
                    mailbox.push(vec![base]);
                    mailbox.push(vec![base + 1]);
                })
            };
            let a = spawn_producer(0);
            let b = spawn_producer(10);
            let mut received: Vec<u32> = mailbox.take_all().into_iter().flatten().collect();
            a.join().unwrap();
            b.join().unwrap();
            received.extend(mailbox.take_all().into_iter().flatten());
            let from_a: Vec<u32> = received.iter().copied().filter(|v| *v < 10).collect();
            let from_b: Vec<u32> = received.iter().copied().filter(|v| *v >= 10).collect();
            assert_eq!(from_a, vec![0, 1]);
            assert_eq!(from_b, vec![10, 11]);
        });
    }
}
