//! Geo commands as text: the words after the name, redis-cli style, with the text-only
//! defaults (a claim's TTL, GEO.CELLS's resolution).

use crate::wire::Payload;

use super::super::arg::{parse_int, Words};
use super::super::CommandSpec;
use super::{
    checked_area, checked_resolution, checked_status, member_command, opcode, point, reply,
    seconds, syntax, validate_near, GeoArea, GeoCommand, GeoNear, DEFAULT_GEO_RESOLUTION,
    DEFAULT_NEAR_RADIUS_M, DEFAULT_OFFER_MS, GEO_RESOLUTIONS,
};
use crate::error::ErrorCode;
use crate::value::ErrorReply;

impl<P: Payload> GeoCommand<P> {
    /// Parses the words after a geo command's name.
    pub(crate) fn parse(
        spec: &'static CommandSpec,
        args: &[P],
    ) -> Result<GeoCommand<P>, ErrorReply> {
        let mut words = Words::new(spec, args);
        let index = words
            .word()
            .map_err(|_| syntax("the index name is required"))?
            .clone();
        let command = match spec.opcode {
            opcode::GEO_CREATE => create(index, &mut words)?,
            opcode::GEO_UPSERT => upsert(index, &mut words)?,
            opcode::GEO_NEAR => near(index, &mut words)?,
            opcode::GEO_CLAIM => claim(index, &mut words)?,
            opcode::GEO_CONFIRM | opcode::GEO_RELEASE | opcode::GEO_REMOVE | opcode::GEO_GET => {
                let member = words
                    .word()
                    .map_err(|_| syntax("the member is required"))?
                    .clone();
                member_command(spec.opcode, index, member)
            }
            opcode::GEO_COUNT => count(index, &mut words)?,
            opcode::GEO_CELLS => cells(index, &mut words)?,
            _ => {
                return Err(ErrorReply::new(
                    ErrorCode::UnknownCommand,
                    "not a geo command",
                ))
            }
        };
        words
            .finish()
            .map_err(|_| syntax("wrong number of arguments"))?;
        Ok(command)
    }
}

/// GEO.CREATE index RES r
fn create<P: Payload>(index: P, words: &mut Words<'_, P>) -> Result<GeoCommand<P>, ErrorReply> {
    let usage = || syntax("usage: GEO.CREATE index RES r");
    if !words.eat("RES") {
        return Err(usage());
    }
    let resolution = parse_int(words.word().map_err(|_| usage())?.as_ref())?;
    Ok(GeoCommand::Create {
        index,
        resolution: checked_resolution(resolution).map_err(reply)?,
    })
}

/// GEO.UPSERT index member lat lng [STATUS s] [TTL secs] [META m]
fn upsert<P: Payload>(index: P, words: &mut Words<'_, P>) -> Result<GeoCommand<P>, ErrorReply> {
    if words.remaining() < 3 {
        return Err(syntax("usage: GEO.UPSERT index member lat lng [options]"));
    }
    let member = words.bytes()?;
    let at = point(words.text()?, words.text()?)?;
    let (mut status, mut ttl_ms, mut meta) = (None, None, None);
    words.options("unknown GEO.UPSERT option", |name, words| {
        match name {
            b"STATUS" => status = Some(checked_status(words.bytes()?).map_err(reply)?),
            b"TTL" => ttl_ms = Some(seconds(words.text()?)?),
            b"META" => meta = Some(words.bytes()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(GeoCommand::Upsert {
        index,
        member,
        at,
        status,
        ttl_ms,
        meta,
    })
}

/// GEO.NEAR index lat lng K [RADIUS m] [STATUS s] [WITHDIST] [WITHMETA] [CLAIM [TTL secs]]
fn near<P: Payload>(index: P, words: &mut Words<'_, P>) -> Result<GeoCommand<P>, ErrorReply> {
    if words.remaining() < 3 {
        return Err(syntax("usage: GEO.NEAR index lat lng K [options]"));
    }
    let center = point(words.text()?, words.text()?)?;
    let mut near = GeoNear {
        index,
        area: GeoArea {
            center,
            radius_m: DEFAULT_NEAR_RADIUS_M,
        },
        k: words.int()?,
        status: None,
        with_dist: false,
        with_meta: false,
        claim_ms: None,
    };
    words.options("unknown GEO.NEAR option", |name, words| {
        match name {
            b"RADIUS" => near.area.radius_m = words.int()?,
            b"STATUS" => near.status = Some(words.bytes()?),
            b"WITHDIST" => near.with_dist = true,
            b"WITHMETA" => near.with_meta = true,
            b"CLAIM" => near.claim_ms = Some(DEFAULT_OFFER_MS),
            b"TTL" if near.claim_ms.is_some() => near.claim_ms = Some(seconds(words.text()?)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    validate_near(&near).map_err(reply)?;
    Ok(GeoCommand::Near(near))
}

/// GEO.CLAIM index member [TTL secs]
fn claim<P: Payload>(index: P, words: &mut Words<'_, P>) -> Result<GeoCommand<P>, ErrorReply> {
    let usage = || syntax("usage: GEO.CLAIM index member [TTL secs]");
    let member = words.word().map_err(|_| usage())?.clone();
    let ttl_ms = match words.remaining() {
        0 => DEFAULT_OFFER_MS,
        2 if words.eat("TTL") => seconds(words.text()?)?,
        _ => return Err(usage()),
    };
    Ok(GeoCommand::Claim {
        index,
        member,
        ttl_ms,
    })
}

/// GEO.COUNT index [WITHIN lat lng m] [STATUS s]
fn count<P: Payload>(index: P, words: &mut Words<'_, P>) -> Result<GeoCommand<P>, ErrorReply> {
    let (mut area, mut status) = (None, None);
    words.options(
        "usage: GEO.COUNT index [WITHIN lat lng m] [STATUS s]",
        |name, words| {
            match name {
                b"WITHIN" => {
                    let center = point(words.text()?, words.text()?)?;
                    area = Some(checked_area(center, words.int()?).map_err(reply)?);
                }
                b"STATUS" => status = Some(words.bytes()?),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(GeoCommand::Count {
        index,
        area,
        status,
    })
}

/// GEO.CELLS index lat lng m [RES r] [STATUS s]
fn cells<P: Payload>(index: P, words: &mut Words<'_, P>) -> Result<GeoCommand<P>, ErrorReply> {
    if words.remaining() < 3 {
        return Err(syntax(
            "usage: GEO.CELLS index lat lng m [RES r] [STATUS s]",
        ));
    }
    let center = point(words.text()?, words.text()?)?;
    let area = checked_area(center, words.int()?).map_err(reply)?;
    // The text form's default: supply maps read best at about 5 km² a cell.
    let (mut resolution, mut status) = (DEFAULT_GEO_RESOLUTION - 2, None);
    words.options("unknown GEO.CELLS option", |name, words| {
        match name {
            b"RES" => resolution = words.int()?,
            b"STATUS" => status = Some(words.bytes()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if resolution > *GEO_RESOLUTIONS.end() {
        return Err(syntax("GEO.CELLS resolution must be 0..=12"));
    }
    Ok(GeoCommand::Cells {
        index,
        area,
        resolution,
        status,
    })
}
