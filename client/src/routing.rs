//! Where a request goes: which node, then which of its shards.
//!
//! A single node is one set of shard links. In cluster mode the client also holds the slot
//! map (CLUSTER.SLOTS) and a set of links per node, opened on first use; a MOVED or
//! CLUSTER_DOWN answer, or a node it cannot reach, makes it reload the map from any node
//! it knows and try again, so a topology change never reaches the caller as an error.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_cluster::{NodeId, NodeInfo, SlotRange, Topology};
use tessera_protocol::{ClusterCommand, Combine, Command, ErrorCode, Value};
use tokio::sync::Mutex;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::ClientConfig;

/// How long a call keeps retrying redirects and a cluster that is not serving.
pub(crate) const RETRY_PATIENCE: Duration = Duration::from_secs(10);
/// How long one node may take to hand over its slot map before the next is asked.
const SLOT_MAP_PATIENCE: Duration = Duration::from_millis(500);

/// One shard's connection slot, reconnected on demand.
pub(crate) struct ShardLink {
    shard: u16,
    current: Mutex<Option<Connection>>,
}

/// One node's shard links.
pub(crate) struct NodeLinks {
    /// The node's client address.
    pub address: String,
    /// Its shard count.
    pub shards: u16,
    links: Vec<ShardLink>,
}

impl NodeLinks {
    /// Links to a node's `shards` shards, none open yet (or `first` for its shard).
    pub fn new(address: &str, shards: u16, first: Option<&Connection>) -> NodeLinks {
        let links = (0..shards)
            .map(|shard| ShardLink {
                shard,
                current: Mutex::new(first.filter(|c| c.hello().shard == shard).cloned()),
            })
            .collect();
        NodeLinks {
            address: address.to_string(),
            shards,
            links,
        }
    }

    /// The live connection to `shard`, reconnecting if the last one dropped.
    pub async fn link(&self, shard: u16, config: &ClientConfig) -> Result<Connection> {
        let link = self
            .links
            .get(usize::from(shard))
            .ok_or_else(|| Error::Protocol(format!("no shard {shard} on {}", self.address)))?;
        let mut current = link.current.lock().await;
        if let Some(connection) = current.as_ref().filter(|c| !c.is_closed()) {
            return Ok(connection.clone());
        }
        let connection = Connection::open(&self.address, Some(link.shard), config).await?;
        *current = Some(connection.clone());
        Ok(connection)
    }
}

/// The slot map and a link set per node.
pub(crate) struct RouteMap {
    /// Slot ownership.
    pub topology: Topology,
    /// Each node's links.
    pub nodes: HashMap<NodeId, Arc<NodeLinks>>,
}

impl RouteMap {
    /// The node owning `slot`.
    pub fn owner(&self, slot: u16) -> Arc<NodeLinks> {
        self.nodes[&self.topology.owner_id(slot)].clone()
    }
}

/// What a cluster-mode client knows and how it refreshes it.
pub(crate) struct Routes {
    map: RwLock<Arc<RouteMap>>,
    refreshing: Mutex<()>,
}

impl Routes {
    /// Loads the slot map through `seed` (the node the client connected to).
    /// A node not yet in a formed cluster gets a stand-in map (epoch 0, every slot on
    /// it), which its CLUSTER_DOWN answers make the client reload.
    pub async fn load(seed: &Connection, seed_links: Arc<NodeLinks>) -> Result<Routes> {
        let topology = match seed.request(Command::Cluster(ClusterCommand::Slots)).await {
            Ok(reply) => parse_slots(&reply)?,
            Err(error) if error.server_code() == Some(ErrorCode::ClusterDown) => {
                Topology::assigned(
                    0,
                    vec![NodeInfo {
                        id: 0,
                        addr: seed_links.address.clone(),
                        shards: seed_links.shards,
                        resp: String::new(),
                    }],
                )
            }
            Err(error) => return Err(error),
        };
        let map = build(topology, &HashMap::new(), Some(seed_links));
        Ok(Routes {
            map: RwLock::new(Arc::new(map)),
            refreshing: Mutex::new(()),
        })
    }

    /// The map in force.
    pub fn current(&self) -> Arc<RouteMap> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reloads the map from the first node that answers, unless another caller already
    /// moved it past `seen_epoch` while this one waited.
    pub async fn refresh(&self, seen_epoch: u64, config: &ClientConfig) -> Result<()> {
        let _one_at_a_time = self.refreshing.lock().await;
        let known = self.current();
        if known.topology.epoch > seen_epoch {
            return Ok(());
        }
        let mut last = Error::Protocol("no node to ask for the slot map".into());
        let mut best = None;
        for node in known.nodes.values() {
            let asked = async {
                let connection = node.link(0, config).await?;
                let reply = connection
                    .request(Command::Cluster(ClusterCommand::Slots))
                    .await?;
                parse_slots(&reply)
            };
            // A stopped node keeps its sockets open: ask it briefly, then ask the next.
            let asked = async {
                tokio::time::timeout(SLOT_MAP_PATIENCE, asked)
                    .await
                    .unwrap_or(Err(Error::Timeout(SLOT_MAP_PATIENCE)))
            };
            match asked.await {
                // A node that has not applied the change yet answers the old epoch: a
                // newer one may be a node further on.
                Ok(topology) if topology.epoch > seen_epoch => {
                    best = Some(topology);
                    break;
                }
                Ok(topology) if topology.epoch >= known.topology.epoch => {
                    best.get_or_insert(topology);
                }
                Ok(_) => {}
                Err(error) => last = error,
            }
        }
        let topology = best.ok_or(last)?;
        let map = build(topology, &known.nodes, None);
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(())
    }
}

/// A map over `topology`, keeping the links of nodes whose address did not change.
fn build(
    topology: Topology,
    old: &HashMap<NodeId, Arc<NodeLinks>>,
    seed: Option<Arc<NodeLinks>>,
) -> RouteMap {
    let nodes = topology
        .nodes()
        .iter()
        .map(|node| {
            let kept = old
                .get(&node.id)
                .filter(|links| links.address == node.addr && links.shards == node.shards)
                .cloned()
                .or_else(|| {
                    seed.clone()
                        .filter(|s| s.address == node.addr && s.shards == node.shards)
                });
            let links =
                kept.unwrap_or_else(|| Arc::new(NodeLinks::new(&node.addr, node.shards, None)));
            (node.id, links)
        })
        .collect();
    RouteMap { topology, nodes }
}

/// Reads a CLUSTER.SLOTS reply as the topology it describes.
///
/// # Errors
/// `Protocol` for a reply that is not a whole slot map.
pub fn parse_slots(reply: &Value) -> Result<Topology> {
    let bad = || Error::unexpected("a CLUSTER.SLOTS map", reply);
    let int = |v: &Value| v.as_int().ok_or_else(bad);
    let epoch = u64::try_from(int(reply.get("epoch").ok_or_else(bad)?)?).map_err(|_| bad())?;
    let Some(Value::Array(nodes)) = reply.get("nodes") else {
        return Err(bad());
    };
    let Some(Value::Array(ranges)) = reply.get("ranges") else {
        return Err(bad());
    };
    let mut replicas = Vec::new();
    let nodes = nodes
        .iter()
        .map(|node| {
            let id = u64::try_from(int(node.get("id").ok_or_else(bad)?)?).map_err(|_| bad())?;
            if let Some(Value::Int(primary)) = node.get("replica_of") {
                replicas.push((id, u64::try_from(*primary).map_err(|_| bad())?));
            }
            let Some(Value::Text(addr)) = node.get("addr") else {
                return Err(bad());
            };
            Ok(NodeInfo {
                id,
                addr: addr.clone(),
                shards: u16::try_from(int(node.get("shards").ok_or_else(bad)?)?)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(bad)?,
                resp: match node.get("resp") {
                    Some(Value::Text(resp)) => resp.clone(),
                    _ => String::new(),
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let ranges = ranges
        .iter()
        .map(|range| match range {
            Value::Array(three) if three.len() == 3 => {
                let n = |i: usize| int(&three[i]);
                Ok(SlotRange {
                    first: u16::try_from(n(0)?).map_err(|_| bad())?,
                    last: u16::try_from(n(1)?).map_err(|_| bad())?,
                    owner: u64::try_from(n(2)?).map_err(|_| bad())?,
                })
            }
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>>>()?;
    Topology::from_ranges(epoch, nodes, &ranges)
        .and_then(|topology| topology.with_replicas_listed(&replicas))
        .ok_or_else(bad)
}

/// Whether a failed call may be sent again, after a refresh, without having run: the
/// node said the slot is elsewhere, or that it serves no keys right now, or it could not
/// be reached at all.
pub(crate) fn retryable(error: &Error) -> bool {
    match error {
        Error::Server(reply) => matches!(
            reply.known_code(),
            Some(ErrorCode::Moved | ErrorCode::ClusterDown | ErrorCode::TryAgain)
        ),
        Error::Connect { .. } => true,
        _ => false,
    }
}

/// The reply of a command split across nodes, from its parts' replies, as the server
/// combines the parts it splits across shards.
pub(crate) fn combine(combine: &Combine, replies: Vec<Value>) -> Result<Value> {
    match combine {
        Combine::Positions { positions, len } => {
            let parts = replies
                .into_iter()
                .map(|reply| match reply {
                    Value::Array(items) => Ok(items),
                    other => Err(Error::unexpected("an array", &other)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Value::Array(Combine::place(
                positions,
                *len,
                parts,
                Value::Nil,
            )))
        }
        Combine::Sum => replies
            .iter()
            .map(|reply| {
                reply
                    .as_int()
                    .ok_or_else(|| Error::unexpected("an integer", reply))
            })
            .sum::<Result<i64>>()
            .map(Value::Int),
        Combine::AllOk => Ok(Value::Ok),
        Combine::Merge { limit } => merge_pages(replies, *limit),
    }
}

/// TL.MERGE pages from several nodes: newest first by (score, id), each id once, at most
/// `limit`, with a cursor when anything was left out.
fn merge_pages(pages: Vec<Value>, limit: u32) -> Result<Value> {
    let mut more = false;
    let mut items: Vec<(i64, i64)> = Vec::new();
    for page in &pages {
        let bad = || Error::unexpected("a timeline page", page);
        more |= !matches!(page.get("next"), Some(Value::Nil) | None);
        let Some(Value::Array(listed)) = page.get("items") else {
            return Err(bad());
        };
        for item in listed {
            let Value::Array(pair) = item else {
                return Err(bad());
            };
            let (Some(id), Some(score)) = (
                pair.first().and_then(Value::as_int),
                pair.get(1).and_then(Value::as_int),
            ) else {
                return Err(bad());
            };
            items.push((score, id));
        }
    }
    items.sort_unstable_by(|a, b| b.cmp(a));
    let mut seen = std::collections::HashSet::new();
    items.retain(|&(_, id)| seen.insert(id));
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        more = true;
    }
    let next = match (more, items.last()) {
        (true, Some(&(score, id))) => Value::Array(vec![Value::Int(score), Value::Int(id)]),
        _ => Value::Nil,
    };
    let items = items
        .into_iter()
        .map(|(score, id)| Value::Array(vec![Value::Int(id), Value::Int(score)]))
        .collect();
    Ok(Value::Map(vec![
        (Value::text("items"), Value::Array(items)),
        (Value::text("next"), next),
    ]))
}
