//! The driver index on one shard: members of the partitions this shard holds, bucketed by
//! H3 cell for exact nearest-K, and the directory entries of the members it is home to.
//!
//! A member lives in exactly one partition (the resolution-5 cell of its position), held by
//! the shard `partition_shard(index, partition)`. Its directory entry lives on its home
//! shard, `shard_for_key(member)`, and says which partition holds it; every command naming
//! a member runs through its home, which is what makes moves between partitions safe.
//! Status (available, offered, busy, or any other word) lives with the position, so a claim
//! is one atomic step on the partition's shard.

use std::hash::BuildHasher;

use bytes::Bytes;
use h3o::{CellIndex, Resolution};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use slab::Slab;
use tessera_protocol::geo::{GeoArea, GeoPoint, AVAILABLE, BUSY, OFFERED};
use tessera_protocol::{ErrorCode, ErrorReply, Value};

mod saved;
pub use saved::{HeldState, SavedMember};

mod geometry;
mod shard;
pub use geometry::*;
pub use shard::GeoShard;

/// What a member is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// May be claimed.
    Available,
    /// Held by a claim until this time (ms); available again after it.
    Offered(u64),
    /// Confirmed.
    Busy,
    /// Any other word, by its number in the index's status table.
    Other(u8),
}

impl Status {
    /// The status in effect at `now`: a lapsed offer is available again.
    pub fn at(self, now: u64) -> Status {
        match self {
            Status::Offered(until) if until <= now => Status::Available,
            status => status,
        }
    }
}

/// One member's position and state in a partition.
#[derive(Debug)]
struct Member {
    name: Box<[u8]>,
    cell: u64,
    status: Status,
    /// When the member is forgotten unless updated (ms); 0 for never.
    expires_at: u64,
    updated_at: u64,
    meta: Option<Box<[u8]>>,
}

impl Member {
    fn is_live(&self, now: u64) -> bool {
        self.expires_at == 0 || self.expires_at > now
    }
}

/// A directory entry: which shard holds a member this shard is home to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    /// The shard whose partitions hold the member.
    pub holder: u16,
    /// A move between shards is under way; other commands for the member wait.
    pub moving: bool,
}

/// What GEO.NEAR asks of one shard.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Query point.
    pub center: GeoPoint,
    /// Search radius in metres.
    pub radius_m: f64,
    /// Most members.
    pub k: usize,
    /// Only members with this status.
    pub status: Option<&'a [u8]>,
    /// Whether hits carry metadata.
    pub with_meta: bool,
}

/// A member as a search found it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Distance from the query point, in metres.
    pub distance_m: f64,
    /// Member name.
    pub name: Bytes,
    /// Metadata, if asked for and present.
    pub meta: Option<Bytes>,
}

/// What a member carries across a move between partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// Its status word (`available` when offered: the offer is `offered_until`).
    pub status: Bytes,
    /// Offer deadline (ms), if offered.
    pub offered_until: Option<u64>,
    /// Its metadata.
    pub meta: Option<Bytes>,
}

/// A position update as it reaches the partition.
#[derive(Debug, Clone)]
pub struct Placement<P = Bytes> {
    /// Member name.
    pub member: P,
    /// New position.
    pub at: GeoPoint,
    /// The position's cell at the index's resolution, if the caller has it already.
    pub cell: Option<u64>,
    /// New status word; `None` keeps the current one (available if new).
    pub status: Option<P>,
    /// Offer deadline to restore, when the member arrives from another partition.
    pub offered_until: Option<u64>,
    /// New lapse time (ms); `None` keeps the current one (never if new).
    pub expires_at: Option<u64>,
    /// New metadata; `None` keeps what is there.
    pub meta: Option<P>,
}

impl<P> Placement<P> {
    /// A move of `member` to `at` that keeps its status, TTL and metadata.
    pub fn at(member: P, at: GeoPoint) -> Placement<P> {
        Placement {
            member,
            at,
            cell: None,
            status: None,
            offered_until: None,
            expires_at: None,
            meta: None,
        }
    }
}

/// A member's position in its cell's bucket, with a summary of its record so a search
/// can skip non-matching members without touching the record.
#[derive(Debug, Clone, Copy)]
struct Placed {
    at: GeoPoint,
    slot: u32,
    /// The status code (`Status::code`), plus `HAS_EXPIRY` if the member can lapse.
    tag: u8,
}

/// Tag bit: the member has a TTL, so its record decides whether it is live.
const HAS_EXPIRY: u8 = 0x80;
/// Status code of an offer, whose deadline only the record knows.
const OFFERED_CODE: u8 = 1;

impl Status {
    /// A small number per status word (offers share one, whatever their deadline).
    fn code(self) -> u8 {
        match self {
            Status::Available => 0,
            Status::Offered(_) => OFFERED_CODE,
            Status::Busy => 2,
            Status::Other(n) => 3 + n,
        }
    }
}

impl Member {
    fn tag(&self) -> u8 {
        self.status.code() | if self.expires_at != 0 { HAS_EXPIRY } else { 0 }
    }
}

/// One index's state on one shard.
pub struct GeoIndex {
    resolution: Resolution,
    members: Slab<Member>,
    by_name: HashTable<u32>,
    /// Members by cell, each with its position: a search reads positions from here,
    /// contiguous per cell, and touches a member's record only for a candidate.
    cells: HashMap<u64, Vec<Placed>>,
    /// Status words other than the three built in, numbered by first use.
    statuses: Vec<Box<[u8]>>,
    homes: HashMap<Box<[u8]>, Home>,
    hasher: DefaultHashBuilder,
    /// Where the incremental sweep of lapsed members resumes.
    sweep_from: usize,
    /// Members and directory entries changed since the log last looked, once the log
    /// listens (see `saved`).
    touched: Option<Vec<Box<[u8]>>>,
}

/// Why a member operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such member (or it lapsed).
    NotFound,
    /// The member is not in the state the operation needs.
    Conflict,
    /// Too many distinct status words in one index.
    TooManyStatuses,
}

impl Refusal {
    /// The error reply for a refusal; `conflict` says which state a CONFLICT wanted (the
    /// steps that cannot conflict pass an empty one).
    pub fn to_value(self, conflict: &str) -> Value {
        Value::Error(self.to_error(conflict))
    }

    /// The typed error for this refusal; `conflict` explains a `Conflict`.
    pub fn to_error(self, conflict: &str) -> ErrorReply {
        match self {
            Refusal::NotFound => ErrorReply::new(ErrorCode::NotFound, "no such member"),
            Refusal::Conflict => ErrorReply::new(ErrorCode::Conflict, conflict.to_string()),
            Refusal::TooManyStatuses => ErrorReply::new(
                ErrorCode::TooManyElements,
                "an index has at most 250 distinct status words",
            ),
        }
    }
}

impl GeoIndex {
    fn new(resolution: Resolution) -> Self {
        Self {
            resolution,
            members: Slab::new(),
            by_name: HashTable::new(),
            cells: HashMap::new(),
            statuses: Vec::new(),
            homes: HashMap::new(),
            hasher: DefaultHashBuilder::default(),
            sweep_from: 0,
            touched: None,
        }
    }

    /// The index's H3 resolution.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    fn find(&self, name: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.by_name
            .find(hash, |&slot| &*self.members[slot as usize].name == name)
            .copied()
    }

    fn status_word(&self, status: Status) -> &[u8] {
        match status {
            Status::Available => AVAILABLE,
            Status::Offered(_) => OFFERED,
            Status::Busy => BUSY,
            Status::Other(n) => &self.statuses[usize::from(n)],
        }
    }

    fn status_of(&mut self, word: &[u8]) -> Result<Status, Refusal> {
        Ok(match word {
            AVAILABLE => Status::Available,
            BUSY => Status::Busy,
            _ => match self.statuses.iter().position(|s| &**s == word) {
                Some(n) => Status::Other(n as u8),
                None if self.statuses.len() < 250 => {
                    self.statuses.push(word.into());
                    Status::Other((self.statuses.len() - 1) as u8)
                }
                None => return Err(Refusal::TooManyStatuses),
            },
        })
    }

    /// The code a status word has in this index; `None` if no member can have it.
    fn code_of(&self, word: &[u8]) -> Option<u8> {
        match word {
            AVAILABLE => Some(0),
            OFFERED => Some(OFFERED_CODE),
            BUSY => Some(2),
            _ => self
                .statuses
                .iter()
                .position(|s| &**s == word)
                .map(|n| 3 + n as u8),
        }
    }

    /// Refreshes the bucket entry of the member in `slot` after its record changed.
    fn sync_bucket(&mut self, slot: u32, at: Option<GeoPoint>) {
        let member = &self.members[slot as usize];
        let tag = member.tag();
        if let Some(placed) = self
            .cells
            .get_mut(&member.cell)
            .and_then(|bucket| bucket.iter_mut().find(|p| p.slot == slot))
        {
            placed.tag = tag;
            if let Some(at) = at {
                placed.at = at;
            }
        }
    }

    /// Whether a member's status at `now` matches a filter word.
    fn matches(&self, status: Status, filter: Option<&[u8]>, now: u64) -> bool {
        filter.is_none_or(|word| self.status_word(status.at(now)) == word)
    }

    fn unlink(&mut self, slot: u32) -> Member {
        let member = self.members.remove(slot as usize);
        self.touch(&member.name);
        let hash = self.hasher.hash_one(&*member.name);
        if let Ok(entry) = self.by_name.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.leave_cell(member.cell, slot);
        member
    }

    /// Where the member in `slot` (of `cell`) is.
    fn position(&self, cell: u64, slot: u32) -> GeoPoint {
        self.cells
            .get(&cell)
            .and_then(|bucket| bucket.iter().find(|p| p.slot == slot))
            .map_or(
                GeoPoint {
                    lat_e7: 0,
                    lng_e7: 0,
                },
                |p| p.at,
            )
    }

    fn leave_cell(&mut self, cell: u64, slot: u32) {
        if let Some(bucket) = self.cells.get_mut(&cell) {
            if let Some(i) = bucket.iter().position(|p| p.slot == slot) {
                bucket.swap_remove(i);
            }
            if bucket.is_empty() {
                self.cells.remove(&cell);
            }
        }
    }

    /// Inserts or moves a member within this shard's partitions; `true` if it was new.
    pub fn place<P: AsRef<[u8]>>(
        &mut self,
        placement: Placement<P>,
        now: u64,
    ) -> Result<bool, Refusal> {
        let status = match &placement.status {
            Some(word) => Some(self.status_of(word.as_ref())?),
            None => None,
        };
        let status = match (status, placement.offered_until) {
            (_, Some(until)) => Some(Status::Offered(until)),
            (status, None) => status,
        };
        let cell = placement
            .cell
            .unwrap_or_else(|| u64::from(cell_of(placement.at, self.resolution)));
        let name = placement.member.as_ref();
        let existing = self
            .find(name)
            .filter(|&slot| self.members[slot as usize].is_live(now));
        let Some(slot) = existing else {
            if let Some(stale) = self.find(name) {
                self.unlink(stale);
            }
            let slot = self.members.insert(Member {
                name: name.into(),
                cell,
                status: status.unwrap_or(Status::Available),
                expires_at: placement.expires_at.unwrap_or(0),
                updated_at: now,
                meta: placement.meta.map(|m| m.as_ref().into()),
            }) as u32;
            let hash = self.hasher.hash_one(name);
            let (members, hasher) = (&self.members, &self.hasher);
            self.by_name
                .insert_unique(hash, slot, |&s| hasher.hash_one(&*members[s as usize].name));
            let at = placement.at;
            let tag = self.members[slot as usize].tag();
            self.cells
                .entry(cell)
                .or_default()
                .push(Placed { at, slot, tag });
            self.touch(name);
            return Ok(true);
        };
        let old_cell = self.members[slot as usize].cell;
        let at = placement.at;
        if old_cell != cell {
            self.leave_cell(old_cell, slot);
            let tag = self.members[slot as usize].tag();
            self.cells
                .entry(cell)
                .or_default()
                .push(Placed { at, slot, tag });
        }
        let member = &mut self.members[slot as usize];
        member.cell = cell;
        member.updated_at = now;
        if let Some(status) = status {
            member.status = status;
        }
        if let Some(expires_at) = placement.expires_at {
            member.expires_at = expires_at;
        }
        if let Some(meta) = placement.meta {
            member.meta = Some(meta.as_ref().into());
        }
        self.sync_bucket(slot, Some(at));
        self.touch(name);
        Ok(false)
    }

    /// Removes a member, returning what a move carries to its next partition.
    pub fn take(&mut self, name: &[u8], now: u64) -> Option<Carried> {
        let slot = self.find(name)?;
        let member = self.unlink(slot);
        if !member.is_live(now) {
            return None;
        }
        let status = member.status.at(now);
        Some(Carried {
            // An offer travels as its deadline, on top of the available status.
            status: match status {
                Status::Offered(_) => Bytes::from_static(AVAILABLE),
                other => Bytes::copy_from_slice(self.status_word(other)),
            },
            offered_until: match status {
                Status::Offered(until) => Some(until),
                _ => None,
            },
            meta: member.meta.map(|m| Bytes::from(m.into_vec())),
        })
    }

    /// Moves a live member from one status to another, atomically.
    fn transition(
        &mut self,
        name: &[u8],
        now: u64,
        step: impl FnOnce(Status) -> Option<Status>,
    ) -> Result<(), Refusal> {
        let slot = self.find(name).ok_or(Refusal::NotFound)?;
        let member = &mut self.members[slot as usize];
        if !member.is_live(now) {
            return Err(Refusal::NotFound);
        }
        member.status = step(member.status.at(now)).ok_or(Refusal::Conflict)?;
        self.sync_bucket(slot, None);
        self.touch(name);
        Ok(())
    }

    /// Available → offered until `until`.
    pub fn claim(&mut self, name: &[u8], until: u64, now: u64) -> Result<(), Refusal> {
        self.transition(name, now, |status| {
            (status == Status::Available).then_some(Status::Offered(until))
        })
    }

    /// Offered → busy.
    pub fn confirm(&mut self, name: &[u8], now: u64) -> Result<(), Refusal> {
        self.transition(name, now, |status| {
            matches!(status, Status::Offered(_)).then_some(Status::Busy)
        })
    }

    /// Anything → available.
    pub fn release(&mut self, name: &[u8], now: u64) -> Result<(), Refusal> {
        self.transition(name, now, |_| Some(Status::Available))
    }

    /// GEO.GET's map for a live member.
    pub fn describe(&self, name: &[u8], now: u64) -> Value {
        let Some(slot) = self
            .find(name)
            .filter(|&slot| self.members[slot as usize].is_live(now))
        else {
            return Value::Nil;
        };
        let member = &self.members[slot as usize];
        let at = self.position(member.cell, slot);
        let cell = CellIndex::try_from(member.cell).map_or(String::new(), |c| c.to_string());
        Value::Map(vec![
            (Value::text("lat"), Value::Float(at.lat())),
            (Value::text("lng"), Value::Float(at.lng())),
            (Value::text("cell"), Value::text(cell)),
            (
                Value::text("status"),
                Value::Bytes(Bytes::copy_from_slice(
                    self.status_word(member.status.at(now)),
                )),
            ),
            (
                Value::text("age_ms"),
                Value::Int(now.saturating_sub(member.updated_at) as i64),
            ),
            (
                Value::text("ttl_ms"),
                if member.expires_at == 0 {
                    Value::Int(-1)
                } else {
                    Value::Int(member.expires_at.saturating_sub(now) as i64)
                },
            ),
            (
                Value::text("meta"),
                member
                    .meta
                    .as_ref()
                    .map_or(Value::Nil, |m| Value::Bytes(Bytes::copy_from_slice(m))),
            ),
        ])
    }

    /// Exact K nearest live members within `radius_m` having status `filter`, nearest
    /// first (ties by name).
    pub fn nearest(
        &self,
        shapes: &mut Shapes,
        query: &Query<'_>,
        now: u64,
    ) -> Result<Vec<Hit>, TooFar> {
        let Query {
            center,
            radius_m,
            k,
            status: filter,
            with_meta,
        } = *query;
        if radius_m > max_radius_m(self.resolution) {
            return Err(TooFar);
        }
        let probe = Probe::of(center);
        let from = probe.spot;
        let origin = cell_of(center, self.resolution);
        let lat_e7 = f64::from(center.lat_e7);
        // Metres per 1e-7 degree of latitude along a meridian: a latitude difference alone
        // bounds the great-circle distance from below, with no trigonometry.
        let metres_per_e7 = EARTH_RADIUS_M * 1e-7_f64.to_radians();
        // The best K so far, kept sorted; small K makes a vector the fastest heap.
        let mut best: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
        let wanted = filter.map(|word| self.code_of(word));
        if wanted == Some(None) {
            // No member has ever had that status here.
            return Ok(Vec::new());
        }
        let wanted = wanted.flatten();
        if !self.members.is_empty() {
            // Members compare by haversine value; `limit` (metres) bounds the walk and
            // the latitude filter, `limit_hav` is the same distance as a haversine value.
            let mut limit_hav = m_to_hav(radius_m) * (1.0 + 1e-12);
            walk(shapes, &probe, origin, radius_m, |cell, _, limit| {
                let Some(bucket) = self.cells.get(&u64::from(cell)) else {
                    return limit;
                };
                let mut limit = limit;
                // Within the limit's latitude band every member's cos(lat) is at least
                // `min_cos`, and |sin x| >= 2|x|/pi, so the haversine value is at least
                // cos(lat0) * min_cos * (dlng / pi)^2: a longitude filter without trig.
                let band = limit / EARTH_RADIUS_M;
                let min_cos = (from.lat.abs() + band)
                    .min(std::f64::consts::FRAC_PI_2)
                    .cos();
                let lng_factor = from.cos_lat
                    * min_cos
                    * (1e-7_f64.to_radians() / std::f64::consts::PI).powi(2)
                    * (1.0 - 1e-9);
                let lng_e7 = f64::from(center.lng_e7);
                for &Placed { at, slot, tag } in bucket {
                    if (f64::from(at.lat_e7) - lat_e7).abs() * metres_per_e7 > limit * (1.0 + 1e-9)
                    {
                        continue;
                    }
                    // The longitude difference the short way round, in 1e-7 degrees.
                    let mut dlng = (f64::from(at.lng_e7) - lng_e7).abs();
                    if dlng > 1.8e9 {
                        dlng = 3.6e9 - dlng;
                    }
                    if lng_factor * dlng * dlng > limit_hav {
                        continue;
                    }
                    let distance = from.hav(&Spot::of(at));
                    if distance > limit_hav {
                        continue;
                    }
                    // Only a member that can lapse, or is offered (the offer may have
                    // lapsed), needs its record read to decide.
                    let code = tag & !HAS_EXPIRY;
                    if tag & HAS_EXPIRY != 0 || code == OFFERED_CODE {
                        let member = &self.members[slot as usize];
                        if !member.is_live(now) || !self.matches(member.status, filter, now) {
                            continue;
                        }
                    } else if wanted.is_some_and(|wanted| wanted != code) {
                        continue;
                    }
                    // Insertion by swaps: K is small, and a shifting insert costs a
                    // memmove call per candidate.
                    let name = |s: u32| &*self.members[s as usize].name;
                    let before = |a: (f64, u32), b: (f64, u32)| {
                        a.0 < b.0 || (a.0 == b.0 && name(a.1) < name(b.1))
                    };
                    best.push((distance, slot));
                    let mut i = best.len() - 1;
                    while i > 0 && before(best[i], best[i - 1]) {
                        best.swap(i, i - 1);
                        i -= 1;
                    }
                    if best.len() > k {
                        best.pop();
                    }
                    if best.len() == k && best[k - 1].0 < limit_hav {
                        limit_hav = best[k - 1].0;
                        limit = limit.min(hav_to_m(limit_hav) * (1.0 + 1e-9) + 1e-6);
                    }
                }
                limit
            })?;
        }
        Ok(best
            .into_iter()
            .map(|(hav, slot)| {
                let member = &self.members[slot as usize];
                Hit {
                    distance_m: hav_to_m(hav),
                    name: Bytes::copy_from_slice(&member.name),
                    meta: if with_meta {
                        member.meta.as_ref().map(|m| Bytes::copy_from_slice(m))
                    } else {
                        None
                    },
                }
            })
            .collect())
    }

    /// Live members matching `filter`, inside `area` if given, counted per cell at
    /// `resolution` (`None` counts them all under one key).
    pub fn census(
        &self,
        shapes: &mut Shapes,
        area: Option<GeoArea>,
        resolution: Option<Resolution>,
        filter: Option<&[u8]>,
        now: u64,
    ) -> Result<HashMap<u64, i64>, TooFar> {
        let mut counts: HashMap<u64, i64> = HashMap::new();
        let mut count = |member: &Member| {
            let key = match resolution {
                Some(res) => CellIndex::try_from(member.cell)
                    .ok()
                    .and_then(|cell| cell.parent(res))
                    .map_or(0, u64::from),
                None => 0,
            };
            *counts.entry(key).or_default() += 1;
        };
        let counted =
            |member: &Member| member.is_live(now) && self.matches(member.status, filter, now);
        match area {
            None => self
                .members
                .iter()
                .map(|(_, m)| m)
                .filter(|m| counted(m))
                .for_each(&mut count),
            Some(area) if f64::from(area.radius_m) > max_radius_m(self.resolution) => {
                return Err(TooFar);
            }
            Some(area) => {
                let probe = Probe::of(area.center);
                let from = probe.spot;
                let radius = f64::from(area.radius_m);
                walk(
                    shapes,
                    &probe,
                    cell_of(area.center, self.resolution),
                    radius,
                    |cell, _, limit| {
                        for &Placed { at, slot, .. } in
                            self.cells.get(&u64::from(cell)).into_iter().flatten()
                        {
                            let member = &self.members[slot as usize];
                            if from.distance_m(&Spot::of(at)) <= radius && counted(member) {
                                count(member);
                            }
                        }
                        limit
                    },
                )?;
            }
        }
        Ok(counts)
    }

    /// Removes up to `budget` lapsed members, resuming where the last sweep stopped;
    /// returns their names, so their homes can forget them too.
    pub fn sweep(&mut self, budget: usize, now: u64) -> Vec<Bytes> {
        let capacity = self.members.capacity();
        let mut removed = Vec::new();
        let mut looked = 0;
        while looked < budget.min(capacity) {
            let slot = self.sweep_from % capacity;
            self.sweep_from = slot + 1;
            looked += 1;
            if self.members.get(slot).is_some_and(|m| !m.is_live(now)) {
                let member = self.unlink(slot as u32);
                removed.push(Bytes::from(member.name.into_vec()));
            }
        }
        removed
    }

    /// Whether this shard holds `name`, live.
    pub fn holds(&self, name: &[u8], now: u64) -> bool {
        self.find(name)
            .is_some_and(|slot| self.members[slot as usize].is_live(now))
    }

    /// The directory entry of a member this shard is home to.
    pub fn home(&self, name: &[u8]) -> Option<Home> {
        self.homes.get(name).copied()
    }

    /// Sets a member's directory entry.
    pub fn set_home(&mut self, name: &[u8], home: Home) {
        if self
            .homes
            .get(name)
            .is_none_or(|old| old.holder != home.holder)
        {
            self.touch(name);
        }
        match self.homes.get_mut(name) {
            Some(entry) => *entry = home,
            None => {
                self.homes.insert(name.into(), home);
            }
        }
    }

    /// Drops a member's directory entry.
    pub fn forget_home(&mut self, name: &[u8]) -> Option<Home> {
        let forgotten = self.homes.remove(name);
        if forgotten.is_some() {
            self.touch(name);
        }
        forgotten
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        let names: usize = self
            .members
            .iter()
            .map(|(_, m)| m.name.len() + m.meta.as_ref().map_or(0, |x| x.len()))
            .sum();
        let homes: usize = self.homes.keys().map(|k| k.len()).sum();
        self.members.capacity() * (std::mem::size_of::<Member>() + 8)
            + self.by_name.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.cells.capacity() * (std::mem::size_of::<(u64, Vec<u32>)>() + 1)
            + self
                .cells
                .values()
                .map(|v| v.capacity() * std::mem::size_of::<Placed>())
                .sum::<usize>()
            + self.homes.capacity() * (std::mem::size_of::<(Box<[u8]>, Home)>() + 1)
            + names
            + homes
    }
}

#[cfg(test)]
mod tests;
