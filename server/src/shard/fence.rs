//! The geo tasks a shard has running, by when they began, so a migration can wait for
//! every one that began before its slots paused.
//!
//! A plain write runs (or is handed to its owner shard) in the same step that checked its
//! slot, so a round of calls through every shard flushes them; a geo command may take
//! several steps across shards, each after an await, and is waited for here instead.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// How often a waiting migration looks again.
const LOOK_AGAIN: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Running {
    /// The generation tasks entering now belong to.
    generation: Cell<u64>,
    /// Tasks still running, by generation.
    counts: RefCell<BTreeMap<u64, usize>>,
}

/// One shard's count of running geo tasks.
#[derive(Default)]
pub struct Fence(Rc<Running>);

/// A running task's place in its fence; leaving is dropping it.
pub struct Entered {
    running: Rc<Running>,
    generation: u64,
}

impl Fence {
    /// Counts a task as running until the answer is dropped.
    pub fn enter(&self) -> Entered {
        let generation = self.0.generation.get();
        *self.0.counts.borrow_mut().entry(generation).or_default() += 1;
        Entered {
            running: self.0.clone(),
            generation,
        }
    }

    /// Returns once every task that entered before this call has left.
    pub async fn passed(&self) {
        let before = self.0.generation.get();
        self.0.generation.set(before + 1);
        while self.0.counts.borrow().range(..=before).next().is_some() {
            tokio::time::sleep(LOOK_AGAIN).await;
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut counts = self.running.counts.borrow_mut();
        if let Some(count) = counts.get_mut(&self.generation) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.generation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn waits_for_tasks_begun_before_and_not_after() {
        let fence = Rc::new(Fence::default());
        let early = fence.enter();
        tokio::task::LocalSet::new()
            .run_until(async move {
                let passed = {
                    let fence = fence.clone();
                    tokio::task::spawn_local(async move { fence.passed().await })
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
                assert!(!passed.is_finished(), "a task from before is running");
                let late = fence.enter();
                drop(early);
                tokio::time::timeout(Duration::from_secs(5), passed)
                    .await
                    .expect("a task begun after does not hold the fence")
                    .unwrap();
                drop(late);
                assert!(fence.0.counts.borrow().is_empty());
            })
            .await;
    }
}
