//! The shard mesh: one mailbox per ordered pair of shards and one wake-up per shard.

use bytes::BytesMut;
use tessera_protocol::{Command, Value};
use tessera_sync::{Mailbox, Slots};
use tokio::sync::Notify;

use crate::route::geo::GeoOp;
use crate::shard::stats::ShardStats;
use crate::data::watch::{ConnId, Push};

/// Token of a request whose answer nobody waits for.
pub const NO_REPLY: u32 = u32::MAX;
/// Marks a token as a shard task's call rather than a client request's part.
pub const CALL_BIT: u32 = 1 << 31;

/// A message between shards.
pub enum Envelope {
    /// Run `command` (keys all owned by the receiver) and answer `origin`.
    Request {
        /// Shard waiting for the answer.
        origin: u16,
        /// The origin's pending-request token.
        token: u32,
        /// Which part of a split request this is.
        part: u32,
        /// The command or its part.
        command: Command,
        /// The client connection that sent it.
        from: ConnId,
    },
    /// The answer to a `Request`.
    Reply {
        /// Token from the request.
        token: u32,
        /// Part from the request.
        part: u32,
        /// The result.
        reply: ShardReply,
    },
    /// Take over a client connection that asked for this shard in HELLO.
    Adopt(Adoption),
    /// Write a push frame to connections served by the receiver.
    Push(Push),
    /// Run a step on a geo partition the receiver holds and answer `origin`.
    Geo {
        /// Shard waiting for the answer.
        origin: u16,
        /// The origin's call token.
        token: u32,
        /// The step.
        op: GeoOp,
    },
}

/// What a shard returns for a request part.
pub enum ShardReply {
    /// An ordinary value.
    Value(Value),
    /// A statistics snapshot, for INFO.
    Stats(Box<ShardStats>),
}

/// A connection in transit from the shard that accepted it to the shard it asked for.
pub struct Adoption {
    /// The socket, detached from the accepting shard's reactor.
    pub stream: std::net::TcpStream,
    /// Bytes read after the HELLO frame, not yet decoded.
    pub buffered: BytesMut,
    /// Request id of the HELLO to answer.
    pub hello_id: u32,
    /// The connection's `maxclients` slot, released when the connection ends.
    pub slot: ClientSlot,
}

/// A held `maxclients` slot; dropping it frees the slot.
pub struct ClientSlot {
    slots: std::sync::Arc<Slots>,
}

impl ClientSlot {
    /// Takes a slot, or `None` at the ceiling.
    pub fn acquire(slots: &std::sync::Arc<Slots>) -> Option<ClientSlot> {
        slots.try_acquire().then(|| ClientSlot {
            slots: slots.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.slots.release();
    }
}

/// Every mailbox and wake-up between `shards` shards.
pub struct Mesh {
    shards: u16,
    /// Indexed `to * shards + from`.
    mailboxes: Vec<Mailbox<Envelope>>,
    wakers: Vec<Notify>,
}

impl Mesh {
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

    fn mailbox(&self, to: u16, from: u16) -> &Mailbox<Envelope> {
        &self.mailboxes[usize::from(to) * usize::from(self.shards) + usize::from(from)]
    }

    /// Delivers a batch, waking the receiver only if its mailbox from `from` was empty.
    pub fn send(&self, from: u16, to: u16, batch: Vec<Envelope>) {
        if self.mailbox(to, from).push(batch) {
            self.wakers[usize::from(to)].notify_one();
        }
    }

    /// Takes everything waiting for shard `at`, from every sender.
    pub fn receive(&self, at: u16) -> Vec<Vec<Envelope>> {
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
