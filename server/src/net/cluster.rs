//! The CLUSTER.* commands: answered by the connection from the node's cluster state, not
//! by a shard's keyspace.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tessera_cluster::{key_slot, NodeInfo, Topology};
use tessera_protocol::commands::cluster::{Member, Range};
use tessera_protocol::wire::Payload;
use tessera_protocol::{ClusterCommand, Command, ErrorCode, Value};

use crate::clock;
use crate::cluster::{Change, Cluster, Peer, Proposal, LEASE_MS};
use crate::route::coordinator;
use crate::route::migrate;
use crate::route::{acks, handover, replicate};
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// How long CLUSTER.CREATE waits for the first topology to commit.
const CREATE_PATIENCE: Duration = Duration::from_secs(15);

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::text(k), v))
            .collect(),
    )
}

fn off() -> Value {
    Value::error(
        ErrorCode::ClusterDown,
        "cluster mode is off on this node (--cluster-enabled yes turns it on)",
    )
}

/// Answers one CLUSTER.* request from `conn`, now or (CLUSTER.CREATE) once Raft has.
pub fn answer<P: Payload>(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    index: usize,
    started: Instant,
    command: &ClusterCommand<P>,
) {
    let cluster = shard.node.cluster.clone();
    let reply = match (command, cluster) {
        (ClusterCommand::KeySlot(key), _) => Value::Int(i64::from(key_slot(key.as_ref()))),
        (ClusterCommand::Info, cluster) => info(cluster.as_deref()),
        (
            ClusterCommand::Wait {
                replicas,
                timeout_ms,
            },
            _,
        ) => {
            let reply = acks::wait(shard.clone(), *replicas, *timeout_ms);
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::ReadOnly | ClusterCommand::ReadWrite, _) => {
            conn.reads_replica
                .set(matches!(command, ClusterCommand::ReadOnly));
            Value::text("OK")
        }
        (_, None) => off(),
        (ClusterCommand::Myself, Some(cluster)) => map(vec![
            ("id", Value::Int(cluster.id as i64)),
            ("addr", Value::text(&cluster.me.addr)),
            ("bus", Value::text(&cluster.me.bus)),
            ("shards", Value::Int(i64::from(cluster.me.shards))),
            ("resp", Value::text(&cluster.me.resp)),
        ]),
        (ClusterCommand::Slots, Some(cluster)) => match cluster.topology.load().1.as_ref() {
            Some(topology) => slots(topology),
            None => Value::error(
                ErrorCode::ClusterDown,
                "no cluster formed yet (CLUSTER.CREATE)",
            ),
        },
        (ClusterCommand::Create(members), Some(cluster)) => {
            let members: Vec<(u64, Peer)> = members.iter().map(peer_of).collect();
            let reply = async move { create(&cluster, members).await };
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Join(member), Some(cluster)) => {
            let (id, peer) = peer_of(member);
            let reply = async move { join(&cluster, id, peer).await };
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Forget(id), Some(cluster)) => {
            let id = *id;
            let reply = async move { forget(&cluster, id).await };
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Replicate(primary), Some(cluster)) => {
            let change = Change::Replicate {
                replica: cluster.id,
                primary: *primary,
            };
            let reply = async move {
                match cluster.propose(change, JOIN_PATIENCE).await {
                    Ok(changed) => map(vec![("epoch", Value::Int(changed.epoch as i64))]),
                    Err(why) => Value::error(ErrorCode::Conflict, why),
                }
            };
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Sync { session, chunk }, Some(_)) => {
            replicate::sync(shard, *session, *chunk)
        }
        (
            ClusterCommand::Pull {
                run,
                offset,
                replica,
            },
            Some(_),
        ) => {
            let reply = replicate::pull(shard.clone(), *run, *offset, *replica);
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Failover(replica), Some(cluster)) => {
            let reply = handover::hand_over(shard.clone(), cluster, *replica);
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Migrate { to, ranges }, Some(cluster)) => {
            let reply = migrate::migrate(shard.clone(), cluster, *to, ranges.clone());
            coordinator::complete_later(shard, conn, request_id, index, started, reply);
            return;
        }
        (ClusterCommand::Import { ranges, .. } | ClusterCommand::Drop(ranges), Some(cluster)) => {
            if let Some(refusal) = owned_here(&cluster, ranges) {
                refusal
            } else {
                let reply = on_every_shard(shard.clone(), command.to_owned_bytes());
                coordinator::complete_later(shard, conn, request_id, index, started, reply);
                return;
            }
        }
    };
    coordinator::complete(shard, conn, request_id, index, started, &reply);
}

fn peer_of<P: Payload>(member: &Member<P>) -> (u64, Peer) {
    let text = |p: &P| String::from_utf8_lossy(p.as_ref()).into_owned();
    (
        member.id,
        Peer {
            bus: text(&member.bus),
            addr: text(&member.addr),
            shards: member.shards,
            resp: text(&member.resp),
        },
    )
}

/// The slot map: nodes and runs of slots.
pub fn slots(topology: &Topology) -> Value {
    let nodes = topology
        .nodes()
        .iter()
        .map(|node| {
            map(vec![
                ("id", Value::Int(node.id as i64)),
                ("addr", Value::text(&node.addr)),
                ("shards", Value::Int(i64::from(node.shards))),
                ("resp", Value::text(&node.resp)),
                (
                    "replica_of",
                    topology
                        .primary_of(node.id)
                        .map_or(Value::Nil, |primary| Value::Int(primary as i64)),
                ),
            ])
        })
        .collect();
    let ranges = topology
        .ranges()
        .into_iter()
        .map(|range| {
            Value::Array(vec![
                Value::Int(i64::from(range.first)),
                Value::Int(i64::from(range.last)),
                Value::Int(range.owner as i64),
            ])
        })
        .collect();
    map(vec![
        ("epoch", Value::Int(topology.epoch as i64)),
        ("nodes", Value::Array(nodes)),
        ("ranges", Value::Array(ranges)),
    ])
}

fn info(cluster: Option<&Cluster>) -> Value {
    let Some(cluster) = cluster else {
        return map(vec![("enabled", Value::Bool(false))]);
    };
    let metrics = cluster.raft.metrics().borrow().clone();
    let topology = cluster.topology.load().1;
    let now = clock::now_millis();
    let state = if cluster.serving(now) {
        "ok"
    } else if topology.is_none() {
        "unformed"
    } else {
        "down"
    };
    map(vec![
        ("enabled", Value::Bool(true)),
        ("state", Value::text(state)),
        ("node_id", Value::Int(cluster.id as i64)),
        (
            "epoch",
            Value::Int(topology.as_ref().as_ref().map_or(0, |t| t.epoch) as i64),
        ),
        (
            "role",
            Value::text(format!("{:?}", metrics.state).to_ascii_lowercase()),
        ),
        (
            "leader",
            metrics
                .current_leader
                .map_or(Value::Nil, |id| Value::Int(id as i64)),
        ),
        ("term", Value::Int(metrics.current_term as i64)),
        (
            "voters",
            Value::Array(
                metrics
                    .membership_config
                    .membership()
                    .voter_ids()
                    .map(|id| Value::Int(id as i64))
                    .collect(),
            ),
        ),
        (
            "nodes",
            Value::Int(topology.as_ref().as_ref().map_or(0, |t| t.nodes().len()) as i64),
        ),
        (
            "slots_owned",
            Value::Int(
                topology
                    .as_ref()
                    .as_ref()
                    .map_or(0, |t| t.slots_of(cluster.id)) as i64,
            ),
        ),
        (
            "serving_ms",
            Value::Int(cluster.lease_left(now).min(LEASE_MS) as i64),
        ),
        (
            "replica_of",
            topology
                .as_ref()
                .as_ref()
                .and_then(|t| t.primary_of(cluster.id))
                .map_or(Value::Nil, |primary| Value::Int(primary as i64)),
        ),
        ("replicated", Value::Int(cluster.replicated() as i64)),
    ])
}

/// Forms the cluster: Raft's first membership, then the first topology through the leader.
async fn create(cluster: &Cluster, members: Vec<(u64, Peer)>) -> Value {
    if !members.iter().any(|(id, _)| *id == cluster.id) {
        return Value::error(
            ErrorCode::Syntax,
            format!(
                "CLUSTER.CREATE must name the node it is sent to (id {})",
                cluster.id
            ),
        );
    }
    let mut ids: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != members.len() {
        return Value::error(ErrorCode::Syntax, "CLUSTER.CREATE names a node id twice");
    }
    let nodes: Vec<NodeInfo> = members
        .iter()
        .map(|(id, peer)| NodeInfo {
            id: *id,
            addr: peer.addr.clone(),
            shards: peer.shards,
            resp: peer.resp.clone(),
        })
        .collect();
    match cluster
        .raft
        .initialize(
            members
                .iter()
                .cloned()
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .await
    {
        Ok(()) => {}
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => {
            return Value::error(ErrorCode::Conflict, "this node is already in a cluster");
        }
        Err(error) => return Value::error(ErrorCode::Internal, error.to_string()),
    }
    match cluster.propose(Change::Form(nodes), CREATE_PATIENCE).await {
        Ok(changed) => map(vec![("epoch", Value::Int(changed.epoch as i64))]),
        Err(error) => Value::error(
            ErrorCode::ClusterDown,
            format!("the first topology did not commit: {error}"),
        ),
    }
}

/// How long a membership change may take (a joining node catches up as a learner first).
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// Adds a node: first a Raft voter (caught up as a learner), then in the topology with no
/// slots; CLUSTER.MIGRATE moves slots to it.
async fn join(cluster: &Cluster, id: u64, peer: Peer) -> Value {
    let node = NodeInfo {
        id,
        addr: peer.addr.clone(),
        shards: peer.shards,
        resp: peer.resp.clone(),
    };
    if let Err(why) = cluster
        .to_leader(Proposal::AddVoter(id, peer), JOIN_PATIENCE)
        .await
    {
        return Value::error(
            ErrorCode::ClusterDown,
            format!("node {id} did not become a voter: {why}"),
        );
    }
    match cluster.propose(Change::Join(node), JOIN_PATIENCE).await {
        Ok(changed) => map(vec![("epoch", Value::Int(changed.epoch as i64))]),
        Err(why) => Value::error(
            ErrorCode::ClusterDown,
            format!("the join did not commit: {why}"),
        ),
    }
}

/// Removes a node that owns no slots: out of the topology first, then out of the voters.
async fn forget(cluster: &Cluster, id: u64) -> Value {
    let changed = match cluster.propose(Change::Leave(id), JOIN_PATIENCE).await {
        Ok(changed) => changed,
        Err(why) => return Value::error(ErrorCode::Conflict, why),
    };
    match cluster
        .to_leader(Proposal::RemoveVoter(id), JOIN_PATIENCE)
        .await
    {
        Ok(_) => map(vec![("epoch", Value::Int(changed.epoch as i64))]),
        Err(why) => Value::error(
            ErrorCode::ClusterDown,
            format!("node {id} left the topology but is still a voter: {why}"),
        ),
    }
}

/// CONFLICT if this node owns a slot of `ranges`: taking slot data in, or dropping it, is
/// only for slots another node owns.
fn owned_here(cluster: &Cluster, ranges: &[Range]) -> Option<Value> {
    let topology = cluster.topology.load().1;
    let Some(topology) = topology.as_ref() else {
        return Some(Value::error(
            ErrorCode::ClusterDown,
            "no cluster formed yet (CLUSTER.CREATE)",
        ));
    };
    let owned = ranges
        .iter()
        .flat_map(|&(first, last)| first..=last)
        .find(|&slot| topology.owner_id(slot) == cluster.id)?;
    Some(Value::error(
        ErrorCode::Conflict,
        format!("slot {owned} is this node's: CLUSTER.IMPORT and CLUSTER.DROP are for slots another node owns"),
    ))
}

/// CLUSTER.IMPORT or CLUSTER.DROP on every shard, each its part; the counts add up.
async fn on_every_shard(shard: Rc<Shard>, command: ClusterCommand) -> Value {
    let shards = shard.shards();
    let parts: Vec<ClusterCommand> = match command {
        ClusterCommand::Import {
            reset,
            ranges,
            entries,
        } => {
            let slots = crate::families::migration::SlotSet::of(&ranges);
            let split = crate::families::migration::split(&entries, &slots, shards);
            let parts = match split {
                Ok((parts, _)) => parts,
                Err(why) => {
                    return Value::error(ErrorCode::Protocol, format!("CLUSTER.IMPORT: {why}"))
                }
            };
            parts
                .into_iter()
                .map(|part| ClusterCommand::Import {
                    reset,
                    ranges: ranges.clone(),
                    entries: part.freeze(),
                })
                .collect()
        }
        other => vec![other; usize::from(shards)],
    };
    let answers: Vec<_> = parts
        .into_iter()
        .zip(0..shards)
        .map(|(part, to)| {
            shard.call(to, move |target: &Rc<Shard>| {
                let part = Command::Cluster(part);
                let now = clock::now_millis();
                if let Some(refusal) = target.write_refusal() {
                    return refusal;
                }
                if let Some(refusal) = target.make_room(part.spec(), now) {
                    return refusal;
                }
                target.with_keyspace(|keyspace| {
                    crate::families::apply(keyspace, &part, now).into_value()
                })
            })
        })
        .collect();
    let mut total = 0;
    for answer in answers {
        match answer.await {
            Some(Value::Int(n)) => total += n,
            Some(error @ Value::Error(_)) => return error,
            _ => return crate::route::coordinator::unanswered(),
        }
    }
    Value::Int(total)
}
