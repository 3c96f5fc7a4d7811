//! Geo commands across shards: where each one runs, and the few that need another shard's
//! answer before they can reply.
//!
//! GEO.UPSERT runs on the shard holding the new position's partition. If that shard already
//! holds the member (the usual case: drivers rarely cross an 8 km partition), the update is
//! one local step. Otherwise the member's home shard (`shard_for_key(member)`), whose
//! directory says which shard holds each member, hands the member over: the old holder
//! gives it up with its status, offer and metadata, the new holder places it, and only then
//! does the upsert reply, so no query sees the old position afterwards. Commands naming a
//! member (CLAIM, CONFIRM, RELEASE, GET, REMOVE) go through the home to the holder.
//! GEO.NEAR asks the holder of the query point's partition first, and other holders only
//! for partitions that could hold something nearer than its K-th answer.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tessera_cluster::geo::{partition_shard, PARTITION_RESOLUTION};
use tessera_protocol::geo::{GeoArea, GeoCommand, GeoNear, AVAILABLE};
use tessera_protocol::wire::Payload;
use tessera_protocol::{ErrorCode, ErrorReply, Value};

use crate::clock;
use crate::data::geo::{cell_of, walk, GeoShard, Hit, Home, Placement, Probe, Query, Refusal};
use crate::families::geo::{self as ops, home_of};
use crate::shard::call::Answer;
use crate::shard::Shard;

/// Searches a GEO.NEAR ... CLAIM makes before answering that nothing could be claimed.
const CLAIM_ROUNDS: usize = 32;
/// How long a command for a member that is changing shards waits before looking again.
const MOVE_RETRY: Duration = Duration::from_millis(1);
/// How often a member command follows a member that keeps changing shards under it.
const MOVE_ATTEMPTS: usize = 8;

/// A task that finishes a command later.
pub type Task = Pin<Box<dyn Future<Output = Value>>>;

/// How a geo command proceeds on the shard that received it.
pub enum Start {
    /// Answered already.
    Done(Value),
    /// Answered when this task finishes.
    Later(Task),
    /// Belongs to another shard; forward it there.
    Forward(u16),
}

/// Whether a geo command runs on one shard or gathers from several (all but GEO.CREATE,
/// GEO.COUNT and GEO.CELLS, which every shard answers for itself).
pub fn is_routed<P: Payload>(command: &GeoCommand<P>) -> bool {
    !matches!(
        command,
        GeoCommand::Create { .. } | GeoCommand::Count { .. } | GeoCommand::Cells { .. }
    )
}

/// Where a member command must run: the holder of the new position's partition for an
/// upsert, the home for the rest; `None` for commands every shard or any shard answers.
pub fn target_of<P: Payload>(command: &GeoCommand<P>, shards: u16) -> Option<u16> {
    match command {
        GeoCommand::Upsert { index, at, .. } => {
            let partition = u64::from(cell_of(*at, PARTITION_RESOLUTION));
            Some(partition_shard(index.as_ref(), partition, shards))
        }
        _ => command
            .member()
            .map(|member| home_of(member.as_ref(), shards)),
    }
}

/// Starts a geo command that runs on one shard or gathers from several (everything but
/// GEO.CREATE, GEO.COUNT and GEO.CELLS, which every shard answers for itself).
/// `forwarded` commands were sent here as their target and are never forwarded again.
pub fn start<P: Payload>(shard: &Rc<Shard>, command: &GeoCommand<P>, forwarded: bool) -> Start {
    let now = clock::now_millis();
    if let GeoCommand::Near(_) = command {
        let GeoCommand::Near(near) = command.to_owned_bytes() else {
            unreachable!("an owned copy of GEO.NEAR is GEO.NEAR")
        };
        return near_start(shard, near, now);
    }
    let Some(target) = target_of(command, shard.shards()) else {
        return Start::Done(Value::error(
            ErrorCode::Internal,
            "not a routed geo command",
        ));
    };
    if target != shard.id && !forwarded {
        return Start::Forward(target);
    }
    let mut keyspace = shard.keyspace.borrow_mut();
    let geo = &mut keyspace.geo;
    match command {
        GeoCommand::Upsert {
            index,
            member,
            at,
            status,
            ttl_ms,
            meta,
        } => {
            let here = geo.index(index.as_ref());
            let held = here.holds(member.as_ref(), now);
            // Also one local step: this shard is the member's home, and the directory
            // names no other holder (a new member, or one that lapsed here).
            let home_here = !held
                && home_of(member.as_ref(), shard.shards()) == shard.id
                && here
                    .home(member.as_ref())
                    .is_none_or(|home| home.holder == shard.id && !home.moving);
            if home_here {
                let home = Home {
                    holder: shard.id,
                    moving: false,
                };
                here.set_home(member.as_ref(), home);
            }
            if held || home_here {
                // The usual update: this shard already holds the member.
                let placement = Placement {
                    member: member.as_ref(),
                    at: *at,
                    cell: Some(u64::from(cell_of(*at, here.resolution()))),
                    status: status.as_ref().map(AsRef::as_ref),
                    offered_until: None,
                    expires_at: ttl_ms.map(|ttl| now + ttl),
                    meta: meta.as_ref().map(AsRef::as_ref),
                };
                return Start::Done(match here.place(placement, now) {
                    Ok(new) => Value::Int(i64::from(new)),
                    Err(refusal) => refusal.to_value(""),
                });
            }
            drop(keyspace);
            Start::Later(Box::pin(take_over(shard.clone(), command.to_owned_bytes())))
        }
        _ => {
            // At the home: answer here when this shard also holds the member.
            let home = geo
                .index(command.index().as_ref())
                .home(command.member().map_or(&[][..], AsRef::as_ref));
            match home {
                None => Start::Done(unknown_member(command)),
                Some(home) if home.holder == shard.id && !home.moving => {
                    Start::Done(member_here(geo, command, now))
                }
                Some(_) => {
                    drop(keyspace);
                    Start::Later(Box::pin(via_home(shard.clone(), command.to_owned_bytes())))
                }
            }
        }
    }
}

/// Runs a geo command another shard forwarded here, as its target.
pub async fn run_forwarded(shard: Rc<Shard>, command: GeoCommand) -> Value {
    match start(&shard, &command, true) {
        Start::Done(value) => value,
        Start::Later(task) => task.await,
        Start::Forward(_) => Value::error(ErrorCode::Internal, "forwarded geo command misrouted"),
    }
}

fn unknown_member<P: Payload>(command: &GeoCommand<P>) -> Value {
    match command {
        GeoCommand::Get { .. } => Value::Nil,
        GeoCommand::Remove { .. } => Value::Int(0),
        _ => Refusal::NotFound.to_value(""),
    }
}

/// A member command on the shard that is both its home and its holder.
fn member_here<P: Payload>(geo: &mut GeoShard, command: &GeoCommand<P>, now: u64) -> Value {
    match command {
        GeoCommand::Remove { index, member } => {
            let index = geo.index(index.as_ref());
            index.forget_home(member.as_ref());
            Value::Int(i64::from(index.take(member.as_ref(), now).is_some()))
        }
        _ => ops::at_holder(geo, command, now),
    }
}

/// A member command at its home when another shard holds the member.
async fn via_home(shard: Rc<Shard>, command: GeoCommand) -> Value {
    let index = command.index().clone();
    let member = command.member().cloned().unwrap_or_default();
    let settled_home = || async {
        loop {
            let home = shard.keyspace.borrow_mut().geo.index(&index).home(&member);
            match home {
                Some(home) if home.moving => tokio::time::sleep(MOVE_RETRY).await,
                other => break other,
            }
        }
    };
    let mut attempts = 0;
    loop {
        let Some(home) = settled_home().await else {
            return unknown_member(&command);
        };
        if home.holder == shard.id {
            let now = clock::now_millis();
            return member_here(&mut shard.keyspace.borrow_mut().geo, &command, now);
        }
        if let GeoCommand::Remove { .. } = command {
            shard
                .keyspace
                .borrow_mut()
                .geo
                .index(&index)
                .forget_home(&member);
            let taken = shard
                .call(home.holder, move |holder: &Rc<Shard>| {
                    let now = clock::now_millis();
                    ops::take(&mut holder.keyspace.borrow_mut().geo, &index, &member, now)
                })
                .await;
            return Value::Int(i64::from(matches!(taken, Some(Some(_)))));
        }
        let reply = at_holder(&shard, home.holder, command.clone()).await;
        // The member may have changed shards after the directory was read: ask again
        // where it is now rather than report it missing.
        let missing = match &reply {
            Value::Nil => true,
            Value::Error(e) => e.known_code() == Some(ErrorCode::NotFound),
            _ => false,
        };
        attempts += 1;
        let moved = shard.keyspace.borrow_mut().geo.index(&index).home(&member) != Some(home);
        if !missing || !moved || attempts >= MOVE_ATTEMPTS {
            return reply;
        }
    }
}

/// The slow path of an upsert: this shard takes the member over from its previous holder
/// through the member's home.
async fn take_over(shard: Rc<Shard>, command: GeoCommand) -> Value {
    let GeoCommand::Upsert {
        index,
        member,
        at,
        status,
        ttl_ms,
        meta,
    } = command
    else {
        return Value::error(ErrorCode::Internal, "not an upsert");
    };
    let home = home_of(&member, shard.shards());
    let holder = shard.id;
    let previous = loop {
        let (index, member) = (index.clone(), member.clone());
        let acquired = shard
            .call(home, move |home: &Rc<Shard>| {
                ops::acquire(&mut home.keyspace.borrow_mut().geo, &index, &member, holder)
            })
            .await;
        match acquired {
            Some(Err(_)) => tokio::time::sleep(MOVE_RETRY).await,
            Some(Ok(previous)) => break previous,
            None => break None,
        }
    };
    let mut placement = Placement {
        status,
        meta,
        ..Placement::at(member.clone(), at)
    };
    // Whether a live member came over; a lapsed one leaves nothing to carry.
    let mut carried_over = false;
    if let Some(previous) = previous.filter(|p| *p != shard.id) {
        let (index, member) = (index.clone(), member.clone());
        let taken = shard
            .call(previous, move |previous: &Rc<Shard>| {
                let now = clock::now_millis();
                ops::take(
                    &mut previous.keyspace.borrow_mut().geo,
                    &index,
                    &member,
                    now,
                )
            })
            .await
            .flatten();
        if let Some(carried) = taken {
            carried_over = true;
            if placement.status.is_none() {
                placement.status = Some(carried.status);
                placement.offered_until = carried.offered_until;
            }
            if placement.meta.is_none() {
                placement.meta = carried.meta;
            }
        }
    }
    let now = clock::now_millis();
    placement.expires_at = ttl_ms.map(|ttl| now + ttl);
    let placed = ops::place(&mut shard.keyspace.borrow_mut().geo, &index, placement, now);
    // The upsert replies once the home has settled, so the member's next command finds
    // it settled rather than waiting out the hand-over.
    shard
        .call(home, move |home: &Rc<Shard>| {
            ops::settle(&mut home.keyspace.borrow_mut().geo, &index, &member, holder);
        })
        .await;
    match (placed, previous) {
        // Placed where it already was: whether it was new there (it may have lapsed).
        (Ok(new), Some(previous)) if previous == shard.id => Value::Int(i64::from(new)),
        (Ok(_), _) => Value::Int(i64::from(!carried_over)),
        (Err(error), _) => Value::Error(error),
    }
}

/// Runs a member command (CLAIM, CONFIRM, RELEASE, GET) on the shard holding the member.
async fn at_holder(shard: &Rc<Shard>, holder: u16, command: GeoCommand) -> Value {
    shard
        .call(holder, move |holder: &Rc<Shard>| {
            let now = clock::now_millis();
            ops::at_holder(&mut holder.keyspace.borrow_mut().geo, &command, now)
        })
        .await
        .unwrap_or_else(super::coordinator::unanswered)
}

/// The shards holding partitions that may hold points within `area`, each with a lower
/// bound on the distance from the centre to anything it holds there; the shard holding
/// the centre's own partition comes first.
fn holders_near(shard: &Shard, index: &[u8], area: GeoArea) -> Result<Vec<(u16, f64)>, ErrorReply> {
    let from = Probe::of(area.center);
    let origin = cell_of(area.center, PARTITION_RESOLUTION);
    let mut keyspace = shard.keyspace.borrow_mut();
    let mut holders: Vec<(u16, f64)> = Vec::new();
    walk(
        &mut keyspace.geo.shapes,
        &from,
        origin,
        f64::from(area.radius_m),
        |cell, bound, limit| {
            let holder = partition_shard(index, u64::from(cell), shard.shards());
            match holders.iter_mut().find(|(h, _)| *h == holder) {
                Some(entry) => entry.1 = entry.1.min(bound),
                None => holders.push((holder, bound)),
            }
            limit
        },
    )
    .map_err(|_| ops::too_far())?;
    Ok(holders)
}

/// GEO.NEAR: answered at once when this shard holds the query point's partition and no
/// other shard could hold anything nearer; otherwise gathered by a task.
fn near_start(shard: &Rc<Shard>, near: GeoNear, now: u64) -> Start {
    if near.claim_ms.is_some() {
        return Start::Later(Box::pin(near_claim(shard.clone(), near)));
    }
    let holders = match holders_near(shard, &near.index, near.area) {
        Ok(holders) => holders,
        Err(error) => return Start::Done(Value::Error(error)),
    };
    if holders.first().map(|h| h.0) != Some(shard.id) {
        let shard = shard.clone();
        return Start::Later(Box::pin(async move {
            match gather(&shard, &near, near.status.clone(), holders).await {
                Ok(hits) => render(&near, hits.into_iter().map(|(hit, _)| hit).collect()),
                Err(error) => Value::Error(error),
            }
        }));
    }
    let query = Query {
        center: near.area.center,
        radius_m: f64::from(near.area.radius_m),
        k: near.k as usize,
        status: near.status.as_deref(),
        with_meta: near.with_meta,
    };
    let local = ops::nearest(
        &mut shard.keyspace.borrow_mut().geo,
        &near.index,
        &query,
        now,
    );
    let local = match local {
        Ok(hits) => hits,
        Err(error) => return Start::Done(Value::Error(error)),
    };
    let bound = kth_bound(&local, &near);
    if holders.iter().skip(1).all(|(_, nearest)| *nearest > bound) {
        return Start::Done(render(&near, local));
    }
    let shard = shard.clone();
    Start::Later(Box::pin(async move {
        let mut hits: Vec<(Hit, u16)> = local.into_iter().map(|hit| (hit, shard.id)).collect();
        match ask_others(&shard, &near, near.status.clone(), &holders, bound).await {
            Ok(more) => {
                hits.extend(more);
                render(
                    &near,
                    merge(hits, near.k)
                        .into_iter()
                        .map(|(hit, _)| hit)
                        .collect(),
                )
            }
            Err(error) => Value::Error(error),
        }
    }))
}

/// How far the rest of the search must look: the K-th distance once K are found.
fn kth_bound(hits: &[Hit], near: &GeoNear) -> f64 {
    if hits.len() == near.k as usize {
        hits[hits.len() - 1].distance_m
    } else {
        f64::from(near.area.radius_m)
    }
}

/// The first holder's answer, then the others' within its K-th distance, merged.
async fn gather(
    shard: &Rc<Shard>,
    near: &GeoNear,
    status: Option<Bytes>,
    holders: Vec<(u16, f64)>,
) -> Result<Vec<(Hit, u16)>, ErrorReply> {
    let Some(&(first, _)) = holders.first() else {
        return Ok(Vec::new());
    };
    let radius_m = f64::from(near.area.radius_m);
    let found = hits_of(nearest_at(shard, first, near, status.clone(), radius_m).await)?;
    let bound = kth_bound(&found, near);
    let mut hits: Vec<(Hit, u16)> = found.into_iter().map(|hit| (hit, first)).collect();
    hits.extend(ask_others(shard, near, status, &holders, bound).await?);
    Ok(merge(hits, near.k))
}

/// The K nearest members a holder has within `radius_m`.
fn nearest_at(
    shard: &Rc<Shard>,
    holder: u16,
    near: &GeoNear,
    status: Option<Bytes>,
    radius_m: f64,
) -> Answer<Result<Vec<Hit>, ErrorReply>> {
    let (index, center, k, with_meta) =
        (near.index.clone(), near.area.center, near.k, near.with_meta);
    shard.call(holder, move |holder: &Rc<Shard>| {
        let query = Query {
            center,
            radius_m,
            k: k as usize,
            status: status.as_deref(),
            with_meta,
        };
        let now = clock::now_millis();
        ops::nearest(&mut holder.keyspace.borrow_mut().geo, &index, &query, now)
    })
}

fn hits_of(answer: Option<Result<Vec<Hit>, ErrorReply>>) -> Result<Vec<Hit>, ErrorReply> {
    answer.unwrap_or_else(|| {
        Err(ErrorReply::new(
            ErrorCode::Internal,
            "a shard did not answer",
        ))
    })
}

/// Asks every holder after the first whose partitions could hold something within `bound`.
async fn ask_others(
    shard: &Rc<Shard>,
    near: &GeoNear,
    status: Option<Bytes>,
    holders: &[(u16, f64)],
    bound: f64,
) -> Result<Vec<(Hit, u16)>, ErrorReply> {
    let calls: Vec<_> = holders
        .iter()
        .skip(1)
        .filter(|(_, nearest)| *nearest <= bound)
        .map(|&(holder, _)| {
            (
                holder,
                nearest_at(shard, holder, near, status.clone(), bound),
            )
        })
        .collect();
    let mut hits = Vec::new();
    for (holder, answer) in calls {
        hits.extend(hits_of(answer.await)?.into_iter().map(|hit| (hit, holder)));
    }
    Ok(hits)
}

/// The K nearest of the shards' answers, each member once. Shards answer one after
/// another, so a member that changed shards between two answers can be in both, at two
/// positions; the nearer one is kept.
fn merge(mut hits: Vec<(Hit, u16)>, k: u32) -> Vec<(Hit, u16)> {
    hits.sort_by(|a, b| {
        a.0.distance_m
            .total_cmp(&b.0.distance_m)
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    let mut seen = hashbrown::HashSet::with_capacity(hits.len());
    hits.retain(|(hit, _)| seen.insert(hit.name.clone()));
    hits.truncate(k as usize);
    hits
}

/// GEO.NEAR ... CLAIM: search available members, then claim the nearest at its holder; a
/// candidate another order took first is skipped.
async fn near_claim(shard: Rc<Shard>, near: GeoNear) -> Value {
    let claim_ms = near.claim_ms.unwrap_or_default();
    let available = Some(Bytes::from_static(AVAILABLE));
    // Each round that loses every candidate means other orders made progress, so look
    // again (bounded, for a fleet under constant churn).
    for _ in 0..CLAIM_ROUNDS {
        let holders = match holders_near(&shard, &near.index, near.area) {
            Ok(holders) => holders,
            Err(error) => return Value::Error(error),
        };
        let hits = match gather(&shard, &near, available.clone(), holders).await {
            Ok(hits) => hits,
            Err(error) => return Value::Error(error),
        };
        let exhausted = hits.len() < near.k as usize;
        for (hit, holder) in hits {
            let claim = GeoCommand::Claim {
                index: near.index.clone(),
                member: hit.name.clone(),
                ttl_ms: claim_ms,
            };
            match at_holder(&shard, holder, claim).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &'static str, distance_m: f64) -> (Hit, u16) {
        let hit = Hit {
            distance_m,
            name: Bytes::from_static(name.as_bytes()),
            meta: None,
        };
        (hit, 0)
    }

    #[test]
    fn a_member_seen_by_two_shards_mid_move_is_answered_once() {
        let hits = vec![
            hit("d:0", 1_177.0),
            hit("d:4", 725.0),
            hit("d:0", 103.0),
            hit("d:5", 900.0),
        ];
        let merged: Vec<(Bytes, f64)> = merge(hits, 3)
            .into_iter()
            .map(|(hit, _)| (hit.name, hit.distance_m))
            .collect();
        let expected = [("d:0", 103.0), ("d:4", 725.0), ("d:5", 900.0)]
            .map(|(name, distance)| (Bytes::from_static(name.as_bytes()), distance));
        assert_eq!(merged, expected);
    }
}
