//! A planned failover: the primary stops taking writes for its slots, waits until the
//! replica holds every change, and hands its slots over through the topology, so nothing
//! it acknowledged is lost.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tessera_cluster::{NodeId, SLOT_COUNT};
use tessera_protocol::{ErrorCode, Value};

use crate::cluster::{Change, Cluster};
use crate::route::{acks, migrate};
use crate::shard::Shard;

/// How long the replica has to catch up while writes are paused.
const CATCH_UP_PATIENCE: Duration = Duration::from_secs(10);
/// How long the topology change has to commit and reach this node.
const FLIP_PATIENCE: Duration = Duration::from_secs(10);

/// CLUSTER.FAILOVER on the primary: hands every slot it owns to `replica`.
pub async fn hand_over(shard: Rc<Shard>, cluster: Arc<Cluster>, replica: NodeId) -> Value {
    let topology = cluster.topology.load().1;
    let Some(topology) = topology.as_ref() else {
        return Value::error(ErrorCode::ClusterDown, "no cluster formed yet");
    };
    if topology.primary_of(replica) != Some(cluster.id) {
        return Value::error(
            ErrorCode::Conflict,
            format!("node {replica} is not a replica of this node"),
        );
    }
    let slots: Vec<u16> = (0..SLOT_COUNT)
        .filter(|&slot| topology.owner_id(slot) == cluster.id)
        .collect();
    // Writes for these slots get TRY_AGAIN from now on, and clients retry them; the
    // barrier lets through every write that passed its check before.
    for &slot in &slots {
        cluster.paused.set(usize::from(slot));
    }
    let outcome = pause_and_flip(&shard, &cluster, replica).await;
    for &slot in &slots {
        cluster.paused.clear(usize::from(slot));
    }
    match outcome {
        Ok(epoch) => {
            tracing::info!(replica, epoch, "handed the slots over to a replica");
            Value::Map(vec![(Value::text("epoch"), Value::Int(epoch as i64))])
        }
        Err(error) => error,
    }
}

/// While the slots are paused: waits for `replica` to hold everything, then commits the
/// hand-over and waits until this node has applied it (so unpausing yields MOVED).
async fn pause_and_flip(
    shard: &Rc<Shard>,
    cluster: &Cluster,
    replica: NodeId,
) -> Result<u64, Value> {
    migrate::barrier(shard).await;
    let deadline = tokio::time::Instant::now() + CATCH_UP_PATIENCE;
    let answers: Vec<_> = (0..shard.shards())
        .map(|to| {
            shard.call_later(to, move |target: &Rc<Shard>| {
                acks::wait_for(target.clone(), 1, Some(replica), deadline)
            })
        })
        .collect();
    for (at, answer) in answers.into_iter().enumerate() {
        if answer.await != Some(1) {
            return Err(Value::error(
                ErrorCode::Conflict,
                format!(
                    "node {replica} did not catch up with shard {at} within {} s; nothing changed",
                    CATCH_UP_PATIENCE.as_secs()
                ),
            ));
        }
    }
    let change = Change::Failover {
        failed: cluster.id,
        promoted: replica,
    };
    let changed = cluster
        .propose(change, FLIP_PATIENCE)
        .await
        .map_err(|why| Value::error(ErrorCode::ClusterDown, format!("not committed: {why}")))?;
    // Committed: the replica takes writes once it applies the change, so this node must
    // not take one more until it has applied it too, however long that takes.
    while !cluster.applied(changed.epoch, FLIP_PATIENCE).await {
        tracing::warn!(
            epoch = changed.epoch,
            "the hand-over committed but is not applied here yet; the slots stay paused"
        );
    }
    Ok(changed.epoch)
}
