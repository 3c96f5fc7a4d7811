//! Redis Cluster's CLUSTER subcommands over RESP, answered from this node's topology: the
//! slot map as CLUSTER SLOTS, SHARDS and NODES write it, CLUSTER INFO's text, KEYSLOT and
//! MYID, so `redis-cli -c` and Redis Cluster client libraries route by themselves.

use bytes::Bytes;
use tessera_cluster::{key_slot, NodeId, NodeInfo, Topology};
use tessera_protocol::{ErrorCode, Value};

use crate::clock;
use crate::cluster::Cluster;

fn text(t: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(t.as_bytes()))
}

/// A node id as Redis writes one: 40 hex digits.
fn redis_id(id: NodeId) -> String {
    format!("{id:040x}")
}

/// A node's RESP address split as Redis Cluster replies carry it, if it has one.
fn host_port(node: &NodeInfo) -> Option<(&str, i64)> {
    let (host, port) = node.resp.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

/// CLUSTER subcommand ...: Redis's shapes, from `cluster` (`None`: not in cluster mode).
pub fn cluster(cluster: Option<&Cluster>, args: &[&[u8]]) -> Value {
    let sub = args[1].to_ascii_uppercase();
    if let (b"KEYSLOT", 3) = (&sub[..], args.len()) {
        return Value::Int(i64::from(key_slot(args[2])));
    }
    let Some(cluster) = cluster else {
        return Value::error(
            ErrorCode::Syntax,
            "This instance has cluster support disabled",
        );
    };
    let loaded = cluster.topology.load().1;
    let topology = loaded.as_ref().as_ref();
    match (&sub[..], args.len(), topology) {
        (b"MYID", 2, _) => text(&redis_id(cluster.id)),
        (b"INFO", 2, _) => text(&info(cluster, topology)),
        (b"SLOTS", 2, Some(topology)) => slots(topology),
        (b"SHARDS", 2, Some(topology)) => shards(topology),
        (b"NODES", 2, Some(topology)) => text(&nodes(cluster.id, topology)),
        (b"SLOTS" | b"SHARDS", 2, None) => Value::Array(Vec::new()),
        (b"NODES", 2, None) => text(""),
        _ => Value::error(
            ErrorCode::Syntax,
            format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
                String::from_utf8_lossy(args[1])
            ),
        ),
    }
}

/// `[host, port, id]` for a node with a RESP address.
fn endpoint(topology: &Topology, id: NodeId) -> Option<Value> {
    let node = topology.node(id)?;
    let (host, port) = host_port(node)?;
    Some(Value::Array(vec![
        text(host),
        Value::Int(port),
        text(&redis_id(id)),
    ]))
}

/// CLUSTER SLOTS: each run of slots with its owner, then the owner's replicas.
fn slots(topology: &Topology) -> Value {
    let runs = topology.ranges().into_iter().filter_map(|range| {
        let mut run = vec![
            Value::Int(i64::from(range.first)),
            Value::Int(i64::from(range.last)),
            endpoint(topology, range.owner)?,
        ];
        run.extend(
            topology
                .replicas_of(range.owner)
                .into_iter()
                .filter_map(|replica| endpoint(topology, replica)),
        );
        Some(Value::Array(run))
    });
    Value::Array(runs.collect())
}

/// CLUSTER SHARDS: each primary's slots and its nodes, primary first.
fn shards(topology: &Topology) -> Value {
    let ranges = topology.ranges();
    let node_map = |id: NodeId, role: &str| {
        let node = topology.node(id)?;
        let (host, port) = host_port(node)?;
        Some(Value::Map(vec![
            (text("id"), text(&redis_id(id))),
            (text("port"), Value::Int(port)),
            (text("ip"), text(host)),
            (text("endpoint"), text(host)),
            (text("role"), text(role)),
            (text("replication-offset"), Value::Int(0)),
            (text("health"), text("online")),
        ]))
    };
    let shards = topology.primaries().into_iter().map(|primary| {
        let slots = ranges
            .iter()
            .filter(|range| range.owner == primary)
            .flat_map(|range| {
                [
                    Value::Int(i64::from(range.first)),
                    Value::Int(i64::from(range.last)),
                ]
            })
            .collect();
        let nodes = std::iter::once(node_map(primary, "master"))
            .chain(
                topology
                    .replicas_of(primary)
                    .into_iter()
                    .map(|replica| node_map(replica, "replica")),
            )
            .flatten()
            .collect();
        Value::Map(vec![
            (text("slots"), Value::Array(slots)),
            (text("nodes"), Value::Array(nodes)),
        ])
    });
    Value::Array(shards.collect())
}

/// CLUSTER NODES: one line per node, in Redis's format.
fn nodes(me: NodeId, topology: &Topology) -> String {
    let ranges = topology.ranges();
    let mut out = String::new();
    for node in topology.nodes() {
        let Some((host, port)) = host_port(node) else {
            continue;
        };
        let primary = topology.primary_of(node.id);
        let role = if primary.is_some() { "slave" } else { "master" };
        let flags = if node.id == me {
            format!("myself,{role}")
        } else {
            role.to_string()
        };
        let master = primary.map_or("-".to_string(), redis_id);
        out.push_str(&format!(
            "{} {host}:{port}@0 {flags} {master} 0 0 {} connected",
            redis_id(node.id),
            topology.epoch
        ));
        for range in ranges.iter().filter(|range| range.owner == node.id) {
            if range.first == range.last {
                out.push_str(&format!(" {}", range.first));
            } else {
                out.push_str(&format!(" {}-{}", range.first, range.last));
            }
        }
        out.push('\n');
    }
    out
}

/// CLUSTER INFO: Redis's fields, from this node's view.
fn info(cluster: &Cluster, topology: Option<&Topology>) -> String {
    let state = if cluster.serving(clock::now_millis()) {
        "ok"
    } else {
        "fail"
    };
    let (assigned, known, size, epoch) = topology.map_or((0, 1, 0, 0), |t| {
        let assigned: usize = t.primaries().iter().map(|&id| t.slots_of(id)).sum();
        let size = t
            .primaries()
            .iter()
            .filter(|&&id| t.slots_of(id) > 0)
            .count();
        (assigned, t.nodes().len(), size, t.epoch)
    });
    let ok = if state == "ok" { assigned } else { 0 };
    [
        format!("cluster_state:{state}"),
        format!("cluster_slots_assigned:{assigned}"),
        format!("cluster_slots_ok:{ok}"),
        "cluster_slots_pfail:0".into(),
        format!("cluster_slots_fail:{}", assigned - ok),
        format!("cluster_known_nodes:{known}"),
        format!("cluster_size:{size}"),
        format!("cluster_current_epoch:{epoch}"),
        format!("cluster_my_epoch:{epoch}"),
    ]
    .join("\r\n")
        + "\r\n"
}
