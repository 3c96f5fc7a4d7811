//! INFO: node facts and every shard's counters, rendered as one map.

use tessera_protocol::Value;

use crate::shard::stats::ShardStats;
use crate::shard::NodeInfo;

/// Node facts and totals rendered for INFO, from every shard's snapshot in shard order.
pub fn render(node: &NodeInfo, snapshots: &[ShardStats]) -> Value {
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
        (Value::text("totals"), Value::Map(total.summary())),
        (Value::text("commands"), total.command_table()),
        (Value::text("shards"), Value::Array(shards)),
    ])
}
