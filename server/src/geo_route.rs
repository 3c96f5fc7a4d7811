//! Geo commands across shards: member commands run as a task on the member's home shard,
//! searches gather from the shards holding the partitions around the query point.
//!
//! A home serialises each member's commands: a move between partitions takes the member out
//! of its old partition (carrying its status, offer and metadata) before placing it in the
//! new one, and other commands for that member wait until the move is done. Messages from
//! one shard to another are delivered in order, so two updates in the same partition
//! cannot overtake each other either.

use std::rc::Rc;

use bytes::Bytes;
use hashbrown::HashMap;
use tessera_cluster::geo::{partition_shard, PARTITION_RESOLUTION};
use tessera_cluster::shard_for_key;
use tessera_protocol::geo::{GeoArea, GeoCommand, GeoNear, GeoPoint, AVAILABLE};
use tessera_protocol::{ErrorCode, Value};

use crate::clock;
use crate::geo::{cell_of, walk, Carried, GeoShard, Hit, Home, Placement, Query, Refusal, Spot};
use crate::shard::Shard;

/// Searches a GEO.NEAR ... CLAIM makes before answering that nothing could be claimed.
const CLAIM_ROUNDS: usize = 32;

/// A step one shard asks of the shard holding a partition.
pub enum GeoOp {
    /// Insert or update a member.
    Place {
        /// Index name.
        index: Bytes,
        /// The update.
        placement: Placement,
    },
    /// Remove a member, answering what it carries.
    Take {
        /// Index name.
        index: Bytes,
        /// Member name.
        member: Bytes,
    },
    /// Available → offered until `until`.
    Claim {
        /// Index name.
        index: Bytes,
        /// Member name.
        member: Bytes,
        /// Offer deadline (ms).
        until: u64,
    },
    /// Offered → busy.
    Confirm {
        /// Index name.
        index: Bytes,
        /// Member name.
        member: Bytes,
    },
    /// Anything → available.
    Release {
        /// Index name.
        index: Bytes,
        /// Member name.
        member: Bytes,
    },
    /// GEO.GET's map.
    Describe {
        /// Index name.
        index: Bytes,
        /// Member name.
        member: Bytes,
    },
    /// Exact K nearest among this shard's members.
    Nearest {
        /// Index name.
        index: Bytes,
        /// Query point.
        center: GeoPoint,
        /// Search radius in metres.
        radius_m: f64,
        /// Most members.
        k: u32,
        /// Status filter.
        status: Option<Bytes>,
        /// Whether hits carry metadata.
        with_meta: bool,
    },
}

/// Runs a partition step on this shard.
pub fn apply_op(geo: &mut GeoShard, op: GeoOp, now: u64) -> Value {
    let refused = |refusal: Refusal, what: &str| refusal.to_value(what);
    match op {
        GeoOp::Place { index, placement } => match geo.index(&index).place(placement, now) {
            Ok(new) => Value::Int(i64::from(new)),
            Err(refusal) => refused(refusal, ""),
        },
        GeoOp::Take { index, member } => match geo.index(&index).take(&member, now) {
            Some(carried) => Value::Array(vec![
                Value::Bytes(carried.status),
                carried
                    .offered_until
                    .map_or(Value::Nil, |until| Value::Int(until as i64)),
                carried.meta.map_or(Value::Nil, Value::Bytes),
            ]),
            None => Value::Nil,
        },
        GeoOp::Claim {
            index,
            member,
            until,
        } => match geo.index(&index).claim(&member, until, now) {
            Ok(()) => Value::Ok,
            Err(refusal) => refused(refusal, "member is not available"),
        },
        GeoOp::Confirm { index, member } => match geo.index(&index).confirm(&member, now) {
            Ok(()) => Value::Ok,
            Err(refusal) => refused(refusal, "member is not offered"),
        },
        GeoOp::Release { index, member } => match geo.index(&index).release(&member, now) {
            Ok(()) => Value::Ok,
            Err(refusal) => refused(refusal, ""),
        },
        GeoOp::Describe { index, member } => geo
            .get(&index)
            .map_or(Value::Nil, |i| i.describe(&member, now)),
        GeoOp::Nearest {
            index,
            center,
            radius_m,
            k,
            status,
            with_meta,
        } => {
            let (found, shapes) = geo.get_with_shapes(&index);
            let Some(found) = found else {
                return Value::Array(Vec::new());
            };
            let query = Query {
                center,
                radius_m,
                k: k as usize,
                status: status.as_deref(),
                with_meta,
            };
            match found.nearest(shapes, &query, now) {
                Ok(hits) => Value::Array(hits.into_iter().map(hit_value).collect()),
                Err(_) => too_far(),
            }
        }
    }
}

fn too_far() -> Value {
    Value::error(
        ErrorCode::TooManyElements,
        "radius too large for this index's resolution; search a smaller area",
    )
}

fn hit_value(hit: Hit) -> Value {
    Value::Array(vec![
        Value::Bytes(hit.name),
        Value::Float(hit.distance_m),
        hit.meta.map_or(Value::Nil, Value::Bytes),
    ])
}

fn hit_of(value: Value) -> Option<Hit> {
    let Value::Array(fields) = value else {
        return None;
    };
    let mut fields = fields.into_iter();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Value::Bytes(name)), Some(Value::Float(distance_m)), Some(meta)) => Some(Hit {
            distance_m,
            name,
            meta: match meta {
                Value::Bytes(meta) => Some(meta),
                _ => None,
            },
        }),
        _ => None,
    }
}

/// The home shard of a member.
pub fn home_of(member: &[u8], shards: u16) -> u16 {
    shard_for_key(member, shards)
}

/// Waits until no move of `member` is under way on this (its home) shard.
async fn settled(shard: &Shard, index: &[u8], member: &[u8]) {
    loop {
        let done = shard.geo_moves.notified();
        let moving = {
            let mut keyspace = shard.keyspace.borrow_mut();
            keyspace
                .geo
                .index(index)
                .home(member, clock::now_millis())
                .is_some_and(|home| home.moving)
        };
        if !moving {
            return;
        }
        done.await;
    }
}

/// Runs a command naming a member, on the member's home shard.
pub async fn run_member(shard: Rc<Shard>, command: GeoCommand) -> Value {
    let Some(member) = command.member().cloned() else {
        return Value::error(ErrorCode::Internal, "not a member command");
    };
    let index = command.index().clone();
    settled(&shard, &index, &member).await;
    let now = clock::now_millis();
    let home = shard
        .keyspace
        .borrow_mut()
        .geo
        .index(&index)
        .home(&member, now);
    let holder = |home: &Home| partition_shard(&index, home.partition, shard.shards());
    let (index_, member_) = (index.clone(), member.clone());
    let at_partition = |home: Option<Home>, op: fn(Bytes, Bytes) -> GeoOp| {
        let shard = shard.clone();
        let (index, member) = (index_.clone(), member_.clone());
        async move {
            let Some(home) = home else {
                return Refusal::NotFound.to_value("");
            };
            let to = partition_shard(&index, home.partition, shard.shards());
            shard.geo_call(to, op(index, member)).await
        }
    };
    match command {
        GeoCommand::Upsert {
            at,
            status,
            ttl_ms,
            meta,
            ..
        } => upsert(&shard, index, member, home, at, status, ttl_ms, meta, now).await,
        GeoCommand::Claim { ttl_ms, .. } => {
            let Some(home) = home else {
                return Refusal::NotFound.to_value("");
            };
            let op = GeoOp::Claim {
                index: index.clone(),
                member,
                until: now + ttl_ms,
            };
            shard.geo_call(holder(&home), op).await
        }
        GeoCommand::Confirm { .. } => {
            at_partition(home, |index, member| GeoOp::Confirm { index, member }).await
        }
        GeoCommand::Release { .. } => {
            at_partition(home, |index, member| GeoOp::Release { index, member }).await
        }
        GeoCommand::Get { .. } => match home {
            None => Value::Nil,
            Some(_) => at_partition(home, |index, member| GeoOp::Describe { index, member }).await,
        },
        GeoCommand::Remove { .. } => {
            let Some(home) = home else {
                return Value::Int(0);
            };
            shard
                .keyspace
                .borrow_mut()
                .geo
                .index(&index)
                .forget_home(&member);
            let taken = shard
                .geo_call(holder(&home), GeoOp::Take { index, member })
                .await;
            Value::Int(i64::from(!matches!(taken, Value::Nil)))
        }
        _ => Value::error(ErrorCode::Internal, "not a member command"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn upsert(
    shard: &Rc<Shard>,
    index: Bytes,
    member: Bytes,
    home: Option<Home>,
    at: GeoPoint,
    status: Option<Bytes>,
    ttl_ms: Option<u64>,
    meta: Option<Bytes>,
    now: u64,
) -> Value {
    let shards = shard.shards();
    let partition = u64::from(cell_of(at, PARTITION_RESOLUTION));
    let to = partition_shard(&index, partition, shards);
    let expires_at = ttl_ms.map(|ttl| now + ttl);
    let mut placement = Placement {
        member: member.clone(),
        at,
        status,
        offered_until: None,
        expires_at,
        meta,
    };
    let set_home = |home: Home| {
        shard
            .keyspace
            .borrow_mut()
            .geo
            .index(&index)
            .set_home(&member, home)
    };
    match home {
        None => {
            set_home(Home {
                partition,
                expires_at: expires_at.unwrap_or(0),
                moving: false,
            });
            let placed = shard
                .geo_call(
                    to,
                    GeoOp::Place {
                        index: index.clone(),
                        placement,
                    },
                )
                .await;
            if matches!(placed, Value::Error(_)) {
                shard
                    .keyspace
                    .borrow_mut()
                    .geo
                    .index(&index)
                    .forget_home(&member);
                return placed;
            }
            Value::Int(1)
        }
        Some(home) if home.partition == partition => {
            set_home(Home {
                expires_at: expires_at.unwrap_or(home.expires_at),
                ..home
            });
            let placed = shard.geo_call(to, GeoOp::Place { index, placement }).await;
            if matches!(placed, Value::Error(_)) {
                return placed;
            }
            Value::Int(0)
        }
        Some(home) => {
            // A move: out of the old partition first, carrying the member's state, then
            // into the new one; commands for this member wait until both are done.
            let expires_at = expires_at.unwrap_or(home.expires_at);
            set_home(Home {
                partition,
                expires_at,
                moving: true,
            });
            let from = partition_shard(&index, home.partition, shards);
            let taken = shard
                .geo_call(
                    from,
                    GeoOp::Take {
                        index: index.clone(),
                        member: member.clone(),
                    },
                )
                .await;
            if let Some(carried) = carried_of(taken) {
                if placement.status.is_none() {
                    placement.status = Some(carried.status);
                    placement.offered_until = carried.offered_until;
                }
                if placement.meta.is_none() {
                    placement.meta = carried.meta;
                }
            }
            placement.expires_at = Some(expires_at);
            let placed = shard
                .geo_call(
                    to,
                    GeoOp::Place {
                        index: index.clone(),
                        placement,
                    },
                )
                .await;
            set_home(Home {
                partition,
                expires_at,
                moving: false,
            });
            shard.geo_moves.notify_waiters();
            if matches!(placed, Value::Error(_)) {
                shard
                    .keyspace
                    .borrow_mut()
                    .geo
                    .index(&index)
                    .forget_home(&member);
                return placed;
            }
            Value::Int(0)
        }
    }
}

fn carried_of(value: Value) -> Option<Carried> {
    let Value::Array(fields) = value else {
        return None;
    };
    let mut fields = fields.into_iter();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Value::Bytes(status)), offered, Some(meta)) => Some(Carried {
            // An offer travels as its deadline; the word itself is not interned.
            status: if offered.as_ref().and_then(Value::as_int).is_some() {
                Bytes::from_static(AVAILABLE)
            } else {
                status
            },
            offered_until: offered.and_then(|v| v.as_int()).map(|until| until as u64),
            meta: match meta {
                Value::Bytes(meta) => Some(meta),
                _ => None,
            },
        }),
        _ => None,
    }
}

/// The partitions that may hold points within `area`, each with the shard holding it and a
/// lower bound on its distance from the centre.
fn partitions_near(shard: &Shard, index: &[u8], area: GeoArea) -> Result<Vec<(u16, f64)>, Value> {
    let from = Spot::of(area.center);
    let origin = cell_of(area.center, PARTITION_RESOLUTION);
    let mut keyspace = shard.keyspace.borrow_mut();
    let shapes = &mut keyspace.geo.shapes;
    let mut found = Vec::new();
    let walked = walk(
        shapes,
        &from,
        origin,
        f64::from(area.radius_m),
        |cell, bound, limit| {
            found.push((
                partition_shard(index, u64::from(cell), shard.shards()),
                bound,
            ));
            limit
        },
    );
    walked.map_err(|_| too_far())?;
    Ok(found)
}

/// GEO.NEAR: the owner of the query point's partition answers first; shards holding other
/// partitions are asked only if those partitions could hold something nearer than its K-th.
pub async fn run_near(shard: Rc<Shard>, near: GeoNear) -> Value {
    let claiming = near.claim_ms.is_some();
    let status = if claiming {
        Some(Bytes::from_static(AVAILABLE))
    } else {
        near.status.clone()
    };
    // A claim may lose every candidate to other orders; each such round means others
    // made progress, so look again (bounded, for a fleet under constant churn).
    for _ in 0..CLAIM_ROUNDS {
        let hits = match search(&shard, &near, status.clone()).await {
            Ok(hits) => hits,
            Err(error) => return error,
        };
        let Some(claim_ms) = near.claim_ms else {
            return render(&near, hits.into_iter().map(|(hit, _)| hit).collect());
        };
        let exhausted = hits.len() < near.k as usize;
        for (hit, holder) in hits {
            let until = clock::now_millis() + claim_ms;
            let op = GeoOp::Claim {
                index: near.index.clone(),
                member: hit.name.clone(),
                until,
            };
            match shard.geo_call(holder, op).await {
                Value::Ok => return render(&near, vec![hit]),
                Value::Error(e)
                    if matches!(
                        e.known_code(),
                        Some(ErrorCode::Conflict | ErrorCode::NotFound)
                    ) => {}
                other => return other,
            }
        }
        if exhausted {
            break;
        }
    }
    Value::Array(Vec::new())
}

async fn search(
    shard: &Rc<Shard>,
    near: &GeoNear,
    status: Option<Bytes>,
) -> Result<Vec<(Hit, u16)>, Value> {
    let k = near.k as usize;
    let radius = f64::from(near.area.radius_m);
    let partitions = partitions_near(shard, &near.index, near.area)?;
    let mut holders: HashMap<u16, f64> = HashMap::new();
    for (holder, bound) in &partitions {
        let entry = holders.entry(*holder).or_insert(f64::INFINITY);
        *entry = entry.min(*bound);
    }
    let first = partitions.first().map_or(shard.id, |p| p.0);
    let ask = |to: u16, radius_m: f64| {
        shard.geo_call(
            to,
            GeoOp::Nearest {
                index: near.index.clone(),
                center: near.area.center,
                radius_m,
                k: near.k,
                status: status.clone(),
                with_meta: near.with_meta,
            },
        )
    };
    let mut hits = hits_of(ask(first, radius).await, first)?;
    let bound = if hits.len() == k {
        hits[k - 1].0.distance_m
    } else {
        radius
    };
    let others: Vec<_> = holders
        .iter()
        .filter(|(holder, nearest)| **holder != first && **nearest <= bound)
        .map(|(holder, _)| (*holder, ask(*holder, bound)))
        .collect();
    for (holder, answer) in others {
        hits.extend(hits_of(answer.await, holder)?);
    }
    hits.sort_by(|a, b| {
        a.0.distance_m
            .total_cmp(&b.0.distance_m)
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    hits.dedup_by(|a, b| a.0.name == b.0.name);
    hits.truncate(k);
    Ok(hits)
}

fn hits_of(value: Value, holder: u16) -> Result<Vec<(Hit, u16)>, Value> {
    match value {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(hit_of)
            .map(|hit| (hit, holder))
            .collect()),
        error @ Value::Error(_) => Err(error),
        _ => Err(Value::error(ErrorCode::Internal, "malformed search reply")),
    }
}

fn render(near: &GeoNear, hits: Vec<Hit>) -> Value {
    Value::Array(
        hits.into_iter()
            .map(|hit| {
                if !near.with_dist && !near.with_meta {
                    return Value::Bytes(hit.name);
                }
                let mut fields = vec![Value::Bytes(hit.name)];
                if near.with_dist {
                    fields.push(Value::Float(hit.distance_m));
                }
                if near.with_meta {
                    fields.push(hit.meta.map_or(Value::Nil, Value::Bytes));
                }
                Value::Array(fields)
            })
            .collect(),
    )
}
