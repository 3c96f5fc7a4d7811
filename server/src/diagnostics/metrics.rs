//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1, answered by shard 0 from every
//! shard's plain counters, gathered and summed when scraped (nothing on a request's path
//! changes for it), in the OpenMetrics text format. Names follow redis_exporter's with a
//! `tessera_` prefix where Redis has the same figure.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tessera_protocol::COMMANDS;

use super::latency::Latest;
use crate::route::replicate::ReplicationStats;
use crate::shard::durable::PersistStats;
use crate::shard::stats::ShardStats;
use crate::shard::{NodeInfo, Shard};

use crate::shard::stats::{Buckets, LATENCY_BUCKETS};

/// One command's figures on one shard: counts, and its latency in the buckets above
/// (one more for slower than the last bound).
#[derive(Debug, Clone)]
struct CommandSample {
    index: usize,
    calls: u64,
    errors: u64,
    latency_sum_ns: u64,
    buckets: Buckets,
}

/// What one shard answers a scrape with.
#[derive(Debug, Clone)]
pub struct Sample {
    counters: ShardStats,
    commands: Vec<CommandSample>,
    output_buffer_bytes: u64,
    slowlog_len: u64,
    slowlog_last_id: u64,
    latency: Vec<(&'static str, Latest)>,
}

/// This shard's figures for a scrape: only the commands it has served carry histograms,
/// already folded into the endpoint's buckets.
pub fn sample(shard: &Shard) -> Sample {
    let commands = shard
        .stats
        .borrow()
        .commands
        .iter()
        .enumerate()
        .filter(|(_, stats)| stats.calls > 0)
        .map(|(index, stats)| CommandSample {
            index,
            calls: stats.calls,
            errors: stats.errors,
            latency_sum_ns: stats.latency_sum_ns,
            buckets: stats.buckets(),
        })
        .collect();
    let log = shard.diagnostics.slowlog.borrow();
    Sample {
        counters: shard.scalar_snapshot(),
        commands,
        output_buffer_bytes: shard.output_buffer_bytes(),
        slowlog_len: log.len() as u64,
        slowlog_last_id: log.last_id(),
        latency: shard.keyspace.borrow().latency.latest(),
    }
}

/// Every shard's sample with the node's own facts, ready to encode.
#[derive(Debug)]
struct Scrape {
    node: NodeFacts,
    shards: Vec<Sample>,
}

/// What the node knows of itself at the scrape.
#[derive(Debug, Default)]
struct NodeFacts {
    uptime_s: u64,
    shards: u64,
    maxclients: u64,
    maxmemory: u64,
    heap_bytes: u64,
    resident_bytes: u64,
    cluster: Option<ClusterFacts>,
}

#[derive(Debug, Default)]
struct ClusterFacts {
    epoch: u64,
    known_nodes: u64,
    slots_owned: u64,
    slots_migrating: u64,
}

/// Resident set size, from `/proc/self/status` (0 where it cannot be read).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn node_facts(node: &NodeInfo, epoch: u64) -> NodeFacts {
    let cluster = node.cluster.as_ref().map(|cluster| {
        let topology = cluster.topology.load().1;
        let (known_nodes, slots_owned) = topology.as_ref().as_ref().map_or((0, 0), |t| {
            (t.nodes().len() as u64, t.slots_of(cluster.id) as u64)
        });
        let slots_migrating = (0..usize::from(tessera_cluster::SLOT_COUNT))
            .filter(|&slot| cluster.paused.contains(slot))
            .count() as u64;
        ClusterFacts {
            epoch,
            known_nodes,
            slots_owned,
            slots_migrating,
        }
    });
    NodeFacts {
        uptime_s: node.started.elapsed().as_secs(),
        shards: u64::from(node.shards),
        maxclients: node.maxclients as u64,
        maxmemory: node.maxmemory as u64,
        heap_bytes: crate::memory::used() as u64,
        resident_bytes: resident_bytes(),
        cluster,
    }
}

/// Writes one family of one series each, in the registry's prefix.
struct Families<'a, 'e> {
    encoder: &'a mut DescriptorEncoder<'e>,
}

impl Families<'_, '_> {
    fn counter(&mut self, name: &str, help: &str, value: u64) -> std::fmt::Result {
        let mut metric = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        metric.encode_counter::<NoLabelSet, _, u64>(&value, None)
    }

    fn gauge(&mut self, name: &str, help: &str, value: i64) -> std::fmt::Result {
        let mut metric = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        metric.encode_gauge(&value)
    }

    fn gauge_seconds(&mut self, name: &str, help: &str, ms: u64) -> std::fmt::Result {
        let mut metric = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        metric.encode_gauge(&(ms as f64 / 1000.0))
    }

    fn labelled<S: EncodeLabelSet, V>(
        &mut self,
        (name, help, kind): (&str, &str, MetricType),
        series: impl IntoIterator<Item = (S, V)>,
        mut write: impl FnMut(&mut prometheus_client::encoding::MetricEncoder, &V) -> std::fmt::Result,
    ) -> std::fmt::Result {
        let mut metric = self.encoder.encode_descriptor(name, help, None, kind)?;
        for (labels, value) in series {
            let mut one = metric.encode_family(&labels)?;
            write(&mut one, &value)?;
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let mut total = ShardStats::new();
        for shard in &self.shards {
            total += &shard.counters;
        }
        let mut out = Families {
            encoder: &mut encoder,
        };
        encode_clients(&mut out, &self.node, &total)?;
        encode_memory_and_keys(&mut out, &self.node, &total)?;
        encode_traffic(&mut out, &total, &self.shards)?;
        self.encode_commands(&mut out)?;
        self.encode_diagnostics(&mut out)?;
        encode_persistence(&mut out, &self.shards)?;
        encode_replication(&mut out, &self.shards)?;
        encode_cluster(&mut out, self.node.cluster.as_ref())
    }
}

fn int(n: u64) -> i64 {
    n as i64
}

fn encode_clients(out: &mut Families, node: &NodeFacts, total: &ShardStats) -> std::fmt::Result {
    out.gauge(
        "uptime_in_seconds",
        "Seconds since the node started.",
        int(node.uptime_s),
    )?;
    out.gauge("shards", "Shards (threads) serving.", int(node.shards))?;
    out.gauge(
        "connected_clients",
        "Client connections open now.",
        int(total.connections),
    )?;
    out.gauge(
        "max_clients",
        "The maxclients setting.",
        int(node.maxclients),
    )?;
    out.counter(
        "connections_received",
        "Connections accepted since start.",
        total.connections_total,
    )?;
    out.counter(
        "rejected_connections",
        "Connections refused (maxclients, protected mode).",
        total.connections_rejected,
    )?;
    out.counter(
        "auth_failures",
        "Failed authentications.",
        total.auth_failures,
    )?;
    out.counter(
        "acl_denied",
        "Requests refused by ACL rules.",
        total.acl_denied,
    )?;
    out.counter(
        "bad_requests",
        "Requests whose body could not be decoded.",
        total.bad_requests,
    )?;
    out.counter(
        "output_limit_closes",
        "Connections closed for a reply past the output hard limit.",
        total.output_limit_closes,
    )?;
    out.gauge(
        "blocked_clients",
        "Clients waiting in a blocking pop.",
        int(total.blocked_clients),
    )?;
    Ok(())
}

fn encode_memory_and_keys(
    out: &mut Families,
    node: &NodeFacts,
    total: &ShardStats,
) -> std::fmt::Result {
    out.gauge(
        "memory_used_bytes",
        "Bytes the keyspace accounts for its data.",
        int(total.memory_bytes),
    )?;
    out.gauge(
        "memory_allocated_bytes",
        "Heap bytes the allocator has handed out (everything: data, buffers).",
        int(node.heap_bytes),
    )?;
    out.gauge(
        "memory_used_rss_bytes",
        "Resident set size of the process.",
        int(node.resident_bytes),
    )?;
    out.gauge(
        "memory_max_bytes",
        "The maxmemory setting, in bytes.",
        int(node.maxmemory),
    )?;
    out.labelled(
        ("db_keys", "Keys stored.", MetricType::Gauge),
        [([("db", "db0")], total.keys)],
        |m, v| m.encode_gauge(&(*v as i64)),
    )?;
    out.labelled(
        (
            "db_keys_expiring",
            "Keys with a deadline.",
            MetricType::Gauge,
        ),
        [([("db", "db0")], total.volatile_keys)],
        |m, v| m.encode_gauge(&(*v as i64)),
    )?;
    out.counter(
        "expired_keys",
        "Keys removed because their deadline passed.",
        total.expired_keys,
    )?;
    out.counter(
        "evicted_keys",
        "Keys removed to stay within maxmemory.",
        total.evicted_keys,
    )?;
    Ok(())
}

fn encode_traffic(out: &mut Families, total: &ShardStats, shards: &[Sample]) -> std::fmt::Result {
    out.counter(
        "net_input_bytes",
        "Bytes read from client connections.",
        total.net_input_bytes,
    )?;
    out.counter(
        "net_output_bytes",
        "Bytes written to client connections.",
        total.net_output_bytes,
    )?;
    out.counter(
        "cross_shard_calls",
        "Calls a shard made to another shard (forwarded requests, parts of split ones).",
        total.forwarded_out,
    )?;
    out.counter(
        "pushes",
        "Push frames written to connections (pub/sub, presence watches).",
        total.pushes,
    )?;
    out.gauge(
        "client_output_buffer_bytes",
        "Reply and push bytes waiting in connections' buffers.",
        int(shards.iter().map(|s| s.output_buffer_bytes).sum()),
    )?;
    out.counter(
        "pubsub_relay_dropped",
        "PUBLISH messages not passed on to a peer node.",
        total.pubsub_relay_dropped,
    )?;
    out.gauge(
        "geo_members",
        "Members of the driver geo indexes.",
        int(total.geo_members),
    )?;
    out.gauge(
        "presence_watched_users",
        "Users watched for presence changes.",
        int(total.watched_users),
    )?;
    Ok(())
}

fn encode_cluster(out: &mut Families, cluster: Option<&ClusterFacts>) -> std::fmt::Result {
    if let Some(cluster) = cluster {
        out.gauge(
            "cluster_enabled",
            "Whether the node is a cluster member.",
            1,
        )?;
        out.gauge(
            "cluster_current_epoch",
            "The epoch of the topology in force.",
            int(cluster.epoch),
        )?;
        out.gauge(
            "cluster_known_nodes",
            "Nodes in the topology.",
            int(cluster.known_nodes),
        )?;
        out.gauge(
            "cluster_slots_owned",
            "Slots this node serves.",
            int(cluster.slots_owned),
        )?;
        out.gauge(
            "cluster_slots_migrating",
            "Slots paused while a migration copies them.",
            int(cluster.slots_migrating),
        )?;
    } else {
        out.gauge(
            "cluster_enabled",
            "Whether the node is a cluster member.",
            0,
        )?;
    }
    Ok(())
}

impl Scrape {
    fn commands(&self) -> Vec<CommandSample> {
        let mut merged: Vec<CommandSample> = Vec::new();
        for sample in self.shards.iter().flat_map(|s| &s.commands) {
            match merged.iter_mut().find(|m| m.index == sample.index) {
                Some(seen) => {
                    seen.calls += sample.calls;
                    seen.errors += sample.errors;
                    seen.latency_sum_ns += sample.latency_sum_ns;
                    for (mine, theirs) in seen.buckets.iter_mut().zip(&sample.buckets) {
                        *mine += theirs;
                    }
                }
                None => merged.push(sample.clone()),
            }
        }
        merged.sort_unstable_by_key(|m| m.index);
        merged
    }

    fn encode_commands(&self, out: &mut Families) -> std::fmt::Result {
        let commands = self.commands();
        let label = |m: &CommandSample| [("cmd", COMMANDS[m.index].name.to_ascii_lowercase())];
        out.labelled(
            (
                "commands",
                "Requests completed, per command.",
                MetricType::Counter,
            ),
            commands.iter().map(|m| (label(m), m.calls)),
            |e, v| e.encode_counter::<NoLabelSet, _, u64>(v, None),
        )?;
        out.labelled(
            (
                "commands_failed_calls",
                "Requests answered with an error, per command.",
                MetricType::Counter,
            ),
            commands.iter().map(|m| (label(m), m.errors)),
            |e, v| e.encode_counter::<NoLabelSet, _, u64>(v, None),
        )?;
        out.labelled(
            (
                "commands_duration_seconds",
                "Seconds spent serving each command, from a batch's read to its reply.",
                MetricType::Counter,
            ),
            commands
                .iter()
                .map(|m| (label(m), m.latency_sum_ns as f64 / 1e9)),
            |e, v| e.encode_counter::<NoLabelSet, _, f64>(v, None),
        )?;
        out.labelled(
            (
                "commands_latency_seconds",
                "Server-side latency per command.",
                MetricType::Histogram,
            ),
            commands.iter().map(|m| (label(m), m)),
            |e, m| {
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::MAX])
                    .zip(m.buckets)
                    .collect();
                e.encode_histogram::<NoLabelSet>(
                    m.latency_sum_ns as f64 / 1e9,
                    m.calls,
                    &buckets,
                    None,
                )
            },
        )
    }

    fn encode_diagnostics(&self, out: &mut Families) -> std::fmt::Result {
        out.gauge(
            "slowlog_length",
            "Slow log entries held, all shards together.",
            self.shards.iter().map(|s| s.slowlog_len as i64).sum(),
        )?;
        out.gauge(
            "slowlog_last_id",
            "The newest slow log entry's id.",
            self.shards
                .iter()
                .map(|s| s.slowlog_last_id as i64)
                .max()
                .unwrap_or(0),
        )?;
        let rows: Vec<(&'static str, Latest)> =
            super::latency::merged_latest(self.shards.iter().map(|s| s.latency.clone()).collect());
        out.labelled(
            (
                "latency_spike_last",
                "Unix seconds of each latency event's latest spike.",
                MetricType::Gauge,
            ),
            rows.iter()
                .map(|(event, latest)| ([("event_name", *event)], latest.at as i64)),
            |e, v| e.encode_gauge(v),
        )?;
        out.labelled(
            (
                "latency_spike_duration_seconds",
                "How long each latency event's latest spike took.",
                MetricType::Gauge,
            ),
            rows.iter()
                .map(|(event, latest)| ([("event_name", *event)], latest.ms as f64 / 1000.0)),
            |e, v| e.encode_gauge(v),
        )
    }
}

fn encode_persistence(out: &mut Families, shards: &[Sample]) -> std::fmt::Result {
    let all: Vec<&PersistStats> = shards.iter().map(|s| &s.counters.persistence).collect();
    let sum = |field: fn(&PersistStats) -> u64| all.iter().map(|p| field(p)).sum::<u64>();
    let max = |field: fn(&PersistStats) -> u64| all.iter().map(|p| field(p)).max().unwrap_or(0);
    let enabled = all.iter().all(|p| p.enabled);
    out.gauge(
        "aof_enabled",
        "Whether changes are logged.",
        i64::from(enabled),
    )?;
    if !enabled {
        return Ok(());
    }
    out.counter(
        "aof_written_bytes",
        "Log bytes written.",
        sum(|p| p.log_bytes),
    )?;
    out.counter("aof_writes", "Writes to the log.", sum(|p| p.log_writes))?;
    out.counter("aof_fsyncs", "Syncs of the log.", sum(|p| p.fsyncs))?;
    out.gauge_seconds(
        "aof_fsync_lag_seconds",
        "How long the oldest unsynced write has waited for a sync, on the worst shard.",
        max(|p| p.fsync_lag_ms),
    )?;
    out.counter(
        "aof_write_errors",
        "Failed writes and syncs of the log.",
        sum(|p| p.write_errors),
    )?;
    out.gauge(
        "aof_bytes_since_snapshot",
        "Log bytes written since the last snapshot began.",
        sum(|p| p.log_bytes_since_snapshot) as i64,
    )?;
    out.gauge(
        "rdb_bgsave_in_progress",
        "Whether a snapshot is being taken.",
        i64::from(all.iter().any(|p| p.snapshot_running)),
    )?;
    out.counter("rdb_saves", "Snapshots completed.", sum(|p| p.snapshots))?;
    out.counter(
        "rdb_save_errors",
        "Snapshots that failed.",
        sum(|p| p.snapshot_errors),
    )?;
    out.gauge(
        "rdb_last_save_timestamp_seconds",
        "Unix seconds of the oldest shard's last completed snapshot (0: a shard has none).",
        all.iter().map(|p| p.last_snapshot_ms).min().unwrap_or(0) as i64 / 1000,
    )?;
    out.gauge_seconds(
        "rdb_last_save_duration_seconds",
        "How long the slowest shard's last snapshot took.",
        max(|p| p.last_snapshot_duration_ms),
    )?;
    out.gauge(
        "rdb_last_save_bytes",
        "Bytes of the last snapshot, all shards together.",
        sum(|p| p.last_snapshot_bytes) as i64,
    )
}

fn encode_replication(out: &mut Families, shards: &[Sample]) -> std::fmt::Result {
    let all: Vec<&ReplicationStats> = shards.iter().map(|s| &s.counters.replication).collect();
    let mut lags: Vec<(u64, u64, u64)> = Vec::new();
    for lag in all.iter().flat_map(|r| &r.replicas) {
        match lags.iter_mut().find(|(id, _, _)| *id == lag.replica) {
            Some((_, bytes, silent)) => {
                *bytes += lag.lag_bytes;
                *silent = (*silent).max(lag.seen_ms_ago);
            }
            None => lags.push((lag.replica, lag.lag_bytes, lag.seen_ms_ago)),
        }
    }
    lags.sort_unstable();
    out.gauge(
        "connected_slaves",
        "Replicas following this node.",
        lags.len() as i64,
    )?;
    out.labelled(
        (
            "connected_slave_lag_bytes",
            "Stream bytes each replica has still to apply, all shards together.",
            MetricType::Gauge,
        ),
        lags.iter()
            .map(|(id, bytes, _)| ([("slave_id", id.to_string())], *bytes as i64)),
        |e, v| e.encode_gauge(v),
    )?;
    out.labelled(
        (
            "connected_slave_lag_seconds",
            "Seconds since each replica last acknowledged, on its most silent shard.",
            MetricType::Gauge,
        ),
        lags.iter()
            .map(|(id, _, silent)| ([("slave_id", id.to_string())], *silent as f64 / 1000.0)),
        |e, v| e.encode_gauge(v),
    )?;
    out.counter(
        "replica_records_applied",
        "Records applied from a primary's stream, as a replica.",
        all.iter().map(|r| r.follower.records).sum(),
    )
}

/// Gathers every shard's sample (shard 0's own without a hop) and encodes them.
async fn scrape(shard: &Rc<Shard>) -> String {
    let answers = shard.call_every(|target: &Rc<Shard>| sample(target));
    shard.flush();
    let mut shards = Vec::with_capacity(answers.len());
    for answer in answers {
        if let Some(sample) = answer.await {
            shards.push(sample);
        }
    }
    let scrape = Scrape {
        node: node_facts(&shard.node, shard.cluster_epoch()),
        shards,
    };
    let mut registry = Registry::with_prefix("tessera");
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        text.clear();
        let _ = writeln!(text, "# EOF");
    }
    text
}

/// The OpenMetrics text format's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn answer(
    shard: Rc<Shard>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => Response::builder()
            .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(scrape(&shard).await))),
        (&hyper::Method::GET, _) => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n"))),
        _ => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .body(Full::new(Bytes::from_static(b"only GET is served\n"))),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// Metrics connections served at once; one past it is closed at once. Prometheus keeps
/// one per target, so this only ever stops a client opening connections to use up the
/// node's descriptors.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a metrics client may take to send a request's headers, or sit idle between
/// requests, before its connection is closed.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `/metrics` on `listener` from shard 0 until the shard stops. Under protected
/// mode (bound beyond loopback with no password) only loopback scrapers are served.
pub async fn serve(shard: Rc<Shard>, listener: tokio::net::TcpListener, protected: bool) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if shard.is_stopping() {
            return;
        }
        if !crate::server::admits(protected && shard.node.acl.default_is_open(), peer.ip()) {
            continue;
        }
        if open.get() >= MAX_CONNECTIONS {
            tracing::debug!(%peer, "metrics connection refused: {MAX_CONNECTIONS} are open");
            continue;
        }
        open.set(open.get() + 1);
        let (shard, open) = (shard.clone(), open.clone());
        tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |request| answer(shard.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended");
            }
            open.set(open.get() - 1);
        });
    }
}
