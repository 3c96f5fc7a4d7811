//! `tessera-bench`: drives a Tessera node with many pipelined connections and reports
//! throughput, latency percentiles, and the server's CPU seconds per million operations.

mod driver;
mod redis_driver;
mod report;
mod scenario;
mod server_cpu;

use std::time::Duration;

use clap::{Parser, ValueEnum};

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Rate-limit workload: this many requests per window per key.
pub const RL_LIMIT: u64 = 100;
/// Rate-limit workload: window length.
pub const RL_WINDOW_MS: u64 = 60_000;
/// Dedup workload: how long a record is kept (one hour, as for impression dedup).
pub const DEDUP_TTL_MS: u64 = 3_600_000;
/// Timeline workloads: items a timeline keeps.
pub const TIMELINE_CAP: u32 = 800;
/// Fan-out workload: timelines per fan-out.
pub const FANOUT_WIDTH: usize = 1000;
/// Inventory workload: units each SKU starts with, more than any run sells.
pub const INV_STOCK: i64 = 1_000_000_000;
/// Inventory workload: how long a reservation holds before it lapses.
pub const RESERVATION_TTL_MS: u64 = 600_000;
/// Geo workloads: the index (or Redis key) the drivers live in.
pub const GEO_INDEX: &str = "drivers";
/// Geo workloads: the centre of the 30 km × 30 km box drivers move in (Berlin).
pub const GEO_CENTER: (f64, f64) = (52.52, 13.405);
/// Geo workloads: half the box's height and width in degrees (15 km each way).
pub const GEO_HALF_SPAN: (f64, f64) = (0.1349, 0.2215);
/// Geo workloads: drivers a nearest query asks for.
pub const GEO_K: u32 = 5;
/// Hash and sorted-set workloads: fields (members) each key holds after a load.
pub const COLLECTION_SIZE: usize = 10;

/// Where driver `i` works: a fixed, uniformly spread point of the box (splitmix64 of i).
pub fn geo_base(i: u64) -> (f64, f64) {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let unit = |z: u64| (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    let a = mix(i.wrapping_mul(2).wrapping_add(0x9e37_79b9_7f4a_7c15));
    let b = mix(a);
    (
        GEO_CENTER.0 + unit(a) * GEO_HALF_SPAN.0,
        GEO_CENTER.1 + unit(b) * GEO_HALF_SPAN.1,
    )
}

/// Driver `i`'s next GPS fix: within about 100 m of where it works (a few seconds of
/// driving), so like real fleets most updates stay in the driver's partition.
pub fn geo_fix(i: u64, rng: &mut impl rand::Rng) -> (f64, f64) {
    let (lat, lng) = geo_base(i);
    (
        lat + rng.random_range(-0.0009..0.0009),
        lng + rng.random_range(-0.0015..0.0015),
    )
}

/// A uniformly random point in the drivers' box.
pub fn geo_point(rng: &mut impl rand::Rng) -> (f64, f64) {
    (
        GEO_CENTER.0 + rng.random_range(-GEO_HALF_SPAN.0..GEO_HALF_SPAN.0),
        GEO_CENTER.1 + rng.random_range(-GEO_HALF_SPAN.1..GEO_HALF_SPAN.1),
    )
}

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// SET key value.
    Set,
    /// GET key.
    Get,
    /// A rate-limit check, 100 per 60 s per key: RL.CHECK, or on Redis the ZSET
    /// sliding log in Lua.
    Rl,
    /// A first-sighting check of a new id with a one-hour TTL: DEDUP, or on Redis
    /// SET NX PX.
    Dedup,
    /// Reserve one unit of a random SKU, then confirm it (each is one request): INV.RESERVE
    /// and INV.CONFIRM, or on Redis the usual two Lua scripts over a SKU hash.
    Inv,
    /// Push a new id onto a timeline capped at 800: TL.PUSH, or on Redis LPUSH + LTRIM.
    TlPush,
    /// Read the newest 20 items of a timeline: TL.RANGE LIMIT 20, or on Redis LRANGE 0 19.
    TlRange,
    /// Push one id into 1,000 random timelines in one request: TL.FANOUT, or on Redis a
    /// pipeline of 1,000 LPUSH + LTRIM pairs. One operation is one whole fan-out.
    Fanout,
    /// A 30-second heartbeat: PRESENCE.BEAT, or on Redis SET key 1 EX 30.
    Beat,
    /// Who of 100 random users is online, in one request: PRESENCE.GET, or on Redis MGET.
    Who,
    /// SET of every key `key:0` .. `key:N-1` once (N = --keyspace, ignoring --requests):
    /// fills a server for snapshot and restart figures.
    Load,
    /// Adds drivers `key:0` .. `key:N-1` (N = --keyspace, ignoring --requests), spread
    /// uniformly over a 30 km box: GEO.UPSERT, or on Redis GEOADD.
    GeoLoad,
    /// A GPS fix of a random driver, within about 100 m of where it works: GEO.UPSERT, or
    /// GEOADD.
    GeoUpsert,
    /// The 5 nearest drivers within --radius of a random point: GEO.NEAR K 5 RADIUS r, or
    /// on Redis GEOSEARCH FROMLONLAT BYRADIUS r m ASC COUNT 5.
    GeoNear,
    /// HSET of all 10 fields `f0`..`f9` of a random key in one request (memory per field is
    /// the memory per new key over 10).
    Hload,
    /// HSET of one random field of a random key.
    Hset,
    /// HGET of one random field of a random key.
    Hget,
    /// HINCRBY of a counter field of a random key.
    Hincrby,
    /// ZADD of all 10 members `m0`..`m9` of a random key with random scores in one request.
    Zload,
    /// ZADD of one random member of a random key with a random score.
    Zadd,
    /// ZINCRBY of one random member of a random key.
    Zincrby,
    /// ZRANGE key 0 9: the top of a random leaderboard.
    Zrange,
    /// ZRANK of one random member of a random key.
    Zrank,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Set => "SET",
            Workload::Get => "GET",
            Workload::Rl => "RATELIMIT",
            Workload::Dedup => "DEDUP",
            Workload::Inv => "RESERVE+CONFIRM",
            Workload::TlPush => "TL.PUSH",
            Workload::TlRange => "TL.RANGE",
            Workload::Fanout => "FANOUT1000",
            Workload::Beat => "HEARTBEAT",
            Workload::Who => "WHO100",
            Workload::Load => "LOAD",
            Workload::GeoLoad => "GEO.LOAD",
            Workload::GeoUpsert => "GEO.UPSERT",
            Workload::GeoNear => "GEO.NEAR5",
            Workload::Hload => "HSET10",
            Workload::Hset => "HSET",
            Workload::Hget => "HGET",
            Workload::Hincrby => "HINCRBY",
            Workload::Zload => "ZADD10",
            Workload::Zadd => "ZADD",
            Workload::Zincrby => "ZINCRBY",
            Workload::Zrange => "ZRANGE0-9",
            Workload::Zrank => "ZRANK",
        }
    }
}

/// Which server the load goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Tessera node, over its binary protocol.
    Tessera,
    /// A Redis server, over RESP with the redis crate.
    Redis,
}

/// Load generator for Tessera.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short, long, default_value_t = 7379)]
    pub port: u16,
    /// Workloads to run one after another, e.g. `set,get`.
    #[arg(short, long, value_delimiter = ',', default_value = "set,get")]
    pub workload: Vec<Workload>,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 50)]
    pub clients: usize,
    /// Requests each connection keeps in flight.
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Requests per workload (ignored when --duration is given).
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    pub requests: u64,
    /// Run each workload for this many seconds instead of a request count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Distinct keys, `key:0` .. `key:N-1`, drawn uniformly.
    #[arg(short, long, default_value_t = 100_000)]
    pub keyspace: u64,
    /// Value size in bytes for SET.
    #[arg(short = 'd', long, default_value_t = 64)]
    pub value_size: usize,
    /// SET with this TTL in milliseconds (PX), for expiry under load.
    #[arg(long)]
    pub ttl_ms: Option<u64>,
    /// Don't pin connections to shards: send every key over whichever shard accepted the
    /// connection and let the server forward it (what a client without routing gets).
    #[arg(long)]
    pub unrouted: bool,
    /// In cluster mode, send each request through tessera-client's routing, as an
    /// application does: it follows MOVED, waits out TRY_AGAIN and retries, so the
    /// latencies include what a live migration costs a caller (SET and GET, pipeline 1).
    #[arg(long)]
    pub follow: bool,
    /// PID of the server (of every node of a cluster, comma-separated), to report the
    /// server CPU seconds per million operations, all of them added up.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Print results as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Server to load.
    #[arg(long, value_enum, default_value = "tessera")]
    pub target: Target,
    /// Also report the server's memory growth per new key over each workload (use with
    /// --flush for the whole cost of a key, table included).
    #[arg(long)]
    pub memory: bool,
    /// Delete every key (FLUSHALL) before each workload.
    #[arg(long)]
    pub flush: bool,
    /// Geo workloads: search radius in metres.
    #[arg(long, default_value_t = 2_000)]
    pub radius: u32,
    /// Password to authenticate every connection with (HELLO AUTH, or Redis's AUTH).
    #[arg(short = 'a', long = "pass")]
    pub password: Option<String>,
    /// User to authenticate as, with --pass [default: default].
    #[arg(long)]
    pub user: Option<String>,
    /// Connect over TLS, trusting the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Run these scenarios instead of --workload, e.g. `flash-sale`: mixes of flows at
    /// the seeds' proportions for --duration seconds (default 30). A scenario starts by
    /// deleting every key (FLUSHALL) on the server it loads.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<scenario::Scenario>,
    /// Scenarios: multiplies users, drivers, stock and rates.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Scenarios: verify each one's invariants at the end (exit status 1 if one fails on
    /// Tessera).
    #[arg(long)]
    pub check: bool,
    /// Scenarios: also run the Redis equivalent against the Redis on this port, after
    /// Tessera, in the same run.
    #[arg(long)]
    pub redis_port: Option<u16>,
    /// Scenarios: PID of that Redis, for its server CPU seconds.
    #[arg(long, value_delimiter = ',')]
    pub redis_pid: Vec<u32>,
    /// Scenarios: write `<scenario>.png` and `.svg` plots of throughput and p99 over
    /// time into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<std::path::PathBuf>,
}

impl Args {
    fn budget(&self, workload: Workload) -> driver::Budget {
        if matches!(workload, Workload::GeoLoad | Workload::Load) {
            return driver::Budget::Requests(self.keyspace);
        }
        match self.duration {
            Some(seconds) => driver::Budget::Time(Duration::from_secs_f64(seconds)),
            None => driver::Budget::Requests(self.requests),
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The Redis client's TLS finds its crypto through the process-wide default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.clients == 0 || args.pipeline == 0 || args.keyspace == 0 {
        eprintln!("tessera-bench: --clients, --pipeline and --keyspace must be at least 1");
        return std::process::ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    let local = tokio::task::LocalSet::new();
    if !args.scenario.is_empty() {
        if !(args.scale > 0.0 && args.scale.is_finite()) {
            eprintln!("tessera-bench: --scale must be a positive number");
            return std::process::ExitCode::from(2);
        }
        return match local.block_on(&runtime, scenario::run_all(&args)) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("tessera-bench: a scenario's check failed");
                std::process::ExitCode::FAILURE
            }
            Err(error) => {
                eprintln!("tessera-bench: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let outcome = local.block_on(&runtime, async {
        let endpoint = driver::Endpoint::from_args(&args)?;
        let memory = || async {
            match (args.memory, args.target) {
                (false, _) => Ok(None),
                (true, Target::Tessera) => driver::memory(&endpoint).await.map(Some),
                (true, Target::Redis) => redis_driver::memory(&args).await.map(Some),
            }
        };
        for workload in args.workload.clone() {
            if args.flush {
                match args.target {
                    Target::Tessera => driver::flush(&endpoint).await?,
                    Target::Redis => redis_driver::flush(&args).await?,
                }
            }
            if workload == Workload::Inv {
                match args.target {
                    Target::Tessera => driver::stock_skus(&endpoint, args.keyspace).await?,
                    Target::Redis => redis_driver::stock_skus(&args).await?,
                }
            }
            let memory_before = memory().await?;
            let cpu_before = server_cpu::total(&args.server_pid)?;
            let run = match args.target {
                Target::Tessera => driver::run(&args, workload, args.budget(workload)).await?,
                Target::Redis => redis_driver::run(&args, workload, args.budget(workload)).await?,
            };
            let cpu_after = server_cpu::total(&args.server_pid)?;
            let memory_after = memory().await?;
            let cpu = cpu_before
                .zip(cpu_after)
                .map(|(before, after)| after - before);
            let bytes_per_key = memory_before
                .zip(memory_after)
                .and_then(|((m0, k0), (m1, k1))| {
                    (k1 > k0).then(|| (m1 as f64 - m0 as f64) / (k1 - k0) as f64)
                });
            report::print(&args, workload, &run, cpu, bytes_per_key);
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
