//! Paces a scenario's activities open-loop and records what each operation cost, in
//! total and per interval.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Width of one point of the time series the plots draw.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// One operation's latencies (microseconds), in total and per interval.
pub struct OpStats {
    /// The operation's name, as reported.
    pub name: &'static str,
    /// Whether this is a whole flow (several requests) rather than one request.
    pub flow: bool,
    /// Every completed call.
    pub total: Histogram<u64>,
    /// Calls that failed (link errors, unexpected replies).
    pub errors: u64,
    /// Calls completed in each interval, by the interval they were due in.
    pub intervals: Vec<Histogram<u64>>,
}

fn histogram(figures: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, figures).expect("static bounds are valid")
}

/// Where every operation of one run records its latency.
pub struct Recorder {
    started: Instant,
    ops: RefCell<Vec<OpStats>>,
    completed: Cell<u64>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Rc<Recorder> {
        Rc::new(Recorder {
            started: Instant::now(),
            ops: RefCell::new(Vec::new()),
            completed: Cell::new(0),
        })
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records one request of `name` that was due at `due` and ended now.
    pub fn step(&self, name: &'static str, due: Instant, ok: bool) {
        self.record(name, false, due, ok);
    }

    /// Records one whole flow of `name` that was due at `due` and ended now.
    pub fn flow(&self, name: &'static str, due: Instant, ok: bool) {
        self.record(name, true, due, ok);
    }

    fn record(&self, name: &'static str, flow: bool, due: Instant, ok: bool) {
        let now = Instant::now();
        let mut ops = self.ops.borrow_mut();
        let position = match ops.iter().position(|op| op.name == name) {
            Some(position) => position,
            None => {
                ops.push(OpStats {
                    name,
                    flow,
                    total: histogram(3),
                    errors: 0,
                    intervals: Vec::new(),
                });
                ops.len() - 1
            }
        };
        let op = &mut ops[position];
        if !ok {
            op.errors += 1;
            return;
        }
        let micros = now.saturating_duration_since(due).as_micros().max(1) as u64;
        op.total.saturating_record(micros);
        let slot = (due.saturating_duration_since(self.started).as_millis() / INTERVAL.as_millis())
            as usize;
        if op.intervals.len() <= slot {
            op.intervals.resize_with(slot + 1, || histogram(2));
        }
        op.intervals[slot].saturating_record(micros);
        if !flow {
            self.completed.set(self.completed.get() + 1);
        }
    }

    /// Requests completed so far (flows not counted).
    pub fn requests(&self) -> u64 {
        self.completed.get()
    }

    /// The recorded operations, in the order they first completed.
    pub fn into_ops(self: Rc<Recorder>) -> Vec<OpStats> {
        match Rc::try_unwrap(self) {
            Ok(recorder) => recorder.ops.into_inner(),
            Err(shared) => shared.ops.replace(Vec::new()),
        }
    }
}

/// Times one awaited request and records it under `name`; the error, if any, is kept.
pub async fn timed<T, E>(
    recorder: &Recorder,
    name: &'static str,
    request: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = Instant::now();
    let outcome = request.await;
    recorder.step(name, start, outcome.is_ok());
    outcome
}

/// When a run starts and stops starting work.
#[derive(Clone, Copy)]
pub struct Window {
    /// Start of the run.
    pub started: Instant,
    /// No new flow starts at or after this.
    pub stop: Instant,
}

impl Window {
    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The run's length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.stop - self.started).as_secs_f64()
    }
}

/// How late a timer may wake before the flow counts as queued: tokio's timers fire on
/// millisecond ticks, which must not be measured as the server's latency.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Starts `workers` tasks that together run `flow` at `rate(elapsed seconds)` flows per
/// second until the window closes. One dispatcher hands out the flows as they fall due, so
/// a change of rate takes effect at once. Each flow gets its sequence number and the
/// instant its latency counts from: when it was due if it starts late (every worker was
/// busy), so a server falling behind shows as latency rather than as a quietly slower
/// load; when it started if only the timer's tick delayed it.
pub fn paced<F, Fut>(
    window: Window,
    workers: usize,
    rate: impl Fn(f64) -> f64 + 'static,
    flow: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(u64, Instant) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let queue = Rc::new(Queue::default());
    let flow = Rc::new(flow);
    let mut tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (queue, flow) = (queue.clone(), flow.clone());
            tokio::task::spawn_local(async move {
                while let Some((seq, due)) = queue.next().await {
                    let now = Instant::now();
                    let start = if now > due + TIMER_SLACK { due } else { now };
                    flow(seq, start).await;
                }
            })
        })
        .collect();
    tasks.push(tokio::task::spawn_local(async move {
        let mut due = window.started;
        let mut seq = 0;
        while due < window.stop {
            tokio::time::sleep_until(due.into()).await;
            let now = Instant::now();
            while due <= now && due < window.stop {
                queue.push(seq, due);
                seq += 1;
                let per_second = rate(due.saturating_duration_since(window.started).as_secs_f64());
                due += if per_second > 0.0 {
                    Duration::from_secs_f64(1.0 / per_second)
                } else {
                    Duration::from_millis(100)
                };
            }
        }
        queue.close();
    }));
    tasks
}

/// Flows due and not yet taken by a worker.
#[derive(Default)]
struct Queue {
    due: RefCell<std::collections::VecDeque<(u64, Instant)>>,
    closed: Cell<bool>,
    ready: tokio::sync::Notify,
}

impl Queue {
    fn push(&self, seq: u64, due: Instant) {
        self.due.borrow_mut().push_back((seq, due));
        self.ready.notify_one();
    }

    fn close(&self) {
        self.closed.set(true);
        self.ready.notify_waiters();
    }

    /// The next due flow, or `None` once the window has closed and none is left.
    async fn next(&self) -> Option<(u64, Instant)> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(next) = self.due.borrow_mut().pop_front() {
                return Some(next);
            }
            if self.closed.get() {
                return None;
            }
            notified.await;
        }
    }
}

/// Work a flow hands off to finish later (a checkout after the shopper's think time), so
/// its worker can start the next flow on time; the run waits for it before checking.
#[derive(Clone, Default)]
pub struct Tails {
    tasks: Rc<RefCell<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Tails {
    /// Runs `work` in the background.
    pub fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        let mut tasks = self.tasks.borrow_mut();
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio::task::spawn_local(work));
    }

    /// Waits for everything handed off, as `finish` does.
    pub async fn finish(&self, window: Window, grace: Duration) {
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        finish(tasks, window, grace).await;
    }
}

/// A progress bar over the run's length, showing requests per second as it goes.
pub fn progress(
    label: String,
    window: Window,
    recorder: Rc<Recorder>,
) -> tokio::task::JoinHandle<()> {
    let tenths = (window.seconds() * 10.0).ceil() as u64;
    let bar = indicatif::ProgressBar::new(tenths.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>24} [{bar:30}] {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label);
    tokio::task::spawn_local(async move {
        let mut last = (Instant::now(), recorder.requests());
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        while Instant::now() < window.stop {
            ticker.tick().await;
            let now = (Instant::now(), recorder.requests());
            let rate = (now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64().max(1e-3);
            last = now;
            bar.set_position((window.elapsed() * 10.0) as u64);
            bar.set_message(format!(
                "{:>5.1}/{:.0} s  {:>9.0} requests/s",
                window.elapsed().min(window.seconds()),
                window.seconds(),
                rate
            ));
        }
        bar.finish_and_clear();
    })
}

/// Waits for the tasks, giving up on those still running `grace` after the window closed
/// (a stalled server must not hang the load test).
pub async fn finish(tasks: Vec<tokio::task::JoinHandle<()>>, window: Window, grace: Duration) {
    let deadline = tokio::time::Instant::from_std(window.stop + grace);
    for task in tasks {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            abort.abort();
        }
    }
}
