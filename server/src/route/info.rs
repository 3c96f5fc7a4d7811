//! INFO: node facts, persistence and replication, and every shard's counters, rendered
//! as one map.

use tessera_protocol::Value;

use crate::route::replicate::ReplicationStats;
use crate::shard::durable::PersistStats;
use crate::shard::stats::ShardStats;
use crate::shard::NodeInfo;

/// The log and snapshot figures of every shard, combined: sums of counts, the worst lag,
/// the oldest last snapshot, and the first failure.
fn persistence(snapshots: &[ShardStats]) -> Value {
    let shards: Vec<&PersistStats> = snapshots.iter().map(|s| &s.persistence).collect();
    let sum = |field: fn(&PersistStats) -> u64| shards.iter().map(|p| field(p)).sum::<u64>();
    let max = |field: fn(&PersistStats) -> u64| shards.iter().map(|p| field(p)).max().unwrap_or(0);
    let int = |n: u64| Value::Int(n as i64);
    let enabled = shards.iter().all(|p| p.enabled);
    let failing = shards.iter().find_map(|p| p.failing.clone());
    let last_snapshot = shards.iter().map(|p| p.last_snapshot_ms).min().unwrap_or(0);
    let field = |name: &str, value: Value| (Value::text(name), value);
    Value::Map(vec![
        field("enabled", Value::Bool(enabled)),
        field(
            "appendfsync",
            Value::text(
                shards
                    .first()
                    .map_or("", |p| if enabled { p.fsync } else { "" }),
            ),
        ),
        field(
            "log_status",
            Value::text(failing.unwrap_or_else(|| "ok".into())),
        ),
        field("log_bytes", int(sum(|p| p.log_bytes))),
        field("log_writes", int(sum(|p| p.log_writes))),
        field(
            "log_bytes_since_snapshot",
            int(sum(|p| p.log_bytes_since_snapshot)),
        ),
        field("fsyncs", int(sum(|p| p.fsyncs))),
        field("fsync_lag_ms", int(max(|p| p.fsync_lag_ms))),
        field("write_errors", int(sum(|p| p.write_errors))),
        field(
            "snapshot_in_progress",
            Value::Bool(shards.iter().any(|p| p.snapshot_running)),
        ),
        field("snapshots", int(sum(|p| p.snapshots))),
        field("snapshot_errors", int(sum(|p| p.snapshot_errors))),
        field("last_snapshot_unix_s", int(last_snapshot / 1000)),
        field(
            "last_snapshot_duration_ms",
            int(max(|p| p.last_snapshot_duration_ms)),
        ),
        field("last_snapshot_bytes", int(sum(|p| p.last_snapshot_bytes))),
        field(
            "last_snapshot_entries",
            int(sum(|p| p.last_snapshot_entries)),
        ),
    ])
}

/// The replication figures of every shard, combined: as a replica, the primary followed,
/// offsets, lag and syncs summed over shards; as a primary, the stream and each replica's
/// lag summed over shards (and the longest it has been silent on any).
fn replication(node: &NodeInfo, snapshots: &[ShardStats]) -> Value {
    let shards: Vec<&ReplicationStats> = snapshots.iter().map(|s| &s.replication).collect();
    let sum = |field: fn(&ReplicationStats) -> u64| shards.iter().map(|r| field(r)).sum::<u64>();
    let int = |n: u64| Value::Int(n as i64);
    let field = |name: &str, value: Value| (Value::text(name), value);
    let topology = node.cluster.as_ref().map(|c| (c.id, c.topology.load().1));
    let (me, role) = match &topology {
        Some((me, topology)) => match topology.as_ref() {
            Some(t) if t.primary_of(*me).is_some() => (*me, "replica"),
            Some(t) if t.slots_of(*me) > 0 => (*me, "primary"),
            _ => (*me, "none"),
        },
        None => (0, "none"),
    };
    let primary = topology
        .as_ref()
        .and_then(|(_, t)| t.as_ref().as_ref()?.primary_of(me));
    let mut replicas: Vec<(u64, u64, u64)> = Vec::new();
    for lag in shards.iter().flat_map(|r| &r.replicas) {
        match replicas.iter_mut().find(|(id, _, _)| *id == lag.replica) {
            Some((_, bytes, silent)) => {
                *bytes += lag.lag_bytes;
                *silent = (*silent).max(lag.seen_ms_ago);
            }
            None => replicas.push((lag.replica, lag.lag_bytes, lag.seen_ms_ago)),
        }
    }
    replicas.sort_unstable();
    let replicas = replicas
        .into_iter()
        .map(|(id, lag_bytes, silent)| {
            Value::Map(vec![
                field("id", int(id)),
                field("lag_bytes", int(lag_bytes)),
                field("last_ack_ms_ago", int(silent)),
            ])
        })
        .collect();
    Value::Map(vec![
        field("role", Value::text(role)),
        field("primary", primary.map_or(Value::Nil, int)),
        field(
            "link",
            Value::text(if primary.is_none() {
                ""
            } else if shards.iter().all(|r| r.follower.linked) {
                "up"
            } else {
                "down"
            }),
        ),
        field("offset", int(sum(|r| r.follower.offset))),
        field("lag_bytes", int(sum(|r| r.follower.lag_bytes))),
        field(
            "last_pull_ms_ago",
            shards
                .iter()
                .map(|r| r.pulled_ms_ago)
                .max()
                .flatten()
                .map_or(Value::Nil, int),
        ),
        field("full_syncs", int(sum(|r| r.follower.full_syncs))),
        field("records_applied", int(sum(|r| r.follower.records))),
        field("stream_offset", int(sum(|r| r.stream_end))),
        field("backlog_bytes", int(sum(|r| r.backlog_bytes))),
        field("copies_taken", int(sum(|r| r.copies_taken))),
        field("replicas", Value::Array(replicas)),
    ])
}

/// Node facts and totals rendered for INFO, from every shard's snapshot in shard order
/// and the heap bytes read when the request arrived.
pub fn render(node: &NodeInfo, snapshots: &[ShardStats], used_memory: usize) -> Value {
    let mut total = ShardStats::new();
    for snapshot in snapshots {
        total += snapshot;
    }
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
        (Value::text("used_memory"), Value::Int(used_memory as i64)),
        (Value::text("maxmemory"), Value::Int(node.maxmemory as i64)),
        (
            Value::text("maxmemory_policy"),
            Value::text(node.eviction.name()),
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
        (Value::text("persistence"), persistence(snapshots)),
        (Value::text("replication"), replication(node, snapshots)),
        (Value::text("totals"), Value::Map(total.summary())),
        (Value::text("latency_buckets"), total.latency_buckets()),
        (Value::text("commands"), total.command_table()),
        (Value::text("shards"), Value::Array(shards)),
    ])
}
