//! Replication between a primary's shard and the same-numbered shard of each replica:
//! the primary answers copies (CLUSTER.SYNC) and pulls (CLUSTER.PULL); a replica's shard
//! follows its primary, copying it afresh when the stream cannot continue.
//!
//! The stream is pulled, not pushed: each pull names where the replica stands, which is
//! also its acknowledgement, and a slow replica only ever holds back itself. A copy is
//! taken in one turn of the primary's shard, right after the journal has been shipped to
//! the backlog, so the copy holds exactly the changes before the offset it names.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_client::Connection;
use tessera_cluster::{NodeId, SLOT_COUNT};
use tessera_protocol::{ClusterCommand, Command, ErrorCode, Value};

use crate::cluster::Cluster;
use crate::data::backlog::{Backlog, Gone};
use crate::families::migration::{self, SlotSet};
use crate::shard::Shard;

/// How long a pull waits for changes before answering with none.
const PULL_WAIT: Duration = Duration::from_millis(100);
/// Most entry bytes one CLUSTER.SYNC chunk carries.
const SYNC_CHUNK_BYTES: usize = 1 << 20;
/// Copies a shard keeps for replicas still reading them.
const MAX_COPIES: usize = 4;
/// How long a copy waits for its reader.
const COPY_PATIENCE: Duration = Duration::from_secs(60);
/// How long a replica waits before trying its primary again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// One copy of a shard being read by a replica.
struct ShardCopy {
    session: u64,
    offset: u64,
    chunks: Vec<Bytes>,
    taken: Instant,
}

/// A shard's replication state, in either role.
#[derive(Default)]
pub struct Replication {
    /// Copies being read.
    copies: RefCell<Vec<ShardCopy>>,
    /// Raised (for every waiting pull) when the backlog grows.
    pub grown: tokio::sync::Notify,
    /// What this shard knows as a replica.
    pub follower: RefCell<FollowerStats>,
    /// Copies handed out since start.
    pub copies_taken: std::cell::Cell<u64>,
    /// Where each replica stands in this shard's stream, as its pulls said.
    pub acks: RefCell<Vec<crate::route::acks::Ack>>,
    /// Raised (for every waiting WAIT) when a replica's standing moves.
    pub acked: tokio::sync::Notify,
}

/// A replica shard's view of its stream, for INFO.
#[derive(Debug, Clone, Default)]
pub struct FollowerStats {
    /// The primary followed, if any.
    pub primary: Option<NodeId>,
    /// Whether the last pull succeeded.
    pub linked: bool,
    /// The stream and where this shard stands in it.
    pub run: u64,
    /// Offset applied up to.
    pub offset: u64,
    /// Bytes the primary had past that offset at the last pull.
    pub lag_bytes: u64,
    /// Full copies taken since start.
    pub full_syncs: u64,
    /// Records applied since start.
    pub records: u64,
    /// When the last pull answered.
    pub pulled_at: Option<Instant>,
}

/// One shard's replication figures, for INFO.
#[derive(Debug, Clone, Default)]
pub struct ReplicationStats {
    /// The stream as a replica follows it.
    pub follower: FollowerStats,
    /// Milliseconds since the last pull answered, as a replica (`None`: never).
    pub pulled_ms_ago: Option<u64>,
    /// Where this shard's own stream ends (0 when no replica ever copied it).
    pub stream_end: u64,
    /// Stream bytes kept for replicas.
    pub backlog_bytes: u64,
    /// Copies handed out since start.
    pub copies_taken: u64,
    /// Each replica's standing in this shard's stream.
    pub replicas: Vec<crate::route::acks::ReplicaLag>,
}

impl Replication {
    /// This shard's figures now.
    pub fn stats(&self, shard: &Shard) -> ReplicationStats {
        let (stream_end, backlog_bytes) = shard
            .keyspace
            .borrow()
            .backlog
            .as_ref()
            .map_or((0, 0), |b| (b.end(), b.held() as u64));
        let follower = self.follower.borrow().clone();
        ReplicationStats {
            pulled_ms_ago: follower.pulled_at.map(|at| at.elapsed().as_millis() as u64),
            follower,
            stream_end,
            backlog_bytes,
            copies_taken: self.copies_taken.get(),
            replicas: crate::route::acks::lags(shard),
        }
    }
}

/// A fresh backlog for shard `id` of `limit` bytes, named so that no two runs of a shard
/// share a name.
fn new_backlog(id: u16, limit: usize) -> Backlog {
    use std::hash::BuildHasher;
    let run = std::collections::hash_map::RandomState::new().hash_one((
        id,
        std::time::SystemTime::now(),
        std::process::id(),
    )) | 1;
    Backlog::new(run, limit)
}

/// CLUSTER.SYNC on a primary's shard: chunk `chunk` of copy `session`, taking a copy
/// first when `session` is 0.
pub fn sync(shard: &Rc<Shard>, session: u64, chunk: u64) -> Value {
    if let Some(refusal) = not_a_source(shard) {
        return refusal;
    }
    let replication = &shard.replication;
    let mut copies = replication.copies.borrow_mut();
    copies.retain(|copy| copy.taken.elapsed() < COPY_PATIENCE);
    let session = if session == 0 {
        let copy = take_copy(shard);
        let session = copy.session;
        if copies.len() >= MAX_COPIES {
            copies.remove(0);
        }
        copies.push(copy);
        replication
            .copies_taken
            .set(replication.copies_taken.get() + 1);
        session
    } else {
        session
    };
    let Some(at) = copies.iter().position(|copy| copy.session == session) else {
        return Value::error(
            ErrorCode::Conflict,
            "no such copy (it expired or was replaced): start again with session 0",
        );
    };
    let copy = &copies[at];
    let Some(entries) = usize::try_from(chunk)
        .ok()
        .and_then(|chunk| copy.chunks.get(chunk))
    else {
        return Value::error(ErrorCode::Syntax, "no such chunk");
    };
    let run = shard
        .keyspace
        .borrow()
        .backlog
        .as_ref()
        .map_or(0, |b| b.run);
    let reply = Value::Array(vec![
        Value::Int(run as i64),
        Value::Int(copy.offset as i64),
        Value::Int(session as i64),
        Value::Int(copy.chunks.len() as i64),
        Value::Bytes(entries.clone()),
    ]);
    if chunk + 1 == copy.chunks.len() as u64 {
        copies.remove(at);
    }
    reply
}

/// The refusal a node that is itself a replica gives copies and pulls: what its shard
/// changes now is its own primary's stream (its copy, at first), which must not flow back
/// to a replica promoted in its place.
fn not_a_source(shard: &Shard) -> Option<Value> {
    let cluster = shard.node.cluster.as_ref()?;
    let primary = primary_of(cluster)?.0;
    Some(Value::error(
        ErrorCode::Conflict,
        format!("this node is a replica of node {primary} now"),
    ))
}

/// Ships the journal, then saves every entry of the shard: the copy and the stream
/// offset it stands at.
fn take_copy(shard: &Rc<Shard>) -> ShardCopy {
    shard.journal_geo();
    let mut keyspace = shard.keyspace.borrow_mut();
    if keyspace.backlog.is_none() {
        // The first copy starts the stream: until a replica copies a shard, its writes
        // cost nothing here.
        keyspace.start_journal();
        keyspace.backlog = Some(new_backlog(shard.id, shard.node.repl_backlog_bytes));
    }
    keyspace.ship_journal();
    let (run, offset) = {
        let backlog = keyspace.backlog.as_ref().expect("just made");
        (backlog.run, backlog.end())
    };
    let saved = migration::save(&keyspace, &SlotSet::of(&[(0, SLOT_COUNT - 1)]));
    let chunks = crate::route::migrate::chunks(saved.entries.freeze(), SYNC_CHUNK_BYTES);
    let session = run.rotate_left(17) ^ offset ^ shard.replication.copies_taken.get() | 1;
    ShardCopy {
        session,
        offset,
        chunks,
        taken: Instant::now(),
    }
}

/// CLUSTER.PULL on a primary's shard: the records after `offset`, waiting a little for
/// some when there are none yet.
pub async fn pull(shard: Rc<Shard>, run: u64, offset: u64, replica: NodeId) -> Value {
    let deadline = tokio::time::Instant::now() + PULL_WAIT;
    loop {
        let grown = shard.replication.grown.notified();
        if let Some(refusal) = not_a_source(&shard) {
            return refusal;
        }
        let read = {
            let keyspace = shard.keyspace.borrow();
            let Some(backlog) = keyspace.backlog.as_ref() else {
                return Value::error(
                    ErrorCode::Conflict,
                    "no replica has copied this shard since it started: copy first",
                );
            };
            backlog.read(run, offset).map(|read| (read, backlog.end()))
        };
        if read.is_ok() {
            crate::route::acks::note(&shard, replica, run, offset);
        }
        match read {
            Ok(((records, next), end)) if !records.is_empty() => {
                return Value::Array(vec![
                    Value::Int(next as i64),
                    Value::Int(end as i64),
                    Value::Bytes(records),
                ]);
            }
            Ok((_, end)) => {
                if tokio::time::timeout_at(deadline, grown).await.is_err() {
                    return Value::Array(vec![
                        Value::Int(offset as i64),
                        Value::Int(end as i64),
                        Value::Bytes(Bytes::new()),
                    ]);
                }
            }
            Err(gone) => {
                let why = match gone {
                    Gone::OtherRun => "the stream is another run of this shard",
                    Gone::OutOfRange => "the stream no longer holds that offset",
                };
                return Value::error(ErrorCode::Conflict, format!("{why}: copy again"));
            }
        }
    }
}

/// Where a replica shard stands in its primary's stream.
#[derive(Clone, Copy)]
struct Position {
    run: u64,
    offset: u64,
}

/// A shard's replica duty, for ever: while the topology names this node a replica, copy
/// the primary's same-numbered shard and then apply its stream.
pub async fn follow(shard: Rc<Shard>) {
    let Some(cluster) = shard.node.cluster.clone() else {
        return;
    };
    let mut position: Option<(NodeId, Position)> = None;
    loop {
        let primary = primary_of(&cluster);
        shard.replication.follower.borrow_mut().primary = primary.as_ref().map(|(id, _)| *id);
        let Some((primary, addr)) = primary else {
            position = None;
            tokio::time::sleep(RETRY_AFTER).await;
            continue;
        };
        if position.is_some_and(|(followed, _)| followed != primary) {
            position = None;
        }
        let link = match Connection::open(&addr, Some(shard.id), &cluster.peer_client).await {
            Ok(link) => link,
            Err(error) => {
                note_down(&shard, &error.to_string());
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let stopped = stream(&shard, &cluster, &link, primary, &mut position).await;
        note_down(&shard, &stopped);
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// The primary this node copies and its address, as the topology says now.
fn primary_of(cluster: &Arc<Cluster>) -> Option<(NodeId, String)> {
    let topology = cluster.topology.load().1;
    let topology = topology.as_ref().as_ref()?;
    let primary = topology.primary_of(cluster.id)?;
    Some((primary, topology.node(primary)?.addr.clone()))
}

/// Whether the topology still names `primary` this node's primary: checked before each
/// pull and copy chunk lands, so a former primary's stream never lands after a promotion.
fn still_follows(cluster: &Cluster, primary: NodeId) -> bool {
    let topology = cluster.topology.load().1;
    topology
        .as_ref()
        .as_ref()
        .is_some_and(|t| t.primary_of(cluster.id) == Some(primary))
}

fn note_down(shard: &Shard, why: &str) {
    let mut follower = shard.replication.follower.borrow_mut();
    if follower.linked {
        tracing::warn!(shard = shard.id, "replication link down: {why}");
    }
    follower.linked = false;
}

/// Copies (when there is no position) and pulls over one link until it fails or the
/// topology stops naming `primary`; answers why it stopped.
async fn stream(
    shard: &Rc<Shard>,
    cluster: &Arc<Cluster>,
    link: &Connection,
    primary: NodeId,
    position: &mut Option<(NodeId, Position)>,
) -> String {
    loop {
        if !still_follows(cluster, primary) {
            return "the topology names another primary".into();
        }
        let Some((_, at)) = *position else {
            match copy_from(shard, cluster, link, primary).await {
                Ok(at) => *position = Some((primary, at)),
                Err(why) => return why,
            }
            continue;
        };
        let pulled = link
            .request(Command::Cluster(ClusterCommand::Pull {
                run: at.run,
                offset: at.offset,
                replica: cluster.id,
            }))
            .await;
        let (next, end, records) = match pulled {
            Ok(Value::Array(items)) => match items.as_slice() {
                [Value::Int(next), Value::Int(end), Value::Bytes(records)] => {
                    (*next as u64, *end as u64, records.clone())
                }
                _ => return format!("a pull answered {items:?}"),
            },
            Err(tessera_client::Error::Server(error))
                if error.known_code() == Some(ErrorCode::Conflict) =>
            {
                tracing::info!(shard = shard.id, "copying the primary afresh: {error}");
                *position = None;
                continue;
            }
            Ok(other) => return format!("a pull answered {other:?}"),
            Err(error) => return error.to_string(),
        };
        // The answer may arrive after this node was promoted and took writes: records
        // from a former primary must not land on top of them.
        if !still_follows(cluster, primary) {
            return "the topology names another primary".into();
        }
        if !records.is_empty() {
            let applied = shard.with_keyspace(|keyspace| {
                crate::families::replica::apply_pulled(keyspace, &records)
            });
            match applied {
                Ok(count) => shard.replication.follower.borrow_mut().records += count,
                Err(why) => {
                    tracing::warn!(shard = shard.id, "copying the primary afresh: {why}");
                    *position = None;
                    continue;
                }
            }
            // What this shard acknowledges next is durable here under its own policy.
            shard.flush();
            shard.replies_may_leave(true).await;
        }
        *position = Some((primary, Position { offset: next, ..at }));
        if let Some(applied) = cluster.replicated_by_shard.get(usize::from(shard.id)) {
            applied.store(next, std::sync::atomic::Ordering::Relaxed);
        }
        let mut follower = shard.replication.follower.borrow_mut();
        follower.linked = true;
        follower.run = at.run;
        follower.offset = next;
        follower.lag_bytes = end.saturating_sub(next);
        follower.pulled_at = Some(Instant::now());
    }
}

/// Reads a whole copy of the primary's shard into this one, replacing what it held;
/// answers the stream position the copy stands at.
async fn copy_from(
    shard: &Rc<Shard>,
    cluster: &Arc<Cluster>,
    link: &Connection,
    primary: NodeId,
) -> Result<Position, String> {
    let mut session = 0;
    let mut chunk = 0;
    let mut start = None;
    loop {
        let answer = link
            .request(Command::Cluster(ClusterCommand::Sync { session, chunk }))
            .await
            .map_err(|error| format!("copying the primary: {error}"))?;
        let Value::Array(items) = answer else {
            return Err(format!("CLUSTER.SYNC answered {answer:?}"));
        };
        let [Value::Int(run), Value::Int(offset), Value::Int(named), Value::Int(chunks), Value::Bytes(entries)] =
            items.as_slice()
        else {
            return Err(format!("CLUSTER.SYNC answered {items:?}"));
        };
        if !still_follows(cluster, primary) {
            return Err("the topology names another primary".into());
        }
        let import = Command::Cluster(ClusterCommand::Import {
            reset: chunk == 0,
            ranges: vec![(0, SLOT_COUNT - 1)],
            entries: entries.clone(),
        });
        let now = crate::clock::now_millis();
        let applied = shard
            .with_keyspace(|keyspace| crate::families::apply(keyspace, &import, now).into_value());
        if let Value::Error(error) = applied {
            return Err(format!("applying the copy: {error}"));
        }
        start.get_or_insert(Position {
            run: *run as u64,
            offset: *offset as u64,
        });
        session = *named as u64;
        chunk += 1;
        if chunk >= *chunks as u64 {
            break;
        }
    }
    shard.flush();
    shard.replies_may_leave(true).await;
    let at = start.expect("at least one chunk");
    let mut follower = shard.replication.follower.borrow_mut();
    follower.full_syncs += 1;
    tracing::info!(shard = shard.id, offset = at.offset, "copied the primary");
    Ok(at)
}
