//! Scenario load tests: the seeds' workloads as mixes of flows, run against Tessera and
//! against the Redis code teams write for them today, checked and plotted.

mod ads;
mod chat;
mod dinner;
mod flash;
mod fleet;
pub mod load;
mod plot;
mod report;
mod rides;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use redis::aio::MultiplexedConnection;
use tessera_client::{Client, ClientConfig};

use crate::driver::BoxError;
use crate::Args;
use load::{OpStats, Recorder, Window};

/// The seeds' workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Delivery at dinner time: drivers send GPS every 5 s; orders find a store, reserve a
    /// cart, take a payment idempotency key and offer the order to the nearest free driver;
    /// a third of the way in, order volume goes up tenfold.
    DinnerRush,
    /// An ad exchange: frequency and publisher limits, campaign budgets and impression
    /// dedup (with network retries) inside a 10 ms budget per request.
    AdExchange,
    /// Chat: presence heartbeats, contact lists, message timelines paged by cursor and
    /// messages routed between gateway servers by pub/sub.
    Chat,
    /// Ride-hailing: drivers update every 4 s; riders are matched with the nearest free
    /// driver; trips move through their states by compare-and-set, some racing a cancel;
    /// surge counts per H3 cell.
    RideHailing,
    /// A flash sale: 1,000 hot SKUs, 10,000 shoppers, a share of carts abandoned.
    FlashSale,
}

impl Scenario {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::DinnerRush => "dinner-rush",
            Scenario::AdExchange => "ad-exchange",
            Scenario::Chat => "chat",
            Scenario::RideHailing => "ride-hailing",
            Scenario::FlashSale => "flash-sale",
        }
    }
}

/// Which server one run of a scenario loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Tessera, through tessera-client.
    Tessera,
    /// Redis, through the redis crate, with the command sequences and Lua scripts teams
    /// write.
    Redis,
}

impl Side {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Side::Tessera => "tessera",
            Side::Redis => "redis",
        }
    }
}

/// One invariant a scenario verifies at the end.
#[derive(Debug, Clone)]
pub struct Check {
    /// What must hold.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was compared, or the first counter-example.
    pub detail: String,
}

impl Check {
    /// A check that passed when `passed`, explained by `detail`.
    pub fn new(name: &'static str, passed: bool, detail: impl Into<String>) -> Check {
        Check {
            name,
            passed,
            detail: detail.into(),
        }
    }

    /// A check that passed when nothing `failures` lists went wrong: `held` says what was
    /// compared; otherwise how many `what` and the first of them.
    pub fn none_of(name: &'static str, failures: &[String], what: &str, held: String) -> Check {
        let detail = match failures.first() {
            None => held,
            Some(first) => format!("{} {what}, first {first}", failures.len()),
        };
        Check::new(name, failures.is_empty(), detail)
    }
}

/// Whether a figure read at the end agrees with the ledger: `expected` if every
/// acknowledged change counted, or lower by at most `unknown` changes whose requests
/// failed on the link (they may or may not have happened).
pub fn agrees(found: i64, expected: i64, unknown: i64) -> bool {
    found <= expected && found >= expected - unknown
}

/// Adds one to a ledger count.
pub fn bump(count: &Cell<u64>) {
    add(count, 1);
}

/// Adds `by` to a ledger count.
pub fn add(count: &Cell<u64>, by: u64) {
    count.set(count.get() + by);
}

/// A reply that is OK, or NOT_FOUND for a record that lapsed: `false` then.
///
/// # Errors
/// Any other failure.
pub fn found(reply: tessera_client::Result<()>) -> Result<bool, BoxError> {
    match reply {
        Ok(()) => Ok(true),
        Err(error) if error.server_code() == Some(tessera_protocol::ErrorCode::NotFound) => {
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// A scenario's store on the server under test: its connections, each wrapped in the
/// scenario's Tessera or Redis implementation.
pub enum Store<T, R> {
    /// Over tessera-client.
    Tessera(Pool<Rc<T>>),
    /// Over the redis crate.
    Redis(Pool<Rc<R>>),
}

/// What a scenario hands back besides its latencies.
#[derive(Default)]
pub struct Outcome {
    /// Scenario-specific counts (orders placed, units sold, ...), in order.
    pub figures: Vec<(&'static str, f64)>,
    /// The invariants, when `--check` asked for them.
    pub checks: Vec<Check>,
    /// The operations the plots draw (all of them when empty).
    pub plotted: Vec<&'static str>,
}

/// One run of one scenario against one server.
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// The server.
    pub side: Side,
    /// How long load was offered.
    pub seconds: f64,
    /// Every operation's latencies.
    pub ops: Vec<OpStats>,
    /// Counts and checks.
    pub outcome: Outcome,
    /// Server CPU seconds over the run, when its pid was given.
    pub server_cpu_seconds: Option<f64>,
}

/// What every scenario needs: the flags, the connections' address and the run's clock.
pub struct Context {
    /// The command line.
    pub args: Args,
    /// The server this run loads.
    pub side: Side,
    /// Its port.
    pub port: u16,
    /// Where latencies go.
    pub recorder: Rc<Recorder>,
    /// When load starts and stops.
    pub window: Window,
    /// The servers' processes, for their CPU time.
    pub pids: Vec<u32>,
    /// Their CPU seconds once the load (not the check) was over.
    pub cpu_when_loaded: Cell<Option<f64>>,
}

impl Context {
    /// Marks the end of the load: the server CPU figure stops here, so the checks' reads
    /// are not counted as the scenario's cost.
    pub fn loaded(&self) {
        let cpu = crate::server_cpu::total(&self.pids).ok().flatten();
        self.cpu_when_loaded.set(cpu);
    }

    /// The one knob: users, drivers, stock and rates are multiplied by it.
    pub fn scale(&self) -> f64 {
        self.args.scale
    }

    /// Whether to verify the invariants at the end.
    pub fn check(&self) -> bool {
        self.args.check
    }

    /// `n` scaled by the knob, at least 1.
    pub fn scaled(&self, n: f64) -> u64 {
        (n * self.scale()).round().max(1.0) as u64
    }

    /// Opens `--clients` Tessera clients (each routes to every shard).
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn tessera(&self) -> Result<Vec<Client>, BoxError> {
        let endpoint = crate::driver::Endpoint::from_args(&self.args)?;
        let config = ClientConfig {
            request_timeout: Some(Duration::from_secs(30)),
            ..endpoint.client_config()
        };
        let mut clients = Vec::new();
        for _ in 0..self.args.clients.clamp(1, 64) {
            clients.push(Client::connect_with(&endpoint.address, config.clone()).await?);
        }
        Ok(clients)
    }

    /// A redis crate client for the Redis under test.
    ///
    /// # Errors
    /// The CA file cannot be read, or the address is malformed.
    pub fn redis_client(&self) -> Result<redis::Client, BoxError> {
        crate::redis_driver::client_at(&self.args, self.port)
    }

    /// Opens `--clients` multiplexed Redis connections.
    ///
    /// # Errors
    /// Redis cannot be reached.
    pub async fn redis(&self) -> Result<Vec<MultiplexedConnection>, BoxError> {
        let client = self.redis_client()?;
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        let mut connections = Vec::new();
        for _ in 0..self.args.clients.clamp(1, 64) {
            connections.push(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            );
        }
        Ok(connections)
    }

    /// Deletes every key, so the scenario starts from nothing.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn flush(&self) -> Result<(), BoxError> {
        match self.side {
            Side::Tessera => {
                crate::driver::flush(&crate::driver::Endpoint::from_args(&self.args)?).await?
            }
            Side::Redis => {
                let mut connection = self
                    .redis_client()?
                    .get_multiplexed_async_connection()
                    .await?;
                redis::cmd("FLUSHALL")
                    .query_async::<()>(&mut connection)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Picks connections round-robin by a flow's sequence number.
pub struct Pool<T>(pub Vec<T>);

impl<T: Clone> Pool<T> {
    /// The connection for flow `seq`.
    pub fn pick(&self, seq: u64) -> T {
        self.0[(seq % self.0.len() as u64) as usize].clone()
    }
}

/// Runs every scenario the flags name, against Tessera and (with `--redis-port`) Redis,
/// then prints, plots and checks. Returns whether every check on Tessera held.
///
/// # Errors
/// A server cannot be reached, or a plot cannot be written.
pub async fn run_all(args: &Args) -> Result<bool, BoxError> {
    let mut sides = vec![(Side::Tessera, args.port, args.server_pid.clone())];
    if let Some(port) = args.redis_port {
        sides.push((Side::Redis, port, args.redis_pid.clone()));
    }
    if args.target == crate::Target::Redis {
        sides = vec![(Side::Redis, args.port, args.server_pid.clone())];
    }
    let mut all_held = true;
    for scenario in args.scenario.clone() {
        let mut reports = Vec::new();
        for (side, port, pids) in &sides {
            let report = run_one(args, scenario, *side, *port, pids).await?;
            report::print(args, &report);
            if report.side == Side::Tessera {
                all_held &= report.outcome.checks.iter().all(|check| check.passed);
            }
            reports.push(report);
        }
        if !args.json && reports.len() == 2 {
            report::compare(&reports[0], &reports[1]);
        }
        if let Some(dir) = &args.plot {
            for path in plot::draw(dir, scenario, &reports)? {
                if !args.json {
                    println!("plot: {}", path.display());
                }
            }
        }
    }
    Ok(all_held)
}

async fn run_one(
    args: &Args,
    scenario: Scenario,
    side: Side,
    port: u16,
    pids: &[u32],
) -> Result<Report, BoxError> {
    let seconds = args.duration.unwrap_or(30.0);
    let placeholder = Window {
        started: Instant::now(),
        stop: Instant::now(),
    };
    let mut context = Context {
        args: args.clone(),
        side,
        port,
        recorder: Recorder::new(),
        window: placeholder,
        pids: pids.to_vec(),
        cpu_when_loaded: Cell::new(None),
    };
    context.flush().await?;
    let prepared = match scenario {
        Scenario::DinnerRush => dinner::prepare(&context).await?,
        Scenario::AdExchange => ads::prepare(&context).await?,
        Scenario::Chat => chat::prepare(&context).await?,
        Scenario::RideHailing => rides::prepare(&context).await?,
        Scenario::FlashSale => flash::prepare(&context).await?,
    };
    context.recorder = Recorder::new();
    let started = context.recorder.started();
    context.window = Window {
        started,
        stop: started + Duration::from_secs_f64(seconds),
    };
    let label = format!("{} / {}", scenario.name(), side.name());
    let bar = (!args.json).then(|| load::progress(label, context.window, context.recorder.clone()));
    let cpu_before = crate::server_cpu::total(pids)?;
    let outcome = prepared.run(&context).await?;
    let cpu_after = match context.cpu_when_loaded.get() {
        Some(cpu) => Some(cpu),
        None => crate::server_cpu::total(pids)?,
    };
    if let Some(bar) = bar {
        bar.abort();
    }
    Ok(Report {
        scenario,
        side,
        seconds,
        ops: context.recorder.clone().into_ops(),
        outcome,
        server_cpu_seconds: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    })
}

/// A scenario set up on one server, ready to run its load and checks.
pub enum Prepared {
    /// Dinner rush.
    Dinner(dinner::Prepared),
    /// Ad exchange.
    Ads(ads::Prepared),
    /// Chat.
    Chat(chat::Prepared),
    /// Ride-hailing.
    Rides(rides::Prepared),
    /// Flash sale.
    Flash(flash::Prepared),
}

impl Prepared {
    async fn run(self, context: &Context) -> Result<Outcome, BoxError> {
        match self {
            Prepared::Dinner(prepared) => prepared.run(context).await,
            Prepared::Ads(prepared) => prepared.run(context).await,
            Prepared::Chat(prepared) => prepared.run(context).await,
            Prepared::Rides(prepared) => prepared.run(context).await,
            Prepared::Flash(prepared) => prepared.run(context).await,
        }
    }
}

/// A Zipf-like pick from `0..n` (skewed towards 0): how shoppers crowd the hot items.
pub fn skewed(rng: &mut impl rand::Rng, n: u64) -> u64 {
    let u: f64 = rng.random_range(0.0..1.0);
    ((n as f64).powf(u) - 1.0)
        .floor()
        .clamp(0.0, (n - 1) as f64) as u64
}
