//! Redis's geo commands (GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE):
//! points kept as Redis keeps them, members of a sorted set scored by their 52-bit
//! geohash, so ZRANGE, ZREM and ZCARD read and change the same keys.

mod text;
mod typed;

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::read_key;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::DecodeError;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// GEOADD
    pub const GEOADD: u16 = 0x01a0;
    /// GEOPOS
    pub const GEOPOS: u16 = 0x01a1;
    /// GEODIST
    pub const GEODIST: u16 = 0x01a2;
    /// GEOHASH
    pub const GEOHASH: u16 = 0x01a3;
    /// GEOSEARCH
    pub const GEOSEARCH: u16 = 0x01a4;
    /// GEOSEARCHSTORE
    pub const GEOSEARCHSTORE: u16 = 0x01a5;
}

/// Southernmost latitude a geohash holds (Web Mercator's limit), as in Redis.
pub const LAT_MIN: f64 = -85.051_128_78;
/// Northernmost latitude a geohash holds.
pub const LAT_MAX: f64 = 85.051_128_78;
/// Westernmost longitude.
pub const LON_MIN: f64 = -180.0;
/// Easternmost longitude.
pub const LON_MAX: f64 = 180.0;

use super::keyed_row as row;

const QUERY_WIRE: &str = "center:u8 (0 member:bytes, 1 longitude:f64 latitude:f64) area:u8 (0 radius:f64, 1 width:f64 height:f64) unit:u8 (0 m, 1 km, 2 ft, 3 mi) order:u8 (0 none, 1 asc, 2 desc) count:uvarint (0 = all) any:u8 with:u8 (1 dist, 2 hash, 4 coord)";

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    row(
        opcode::GEOADD,
        "GEOADD",
        "key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]",
        "key:bytes condition:u8 (0 none, 1 NX, 2 XX) ch:u8 count:uvarint (longitude:f64 latitude:f64 member:bytes)*count",
        "INT members added (or changed, with CH)",
        "Adds points to a geo set (a sorted set scored by geohash).",
        true,
    ),
    row(
        opcode::GEOPOS,
        "GEOPOS",
        "key member [member ...]",
        "key:bytes count:uvarint member:bytes*count",
        "ARRAY of [FLOAT longitude, FLOAT latitude] or NIL per member",
        "Where members are, as their geohash cell's centre.",
        false,
    ),
    row(
        opcode::GEODIST,
        "GEODIST",
        "key member1 member2 [M|KM|FT|MI]",
        "key:bytes from:bytes to:bytes unit:u8",
        "BYTES distance with 4 decimals, or NIL when a member is missing",
        "The great-circle distance between two members.",
        false,
    ),
    row(
        opcode::GEOHASH,
        "GEOHASH",
        "key member [member ...]",
        "key:bytes count:uvarint member:bytes*count",
        "ARRAY of BYTES 11-character geohash or NIL per member",
        "Members' positions as standard geohash strings.",
        false,
    ),
    row(
        opcode::GEOSEARCH,
        "GEOSEARCH",
        "key FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]",
        QUERY_WIRE,
        "ARRAY of BYTES members; with WITH*: ARRAY of [BYTES member, BYTES distance?, INT hash?, [FLOAT longitude, FLOAT latitude]?]",
        "Members within a radius or box of a member or a position.",
        false,
    ),
    super::spec_row(
        opcode::GEOSEARCHSTORE,
        "GEOSEARCHSTORE",
        "destination source FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius unit|BYBOX width height unit [ASC|DESC] [COUNT count [ANY]] [STOREDIST]",
        "destination:bytes source:bytes query (as GEOSEARCH, with 0) storedist:u8",
        "INT members stored (none deletes the destination)",
        "GEOSEARCH into a sorted set, scored by geohash or (STOREDIST) distance.",
        true,
        KeySpec::OneSlot,
    ),
];

/// A unit of distance, as Redis names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Metres.
    #[default]
    Meters,
    /// Kilometres.
    Kilometers,
    /// International feet.
    Feet,
    /// Statute miles, as Redis counts them (1609.34 m).
    Miles,
}

impl Unit {
    /// Metres in one of this unit.
    pub fn meters(self) -> f64 {
        match self {
            Unit::Meters => 1.0,
            Unit::Kilometers => 1000.0,
            Unit::Feet => 0.3048,
            Unit::Miles => 1609.34,
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Result<Unit, DecodeError> {
        Ok(match code {
            0 => Unit::Meters,
            1 => Unit::Kilometers,
            2 => Unit::Feet,
            3 => Unit::Miles,
            _ => return Err(DecodeError::Invalid("unknown unit")),
        })
    }
}

/// A position a geohash can hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Degrees east, -180 to 180.
    pub longitude: f64,
    /// Degrees north, within Web Mercator's ±85.05112878.
    pub latitude: f64,
}

impl Eq for Point {}

impl Point {
    /// The point, if a geohash can hold it.
    pub fn new(longitude: f64, latitude: f64) -> Option<Point> {
        ((LON_MIN..=LON_MAX).contains(&longitude) && (LAT_MIN..=LAT_MAX).contains(&latitude))
            .then_some(Point {
                longitude,
                latitude,
            })
    }

    fn put(self, buf: &mut BytesMut) {
        buf.put_f64_le(self.longitude);
        buf.put_f64_le(self.latitude);
    }

    fn read<P: Payload>(r: &mut Reader<P>) -> Result<Point, DecodeError> {
        let (longitude, latitude) = (r.f64()?, r.f64()?);
        Point::new(longitude, latitude).ok_or(DecodeError::Invalid("invalid longitude,latitude"))
    }
}

/// Where a search is centred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Center<P = Bytes> {
    /// At a member's position (FROMMEMBER).
    Member(P),
    /// At a position (FROMLONLAT).
    Point(Point),
}

/// The shape searched, in the query's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Area {
    /// A circle (BYRADIUS).
    Radius(f64),
    /// A box, its sides along the meridians and parallels (BYBOX).
    Box {
        /// East to west.
        width: f64,
        /// North to south.
        height: f64,
    },
}

impl Eq for Area {}

/// The order results come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// As the geohash cells are scanned.
    #[default]
    Unsorted,
    /// Nearest first.
    Nearest,
    /// Farthest first.
    Farthest,
}

/// What each result carries besides its member (WITHDIST, WITHHASH, WITHCOORD).
pub mod with {
    /// The distance from the centre, in the query's unit.
    pub const DIST: u8 = 1;
    /// The 52-bit geohash score.
    pub const HASH: u8 = 2;
    /// The position.
    pub const COORD: u8 = 4;
    /// Every defined bit.
    pub const ALL: u8 = DIST | HASH | COORD;
}

/// A GEOSEARCH: around what, how far, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<P = Bytes> {
    /// The centre.
    pub center: Center<P>,
    /// The shape around it.
    pub area: Area,
    /// The unit of the area and of answered distances.
    pub unit: Unit,
    /// How results are ordered.
    pub order: Order,
    /// At most this many results (0: all); the nearest unless `any`.
    pub count: u64,
    /// Stop at the first `count` found, nearest or not (ANY).
    pub any: bool,
    /// `with` bits.
    pub with: u8,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoSetCommand<P = Bytes> {
    /// GEOADD key [NX|XX] [CH] (longitude latitude member)...
    Add {
        /// The geo set.
        key: P,
        /// `NX` only adds, `XX` only updates.
        condition: AddCondition,
        /// Count members whose position changed too (CH).
        changed: bool,
        /// Positions and their members.
        points: Vec<(Point, P)>,
    },
    /// GEOPOS key member...
    Pos {
        /// The geo set.
        key: P,
        /// Members asked for.
        members: Vec<P>,
    },
    /// GEODIST key from to [unit]
    Dist {
        /// The geo set.
        key: P,
        /// One member.
        from: P,
        /// The other.
        to: P,
        /// The unit answered in.
        unit: Unit,
    },
    /// GEOHASH key member...
    Hash {
        /// The geo set.
        key: P,
        /// Members asked for.
        members: Vec<P>,
    },
    /// GEOSEARCH key ...
    Search {
        /// The geo set.
        key: P,
        /// What to look for.
        query: Query<P>,
    },
    /// GEOSEARCHSTORE destination source ... [STOREDIST]
    SearchStore {
        /// Where the results go.
        destination: P,
        /// The geo set searched.
        source: P,
        /// What to look for (answering nothing but members).
        query: Query<P>,
        /// Score the stored members by distance instead of geohash.
        store_distance: bool,
    },
}

/// GEOADD's NX or XX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddCondition {
    /// Add and update.
    #[default]
    Always,
    /// Only add new members (NX).
    IfAbsent,
    /// Only update existing members (XX).
    IfPresent,
}

fn flag<P: Payload>(r: &mut Reader<P>) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid("a flag is 0 or 1")),
    }
}

fn read_members<P: Payload>(r: &mut Reader<P>) -> Result<Vec<P>, DecodeError> {
    let count = r.count(1)?;
    if count == 0 {
        return Err(DecodeError::Invalid("at least one member is required"));
    }
    (0..count).map(|_| r.bytes()).collect()
}

/// A radius, width or height: a number, not below zero.
fn extent<P: Payload>(r: &mut Reader<P>) -> Result<f64, DecodeError> {
    let x = r.f64()?;
    if x.is_nan() || x < 0.0 {
        return Err(DecodeError::Invalid("a distance is a number not below 0"));
    }
    Ok(x)
}

impl<P: Payload> Query<P> {
    fn put(&self, buf: &mut BytesMut) {
        match &self.center {
            Center::Member(member) => {
                buf.put_u8(0);
                put_bytes(buf, member.as_ref());
            }
            Center::Point(point) => {
                buf.put_u8(1);
                point.put(buf);
            }
        }
        match self.area {
            Area::Radius(radius) => {
                buf.put_u8(0);
                buf.put_f64_le(radius);
            }
            Area::Box { width, height } => {
                buf.put_u8(1);
                buf.put_f64_le(width);
                buf.put_f64_le(height);
            }
        }
        buf.put_u8(self.unit.code());
        buf.put_u8(self.order as u8);
        put_uvarint(buf, self.count);
        buf.put_u8(u8::from(self.any));
        buf.put_u8(self.with);
    }

    fn read(r: &mut Reader<P>) -> Result<Query<P>, DecodeError> {
        let center = match r.u8()? {
            0 => Center::Member(r.bytes()?),
            1 => Center::Point(Point::read(r)?),
            _ => return Err(DecodeError::Invalid("unknown centre")),
        };
        let area = match r.u8()? {
            0 => Area::Radius(extent(r)?),
            1 => Area::Box {
                width: extent(r)?,
                height: extent(r)?,
            },
            _ => return Err(DecodeError::Invalid("unknown area")),
        };
        let unit = Unit::from_code(r.u8()?)?;
        let order = match r.u8()? {
            0 => Order::Unsorted,
            1 => Order::Nearest,
            2 => Order::Farthest,
            _ => return Err(DecodeError::Invalid("unknown order")),
        };
        let count = r.uvarint()?;
        let any = flag(r)?;
        if any && count == 0 {
            return Err(DecodeError::Invalid("ANY needs a count"));
        }
        let with = r.u8()?;
        if with & !with::ALL != 0 {
            return Err(DecodeError::Invalid("unknown WITH bits"));
        }
        Ok(Query {
            center,
            area,
            unit,
            order,
            count,
            any,
            with,
        })
    }

    fn to_owned_bytes(&self) -> Query<Bytes> {
        Query {
            center: match &self.center {
                Center::Member(member) => Center::Member(Bytes::copy_from_slice(member.as_ref())),
                Center::Point(point) => Center::Point(*point),
            },
            area: self.area,
            unit: self.unit,
            order: self.order,
            count: self.count,
            any: self.any,
            with: self.with,
        }
    }
}

impl<P: Payload> GeoSetCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            GeoSetCommand::Add { .. } => opcode::GEOADD,
            GeoSetCommand::Pos { .. } => opcode::GEOPOS,
            GeoSetCommand::Dist { .. } => opcode::GEODIST,
            GeoSetCommand::Hash { .. } => opcode::GEOHASH,
            GeoSetCommand::Search { .. } => opcode::GEOSEARCH,
            GeoSetCommand::SearchStore { .. } => opcode::GEOSEARCHSTORE,
        }
    }

    /// The key that names the slot: the geo set, or GEOSEARCHSTORE's destination.
    pub fn single_key(&self) -> Option<&P> {
        Some(match self {
            GeoSetCommand::Add { key, .. }
            | GeoSetCommand::Pos { key, .. }
            | GeoSetCommand::Dist { key, .. }
            | GeoSetCommand::Hash { key, .. }
            | GeoSetCommand::Search { key, .. } => key,
            GeoSetCommand::SearchStore { destination, .. } => destination,
        })
    }

    /// Calls `visit` with every key the command names.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[u8])) {
        if let GeoSetCommand::SearchStore { source, .. } = self {
            visit(source.as_ref());
        }
        if let Some(key) = self.single_key() {
            visit(key.as_ref());
        }
    }

    /// How the command splits across shards: it never does.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<GeoSetCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            GeoSetCommand::Add {
                key,
                condition,
                changed,
                points,
            } => {
                put_bytes(buf, key.as_ref());
                buf.put_u8(*condition as u8);
                buf.put_u8(u8::from(*changed));
                put_uvarint(buf, points.len() as u64);
                for (point, member) in points {
                    point.put(buf);
                    put_bytes(buf, member.as_ref());
                }
            }
            GeoSetCommand::Pos { key, members } | GeoSetCommand::Hash { key, members } => {
                put_bytes(buf, key.as_ref());
                super::arg::put_list(buf, members);
            }
            GeoSetCommand::Dist {
                key,
                from,
                to,
                unit,
            } => {
                put_bytes(buf, key.as_ref());
                put_bytes(buf, from.as_ref());
                put_bytes(buf, to.as_ref());
                buf.put_u8(unit.code());
            }
            GeoSetCommand::Search { key, query } => {
                put_bytes(buf, key.as_ref());
                query.put(buf);
            }
            GeoSetCommand::SearchStore {
                destination,
                source,
                query,
                store_distance,
            } => {
                put_bytes(buf, destination.as_ref());
                put_bytes(buf, source.as_ref());
                query.put(buf);
                buf.put_u8(u8::from(*store_distance));
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::GEOADD => {
                let key = read_key(r)?;
                let condition = match r.u8()? {
                    0 => AddCondition::Always,
                    1 => AddCondition::IfAbsent,
                    2 => AddCondition::IfPresent,
                    _ => return Err(DecodeError::Invalid("unknown GEOADD condition")),
                };
                let changed = flag(r)?;
                // A point is 16 bytes and a member at least its length byte.
                let count = r.count(17)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("GEOADD adds at least one point"));
                }
                let points = (0..count)
                    .map(|_| Ok((Point::read(r)?, r.bytes()?)))
                    .collect::<Result<_, DecodeError>>()?;
                GeoSetCommand::Add {
                    key,
                    condition,
                    changed,
                    points,
                }
            }
            opcode::GEOPOS | opcode::GEOHASH => {
                let key = read_key(r)?;
                let members = read_members(r)?;
                if op == opcode::GEOPOS {
                    GeoSetCommand::Pos { key, members }
                } else {
                    GeoSetCommand::Hash { key, members }
                }
            }
            opcode::GEODIST => GeoSetCommand::Dist {
                key: read_key(r)?,
                from: r.bytes()?,
                to: r.bytes()?,
                unit: Unit::from_code(r.u8()?)?,
            },
            opcode::GEOSEARCH => GeoSetCommand::Search {
                key: read_key(r)?,
                query: Query::read(r)?,
            },
            opcode::GEOSEARCHSTORE => {
                let destination = read_key(r)?;
                let source = read_key(r)?;
                let query = Query::read(r)?;
                if query.with != 0 {
                    return Err(DecodeError::Invalid(
                        "GEOSEARCHSTORE answers no WITH options",
                    ));
                }
                GeoSetCommand::SearchStore {
                    destination,
                    source,
                    query,
                    store_distance: flag(r)?,
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> GeoSetCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            GeoSetCommand::Add {
                key,
                condition,
                changed,
                points,
            } => GeoSetCommand::Add {
                key: own(key),
                condition: *condition,
                changed: *changed,
                points: points.iter().map(|(p, m)| (*p, own(m))).collect(),
            },
            GeoSetCommand::Pos { key, members } => GeoSetCommand::Pos {
                key: own(key),
                members: members.iter().map(own).collect(),
            },
            GeoSetCommand::Hash { key, members } => GeoSetCommand::Hash {
                key: own(key),
                members: members.iter().map(own).collect(),
            },
            GeoSetCommand::Dist {
                key,
                from,
                to,
                unit,
            } => GeoSetCommand::Dist {
                key: own(key),
                from: own(from),
                to: own(to),
                unit: *unit,
            },
            GeoSetCommand::Search { key, query } => GeoSetCommand::Search {
                key: own(key),
                query: query.to_owned_bytes(),
            },
            GeoSetCommand::SearchStore {
                destination,
                source,
                query,
                store_distance,
            } => GeoSetCommand::SearchStore {
                destination: own(destination),
                source: own(source),
                query: query.to_owned_bytes(),
                store_distance: *store_distance,
            },
        }
    }
}
