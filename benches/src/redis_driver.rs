//! The same workloads against Redis, through the redis crate: SET/GET, a sliding-log rate
//! limit in Lua (the usual ZSET recipe), and SET NX EX for dedup.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;

use crate::driver::{gather, BoxError, Budget, Run};
use crate::{Args, Workload, DEDUP_TTL_MS, RL_LIMIT, RL_WINDOW_MS};

/// The sliding-log rate limit teams run on Redis: drop entries older than the window,
/// count, and add this request if under the limit.
pub const SLIDING_LOG: &str = r#"
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - 1}
end
return {0, 0}
"#;

/// Reserve on Redis, the way teams script it: check the SKU hash, hold the units, record
/// the reservation with a TTL. A retried id is answered without a second hold.
const RESERVE: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local on_hand = tonumber(redis.call('HGET', KEYS[1], 'on_hand') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local qty = tonumber(ARGV[1])
if on_hand - reserved < qty then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', qty)
redis.call('SET', KEYS[2], qty, 'PX', ARGV[2])
return 1
"#;

/// Confirm on Redis: turn the recorded reservation into a sale.
const CONFIRM: &str = r#"
local qty = redis.call('GET', KEYS[2])
if not qty then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
redis.call('HINCRBY', KEYS[1], 'on_hand', -qty)
redis.call('DEL', KEYS[2])
return 1
"#;

/// A client for the Redis the flags name: with credentials and TLS when given.
fn client(args: &Args) -> Result<redis::Client, BoxError> {
    client_at(args, args.port)
}

/// A client for the Redis on `port` of the flags' host, with their credentials and TLS.
///
/// # Errors
/// The CA file cannot be read, or the address is malformed.
pub fn client_at(args: &Args, port: u16) -> Result<redis::Client, BoxError> {
    let auth = match (&args.user, &args.password) {
        (user, Some(password)) => format!("{}:{password}@", user.as_deref().unwrap_or("")),
        _ => String::new(),
    };
    let scheme = if args.cacert.is_some() {
        "rediss"
    } else {
        "redis"
    };
    let url = format!("{scheme}://{auth}{}:{port}/", args.host);
    Ok(match &args.cacert {
        Some(ca) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(ca)?),
            },
        )?,
        None => redis::Client::open(url)?,
    })
}

/// Stocks every SKU hash (`sku:key:0` ..) for the inventory workload.
///
/// # Errors
/// Redis cannot be reached.
pub async fn stock_skus(args: &Args) -> Result<(), BoxError> {
    let client = client(args)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut pipe = redis::pipe();
    for i in 0..args.keyspace {
        pipe.cmd("HSET")
            .arg(format!("sku:key:{i}"))
            .arg("on_hand")
            .arg(crate::INV_STOCK)
            .arg("reserved")
            .arg(0)
            .ignore();
    }
    let _: () = pipe.query_async(&mut connection).await?;
    Ok(())
}

/// Runs `workload` against Redis with `args.clients` connections.
///
/// # Errors
/// Redis cannot be reached or a pipeline fails.
pub async fn run(args: &Args, workload: Workload, budget: Budget) -> Result<Run, BoxError> {
    let client = client(args)?;
    let mut setup = client.get_multiplexed_async_connection().await?;
    let mut shas = Vec::new();
    for script in [SLIDING_LOG, RESERVE, CONFIRM] {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script)
            .query_async(&mut setup)
            .await?;
        shas.push(sha);
    }
    let [script_sha, reserve_sha, confirm_sha] =
        <[String; 3]>::try_from(shas).map_err(|_| "SCRIPT LOAD")?;
    let issued = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let (limit, deadline) = match budget {
        Budget::Requests(n) => (n, None),
        Budget::Time(t) => (u64::MAX, Some(started + t)),
    };
    let value = vec![b'x'; args.value_size];
    let mut tasks = Vec::new();
    // Slow commands (GEOSEARCH over a million members) outlast the crate's 500 ms
    // default; a load test measures them rather than abandoning them.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    for id in 0..args.clients {
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let worker = Worker {
            id,
            connection,
            workload,
            pipeline: args.pipeline,
            keyspace: args.keyspace,
            value: value.clone(),
            script_sha: script_sha.clone(),
            reserve_sha: reserve_sha.clone(),
            confirm_sha: confirm_sha.clone(),
            unconfirmed: None,
            issued: issued.clone(),
            limit,
            deadline,
            rng: SmallRng::seed_from_u64(id as u64 + 1),
            radius_m: args.radius,
            ttl_ms: args.ttl_ms,
            sequence: 0,
            epoch: started,
        };
        tasks.push(tokio::task::spawn_local(worker.drive()));
    }
    gather(tasks, started).await
}

/// Deletes every key (FLUSHALL), so a workload starts from an empty keyspace.
///
/// # Errors
/// Redis cannot be reached.
pub async fn flush(args: &Args) -> Result<(), BoxError> {
    let client = client(args)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut connection).await?;
    Ok(())
}

/// Bytes Redis holds (`used_memory`) and its key count.
///
/// # Errors
/// Redis cannot be reached.
pub async fn memory(args: &Args) -> Result<(u64, u64), BoxError> {
    let client = client(args)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await?;
    let used = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or("INFO memory without used_memory")?;
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut connection).await?;
    // Drivers are members of one sorted set; count them as a geo index counts members.
    let drivers: u64 = redis::cmd("ZCARD")
        .arg(crate::GEO_INDEX)
        .query_async(&mut connection)
        .await?;
    Ok((used, keys + drivers))
}

struct Worker {
    id: usize,
    connection: MultiplexedConnection,
    workload: Workload,
    pipeline: usize,
    keyspace: u64,
    value: Vec<u8>,
    script_sha: String,
    reserve_sha: String,
    confirm_sha: String,
    /// Inventory workload: the reservation the next request confirms.
    unconfirmed: Option<(String, String)>,
    issued: Rc<Cell<u64>>,
    limit: u64,
    deadline: Option<Instant>,
    rng: SmallRng,
    radius_m: u32,
    ttl_ms: Option<u64>,
    sequence: u64,
    epoch: Instant,
}

impl Worker {
    async fn drive(mut self) -> Result<Run, redis::RedisError> {
        let mut run = Run::new();
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let taken = self.issued.get();
            let batch = self.limit.saturating_sub(taken).min(self.pipeline as u64) as usize;
            if batch == 0 {
                break;
            }
            self.issued.set(taken + batch as u64);
            let mut pipe = redis::pipe();
            for position in taken..taken + batch as u64 {
                self.add_request(&mut pipe, position);
            }
            let sent = Instant::now();
            let replies: Vec<redis::Value> = pipe.query_async(&mut self.connection).await?;
            let micros = (sent.elapsed().as_micros() as u64).max(1);
            for reply in replies {
                run.completed += 1;
                run.errors += u64::from(matches!(reply, redis::Value::ServerError(_)));
                run.latency_us.saturating_record(micros);
            }
        }
        Ok(run)
    }

    fn add_request(&mut self, pipe: &mut redis::Pipeline, position: u64) {
        let key = format!("key:{}", self.rng.random_range(0..self.keyspace));
        match self.workload {
            Workload::GeoLoad | Workload::GeoUpsert => {
                let (driver, (lat, lng)) = match self.workload {
                    Workload::GeoLoad => (position, crate::geo_base(position)),
                    _ => {
                        let driver = self.rng.random_range(0..self.keyspace);
                        (driver, crate::geo_fix(driver, &mut self.rng))
                    }
                };
                pipe.cmd("GEOADD")
                    .arg(crate::GEO_INDEX)
                    .arg(lng)
                    .arg(lat)
                    .arg(format!("key:{driver}"));
            }
            Workload::GeoNear => {
                let (lat, lng) = crate::geo_point(&mut self.rng);
                pipe.cmd("GEOSEARCH")
                    .arg(crate::GEO_INDEX)
                    .arg("FROMLONLAT")
                    .arg(lng)
                    .arg(lat)
                    .arg("BYRADIUS")
                    .arg(self.radius_m)
                    .arg("m")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(crate::GEO_K);
            }
            Workload::Set => {
                pipe.cmd("SET").arg(key).arg(&self.value[..]);
                if let Some(ttl) = self.ttl_ms {
                    pipe.arg("PX").arg(ttl);
                }
            }
            Workload::Load => {
                pipe.cmd("SET")
                    .arg(format!("key:{position}"))
                    .arg(&self.value[..]);
            }
            Workload::Get => {
                pipe.cmd("GET").arg(key);
            }
            Workload::Rl => {
                self.sequence += 1;
                let now = self.epoch.elapsed().as_millis() as u64;
                pipe.cmd("EVALSHA")
                    .arg(&self.script_sha)
                    .arg(1)
                    .arg(key)
                    .arg(now)
                    .arg(RL_WINDOW_MS)
                    .arg(RL_LIMIT)
                    .arg(format!("{}-{}", self.id, self.sequence));
            }
            Workload::TlPush => {
                self.sequence += 1;
                let id = ((self.id as u64) << 40) | self.sequence;
                pipe.cmd("LPUSH").arg(&key).arg(id);
                pipe.cmd("LTRIM")
                    .arg(&key)
                    .arg(0)
                    .arg(crate::TIMELINE_CAP - 1)
                    .ignore();
            }
            Workload::TlRange => {
                pipe.cmd("LRANGE").arg(&key).arg(0).arg(19);
            }
            Workload::Fanout => {
                self.sequence += 1;
                let id = ((self.id as u64) << 40) | self.sequence;
                for i in 0..crate::FANOUT_WIDTH {
                    let follower = format!("key:{}", self.rng.random_range(0..self.keyspace));
                    let push = pipe.cmd("LPUSH").arg(&follower).arg(id);
                    // One reply per fan-out, so a fan-out counts as one operation.
                    if i > 0 {
                        push.ignore();
                    }
                    pipe.cmd("LTRIM")
                        .arg(&follower)
                        .arg(0)
                        .arg(crate::TIMELINE_CAP - 1)
                        .ignore();
                }
            }
            Workload::Beat => {
                pipe.cmd("SET").arg(&key).arg(1).arg("EX").arg(30);
            }
            Workload::Who => {
                let users: Vec<String> = (0..100)
                    .map(|_| format!("key:{}", self.rng.random_range(0..self.keyspace)))
                    .collect();
                pipe.cmd("MGET").arg(users);
            }
            Workload::Inv => match self.unconfirmed.take() {
                Some((sku, reservation)) => {
                    pipe.cmd("EVALSHA")
                        .arg(&self.confirm_sha)
                        .arg(2)
                        .arg(sku)
                        .arg(reservation);
                }
                None => {
                    self.sequence += 1;
                    let sku = format!("sku:{key}");
                    let reservation = format!("res:c{}-{}", self.id, self.sequence);
                    pipe.cmd("EVALSHA")
                        .arg(&self.reserve_sha)
                        .arg(2)
                        .arg(&sku)
                        .arg(&reservation)
                        .arg(1)
                        .arg(crate::RESERVATION_TTL_MS);
                    self.unconfirmed = Some((sku, reservation));
                }
            },
            Workload::Hload => {
                let fields =
                    (0..crate::COLLECTION_SIZE).map(|i| (format!("f{i}"), &self.value[..]));
                pipe.cmd("HSET").arg(key).arg(fields.collect::<Vec<_>>());
            }
            Workload::Hset => {
                let field = format!("f{}", self.rng.random_range(0..crate::COLLECTION_SIZE));
                pipe.cmd("HSET").arg(key).arg(field).arg(&self.value[..]);
            }
            Workload::Hget => {
                let field = format!("f{}", self.rng.random_range(0..crate::COLLECTION_SIZE));
                pipe.cmd("HGET").arg(key).arg(field);
            }
            Workload::Hincrby => {
                pipe.cmd("HINCRBY").arg(key).arg("n").arg(1);
            }
            Workload::Zload => {
                let mut pairs = Vec::with_capacity(crate::COLLECTION_SIZE);
                for i in 0..crate::COLLECTION_SIZE {
                    pairs.push((self.rng.random_range(0.0..1e6), format!("m{i}")));
                }
                pipe.cmd("ZADD").arg(key).arg(pairs);
            }
            Workload::Zadd => {
                let member = format!("m{}", self.rng.random_range(0..crate::COLLECTION_SIZE));
                let score: f64 = self.rng.random_range(0.0..1e6);
                pipe.cmd("ZADD").arg(key).arg(score).arg(member);
            }
            Workload::Zincrby => {
                let member = format!("m{}", self.rng.random_range(0..crate::COLLECTION_SIZE));
                pipe.cmd("ZINCRBY").arg(key).arg(1).arg(member);
            }
            Workload::Zrange => {
                pipe.cmd("ZRANGE").arg(key).arg(0).arg(9);
            }
            Workload::Zrank => {
                let member = format!("m{}", self.rng.random_range(0..crate::COLLECTION_SIZE));
                pipe.cmd("ZRANK").arg(key).arg(member);
            }
            Workload::Dedup => {
                self.sequence += 1;
                pipe.cmd("SET")
                    .arg(format!("imp:{}:{}", self.id, self.sequence))
                    .arg("")
                    .arg("NX")
                    .arg("PX")
                    .arg(DEDUP_TTL_MS);
            }
        }
    }
}
