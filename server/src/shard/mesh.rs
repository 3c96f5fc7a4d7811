//! The shard mesh: one mailbox per ordered pair of shards and one wake-up per shard.
//!
//! What travels is whatever the shards agree on (their jobs: closures the receiver runs
//! on its own thread); the mesh only moves batches of them and wakes the receiver.

use tessera_sync::Mailbox;
use tokio::sync::Notify;

/// Every mailbox and wake-up between `shards` shards.
pub struct Mesh<T> {
    shards: u16,
    /// Indexed `to * shards + from`.
    mailboxes: Vec<Mailbox<T>>,
    wakers: Vec<Notify>,
}

impl<T: Send> Mesh<T> {
    /// Builds the mesh for `shards` shards.
    pub fn new(shards: u16) -> Self {
        let n = usize::from(shards);
        Self {
            shards,
            mailboxes: (0..n * n).map(|_| Mailbox::new()).collect(),
            wakers: (0..n).map(|_| Notify::new()).collect(),
        }
    }

    /// Shards in the mesh.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    fn mailbox(&self, to: u16, from: u16) -> &Mailbox<T> {
        &self.mailboxes[usize::from(to) * usize::from(self.shards) + usize::from(from)]
    }

    /// Delivers a batch, waking the receiver only if its mailbox from `from` was empty.
    pub fn send(&self, from: u16, to: u16, batch: Vec<T>) {
        if self.mailbox(to, from).push(batch) {
            self.wakers[usize::from(to)].notify_one();
        }
    }

    /// Takes everything waiting for shard `at`, from every sender.
    pub fn receive(&self, at: u16) -> Vec<Vec<T>> {
        let mut batches = Vec::new();
        for from in 0..self.shards {
            batches.extend(self.mailbox(at, from).take_all());
        }
        batches
    }

    /// Waits until some shard sends to `at`; returns at once if a wake-up is pending.
    pub async fn wait(&self, at: u16) {
        self.wakers[usize::from(at)].notified().await;
    }
}
