//! One shard: its keyspace, statistics, connections, and its background tasks.
//!
//! A shard lives on one thread and is shared between that thread's tasks through `Rc`;
//! nothing in it is touched from another thread. Other shards reach it only through the
//! mesh, with `call` and `submit`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;
use tessera_protocol::PUSH_ID;

use crate::clock;
use crate::data::watch::{ConnId, Push};
use crate::families::{self, Keyspace};
use crate::signal::LocalSignal;

pub mod call;
pub mod clients;
pub mod durable;
pub mod fence;
pub mod mesh;
pub mod output;
pub mod stats;

use durable::Durability;
use mesh::Mesh;
use output::ConnOutput;
use stats::ShardStats;

/// Writes that only remove or shrink data, which maxmemory never refuses.
fn frees_memory(command: &str) -> bool {
    matches!(
        command,
        "DEL"
            | "FLUSHALL"
            | "EXPIRE"
            | "PEXPIRE"
            | "PERSIST"
            | "HDEL"
            | "ZREM"
            | "ZPOPMIN"
            | "ZPOPMAX"
            | "ZREMRANGEBYSCORE"
            | "ZREMRANGEBYRANK"
            | "INV.RELEASE"
            | "INV.CONFIRM"
            | "PRESENCE.LEAVE"
            | "GEO.REMOVE"
            | "RL.RESET"
    )
}

/// Work for one shard, run on that shard's thread with its state.
pub type Job = Box<dyn FnOnce(&Rc<Shard>) + Send>;

/// The most keys one write evicts; a write needing more goes ahead and the next evicts on.
const MAX_EVICTIONS_PER_WRITE: usize = 1_000;
/// Below maxmemory by more than this, a write trusts the millisecond's cached heap
/// reading; closer, it reads the allocator's count itself.
const FRESH_READ_MARGIN: usize = 4 << 20;

/// Geo members looked at per index per expiry tick, to free lapsed ones.
const GEO_SWEEP_BUDGET: usize = 2_000;

/// How often a shard removes the keys its expiry wheel says lapsed: the wheel's tick.
const WHEEL_INTERVAL: Duration = Duration::from_millis(10);
/// The most one wheel tick may take: a quarter of it, as the sampling cycle's budget.
const WHEEL_BUDGET: Duration = Duration::from_micros(2_500);

/// How often a shard samples its keys with deadlines.
const EXPIRY_INTERVAL: Duration = Duration::from_millis(100);
/// The most one expiry cycle may take: a quarter of the interval, as Redis allows its
/// slow cycle, and only while a large share of the sampled keys has expired.
const EXPIRY_BUDGET: Duration = Duration::from_millis(25);

/// Facts about the node that every shard reports.
#[derive(Debug)]
pub struct NodeInfo {
    /// Node identifier.
    pub node_id: String,
    /// Shards on this node.
    pub shards: u16,
    /// Port clients connect to.
    pub port: u16,
    /// The RESP port; 0 when RESP is off.
    pub resp_port: u16,
    /// When the server started.
    pub started: Instant,
    /// Largest request frame accepted.
    pub max_frame_bytes: usize,
    /// Push bytes a connection may leave unread before it is closed.
    pub max_push_buffer_bytes: usize,
    /// Change-stream bytes each shard keeps for replicas.
    pub repl_backlog_bytes: usize,
    /// Client connection ceiling.
    pub maxclients: usize,
    /// How long shutdown waits for connections to take their last replies.
    pub shutdown_timeout: Duration,
    /// How long a connection may sit idle before it is closed (`None`: forever).
    pub idle_timeout: Option<Duration>,
    /// How long a frame may take to arrive once its first byte has.
    pub frame_timeout: Duration,
    /// Reply bytes a connection may have waiting before its next requests wait too.
    pub max_output_buffer_bytes: usize,
    /// Heap bytes the node may hold (its allocator's count: data, buffers, everything)
    /// before writes that add data evict keys or are refused.
    pub maxmemory: usize,
    /// Which keys go at maxmemory.
    pub eviction: crate::data::keyspace::Policy,
    /// The node's users.
    pub acl: Arc<crate::acl::Acl>,
    /// TLS for client connections, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The node's part in a cluster; `None` in single-node mode.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Redis's encoding settings a client set with CONFIG SET: kept and read back, though
    /// our layouts do not follow them.
    pub encoding_settings: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    /// Pub/sub subscriptions of every connection on the node.
    pub subscriptions: crate::data::pubsub::Subscriptions,
    /// `notify-keyspace-events`: which keyspace notifications are published (none by
    /// default), shared with every shard's keyspace.
    pub notify_flags: Arc<std::sync::atomic::AtomicU16>,
    /// The slow log's and latency monitor's thresholds.
    pub thresholds: crate::diagnostics::Thresholds,
}

/// One shard's state.
pub struct Shard {
    /// This shard's index.
    pub id: u16,
    /// Node-wide facts.
    pub node: Arc<NodeInfo>,
    /// Links to every other shard.
    pub mesh: Arc<Mesh<Job>>,
    /// Keys owned by this shard.
    pub keyspace: RefCell<Keyspace>,
    /// Counters.
    pub stats: RefCell<ShardStats>,
    /// The slow log, and what it needs to time requests.
    pub diagnostics: crate::diagnostics::ShardDiagnostics,
    /// Jobs queued per destination shard until the next flush.
    outbox: RefCell<Vec<Vec<Job>>>,
    /// Raised when the outbox gains its first job since the last flush.
    outbox_ready: LocalSignal,
    /// Whether the outbox holds jobs not yet sent.
    outbox_dirty: Cell<bool>,
    /// Connections served by this shard now, so shutdown and pushes can reach each one.
    connections: RefCell<Slab<Weak<ConnOutput>>>,
    /// Serial of the last connection registered.
    connection_serial: Cell<u32>,
    /// Links that pass PUBLISH on to the cluster's other nodes.
    pub relays: crate::route::relay::Relays,
    /// The node's heap bytes, and the millisecond they were read at.
    heap_seen: Cell<(u64, usize)>,
    /// Geo tasks running here, for a migration to wait out.
    pub fence: fence::Fence,
    /// A cluster client for multi-key commands a plain client sent across nodes.
    pub cluster_client: tokio::sync::OnceCell<tessera_client::Client>,
    /// Raised whenever a connection closes, for shutdown to wait on.
    connection_closed: LocalSignal,
    /// Set once shutdown has begun: no new requests are read.
    stopping: Cell<bool>,
    /// Requests completed in the current batch, timed together at its end.
    unrecorded: RefCell<Vec<(usize, Instant, bool)>>,
    /// The log, when the node persists.
    pub durability: Option<Durability>,
    /// Copies and pulls served as a primary, and the stream followed as a replica.
    pub replication: crate::route::replicate::Replication,
    /// This shard's copy of the cluster's topology and the version it was published as.
    topology: RefCell<(usize, Arc<Option<tessera_cluster::Topology>>)>,
}

impl Shard {
    /// Creates shard `id` of the node, holding `keyspace` (loaded, or new) and writing
    /// its changes to `durability`'s log if there is one.
    pub fn new(
        id: u16,
        node: Arc<NodeInfo>,
        mesh: Arc<Mesh<Job>>,
        mut keyspace: Keyspace,
        durability: Option<Durability>,
    ) -> Self {
        let shards = usize::from(mesh.shards());
        if durability.is_some() {
            keyspace.start_journal();
        }
        keyspace.reply_limit = node.max_output_buffer_bytes;
        keyspace.value_limit = node.max_frame_bytes;
        keyspace.eviction = node.eviction;
        // Set after loading, so a replay announces nothing.
        keyspace.notices.flags = node.notify_flags.clone();
        keyspace.latency =
            crate::diagnostics::latency::LatencyMonitor::new(node.thresholds.latency_ms.clone());
        Self {
            id,
            node,
            mesh,
            keyspace: RefCell::new(keyspace),
            stats: RefCell::new(ShardStats::new()),
            diagnostics: Default::default(),
            outbox: RefCell::new((0..shards).map(|_| Vec::new()).collect()),
            outbox_ready: LocalSignal::default(),
            outbox_dirty: Cell::new(false),
            connections: RefCell::new(Slab::new()),
            connection_serial: Cell::new(0),
            relays: crate::route::relay::Relays::default(),
            heap_seen: Cell::new((u64::MAX, 0)),
            fence: fence::Fence::default(),
            cluster_client: tokio::sync::OnceCell::new(),
            connection_closed: LocalSignal::default(),
            stopping: Cell::new(false),
            unrecorded: RefCell::new(Vec::new()),
            durability,
            replication: Default::default(),
            topology: RefCell::new((usize::MAX, Arc::new(None))),
        }
    }

    /// The topology this node last applied (refreshed when a newer one was published);
    /// `None` in single-node mode or before a cluster is formed.
    pub fn topology(&self) -> Option<Arc<Option<tessera_cluster::Topology>>> {
        let cluster = self.node.cluster.as_ref()?;
        let mut cached = self.topology.borrow_mut();
        cluster.topology.refresh(&mut cached);
        Some(cached.1.clone())
    }

    /// The epoch of the topology in force (0 in single-node mode or before one is formed).
    pub fn cluster_epoch(&self) -> u64 {
        self.topology()
            .and_then(|topology| topology.as_ref().as_ref().map(|t| t.epoch))
            .unwrap_or(0)
    }

    /// Shards on this node.
    pub fn shards(&self) -> u16 {
        self.mesh.shards()
    }

    /// Runs `operation` on this shard's keyspace, then sends the pushes it produced.
    pub fn with_keyspace<T>(&self, operation: impl FnOnce(&mut Keyspace) -> T) -> T {
        let result = operation(&mut self.keyspace.borrow_mut());
        self.route_pushes();
        result
    }

    /// Sends the pushes the last operation produced toward their connections. Called after
    /// every operation, so a push follows the reply of the command that caused it and
    /// precedes the reply of any later command on the same path.
    pub fn route_pushes(&self) {
        let pushes = {
            let mut keyspace = self.keyspace.borrow_mut();
            if !keyspace.notices.is_empty() {
                for (channel, message) in keyspace.notices.take() {
                    let (_, pushes) = crate::families::pubsub::publish(
                        &self.node.subscriptions,
                        &channel,
                        &message,
                    );
                    keyspace.watches.outgoing.extend(pushes);
                }
            }
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
                    self.send(
                        to as u16,
                        Box::new(move |shard: &Rc<Shard>| shard.deliver(&push)),
                    );
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
        let stats = self.stats.borrow().clone();
        self.with_keyspace_figures(stats)
    }

    /// This shard's counters without the per-command ones (whose histograms are tens of
    /// kilobytes each), with keyspace figures filled in.
    pub fn scalar_snapshot(&self) -> ShardStats {
        let mut stats = self.stats.borrow_mut();
        let commands = std::mem::take(&mut stats.commands);
        let scalars = stats.clone();
        stats.commands = commands;
        drop(stats);
        self.with_keyspace_figures(scalars)
    }

    /// Bytes of replies and pushes waiting in this shard's connections' buffers.
    pub fn output_buffer_bytes(&self) -> u64 {
        self.connections
            .borrow()
            .iter()
            .filter_map(|(_, conn)| conn.upgrade())
            .map(|conn| conn.pending_bytes() as u64)
            .sum()
    }

    fn with_keyspace_figures(&self, mut stats: ShardStats) -> ShardStats {
        let keyspace = self.keyspace.borrow();
        stats.keys = keyspace.len() as u64;
        stats.volatile_keys = keyspace.volatile_len() as u64;
        stats.expired_keys = keyspace.expired_total();
        stats.memory_bytes = keyspace.memory_bytes() as u64;
        stats.memory_budget = (self.node.maxmemory / usize::from(self.node.shards)) as u64;
        stats.evicted_keys = keyspace.evicted_total();
        stats.watched_users = keyspace.watches.len() as u64;
        stats.blocked_clients = keyspace.blocked.len() as u64;
        stats.geo_members = keyspace.geo.members() as u64;
        if let Some(durable) = self.durability.as_ref() {
            stats.persistence = durable.stats();
        }
        drop(keyspace);
        stats.replication = self.replication.stats(self);
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

    /// The connections open on this shard now.
    pub(crate) fn live_connections(&self) -> Vec<Rc<ConnOutput>> {
        self.connections
            .borrow()
            .iter()
            .filter_map(|(_, c)| c.upgrade())
            .collect()
    }

    /// Starts shutdown: every connection stops reading, finishes what it has in flight,
    /// and closes. Returns once all of them have, or, past the node's shutdown timeout,
    /// once the rest are closed with their replies undelivered.
    pub async fn drain_connections(&self) {
        self.stopping.set(true);
        // Pops waiting for a push answer NIL now, as if their timeout had passed, so
        // their connections have nothing left in flight.
        self.keyspace.borrow_mut().blocked = Default::default();
        let live = self.live_connections();
        for connection in &live {
            connection.wake.raise();
        }
        drop(live);
        let all_closed = async {
            while !self.connections.borrow().is_empty() {
                self.connection_closed.wait().await;
            }
        };
        if tokio::time::timeout(self.node.shutdown_timeout, all_closed)
            .await
            .is_ok()
        {
            return;
        }
        // Clients that do not read their replies (or replies held by a log that cannot be
        // written) must not keep the server from stopping.
        let stuck = self.live_connections();
        tracing::warn!(
            shard = self.id,
            connections = stuck.len(),
            "shutdown timeout: closing connections whose replies could not be delivered"
        );
        for connection in &stuck {
            connection.abort("shutdown timeout");
        }
        drop(stuck);
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

    /// Queues a job for shard `to`; it leaves at the next `flush`, which the flusher task
    /// runs soon if the current batch does not end with one.
    fn send(&self, to: u16, job: Job) {
        self.outbox.borrow_mut()[usize::from(to)].push(job);
        if !self.outbox_dirty.replace(true) {
            self.outbox_ready.raise();
        }
    }

    /// Ends a batch: records latencies, hands the batch's records to the log writer,
    /// then sends every queued job, one mailbox push (and at most one wake-up) per
    /// destination, once the records they may depend on are durable.
    pub fn flush(&self) {
        self.record_latencies();
        self.ship();
        let dirty = self.outbox_dirty.replace(false);
        let Some(durable) = self.durability.as_ref() else {
            if dirty {
                let queued = std::mem::take(&mut *self.outbox.borrow_mut());
                self.send_batches(queued);
            }
            return;
        };
        self.journal_geo();
        self.write_journal_now(durable);
        let journal_len = self.keyspace.borrow().journal_len();
        let queued = if dirty {
            let shards = usize::from(self.shards());
            std::mem::replace(
                &mut *self.outbox.borrow_mut(),
                (0..shards).map(|_| Vec::new()).collect(),
            )
        } else {
            Vec::new()
        };
        if let Some(ready) = durable.settle_batch(journal_len, queued) {
            self.send_batches(ready);
        }
    }

    /// Sends one batch of jobs per destination that has any.
    fn send_batches(&self, queued: Vec<Vec<Job>>) {
        let mut batches = 0;
        for (to, queue) in queued.into_iter().enumerate() {
            if !queue.is_empty() {
                self.mesh.send(self.id, to as u16, queue);
                batches += 1;
            }
        }
        if batches > 0 {
            self.stats.borrow_mut().batches_out += batches;
        }
        if self.outbox.borrow().len() != usize::from(self.shards()) {
            let shards = usize::from(self.shards());
            *self.outbox.borrow_mut() = (0..shards).map(|_| Vec::new()).collect();
        }
    }

    /// Waits, before a connection writes its replies, until every change journaled so
    /// far is durable under the policy. While the log cannot be written, a connection
    /// that asked for no change (`wrote` false) reads on without waiting.
    pub async fn replies_may_leave(&self, wrote: bool) {
        let Some(durable) = self.durability.as_ref() else {
            return;
        };
        self.journal_geo();
        self.write_journal_now(durable);
        let journal_len = self.keyspace.borrow().journal_len();
        let Some(made) = durable.pending(journal_len) else {
            return;
        };
        if !wrote && durable.is_failing() {
            return;
        }
        durable.wake_writer();
        durable.wait_done(made, !wrote).await;
    }

    /// Hands the batch's records to the replicas' backlog and wakes their pulls; with no
    /// log to take them, the journal is emptied here. A shard no replica ever copied
    /// keeps no backlog and does nothing here.
    pub fn ship(&self) {
        let mut keyspace = self.keyspace.borrow_mut();
        let Some(before) = keyspace.backlog.as_ref().map(|b| b.end()) else {
            return;
        };
        families::journal_geo(&mut keyspace, clock::now_millis());
        if self.durability.is_some() {
            keyspace.ship_journal();
        } else {
            keyspace.ship_and_clear_journal();
        }
        if keyspace.backlog.as_ref().map(|b| b.end()) != Some(before) {
            self.replication.grown.notify_waiters();
        }
    }

    /// Journals the geo changes made since the last look (a geo step may run in a task,
    /// outside any batch).
    pub fn journal_geo(&self) {
        families::journal_geo(&mut self.keyspace.borrow_mut(), clock::now_millis());
    }

    /// Makes room for a command that may add data while the node holds its maxmemory:
    /// under an eviction policy this shard evicts keys first (each logged as a DEL, so a
    /// restart or a replica does not bring them back); under `noeviction`, or with nothing
    /// left to evict, the command gets OOM. Reads, and writes that only free memory, pass.
    pub fn make_room(
        &self,
        spec: &tessera_protocol::CommandSpec,
        now: u64,
    ) -> Option<tessera_protocol::Value> {
        if !spec.writes {
            return None;
        }
        let limit = self.node.maxmemory;
        // Far below the limit a reading up to a millisecond old will do; near it every
        // write reads afresh, since the writes earlier in this millisecond (and deletes)
        // are not in a cached reading: trusting it let a millisecond's writes through
        // unchecked, past maxmemory.
        if self.heap_used(now).saturating_add(FRESH_READ_MARGIN) <= limit || frees_memory(spec.name)
        {
            return None;
        }
        let used = crate::memory::used();
        self.heap_seen.set((now, used));
        if used <= limit {
            return None;
        }
        if let Some(freed) = self.evict(used - limit, now) {
            // Until the next reading, count what went: the writes after this one in the
            // same millisecond evict only once the freed bytes are spent again.
            self.heap_seen.set((now, used.saturating_sub(freed)));
            return None;
        }
        Some(tessera_protocol::Value::error(
            tessera_protocol::ErrorCode::Oom,
            format!(
                "command not allowed when used memory ({used} bytes) is over maxmemory ({limit}, policy {})",
                self.node.eviction.name()
            ),
        ))
    }

    /// The node's heap bytes, read at most once a millisecond (summing every thread's
    /// count costs a cache miss each).
    fn heap_used(&self, now: u64) -> usize {
        let (seen_at, bytes) = self.heap_seen.get();
        if seen_at == now {
            return bytes;
        }
        let bytes = crate::memory::used();
        self.heap_seen.set((now, bytes));
        bytes
    }

    /// Evicts keys until about `excess` bytes are freed (or `MAX_EVICTIONS_PER_WRITE`
    /// keys went); the bytes freed, by the victims' own footprints, or `None` if nothing
    /// could be evicted.
    fn evict(&self, excess: usize, now: u64) -> Option<usize> {
        let mut keyspace = self.keyspace.borrow_mut();
        let began = (keyspace.latency.threshold_ms() > 0).then(Instant::now);
        let mut freed = 0;
        for _ in 0..MAX_EVICTIONS_PER_WRITE {
            if freed >= excess {
                break;
            }
            let Some((key, bytes)) = keyspace.evict_one(now) else {
                break;
            };
            freed += bytes;
            if let Some(journal) = keyspace.journal() {
                let deletion: tessera_protocol::Command<&[u8]> =
                    tessera_protocol::KeyCommand::Del(vec![&key[..]]).into();
                families::Mutation::record(journal, now, &deletion);
            }
        }
        if let Some(began) = began {
            keyspace
                .latency
                .note(crate::diagnostics::latency::EVICTION_CYCLE, began.elapsed());
        }
        (freed > 0).then_some(freed)
    }

    /// The error a write gets while this shard's log cannot be written.
    pub fn write_refusal(&self) -> Option<tessera_protocol::Value> {
        let failure = self.durability.as_ref()?.failure()?;
        Some(tessera_protocol::Value::error(
            tessera_protocol::ErrorCode::Misconf,
            format!("writes are refused: {failure}"),
        ))
    }

    /// Serves the mailboxes: runs every job other shards sent here, then sends on what
    /// those jobs queued.
    pub async fn run_inbox(self: Rc<Self>) {
        loop {
            let batches = self.mesh.receive(self.id);
            if batches.is_empty() {
                self.mesh.wait(self.id).await;
                continue;
            }
            for job in batches.into_iter().flatten() {
                job(&self);
            }
            self.flush();
        }
    }

    /// Sends queued jobs that no batch end has flushed (those queued by tasks).
    pub async fn run_flusher(self: Rc<Self>) {
        loop {
            self.outbox_ready.wait().await;
            self.flush();
        }
    }

    /// Tells the homes of lapsed members that this shard no longer holds them.
    fn forget_lapsed(self: &Rc<Self>, lapsed: Vec<(bytes::Bytes, bytes::Bytes)>) {
        for (index, member) in lapsed {
            let home = families::geo::home_of(&member, self.shards());
            let holder = self.id;
            self.submit(home, move |home: &Rc<Shard>| {
                families::geo::forget(&mut home.keyspace.borrow_mut().geo, &index, &member, holder);
            });
        }
    }

    /// Closes, once a second, the connections that ran out of time: a frame that did not
    /// arrive whole within the frame timeout (told why, with a PROTOCOL push), or an idle
    /// connection (no request, no reply owed, no watch) past the idle timeout.
    pub async fn run_connection_timeouts(self: Rc<Self>) {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = Instant::now();
            let (frame, idle) = (self.node.frame_timeout, self.node.idle_timeout);
            for out in self.live_connections() {
                let idling = out.in_flight.get() == 0 && out.watching.borrow().is_empty();
                let idle = idle.filter(|_| idling);
                match out.read_clock.overdue(now, frame, idle) {
                    Some(output::Overdue::Frame) => {
                        out.reply(
                            PUSH_ID,
                            &tessera_protocol::Value::error(
                                tessera_protocol::ErrorCode::Protocol,
                                format!(
                                    "a frame must arrive whole within {} s of its first byte",
                                    frame.as_secs_f64()
                                ),
                            ),
                        );
                        out.abort("frame timeout");
                    }
                    Some(output::Overdue::Idle) => out.abort("idle timeout"),
                    None => {}
                }
            }
        }
    }

    /// Samples keys with deadlines and removes the expired ones, forever.
    pub async fn run_expiry(self: Rc<Self>) {
        let mut ticks = tokio::time::interval(WHEEL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cycle_every = (EXPIRY_INTERVAL.as_millis() / WHEEL_INTERVAL.as_millis()).max(1);
        for tick in 0u128.. {
            ticks.tick().await;
            let now = clock::now_millis();
            let mut keyspace = self.keyspace.borrow_mut();
            // Keys that lapsed in the last tick go now; the rest of the work runs at the
            // sampling cycle's pace.
            let mut removed = keyspace.expire_due(now, WHEEL_BUDGET);
            if tick % cycle_every != 0 {
                let announced = !keyspace.notices.is_empty();
                drop(keyspace);
                if announced {
                    self.route_pushes();
                    self.flush();
                }
                continue;
            }
            // Lapsed reservations give their units back, and watched users going silent
            // are reported offline, without anyone asking.
            for key in keyspace.take_due(now) {
                families::timer_due(&mut keyspace, &key, now);
            }
            let began = (keyspace.latency.threshold_ms() > 0).then(Instant::now);
            removed += keyspace.expire_cycle(now, EXPIRY_BUDGET);
            if let Some(began) = began {
                keyspace
                    .latency
                    .note(crate::diagnostics::latency::EXPIRE_CYCLE, began.elapsed());
            }
            keyspace.refresh_geo_bytes();
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
}
