//! Geo operations on one shard: the partitions it holds and the member homes it keeps.
//!
//! Each function is one step of a geo command, run on the shard that holds the data and
//! answering a typed result; `route::geo` decides which shard runs which step.

use h3o::Resolution;
use tessera_cluster::shard_for_key;
use tessera_protocol::geo::GeoCommand;
use tessera_protocol::wire::Payload;
use tessera_protocol::{ErrorCode, ErrorReply, Value};

use super::Keyspace;
use crate::data::geo::{
    Carried, GeoShard, HeldState, Hit, Home, Placement, Query, Refusal, SavedMember,
};
use tessera_cluster::geo::{partition_shard, PARTITION_RESOLUTION};

/// The home shard of a member: it keeps the directory entry saying who holds it.
pub fn home_of(member: &[u8], shards: u16) -> u16 {
    shard_for_key(member, shards)
}

/// The refusal for a search wider than the index's resolution allows.
pub fn too_far() -> ErrorReply {
    ErrorReply::new(
        ErrorCode::TooManyElements,
        "radius too large for this index's resolution; search a smaller area",
    )
}

/// GEO.CREATE on this shard.
///
/// # Errors
/// `Syntax` for a resolution H3 does not have.
pub fn create(keyspace: &mut Keyspace, index: &[u8], resolution: u8) -> Result<(), ErrorReply> {
    let resolution = Resolution::try_from(resolution)
        .map_err(|_| ErrorReply::new(ErrorCode::Syntax, "invalid resolution"))?;
    match keyspace.geo.create(index, resolution) {
        Value::Error(error) => Err(error),
        _ => Ok(()),
    }
}

/// GEO.COUNT over the partitions this shard holds.
///
/// # Errors
/// `TooManyElements` for an area too wide to walk.
pub fn count<P: Payload>(
    keyspace: &mut Keyspace,
    command: &GeoCommand<P>,
    now: u64,
) -> Result<i64, ErrorReply> {
    let GeoCommand::Count {
        index,
        area,
        status,
    } = command
    else {
        return Ok(0);
    };
    let (found, shapes) = keyspace.geo.get_with_shapes(index.as_ref());
    let Some(found) = found else {
        return Ok(0);
    };
    found
        .census(shapes, *area, None, status.as_ref().map(AsRef::as_ref), now)
        .map(|counts| counts.values().sum())
        .map_err(|_| too_far())
}

/// GEO.CELLS over the partitions this shard holds: (cell, members) pairs.
///
/// # Errors
/// `TooManyElements` for an area too wide to walk.
pub fn cells<P: Payload>(
    keyspace: &mut Keyspace,
    command: &GeoCommand<P>,
    now: u64,
) -> Result<Vec<(u64, i64)>, ErrorReply> {
    let GeoCommand::Cells {
        index,
        area,
        resolution,
        status,
    } = command
    else {
        return Ok(Vec::new());
    };
    let (found, shapes) = keyspace.geo.get_with_shapes(index.as_ref());
    let Some(found) = found else {
        return Ok(Vec::new());
    };
    let resolution = Resolution::try_from(*resolution)
        .unwrap_or(found.resolution())
        .min(found.resolution());
    found
        .census(
            shapes,
            Some(*area),
            Some(resolution),
            status.as_ref().map(AsRef::as_ref),
            now,
        )
        .map(|counts| counts.into_iter().collect())
        .map_err(|_| too_far())
}

/// Renders per-cell counts as GEO.CELLS answers them: most members first, then by cell.
pub fn render_cells(mut counts: Vec<(u64, i64)>) -> Value {
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Value::Array(
        counts
            .into_iter()
            .map(|(cell, count)| {
                let name = h3o::CellIndex::try_from(cell).map_or(String::new(), |c| c.to_string());
                Value::Array(vec![Value::text(name), Value::Int(count)])
            })
            .collect(),
    )
}

/// Holder: inserts or updates a member; `true` if it is new here.
///
/// # Errors
/// The partition's refusal (a status word it cannot hold).
pub fn place(
    geo: &mut GeoShard,
    index: &[u8],
    placement: Placement,
    now: u64,
) -> Result<bool, ErrorReply> {
    geo.index(index)
        .place(placement, now)
        .map_err(|refusal| refusal.to_error(""))
}

/// Holder: removes a member, answering what it carries to its next partition.
pub fn take(geo: &mut GeoShard, index: &[u8], member: &[u8], now: u64) -> Option<Carried> {
    geo.index(index).take(member, now)
}

/// Holder: the exact K nearest among this shard's members.
///
/// # Errors
/// `TooManyElements` for a radius too wide to walk.
pub fn nearest(
    geo: &mut GeoShard,
    index: &[u8],
    query: &Query<'_>,
    now: u64,
) -> Result<Vec<Hit>, ErrorReply> {
    let (found, shapes) = geo.get_with_shapes(index);
    match found {
        None => Ok(Vec::new()),
        Some(found) => found.nearest(shapes, query, now).map_err(|_| too_far()),
    }
}

/// Holder: CLAIM, CONFIRM, RELEASE or GET on the member; the command's reply.
pub fn at_holder<P: Payload>(geo: &mut GeoShard, command: &GeoCommand<P>, now: u64) -> Value {
    let index = geo.index(command.index().as_ref());
    let done = |result: Result<(), Refusal>, what| match result {
        Ok(()) => Value::Ok,
        Err(refusal) => refusal.to_value(what),
    };
    match command {
        GeoCommand::Claim { member, ttl_ms, .. } => done(
            index.claim(member.as_ref(), now + ttl_ms, now),
            "member is not available",
        ),
        GeoCommand::Confirm { member, .. } => {
            done(index.confirm(member.as_ref(), now), "member is not offered")
        }
        GeoCommand::Release { member, .. } => done(index.release(member.as_ref(), now), ""),
        GeoCommand::Get { member, .. } => index.describe(member.as_ref(), now),
        _ => Value::error(ErrorCode::Internal, "not a holder command"),
    }
}

/// Home: `holder` takes the member over; answers the previous holder (`None` if new).
///
/// # Errors
/// `Conflict` while another hand-over of the member is under way.
pub fn acquire(
    geo: &mut GeoShard,
    index: &[u8],
    member: &[u8],
    holder: u16,
) -> Result<Option<u16>, ErrorReply> {
    let index = geo.index(index);
    let previous = index.home(member);
    if previous.is_some_and(|home| home.moving) {
        return Err(ErrorReply::new(
            ErrorCode::Conflict,
            "member is changing shards",
        ));
    }
    index.set_home(
        member,
        Home {
            holder,
            moving: true,
        },
    );
    Ok(previous.map(|home| home.holder))
}

/// Home: the hand-over to `holder` is done.
pub fn settle(geo: &mut GeoShard, index: &[u8], member: &[u8], holder: u16) {
    let index = geo.index(index);
    if index.home(member).is_some_and(|home| home.holder == holder) {
        index.set_home(
            member,
            Home {
                holder,
                moving: false,
            },
        );
    }
}

/// Home: `holder` no longer holds the member (it lapsed or was removed).
pub fn forget(geo: &mut GeoShard, index: &[u8], member: &[u8], holder: u16) {
    let index = geo.index(index);
    if index
        .home(member)
        .is_some_and(|home| home.holder == holder && !home.moving)
    {
        index.forget_home(member);
    }
}

/// GEO.CREATE, GEO.COUNT and GEO.CELLS on one shard, for the partitions it holds. The
/// other geo commands run through `route::geo`.
pub fn here<P: Payload>(keyspace: &mut Keyspace, command: &GeoCommand<P>, now: u64) -> Value {
    let rendered = match command {
        GeoCommand::Create { index, resolution } => {
            create(keyspace, index.as_ref(), *resolution).map(|()| Value::Ok)
        }
        GeoCommand::Count { .. } => count(keyspace, command, now).map(Value::Int),
        GeoCommand::Cells { .. } => cells(keyspace, command, now).map(render_cells),
        _ => Err(tessera_protocol::ErrorReply::new(
            ErrorCode::Internal,
            "runs on the member's home shard",
        )),
    };
    rendered.unwrap_or_else(Value::Error)
}

/// Where geo members saved elsewhere (an old shard, another node) go on `shards` shards:
/// each held member to the shard holding its partition here, with its directory entry on
/// its home here (one view when both are the same shard). The old directory entries are
/// rebuilt, not moved.
pub fn placed_geo(
    members: impl IntoIterator<Item = SavedMember>,
    shards: u16,
) -> Vec<(u16, SavedMember)> {
    let mut moved = Vec::new();
    for member in members {
        let Some(held) = member.held else {
            continue;
        };
        let partition = u64::from(crate::data::geo::cell_of(held.at, PARTITION_RESOLUTION));
        let holder = partition_shard(&member.index, partition, shards);
        let home = crate::families::geo::home_of(&member.name, shards);
        let view = |held: Option<HeldState>, home: Option<u16>| SavedMember {
            index: member.index.clone(),
            resolution: member.resolution,
            name: member.name.clone(),
            held,
            home,
        };
        if holder == home {
            moved.push((holder, view(Some(held), Some(holder))));
        } else {
            moved.push((holder, view(Some(held), None)));
            moved.push((home, view(None, Some(holder))));
        }
    }
    moved
}
