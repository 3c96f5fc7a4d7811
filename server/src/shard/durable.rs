//! Group commit on one shard: the log writer task, the gate replies wait at, and the
//! snapshot task.
//!
//! Every change's record lands in the keyspace's journal as the change is made. The
//! writer task takes whatever the journal holds when it runs (every record of the turn
//! that woke it, from every connection), writes it in one call and, under `always`, syncs
//! it off the thread while the next turn's records collect. Replies leave a connection
//! only once everything journaled before them is done under the policy, and jobs for
//! other shards (which may carry answers that read those changes) are held just as long,
//! so no client, here or on another shard, ever learns of a change the log could lose.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::path::PathBuf;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::clock;
use crate::diagnostics::latency::{LOG_FSYNC, LOG_WRITE, SNAPSHOT_STEP};
use crate::persist::log::Segment;
use crate::persist::snapshot::{SnapshotInfo, SnapshotWriter};
use crate::persist::{Fsync, Settings};
use crate::signal::LocalSignal;

use super::{Job, Shard};

/// Buckets a snapshot step sweeps before letting requests run again.
const CUT_STEP_BUCKETS: usize = 4096;
/// How often `everysec` syncs.
const EVERYSEC: Duration = Duration::from_secs(1);
/// How long the writer waits before trying a failed write or sync again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Persistence figures for INFO.
#[derive(Debug, Clone, Default)]
pub struct PersistStats {
    /// Whether this shard persists at all.
    pub enabled: bool,
    /// The fsync policy's name.
    pub fsync: &'static str,
    /// Log bytes written since start.
    pub log_bytes: u64,
    /// Writes to the log since start (each one a group of records: a turn's worth).
    pub log_writes: u64,
    /// Log bytes written since the last snapshot began.
    pub log_bytes_since_snapshot: u64,
    /// Syncs done since start.
    pub fsyncs: u64,
    /// Milliseconds the oldest unsynced write has waited for a sync (0: none waits).
    pub fsync_lag_ms: u64,
    /// Failed writes and syncs since start.
    pub write_errors: u64,
    /// The last write or sync error, while the log cannot be written.
    pub failing: Option<String>,
    /// Whether a snapshot is being taken.
    pub snapshot_running: bool,
    /// Snapshots completed since start.
    pub snapshots: u64,
    /// Snapshots that failed since start.
    pub snapshot_errors: u64,
    /// When the last snapshot completed, or the loaded one was cut (Unix ms; 0: never).
    pub last_snapshot_ms: u64,
    /// How long the last snapshot took.
    pub last_snapshot_duration_ms: u64,
    /// Its size in bytes.
    pub last_snapshot_bytes: u64,
    /// Its entries.
    pub last_snapshot_entries: u64,
}

/// One shard's log, and the bookkeeping that holds replies until it is durable.
pub struct Durability {
    settings: Settings,
    dir: PathBuf,
    shard: u16,
    segment: RefCell<Segment>,
    /// Record bytes taken from the journal since start.
    taken: Cell<u64>,
    /// Record bytes done under the policy: written, and synced under `always`.
    done: Cell<u64>,
    /// Record bytes written and synced.
    synced: Cell<u64>,
    /// When the oldest write not yet synced was made.
    unsynced_since: Cell<Option<Instant>>,
    /// Tasks waiting for `done` to advance.
    waiters: RefCell<Vec<Waker>>,
    /// Jobs for other shards queued while records were not done, with the record bytes
    /// they wait for.
    held: RefCell<VecDeque<(u64, Vec<Vec<Job>>)>>,
    /// Raised when the journal has records, or a snapshot is asked for.
    wake_writer: LocalSignal,
    /// Raised when a snapshot's cut has begun.
    cut_begun: LocalSignal,
    /// A snapshot has been asked for and not begun yet.
    snapshot_wanted: Cell<bool>,
    /// A buffer kept between inline writes, so each reuses the last one's allocation.
    spare: RefCell<BytesMut>,
    stats: RefCell<PersistStats>,
}

impl Durability {
    /// The log of shard `shard`, appending to a new segment `segment` in `dir`.
    pub fn new(
        settings: Settings,
        dir: PathBuf,
        shard: u16,
        segment: Segment,
        last_snapshot_ms: u64,
    ) -> Durability {
        let stats = PersistStats {
            enabled: true,
            fsync: settings.fsync.name(),
            last_snapshot_ms,
            ..PersistStats::default()
        };
        Durability {
            settings,
            dir,
            shard,
            segment: RefCell::new(segment),
            taken: Cell::new(0),
            done: Cell::new(0),
            synced: Cell::new(0),
            unsynced_since: Cell::new(None),
            waiters: RefCell::new(Vec::new()),
            held: RefCell::new(VecDeque::new()),
            wake_writer: LocalSignal::default(),
            cut_begun: LocalSignal::default(),
            snapshot_wanted: Cell::new(false),
            spare: RefCell::new(BytesMut::new()),
            stats: RefCell::new(stats),
        }
    }

    /// Whether changes cannot be logged now, so writes must be refused.
    pub fn is_failing(&self) -> bool {
        self.stats.borrow().failing.is_some()
    }

    /// The error writes are refused with while the log cannot be written.
    pub fn failure(&self) -> Option<String> {
        self.stats.borrow().failing.clone()
    }

    /// Persistence figures, with the fsync lag as of now.
    pub fn stats(&self) -> PersistStats {
        let mut stats = self.stats.borrow().clone();
        stats.fsync_lag_ms = self
            .unsynced_since
            .get()
            .map_or(0, |since| since.elapsed().as_millis() as u64);
        stats
    }

    /// Asks for a snapshot, unless one is already being taken or asked for.
    pub fn request_snapshot(&self) {
        if self.snapshot_wanted.get() || self.stats.borrow().snapshot_running {
            return;
        }
        self.snapshot_wanted.set(true);
        self.wake_writer.raise();
    }

    /// Wakes the writer task, for records it must write (always) or retry.
    pub fn wake_writer(&self) {
        self.wake_writer.raise();
    }

    /// Record bytes made so far, counting those still in the journal.
    fn made(&self, journal_len: usize) -> u64 {
        self.taken.get() + journal_len as u64
    }

    /// Called at the end of every batch: wakes the writer if records wait, and holds
    /// `jobs` (the batch's outbox) until they are done. Returns the jobs to send now.
    pub fn settle_batch(&self, journal_len: usize, jobs: Vec<Vec<Job>>) -> Option<Vec<Vec<Job>>> {
        let made = self.made(journal_len);
        if journal_len > 0 {
            self.wake_writer.raise();
        }
        if made <= self.done.get() && self.held.borrow().is_empty() {
            return Some(jobs);
        }
        self.held.borrow_mut().push_back((made, jobs));
        None
    }

    /// The record bytes a reply written now must wait for, if any are not done.
    pub fn pending(&self, journal_len: usize) -> Option<u64> {
        let made = self.made(journal_len);
        (made > self.done.get()).then_some(made)
    }

    /// Waits until every record byte up to `made` is done; with `reads_only`, also ends
    /// once the log is failing, as a read's reply is let go then (see
    /// `Shard::replies_may_leave`), even one that began waiting before the failure.
    pub async fn wait_done(&self, made: u64, reads_only: bool) {
        poll_fn(|cx| {
            if self.done.get() >= made || (reads_only && self.is_failing()) {
                return Poll::Ready(());
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// Marks record bytes up to `upto` done: wakes the replies waiting for them and
    /// returns the held jobs they release.
    fn mark_done(&self, upto: u64) -> Vec<Vec<Vec<Job>>> {
        self.done.set(upto);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
        let mut released = Vec::new();
        let mut held = self.held.borrow_mut();
        while held.front().is_some_and(|(made, _)| *made <= upto) {
            if let Some((_, jobs)) = held.pop_front() {
                released.push(jobs);
            }
        }
        released
    }

    fn note_failure(&self, what: &str, error: &std::io::Error) {
        let mut stats = self.stats.borrow_mut();
        stats.write_errors += 1;
        if stats.failing.is_none() {
            tracing::error!(shard = self.shard, %error, "cannot {what} the log: writes are refused until it works again");
        }
        stats.failing = Some(format!("cannot {what} the log: {error}"));
        drop(stats);
        // Replies to reads waiting on the log go now rather than when it recovers.
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    fn note_recovered(&self) {
        let mut stats = self.stats.borrow_mut();
        if stats.failing.take().is_some() {
            tracing::warn!(
                shard = self.shard,
                "the log can be written again: writes are accepted"
            );
        }
    }

    /// Whether replies need only the write (everysec, no), which the shard then makes
    /// itself at the end of each batch rather than waiting for the writer task.
    fn writes_inline(&self) -> bool {
        self.settings.fsync != Fsync::Always && !self.is_failing()
    }

    /// Appends `batch` to the current segment; a failed write is cut back off the file,
    /// so a retry never leaves half a batch before it.
    fn append(&self, batch: &mut BytesMut) -> std::io::Result<()> {
        let mut segment = self.segment.borrow_mut();
        let good_len = segment.len;
        let written = segment.append(batch);
        if written.is_err() {
            segment.len = good_len;
            let _ = segment.file.set_len(good_len);
        }
        written
    }

    /// Counts a batch taken from the journal; returns the record bytes it ends at.
    fn take_bytes(&self, len: usize) -> u64 {
        let upto = self.taken.get() + len as u64;
        self.taken.set(upto);
        upto
    }

    fn note_written(&self, len: usize) {
        self.note_recovered();
        if self.unsynced_since.get().is_none() {
            self.unsynced_since.set(Some(Instant::now()));
        }
        let mut stats = self.stats.borrow_mut();
        stats.log_bytes += len as u64;
        stats.log_writes += 1;
        stats.log_bytes_since_snapshot += len as u64;
    }

    /// Syncs the current segment off the shard's thread, retrying until it works.
    async fn sync(&self, upto: u64) {
        loop {
            let file = self.segment.borrow().file.clone();
            let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
            match synced {
                Ok(Ok(())) => {
                    self.note_recovered();
                    self.stats.borrow_mut().fsyncs += 1;
                    if self.synced.get() < upto {
                        self.synced.set(upto);
                    }
                    if self.synced.get() >= self.taken.get() {
                        self.unsynced_since.set(None);
                    }
                    return;
                }
                Ok(Err(error)) => self.note_failure("sync", &error),
                Err(error) => self.note_failure("sync", &std::io::Error::other(error)),
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }

    /// Whether the log has grown enough since the last snapshot to take another.
    fn snapshot_due(&self) -> bool {
        let threshold = self.settings.snapshot_after_bytes;
        let stats = self.stats.borrow();
        threshold > 0
            && !stats.snapshot_running
            && stats.log_bytes_since_snapshot >= threshold.max(stats.last_snapshot_bytes)
    }
}

impl Shard {
    /// Starts a snapshot here (one already under way counts as started).
    ///
    /// # Errors
    /// This node does not persist.
    pub fn request_snapshot(&self) -> Result<(), tessera_protocol::Value> {
        match self.durability.as_ref() {
            Some(durable) => {
                durable.request_snapshot();
                Ok(())
            }
            None => Err(tessera_protocol::Value::error(
                tessera_protocol::ErrorCode::Syntax,
                "this server keeps nothing on disk (appendonly no)",
            )),
        }
    }

    /// When this shard last completed a snapshot, or cut the one it loaded (Unix ms;
    /// 0: never).
    pub fn last_snapshot_ms(&self) -> u64 {
        self.durability
            .as_ref()
            .map_or(0, |durable| durable.stats.borrow().last_snapshot_ms)
    }

    /// Under everysec and no, writes every record journaled so far, now, and lets the
    /// replies and jobs waiting for them go. A failed write puts the records back for the
    /// writer task, which retries; until then writes are refused.
    pub(super) fn write_journal_now(&self, durable: &Durability) {
        if !durable.writes_inline() || self.keyspace.borrow().journal_len() == 0 {
            return;
        }
        let mut batch = std::mem::take(&mut *durable.spare.borrow_mut());
        self.keyspace.borrow_mut().take_journal(&mut batch);
        if !batch.is_empty() {
            let written =
                crate::diagnostics::timed(&self.keyspace, LOG_WRITE, || durable.append(&mut batch));
            match written {
                Ok(()) => {
                    let upto = durable.take_bytes(batch.len());
                    durable.note_written(batch.len());
                    for jobs in durable.mark_done(upto) {
                        self.send_batches(jobs);
                    }
                }
                Err(error) => {
                    durable.note_failure("write", &error);
                    self.keyspace.borrow_mut().give_back_journal(&mut batch);
                    durable.wake_writer.raise();
                }
            }
        }
        *durable.spare.borrow_mut() = batch;
    }

    /// The log writer, forever: under always, takes each turn's records, writes them in
    /// one call and syncs them while the next turn's collect; under any policy, begins
    /// snapshots and retries writes that failed.
    pub async fn run_log(self: Rc<Self>) {
        let Some(durable) = self.durability.as_ref() else {
            return;
        };
        let mut batch = BytesMut::new();
        loop {
            durable.wake_writer.wait().await;
            loop {
                {
                    let mut keyspace = self.keyspace.borrow_mut();
                    crate::families::journal_geo(&mut keyspace, clock::now_millis());
                    keyspace.take_journal(&mut batch);
                }
                if durable.snapshot_wanted.replace(false) || durable.snapshot_due() {
                    // No await since the journal was taken: the cut sees exactly the
                    // changes whose records are in the segments before the new one.
                    self.begin_snapshot(durable, &mut batch).await;
                }
                if batch.is_empty() {
                    break;
                }
                let upto = durable.take_bytes(batch.len());
                while let Err(error) = crate::diagnostics::timed(&self.keyspace, LOG_WRITE, || {
                    durable.append(&mut batch)
                }) {
                    durable.note_failure("write", &error);
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                durable.note_written(batch.len());
                if durable.settings.fsync == Fsync::Always {
                    let began = Instant::now();
                    durable.sync(upto).await;
                    crate::diagnostics::note_elapsed(&self.keyspace, LOG_FSYNC, began.elapsed());
                }
                for jobs in durable.mark_done(upto) {
                    self.send_batches(jobs);
                }
            }
        }
    }

    /// Writes and syncs whatever the journal still holds, at shutdown once every
    /// connection has closed: a clean stop loses nothing under any policy.
    pub fn close_log(&self) {
        let Some(durable) = self.durability.as_ref() else {
            return;
        };
        let mut batch = BytesMut::new();
        {
            let mut keyspace = self.keyspace.borrow_mut();
            crate::families::journal_geo(&mut keyspace, clock::now_millis());
            keyspace.take_journal(&mut batch);
        }
        let mut segment = durable.segment.borrow_mut();
        let written = batch.is_empty() || segment.append(&mut batch).is_ok();
        if !written || segment.file.sync_all().is_err() {
            tracing::error!(
                shard = self.id,
                "cannot write the log's last changes at shutdown"
            );
        }
    }

    /// Syncs once a second under `everysec`, forever.
    pub async fn run_everysec(self: Rc<Self>) {
        let Some(durable) = self.durability.as_ref() else {
            return;
        };
        if durable.settings.fsync != Fsync::Everysec {
            return;
        }
        let mut ticks = tokio::time::interval(EVERYSEC);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let written = durable.taken.get();
            if durable.synced.get() < written {
                durable.sync(written).await;
            }
        }
    }

    /// Starts a snapshot at this instant: `batch` (the records made before it) goes to
    /// the current segment, the keyspace begins its cut, and a new segment, which the
    /// snapshot is numbered after, takes every record from here on. All of that happens
    /// before the first await, so no record can land on the wrong side of the cut.
    async fn begin_snapshot(&self, durable: &Durability, batch: &mut BytesMut) {
        let number = durable.segment.borrow().id + 1;
        let fresh = match Segment::create(&durable.dir, number) {
            Ok(fresh) => fresh,
            Err(error) => {
                durable.stats.borrow_mut().snapshot_errors += 1;
                tracing::error!(shard = self.id, %error, "cannot start a log segment: no snapshot taken");
                return;
            }
        };
        let mut before_cut = None;
        if !batch.is_empty() {
            if let Err(error) = durable.append(batch) {
                // The records stay in `batch` for the writer's retries; no snapshot now.
                durable.note_failure("write", &error);
                durable.stats.borrow_mut().snapshot_errors += 1;
                let _ = std::fs::remove_file(
                    durable.dir.join(crate::persist::log::segment_name(number)),
                );
                return;
            }
            before_cut = Some(durable.take_bytes(batch.len()));
            durable.note_written(batch.len());
            batch.clear();
        }
        self.keyspace.borrow_mut().begin_cut();
        let closed = durable.segment.replace(fresh).file;
        {
            let mut stats = durable.stats.borrow_mut();
            stats.snapshot_running = true;
            stats.log_bytes_since_snapshot = 0;
        }
        durable.cut_begun.raise();
        // The closed segment never gets another write: sync it now, off the thread, so the
        // everysec bound holds for it too; under always its last records count only then.
        let shard = self.id;
        let synced = tokio::task::spawn_blocking(move || {
            if let Err(error) = closed.sync_data() {
                tracing::error!(shard, %error, "cannot sync a closed log segment");
            }
        });
        if let Some(upto) = before_cut {
            if durable.settings.fsync == Fsync::Always {
                let _ = synced.await;
            }
            for jobs in durable.mark_done(upto) {
                self.send_batches(jobs);
            }
        }
    }

    /// Takes each snapshot the writer begins: sweeps the keyspace a step at a time between
    /// requests, writes the entries, and publishes the file once whole.
    pub async fn run_snapshots(self: Rc<Self>) {
        let Some(durable) = self.durability.as_ref() else {
            return;
        };
        loop {
            durable.cut_begun.wait().await;
            let started = Instant::now();
            let info = SnapshotInfo {
                number: durable.segment.borrow().id,
                cut_ms: clock::now_millis(),
                shard: self.id,
                shards: self.shards(),
            };
            let outcome = self.write_snapshot(&durable.dir, info).await;
            let mut stats = durable.stats.borrow_mut();
            stats.snapshot_running = false;
            match outcome {
                Ok((bytes, entries)) => {
                    stats.snapshots += 1;
                    stats.last_snapshot_ms = clock::now_millis();
                    stats.last_snapshot_duration_ms = started.elapsed().as_millis() as u64;
                    stats.last_snapshot_bytes = bytes;
                    stats.last_snapshot_entries = entries;
                    tracing::info!(
                        shard = self.id,
                        entries,
                        bytes,
                        ms = stats.last_snapshot_duration_ms,
                        "snapshot taken"
                    );
                }
                Err(error) => {
                    stats.snapshot_errors += 1;
                    tracing::error!(shard = self.id, %error, "snapshot failed; the previous one stays in charge");
                }
            }
        }
    }

    async fn write_snapshot(
        &self,
        dir: &std::path::Path,
        info: SnapshotInfo,
    ) -> std::io::Result<(u64, u64)> {
        let result = self.sweep_into(dir, info).await;
        self.keyspace.borrow_mut().end_cut();
        let (finished, entries) = result?;
        let dir = dir.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || finished.publish(&dir))
            .await
            .map_err(std::io::Error::other)??;
        Ok((bytes, entries))
    }

    async fn sweep_into(
        &self,
        dir: &std::path::Path,
        info: SnapshotInfo,
    ) -> std::io::Result<(crate::persist::snapshot::Finished, u64)> {
        let mut writer = SnapshotWriter::create(dir, info)?;
        let mut entries = BytesMut::new();
        loop {
            let (finished, saved) = {
                let mut keyspace = self.keyspace.borrow_mut();
                let began = (keyspace.latency.threshold_ms() > 0).then(Instant::now);
                let finished = keyspace.cut_step(CUT_STEP_BUCKETS);
                if let Some(began) = began {
                    keyspace.latency.note(SNAPSHOT_STEP, began.elapsed());
                }
                let saved = keyspace.take_cut_entries(&mut entries).unwrap_or(0);
                (finished, saved)
            };
            writer.append(&mut entries)?;
            if finished {
                return Ok((writer.finish(saved)?, saved));
            }
            tokio::task::yield_now().await;
        }
    }
}
