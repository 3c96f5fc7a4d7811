//! Per-shard counters and latency histograms that add up across shards with `+=`.

use std::ops::AddAssign;

use hdrhistogram::Histogram;
use tessera_protocol::{Value, COMMANDS};

/// Highest latency recorded, in nanoseconds (10 s); slower requests are clamped to it.
const MAX_LATENCY_NS: u64 = 10_000_000_000;

/// Upper bounds of the latency buckets INFO and the metrics endpoint report, in seconds
/// (Prometheus's own series, from 10 µs).
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Requests per latency bucket, the last for those slower than every bound.
pub type Buckets = [u64; LATENCY_BUCKETS.len() + 1];

/// One command's counters on one shard.
#[derive(Debug, Clone)]
pub struct CommandStats {
    /// Requests completed.
    pub calls: u64,
    /// Requests that ended in an error reply.
    pub errors: u64,
    /// Server-side latency from decode to reply, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Every request's latency added up, in nanoseconds (the histogram's buckets are
    /// approximate; this is exact).
    pub latency_sum_ns: u64,
}

impl CommandStats {
    /// The latency histogram folded into `LATENCY_BUCKETS` (not cumulative).
    pub fn buckets(&self) -> Buckets {
        let bounds_ns = LATENCY_BUCKETS.map(|seconds| (seconds * 1e9) as u64);
        let mut buckets = [0; LATENCY_BUCKETS.len() + 1];
        for recorded in self.latency.iter_recorded() {
            let ns = recorded.value_iterated_to();
            buckets[bounds_ns.partition_point(|&bound| bound < ns)] += recorded.count_at_value();
        }
        buckets
    }
}

impl Default for CommandStats {
    fn default() -> Self {
        Self {
            calls: 0,
            errors: 0,
            latency_sum_ns: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 2)
                .expect("static histogram bounds are valid"),
        }
    }
}

/// Everything a shard counts about itself.
#[derive(Debug, Clone, Default)]
pub struct ShardStats {
    /// Per command, in `COMMANDS` order.
    pub commands: Vec<CommandStats>,
    /// Frames whose body could not be decoded.
    pub bad_requests: u64,
    /// Connections open now.
    pub connections: u64,
    /// Connections accepted or adopted since start.
    pub connections_total: u64,
    /// Connections refused at `maxclients`.
    pub connections_rejected: u64,
    /// Failed authentications (AUTH, or HELLO with AUTH).
    pub auth_failures: u64,
    /// Requests refused by the connection's ACL rules.
    pub acl_denied: u64,
    /// PUBLISH messages not passed on to a peer node whose queue was full or whose link
    /// could not be opened.
    pub pubsub_relay_dropped: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: u64,
    /// Connections closed because one reply outgrew the output hard limit.
    pub output_limit_closes: u64,
    /// Calls made to other shards (forwarded requests, parts, geo steps).
    pub forwarded_out: u64,
    /// Calls run here for other shards.
    pub forwarded_in: u64,
    /// Batches pushed to other shards' mailboxes.
    pub batches_out: u64,
    /// Keys stored.
    pub keys: u64,
    /// Keys with a deadline.
    pub volatile_keys: u64,
    /// Keys removed by expiry.
    pub expired_keys: u64,
    /// Keys removed by eviction at maxmemory.
    pub evicted_keys: u64,
    /// Approximate bytes held by the keyspace.
    pub memory_bytes: u64,
    /// The shard's share of maxmemory.
    pub memory_budget: u64,
    /// Users watched for presence changes.
    pub watched_users: u64,
    /// Clients waiting in a blocking pop on this shard's lists.
    pub blocked_clients: u64,
    /// Geo index members held by this shard's partitions.
    pub geo_members: u64,
    /// Push frames written to connections.
    pub pushes: u64,
    /// Bytes read from client connections.
    pub net_input_bytes: u64,
    /// Bytes written to client connections.
    pub net_output_bytes: u64,
    /// The log's and snapshots' figures (not added up: INFO combines them per field).
    pub persistence: crate::shard::durable::PersistStats,
    /// The shard's replication figures (not added up: INFO combines them per field).
    pub replication: crate::route::replicate::ReplicationStats,
}

impl ShardStats {
    /// Fresh counters with one slot per command.
    pub fn new() -> Self {
        Self {
            commands: vec![CommandStats::default(); COMMANDS.len()],
            ..Self::default()
        }
    }

    /// Records one completed request of the command at `index` in `COMMANDS`.
    pub fn record(&mut self, index: usize, latency_ns: u64, error: bool) {
        let command = &mut self.commands[index];
        command.calls += 1;
        command.errors += u64::from(error);
        command.latency_sum_ns += latency_ns;
        command
            .latency
            .saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Requests completed, all commands together.
    pub fn ops(&self) -> u64 {
        self.commands.iter().map(|c| c.calls).sum()
    }

    /// The scalar counters as a map (no histograms), for one shard's INFO row.
    pub fn summary(&self) -> Vec<(Value, Value)> {
        let field = |name: &str, n: u64| (Value::text(name), Value::Int(n as i64));
        vec![
            field("ops", self.ops()),
            field("bad_requests", self.bad_requests),
            field("connections", self.connections),
            field("connections_total", self.connections_total),
            field("connections_rejected", self.connections_rejected),
            field("auth_failures", self.auth_failures),
            field("pubsub_relay_dropped", self.pubsub_relay_dropped),
            field("acl_denied", self.acl_denied),
            field("tls_handshake_failures", self.tls_handshake_failures),
            field("output_limit_closes", self.output_limit_closes),
            field("forwarded_out", self.forwarded_out),
            field("forwarded_in", self.forwarded_in),
            field("batches_out", self.batches_out),
            field("keys", self.keys),
            field("volatile_keys", self.volatile_keys),
            field("expired_keys", self.expired_keys),
            field("evicted_keys", self.evicted_keys),
            field("memory_bytes", self.memory_bytes),
            field("maxmemory", self.memory_budget),
            field("watched_users", self.watched_users),
            field("blocked_clients", self.blocked_clients),
            field("geo_members", self.geo_members),
            field("pushes", self.pushes),
            field("net_input_bytes", self.net_input_bytes),
            field("net_output_bytes", self.net_output_bytes),
        ]
    }

    /// Every command's requests per latency bucket, cumulative, as `[bound in µs, count]`
    /// pairs (the last bound is -1: every request): what `tessera-cli --stat` turns into
    /// a live p99 by taking two readings apart.
    pub fn latency_buckets(&self) -> Value {
        let mut all = [0u64; LATENCY_BUCKETS.len() + 1];
        for command in self.commands.iter().filter(|c| c.calls > 0) {
            for (total, count) in all.iter_mut().zip(command.buckets()) {
                *total += count;
            }
        }
        let mut cumulative = 0;
        Value::Array(
            LATENCY_BUCKETS
                .iter()
                .map(|seconds| (seconds * 1e6) as i64)
                .chain([-1])
                .zip(all)
                .map(|(bound, count)| {
                    cumulative += count;
                    Value::Array(vec![Value::Int(bound), Value::Int(cumulative as i64)])
                })
                .collect(),
        )
    }

    /// Per-command calls, errors and latency percentiles in microseconds.
    pub fn command_table(&self) -> Value {
        let micros =
            |h: &Histogram<u64>, q: f64| Value::Float(h.value_at_quantile(q) as f64 / 1000.0);
        Value::Map(
            COMMANDS
                .iter()
                .zip(&self.commands)
                .filter(|(_, stats)| stats.calls > 0)
                .map(|(spec, stats)| {
                    (
                        Value::text(spec.name),
                        Value::Map(vec![
                            (Value::text("calls"), Value::Int(stats.calls as i64)),
                            (Value::text("errors"), Value::Int(stats.errors as i64)),
                            (Value::text("p50_us"), micros(&stats.latency, 0.5)),
                            (Value::text("p99_us"), micros(&stats.latency, 0.99)),
                            (Value::text("p999_us"), micros(&stats.latency, 0.999)),
                        ]),
                    )
                })
                .collect(),
        )
    }
}

impl AddAssign<&ShardStats> for ShardStats {
    fn add_assign(&mut self, other: &ShardStats) {
        if self.commands.len() < other.commands.len() {
            self.commands
                .resize_with(other.commands.len(), CommandStats::default);
        }
        for (mine, theirs) in self.commands.iter_mut().zip(&other.commands) {
            mine.calls += theirs.calls;
            mine.errors += theirs.errors;
            mine.latency_sum_ns += theirs.latency_sum_ns;
            // Both histograms share bounds, so adding cannot fail.
            let _ = mine.latency.add(&theirs.latency);
        }
        self.bad_requests += other.bad_requests;
        self.connections += other.connections;
        self.connections_total += other.connections_total;
        self.connections_rejected += other.connections_rejected;
        self.auth_failures += other.auth_failures;
        self.pubsub_relay_dropped += other.pubsub_relay_dropped;
        self.acl_denied += other.acl_denied;
        self.tls_handshake_failures += other.tls_handshake_failures;
        self.output_limit_closes += other.output_limit_closes;
        self.forwarded_out += other.forwarded_out;
        self.forwarded_in += other.forwarded_in;
        self.batches_out += other.batches_out;
        self.keys += other.keys;
        self.volatile_keys += other.volatile_keys;
        self.expired_keys += other.expired_keys;
        self.evicted_keys += other.evicted_keys;
        self.memory_bytes += other.memory_bytes;
        self.memory_budget += other.memory_budget;
        self.watched_users += other.watched_users;
        self.blocked_clients += other.blocked_clients;
        self.geo_members += other.geo_members;
        self.pushes += other.pushes;
        self.net_input_bytes += other.net_input_bytes;
        self.net_output_bytes += other.net_output_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_add_up() {
        let mut a = ShardStats::new();
        let mut b = ShardStats::new();
        a.record(0, 1_000, false);
        b.record(0, 3_000, true);
        b.keys = 5;
        let mut total = ShardStats::new();
        total += &a;
        total += &b;
        assert_eq!(total.ops(), 2);
        assert_eq!(total.commands[0].errors, 1);
        assert_eq!(total.keys, 5);
        assert_eq!(total.commands[0].latency.len(), 2);
        let table = total.command_table();
        assert_eq!(
            table.get("PING").and_then(|c| c.get("calls")),
            Some(&Value::Int(2))
        );
    }
}
