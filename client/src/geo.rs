//! The driver index: typed GEO.* commands on one index, e.g.
//! `client.geo("drivers").near(lat, lng).k(5).status("available").await`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use tessera_protocol::geo::{
    GeoArea, GeoCommand, GeoNear, GeoPoint, DEFAULT_NEAR_RADIUS_M, DEFAULT_OFFER_MS,
};
use tessera_protocol::{Command, ErrorCode, Value};

use crate::error::{Error, Result};
use crate::Client;

/// One geo index, named; cheap to clone.
#[derive(Clone)]
pub struct GeoIndex {
    client: Client,
    index: Bytes,
}

/// A member found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearby {
    /// Member id.
    pub member: Bytes,
    /// Great-circle distance from the query point, in metres.
    pub distance_m: f64,
    /// Metadata, when asked for with `with_meta`.
    pub meta: Option<Bytes>,
}

/// A member as GEO.GET describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoMember {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lng: f64,
    /// Its H3 cell at the index's resolution, in hex.
    pub cell: String,
    /// Status word.
    pub status: Bytes,
    /// Time since its last update.
    pub age: Duration,
    /// Time until it lapses, if it has a TTL.
    pub ttl: Option<Duration>,
    /// Metadata.
    pub meta: Option<Bytes>,
}

impl Client {
    /// The geo index `index`.
    pub fn geo(&self, index: impl Into<Bytes>) -> GeoIndex {
        GeoIndex {
            client: self.clone(),
            index: index.into(),
        }
    }
}

fn point(lat: f64, lng: f64) -> Result<GeoPoint> {
    GeoPoint::new(lat, lng).map_err(|message| Error::InvalidArgument(message.to_string()))
}

impl GeoIndex {
    async fn call(&self, command: GeoCommand) -> Result<Value> {
        self.client.call(Command::Geo(command)).await
    }

    /// GEO.CREATE: sets the index's H3 resolution (7–12) before its first member.
    ///
    /// # Errors
    /// `Server` with `Conflict` if members already exist at another resolution.
    pub async fn create(&self, resolution: u8) -> Result<()> {
        self.call(GeoCommand::Create {
            index: self.index.clone(),
            resolution,
        })
        .await
        .map(drop)
    }

    /// GEO.UPSERT: await it for `true` if the member is new.
    pub fn upsert(&self, member: impl Into<Bytes>, lat: f64, lng: f64) -> GeoUpsert {
        GeoUpsert {
            index: self.clone(),
            member: member.into(),
            at: point(lat, lng),
            status: None,
            ttl: None,
            meta: None,
        }
    }

    /// GEO.NEAR from a point: await it for the nearest members, or `claim` the nearest
    /// available one.
    pub fn near(&self, lat: f64, lng: f64) -> GeoNearBuilder {
        GeoNearBuilder {
            index: self.clone(),
            center: point(lat, lng),
            k: 1,
            radius_m: DEFAULT_NEAR_RADIUS_M,
            status: None,
            with_meta: false,
        }
    }

    /// GEO.CLAIM: `true` if the member went from available to offered for `offer`, `false`
    /// if it was not available.
    ///
    /// # Errors
    /// `Server` with `NotFound` for an unknown member.
    pub async fn claim(&self, member: impl Into<Bytes>, offer: Duration) -> Result<bool> {
        let command = GeoCommand::Claim {
            index: self.index.clone(),
            member: member.into(),
            ttl_ms: offer.as_millis().clamp(1, u128::from(u64::MAX)) as u64,
        };
        conflict_is_false(self.call(command).await)
    }

    /// GEO.CONFIRM: `true` if the member went from offered to busy.
    ///
    /// # Errors
    /// `Server` with `NotFound` for an unknown member.
    pub async fn confirm(&self, member: impl Into<Bytes>) -> Result<bool> {
        let command = GeoCommand::Confirm {
            index: self.index.clone(),
            member: member.into(),
        };
        conflict_is_false(self.call(command).await)
    }

    /// GEO.RELEASE: back to available.
    ///
    /// # Errors
    /// `Server` with `NotFound` for an unknown member.
    pub async fn release(&self, member: impl Into<Bytes>) -> Result<()> {
        let command = GeoCommand::Release {
            index: self.index.clone(),
            member: member.into(),
        };
        self.call(command).await.map(drop)
    }

    /// GEO.REMOVE: `true` if the member existed.
    ///
    /// # Errors
    /// Link failures.
    pub async fn remove(&self, member: impl Into<Bytes>) -> Result<bool> {
        let command = GeoCommand::Remove {
            index: self.index.clone(),
            member: member.into(),
        };
        Ok(self.call(command).await?.as_int() == Some(1))
    }

    /// GEO.GET: the member's position, cell, status and age; `None` if unknown or lapsed.
    ///
    /// # Errors
    /// Link failures.
    pub async fn get(&self, member: impl Into<Bytes>) -> Result<Option<GeoMember>> {
        let command = GeoCommand::Get {
            index: self.index.clone(),
            member: member.into(),
        };
        let reply = self.call(command).await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        let field = |name| reply.get(name).cloned().unwrap_or(Value::Nil);
        let float = |name| match field(name) {
            Value::Float(x) => Ok(x),
            other => Err(Error::unexpected("a float", &other)),
        };
        let millis = |name| field(name).as_int().unwrap_or(-1);
        Ok(Some(GeoMember {
            lat: float("lat")?,
            lng: float("lng")?,
            cell: match field("cell") {
                Value::Text(cell) => cell,
                _ => String::new(),
            },
            status: match field("status") {
                Value::Bytes(status) => status,
                other => return Err(Error::unexpected("a status", &other)),
            },
            age: Duration::from_millis(millis("age_ms").max(0) as u64),
            ttl: u64::try_from(millis("ttl_ms"))
                .ok()
                .map(Duration::from_millis),
            meta: match field("meta") {
                Value::Bytes(meta) => Some(meta),
                _ => None,
            },
        }))
    }

    /// GEO.COUNT: members, all of them or those with `status`.
    ///
    /// # Errors
    /// Link failures.
    pub async fn count(&self, status: Option<&str>) -> Result<u64> {
        let command = GeoCommand::Count {
            index: self.index.clone(),
            area: None,
            status: status.map(|s| Bytes::copy_from_slice(s.as_bytes())),
        };
        Ok(self.call(command).await?.as_int().unwrap_or(0).max(0) as u64)
    }

    /// GEO.COUNT WITHIN: members within `radius_m` of a point.
    ///
    /// # Errors
    /// `Invalid` for bad coordinates; `Server` for a radius out of range.
    pub async fn count_within(
        &self,
        lat: f64,
        lng: f64,
        radius_m: u32,
        status: Option<&str>,
    ) -> Result<u64> {
        let command = GeoCommand::Count {
            index: self.index.clone(),
            area: Some(GeoArea {
                center: point(lat, lng)?,
                radius_m,
            }),
            status: status.map(|s| Bytes::copy_from_slice(s.as_bytes())),
        };
        Ok(self.call(command).await?.as_int().unwrap_or(0).max(0) as u64)
    }

    /// GEO.CELLS: members per H3 cell at `resolution` within `radius_m` of a point, most
    /// first: a supply map.
    ///
    /// # Errors
    /// `Invalid` for bad coordinates; `Server` for a radius out of range.
    pub async fn cells(
        &self,
        lat: f64,
        lng: f64,
        radius_m: u32,
        resolution: u8,
        status: Option<&str>,
    ) -> Result<Vec<(String, u64)>> {
        let command = GeoCommand::Cells {
            index: self.index.clone(),
            area: GeoArea {
                center: point(lat, lng)?,
                radius_m,
            },
            resolution,
            status: status.map(|s| Bytes::copy_from_slice(s.as_bytes())),
        };
        match self.call(command).await? {
            Value::Array(rows) => rows
                .into_iter()
                .map(|row| match row {
                    Value::Array(fields) => match &fields[..] {
                        [Value::Text(cell), Value::Int(count)] => Ok((cell.clone(), *count as u64)),
                        _ => Err(Error::Protocol("a cell row is [cell, count]".into())),
                    },
                    other => Err(Error::unexpected("a cell row", &other)),
                })
                .collect(),
            other => Err(Error::unexpected("an array of cells", &other)),
        }
    }
}

fn conflict_is_false(reply: Result<Value>) -> Result<bool> {
    match reply {
        Ok(_) => Ok(true),
        Err(Error::Server(e)) if e.known_code() == Some(ErrorCode::Conflict) => Ok(false),
        Err(error) => Err(error),
    }
}

/// GEO.UPSERT being built; await it for `true` if the member is new.
pub struct GeoUpsert {
    index: GeoIndex,
    member: Bytes,
    at: Result<GeoPoint>,
    status: Option<Bytes>,
    ttl: Option<Duration>,
    meta: Option<Bytes>,
}

impl GeoUpsert {
    /// Sets the status word (e.g. "available", "busy", "offline").
    pub fn status(mut self, status: impl Into<Bytes>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Forget the member this long after this update unless it is updated again.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Attaches metadata (vehicle type, rating).
    pub fn meta(mut self, meta: impl Into<Bytes>) -> Self {
        self.meta = Some(meta.into());
        self
    }
}

impl IntoFuture for GeoUpsert {
    type Output = Result<bool>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<bool>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let command = GeoCommand::Upsert {
                index: self.index.index.clone(),
                member: self.member,
                at: self.at?,
                status: self.status,
                ttl_ms: self
                    .ttl
                    .map(|t| t.as_millis().clamp(1, u128::from(u64::MAX)) as u64),
                meta: self.meta,
            };
            Ok(self.index.call(command).await?.as_int() == Some(1))
        })
    }
}

/// GEO.NEAR being built.
pub struct GeoNearBuilder {
    index: GeoIndex,
    center: Result<GeoPoint>,
    k: u32,
    radius_m: u32,
    status: Option<Bytes>,
    with_meta: bool,
}

impl GeoNearBuilder {
    /// Most members to return (default 1).
    pub fn k(mut self, k: u32) -> Self {
        self.k = k;
        self
    }

    /// Search radius in metres (default 5 km).
    pub fn radius(mut self, metres: u32) -> Self {
        self.radius_m = metres;
        self
    }

    /// Only members with this status.
    pub fn status(mut self, status: impl Into<Bytes>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Return each member's metadata too.
    pub fn with_meta(mut self) -> Self {
        self.with_meta = true;
        self
    }

    fn command(self, claim_ms: Option<u64>) -> Result<(GeoIndex, GeoCommand)> {
        let near = GeoNear {
            index: self.index.index.clone(),
            area: GeoArea {
                center: self.center?,
                radius_m: self.radius_m,
            },
            k: self.k,
            status: self.status,
            with_dist: true,
            with_meta: self.with_meta,
            claim_ms,
        };
        Ok((self.index, GeoCommand::Near(near)))
    }

    /// GEO.NEAR ... CLAIM: claims the nearest available member for `offer` in the same
    /// request; `None` if none within the radius could be claimed.
    ///
    /// # Errors
    /// `Invalid` for bad coordinates; `Server` for arguments out of range.
    pub async fn claim(self, offer: Duration) -> Result<Option<Nearby>> {
        let offer_ms = match offer.as_millis() {
            0 => DEFAULT_OFFER_MS,
            ms => ms.min(u128::from(u64::MAX)) as u64,
        };
        let (index, command) = self.command(Some(offer_ms))?;
        Ok(nearby(index.call(command).await?)?.into_iter().next())
    }
}

impl IntoFuture for GeoNearBuilder {
    type Output = Result<Vec<Nearby>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Vec<Nearby>>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (index, command) = self.command(None)?;
            nearby(index.call(command).await?)
        })
    }
}

fn nearby(reply: Value) -> Result<Vec<Nearby>> {
    let Value::Array(items) = reply else {
        return Err(Error::unexpected("an array of members", &reply));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Array(fields) => {
                let mut fields = fields.into_iter();
                match (fields.next(), fields.next(), fields.next()) {
                    (Some(Value::Bytes(member)), Some(Value::Float(distance_m)), meta) => {
                        Ok(Nearby {
                            member,
                            distance_m,
                            meta: match meta {
                                Some(Value::Bytes(meta)) => Some(meta),
                                _ => None,
                            },
                        })
                    }
                    _ => Err(Error::Protocol("a hit is [member, distance, meta?]".into())),
                }
            }
            other => Err(Error::unexpected("a hit", &other)),
        })
        .collect()
}
