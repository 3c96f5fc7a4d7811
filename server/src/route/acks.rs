//! What each replica has acknowledged of a primary shard's stream, and WAIT: holding a
//! reply until enough replicas have every change made before it.
//!
//! A replica's pull names the offset it has applied (and made durable under its own
//! policy) up to, so the pull is the acknowledgement: no separate message, and a replica
//! that stops pulling simply stops acknowledging.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tessera_cluster::NodeId;
use tessera_protocol::Value;

use crate::shard::Shard;

/// The longest a WAIT waits, also when asked for no limit: a WAIT holds a task per shard,
/// and a client must not be able to pile up ones that never end.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// One replica's standing in one shard's stream.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// The replica node.
    pub replica: NodeId,
    /// The stream it pulls.
    pub run: u64,
    /// Everything before this offset it holds.
    pub offset: u64,
    /// When it last pulled.
    pub seen: Instant,
}

/// What one shard knows of its replicas, for INFO.
#[derive(Debug, Clone, Default)]
pub struct ReplicaLag {
    /// The replica node.
    pub replica: NodeId,
    /// Stream bytes it still lacks.
    pub lag_bytes: u64,
    /// Milliseconds since it last pulled.
    pub seen_ms_ago: u64,
}

/// Notes that `replica` holds shard `shard`'s stream `run` up to `offset`, waking WAITs.
pub fn note(shard: &Shard, replica: NodeId, run: u64, offset: u64) {
    if replica == 0 {
        return;
    }
    let mut acks = shard.replication.acks.borrow_mut();
    let seen = Instant::now();
    match acks.iter_mut().find(|ack| ack.replica == replica) {
        Some(ack) => {
            let advanced = ack.run != run || ack.offset != offset;
            *ack = Ack {
                replica,
                run,
                offset,
                seen,
            };
            if !advanced {
                return;
            }
        }
        None => acks.push(Ack {
            replica,
            run,
            offset,
            seen,
        }),
    }
    drop(acks);
    shard.replication.acked.notify_waiters();
}

/// Where this shard's stream ends once everything it has changed is shipped: the mark a
/// replica must reach to hold all of it. `None` when no replica ever copied the shard.
fn mark(shard: &Shard) -> Option<(u64, u64)> {
    shard.journal_geo();
    shard.ship();
    let keyspace = shard.keyspace.borrow();
    let backlog = keyspace.backlog.as_ref()?;
    Some((backlog.run, backlog.end()))
}

/// Replicas (`only` that one, when named) holding this shard's stream `run` up to `end`.
fn holding(shard: &Shard, (run, end): (u64, u64), only: Option<NodeId>) -> u64 {
    let acks = shard.replication.acks.borrow();
    acks.iter()
        .filter(|ack| only.is_none_or(|replica| ack.replica == replica))
        .filter(|ack| ack.run == run && ack.offset >= end)
        .count() as u64
}

/// The replicas (`only` that one, when named) that hold every change this shard made
/// before the call, once that is at least `wanted` or `deadline` has passed.
pub async fn wait_for(
    shard: Rc<Shard>,
    wanted: u64,
    only: Option<NodeId>,
    deadline: tokio::time::Instant,
) -> u64 {
    let Some(mark) = mark(&shard) else {
        return 0;
    };
    loop {
        let acked = shard.replication.acked.notified();
        let count = holding(&shard, mark, only);
        if count >= wanted {
            return count;
        }
        if tokio::time::timeout_at(deadline, acked).await.is_err() {
            return holding(&shard, mark, only);
        }
    }
}

/// WAIT on this node: every shard's count (each after the requests this connection sent
/// it earlier, which reach it first), and the smallest of them.
pub async fn wait(shard: Rc<Shard>, wanted: u64, timeout_ms: u64) -> Value {
    let limit = match timeout_ms {
        0 => MAX_WAIT,
        ms => Duration::from_millis(ms).min(MAX_WAIT),
    };
    let deadline = tokio::time::Instant::now() + limit;
    let answers: Vec<_> = (0..shard.shards())
        .map(|to| {
            shard.call_later(to, move |target: &Rc<Shard>| {
                wait_for(target.clone(), wanted, None, deadline)
            })
        })
        .collect();
    let mut least = u64::MAX;
    for answer in answers {
        least = least.min(answer.await.unwrap_or(0));
    }
    Value::Int(least as i64)
}

/// Each replica's lag behind this shard's stream, as its last pull told.
pub fn lags(shard: &Shard) -> Vec<ReplicaLag> {
    let keyspace = shard.keyspace.borrow();
    let Some(backlog) = keyspace.backlog.as_ref() else {
        return Vec::new();
    };
    let now = Instant::now();
    shard
        .replication
        .acks
        .borrow()
        .iter()
        .map(|ack| ReplicaLag {
            replica: ack.replica,
            lag_bytes: if ack.run == backlog.run {
                backlog.end().saturating_sub(ack.offset)
            } else {
                backlog.end()
            },
            seen_ms_ago: now.saturating_duration_since(ack.seen).as_millis() as u64,
        })
        .collect()
}
