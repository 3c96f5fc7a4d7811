//! The geo commands read from text, with Redis's options and Redis's refusals.

use crate::wire::Payload;

use super::{opcode, with, AddCondition, Area, Center, GeoSetCommand, Order, Point, Query, Unit};
use crate::commands::arg::{parse_float, parse_int, Words};
use crate::commands::CommandSpec;
use crate::error::ErrorCode;
use crate::value::ErrorReply;

fn refusal(message: impl Into<String>) -> ErrorReply {
    ErrorReply::new(ErrorCode::Syntax, message)
}

fn syntax() -> ErrorReply {
    refusal("syntax error")
}

/// A number, or Redis's `message` for a word that is not one.
fn number(word: &[u8], message: &str) -> Result<f64, ErrorReply> {
    parse_float(word).map_err(|_| refusal(message))
}

/// `longitude latitude`, refused as Redis refuses a position outside the geohash's range.
fn point(longitude: &[u8], latitude: &[u8]) -> Result<Point, ErrorReply> {
    let (x, y) = (parse_float(longitude)?, parse_float(latitude)?);
    Point::new(x, y)
        .ok_or_else(|| refusal(format!("invalid longitude,latitude pair {x:.6},{y:.6}")))
}

/// `M`, `KM`, `FT` or `MI`, in any case.
pub(super) fn unit(word: &[u8]) -> Result<Unit, ErrorReply> {
    Ok(match &word.to_ascii_lowercase()[..] {
        b"m" => Unit::Meters,
        b"km" => Unit::Kilometers,
        b"ft" => Unit::Feet,
        b"mi" => Unit::Miles,
        _ => {
            return Err(refusal(
                "unsupported unit provided. please use M, KM, FT, MI",
            ))
        }
    })
}

impl<P: Payload> GeoSetCommand<P> {
    /// Parses the words after the command's name.
    pub(crate) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let mut words = Words::new(spec, args);
        Ok(match spec.opcode {
            opcode::GEOADD => parse_add(&mut words)?,
            opcode::GEOPOS | opcode::GEOHASH => {
                let key = words.key()?;
                let members: Vec<P> = words.rest().to_vec();
                if members.is_empty() {
                    return Err(words.arity());
                }
                if spec.opcode == opcode::GEOPOS {
                    GeoSetCommand::Pos { key, members }
                } else {
                    GeoSetCommand::Hash { key, members }
                }
            }
            opcode::GEODIST => {
                let key = words.key()?;
                let from = words.bytes()?;
                let to = words.bytes()?;
                let unit = match words.rest() {
                    [] => Unit::Meters,
                    [word] => unit(word.as_ref())?,
                    _ => return Err(syntax()),
                };
                GeoSetCommand::Dist {
                    key,
                    from,
                    to,
                    unit,
                }
            }
            opcode::GEOSEARCH => {
                let key = words.key()?;
                let (query, _) = parse_query(words.rest(), "geosearch", false)?;
                GeoSetCommand::Search { key, query }
            }
            opcode::GEOSEARCHSTORE => {
                let destination = words.key()?;
                let source = words.key()?;
                let (query, store_distance) = parse_query(words.rest(), "geosearchstore", true)?;
                GeoSetCommand::SearchStore {
                    destination,
                    source,
                    query,
                    store_distance,
                }
            }
            _ => return Err(words.arity()),
        })
    }
}

/// GEOADD key [NX|XX] [CH] (longitude latitude member)...: every position checked before
/// any is added, as Redis does.
fn parse_add<P: Payload>(words: &mut Words<'_, P>) -> Result<GeoSetCommand<P>, ErrorReply> {
    let key = words.key()?;
    let (mut nx, mut xx, mut changed) = (false, false, false);
    loop {
        if words.eat("NX") {
            nx = true;
        } else if words.eat("XX") {
            xx = true;
        } else if words.eat("CH") {
            changed = true;
        } else {
            break;
        }
    }
    let rest = words.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(3) || (nx && xx) {
        return Err(syntax());
    }
    let points = rest
        .chunks_exact(3)
        .map(|triple| {
            Ok((
                point(triple[0].as_ref(), triple[1].as_ref())?,
                triple[2].clone(),
            ))
        })
        .collect::<Result<_, ErrorReply>>()?;
    let condition = match (nx, xx) {
        (true, _) => AddCondition::IfAbsent,
        (_, true) => AddCondition::IfPresent,
        _ => AddCondition::Always,
    };
    Ok(GeoSetCommand::Add {
        key,
        condition,
        changed,
        points,
    })
}

/// GEOSEARCH's options after the key, read in Redis's order of checks; answers the query
/// and whether STOREDIST came (accepted only when `storing`).
pub(super) fn parse_query<P: Payload>(
    args: &[P],
    name: &str,
    storing: bool,
) -> Result<(Query<P>, bool), ErrorReply> {
    let mut center = None;
    let mut area = None;
    let mut unit_of_area = Unit::Meters;
    let (mut order, mut count, mut any, mut with_bits, mut store_distance) =
        (Order::Unsorted, 0u64, false, 0u8, false);
    let mut at = 0;
    while at < args.len() {
        let word = args[at].as_ref().to_ascii_uppercase();
        let left = args.len() - at - 1;
        match &word[..] {
            b"WITHDIST" => with_bits |= with::DIST,
            b"WITHHASH" => with_bits |= with::HASH,
            b"WITHCOORD" => with_bits |= with::COORD,
            b"ANY" => any = true,
            b"ASC" => order = Order::Nearest,
            b"DESC" => order = Order::Farthest,
            b"COUNT" if left >= 1 => {
                let n: i64 = parse_int(args[at + 1].as_ref())?;
                if n <= 0 {
                    return Err(refusal("COUNT must be > 0"));
                }
                count = n as u64;
                at += 1;
            }
            b"STOREDIST" if storing => store_distance = true,
            b"FROMMEMBER" if left >= 1 && !matches!(center, Some(Center::Point(_))) => {
                center = Some(Center::Member(args[at + 1].clone()));
                at += 1;
            }
            b"FROMLONLAT" if left >= 2 && !matches!(center, Some(Center::Member(_))) => {
                center = Some(Center::Point(point(
                    args[at + 1].as_ref(),
                    args[at + 2].as_ref(),
                )?));
                at += 2;
            }
            b"BYRADIUS" if left >= 2 && !matches!(area, Some(Area::Box { .. })) => {
                let radius = number(args[at + 1].as_ref(), "need numeric radius")?;
                if radius < 0.0 {
                    return Err(refusal("radius cannot be negative"));
                }
                unit_of_area = unit(args[at + 2].as_ref())?;
                area = Some(Area::Radius(radius));
                at += 2;
            }
            b"BYBOX" if left >= 3 && !matches!(area, Some(Area::Radius(_))) => {
                let width = number(args[at + 1].as_ref(), "need numeric width")?;
                let height = number(args[at + 2].as_ref(), "need numeric height")?;
                if width < 0.0 || height < 0.0 {
                    return Err(refusal("height or width cannot be negative"));
                }
                unit_of_area = unit(args[at + 3].as_ref())?;
                area = Some(Area::Box { width, height });
                at += 3;
            }
            _ => return Err(syntax()),
        }
        at += 1;
    }
    if storing && with_bits != 0 {
        return Err(refusal(
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ));
    }
    let center = center.ok_or_else(|| {
        refusal(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        ))
    })?;
    let area = area.ok_or_else(|| {
        refusal(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        ))
    })?;
    if any && count == 0 {
        return Err(refusal("the ANY argument requires COUNT argument"));
    }
    let query = Query {
        center,
        area,
        unit: unit_of_area,
        order,
        count,
        any,
        with: with_bits,
    };
    Ok((query, store_distance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;
    use bytes::BytesMut;

    fn parse(line: &str) -> Result<Command, ErrorReply> {
        let words: Vec<bytes::Bytes> = line
            .split(' ')
            .map(|w| bytes::Bytes::from(w.to_string()))
            .collect();
        Command::parse_words(&words)
    }

    #[test]
    fn every_form_reads_back_from_its_encoding() {
        for line in [
            "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "GEOADD g XX CH 1 2 a",
            "GEOADD g nx 1 2 a",
            "GEOPOS g a b",
            "GEOHASH g a",
            "GEODIST g a b",
            "GEODIST g a b km",
            "GEOSEARCH g FROMMEMBER a BYRADIUS 10 km",
            "GEOSEARCH g FROMLONLAT 15 37 BYBOX 400 400 km ASC COUNT 3 ANY WITHCOORD WITHDIST WITHHASH",
            "GEOSEARCHSTORE {g}d {g}s FROMLONLAT 15 37 BYRADIUS 200 mi DESC STOREDIST",
        ] {
            let command = parse(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
            let mut body = BytesMut::new();
            command.encode(&mut body);
            assert_eq!(Command::decode(body.freeze()).unwrap(), command, "{line}");
        }
    }

    #[test]
    fn bad_arguments_are_refused_in_redis_words() {
        let message = |line: &str| parse(line).unwrap_err().message;
        assert_eq!(message("GEOADD g xx nx 1 2 a"), "syntax error");
        assert_eq!(message("GEOADD g ch xx foo 1 2 a"), "syntax error");
        assert_eq!(
            message("GEOADD g 1 2 a foo bar b"),
            "value is not a valid float"
        );
        assert_eq!(
            message("GEOADD g 200 100 a"),
            "invalid longitude,latitude pair 200.000000,100.000000"
        );
        assert_eq!(
            message("GEODIST g a b parsec"),
            "unsupported unit provided. please use M, KM, FT, MI"
        );
        assert_eq!(message("GEODIST g a b km x"), "syntax error");
        assert_eq!(
            message("GEOSEARCH g FROMLONLAT 1 2 FROMMEMBER a BYBOX 1 1 km"),
            "syntax error"
        );
        assert_eq!(
            message("GEOSEARCH g BYBOX 3 3 km ASC"),
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a ASC"),
            "exactly one of BYRADIUS and BYBOX can be specified for geosearch"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS 1 km BYBOX 1 1 km"),
            "syntax error"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS 1 km STOREDIST"),
            "syntax error"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS 1 km ANY"),
            "the ANY argument requires COUNT argument"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS 1 km COUNT 0"),
            "COUNT must be > 0"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS 1 km COUNT"),
            "syntax error"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS x km"),
            "need numeric radius"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYRADIUS -1 km"),
            "radius cannot be negative"
        );
        assert_eq!(
            message("GEOSEARCH g FROMMEMBER a BYBOX 1 -1 km"),
            "height or width cannot be negative"
        );
        assert_eq!(
            message("GEOSEARCHSTORE {g}d {g}s FROMMEMBER a BYRADIUS 1 km WITHDIST"),
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        );
    }
}
