//! Moving slots from this node to another, a batch at a time: pause the batch's writes,
//! copy its data to the taker, flip ownership through Raft once the taker has applied the
//! copy, then drop the copies here.
//!
//! Writes to a batch get TRY_AGAIN from the moment it pauses; a barrier then waits out
//! every write that passed the check before (a round of calls from each shard to each
//! shard, after each shard's geo tasks from before have finished), so the copy holds
//! every acknowledged write. Reads go on here until the flip, the data being whole. The
//! flip commits only if this node still owns every slot of the batch, and only after the
//! taker answered how many entries it applied and that matched what was sent; anything
//! short of that resumes the batch here and reports the error.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tessera_client::Connection;
use tessera_cluster::{slot_runs, NodeId, SLOT_COUNT};
use tessera_protocol::commands::cluster::Range;
use tessera_protocol::{ClusterCommand, Command, ErrorCode, Value};

use crate::cluster::{Change, Cluster};
use crate::data::codec::RECORD_HEADER;
use crate::families::migration::{self, SlotSet};
use crate::families::{self, Keyspace};
use crate::shard::Shard;

/// Slots one pause covers: small enough that a pause lasts milliseconds at the data
/// sizes a node holds, large enough that the 16,384 slots take few Raft entries.
const BATCH_SLOTS: usize = 64;
/// Most entry bytes one CLUSTER.IMPORT carries.
const CHUNK_BYTES: usize = 1 << 20;
/// How long a flip may take to commit and apply here.
const FLIP_PATIENCE: Duration = Duration::from_secs(10);

/// What a migration moved.
#[derive(Default)]
struct Moved {
    slots: usize,
    entries: u64,
    bytes: u64,
    longest_pause: Duration,
    epoch: u64,
}

/// CLUSTER.MIGRATE: moves `ranges`, which this node must own, to node `to`.
pub async fn migrate(
    shard: Rc<Shard>,
    cluster: Arc<Cluster>,
    to: NodeId,
    ranges: Vec<Range>,
) -> Value {
    let started = Instant::now();
    let Some(topology) = cluster.topology.load().1.as_ref().clone() else {
        return Value::error(ErrorCode::ClusterDown, "no cluster formed yet");
    };
    if to == cluster.id {
        return Value::error(ErrorCode::Syntax, "a node cannot migrate slots to itself");
    }
    let Some(taker) = topology.node(to).cloned() else {
        return Value::error(
            ErrorCode::NotFound,
            format!("node {to} is not in the cluster"),
        );
    };
    let mut slots: Vec<u16> = ranges
        .iter()
        .flat_map(|&(first, last)| first..=last.min(SLOT_COUNT - 1))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    if let Some(&foreign) = slots.iter().find(|&&s| topology.owner_id(s) != cluster.id) {
        return Value::error(
            ErrorCode::Conflict,
            format!(
                "slot {foreign} is owned by node {}, not this one",
                topology.owner_id(foreign)
            ),
        );
    }
    let link = match Connection::open(&taker.addr, None, &cluster.peer_client).await {
        Ok(link) => link,
        Err(error) => {
            return Value::error(
                ErrorCode::ClusterDown,
                format!("cannot reach node {to} at {}: {error}", taker.addr),
            )
        }
    };
    let mut moved = Moved {
        epoch: topology.epoch,
        ..Moved::default()
    };
    for batch in slots.chunks(BATCH_SLOTS) {
        let paused_at = Instant::now();
        for &slot in batch {
            cluster.paused.set(usize::from(slot));
        }
        let outcome = move_batch(&shard, &cluster, &link, to, batch).await;
        for &slot in batch {
            cluster.paused.clear(usize::from(slot));
        }
        moved.longest_pause = moved.longest_pause.max(paused_at.elapsed());
        crate::diagnostics::note_elapsed(
            &shard.keyspace,
            crate::diagnostics::latency::MIGRATION_PAUSE,
            paused_at.elapsed(),
        );
        match outcome {
            Ok((entries, bytes, epoch)) => {
                moved.slots += batch.len();
                moved.entries += entries;
                moved.bytes += bytes;
                moved.epoch = epoch;
            }
            Err(error) => {
                tracing::warn!(to, moved = moved.slots, "migration stopped: {error:?}");
                return error;
            }
        }
    }
    let ms = |d: Duration| Value::Int(d.as_millis() as i64);
    tracing::info!(
        to,
        slots = moved.slots,
        entries = moved.entries,
        bytes = moved.bytes,
        "slots migrated"
    );
    Value::Map(
        [
            ("slots", Value::Int(moved.slots as i64)),
            ("keys", Value::Int(moved.entries as i64)),
            ("bytes", Value::Int(moved.bytes as i64)),
            ("ms", ms(started.elapsed())),
            ("longest_pause_ms", ms(moved.longest_pause)),
            ("epoch", Value::Int(moved.epoch as i64)),
        ]
        .into_iter()
        .map(|(k, v)| (Value::text(k), v))
        .collect(),
    )
}

/// Copies one paused batch to `to`, flips it, and drops it here: the entries and bytes
/// sent, and the epoch of the flip.
async fn move_batch(
    shard: &Rc<Shard>,
    cluster: &Cluster,
    link: &Connection,
    to: NodeId,
    batch: &[u16],
) -> Result<(u64, u64, u64), Value> {
    barrier(shard).await;
    let ranges = slot_runs(batch);
    let mut entries = BytesMut::new();
    let mut count = 0;
    for answer in on_every_shard(shard, &ranges, |keyspace, ranges, _| {
        migration::save(keyspace, &SlotSet::of(ranges))
    }) {
        let saved = answer.await.ok_or_else(super::coordinator::unanswered)?;
        entries.extend_from_slice(&saved.entries);
        count += saved.count;
    }
    let bytes = entries.len() as u64;
    let mut applied = 0;
    for (at, chunk) in chunks(entries.freeze(), CHUNK_BYTES)
        .into_iter()
        .enumerate()
    {
        let import = Command::Cluster(ClusterCommand::Import {
            reset: at == 0,
            ranges: ranges.clone(),
            entries: chunk,
        });
        match link.request(import).await {
            Ok(Value::Int(n)) => applied += n as u64,
            Ok(Value::Error(error)) => return Err(Value::Error(error)),
            Ok(other) => {
                return Err(Value::error(
                    ErrorCode::Internal,
                    format!("node {to} answered CLUSTER.IMPORT with {other:?}"),
                ))
            }
            Err(error) => {
                return Err(Value::error(
                    ErrorCode::ClusterDown,
                    format!("node {to} did not take the slots: {error}"),
                ))
            }
        }
    }
    if applied != count {
        return Err(Value::error(
            ErrorCode::Internal,
            format!("node {to} applied {applied} of the {count} entries sent; nothing flipped"),
        ));
    }
    let change = Change::Move {
        from: cluster.id,
        to,
        slots: batch.to_vec(),
    };
    let changed = cluster
        .propose(change, FLIP_PATIENCE)
        .await
        .map_err(|why| {
            Value::error(
                ErrorCode::ClusterDown,
                format!("the flip did not commit: {why}"),
            )
        })?;
    if !cluster.applied(changed.epoch, FLIP_PATIENCE).await {
        return Err(Value::error(
            ErrorCode::ClusterDown,
            format!(
                "epoch {} committed but not applied here in time",
                changed.epoch
            ),
        ));
    }
    // This node answers MOVED for the batch now; what it held there is a stale copy.
    for answer in on_every_shard(shard, &ranges, |keyspace, ranges, now| {
        let drop: Command = Command::Cluster(ClusterCommand::Drop(ranges.to_vec()));
        families::apply(keyspace, &drop, now).into_value()
    }) {
        answer.await;
    }
    Ok((count, bytes, changed.epoch))
}

/// Runs `work` on every shard's keyspace with the batch's ranges and the time.
fn on_every_shard<T: Send + 'static>(
    shard: &Rc<Shard>,
    ranges: &[Range],
    work: fn(&mut Keyspace, &[Range], u64) -> T,
) -> Vec<crate::shard::call::Answer<T>> {
    (0..shard.shards())
        .map(|to| {
            let ranges = ranges.to_vec();
            shard.call(to, move |target: &Rc<Shard>| {
                let now = crate::clock::now_millis();
                target.with_keyspace(|keyspace| work(keyspace, &ranges, now))
            })
        })
        .collect()
}

/// Returns once every write that passed its slot check before now has run: each shard
/// waits out its geo tasks from before, then sends every shard a call, which arrives
/// after anything it handed that shard earlier.
pub(crate) async fn barrier(shard: &Rc<Shard>) {
    let shards = shard.shards();
    let rounds: Vec<_> = (0..shards)
        .map(|each| {
            shard.call_later(each, move |here: &Rc<Shard>| {
                let here = here.clone();
                async move {
                    here.fence.passed().await;
                    for other in 0..shards {
                        here.call(other, |_| ()).await;
                    }
                }
            })
        })
        .collect();
    for round in rounds {
        round.await;
    }
}

/// Framed records cut into pieces of at most `limit` bytes at record boundaries (a record
/// larger than `limit` travels alone); always at least one piece.
pub(crate) fn chunks(records: Bytes, limit: usize) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at + RECORD_HEADER <= records.len() {
        let len = u32::from_le_bytes([
            records[at],
            records[at + 1],
            records[at + 2],
            records[at + 3],
        ]) as usize;
        let end = (at + RECORD_HEADER + len).min(records.len());
        if end - start > limit && at > start {
            pieces.push(records.slice(start..at));
            start = at;
        }
        at = end;
    }
    pieces.push(records.slice(start..));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::codec::frame;

    #[test]
    fn chunks_cut_at_record_boundaries() {
        let mut records = BytesMut::new();
        for len in [10, 500, 10, 2000, 10] {
            frame(&mut records, |buf| buf.extend_from_slice(&vec![7; len]));
        }
        let records = records.freeze();
        let pieces = chunks(records.clone(), 600);
        let lens: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![22 + 512 + 22, 2012, 22]);
        assert_eq!(pieces.concat(), records.to_vec());
        assert_eq!(chunks(Bytes::new(), 600), vec![Bytes::new()]);
    }
}
