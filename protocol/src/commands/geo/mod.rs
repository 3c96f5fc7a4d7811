//! The geo commands (driver index on H3 cells): their arguments, wire form and text form.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::{parse_float, parse_int, read_key};
use super::split::Split;
use super::{CommandSpec, KeySpec, MAX_EXPIRE_MS};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

mod text;

/// The family's opcodes; stable once published.
pub mod opcode {
    /// GEO.CREATE
    pub const GEO_CREATE: u16 = 0x00a0;
    /// GEO.UPSERT
    pub const GEO_UPSERT: u16 = 0x00a1;
    /// GEO.NEAR
    pub const GEO_NEAR: u16 = 0x00a2;
    /// GEO.CLAIM
    pub const GEO_CLAIM: u16 = 0x00a3;
    /// GEO.CONFIRM
    pub const GEO_CONFIRM: u16 = 0x00a4;
    /// GEO.RELEASE
    pub const GEO_RELEASE: u16 = 0x00a5;
    /// GEO.REMOVE
    pub const GEO_REMOVE: u16 = 0x00a6;
    /// GEO.GET
    pub const GEO_GET: u16 = 0x00a7;
    /// GEO.COUNT
    pub const GEO_COUNT: u16 = 0x00a8;
    /// GEO.CELLS
    pub const GEO_CELLS: u16 = 0x00a9;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::GEO_CREATE,
        name: "GEO.CREATE",
        syntax: "index RES r",
        wire: "index:bytes res:u8 (7..=12)",
        reply: "OK",
        summary: "Sets an index's H3 resolution (default 9) before its first member.",
        writes: true,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::GEO_UPSERT,
        name: "GEO.UPSERT",
        syntax: "index member lat lng [STATUS s] [TTL secs] [META bytes]",
        wire: "index:bytes member:bytes lat:f64 lng:f64 flags:u8 (1 status, 2 ttl, 4 meta) [status:bytes] [ttl_ms:uvarint] [meta:bytes]",
        reply: "INT 1 new member, 0 updated",
        summary: "Inserts or moves a member; once it returns no query sees the old position.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_NEAR,
        name: "GEO.NEAR",
        syntax: "index lat lng K [RADIUS m] [STATUS s] [WITHDIST] [WITHMETA] [CLAIM [TTL secs]]",
        wire: "index:bytes lat:f64 lng:f64 radius_m:uvarint k:uvarint flags:u8 (1 status, 2 withdist, 4 withmeta, 8 claim) [status:bytes] [claim_ms:uvarint]",
        reply: "ARRAY of members nearest first (BYTES, or ARRAY [member, FLOAT metres?, meta?] with WITHDIST/WITHMETA)",
        summary: "Exact K nearest within the radius; CLAIM takes the nearest available one in the same request.",
        writes: true,
        keys: KeySpec::Area,
    },
    CommandSpec {
        opcode: opcode::GEO_CLAIM,
        name: "GEO.CLAIM",
        syntax: "index member [TTL secs]",
        wire: "index:bytes member:bytes ttl_ms:uvarint",
        reply: "OK, or CONFLICT if not available, NOT_FOUND if unknown",
        summary: "Atomically available → offered; the offer lapses back after TTL (default 15 s).",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_CONFIRM,
        name: "GEO.CONFIRM",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "OK, or CONFLICT if not offered",
        summary: "Offered → busy.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_RELEASE,
        name: "GEO.RELEASE",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "OK, or NOT_FOUND",
        summary: "Offered or busy → available.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_REMOVE,
        name: "GEO.REMOVE",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "INT 1 removed, 0 unknown",
        summary: "Forgets a member.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_GET,
        name: "GEO.GET",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "MAP lat, lng, cell, status, age_ms, ttl_ms, meta; or NIL",
        summary: "A member's position, H3 cell, status and age.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_COUNT,
        name: "GEO.COUNT",
        syntax: "index [WITHIN lat lng m] [STATUS s]",
        wire: "index:bytes flags:u8 (1 area, 2 status) [lat:f64 lng:f64 radius_m:uvarint] [status:bytes]",
        reply: "INT members",
        summary: "Counts members, in an area or with a status.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::GEO_CELLS,
        name: "GEO.CELLS",
        syntax: "index lat lng m [RES r] [STATUS s]",
        wire: "index:bytes lat:f64 lng:f64 radius_m:uvarint res:u8 has_status:u8 [status:bytes]",
        reply: "ARRAY of [TEXT cell, INT members], most first",
        summary: "Per-cell member counts over an area (supply maps; default RES 7).",
        writes: false,
        keys: KeySpec::AllShards,
    },
];

/// H3 resolution of an index that was never given one.
pub const DEFAULT_GEO_RESOLUTION: u8 = 9;
/// Finest and coarsest resolutions an index may use.
pub const GEO_RESOLUTIONS: std::ops::RangeInclusive<u8> = 7..=12;
/// Search radius of a GEO.NEAR that names none, in metres.
pub const DEFAULT_NEAR_RADIUS_M: u32 = 5_000;
/// Largest search radius, in metres.
pub const MAX_RADIUS_M: u32 = 100_000;
/// Most members one GEO.NEAR returns.
pub const MAX_NEAR_K: u32 = 1_000;
/// How long a claim holds a member when the command names no TTL, in milliseconds.
pub const DEFAULT_OFFER_MS: u64 = 15_000;
/// The status members start in and that claims take them from.
pub const AVAILABLE: &[u8] = b"available";
/// The status of a member held by a claim.
pub const OFFERED: &[u8] = b"offered";
/// The status GEO.CONFIRM moves an offered member to.
pub const BUSY: &[u8] = b"busy";

/// A validated position, stored to 1e-7 degree (about 1 cm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeoPoint {
    /// Latitude in 1e-7 degrees.
    pub lat_e7: i32,
    /// Longitude in 1e-7 degrees.
    pub lng_e7: i32,
}

impl GeoPoint {
    /// Validates degrees: finite, latitude within ±90, longitude within ±180.
    ///
    /// # Errors
    /// A message naming the coordinate that is out of range or not a number.
    pub fn new(lat: f64, lng: f64) -> Result<GeoPoint, &'static str> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err("latitude must be a number within -90..90");
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err("longitude must be a number within -180..180");
        }
        Ok(GeoPoint {
            lat_e7: (lat * 1e7).round() as i32,
            lng_e7: (lng * 1e7).round() as i32,
        })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        f64::from(self.lat_e7) * 1e-7
    }

    /// Longitude in degrees.
    pub fn lng(self) -> f64 {
        f64::from(self.lng_e7) * 1e-7
    }
}

/// A circle on the ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoArea {
    /// Its centre.
    pub center: GeoPoint,
    /// Its radius in metres, 1..=`MAX_RADIUS_M`.
    pub radius_m: u32,
}

/// GEO.NEAR's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoNear<P = Bytes> {
    /// Index name.
    pub index: P,
    /// Where to search from and how far.
    pub area: GeoArea,
    /// Most members to return, 1..=`MAX_NEAR_K`.
    pub k: u32,
    /// Only members with this status.
    pub status: Option<P>,
    /// Reply with each member's distance.
    pub with_dist: bool,
    /// Reply with each member's metadata.
    pub with_meta: bool,
    /// Claim the nearest available member for this long, in milliseconds.
    pub claim_ms: Option<u64>,
}

/// A geo command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoCommand<P = Bytes> {
    /// GEO.CREATE index RES r
    Create {
        /// Index name.
        index: P,
        /// H3 resolution of its cells.
        resolution: u8,
    },
    /// GEO.UPSERT index member lat lng [STATUS s] [TTL secs] [META bytes]
    Upsert {
        /// Index name.
        index: P,
        /// Member (driver) id.
        member: P,
        /// New position.
        at: GeoPoint,
        /// New status; `None` keeps the current one (new members start available).
        status: Option<P>,
        /// Forget the member this long after this update unless updated again (ms).
        ttl_ms: Option<u64>,
        /// Metadata to store; `None` keeps what is there.
        meta: Option<P>,
    },
    /// GEO.NEAR index lat lng K [RADIUS m] [STATUS s] [WITHDIST] [WITHMETA] [CLAIM [TTL secs]]
    Near(GeoNear<P>),
    /// GEO.CLAIM index member [TTL secs]
    Claim {
        /// Index name.
        index: P,
        /// Member to claim.
        member: P,
        /// How long the offer holds, in milliseconds.
        ttl_ms: u64,
    },
    /// GEO.CONFIRM index member
    Confirm {
        /// Index name.
        index: P,
        /// Offered member.
        member: P,
    },
    /// GEO.RELEASE index member
    Release {
        /// Index name.
        index: P,
        /// Offered or busy member.
        member: P,
    },
    /// GEO.REMOVE index member
    Remove {
        /// Index name.
        index: P,
        /// Member to forget.
        member: P,
    },
    /// GEO.GET index member
    Get {
        /// Index name.
        index: P,
        /// Member to describe.
        member: P,
    },
    /// GEO.COUNT index [WITHIN lat lng m] [STATUS s]
    Count {
        /// Index name.
        index: P,
        /// Only members inside this circle.
        area: Option<GeoArea>,
        /// Only members with this status.
        status: Option<P>,
    },
    /// GEO.CELLS index lat lng m [RES r] [STATUS s]
    Cells {
        /// Index name.
        index: P,
        /// The area to map.
        area: GeoArea,
        /// Resolution of the cells counted (at most the index's).
        resolution: u8,
        /// Only members with this status.
        status: Option<P>,
    },
}

impl<P: Payload> GeoCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            GeoCommand::Create { .. } => opcode::GEO_CREATE,
            GeoCommand::Upsert { .. } => opcode::GEO_UPSERT,
            GeoCommand::Near(_) => opcode::GEO_NEAR,
            GeoCommand::Claim { .. } => opcode::GEO_CLAIM,
            GeoCommand::Confirm { .. } => opcode::GEO_CONFIRM,
            GeoCommand::Release { .. } => opcode::GEO_RELEASE,
            GeoCommand::Remove { .. } => opcode::GEO_REMOVE,
            GeoCommand::Get { .. } => opcode::GEO_GET,
            GeoCommand::Count { .. } => opcode::GEO_COUNT,
            GeoCommand::Cells { .. } => opcode::GEO_CELLS,
        }
    }

    /// The index named.
    pub fn index(&self) -> &P {
        match self {
            GeoCommand::Create { index, .. }
            | GeoCommand::Upsert { index, .. }
            | GeoCommand::Claim { index, .. }
            | GeoCommand::Confirm { index, .. }
            | GeoCommand::Release { index, .. }
            | GeoCommand::Remove { index, .. }
            | GeoCommand::Get { index, .. }
            | GeoCommand::Count { index, .. }
            | GeoCommand::Cells { index, .. } => index,
            GeoCommand::Near(near) => &near.index,
        }
    }

    /// The member a command acts on: its owner shard keeps the member's record.
    pub fn member(&self) -> Option<&P> {
        match self {
            GeoCommand::Upsert { member, .. }
            | GeoCommand::Claim { member, .. }
            | GeoCommand::Confirm { member, .. }
            | GeoCommand::Release { member, .. }
            | GeoCommand::Remove { member, .. }
            | GeoCommand::Get { member, .. } => Some(member),
            _ => None,
        }
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<GeoCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        put_bytes(buf, self.index().as_ref());
        match self {
            GeoCommand::Create { resolution, .. } => buf.put_u8(*resolution),
            GeoCommand::Upsert {
                member,
                at,
                status,
                ttl_ms,
                meta,
                ..
            } => {
                put_bytes(buf, member.as_ref());
                put_point(buf, *at);
                let flags = u8::from(status.is_some())
                    | u8::from(ttl_ms.is_some()) << 1
                    | u8::from(meta.is_some()) << 2;
                buf.put_u8(flags);
                if let Some(status) = status {
                    put_bytes(buf, status.as_ref());
                }
                if let Some(ttl_ms) = ttl_ms {
                    put_uvarint(buf, *ttl_ms);
                }
                if let Some(meta) = meta {
                    put_bytes(buf, meta.as_ref());
                }
            }
            GeoCommand::Near(near) => {
                put_area(buf, near.area);
                put_uvarint(buf, u64::from(near.k));
                let flags = u8::from(near.status.is_some())
                    | u8::from(near.with_dist) << 1
                    | u8::from(near.with_meta) << 2
                    | u8::from(near.claim_ms.is_some()) << 3;
                buf.put_u8(flags);
                if let Some(status) = &near.status {
                    put_bytes(buf, status.as_ref());
                }
                if let Some(claim_ms) = near.claim_ms {
                    put_uvarint(buf, claim_ms);
                }
            }
            GeoCommand::Claim { member, ttl_ms, .. } => {
                put_bytes(buf, member.as_ref());
                put_uvarint(buf, *ttl_ms);
            }
            GeoCommand::Confirm { member, .. }
            | GeoCommand::Release { member, .. }
            | GeoCommand::Remove { member, .. }
            | GeoCommand::Get { member, .. } => put_bytes(buf, member.as_ref()),
            GeoCommand::Count { area, status, .. } => {
                buf.put_u8(u8::from(area.is_some()) | u8::from(status.is_some()) << 1);
                if let Some(area) = area {
                    put_area(buf, *area);
                }
                if let Some(status) = status {
                    put_bytes(buf, status.as_ref());
                }
            }
            GeoCommand::Cells {
                area,
                resolution,
                status,
                ..
            } => {
                put_area(buf, *area);
                buf.put_u8(*resolution);
                buf.put_u8(u8::from(status.is_some()));
                if let Some(status) = status {
                    put_bytes(buf, status.as_ref());
                }
            }
        }
    }

    /// The single key this command touches: the member, whose home keeps its record.
    pub fn single_key(&self) -> Option<&P> {
        self.member()
    }

    /// Reads the arguments of geo opcode `op`, the index name first.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<GeoCommand<P>, DecodeError> {
        let index = read_key(r)?;
        Ok(match op {
            opcode::GEO_CREATE => GeoCommand::Create {
                index,
                resolution: checked_resolution(r.u8()?)?,
            },
            opcode::GEO_UPSERT => {
                let member = read_key(r)?;
                let at = read_point(r)?;
                let flags = r.u8()?;
                if flags > 7 {
                    return Err(DecodeError::Invalid("unknown GEO.UPSERT flags"));
                }
                let status = optional(flags & 1 != 0, || checked_status(r.bytes()?))?;
                let ttl_ms = optional(flags & 2 != 0, || checked_ms(r.uvarint()?))?;
                let meta = optional(flags & 4 != 0, || r.bytes())?;
                GeoCommand::Upsert {
                    index,
                    member,
                    at,
                    status,
                    ttl_ms,
                    meta,
                }
            }
            opcode::GEO_NEAR => {
                let area = read_area(r)?;
                let k = checked_k(r.uvarint()?)?;
                let flags = r.u8()?;
                if flags > 15 {
                    return Err(DecodeError::Invalid("unknown GEO.NEAR flags"));
                }
                let status = optional(flags & 1 != 0, || r.bytes())?;
                let claim_ms = optional(flags & 8 != 0, || checked_ms(r.uvarint()?))?;
                let near = GeoNear {
                    index,
                    area,
                    k,
                    status,
                    with_dist: flags & 2 != 0,
                    with_meta: flags & 4 != 0,
                    claim_ms,
                };
                validate_near(&near)?;
                GeoCommand::Near(near)
            }
            opcode::GEO_CLAIM => GeoCommand::Claim {
                index,
                member: read_key(r)?,
                ttl_ms: checked_ms(r.uvarint()?)?,
            },
            opcode::GEO_CONFIRM | opcode::GEO_RELEASE | opcode::GEO_REMOVE | opcode::GEO_GET => {
                member_command(op, index, read_key(r)?)
            }
            opcode::GEO_COUNT => {
                let flags = r.u8()?;
                if flags > 3 {
                    return Err(DecodeError::Invalid("unknown GEO.COUNT flags"));
                }
                let area = optional(flags & 1 != 0, || read_area(r))?;
                let status = optional(flags & 2 != 0, || r.bytes())?;
                GeoCommand::Count {
                    index,
                    area,
                    status,
                }
            }
            opcode::GEO_CELLS => {
                let area = read_area(r)?;
                let resolution = r.u8()?;
                if resolution > *GEO_RESOLUTIONS.end() {
                    return Err(DecodeError::Invalid("GEO.CELLS resolution must be 0..=12"));
                }
                let status = match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes()?),
                    _ => return Err(DecodeError::Invalid("has_status must be 0 or 1")),
                };
                GeoCommand::Cells {
                    index,
                    area,
                    resolution,
                    status,
                }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// A copy that owns its bytes.
    pub fn to_owned_bytes(&self) -> GeoCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let index = own(self.index());
        match self {
            GeoCommand::Create { resolution, .. } => GeoCommand::Create {
                index,
                resolution: *resolution,
            },
            GeoCommand::Upsert {
                member,
                at,
                status,
                ttl_ms,
                meta,
                ..
            } => GeoCommand::Upsert {
                index,
                member: own(member),
                at: *at,
                status: status.as_ref().map(own),
                ttl_ms: *ttl_ms,
                meta: meta.as_ref().map(own),
            },
            GeoCommand::Near(near) => GeoCommand::Near(GeoNear {
                index,
                area: near.area,
                k: near.k,
                status: near.status.as_ref().map(own),
                with_dist: near.with_dist,
                with_meta: near.with_meta,
                claim_ms: near.claim_ms,
            }),
            GeoCommand::Claim { member, ttl_ms, .. } => GeoCommand::Claim {
                index,
                member: own(member),
                ttl_ms: *ttl_ms,
            },
            GeoCommand::Confirm { member, .. } => GeoCommand::Confirm {
                index,
                member: own(member),
            },
            GeoCommand::Release { member, .. } => GeoCommand::Release {
                index,
                member: own(member),
            },
            GeoCommand::Remove { member, .. } => GeoCommand::Remove {
                index,
                member: own(member),
            },
            GeoCommand::Get { member, .. } => GeoCommand::Get {
                index,
                member: own(member),
            },
            GeoCommand::Count { area, status, .. } => GeoCommand::Count {
                index,
                area: *area,
                status: status.as_ref().map(own),
            },
            GeoCommand::Cells {
                area,
                resolution,
                status,
                ..
            } => GeoCommand::Cells {
                index,
                area: *area,
                resolution: *resolution,
                status: status.as_ref().map(own),
            },
        }
    }
}

/// Reads a field present only when its flag is set.
fn optional<T>(
    present: bool,
    read: impl FnOnce() -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    present.then(read).transpose()
}

/// CONFIRM, RELEASE, REMOVE or GET (by opcode): the commands that name only a member.
fn member_command<P>(op: u16, index: P, member: P) -> GeoCommand<P> {
    match op {
        opcode::GEO_CONFIRM => GeoCommand::Confirm { index, member },
        opcode::GEO_RELEASE => GeoCommand::Release { index, member },
        opcode::GEO_REMOVE => GeoCommand::Remove { index, member },
        _ => GeoCommand::Get { index, member },
    }
}

fn syntax(message: &'static str) -> ErrorReply {
    ErrorReply::new(ErrorCode::Syntax, message)
}

fn reply(error: DecodeError) -> ErrorReply {
    ErrorReply::new(error.code(), error.to_string())
}

fn seconds(word: &[u8]) -> Result<u64, ErrorReply> {
    let secs: u64 = parse_int(word)?;
    secs.checked_mul(1000)
        .filter(|ms| (1..=MAX_EXPIRE_MS as u64).contains(ms))
        .ok_or_else(|| ErrorReply::new(ErrorCode::InvalidExpire, "invalid expire time"))
}

fn point(lat: &[u8], lng: &[u8]) -> Result<GeoPoint, ErrorReply> {
    let parse =
        |word: &[u8]| parse_float(word).map_err(|_| syntax("coordinates must be decimal degrees"));
    GeoPoint::new(parse(lat)?, parse(lng)?).map_err(syntax)
}

fn put_point(buf: &mut BytesMut, at: GeoPoint) {
    buf.put_f64_le(at.lat());
    buf.put_f64_le(at.lng());
}

fn put_area(buf: &mut BytesMut, area: GeoArea) {
    put_point(buf, area.center);
    put_uvarint(buf, u64::from(area.radius_m));
}

fn read_point<P: Payload>(r: &mut Reader<P>) -> Result<GeoPoint, DecodeError> {
    let (lat, lng) = (r.f64()?, r.f64()?);
    GeoPoint::new(lat, lng).map_err(DecodeError::Invalid)
}

fn read_area<P: Payload>(r: &mut Reader<P>) -> Result<GeoArea, DecodeError> {
    let center = read_point(r)?;
    let radius = u32::try_from(r.uvarint()?).unwrap_or(u32::MAX);
    checked_area(center, radius)
}

fn checked_area(center: GeoPoint, radius_m: u32) -> Result<GeoArea, DecodeError> {
    if !(1..=MAX_RADIUS_M).contains(&radius_m) {
        return Err(DecodeError::Invalid("radius must be 1..=100000 metres"));
    }
    Ok(GeoArea { center, radius_m })
}

fn checked_resolution(resolution: u8) -> Result<u8, DecodeError> {
    if GEO_RESOLUTIONS.contains(&resolution) {
        Ok(resolution)
    } else {
        Err(DecodeError::Invalid("index resolution must be 7..=12"))
    }
}

fn checked_k(k: u64) -> Result<u32, DecodeError> {
    match u32::try_from(k) {
        Ok(k) if (1..=MAX_NEAR_K).contains(&k) => Ok(k),
        _ => Err(DecodeError::Invalid("K must be 1..=1000")),
    }
}

fn checked_ms(ms: u64) -> Result<u64, DecodeError> {
    if ms == 0 || ms > MAX_EXPIRE_MS as u64 {
        return Err(DecodeError::InvalidExpire);
    }
    Ok(ms)
}

fn checked_status<P: Payload>(status: P) -> Result<P, DecodeError> {
    match status.as_ref() {
        s if s == OFFERED => Err(DecodeError::Invalid(
            "status 'offered' is set by GEO.CLAIM, not by GEO.UPSERT",
        )),
        [] => Err(DecodeError::Invalid("status must not be empty")),
        s if s.len() > 64 => Err(DecodeError::Invalid("status is longer than 64 bytes")),
        _ => Ok(status),
    }
}

fn validate_near<P: Payload>(near: &GeoNear<P>) -> Result<(), DecodeError> {
    checked_k(u64::from(near.k))?;
    checked_area(near.area.center, near.area.radius_m)?;
    if near.claim_ms.is_some()
        && near
            .status
            .as_ref()
            .is_some_and(|s| s.as_ref() != AVAILABLE)
    {
        return Err(DecodeError::Invalid("CLAIM only takes available members"));
    }
    Ok(())
}
