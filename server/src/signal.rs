//! A wake-up flag for tasks on one shard thread: `raise` from anywhere on the thread,
//! `wait` in one task. Single-threaded by construction (`!Sync`), so it needs no locks or
//! atomics, unlike tokio's `Notify`, which takes a mutex on every wait.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A raised-or-not flag with one waiting task.
#[derive(Default)]
pub struct LocalSignal {
    raised: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl LocalSignal {
    /// Raises the flag and wakes the waiting task, if any.
    pub fn raise(&self) {
        self.raised.set(true);
        if let Some(waker) = self.waiter.take() {
            waker.wake();
        }
    }

    /// Waits until the flag is raised, then lowers it. A raise that happened before the
    /// wait started is not lost.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.raised.replace(false) {
                return Poll::Ready(());
            }
            let waker = match self.waiter.take() {
                Some(waker) if waker.will_wake(cx.waker()) => waker,
                _ => cx.waker().clone(),
            };
            self.waiter.set(Some(waker));
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[tokio::test(flavor = "current_thread")]
    async fn raise_before_wait_is_kept_and_consumed_once() {
        let signal = LocalSignal::default();
        signal.raise();
        signal.wait().await;
        assert!(!signal.raised.get());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn raise_wakes_a_waiting_task() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let signal = Rc::new(LocalSignal::default());
                let waiter = tokio::task::spawn_local({
                    let signal = signal.clone();
                    async move { signal.wait().await }
                });
                tokio::task::yield_now().await;
                signal.raise();
                waiter.await.unwrap();
            })
            .await;
    }
}
