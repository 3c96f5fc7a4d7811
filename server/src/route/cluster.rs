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
use crate::shard::Shard;

/// What this node does with a request, in cluster mode.
pub enum Verdict {
    /// Run it here; `slot` is its first key's slot when it names keys in cluster mode,
    /// so routing need not hash the key again.
    Run {
        /// The first key's slot.
        slot: Option<u16>,
    },
    /// Answer this instead (MOVED, CLUSTER_DOWN, CROSS_NODE or TRY_AGAIN).
    Refuse(Value),
    /// A multi-key command over several nodes: split it across them for the client.
    AcrossNodes,
}

/// Decides whether this node runs a request now (always, in single-node mode), in one
/// pass over its keys; with `replica_reads` (READONLY), a read of the slots of the
/// primary this node replicates runs here too.
pub fn check<P: Payload>(shard: &Shard, command: &Command<P>, replica_reads: bool) -> Verdict {
    let run_anyway = Verdict::Run { slot: None };
    let Some(cluster) = shard.node.cluster.as_ref() else {
        return run_anyway;
    };
    if command.spec().keys == KeySpec::None {
        return run_anyway;
    }
    let Some(published) = shard.topology() else {
        return run_anyway;
    };
    let Some(topology) = published.as_ref() else {
        let mut names_keys = false;
        command.for_each_key(&mut |_| names_keys = true);
        if !names_keys {
            return run_anyway;
        }
        return Verdict::Refuse(Value::error(
            ErrorCode::ClusterDown,
            "no cluster formed yet (CLUSTER.CREATE)",
        ));
    };
    // A write to a slot whose migration is copying it would be missing from the copy.
    let watch_pauses = command.spec().writes && cluster.paused.any();
    let followed = (replica_reads && !command.spec().writes)
        .then(|| topology.primary_of(cluster.id))
        .flatten();
    let mut first = None;
    let mut moving = None;
    let mut local = false;
    let mut foreign: Option<(u16, NodeId)> = None;
    let mut several = false;
    command.for_each_key(&mut |key| {
        let slot = key_slot(key);
        first.get_or_insert(slot);
        if watch_pauses && moving.is_none() && cluster.paused.contains(usize::from(slot)) {
            moving = Some(slot);
        }
        let owner = topology.owner_id(slot);
        if owner == cluster.id || Some(owner) == followed {
            local = true;
        } else {
            match foreign {
                None => foreign = Some((slot, owner)),
                Some((_, seen)) if seen != owner => several = true,
                Some(_) => {}
            }
        }
    });
    let Some(first) = first else {
        // DBSIZE, INFO, FLUSHALL: about this node, whatever the cluster says.
        return run_anyway;
    };
    if !cluster.serving(clock::now_millis()) {
        return Verdict::Refuse(Value::error(
            ErrorCode::ClusterDown,
            "this node's view of the cluster is not confirmed by a quorum; retry shortly",
        ));
    }
    if let Some((slot, owner)) = foreign {
        if local || several {
            if splits_across_nodes(command) {
                return Verdict::AcrossNodes;
            }
            return Verdict::Refuse(Value::error(
                ErrorCode::CrossNode,
                "the keys are on several nodes: send each node its part (tessera-client splits by owner)",
            ));
        }
        let (addr, resp) = topology
            .node(owner)
            .map_or(("?", ""), |node| (node.addr.as_str(), node.resp.as_str()));
        // The owner's RESP address rides along for the RESP port to send Redis clients.
        let message = format!("{slot} {addr} {} {resp}", topology.epoch);
        return Verdict::Refuse(Value::error(ErrorCode::Moved, message.trim_end()));
    }
    if let Some(slot) = moving {
        // Reads go on: the data here is whole until the flip.
        return Verdict::Refuse(Value::error(
            ErrorCode::TryAgain,
            format!("slot {slot} is moving to another node; retry shortly"),
        ));
    }
    Verdict::Run { slot: Some(first) }
}

/// Whether a multi-key command this node does not wholly own is run across nodes for the
/// client (not a cart: a cart is all-or-nothing only on one shard).
fn splits_across_nodes<P: Payload>(command: &Command<P>) -> bool {
    matches!(command.spec().keys, KeySpec::Many | KeySpec::Pairs)
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
