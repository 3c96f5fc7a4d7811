//! In cluster mode, whether this node may run a request: every key it names must be in a
//! slot this node owns, and the node must hold a confirmed view of the topology.
//!
//! A request for another node's slot is answered MOVED (`slot host:port epoch`), which a
//! client follows after refreshing its slot map. A multi-key command whose keys are on
//! several nodes is run for the client: split by node through this shard's own
//! cluster client, as tessera-client would have split it. A geo command is placed by its index
//! name, so an index (a city, say) lives whole on one node and GEO.NEAR stays exact; every
//! other command by each of its keys.

use tessera_cluster::{key_slot, NodeId};
use tessera_protocol::wire::Payload;
use tessera_protocol::{Command, ErrorCode, KeySpec, Value};

use crate::clock;
use crate::cluster::Cluster;
use crate::shard::Shard;

/// The refusal for a request this node must not run now; `None` to run it (always, in
/// single-node mode).
pub fn refusal<P: Payload>(shard: &Shard, command: &Command<P>) -> Option<Value> {
    let cluster = shard.node.cluster.as_ref()?;
    if command.spec().keys == KeySpec::None {
        return None;
    }
    let mut names_keys = false;
    command.for_each_key(&mut |_| names_keys = true);
    if !names_keys {
        // DBSIZE, INFO, FLUSHALL: about this node, whatever the cluster says.
        return None;
    }
    let topology = shard.topology()?;
    let Some(topology) = topology.as_ref() else {
        return Some(Value::error(
            ErrorCode::ClusterDown,
            "no cluster formed yet (CLUSTER.CREATE)",
        ));
    };
    if !cluster.serving(clock::now_millis()) {
        return Some(Value::error(
            ErrorCode::ClusterDown,
            "this node's view of the cluster is not confirmed by a quorum; retry shortly",
        ));
    }
    let mut local = false;
    let mut foreign: Option<(u16, NodeId)> = None;
    let mut several = false;
    command.for_each_key(&mut |key| {
        let slot = key_slot(key);
        let owner = topology.owner_id(slot);
        if owner == cluster.id {
            local = true;
        } else {
            match foreign {
                None => foreign = Some((slot, owner)),
                Some((_, seen)) if seen != owner => several = true,
                Some(_) => {}
            }
        }
    });
    let Some((slot, owner)) = foreign else {
        return paused(cluster, command);
    };
    if local || several {
        return Some(Value::error(
            ErrorCode::CrossNode,
            "the keys are on several nodes: send each node its part (tessera-client splits by owner)",
        ));
    }
    let addr = topology.node(owner).map_or("?", |node| node.addr.as_str());
    Some(Value::error(
        ErrorCode::Moved,
        format!("{slot} {addr} {}", topology.epoch),
    ))
}

/// TRY_AGAIN for a write to a slot whose migration is copying it: the write would be
/// missing from the copy. Reads go on, the data here being whole until the flip.
fn paused<P: Payload>(cluster: &Cluster, command: &Command<P>) -> Option<Value> {
    if !command.spec().writes || !cluster.paused.any() {
        return None;
    }
    let mut moving = None;
    command.for_each_key(&mut |key| {
        let slot = key_slot(key);
        if moving.is_none() && cluster.paused.contains(usize::from(slot)) {
            moving = Some(slot);
        }
    });
    let slot = moving?;
    Some(Value::error(
        ErrorCode::TryAgain,
        format!("slot {slot} is moving to another node; retry shortly"),
    ))
}

/// Whether a refused request is a multi-key command this node runs across nodes for the
/// client instead (not a cart: a cart is all-or-nothing only on one shard).
pub fn runs_across_nodes<P: Payload>(refusal: &Value, command: &Command<P>) -> bool {
    matches!(refusal, Value::Error(e) if e.code == ErrorCode::CrossNode as u16)
        && matches!(command.spec().keys, KeySpec::Many | KeySpec::Pairs)
        && !matches!(
            command,
            Command::Inventory(tessera_protocol::InventoryCommand::ReserveMulti { .. })
        )
}

/// Runs a multi-key command over the nodes owning its keys, through this shard's cluster
/// client (connected to this node, once), which splits it by owner and combines the parts.
pub async fn across_nodes(shard: std::rc::Rc<Shard>, command: Command) -> Value {
    let Some(cluster) = shard.node.cluster.clone() else {
        return Value::error(ErrorCode::Internal, "not in cluster mode");
    };
    let client = shard
        .cluster_client
        .get_or_try_init(|| {
            tessera_client::Client::connect_with(&cluster.me.addr, cluster.peer_client.clone())
        })
        .await;
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            return Value::error(
                ErrorCode::ClusterDown,
                format!("cannot reach the other nodes for a cross-node command: {error}"),
            )
        }
    };
    // This node has the newest map (it refused by it); a split by an older one could send
    // a part back here that spans nodes again, and wait on itself.
    client.reload_routes().await;
    match client.call(command).await {
        Ok(reply) => reply,
        Err(tessera_client::Error::Server(error)) => Value::Error(error),
        Err(error) => Value::error(
            ErrorCode::ClusterDown,
            format!("a cross-node part failed: {error}"),
        ),
    }
}
