//! Where one connection's replies and pushes collect until its task writes them.
//!
//! The connection task owns the socket; everything that answers it (its own requests, a
//! gather finishing later, a push from another shard) appends frames here and raises
//! `wake`.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hashbrown::HashSet;
use tessera_protocol::{
    encode_bytes_array_response, encode_bytes_response, encode_response, Value,
};

use crate::data::watch::ConnId;
use crate::families::{to_value, Reply};
use crate::signal::LocalSignal;

/// Output buffer headroom a connection starts with.
pub const OUTPUT_RESERVE: usize = 16 * 1024;

/// One connection's pending output and the state others need to reach it.
pub struct ConnOutput {
    buf: RefCell<BytesMut>,
    /// This connection's node-wide identity, for pushes.
    pub id: Cell<ConnId>,
    /// Users this connection watches, so closing can unwatch them all.
    pub watching: RefCell<HashSet<Bytes>>,
    /// Raised when a reply arrives from another shard, or when the shard stops.
    pub wake: LocalSignal,
    /// Requests whose replies will come later (from other shards or tasks).
    pub in_flight: Cell<usize>,
    /// Whether a request that changes data was received since the output was last
    /// written: such replies wait for the log even while it is failing.
    pub wrote: Cell<bool>,
    /// Whether this connection asked (READONLY) to read the slots of the primary this
    /// node replicates, instead of being sent MOVED to it.
    pub reads_replica: Cell<bool>,
    /// Raised when the connection must close now (pushes outgrew the limit while the
    /// client was not reading, or shutdown ran out of time).
    aborted: LocalSignal,
    /// Why, set with `aborted`, for checks between waits.
    abort_reason: Cell<Option<&'static str>>,
    /// When bytes last arrived and when the frame now buffered began, for the timeouts.
    pub read_clock: ReadClock,
}

/// When a connection last sent bytes, and since when a frame of it has been arriving.
pub struct ReadClock {
    last_read: Cell<Instant>,
    partial_since: Cell<Option<Instant>>,
}

impl Default for ReadClock {
    fn default() -> Self {
        ReadClock {
            last_read: Cell::new(Instant::now()),
            partial_since: Cell::new(None),
        }
    }
}

impl ReadClock {
    /// Bytes arrived; `was_empty` if nothing was buffered before them.
    pub fn arrived(&self, was_empty: bool) {
        let now = Instant::now();
        self.last_read.set(now);
        if was_empty {
            self.partial_since.set(Some(now));
        }
    }

    /// A batch ran: a frame left in the buffer keeps its start time, an empty buffer has
    /// none.
    pub fn processed(&self, buffer_empty: bool) {
        if buffer_empty {
            self.partial_since.set(None);
        } else if self.partial_since.get().is_none() {
            self.partial_since.set(Some(self.last_read.get()));
        }
    }

    /// Why the connection has run out of time at `now`, if it has: a frame begun more than
    /// `frame` ago, or (when `idle` applies) nothing sent for more than `idle`.
    pub fn overdue(
        &self,
        now: Instant,
        frame: Duration,
        idle: Option<Duration>,
    ) -> Option<Overdue> {
        if let Some(since) = self.partial_since.get() {
            return (now.saturating_duration_since(since) > frame).then_some(Overdue::Frame);
        }
        let idle = idle?;
        (now.saturating_duration_since(self.last_read.get()) > idle).then_some(Overdue::Idle)
    }
}

/// What a connection has run out of time for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// A frame it began did not arrive whole in time.
    Frame,
    /// It sent nothing for too long.
    Idle,
}

impl Default for ConnOutput {
    fn default() -> Self {
        Self {
            buf: RefCell::new(BytesMut::with_capacity(OUTPUT_RESERVE)),
            id: Cell::new(ConnId {
                shard: 0,
                slot: 0,
                serial: 0,
            }),
            watching: RefCell::new(HashSet::new()),
            wake: LocalSignal::default(),
            in_flight: Cell::new(0),
            wrote: Cell::new(false),
            reads_replica: Cell::new(false),
            aborted: LocalSignal::default(),
            abort_reason: Cell::new(None),
            read_clock: ReadClock::default(),
        }
    }
}

impl ConnOutput {
    /// Appends one response frame.
    pub fn reply(&self, request_id: u32, value: &Value) {
        encode_response(&mut self.buf.borrow_mut(), request_id, value);
    }

    /// Appends one response frame for a shard operation's result.
    pub fn reply_with(&self, request_id: u32, reply: &Reply<'_>) {
        match reply {
            Reply::Value(value) => self.reply(request_id, value),
            Reply::Stored(blob) => match blob.as_bytes() {
                Some(bytes) => encode_bytes_response(&mut self.buf.borrow_mut(), request_id, bytes),
                None => self.reply(request_id, &to_value(blob)),
            },
            Reply::Bytes(bytes) => {
                encode_bytes_response(&mut self.buf.borrow_mut(), request_id, bytes)
            }
            Reply::Members(members) => {
                encode_bytes_array_response(&mut self.buf.borrow_mut(), request_id, members)
            }
        }
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.borrow().is_empty()
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.buf.borrow().len()
    }

    /// Exchanges the pending output for `spare` (empty), so it can be written while new
    /// output collects.
    pub fn swap_out(&self, spare: &mut BytesMut) {
        std::mem::swap(&mut *self.buf.borrow_mut(), spare);
    }

    /// Marks the connection for closing: it left too many pushes unread.
    pub fn overflow(&self) {
        self.abort("push buffer limit");
    }

    /// Closes the connection at once, whatever it is waiting for, for `reason`.
    pub fn abort(&self, reason: &'static str) {
        if self.abort_reason.get().is_none() {
            self.abort_reason.set(Some(reason));
        }
        self.aborted.raise();
        self.wake.raise();
    }

    /// Why the connection must close now, if it must.
    pub fn abort_reason(&self) -> Option<&'static str> {
        self.abort_reason.get()
    }

    /// Waits for `abort`.
    pub async fn aborted(&self) {
        self.aborted.wait().await;
    }
}
