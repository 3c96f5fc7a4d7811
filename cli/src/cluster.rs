//! `tessera-cli cluster ...`: forming, looking at and changing a cluster, for operators.

use tessera_client::{parse_slots, ClientConfig, ClusterCommand, Connection, Error};
use tessera_cluster::{slot_runs, Move, NodeId, Topology};
use tessera_protocol::commands::cluster::Member;
use tessera_protocol::{Command, Value};

use crate::render::{render_human, render_raw, to_json};
use crate::Style;

/// What `cluster` takes after it.
const USAGE: &str = "usage: tessera-cli cluster info | slots | nodes | create HOST:PORT... [--replicas R] | \
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
                    replica_of: node.get("replica_of").and_then(Value::as_int),
                    epoch: info.as_ref().map_or(-1, |i| int(i.get("epoch"))),
                });
            }
            Ok(render_nodes(&rows, json))
        }
        Some("create") if words.len() > 1 => {
            let (addresses, replicas) = create_plan(&words[1..])?;
            let mut nodes = Vec::new();
            for addr in &addresses {
                nodes.push(member_of(
                    &ask(addr.clone(), ClusterCommand::Myself).await?,
                )?);
            }
            let layout = replica_layout(&nodes, replicas)?;
            let primaries: Vec<Member> = nodes[..layout.primaries].to_vec();
            let first = String::from_utf8_lossy(&primaries[0].addr).into_owned();
            let formed = ask(first.clone(), ClusterCommand::Create(primaries)).await?;
            for &(replica, primary) in &layout.follows {
                let node = nodes[replica].clone();
                let addr = String::from_utf8_lossy(&node.addr).into_owned();
                ask(first.clone(), ClusterCommand::Join(node)).await?;
                ask(addr, ClusterCommand::Replicate(nodes[primary].id)).await?;
            }
            if layout.follows.is_empty() {
                return Ok(render_map(&formed, style));
            }
            Ok(render_layout(&nodes, &layout, json))
        }
        Some("add-node") if words.len() >= 2 => {
            let member = member_of(&ask(words[1].clone(), ClusterCommand::Myself).await?)?;
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

/// A node as it describes itself in answer to CLUSTER.MYSELF.
fn member_of(me: &Value) -> Result<Member, String> {
    Ok(Member {
        id: u64::try_from(int(me.get("id"))).map_err(|_| "CLUSTER.MYSELF: no id")?,
        bus: bytes::Bytes::from(text(me.get("bus"))),
        addr: bytes::Bytes::from(text(me.get("addr"))),
        shards: u16::try_from(int(me.get("shards"))).map_err(|_| "CLUSTER.MYSELF: no shards")?,
        resp: match me.get("resp") {
            Some(_) => bytes::Bytes::from(text(me.get("resp"))),
            None => bytes::Bytes::new(),
        },
    })
}

/// `create`'s words: the node addresses, and how many replicas each primary gets —
/// `--replicas R`, or 1 when there is a second node to hold the copy.
fn create_plan(words: &[String]) -> Result<(Vec<String>, usize), String> {
    let mut addresses = Vec::new();
    let mut replicas = None;
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        if word == "--replicas" {
            let count = rest.next().and_then(|w| w.parse::<usize>().ok());
            replicas = Some(count.ok_or_else(|| USAGE.to_string())?);
        } else {
            addresses.push(word.clone());
        }
    }
    if addresses.is_empty() {
        return Err(USAGE.into());
    }
    let replicas = replicas.unwrap_or(usize::from(addresses.len() > 1));
    Ok((addresses, replicas))
}

/// Which of `create`'s nodes own slots and which follow whom.
#[derive(Debug, PartialEq)]
struct Layout {
    /// The first this many nodes named are the primaries.
    primaries: usize,
    /// (replica, primary) as positions in the list of nodes named.
    follows: Vec<(usize, usize)>,
}

/// Splits the nodes as `redis-cli --cluster create` does: the first N / (R + 1) named own
/// the slots, every other node follows one of them. Each replica goes to a primary with the
/// fewest so far and, among those, to one on another host, so that one machine's loss
/// takes a primary or its copy but not both. Nodes left over give some primaries one more.
fn replica_layout(nodes: &[Member], replicas: usize) -> Result<Layout, String> {
    let primaries = nodes.len() / (replicas + 1);
    if primaries == 0 {
        return Err(format!(
            "{} nodes cannot hold a primary and {replicas} replicas of it",
            nodes.len()
        ));
    }
    let host = |at: usize| {
        let addr = String::from_utf8_lossy(&nodes[at].addr).into_owned();
        addr.rsplit_once(':')
            .map_or(addr.clone(), |(h, _)| h.to_string())
    };
    let mut count = vec![0usize; primaries];
    let mut follows = Vec::new();
    for replica in primaries..nodes.len() {
        let primary = (0..primaries)
            .min_by_key(|&p| (count[p], host(p) == host(replica), p))
            .expect("at least one primary");
        count[primary] += 1;
        follows.push((replica, primary));
    }
    Ok(Layout { primaries, follows })
}

fn render_layout(nodes: &[Member], layout: &Layout, json: bool) -> String {
    let id = |at: usize| nodes[at].id;
    if json {
        let follows: Vec<serde_json::Value> = layout
            .follows
            .iter()
            .map(|&(r, p)| serde_json::json!({"replica": id(r), "primary": id(p)}))
            .collect();
        let primaries: Vec<u64> = (0..layout.primaries).map(id).collect();
        return serde_json::json!({"primaries": primaries, "replicas": follows}).to_string();
    }
    let primaries: Vec<String> = (0..layout.primaries).map(|p| id(p).to_string()).collect();
    let mut out = format!("primaries: {}", primaries.join(" "));
    for &(replica, primary) in &layout.follows {
        out.push_str(&format!(
            "\nnode {} replicates node {}",
            id(replica),
            id(primary)
        ));
    }
    out
}

struct NodeRow {
    id: i64,
    addr: String,
    shards: i64,
    slots: i64,
    state: String,
    role: String,
    epoch: i64,
    replica_of: Option<i64>,
}

fn render_nodes(rows: &[NodeRow], json: bool) -> String {
    if json {
        let nodes: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "addr": r.addr, "shards": r.shards, "slots": r.slots,
                    "state": r.state, "role": r.role, "epoch": r.epoch,
                    "replica_of": r.replica_of,
                })
            })
            .collect();
        return serde_json::Value::Array(nodes).to_string();
    }
    let mut out = format!(
        "{:<4} {:<22} {:>6} {:>6} {:<12} {:<10} {:>5} {:>10}",
        "id", "addr", "shards", "slots", "state", "role", "epoch", "replica_of"
    );
    for r in rows {
        let follows = r.replica_of.map_or("-".into(), |p| p.to_string());
        out.push_str(&format!(
            "\n{:<4} {:<22} {:>6} {:>6} {:<12} {:<10} {:>5} {:>10}",
            r.id, r.addr, r.shards, r.slots, r.state, r.role, r.epoch, follows
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(addrs: &[&str]) -> Vec<Member> {
        addrs
            .iter()
            .zip(1..)
            .map(|(addr, id)| Member {
                id,
                bus: bytes::Bytes::from_static(b"-"),
                addr: bytes::Bytes::from(addr.to_string()),
                shards: 1,
                resp: bytes::Bytes::new(),
            })
            .collect()
    }

    #[test]
    fn replicas_spread_over_the_primaries_and_prefer_another_host() {
        let six = nodes(&["a:1", "a:2", "b:1", "a:3", "b:2", "b:3"]);
        let layout = replica_layout(&six, 1).unwrap();
        assert_eq!(layout.primaries, 3);
        // Primaries a:1, a:2, b:1; replicas a:3, b:2, b:3 each to a primary of its own,
        // a:3 to the one primary not on host a.
        assert_eq!(layout.follows, vec![(3, 2), (4, 0), (5, 1)]);

        let five = replica_layout(&six[..5], 1).unwrap();
        assert_eq!(five.primaries, 2);
        assert_eq!(five.follows, vec![(2, 0), (3, 1), (4, 0)]);
        assert!(replica_layout(&six[..2], 2).is_err());
        assert_eq!(replica_layout(&six[..3], 0).unwrap().follows, vec![]);
    }

    #[test]
    fn create_defaults_to_one_replica_when_there_is_a_second_node() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(create_plan(&words(&["x:1"])).unwrap().1, 0);
        assert_eq!(create_plan(&words(&["x:1", "x:2"])).unwrap().1, 1);
        let (addresses, replicas) =
            create_plan(&words(&["x:1", "--replicas", "2", "x:2", "x:3"])).unwrap();
        assert_eq!((addresses.len(), replicas), (3, 2));
        assert!(create_plan(&words(&["x:1", "--replicas"])).is_err());
        assert!(create_plan(&words(&["--replicas", "0"])).is_err());
    }
}
