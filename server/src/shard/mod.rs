//! One shard: its keyspace, statistics, pending cross-shard requests, and its background tasks.
//!
//! A shard lives on one thread and is shared between that thread's tasks through `Rc`;
//! nothing in it is touched from another thread. Other shards reach it only through the
//! mesh.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_protocol::{AdminCommand, PresenceCommand};

use slab::Slab;
use tessera_protocol::{Command, Value};

use crate::clock;

pub mod mesh;
pub mod stats;
use crate::net::connection::ConnOutput;
use crate::route::coordinator::Gather;
use crate::route::geo::{self as geo_route, GeoOp, Start};
use crate::data::keyspace::Keyspace;
use crate::shard::mesh::{Envelope, Mesh, ShardReply, CALL_BIT, NO_REPLY};
use crate::families;
use crate::signal::LocalSignal;
use crate::shard::stats::ShardStats;
use crate::data::watch::{self, ConnId, Push};
use std::future::Future;
use tessera_protocol::geo::GeoCommand;
use tessera_protocol::ErrorCode;
use tessera_protocol::PUSH_ID;
use tokio::sync::oneshot;

/// Geo members looked at per index per expiry tick, to free lapsed ones.
const GEO_SWEEP_BUDGET: usize = 2_000;

/// How often a shard samples its keys with deadlines.
const EXPIRY_INTERVAL: Duration = Duration::from_millis(100);

/// Facts about the node that every shard reports.
#[derive(Debug)]
pub struct NodeInfo {
    /// Node identifier.
    pub node_id: String,
    /// Shards on this node.
    pub shards: u16,
    /// Port clients connect to.
    pub port: u16,
    /// When the server started.
    pub started: Instant,
    /// Largest request frame accepted.
    pub max_frame_bytes: usize,
    /// Push bytes a connection may leave unread before it is closed.
    pub max_push_buffer_bytes: usize,
    /// Client connection ceiling.
    pub maxclients: usize,
}

/// A request waiting for other shards' answers.
pub struct Pending {
    /// Connection to answer; gone if the client left.
    pub conn: Weak<ConnOutput>,
    /// Client's request id.
    pub request_id: u32,
    /// Position of the command in `COMMANDS`.
    pub command_index: usize,
    /// When the request was decoded.
    pub started: Instant,
    /// How the parts combine.
    pub gather: Gather,
}

/// One shard's state.
pub struct Shard {
    /// This shard's index.
    pub id: u16,
    /// Node-wide facts.
    pub node: Arc<NodeInfo>,
    /// Links to every other shard.
    pub mesh: Arc<Mesh>,
    /// Keys owned by this shard.
    pub keyspace: RefCell<Keyspace>,
    /// Counters.
    pub stats: RefCell<ShardStats>,
    /// Requests waiting on other shards, by token.
    pub pending: RefCell<Slab<Pending>>,
    /// Envelopes queued per destination shard until the next flush.
    outbox: RefCell<Vec<Vec<Envelope>>>,
    /// Connections served by this shard now, so shutdown and pushes can reach each one.
    connections: RefCell<Slab<Weak<ConnOutput>>>,
    /// Serial of the last connection registered.
    connection_serial: Cell<u32>,
    /// Shard tasks waiting on another shard's answer, by call token.
    calls: RefCell<Slab<oneshot::Sender<ShardReply>>>,

    /// Raised whenever a connection closes, for shutdown to wait on.
    connection_closed: LocalSignal,
    /// Set once shutdown has begun: no new requests are read.
    stopping: Cell<bool>,
    /// Requests completed in the current batch, timed together at its end.
    unrecorded: RefCell<Vec<(usize, Instant, bool)>>,
}

impl Shard {
    /// Creates shard `id` of the node.
    pub fn new(id: u16, node: Arc<NodeInfo>, mesh: Arc<Mesh>) -> Self {
        let shards = usize::from(mesh.shards());
        Self {
            id,
            node,
            mesh,
            keyspace: RefCell::new(Keyspace::new()),
            stats: RefCell::new(ShardStats::new()),
            pending: RefCell::new(Slab::new()),
            outbox: RefCell::new((0..shards).map(|_| Vec::new()).collect()),
            connections: RefCell::new(Slab::new()),
            connection_serial: Cell::new(0),
            calls: RefCell::new(Slab::new()),
            connection_closed: LocalSignal::default(),
            stopping: Cell::new(false),
            unrecorded: RefCell::new(Vec::new()),
        }
    }

    /// Shards on this node.
    pub fn shards(&self) -> u16 {
        self.mesh.shards()
    }

    /// Runs a command whose keys this shard owns, for connection `from`.
    pub fn execute(&self, command: &Command, from: ConnId, now: u64) -> ShardReply {
        if let Command::Admin(AdminCommand::Info) = command {
            return ShardReply::Stats(Box::new(self.snapshot()));
        }
        let reply = {
            let mut keyspace = self.keyspace.borrow_mut();
            match command {
                Command::Presence(PresenceCommand::Watch(users)) => {
                    watch::watch(&mut keyspace, from, users, now)
                }
                Command::Presence(PresenceCommand::Unwatch(users)) => {
                    watch::unwatch(&mut keyspace, from, users)
                }
                _ => families::apply(&mut keyspace, command, now).into_value(),
            }
        };
        self.route_pushes();
        ShardReply::Value(reply)
    }

    /// Runs a geo partition step on shard `to`: here at once, elsewhere by message. The
    /// message leaves now, so calls made one after another arrive in that order.
    pub fn geo_call(&self, to: u16, op: GeoOp) -> impl Future<Output = Value> + 'static {
        let answer = if to == self.id {
            let mut keyspace = self.keyspace.borrow_mut();
            Err(geo_route::apply_op(
                &mut keyspace.geo,
                op,
                clock::now_millis(),
            ))
        } else {
            let (reply, answer) = oneshot::channel();
            let slot = self.calls.borrow_mut().insert(reply);
            let token = CALL_BIT | u32::try_from(slot).expect("fewer than 2^31 calls in flight");
            self.send(
                to,
                Envelope::Geo {
                    origin: self.id,
                    token,
                    op,
                },
            );
            self.flush();
            Ok(answer)
        };
        async move {
            match answer {
                Err(value) => value,
                Ok(answer) => match answer.await {
                    Ok(ShardReply::Value(value)) => value,
                    _ => Value::error(ErrorCode::Internal, "a shard did not answer"),
                },
            }
        }
    }

    /// Completes a call made by `geo_call`.
    fn answer_call(&self, token: u32, reply: ShardReply) {
        if let Some(waiting) = self
            .calls
            .borrow_mut()
            .try_remove((token & !CALL_BIT) as usize)
        {
            let _ = waiting.send(reply);
        }
    }

    /// Sends the pushes the last operation produced toward their connections. Called after
    /// every operation, so a push follows the reply of the command that caused it and
    /// precedes the reply of any later command on the same path.
    pub fn route_pushes(&self) {
        let pushes = {
            let mut keyspace = self.keyspace.borrow_mut();
            if !keyspace.watches.has_pushes() {
                return;
            }
            keyspace.watches.take_pushes()
        };
        for push in pushes {
            let mut by_shard: Vec<Vec<ConnId>> = vec![Vec::new(); usize::from(self.shards())];
            for conn in push.to {
                if let Some(group) = by_shard.get_mut(usize::from(conn.shard)) {
                    group.push(conn);
                }
            }
            for (to, conns) in by_shard.into_iter().enumerate() {
                if conns.is_empty() {
                    continue;
                }
                let push = Push {
                    to: conns,
                    value: push.value.clone(),
                };
                if to == usize::from(self.id) {
                    self.deliver(&push);
                } else {
                    self.send(to as u16, Envelope::Push(push));
                }
            }
        }
    }

    /// Writes a push frame to each of its connections still open on this shard.
    fn deliver(&self, push: &Push) {
        let connections = self.connections.borrow();
        for conn in &push.to {
            let out = connections
                .get(conn.slot as usize)
                .and_then(Weak::upgrade)
                .filter(|out| out.id.get() == *conn);
            if let Some(out) = out {
                // A watcher that stops reading must not grow the server without bound.
                if out.pending_bytes() > self.node.max_push_buffer_bytes {
                    out.overflow();
                    continue;
                }
                out.reply(PUSH_ID, &push.value);
                out.wake.raise();
            }
        }
        self.stats.borrow_mut().pushes += push.to.len() as u64;
    }

    /// This shard's counters, with keyspace figures filled in.
    pub fn snapshot(&self) -> ShardStats {
        let keyspace = self.keyspace.borrow();
        let mut stats = self.stats.borrow().clone();
        stats.keys = keyspace.len() as u64;
        stats.volatile_keys = keyspace.volatile_len() as u64;
        stats.expired_keys = keyspace.expired_total();
        stats.memory_bytes = keyspace.memory_bytes() as u64;
        stats.watched_users = keyspace.watches.len() as u64;
        stats.geo_members = keyspace.geo.members() as u64;
        stats
    }

    /// Registers a connection's output and gives it its identity; returns the key to
    /// unregister it with.
    pub fn register_connection(&self, out: &Rc<ConnOutput>) -> usize {
        let mut stats = self.stats.borrow_mut();
        stats.connections += 1;
        stats.connections_total += 1;
        let slot = self.connections.borrow_mut().insert(Rc::downgrade(out));
        let serial = self.connection_serial.get().wrapping_add(1);
        self.connection_serial.set(serial);
        out.id.set(ConnId {
            shard: self.id,
            slot: slot as u32,
            serial,
        });
        slot
    }

    /// Forgets a closed (or handed-over) connection.
    pub fn unregister_connection(&self, key: usize) {
        self.connections.borrow_mut().remove(key);
        self.stats.borrow_mut().connections -= 1;
        self.connection_closed.raise();
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Starts shutdown: every connection stops reading, finishes what it has in flight,
    /// and closes. Returns once all of them have.
    pub async fn drain_connections(&self) {
        self.stopping.set(true);
        let live: Vec<Rc<ConnOutput>> = self
            .connections
            .borrow()
            .iter()
            .filter_map(|(_, c)| c.upgrade())
            .collect();
        for connection in live {
            connection.wake.raise();
        }
        while !self.connections.borrow().is_empty() {
            self.connection_closed.wait().await;
        }
    }

    /// Notes a completed request; `flush` records its latency.
    pub fn completed(&self, command_index: usize, started: Instant, error: bool) {
        self.unrecorded
            .borrow_mut()
            .push((command_index, started, error));
    }

    /// Records the latency of every request completed since the last call, reading the
    /// clock once for all of them: a request's latency runs to the end of its batch, which
    /// is when its reply can leave.
    fn record_latencies(&self) {
        let mut unrecorded = self.unrecorded.borrow_mut();
        if unrecorded.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut stats = self.stats.borrow_mut();
        for (index, started, error) in unrecorded.drain(..) {
            stats.record(
                index,
                now.saturating_duration_since(started).as_nanos() as u64,
                error,
            );
        }
    }

    /// Queues an envelope for `to`; it leaves at the next `flush`.
    pub fn send(&self, to: u16, envelope: Envelope) {
        self.outbox.borrow_mut()[usize::from(to)].push(envelope);
    }

    /// Ends a batch: records latencies, then sends every queued envelope, one mailbox push
    /// (and at most one wake-up) per destination.
    pub fn flush(&self) {
        self.record_latencies();
        let mut outbox = self.outbox.borrow_mut();
        let mut batches = 0;
        for (to, queue) in outbox.iter_mut().enumerate() {
            if !queue.is_empty() {
                self.mesh.send(self.id, to as u16, std::mem::take(queue));
                batches += 1;
            }
        }
        drop(outbox);
        if batches > 0 {
            self.stats.borrow_mut().batches_out += batches;
        }
    }

    /// Serves the mailboxes: runs requests from other shards, completes our own pending
    /// requests with their replies, and adopts handed-over connections.
    pub async fn run_inbox(self: Rc<Self>) {
        loop {
            let batches = self.mesh.receive(self.id);
            if batches.is_empty() {
                self.mesh.wait(self.id).await;
                continue;
            }
            let now = clock::now_millis();
            for envelope in batches.into_iter().flatten() {
                match envelope {
                    Envelope::Request {
                        origin,
                        token,
                        part,
                        command,
                        from,
                    } => {
                        if let Command::Geo(geo) = &command {
                            if geo_route::is_routed(geo) {
                                self.serve_geo(geo, origin, token, part);
                                continue;
                            }
                        }
                        let reply = self.execute(&command, from, now);
                        self.stats.borrow_mut().forwarded_in += 1;
                        if token != NO_REPLY {
                            self.send(origin, Envelope::Reply { token, part, reply });
                        }
                    }
                    Envelope::Reply { token, part, reply } => {
                        if token & CALL_BIT != 0 {
                            self.answer_call(token, reply);
                        } else {
                            crate::route::coordinator::resolve(&self, token, part, reply);
                        }
                    }
                    Envelope::Adopt(adoption) => {
                        crate::net::connection::adopt(self.clone(), adoption);
                    }
                    Envelope::Push(push) => self.deliver(&push),
                    Envelope::Geo { origin, token, op } => {
                        let value = {
                            let mut keyspace = self.keyspace.borrow_mut();
                            geo_route::apply_op(&mut keyspace.geo, op, now)
                        };
                        if token != NO_REPLY {
                            let reply = ShardReply::Value(value);
                            self.send(
                                origin,
                                Envelope::Reply {
                                    token,
                                    part: 0,
                                    reply,
                                },
                            );
                        }
                    }
                }
            }
            self.flush();
        }
    }

    /// Runs a geo command another shard forwarded here; the answer goes back now, or
    /// when its task is done.
    fn serve_geo(self: &Rc<Self>, command: &GeoCommand, origin: u16, token: u32, part: u32) {
        self.stats.borrow_mut().forwarded_in += 1;
        let task = match geo_route::start(self, command, true) {
            Start::Done(value) => {
                let reply = ShardReply::Value(value);
                self.send(origin, Envelope::Reply { token, part, reply });
                return;
            }
            Start::Later(task) => task,
            Start::Forward(_) => Box::pin(async {
                Value::error(ErrorCode::Internal, "forwarded geo command misrouted")
            }),
        };
        let shard = self.clone();
        tokio::task::spawn_local(async move {
            let reply = ShardReply::Value(task.await);
            shard.send(origin, Envelope::Reply { token, part, reply });
            shard.flush();
        });
    }

    /// Tells the homes of lapsed members that this shard no longer holds them.
    fn forget_lapsed(&self, lapsed: Vec<(bytes::Bytes, bytes::Bytes)>) {
        for (index, member) in lapsed {
            let home = geo_route::home_of(&member, self.shards());
            let op = GeoOp::Forget {
                index,
                member,
                holder: self.id,
            };
            if home == self.id {
                geo_route::apply_op(&mut self.keyspace.borrow_mut().geo, op, 0);
            } else {
                let envelope = Envelope::Geo {
                    origin: self.id,
                    token: NO_REPLY,
                    op,
                };
                self.send(home, envelope);
            }
        }
    }

    /// Samples keys with deadlines and removes the expired ones, forever.
    pub async fn run_expiry(self: Rc<Self>) {
        let mut ticks = tokio::time::interval(EXPIRY_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = clock::now_millis();
            let mut keyspace = self.keyspace.borrow_mut();
            // Lapsed reservations give their units back, and watched users going silent
            // are reported offline, without anyone asking.
            for key in keyspace.take_due(now) {
                families::timer_due(&mut keyspace, &key, now);
            }
            let removed = keyspace.expire_cycle(now);
            let lapsed = keyspace.geo.sweep(GEO_SWEEP_BUDGET, now);
            drop(keyspace);
            self.forget_lapsed(lapsed);
            self.route_pushes();
            self.flush();
            if removed > 0 {
                tracing::trace!(shard = self.id, removed, "expired keys");
            }
        }
    }

    /// Node facts and totals rendered for INFO, from every shard's snapshot in shard order.
    pub fn render_info(&self, snapshots: &[ShardStats]) -> Value {
        let mut total = ShardStats::new();
        for snapshot in snapshots {
            total += snapshot;
        }
        let node = &self.node;
        let server = Value::Map(vec![
            (
                Value::text("version"),
                Value::text(env!("CARGO_PKG_VERSION")),
            ),
            (Value::text("node_id"), Value::text(node.node_id.clone())),
            (
                Value::text("pid"),
                Value::Int(i64::from(std::process::id())),
            ),
            (Value::text("port"), Value::Int(i64::from(node.port))),
            (Value::text("shards"), Value::Int(i64::from(node.shards))),
            (
                Value::text("uptime_s"),
                Value::Int(node.started.elapsed().as_secs() as i64),
            ),
            (
                Value::text("maxclients"),
                Value::Int(node.maxclients as i64),
            ),
            (
                Value::text("max_frame_bytes"),
                Value::Int(node.max_frame_bytes as i64),
            ),
        ]);
        let shards = snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut row = vec![(Value::text("shard"), Value::Int(i as i64))];
                row.extend(s.summary());
                Value::Map(row)
            })
            .collect();
        Value::Map(vec![
            (Value::text("server"), server),
            (Value::text("totals"), Value::Map(total.summary())),
            (Value::text("commands"), total.command_table()),
            (Value::text("shards"), Value::Array(shards)),
        ])
    }
}
