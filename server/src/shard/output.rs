//! Where one connection's replies and pushes collect until its task writes them.
//!
//! The connection task owns the socket; everything that answers it (its own requests, a
//! gather finishing later, a push from another shard) appends frames here and raises
//! `wake`.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use hashbrown::HashSet;
use tessera_protocol::resp::{self, RespVersion};
use tessera_protocol::{
    encode_bytes_array_response, encode_bytes_response, encode_response, Value, PUSH_ID,
};

use super::clients::ClientInfo;
use crate::data::watch::ConnId;
use crate::families::{to_value, Reply};
use crate::resp::shape::Shape;
use crate::signal::LocalSignal;

/// Output buffer headroom a connection starts with.
pub const OUTPUT_RESERVE: usize = 16 * 1024;

/// What a connection's replies are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Tessera's frames, each carrying its request's id, in any order.
    Native,
    /// RESP, in the order the requests came, as Redis clients expect.
    Resp(RespVersion),
}

/// RESP replies that finished before one asked earlier, held until it has been written.
#[derive(Default)]
struct InOrder {
    /// The id of the oldest request not yet answered.
    next: u32,
    parked: BTreeMap<u32, Parked>,
    parked_bytes: usize,
    /// The RESP version replies are being written in now.
    writing: RespVersion,
    /// Requests whose replies Redis shapes differently from ours.
    shapes: hashbrown::HashMap<u32, Shape>,
    /// Requests whose replies are dropped when their turn comes (CLIENT REPLY OFF/SKIP).
    silenced: hashbrown::HashSet<u32>,
}

/// A RESP reply on its way to the output.
enum Item<'a> {
    Value(&'a Value, Option<Shape>),
    Switch(&'a Value, RespVersion),
    Status(&'a str),
    Bulk(&'a [u8]),
    Members(&'a [&'a [u8]]),
}

/// A reply held until the ones before it are written: values wait unencoded (a HELLO
/// before them may change the version), the rest encoded (they read alike in both).
enum Parked {
    Value(Value, Option<Shape>),
    Switch(Value, RespVersion),
    Encoded(BytesMut),
}

impl Item<'_> {
    fn write(self, buf: &mut BytesMut, writing: &mut RespVersion) {
        match self {
            Item::Value(Value::Nil, Some(shape))
                if shape.nil_is_array() && *writing == RespVersion::Resp2 =>
            {
                buf.extend_from_slice(b"*-1\r\n");
            }
            Item::Value(value, Some(Shape::Frames(frames)))
                if !matches!(value, Value::Error(_)) =>
            {
                for frame in frames.iter() {
                    resp::encode_push(buf, frame, *writing);
                }
            }
            Item::Value(value, None) => resp::encode(buf, value, *writing),
            Item::Value(value, Some(shape)) => {
                resp::encode(buf, &shape.apply(value, *writing), *writing);
            }
            Item::Switch(value, version) => {
                *writing = version;
                resp::encode(buf, value, version);
            }
            Item::Status(status) => resp::encode_status(buf, status),
            Item::Bulk(bytes) => resp::bulk(buf, bytes),
            Item::Members(members) => resp::bulk_array(buf, members),
        }
    }

    fn park(self) -> Parked {
        match self {
            Item::Value(value, shape) => Parked::Value(value.clone(), shape),
            Item::Switch(value, version) => Parked::Switch(value.clone(), version),
            other => {
                let mut encoded = BytesMut::new();
                // Bulk strings, statuses and arrays of bulk strings read alike in both.
                other.write(&mut encoded, &mut RespVersion::Resp2);
                Parked::Encoded(encoded)
            }
        }
    }
}

impl Parked {
    /// Roughly what it will take in the output, for the backpressure count.
    fn size(&self) -> usize {
        match self {
            Parked::Value(..) | Parked::Switch(..) => 64,
            Parked::Encoded(bytes) => bytes.len(),
        }
    }

    fn write(self, buf: &mut BytesMut, writing: &mut RespVersion) {
        match self {
            Parked::Value(value, shape) => Item::Value(&value, shape).write(buf, writing),
            Parked::Switch(value, version) => Item::Switch(&value, version).write(buf, writing),
            Parked::Encoded(bytes) => buf.extend_from_slice(&bytes),
        }
    }
}

impl InOrder {
    fn advance(&mut self) {
        // Ids run 1, 2, ... and skip the push id when they wrap, as the reader assigns them.
        self.next = self.next.wrapping_add(1);
        if self.next == PUSH_ID {
            self.next = 1;
        }
    }
}

/// One connection's pending output and the state others need to reach it.
pub struct ConnOutput {
    buf: RefCell<BytesMut>,
    /// Native frames, or RESP (and which version).
    pub wire: Cell<Wire>,
    order: RefCell<InOrder>,
    /// This connection's node-wide identity, for pushes.
    pub id: Cell<ConnId>,
    /// Users this connection watches, so closing can unwatch them all.
    pub watching: RefCell<HashSet<Bytes>>,
    /// Whether it ever waited in a blocking pop, so closing ends its waits.
    pub blocked: Cell<bool>,
    /// The channels it subscribes to.
    pub channels: RefCell<HashSet<Bytes>>,
    /// The patterns it subscribes to.
    pub patterns: RefCell<HashSet<Bytes>>,
    /// Raised when a reply arrives from another shard, or when the shard stops.
    pub wake: LocalSignal,
    /// Requests whose replies will come later (from other shards or tasks).
    pub in_flight: Cell<usize>,
    /// The slow log's copy of the arguments of requests in flight, by request id.
    pub slow_args: RefCell<Vec<(u32, Vec<Bytes>)>>,
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
    /// Who the connection is and what it last did, for CLIENT LIST.
    pub client: ClientInfo,
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

    /// When bytes last arrived.
    pub fn last_read(&self) -> Instant {
        self.last_read.get()
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
            wire: Cell::new(Wire::Native),
            order: RefCell::new(InOrder {
                next: 1,
                ..InOrder::default()
            }),
            id: Cell::new(ConnId {
                shard: 0,
                slot: 0,
                serial: 0,
            }),
            watching: RefCell::new(HashSet::new()),
            blocked: Cell::new(false),
            channels: RefCell::new(HashSet::new()),
            patterns: RefCell::new(HashSet::new()),
            wake: LocalSignal::default(),
            in_flight: Cell::new(0),
            slow_args: RefCell::new(Vec::new()),
            wrote: Cell::new(false),
            reads_replica: Cell::new(false),
            aborted: LocalSignal::default(),
            abort_reason: Cell::new(None),
            read_clock: ReadClock::default(),
            client: ClientInfo::default(),
        }
    }
}

impl ConnOutput {
    /// Appends one response frame.
    pub fn reply(&self, request_id: u32, value: &Value) {
        match self.wire.get() {
            Wire::Native => encode_response(&mut self.buf.borrow_mut(), request_id, value),
            Wire::Resp(_) if request_id == PUSH_ID => {
                let version = self.order.borrow().writing;
                resp::encode_push(&mut self.buf.borrow_mut(), value, version);
            }
            Wire::Resp(_) => {
                let mut order = self.order.borrow_mut();
                // Most replies need no reshaping: skip the lookup while none is noted.
                let shape = (!order.shapes.is_empty())
                    .then(|| order.shapes.remove(&request_id))
                    .flatten();
                drop(order);
                self.in_order(request_id, Item::Value(value, shape));
            }
        }
    }

    /// Drops `request_id`'s reply when it comes, keeping the order of the rest.
    pub fn silence(&self, request_id: u32) {
        self.order.borrow_mut().silenced.insert(request_id);
    }

    /// Writes `request_id`'s reply after all: subscription confirmations are pushes, which
    /// CLIENT REPLY OFF does not silence.
    pub fn unsilence(&self, request_id: u32) {
        self.order.borrow_mut().silenced.remove(&request_id);
    }

    /// Reshapes `request_id`'s reply as Redis gives it, when it comes.
    pub fn expect_shape(&self, request_id: u32, shape: Shape) {
        self.order.borrow_mut().shapes.insert(request_id, shape);
    }

    /// Answers a RESP HELLO: its reply, and every one after it, in `version`.
    pub fn reply_switching(&self, request_id: u32, value: &Value, version: RespVersion) {
        self.wire.set(Wire::Resp(version));
        self.in_order(request_id, Item::Switch(value, version));
    }

    /// Appends a RESP simple string (`+PONG`) answering `request_id`.
    pub fn reply_status(&self, request_id: u32, status: &str) {
        match self.wire.get() {
            Wire::Native => self.reply(request_id, &Value::text(status)),
            Wire::Resp(_) => self.in_order(request_id, Item::Status(status)),
        }
    }

    /// Appends one response frame for a shard operation's result.
    pub fn reply_with(&self, request_id: u32, reply: &Reply<'_>) {
        if let Wire::Resp(_) = self.wire.get() {
            return match reply {
                Reply::Stored(blob) => match blob.as_bytes() {
                    Some(bytes) => self.in_order(request_id, Item::Bulk(bytes)),
                    None => self.reply(request_id, &to_value(blob)),
                },
                Reply::Bytes(bytes) => self.in_order(request_id, Item::Bulk(bytes)),
                Reply::Members(members) => self.in_order(request_id, Item::Members(members)),
                Reply::Value(value) => self.reply(request_id, value),
            };
        }
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

    /// Writes a RESP reply now if every earlier request has been answered, else holds it
    /// until they have: RESP has no request ids, so order is all a client goes by. A reply
    /// is encoded when it is written, in the version the HELLOs before it chose.
    fn in_order(&self, request_id: u32, item: Item<'_>) {
        let mut order = self.order.borrow_mut();
        if request_id != order.next {
            let parked = item.park();
            order.parked_bytes += parked.size();
            order.parked.insert(request_id, parked);
            return;
        }
        let mut buf = self.buf.borrow_mut();
        let silenced = !order.silenced.is_empty() && order.silenced.remove(&request_id);
        if !silenced {
            item.write(&mut buf, &mut order.writing);
        }
        order.advance();
        // Replies are almost always written in the order asked, with nothing parked.
        while !order.parked.is_empty() {
            let next = order.next;
            let Some(parked) = order.parked.remove(&next) else {
                break;
            };
            order.parked_bytes -= parked.size();
            let silenced = !order.silenced.is_empty() && order.silenced.remove(&next);
            if !silenced {
                parked.write(&mut buf, &mut order.writing);
            }
            order.advance();
        }
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.borrow().is_empty()
    }

    /// Bytes waiting to be written, with RESP replies held for earlier ones.
    pub fn pending_bytes(&self) -> usize {
        self.buf.borrow().len() + self.order.borrow().parked_bytes
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
