//! A value one thread replaces now and then and every shard reads on each request: the
//! cluster's view of slot ownership. A reader checks one atomic version per request and
//! takes the lock only when the version moved.

use std::sync::Arc;

#[cfg(loom)]
use loom::sync::Mutex;
#[cfg(not(loom))]
use std::sync::Mutex;

use crate::atomic::{AtomicUsize, Ordering};

/// The latest published value and a version that rises with each publication.
#[derive(Debug)]
pub struct Published<T> {
    version: AtomicUsize,
    value: Mutex<(usize, Arc<T>)>,
}

impl<T> Published<T> {
    /// Publishes `value` as version 0.
    pub fn new(value: T) -> Published<T> {
        Published {
            version: AtomicUsize::new(0),
            value: Mutex::new((0, Arc::new(value))),
        }
    }

    /// The version last published. A reader that saw version `v` and now sees another
    /// must `load` again; one that still sees `v` may keep its copy.
    pub fn version(&self) -> usize {
        self.version.load(Ordering::Acquire)
    }

    /// The latest value with the version it was published as.
    pub fn load(&self) -> (usize, Arc<T>) {
        let held = self
            .value
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (held.0, held.1.clone())
    }

    /// Replaces the value; readers see it at their next version check.
    pub fn publish(&self, value: T) {
        let mut held = self
            .value
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let version = held.0 + 1;
        *held = (version, Arc::new(value));
        // Stored while the lock is held, so a reader that sees this version and then
        // loads gets this value or a later one, never an older one.
        self.version.store(version, Ordering::Release);
    }

    /// Replaces `cached` with the latest value if a publication happened since it was
    /// taken; returns whether it did.
    pub fn refresh(&self, cached: &mut (usize, Arc<T>)) -> bool {
        if self.version() == cached.0 {
            return false;
        }
        *cached = self.load();
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_each_publication_at_its_next_check() {
        let published = Published::new("one");
        let mut cached = published.load();
        assert!(!published.refresh(&mut cached));
        published.publish("two");
        assert!(published.refresh(&mut cached));
        assert_eq!((cached.0, *cached.1), (1, "two"));
        assert!(!published.refresh(&mut cached));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A writer publishes twice while a reader refreshes: the reader's copy always pairs a
    /// version with the value published under it, never goes back, and once the writer is
    /// done one more refresh finds the last value.
    #[test]
    fn readers_never_see_a_value_older_than_its_version() {
        loom::model(|| {
            let published = Arc::new(Published::new(0usize));
            let writer = {
                let published = published.clone();
                loom::thread::spawn(move || {
                    published.publish(10);
                    published.publish(20);
                })
            };
            let mut cached = published.load();
            let mut last = 0;
            for _ in 0..2 {
                published.refresh(&mut cached);
                assert_eq!(*cached.1, cached.0 * 10, "a version names its own value");
                assert!(cached.0 >= last, "a reader never goes back");
                last = cached.0;
            }
            writer.join().unwrap();
            published.refresh(&mut cached);
            assert_eq!(*cached.1, 20);
        });
    }
}
