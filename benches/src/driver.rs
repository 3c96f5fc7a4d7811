//! The load loop: each connection writes a batch of `pipeline` requests, reads every
//! reply, records each request's latency, and repeats until the budget is spent.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tessera_protocol::{
    AdminCommand, DedupCommand, InventoryCommand, KeyCommand, LimitCommand, PresenceCommand,
    TimelineCommand,
};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tessera_client::TlsConfig;
use tessera_cluster::geo::{partition_of, partition_shard};
use tessera_cluster::shard_for_key;
use tessera_protocol::commands::hashes::Finite;
use tessera_protocol::commands::sorted_sets::Selection;
use tessera_protocol::commands::{
    Algorithm, Cursor, HashCommand, RateLimit, SortedSetCommand, Tier, Tiers,
};
use tessera_protocol::geo::{GeoArea, GeoCommand, GeoNear, GeoPoint};
use tessera_protocol::{
    encode_request, Command, FrameDecoder, HelloInfo, SetArgs, SetExpiry, Value, PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Args, Workload};
use tessera_protocol::commands::admin::Credentials;

/// When a workload stops.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// After this many requests in total.
    Requests(u64),
    /// After this long.
    Time(Duration),
}

/// What one workload measured.
pub struct Run {
    /// Requests answered.
    pub completed: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Wall time from first send to last reply.
    pub elapsed: Duration,
    /// Per-request latency in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Run {
    /// Nothing measured yet.
    pub fn new() -> Self {
        Self {
            completed: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency_us: new_histogram(),
        }
    }
}

/// Errors the load loop reports.
pub type BoxError = Box<dyn std::error::Error>;

/// A connection's byte stream: TCP, or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin {}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for S {}

/// Where the load generator connects, and as whom.
#[derive(Clone)]
pub struct Endpoint {
    /// The server's host.
    pub host: String,
    /// `host:port`.
    pub address: String,
    /// Credentials sent in every HELLO.
    pub credentials: Option<Credentials>,
    /// TLS for every connection.
    pub tls: Option<TlsConfig>,
}

impl Endpoint {
    /// The endpoint the flags name.
    ///
    /// # Errors
    /// The CA file cannot be read.
    pub fn from_args(args: &Args) -> Result<Endpoint, BoxError> {
        let tls = match &args.cacert {
            Some(ca) => Some(TlsConfig::from_pem_files(ca, None)?),
            None => None,
        };
        Ok(Endpoint {
            host: args.host.clone(),
            address: format!("{}:{}", args.host, args.port),
            credentials: args.password.as_ref().map(|password| Credentials {
                username: Bytes::from(args.user.clone().unwrap_or_else(|| "default".into())),
                password: Bytes::from(password.clone()),
            }),
            tls,
        })
    }

    /// tessera-client's settings for these credentials and TLS.
    pub fn client_config(&self) -> tessera_client::ClientConfig {
        let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
        tessera_client::ClientConfig {
            username: self.credentials.as_ref().map(|c| text(&c.username)),
            password: self.credentials.as_ref().map(|c| text(&c.password)),
            tls: self.tls.clone(),
            ..tessera_client::ClientConfig::default()
        }
    }

    /// The same credentials and TLS towards another node, `host:port`.
    fn at(&self, address: &str) -> Endpoint {
        Endpoint {
            host: address
                .rsplit_once(':')
                .map_or(address, |(host, _)| host)
                .to_string(),
            address: address.to_string(),
            ..self.clone()
        }
    }

    /// Opens a connection: TCP, then the TLS handshake when asked for.
    async fn open(&self) -> Result<Box<dyn Stream>, BoxError> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        Ok(match &self.tls {
            Some(tls) => Box::new(tls.connect(&self.host, stream).await?),
            None => Box::new(stream),
        })
    }
}

/// Deletes every key on the node (FLUSHALL), so a workload starts from an empty keyspace.
///
/// # Errors
/// The server cannot be reached or refuses.
pub async fn flush(endpoint: &Endpoint) -> Result<(), BoxError> {
    let (mut stream, _) = hello(endpoint, None).await?;
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 2, &Command::Admin(AdminCommand::FlushAll));
    stream.write_all(&buf).await?;
    stream.flush().await?;
    buf.clear();
    let decoder = FrameDecoder::default();
    loop {
        if let Some(frame) = decoder.decode(&mut buf)? {
            return match Value::decode(frame.body)? {
                Value::Ok => Ok(()),
                other => Err(format!("FLUSHALL answered {other:?}").into()),
            };
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("server closed during FLUSHALL".into());
        }
    }
}

/// Stocks every SKU of the key space (`key:0` ..) with more units than any run can sell.
///
/// # Errors
/// The server cannot be reached or refuses.
pub async fn stock_skus(endpoint: &Endpoint, keyspace: u64) -> Result<(), BoxError> {
    let (mut stream, _) = hello(endpoint, None).await?;
    let mut buf = BytesMut::new();
    for i in 0..keyspace {
        let command = Command::Inventory(InventoryCommand::Set {
            sku: Bytes::from(format!("key:{i}")),
            on_hand: crate::INV_STOCK,
            low: None,
        });
        encode_request(&mut buf, i as u32 + 1, &command);
    }
    stream.write_all(&buf).await?;
    stream.flush().await?;
    buf.clear();
    let decoder = FrameDecoder::default();
    let mut answered = 0;
    while answered < keyspace {
        match decoder.decode(&mut buf)? {
            Some(frame) => {
                if let Value::Error(e) = Value::decode(frame.body)? {
                    return Err(format!("INV.SET refused: {e}").into());
                }
                answered += 1;
            }
            None => {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err("server closed during INV.SET".into());
                }
            }
        }
    }
    Ok(())
}

/// Bytes the server says it holds, and its key count (INFO totals).
///
/// # Errors
/// The server cannot be reached or answers INFO oddly.
pub async fn memory(endpoint: &Endpoint) -> Result<(u64, u64), BoxError> {
    let (mut stream, _) = hello(endpoint, None).await?;
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 2, &Command::Admin(AdminCommand::Info));
    stream.write_all(&buf).await?;
    stream.flush().await?;
    buf.clear();
    let decoder = FrameDecoder::new(64 << 20);
    loop {
        if let Some(frame) = decoder.decode(&mut buf)? {
            let info = Value::decode(frame.body)?;
            let totals = info.get("totals").ok_or("INFO without totals")?;
            let field = |name| totals.get(name).and_then(Value::as_int).unwrap_or(0) as u64;
            // A geo member is the unit of a driver index, as a key is of the keyspace.
            return Ok((field("memory_bytes"), field("keys") + field("geo_members")));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("server closed during INFO".into());
        }
    }
}

/// Runs `workload` with `args.clients` connections.
///
/// # Errors
/// A connection could not be opened or broke mid-run.
pub async fn run(args: &Args, workload: Workload, budget: Budget) -> Result<Run, BoxError> {
    let endpoint = Endpoint::from_args(args)?;
    let seed = hello(&endpoint, None).await?.1;
    if seed.cluster {
        return run_cluster(args, workload, budget, &endpoint).await;
    }
    let shards = seed.shards;
    let pools = if args.unrouted { 1 } else { shards };
    let keys = Rc::new(match workload {
        Workload::GeoUpsert => drivers_by_shard(args.keyspace, pools),
        _ => keys_by_shard(args.keyspace, pools),
    });
    let targets = (0..args.clients)
        .map(|client| {
            let shard = (client % usize::from(shards)) as u16;
            let pool = keys[if args.unrouted { 0 } else { usize::from(shard) }].clone();
            let pinned = (!args.unrouted).then_some((shard, shards));
            (endpoint.clone(), pinned, pool)
        })
        .collect();
    start_connections(args, workload, budget, targets).await
}

/// One connection's place: where it connects, the shard it asks for (and the node's shard
/// count), and the keys it draws from.
type Place = (Endpoint, Option<(u16, u16)>, Rc<Vec<Bytes>>);

/// Connects every place and runs the workload on all of them until the budget is spent.
async fn start_connections(
    args: &Args,
    workload: Workload,
    budget: Budget,
    places: Vec<Place>,
) -> Result<Run, BoxError> {
    let value = Bytes::from(vec![b'x'; args.value_size]);
    let issued = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = match budget {
        Budget::Time(limit) => Some(started + limit),
        Budget::Requests(_) => None,
    };
    let limit = match budget {
        Budget::Requests(n) => n,
        Budget::Time(_) => u64::MAX,
    };
    let mut tasks = Vec::with_capacity(places.len());
    for (client, (endpoint, pinned, pool)) in places.into_iter().enumerate() {
        let (stream, _) = hello(&endpoint, pinned.map(|(shard, _)| shard)).await?;
        let connection = Connection {
            client,
            keyspace: args.keyspace,
            shard: pinned,
            sequence: 0,
            unconfirmed: None,
            stream,
            keys: pool,
            value: value.clone(),
            workload,
            pipeline: args.pipeline,
            issued: issued.clone(),
            limit,
            deadline,
            rng: SmallRng::seed_from_u64(client as u64 + 1),
            radius_m: args.radius,
            ttl_ms: args.ttl_ms,
        };
        tasks.push(tokio::task::spawn_local(connection.drive()));
    }
    gather(tasks, started).await
}

/// Against a cluster: the keys are grouped by the node and shard that own them (from the
/// slot map) and the connections spread over every node's shards, each drawing only keys
/// its own shard owns. Only the workloads that draw from the key pool run here.
async fn run_cluster(
    args: &Args,
    workload: Workload,
    budget: Budget,
    endpoint: &Endpoint,
) -> Result<Run, BoxError> {
    let runs_here = match args.follow {
        true => matches!(workload, Workload::Set | Workload::Get | Workload::Load),
        false => matches!(workload, Workload::Set | Workload::Get),
    };
    if !runs_here {
        return Err(format!(
            "{workload:?} does not run against a cluster yet (set and get do; load with --follow)"
        )
        .into());
    }
    let client =
        tessera_client::Client::connect_with(&endpoint.address, endpoint.client_config()).await?;
    if args.follow {
        return run_following(args, workload, budget, client).await;
    }
    let topology = client
        .topology()
        .ok_or("the node did not hand over a slot map")?;
    let mut pools: Vec<(String, u16, u16, Vec<Bytes>)> = Vec::new();
    for node in topology.nodes() {
        for shard in 0..node.shards {
            pools.push((node.addr.clone(), shard, node.shards, Vec::new()));
        }
    }
    for i in 0..args.keyspace {
        let key = Bytes::from(format!("key:{i}"));
        let node = topology.owner(tessera_cluster::key_slot(&key));
        let shard = shard_for_key(&key, node.shards);
        if let Some(pool) = pools.iter_mut().find(|p| p.0 == node.addr && p.1 == shard) {
            pool.3.push(key);
        }
    }
    let pools: Vec<(String, u16, u16, Rc<Vec<Bytes>>)> = pools
        .into_iter()
        .filter(|pool| !pool.3.is_empty())
        .map(|(addr, shard, shards, keys)| (addr, shard, shards, Rc::new(keys)))
        .collect();
    let places = (0..args.clients)
        .map(|client| {
            let (addr, shard, shards, keys) = &pools[client % pools.len()];
            (endpoint.at(addr), Some((*shard, *shards)), keys.clone())
        })
        .collect();
    start_connections(args, workload, budget, places).await
}

/// SET or GET of random keys (or LOAD's SET of each key once) through `client`, one
/// request at a time per task; a request counts once, whatever retries it took.
async fn run_following(
    args: &Args,
    workload: Workload,
    budget: Budget,
    client: tessera_client::Client,
) -> Result<Run, BoxError> {
    let started = Instant::now();
    let issued = Rc::new(std::cell::Cell::new(0u64));
    let value = Bytes::from(vec![b'x'; args.value_size]);
    let keyspace = args.keyspace.max(1);
    let tasks = (0..args.clients)
        .map(|task| {
            let (client, issued, value) = (client.clone(), issued.clone(), value.clone());
            tokio::task::spawn_local(async move {
                let mut run = Run::new();
                let mut rng = SmallRng::seed_from_u64(task as u64 + 1);
                loop {
                    let more = match budget {
                        Budget::Requests(total) => issued.get() < total,
                        Budget::Time(limit) => started.elapsed() < limit,
                    };
                    if !more {
                        break;
                    }
                    let position = issued.get();
                    issued.set(position + 1);
                    let key = match workload {
                        Workload::Load => format!("key:{position}"),
                        _ => format!("key:{}", rng.random_range(0..keyspace)),
                    };
                    let sent = Instant::now();
                    let answered = match workload {
                        Workload::Set | Workload::Load => {
                            client.set(key, value.clone()).await.map(drop)
                        }
                        _ => client.get(key).await.map(drop),
                    };
                    let micros = sent.elapsed().as_micros().max(1) as u64;
                    run.latency_us.record(micros.min(60_000_000)).ok();
                    run.completed += 1;
                    run.errors += u64::from(answered.is_err());
                }
                Ok::<Run, tessera_client::Error>(run)
            })
        })
        .collect();
    gather(tasks, started).await
}

/// Waits for every connection's run and adds them up; the elapsed time runs from `started`.
///
/// # Errors
/// The first connection that failed.
pub async fn gather<E>(
    tasks: Vec<tokio::task::JoinHandle<Result<Run, E>>>,
    started: Instant,
) -> Result<Run, BoxError>
where
    E: std::error::Error + 'static,
{
    let mut total = Run::new();
    for task in tasks {
        let part = task.await??;
        total.completed += part.completed;
        total.errors += part.errors;
        total.latency_us.add(&part.latency_us)?;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// A latency histogram in microseconds, up to a minute.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

/// Drivers `key:0 .. key:N-1`, grouped by the shard holding the partition they work in.
fn drivers_by_shard(drivers: u64, shards: u16) -> Vec<Rc<Vec<Bytes>>> {
    let mut groups = vec![Vec::new(); usize::from(shards)];
    for i in 0..drivers {
        let (lat, lng) = crate::geo_base(i);
        let partition = partition_of(lat, lng).expect("inside the box");
        let shard = partition_shard(crate::GEO_INDEX.as_bytes(), partition, shards);
        groups[usize::from(shard)].push(Bytes::from(format!("key:{i}")));
    }
    groups.into_iter().map(Rc::new).collect()
}

/// `key:0 .. key:N-1`, grouped by the shard that owns each.
fn keys_by_shard(keyspace: u64, shards: u16) -> Vec<Rc<Vec<Bytes>>> {
    let mut groups = vec![Vec::new(); usize::from(shards)];
    for i in 0..keyspace {
        let key = Bytes::from(format!("key:{i}"));
        groups[usize::from(shard_for_key(&key, shards))].push(key);
    }
    groups.into_iter().map(Rc::new).collect()
}

async fn hello(
    endpoint: &Endpoint,
    shard: Option<u16>,
) -> Result<(Box<dyn Stream>, HelloInfo), BoxError> {
    let mut stream = endpoint.open().await?;
    let mut buf = BytesMut::new();
    encode_request(
        &mut buf,
        1,
        &Command::Admin(AdminCommand::Hello {
            version: PROTOCOL_VERSION,
            shard,
            auth: endpoint.credentials.clone(),
        }),
    );
    stream.write_all(&buf).await?;
    stream.flush().await?;
    buf.clear();
    let decoder = FrameDecoder::default();
    loop {
        if let Some(frame) = decoder.decode(&mut buf)? {
            let value = Value::decode(frame.body)?;
            let info =
                HelloInfo::from_value(&value).ok_or_else(|| format!("HELLO refused: {value:?}"))?;
            return Ok((stream, info));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("server closed during HELLO".into());
        }
    }
}

struct Connection {
    client: usize,
    keyspace: u64,
    shard: Option<(u16, u16)>,
    sequence: u64,
    /// Inventory workload: the reservation the next request confirms.
    unconfirmed: Option<(Bytes, Bytes)>,
    stream: Box<dyn Stream>,
    keys: Rc<Vec<Bytes>>,
    value: Bytes,
    workload: Workload,
    pipeline: usize,
    issued: Rc<Cell<u64>>,
    limit: u64,
    deadline: Option<Instant>,
    rng: SmallRng,
    radius_m: u32,
    ttl_ms: Option<u64>,
}

impl Connection {
    /// A new timeline item, unique across connections, growing like a snowflake id.
    fn next_item(&mut self) -> Cursor {
        self.sequence += 1;
        let id = ((self.client as u64) << 40) | self.sequence;
        Cursor {
            score: id as i64,
            id,
        }
    }

    /// A key never used before that this connection's shard owns: a new impression id.
    fn fresh_key(&mut self) -> Bytes {
        loop {
            self.sequence += 1;
            let key = format!("imp:{}:{}", self.client, self.sequence);
            match self.shard {
                Some((shard, shards)) if shard_for_key(key.as_bytes(), shards) != shard => continue,
                _ => return Bytes::from(key),
            }
        }
    }

    /// A hash or sorted-set request on `key`.
    fn collection(&mut self, key: Bytes) -> Command {
        let size = crate::COLLECTION_SIZE;
        let pick = self.rng.random_range(0..size);
        let mut score = || Finite::new(self.rng.random_range(0.0..1e6)).expect("a number");
        match self.workload {
            Workload::Hload => Command::Hashes(HashCommand::Set {
                key,
                pairs: (0..size)
                    .map(|i| (Bytes::from(format!("f{i}")), self.value.clone()))
                    .collect(),
            }),
            Workload::Hset => Command::Hashes(HashCommand::Set {
                key,
                pairs: vec![(Bytes::from(format!("f{pick}")), self.value.clone())],
            }),
            Workload::Hget => Command::Hashes(HashCommand::Get {
                key,
                field: Bytes::from(format!("f{pick}")),
            }),
            Workload::Hincrby => Command::Hashes(HashCommand::IncrBy {
                key,
                field: Bytes::from_static(b"n"),
                delta: 1,
            }),
            Workload::Zload => {
                let mut scores = Vec::with_capacity(size);
                for i in 0..size {
                    scores.push((score(), Bytes::from(format!("m{i}"))));
                }
                Command::SortedSets(SortedSetCommand::Add {
                    key,
                    flags: 0,
                    pairs: scores,
                })
            }
            Workload::Zadd => Command::SortedSets(SortedSetCommand::Add {
                key,
                flags: 0,
                pairs: vec![(score(), Bytes::from(format!("m{pick}")))],
            }),
            Workload::Zincrby => Command::SortedSets(SortedSetCommand::IncrBy {
                key,
                delta: Finite::new(1.0).expect("a number"),
                member: Bytes::from(format!("m{pick}")),
            }),
            Workload::Zrange => Command::SortedSets(SortedSetCommand::Range {
                key,
                selection: Selection::Rank { start: 0, stop: 9 },
                rev: false,
                limit: None,
                with_scores: false,
            }),
            _ => Command::SortedSets(SortedSetCommand::Rank {
                key,
                member: Bytes::from(format!("m{pick}")),
                rev: false,
                with_score: false,
            }),
        }
    }

    /// GEO.UPSERT of `member` to `(lat, lng)`.
    fn place(&mut self, member: Bytes, (lat, lng): (f64, f64)) -> Command {
        Command::Geo(GeoCommand::Upsert {
            index: Bytes::from_static(crate::GEO_INDEX.as_bytes()),
            member,
            at: GeoPoint::new(lat, lng).expect("inside the box"),
            status: None,
            ttl_ms: None,
            meta: None,
        })
    }

    /// A random point of the box whose partition this connection's shard holds, so a
    /// routed query starts where its answer lives (as the client crate routes it).
    fn point_here(&mut self) -> (f64, f64) {
        loop {
            let (lat, lng) = crate::geo_point(&mut self.rng);
            let Some((shard, shards)) = self.shard else {
                return (lat, lng);
            };
            let partition = partition_of(lat, lng).expect("inside the box");
            if partition_shard(crate::GEO_INDEX.as_bytes(), partition, shards) == shard {
                return (lat, lng);
            }
        }
    }

    async fn drive(mut self) -> Result<Run, std::io::Error> {
        let mut run = Run::new();
        let decoder = FrameDecoder::default();
        let mut out = BytesMut::with_capacity(64 * 1024);
        let mut inbuf = BytesMut::with_capacity(64 * 1024);
        let mut next_id = 1u32;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let taken = self.issued.get();
            let batch = (self.limit.saturating_sub(taken)).min(self.pipeline as u64) as usize;
            if batch == 0 {
                break;
            }
            self.issued.set(taken + batch as u64);
            out.clear();
            for position in taken..taken + batch as u64 {
                let key = self.keys[self.rng.random_range(0..self.keys.len())].clone();
                let command = match self.workload {
                    Workload::Get => Command::Keys(KeyCommand::Get(key)),
                    Workload::Set => Command::Keys(KeyCommand::Set(SetArgs {
                        key,
                        value: self.value.clone(),
                        condition: Default::default(),
                        expiry: self.ttl_ms.map_or(Default::default(), SetExpiry::In),
                        get: false,
                    })),
                    Workload::Rl => Command::Limits(LimitCommand::Check(RateLimit {
                        key,
                        algorithm: Algorithm::Sliding,
                        cost: 1,
                        burst: 0,
                        tiers: Tiers::new(&[Tier {
                            limit: crate::RL_LIMIT,
                            window_ms: crate::RL_WINDOW_MS,
                        }])
                        .expect("one tier"),
                    })),
                    Workload::Dedup => Command::Dedup(DedupCommand::Check {
                        key: self.fresh_key(),
                        ttl_ms: crate::DEDUP_TTL_MS,
                    }),
                    Workload::TlPush => Command::Timelines(TimelineCommand::Push {
                        key,
                        item: self.next_item(),
                        cap: Some(crate::TIMELINE_CAP),
                    }),
                    Workload::TlRange => Command::Timelines(TimelineCommand::Range {
                        key,
                        before: None,
                        after: None,
                        limit: 20,
                    }),
                    Workload::Fanout => {
                        // Followers anywhere in the key space: the server splits by shard.
                        let keys = (0..crate::FANOUT_WIDTH)
                            .map(|_| {
                                Bytes::from(format!(
                                    "key:{}",
                                    self.rng.random_range(0..self.keyspace)
                                ))
                            })
                            .collect();
                        Command::Timelines(TimelineCommand::Fanout {
                            item: self.next_item(),
                            cap: Some(crate::TIMELINE_CAP),
                            keys,
                        })
                    }
                    Workload::Beat => Command::Presence(PresenceCommand::Beat {
                        user: key,
                        ttl_ms: 30_000,
                        grace_ms: 0,
                        meta: None,
                    }),
                    Workload::Who => Command::Presence(PresenceCommand::Get(
                        (0..100)
                            .map(|_| {
                                Bytes::from(format!(
                                    "key:{}",
                                    self.rng.random_range(0..self.keyspace)
                                ))
                            })
                            .collect(),
                    )),
                    Workload::Load => Command::Keys(KeyCommand::Set(SetArgs {
                        key: Bytes::from(format!("key:{position}")),
                        value: self.value.clone(),
                        condition: Default::default(),
                        expiry: Default::default(),
                        get: false,
                    })),
                    Workload::GeoLoad => {
                        let at = crate::geo_base(position);
                        self.place(Bytes::from(format!("key:{position}")), at)
                    }
                    Workload::GeoUpsert => {
                        let driver: u64 =
                            key[4..].iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
                        let at = crate::geo_fix(driver, &mut self.rng);
                        self.place(key, at)
                    }
                    Workload::GeoNear => {
                        let (lat, lng) = self.point_here();
                        Command::Geo(GeoCommand::Near(GeoNear {
                            index: Bytes::from_static(crate::GEO_INDEX.as_bytes()),
                            area: GeoArea {
                                center: GeoPoint::new(lat, lng).expect("inside the box"),
                                radius_m: self.radius_m,
                            },
                            k: crate::GEO_K,
                            status: None,
                            with_dist: false,
                            with_meta: false,
                            claim_ms: None,
                        }))
                    }
                    Workload::Hload
                    | Workload::Hset
                    | Workload::Hget
                    | Workload::Hincrby
                    | Workload::Zload
                    | Workload::Zadd
                    | Workload::Zincrby
                    | Workload::Zrange
                    | Workload::Zrank => self.collection(key),
                    // Reserve, then confirm that reservation in the next request: pairs.
                    Workload::Inv => match self.unconfirmed.take() {
                        Some((sku, id)) => {
                            Command::Inventory(InventoryCommand::Confirm { sku, id })
                        }
                        None => {
                            self.sequence += 1;
                            let id = Bytes::from(format!("c{}-{}", self.client, self.sequence));
                            self.unconfirmed = Some((key.clone(), id.clone()));
                            Command::Inventory(InventoryCommand::Reserve {
                                sku: key,
                                qty: 1,
                                ttl_ms: crate::RESERVATION_TTL_MS,
                                id: Some(id),
                            })
                        }
                    },
                };
                encode_request(&mut out, next_id, &command);
                next_id = next_id.wrapping_add(1).max(1);
            }
            let sent = Instant::now();
            self.stream.write_all(&out).await?;
            self.stream.flush().await?;
            let mut answered = 0;
            while answered < batch {
                let frame = match decoder.decode(&mut inbuf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => {
                        if self.stream.read_buf(&mut inbuf).await? == 0 {
                            return Err(std::io::Error::other("server closed the connection"));
                        }
                        continue;
                    }
                    Err(error) => return Err(std::io::Error::other(error.to_string())),
                };
                answered += 1;
                let micros = sent.elapsed().as_micros() as u64;
                run.latency_us.saturating_record(micros.max(1));
                run.completed += 1;
                if frame.body.first() == Some(&tessera_protocol::value::tag::ERROR) {
                    run.errors += 1;
                }
            }
        }
        Ok(run)
    }
}
