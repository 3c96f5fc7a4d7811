//! `tessera-cli cluster ...`: forming, looking at and changing a cluster, for operators.

use tessera_client::{parse_slots, ClientConfig, ClusterCommand, Connection, Error};
use tessera_cluster::{slot_runs, Move, NodeId, Topology};
use tessera_protocol::{Command, Value};

use crate::render::{render_human, render_raw, to_json};
use crate::Style;

/// What `cluster` takes after it.
const USAGE: &str = "usage: tessera-cli cluster info | slots | nodes | create HOST:PORT... | \
add-node HOST:PORT [--no-rebalance | --replica-of ID] | remove-node ID | rebalance | move-slot FIRST[-LAST] ID | \
failover REPLICA_ID";

/// Runs `cluster WORDS...` against `address`; `Err` with what to print on failure.
pub async fn run(
    address: &str,
    config: &ClientConfig,
    words: &[String],
    style: Style,
) -> Result<String, String> {
    let json = matches!(style, Style::Json);
    // Joining and migrating answer when the data has moved, however long that takes.
    let config = &ClientConfig {
        request_timeout: None,
        ..config.clone()
    };
    let ask = |addr: String, command: ClusterCommand| async move {
        let connection = Connection::open(&addr, None, config)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        connection
            .request(Command::Cluster(command))
            .await
            .map_err(|e: Error| format!("{addr}: {e}"))
    };
    match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("info") => {
            let info = ask(address.to_string(), ClusterCommand::Info).await?;
            Ok(render_map(&info, style))
        }
        Some("slots") => {
            let slots = ask(address.to_string(), ClusterCommand::Slots).await?;
            Ok(if json {
                to_json(&slots).to_string()
            } else {
                render_slots(&slots)
            })
        }
        Some("nodes") => {
            let slots = ask(address.to_string(), ClusterCommand::Slots).await?;
            let mut rows = Vec::new();
            for node in list(&slots, "nodes") {
                let addr = text(node.get("addr"));
                // A node that does not answer is shown as such, not skipped.
                let info = ask(addr.clone(), ClusterCommand::Info).await.ok();
                rows.push(NodeRow {
                    id: int(node.get("id")),
                    addr,
                    shards: int(node.get("shards")),
                    slots: owned_slots(&slots, int(node.get("id"))),
                    state: info
                        .as_ref()
                        .map_or("unreachable".into(), |i| text(i.get("state"))),
                    role: info.as_ref().map_or("-".into(), |i| text(i.get("role"))),
                    epoch: info.as_ref().map_or(-1, |i| int(i.get("epoch"))),
                });
            }
            Ok(render_nodes(&rows, json))
        }
        Some("create") if words.len() > 1 => {
            let mut line: Vec<String> = Vec::new();
            for addr in &words[1..] {
                let me = ask(addr.clone(), ClusterCommand::Myself).await?;
                line.extend([
                    int(me.get("id")).to_string(),
                    text(me.get("bus")),
                    text(me.get("addr")),
                    int(me.get("shards")).to_string(),
                ]);
            }
            let words: Vec<bytes::Bytes> = std::iter::once("CLUSTER.CREATE".to_string())
                .chain(line)
                .map(bytes::Bytes::from)
                .collect();
            let command = Command::parse_words(&words).map_err(|e| e.to_string())?;
            let Command::Cluster(create) = command else {
                return Err("CLUSTER.CREATE did not parse as itself".into());
            };
            let formed = ask(words_first(&words[..]), create).await?;
            Ok(render_map(&formed, style))
        }
        Some("add-node") if words.len() >= 2 => {
            let me = ask(words[1].clone(), ClusterCommand::Myself).await?;
            let member = tessera_protocol::commands::cluster::Member {
                id: u64::try_from(int(me.get("id"))).map_err(|_| "CLUSTER.MYSELF: no id")?,
                bus: bytes::Bytes::from(text(me.get("bus"))),
                addr: bytes::Bytes::from(text(me.get("addr"))),
                shards: u16::try_from(int(me.get("shards"))).map_err(|_| "no shard count")?,
            };
            let id = member.id;
            let replica_of = match words.iter().position(|w| w == "--replica-of") {
                Some(at) => Some(
                    words
                        .get(at + 1)
                        .and_then(|w| w.parse::<NodeId>().ok())
                        .ok_or_else(|| USAGE.to_string())?,
                ),
                None => None,
            };
            let joined = ask(address.to_string(), ClusterCommand::Join(member)).await?;
            if let Some(primary) = replica_of {
                let replicating = ask(words[1].clone(), ClusterCommand::Replicate(primary)).await?;
                return Ok(render_map(&replicating, style));
            }
            if words.iter().any(|w| w == "--no-rebalance") {
                return Ok(render_map(&joined, style));
            }
            let topology = slot_map(address, &ask).await?;
            let moves = topology.moves_towards(&topology.primaries());
            let done = run_moves(&topology, moves, &ask).await?;
            Ok(render_moves(&format!("node {id} joined"), &done, json))
        }
        Some("rebalance") => {
            let topology = slot_map(address, &ask).await?;
            let moves = topology.moves_towards(&topology.primaries());
            let done = run_moves(&topology, moves, &ask).await?;
            Ok(render_moves("rebalanced", &done, json))
        }
        Some("remove-node") if words.len() == 2 => {
            let id: NodeId = words[1].parse().map_err(|_| USAGE.to_string())?;
            let topology = slot_map(address, &ask).await?;
            if topology.node(id).is_none() {
                return Err(format!("node {id} is not in the cluster"));
            }
            let rest: Vec<NodeId> = topology
                .primaries()
                .into_iter()
                .filter(|&n| n != id)
                .collect();
            // Only the leaver's slots move; the rest stay where they are.
            let moves = topology
                .moves_towards(&rest)
                .into_iter()
                .filter(|m| m.from == id)
                .collect();
            let done = run_moves(&topology, moves, &ask).await?;
            // Asked of a node that stays: the leaver may step down as it goes.
            let stays = rest
                .first()
                .and_then(|&n| topology.node(n))
                .map_or(address.to_string(), |n| n.addr.clone());
            ask(stays, ClusterCommand::Forget(id)).await?;
            Ok(render_moves(&format!("node {id} removed"), &done, json))
        }
        Some("move-slot") if words.len() == 3 => {
            let (first, last) = match words[1].split_once('-') {
                Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                None => (words[1].parse::<u16>(), words[1].parse::<u16>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                return Err(USAGE.into());
            };
            let to: NodeId = words[2].parse().map_err(|_| USAGE.to_string())?;
            let topology = slot_map(address, &ask).await?;
            let mut moves: Vec<Move> = Vec::new();
            for slot in first..=last.min(16_383) {
                let from = topology.owner_id(slot);
                if from == to {
                    continue;
                }
                match moves.iter_mut().find(|m| m.from == from) {
                    Some(found) => found.slots.push(slot),
                    None => moves.push(Move {
                        from,
                        to,
                        slots: vec![slot],
                    }),
                }
            }
            let done = run_moves(&topology, moves, &ask).await?;
            Ok(render_moves("moved", &done, json))
        }
        Some("failover") if words.len() == 2 => {
            let replica: NodeId = words[1].parse().map_err(|_| USAGE.to_string())?;
            let topology = slot_map(address, &ask).await?;
            let primary = topology
                .primary_of(replica)
                .and_then(|primary| topology.node(primary))
                .ok_or_else(|| format!("node {replica} is not a replica"))?;
            // The primary pauses its writes, waits for the replica, and hands over.
            let handed = ask(primary.addr.clone(), ClusterCommand::Failover(replica)).await?;
            Ok(render_map(&handed, style))
        }
        _ => Err(USAGE.into()),
    }
}

/// The slot map as `address` has it.
async fn slot_map<F, Fut>(address: &str, ask: &F) -> Result<Topology, String>
where
    F: Fn(String, ClusterCommand) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let slots = ask(address.to_string(), ClusterCommand::Slots).await?;
    parse_slots(&slots).map_err(|e| e.to_string())
}

/// Sends each move to the node giving the slots up, every giver at once (each moves its
/// own slots one batch at a time); each answer says what moved.
async fn run_moves<F, Fut>(
    topology: &Topology,
    moves: Vec<Move>,
    ask: &F,
) -> Result<Vec<(Move, Value)>, String>
where
    F: Fn(String, ClusterCommand) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let runs_of = moves.into_iter().map(|planned| async move {
        let giver = topology
            .node(planned.from)
            .ok_or_else(|| format!("node {} is not in the slot map", planned.from))?;
        let command = ClusterCommand::Migrate {
            to: planned.to,
            ranges: slot_runs(&planned.slots),
        };
        let report = ask(giver.addr.clone(), command).await.map_err(|e| {
            format!(
                "moving {} slots from node {} to node {}: {e}",
                planned.slots.len(),
                planned.from,
                planned.to
            )
        })?;
        Ok::<_, String>((planned, report))
    });
    futures_util::future::join_all(runs_of)
        .await
        .into_iter()
        .collect()
}

fn render_moves(what: &str, done: &[(Move, Value)], json: bool) -> String {
    if json {
        let moves: Vec<serde_json::Value> = done
            .iter()
            .map(|(m, report)| {
                serde_json::json!({"from": m.from, "to": m.to, "report": to_json(report)})
            })
            .collect();
        return serde_json::json!({"done": what, "moves": moves}).to_string();
    }
    let mut out = what.to_string();
    if done.is_empty() {
        out.push_str(": no slot had to move");
    }
    for (m, report) in done {
        out.push_str(&format!(
            "\nnode {} -> node {}: {} slots, {} keys, {} bytes in {} ms (longest write pause {} ms), epoch {}",
            m.from,
            m.to,
            int(report.get("slots")),
            int(report.get("keys")),
            int(report.get("bytes")),
            int(report.get("ms")),
            int(report.get("longest_pause_ms")),
            int(report.get("epoch")),
        ));
    }
    out
}

/// The first node named after CLUSTER.CREATE's id: its client address.
fn words_first(words: &[bytes::Bytes]) -> String {
    String::from_utf8_lossy(&words[3]).into_owned()
}

struct NodeRow {
    id: i64,
    addr: String,
    shards: i64,
    slots: i64,
    state: String,
    role: String,
    epoch: i64,
}

fn render_nodes(rows: &[NodeRow], json: bool) -> String {
    if json {
        let nodes: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "addr": r.addr, "shards": r.shards, "slots": r.slots,
                    "state": r.state, "role": r.role, "epoch": r.epoch,
                })
            })
            .collect();
        return serde_json::Value::Array(nodes).to_string();
    }
    let mut out = format!(
        "{:<4} {:<22} {:>6} {:>6} {:<12} {:<10} {:>5}",
        "id", "addr", "shards", "slots", "state", "role", "epoch"
    );
    for r in rows {
        out.push_str(&format!(
            "\n{:<4} {:<22} {:>6} {:>6} {:<12} {:<10} {:>5}",
            r.id, r.addr, r.shards, r.slots, r.state, r.role, r.epoch
        ));
    }
    out
}

fn render_slots(slots: &Value) -> String {
    let mut out = format!("epoch {}", int(slots.get("epoch")));
    let addr_of = |id: i64| {
        list(slots, "nodes")
            .iter()
            .find(|n| int(n.get("id")) == id)
            .map_or("?".into(), |n| text(n.get("addr")))
    };
    for range in list(slots, "ranges") {
        if let Value::Array(three) = range {
            let n = |i: usize| three.get(i).and_then(Value::as_int).unwrap_or(-1);
            out.push_str(&format!(
                "\n{:>5}-{:<5} node {} {}",
                n(0),
                n(1),
                n(2),
                addr_of(n(2))
            ));
        }
    }
    out
}

fn render_map(value: &Value, style: Style) -> String {
    match style {
        Style::Json => to_json(value).to_string(),
        Style::Human => render_human(value),
        Style::Raw => render_raw(value),
    }
}

fn owned_slots(slots: &Value, id: i64) -> i64 {
    list(slots, "ranges")
        .iter()
        .filter_map(|range| match range {
            Value::Array(three) if three.get(2).and_then(Value::as_int) == Some(id) => {
                Some(three[1].as_int()? - three[0].as_int()? + 1)
            }
            _ => None,
        })
        .sum()
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    match value.get(key) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn int(value: Option<&Value>) -> i64 {
    value.and_then(Value::as_int).unwrap_or(-1)
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Text(t)) => t.clone(),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(n)) => n.to_string(),
        _ => "-".into(),
    }
}
