//! GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH and GEOSEARCHSTORE on one shard: Redis's
//! geo sets, sorted sets scored by geohash, searched cell by cell as Redis searches them
//! and filtered by exact distance.

use tessera_protocol::commands::geo_sets::{
    with, AddCondition, Area, Center, GeoSetCommand, Order, Query,
};
use tessera_protocol::commands::hashes::Finite;
use tessera_protocol::commands::sorted_sets::add_flags;

use super::sorted_sets::{self, ScoreSet};
use super::*;
use crate::data::geohash::{self, distance_text, position_of, Extent, Shape};

/// Bytes a search result counts besides its member: a distance, a hash and a position.
const PER_RESULT: usize = 48;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &GeoSetCommand<P>, now: u64) -> Value {
    match command {
        GeoSetCommand::Add {
            key,
            condition,
            changed,
            points,
        } => {
            let mut flags = match condition {
                AddCondition::Always => 0,
                AddCondition::IfAbsent => add_flags::NX,
                AddCondition::IfPresent => add_flags::XX,
            };
            if *changed {
                flags |= add_flags::CH;
            }
            let pairs: Vec<(Finite, &[u8])> = points
                .iter()
                .map(|(point, member)| {
                    let score = geohash::score_of(point.longitude, point.latitude);
                    (Finite::new(score).unwrap_or(Finite::ZERO), member.as_ref())
                })
                .collect();
            sorted_sets::write(keyspace, key.as_ref(), now, true, |set| {
                sorted_sets::add(set, flags, &pairs)
            })
            .unwrap_or_else(Value::Error)
        }
        GeoSetCommand::Pos { key, members } => with_set(keyspace, key.as_ref(), now, |set| {
            let position = |member: &P| match set.and_then(|s| s.score(member.as_ref())) {
                Some(score) => {
                    let (lon, lat) = position_of(score);
                    Value::Array(vec![Value::Float(lon), Value::Float(lat)])
                }
                None => Value::Nil,
            };
            Value::Array(members.iter().map(position).collect())
        }),
        GeoSetCommand::Hash { key, members } => with_set(keyspace, key.as_ref(), now, |set| {
            let hash = |member: &P| match set.and_then(|s| s.score(member.as_ref())) {
                Some(score) => Value::Bytes(Bytes::copy_from_slice(&geohash::geohash_text(score))),
                None => Value::Nil,
            };
            Value::Array(members.iter().map(hash).collect())
        }),
        GeoSetCommand::Dist {
            key,
            from,
            to,
            unit,
        } => with_set(keyspace, key.as_ref(), now, |set| {
            let score = |member: &P| set.and_then(|s| s.score(member.as_ref()));
            match (score(from), score(to)) {
                (Some(a), Some(b)) => {
                    let ((x1, y1), (x2, y2)) = (position_of(a), position_of(b));
                    let meters = geohash::distance(x1, y1, x2, y2);
                    Value::Bytes(distance_text(meters / unit.meters()).into())
                }
                _ => Value::Nil,
            }
        }),
        GeoSetCommand::Search { key, query } => {
            let reply_limit = keyspace.reply_limit;
            with_set(keyspace, key.as_ref(), now, |set| {
                let Some(set) = set else {
                    return Value::Array(Vec::new());
                };
                match search(set, query) {
                    Ok(found) => answer(found, query, reply_limit),
                    Err(error) => error,
                }
            })
        }
        GeoSetCommand::SearchStore {
            destination,
            source,
            query,
            store_distance,
        } => {
            let entries = with_entries(keyspace, source.as_ref(), now, |set| {
                let unit = query.unit.meters();
                Ok(search(set, query)?
                    .into_iter()
                    .map(|found| {
                        let score = if *store_distance {
                            found.distance / unit
                        } else {
                            found.score
                        };
                        (Bytes::copy_from_slice(found.member), score)
                    })
                    .collect())
            });
            match entries {
                Ok(entries) => {
                    super::sorted_set_algebra::store(keyspace, destination.as_ref(), entries, now)
                }
                Err(error) => error,
            }
        }
    }
}

/// Runs `read` on the sorted set at `key` (`None` for a missing key); WRONGTYPE for a key
/// of another kind.
fn with_set(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    read: impl FnOnce(Option<&ScoreSet>) -> Value,
) -> Value {
    match keyspace.get(key, now) {
        None => read(None),
        Some(Stored::SortedSet(set)) => read(Some(set)),
        Some(_) => wrong_type(),
    }
}

/// The entries `collect` makes of the sorted set at `key`: none for a missing key.
fn with_entries(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    collect: impl FnOnce(&ScoreSet) -> Result<Vec<(Bytes, f64)>, Value>,
) -> Result<Vec<(Bytes, f64)>, Value> {
    match keyspace.get(key, now) {
        None => Ok(Vec::new()),
        Some(Stored::SortedSet(set)) => collect(set),
        Some(_) => Err(wrong_type()),
    }
}

/// A member a search found.
struct Found<'a> {
    member: &'a [u8],
    /// From the centre, in metres.
    distance: f64,
    score: f64,
    lon: f64,
    lat: f64,
}

/// Every member within the query's shape, ordered and cut to its count as Redis does:
/// COUNT without ANY answers the nearest, ANY the first found.
fn search<'a, P: Payload>(set: &'a ScoreSet, query: &Query<P>) -> Result<Vec<Found<'a>>, Value> {
    let (lon, lat) = match &query.center {
        Center::Point(point) => (point.longitude, point.latitude),
        Center::Member(member) => set.score(member.as_ref()).map(position_of).ok_or_else(|| {
            Value::error(ErrorCode::Syntax, "could not decode requested zset member")
        })?,
    };
    let shape = Shape {
        lon,
        lat,
        unit: query.unit.meters(),
        extent: match query.area {
            Area::Radius(radius) => Extent::Radius(radius),
            Area::Box { width, height } => Extent::Box(width, height),
        },
    };
    let enough = |found: &Vec<Found<'_>>| query.any && found.len() as u64 >= query.count;
    let mut found = Vec::new();
    'scan: for (min, max) in shape.ranges() {
        for (score, member) in set.scored_within(min, max) {
            let (lon, lat) = position_of(score);
            if let Some(distance) = shape.reach(lon, lat) {
                found.push(Found {
                    member,
                    distance,
                    score,
                    lon,
                    lat,
                });
                if enough(&found) {
                    break 'scan;
                }
            }
        }
    }
    let order = match query.order {
        Order::Unsorted if query.count > 0 && !query.any => Order::Nearest,
        order => order,
    };
    match order {
        Order::Nearest => found.sort_by(|a, b| a.distance.total_cmp(&b.distance)),
        Order::Farthest => found.sort_by(|a, b| b.distance.total_cmp(&a.distance)),
        Order::Unsorted => {}
    }
    if query.count > 0 {
        found.truncate(usize::try_from(query.count).unwrap_or(usize::MAX));
    }
    Ok(found)
}

/// GEOSEARCH's reply: members, or members with what the query asked for, within the
/// node's reply limit.
fn answer<P: Payload>(found: Vec<Found<'_>>, query: &Query<P>, reply_limit: usize) -> Value {
    let size: usize = found.iter().map(|f| f.member.len() + PER_RESULT).sum();
    if let Err(refusal) = within_reply_limit(size, reply_limit) {
        return Value::Error(refusal);
    }
    let unit = query.unit.meters();
    let item = |found: Found<'_>| {
        let member = Value::Bytes(Bytes::copy_from_slice(found.member));
        if query.with == 0 {
            return member;
        }
        let mut item = vec![member];
        if query.with & with::DIST != 0 {
            item.push(Value::Bytes(distance_text(found.distance / unit).into()));
        }
        if query.with & with::HASH != 0 {
            item.push(Value::Int(found.score as i64));
        }
        if query.with & with::COORD != 0 {
            item.push(Value::Array(vec![
                Value::Float(found.lon),
                Value::Float(found.lat),
            ]));
        }
        Value::Array(item)
    };
    Value::Array(found.into_iter().map(item).collect())
}
