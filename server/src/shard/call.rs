//! The one way to reach another shard: run a closure there and get its typed answer back.
//!
//! Seastar's `submit_to` is the model. The closure runs on the target shard's thread
//! with that shard's state; its result travels back as a job on the caller's shard,
//! which completes the caller's future. Calls to the calling shard itself run at once.
//! Jobs for one shard leave in the order they were made, batched at the next flush.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::Shard;

/// The answer of a `call`: ready at once for this shard, later for another. `None`
/// means the target dropped the work (it was shutting down).
pub enum Answer<T> {
    /// Ran here.
    Ready(Option<T>),
    /// Running on another shard, or as a task.
    Waiting(oneshot::Receiver<T>),
}

// The value is never pinned in place: it is only moved out once ready.
impl<T> Unpin for Answer<T> {}

impl<T> Future for Answer<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.get_mut() {
            Answer::Ready(value) => Poll::Ready(value.take()),
            Answer::Waiting(receiver) => Pin::new(receiver).poll(cx).map(Result::ok),
        }
    }
}

impl Shard {
    /// Runs `job` on shard `to`, here at once if `to` is this shard; nobody waits for it.
    pub fn submit(self: &Rc<Self>, to: u16, job: impl FnOnce(&Rc<Shard>) + Send + 'static) {
        if to == self.id {
            job(self);
        } else {
            self.send(to, Box::new(job));
        }
    }

    /// Runs `work` on shard `to` and answers what it returns.
    pub fn call<T: Send + 'static>(
        self: &Rc<Self>,
        to: u16,
        work: impl FnOnce(&Rc<Shard>) -> T + Send + 'static,
    ) -> Answer<T> {
        if to == self.id {
            return Answer::Ready(Some(work(self)));
        }
        self.stats.borrow_mut().forwarded_out += 1;
        let (answer, waiting) = oneshot::channel();
        let origin = self.id;
        self.send(
            to,
            Box::new(move |target: &Rc<Shard>| {
                target.stats.borrow_mut().forwarded_in += 1;
                let value = work(target);
                target.send(
                    origin,
                    Box::new(move |_: &Rc<Shard>| {
                        let _ = answer.send(value);
                    }),
                );
            }),
        );
        Answer::Waiting(waiting)
    }

    /// Runs `work` on shard `to` as a task there (it may itself wait on other shards) and
    /// answers what the task finishes with.
    pub fn call_later<T, F>(
        self: &Rc<Self>,
        to: u16,
        work: impl FnOnce(&Rc<Shard>) -> F + Send + 'static,
    ) -> Answer<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + 'static,
    {
        if to != self.id {
            self.stats.borrow_mut().forwarded_out += 1;
        }
        let (answer, waiting) = oneshot::channel();
        let origin = self.id;
        let job = move |target: &Rc<Shard>| {
            if target.id != origin {
                target.stats.borrow_mut().forwarded_in += 1;
            }
            let task = work(target);
            let target = target.clone();
            tokio::task::spawn_local(async move {
                let value = task.await;
                if target.id == origin {
                    let _ = answer.send(value);
                } else {
                    target.send(
                        origin,
                        Box::new(move |_: &Rc<Shard>| {
                            let _ = answer.send(value);
                        }),
                    );
                }
            });
        };
        self.submit(to, job);
        Answer::Waiting(waiting)
    }
}

impl Shard {
    /// Runs `work` on every shard of the node, this one included: the answers in shard
    /// order. What `work` owns is cloned for each shard, not copied from the request again.
    pub fn call_every<T: Send + 'static>(
        self: &Rc<Self>,
        work: impl Fn(&Rc<Shard>) -> T + Clone + Send + 'static,
    ) -> Vec<Answer<T>> {
        (0..self.shards())
            .map(|to| {
                let work = work.clone();
                self.call(to, move |target: &Rc<Shard>| work(target))
            })
            .collect()
    }
}

impl<T> Answer<T> {
    /// Every answer's value, in order, once all have come; `None` when a target dropped
    /// its work.
    pub async fn all(answers: Vec<Answer<T>>) -> Option<Vec<T>> {
        let mut values = Vec::with_capacity(answers.len());
        for answer in answers {
            values.push(answer.await?);
        }
        Some(values)
    }

    /// Every answer's value when all ran here, else the answers to wait for.
    ///
    /// # Errors
    /// Gives the answers back when any of them is still waiting.
    pub fn all_ready(answers: Vec<Answer<T>>) -> Result<Vec<T>, Vec<Answer<T>>> {
        if !answers
            .iter()
            .all(|answer| matches!(answer, Answer::Ready(Some(_))))
        {
            return Err(answers);
        }
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                Answer::Ready(value) => value,
                Answer::Waiting(_) => None,
            })
            .collect())
    }
}
