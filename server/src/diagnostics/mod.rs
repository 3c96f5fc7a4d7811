//! Diagnostics: what each shard notes about slow requests and slow events as it serves
//! (the slow log, the latency monitor), the node-wide thresholds that decide it, and
//! SLOWLOG and LATENCY answered from every shard's notes; the metrics endpoint is `metrics`.
//!
//! A request's duration runs from the later of its batch's start and the shard's last
//! timed completion to its own, so a request that waited behind others in a pipeline is
//! not counted slow for them. Requests completed through a task or a gather read the
//! clock anyway; a request answered in place on its owner (most of them) reads it only
//! when it may have been slow (`worth_timing`): a clock read costs about 40 ns on a
//! virtual machine, more than some of those requests cost whole.

pub mod latency;
pub mod metrics;
pub mod slowlog;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_protocol::commands::family_of;
use tessera_protocol::{Command, DiagnosticsCommand, Value, COMMANDS};

use crate::shard::output::ConnOutput;
use crate::shard::Shard;
use latency::Latest;
use slowlog::{SlowEntry, SlowLog};

/// Requests slower than this many microseconds are logged by default, as in Redis.
pub const DEFAULT_SLOWLOG_SLOWER_THAN_US: i64 = 10_000;
/// Entries each shard keeps by default, as Redis keeps in all.
pub const DEFAULT_SLOWLOG_MAX_LEN: usize = 128;

/// The node-wide settings CONFIG SET changes while the node runs.
#[derive(Debug)]
pub struct Thresholds {
    /// Microseconds past which a request is logged; negative: nothing is.
    slowlog_slower_than_us: AtomicI64,
    /// Entries each shard keeps.
    slowlog_max_len: AtomicUsize,
    /// Milliseconds from which an event is kept by the latency monitor; 0: off.
    pub latency_ms: Arc<AtomicU64>,
    /// The next slow log id, shared so ids rise across shards.
    next_id: AtomicU64,
}

impl Thresholds {
    /// Thresholds as set at start.
    pub fn new(slowlog_slower_than_us: i64, slowlog_max_len: usize, latency_ms: u64) -> Self {
        Thresholds {
            slowlog_slower_than_us: AtomicI64::new(slowlog_slower_than_us),
            slowlog_max_len: AtomicUsize::new(slowlog_max_len),
            latency_ms: Arc::new(AtomicU64::new(latency_ms)),
            next_id: AtomicU64::new(0),
        }
    }

    /// `slowlog-log-slower-than`, in microseconds (negative: off).
    pub fn slowlog_slower_than_us(&self) -> i64 {
        self.slowlog_slower_than_us.load(Ordering::Relaxed)
    }

    /// Sets `slowlog-log-slower-than`.
    pub fn set_slowlog_slower_than_us(&self, micros: i64) {
        self.slowlog_slower_than_us.store(micros, Ordering::Relaxed);
    }

    /// `slowlog-max-len`.
    pub fn slowlog_max_len(&self) -> usize {
        self.slowlog_max_len.load(Ordering::Relaxed)
    }

    /// Sets `slowlog-max-len`.
    pub fn set_slowlog_max_len(&self, len: usize) {
        self.slowlog_max_len.store(len, Ordering::Relaxed);
    }

    /// `latency-monitor-threshold`, in milliseconds (0: off).
    pub fn latency_monitor_ms(&self) -> u64 {
        self.latency_ms.load(Ordering::Relaxed)
    }

    /// Sets `latency-monitor-threshold`.
    pub fn set_latency_monitor_ms(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    fn take_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::new(DEFAULT_SLOWLOG_SLOWER_THAN_US, DEFAULT_SLOWLOG_MAX_LEN, 0)
    }
}

/// A slow request that completed while its connection was still running it, waiting
/// there for its arguments.
struct Staged {
    request_id: u32,
    entry: SlowEntry,
}

/// Requests in flight on one connection whose arguments are kept for the slow log.
const MAX_KEPT_ARGS: usize = 4096;

/// Request bytes from which a request answered in place is timed.
pub const TIMED_REQUEST_BYTES: usize = 1024;
/// Reply bytes from which a request answered in place is timed.
pub const TIMED_REPLY_BYTES: usize = 4096;

/// Commands whose work grows with the data they touch while their requests and replies
/// stay small (freeing a big key, set algebra, trimming), by name.
fn grows_with_data(name: &str) -> bool {
    matches!(name, "DEL" | "GETDEL" | "LPOS" | "FLUSHALL")
        || ["STORE", "REM", "TRIM", "INTER", "UNION", "DIFF"]
            .iter()
            .any(|part| name.contains(part))
}

static GROWS_WITH_DATA: std::sync::LazyLock<Vec<bool>> =
    std::sync::LazyLock::new(|| COMMANDS.iter().map(|s| grows_with_data(s.name)).collect());

/// What one shard notes for the slow log.
pub struct ShardDiagnostics {
    /// The shard's slow log.
    pub slowlog: RefCell<SlowLog>,
    /// The body bytes of the request being run, set as it is read.
    pub request_bytes: Cell<usize>,
    /// When the shard last completed a request.
    last_completion: Cell<Instant>,
    /// Slow requests waiting for their arguments.
    staged: RefCell<Vec<Staged>>,
}

impl Default for ShardDiagnostics {
    fn default() -> Self {
        ShardDiagnostics {
            slowlog: RefCell::default(),
            request_bytes: Cell::new(0),
            last_completion: Cell::new(Instant::now()),
            staged: RefCell::default(),
        }
    }
}

/// Whether the command at `index` waits for data (BLPOP and the other blocking pops):
/// its wait is not time it ran, so it is never slow, as in Redis.
fn blocks(index: usize) -> bool {
    let spec = &COMMANDS[index];
    family_of(spec) == "blocking" && spec.name.starts_with('B')
}

/// A request's completion, as `observe` sees it.
pub struct Completion {
    /// Its id on the connection.
    pub request_id: u32,
    /// Its row in `COMMANDS`.
    pub index: usize,
    /// When its batch began to be read.
    pub started: Instant,
    /// Now, as the completion read it.
    pub now: Instant,
    /// Whether it ran as a task (on other shards, or waiting on something): it then owns
    /// all of its time since `started`.
    pub waited: bool,
    /// Whether its reply was large (`latency::is_large`), making it a `large-reply` event
    /// too when slow.
    pub large_reply: bool,
}

impl ShardDiagnostics {
    /// Whether a request answered in place, whose reply took `reply_bytes`, may have been
    /// slow enough to read the clock for, while the slow log or latency monitor is on.
    pub fn worth_timing(&self, shard: &Shard, index: usize, reply_bytes: usize) -> bool {
        let thresholds = &shard.node.thresholds;
        (thresholds.slowlog_slower_than_us() >= 0 || thresholds.latency_monitor_ms() > 0)
            && (reply_bytes >= TIMED_REPLY_BYTES
                || self.request_bytes.get() >= TIMED_REQUEST_BYTES
                || GROWS_WITH_DATA[index]
                || thresholds.slowlog_slower_than_us() == 0)
    }

    /// Notes a completed request: logs it if it was slow, and counts it as a latency
    /// event past the monitor's threshold.
    pub fn observe(&self, shard: &Shard, conn: &ConnOutput, done: &Completion) {
        let since = if done.waited {
            done.started
        } else {
            done.started.max(self.last_completion.get())
        };
        self.last_completion.set(done.now);
        let captured = if done.waited {
            take_captured(conn, done.request_id)
        } else {
            None
        };
        let took = done.now.saturating_duration_since(since);
        let thresholds = &shard.node.thresholds;
        let slower_than = thresholds.slowlog_slower_than_us();
        let slow = slower_than >= 0 && took.as_micros() >= slower_than as u128;
        let monitored = {
            let threshold = thresholds.latency_monitor_ms();
            threshold > 0 && took.as_millis() >= u128::from(threshold)
        };
        if !(slow || monitored) || blocks(done.index) {
            return;
        }
        if monitored {
            if let Ok(mut keyspace) = shard.keyspace.try_borrow_mut() {
                keyspace.latency.note(latency::COMMAND, took);
                if done.large_reply {
                    keyspace.latency.note(latency::LARGE_REPLY, took);
                }
            }
        }
        if !slow {
            return;
        }
        let entry = SlowEntry {
            id: thresholds.take_id(),
            unix_secs: latency::unix_secs(),
            micros: took.as_micros() as u64,
            args: captured
                .unwrap_or_else(|| vec![Bytes::from_static(COMMANDS[done.index].name.as_bytes())]),
            client: client_address(conn),
            name: conn.client.name.borrow().clone().unwrap_or_default(),
        };
        if done.waited {
            self.slowlog
                .borrow_mut()
                .push(entry, thresholds.slowlog_max_len());
        } else {
            self.staged.borrow_mut().push(Staged {
                request_id: done.request_id,
                entry,
            });
        }
    }

    /// Called once a connection has run a request, with its arguments still at hand:
    /// fills them into the slow entry it completed with, or, if it went on as a task,
    /// keeps them on the connection for when it completes.
    pub fn after_run(
        &self,
        shard: &Shard,
        conn: &ConnOutput,
        request_id: u32,
        tasks_before: usize,
        args: impl FnOnce() -> Vec<Bytes>,
    ) {
        let max_len = shard.node.thresholds.slowlog_max_len();
        if !self.staged.borrow().is_empty() {
            let staged: Vec<Staged> = self.staged.borrow_mut().drain(..).collect();
            let mut args = Some(args);
            let mut log = self.slowlog.borrow_mut();
            for mut slow in staged {
                if slow.request_id == request_id {
                    if let Some(args) = args.take() {
                        slow.entry.args = args();
                    }
                }
                log.push(slow.entry, max_len);
            }
            return;
        }
        if conn.in_flight.get() > tasks_before
            && shard.node.thresholds.slowlog_slower_than_us() >= 0
        {
            let mut kept = conn.slow_args.borrow_mut();
            if kept.len() >= MAX_KEPT_ARGS {
                // Only a request that ended without a reply leaves its copy behind.
                kept.remove(0);
            }
            kept.push((request_id, args()));
        }
    }
}

/// The arguments kept for a request that went on as a task, if any were.
fn take_captured(conn: &ConnOutput, request_id: u32) -> Option<Vec<Bytes>> {
    let mut kept = conn.slow_args.borrow_mut();
    let at = kept.iter().position(|(id, _)| *id == request_id)?;
    Some(kept.swap_remove(at).1)
}

/// `ip:port` of the connection's client, as CLIENT LIST's `addr=`.
fn client_address(conn: &ConnOutput) -> Bytes {
    conn.client
        .endpoints
        .get()
        .and_then(|e| e.peer)
        .map_or_else(Bytes::new, |peer| Bytes::from(peer.to_string()))
}

/// A native request's arguments for the slow log: its name, then the keys it names
/// (its other fields are binary, with no words to show them by).
pub fn native_args(command: &Command<&[u8]>) -> Vec<Bytes> {
    let mut words: Vec<Vec<u8>> = vec![command.spec().name.as_bytes().to_vec()];
    let mut total = 1;
    command.for_each_key(&mut |key| {
        total += 1;
        if words.len() < slowlog::MAX_ARGS {
            words.push(key.to_vec());
        }
    });
    if total <= slowlog::MAX_ARGS {
        return slowlog::bounded_args(words.iter().map(Vec::as_slice));
    }
    words.truncate(slowlog::MAX_ARGS - 1);
    let mut bounded = slowlog::bounded_args(words.iter().map(Vec::as_slice));
    bounded.push(Bytes::from(format!(
        "... ({} more arguments)",
        total - words.len()
    )));
    bounded
}

/// What one shard answers for a SLOWLOG or LATENCY command.
pub enum Part {
    /// Its newest slow log entries.
    Entries(Vec<SlowEntry>),
    /// A count: slow log entries held, or event series reset.
    Count(usize),
    /// Its latest sample of each event.
    Latest(Vec<(&'static str, Latest)>),
    /// One event's samples.
    History(Vec<(u64, u64)>),
    /// The events it reset.
    Reset(Vec<&'static str>),
    /// Done.
    Done,
}

/// Runs `command` on one shard.
pub fn shard_part(shard: &Shard, command: &DiagnosticsCommand) -> Part {
    let diagnostics = &shard.diagnostics;
    match command {
        DiagnosticsCommand::SlowlogGet(count) => {
            Part::Entries(diagnostics.slowlog.borrow().newest(*count))
        }
        DiagnosticsCommand::SlowlogLen => Part::Count(diagnostics.slowlog.borrow().len()),
        DiagnosticsCommand::SlowlogReset => {
            diagnostics.slowlog.borrow_mut().reset();
            Part::Done
        }
        DiagnosticsCommand::LatencyLatest => Part::Latest(shard.keyspace.borrow().latency.latest()),
        DiagnosticsCommand::LatencyHistory(event) => {
            Part::History(shard.keyspace.borrow().latency.history(event))
        }
        DiagnosticsCommand::LatencyReset(events) => {
            Part::Reset(shard.keyspace.borrow_mut().latency.reset(events))
        }
    }
}

/// Every shard's parts made into the one reply.
pub fn combine(command: &DiagnosticsCommand, parts: Vec<Part>) -> Value {
    match command {
        DiagnosticsCommand::SlowlogGet(count) => {
            let entries = parts
                .into_iter()
                .filter_map(|part| match part {
                    Part::Entries(entries) => Some(entries),
                    _ => None,
                })
                .collect();
            Value::Array(
                slowlog::merge(entries, *count)
                    .iter()
                    .map(SlowEntry::to_value)
                    .collect(),
            )
        }
        DiagnosticsCommand::SlowlogLen => Value::Int(
            parts
                .iter()
                .map(|part| match part {
                    Part::Count(n) => *n as i64,
                    _ => 0,
                })
                .sum(),
        ),
        DiagnosticsCommand::SlowlogReset => Value::Ok,
        DiagnosticsCommand::LatencyLatest => latency::merge_latest(
            parts
                .into_iter()
                .filter_map(|part| match part {
                    Part::Latest(latest) => Some(latest),
                    _ => None,
                })
                .collect(),
        ),
        DiagnosticsCommand::LatencyHistory(_) => latency::merge_history(
            parts
                .into_iter()
                .filter_map(|part| match part {
                    Part::History(samples) => Some(samples),
                    _ => None,
                })
                .collect(),
        ),
        DiagnosticsCommand::LatencyReset(_) => {
            let mut reset: Vec<&'static str> = parts
                .into_iter()
                .flat_map(|part| match part {
                    Part::Reset(events) => events,
                    _ => Vec::new(),
                })
                .collect();
            reset.sort_unstable();
            reset.dedup();
            Value::Int(reset.len() as i64)
        }
    }
}

/// Times `work` as latency event `event` on this shard's monitor, reading the clock
/// only while the monitor is on.
pub fn timed<T>(
    monitor: &RefCell<crate::families::Keyspace>,
    event: &'static str,
    work: impl FnOnce() -> T,
) -> T {
    let on = monitor
        .try_borrow()
        .is_ok_and(|k| k.latency.threshold_ms() > 0);
    if !on {
        return work();
    }
    let began = Instant::now();
    let result = work();
    note_elapsed(monitor, event, began.elapsed());
    result
}

/// Records `event` taking `elapsed` on the shard's monitor, if it is free to be noted.
pub fn note_elapsed(
    monitor: &RefCell<crate::families::Keyspace>,
    event: &'static str,
    elapsed: Duration,
) {
    if let Ok(mut keyspace) = monitor.try_borrow_mut() {
        keyspace.latency.note(event, elapsed);
    }
}
