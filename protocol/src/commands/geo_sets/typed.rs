//! Typed geo requests: each command with the reader of its reply.

use bytes::Bytes;

use super::super::request::{read, ShapeError, Typed};
use super::{AddCondition, Area, Center, GeoSetCommand, Order, Point, Query, Unit};
use crate::value::Value;

const OUT_OF_RANGE: &str = "a position is outside -180..180 by -85.05112878..85.05112878";

/// A point answered by GEOPOS: `[longitude, latitude]`.
fn position(value: Value) -> Result<Option<(f64, f64)>, ShapeError> {
    match value {
        Value::Nil => Ok(None),
        Value::Array(items) if items.len() == 2 => {
            let mut items = items.into_iter();
            let longitude = read::float(items.next().unwrap_or(Value::Nil))?;
            let latitude = read::float(items.next().unwrap_or(Value::Nil))?;
            Ok(Some((longitude, latitude)))
        }
        other => Err(ShapeError::new(
            "a [longitude, latitude] pair or nil",
            &other,
        )),
    }
}

/// A distance as GEODIST writes it: decimal text.
fn distance(value: Value) -> Result<Option<f64>, ShapeError> {
    match value {
        Value::Nil => Ok(None),
        Value::Bytes(text) => std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.parse().ok())
            .map(Some)
            .ok_or_else(|| ShapeError::new("a decimal distance", &Value::Bytes(text))),
        other => Err(ShapeError::new("a distance or nil", &other)),
    }
}

impl GeoSetCommand<Bytes> {
    /// GEOADD of `(longitude, latitude, member)` points: answers how many were new.
    pub fn geoadd<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        points: impl IntoIterator<Item = (f64, f64, M)>,
    ) -> Typed<u64> {
        let mut outside = false;
        let points = points
            .into_iter()
            .map(|(longitude, latitude, member)| {
                let point = Point::new(longitude, latitude).unwrap_or_else(|| {
                    outside = true;
                    Point {
                        longitude: 0.0,
                        latitude: 0.0,
                    }
                });
                (point, member.into())
            })
            .collect();
        let command = GeoSetCommand::Add {
            key: key.into(),
            condition: AddCondition::Always,
            changed: false,
            points,
        };
        Typed::new(command, read::count).refused_if(outside, OUT_OF_RANGE)
    }

    /// GEOPOS: each member's `(longitude, latitude)`, if it is there.
    pub fn geopos<M: Into<Bytes>>(
        key: impl Into<Bytes>,
        members: impl IntoIterator<Item = M>,
    ) -> Typed<Vec<Option<(f64, f64)>>> {
        let command = GeoSetCommand::Pos {
            key: key.into(),
            members: members.into_iter().map(Into::into).collect(),
        };
        Typed::new(command, |reply| read::array(reply, position))
    }

    /// GEODIST: the distance between two members in `unit`, if both are there.
    pub fn geodist(
        key: impl Into<Bytes>,
        from: impl Into<Bytes>,
        to: impl Into<Bytes>,
        unit: Unit,
    ) -> Typed<Option<f64>> {
        let command = GeoSetCommand::Dist {
            key: key.into(),
            from: from.into(),
            to: to.into(),
            unit,
        };
        Typed::new(command, distance)
    }

    /// GEOSEARCH for the members within `radius` (in `unit`) of a position, nearest
    /// first, at most `count` of them (0: all).
    pub fn geosearch_radius(
        key: impl Into<Bytes>,
        (longitude, latitude): (f64, f64),
        radius: f64,
        unit: Unit,
        count: u64,
    ) -> Typed<Vec<Bytes>> {
        let center = Point::new(longitude, latitude);
        let query = Query {
            center: Center::Point(center.unwrap_or(Point {
                longitude: 0.0,
                latitude: 0.0,
            })),
            area: Area::Radius(radius),
            unit,
            order: Order::Nearest,
            count,
            any: false,
            with: 0,
        };
        let command = GeoSetCommand::Search {
            key: key.into(),
            query,
        };
        let bad_radius = radius.is_nan() || radius < 0.0;
        Typed::new(command, |reply| read::array(reply, read::bytes))
            .refused_if(center.is_none(), OUT_OF_RANGE)
            .refused_if(bad_radius, "a radius is a number not below 0")
    }
}
