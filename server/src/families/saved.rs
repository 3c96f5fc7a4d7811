//! Every family's values as a snapshot saves them: one tagged layout per kind of value.

use tessera_limits::{Gcra, Window};

use super::Keyspace;
use super::{IdemRecord, Presence, Stored, Versioned};
use crate::data::codec::{Damaged, In, Out};
use crate::data::geo::SavedMember;
use crate::data::inventory::Sku;
use crate::data::keyspace::Blob;
use crate::data::keyspace::{GEO_ENTRY, KEY_ENTRY};
use crate::data::members::Members;
use crate::data::timeline::Timeline;
use crate::families::hashes::FieldMap;
use crate::families::lists::List;
use crate::families::sorted_sets::ScoreSet;

/// The tag before each saved value, one per kind.
mod tag {
    pub const BYTES: u8 = 1;
    pub const INT: u8 = 2;
    pub const WINDOW: u8 = 3;
    pub const GCRA: u8 = 4;
    pub const TIERS: u8 = 5;
    pub const IDEM: u8 = 6;
    pub const VERSIONED: u8 = 7;
    pub const SKU: u8 = 8;
    pub const TIMELINE: u8 = 9;
    pub const PRESENCE: u8 = 10;
    pub const HASH: u8 = 11;
    pub const SORTED_SET: u8 = 12;
    pub const LIST: u8 = 13;
    pub const SET: u8 = 14;
}

fn save_blob(blob: &Blob, out: &mut Out<'_>) {
    match blob {
        Blob::Int(n) => {
            out.byte(tag::INT);
            out.int(*n);
        }
        _ => {
            out.byte(tag::BYTES);
            out.bytes(blob.as_bytes().unwrap_or_default());
        }
    }
}

fn load_blob(input: &mut In<'_>) -> Result<Blob, Damaged> {
    match input.byte()? {
        tag::INT => Ok(Blob::Int(input.int()?)),
        tag::BYTES => Ok(Blob::new(input.bytes()?)),
        _ => Err(Damaged("unknown kind of bytes")),
    }
}

fn save_window(window: &Window, out: &mut Out<'_>) {
    let (start, prev, curr) = window.to_parts();
    out.uint(start);
    out.uint(u64::from(prev));
    out.uint(u64::from(curr));
}

fn load_window(input: &mut In<'_>) -> Result<Window, Damaged> {
    let count = |n: u64| u32::try_from(n).map_err(|_| Damaged("window count"));
    Ok(Window::from_parts((
        input.uint()?,
        count(input.uint()?)?,
        count(input.uint()?)?,
    )))
}

/// Saves a value, tagged with its kind.
pub fn save(value: &Stored, out: &mut Out<'_>) {
    match value {
        Stored::Blob(blob) => save_blob(blob, out),
        Stored::Window(window) => {
            out.byte(tag::WINDOW);
            save_window(window, out);
        }
        Stored::Gcra(gcra) => {
            out.byte(tag::GCRA);
            out.uint(gcra.to_parts());
        }
        Stored::Tiers(tiers) => {
            out.byte(tag::TIERS);
            out.uint(tiers.len() as u64);
            tiers.iter().for_each(|window| save_window(window, out));
        }
        Stored::Idem(record) => {
            out.byte(tag::IDEM);
            out.uint(record.token);
            out.uint(record.lease_until);
            out.maybe_bytes(record.result.as_deref());
        }
        Stored::Versioned(versioned) => {
            out.byte(tag::VERSIONED);
            out.uint(versioned.version);
            save_blob(&versioned.value, out);
        }
        Stored::Sku(sku) => {
            out.byte(tag::SKU);
            sku.save(out);
        }
        Stored::Timeline(timeline) => {
            out.byte(tag::TIMELINE);
            timeline.save(out);
        }
        Stored::Presence(presence) => {
            out.byte(tag::PRESENCE);
            out.uint(presence.last_seen);
            out.uint(presence.online_until);
            out.maybe_bytes(presence.meta.as_deref());
        }
        Stored::Hash(fields) => {
            out.byte(tag::HASH);
            fields.save(out);
        }
        Stored::SortedSet(set) => {
            out.byte(tag::SORTED_SET);
            set.save(out);
        }
        Stored::List(list) => {
            out.byte(tag::LIST);
            save_elements(list.len(), list.iter(), out);
        }
        Stored::Set(set) => {
            out.byte(tag::SET);
            save_elements(set.len(), set.iter(), out);
        }
    }
}

fn save_elements<'a>(len: usize, elements: impl Iterator<Item = &'a [u8]>, out: &mut Out<'_>) {
    out.uint(len as u64);
    elements.for_each(|e| out.bytes(e));
}

fn load_elements<'a>(input: &mut In<'a>) -> Result<Vec<&'a [u8]>, Damaged> {
    let count = input.count()?;
    let mut elements = Vec::with_capacity(count);
    for _ in 0..count {
        elements.push(input.bytes()?);
    }
    if elements.is_empty() {
        return Err(Damaged("an empty list or set"));
    }
    Ok(elements)
}

/// Reads a value `save` wrote.
///
/// # Errors
/// The bytes are damaged or name no kind of value.
pub fn load(input: &mut In<'_>) -> Result<Stored, Damaged> {
    let boxed = |bytes: Option<&[u8]>| bytes.map(Box::<[u8]>::from);
    let kind = input.byte()?;
    Ok(match kind {
        tag::BYTES => Stored::Blob(Blob::new(input.bytes()?)),
        tag::INT => Stored::Blob(Blob::Int(input.int()?)),
        tag::WINDOW => Stored::Window(load_window(input)?),
        tag::GCRA => Stored::Gcra(Gcra::from_parts(input.uint()?)),
        tag::TIERS => {
            let count = input.count()?;
            let tiers = (0..count)
                .map(|_| load_window(input))
                .collect::<Result<Vec<_>, _>>()?;
            Stored::Tiers(tiers.into_boxed_slice())
        }
        tag::IDEM => Stored::Idem(Box::new(IdemRecord {
            token: input.uint()?,
            lease_until: input.uint()?,
            result: boxed(input.maybe_bytes()?),
        })),
        tag::VERSIONED => Stored::Versioned(Box::new(Versioned {
            version: input.uint()?,
            value: load_blob(input)?,
        })),
        tag::SKU => Stored::Sku(Box::new(Sku::load(input)?)),
        tag::TIMELINE => Stored::Timeline(Box::new(Timeline::load(input)?)),
        tag::PRESENCE => Stored::Presence(Box::new(Presence {
            last_seen: input.uint()?,
            online_until: input.uint()?,
            meta: boxed(input.maybe_bytes()?),
        })),
        tag::HASH => Stored::Hash(FieldMap::load(input)?),
        tag::SORTED_SET => Stored::SortedSet(ScoreSet::load(input)?),
        tag::LIST => Stored::List(Box::new(List::from_elements(
            load_elements(input)?.into_iter(),
        ))),
        tag::SET => {
            let mut set = Members::default();
            for member in load_elements(input)? {
                if !set.insert(member) {
                    return Err(Damaged("a set member saved twice"));
                }
            }
            Stored::Set(Box::new(set))
        }
        _ => return Err(Damaged("unknown kind of value")),
    })
}

/// When a loaded value next needs looking at (a reservation that lapses, a hash field
/// that expires), so the keyspace's timers can be set again.
pub fn next_timer(value: &Stored) -> Option<u64> {
    match value {
        Stored::Sku(sku) => sku.next_expiry(),
        Stored::Hash(fields) => fields.earliest_deadline(),
        _ => None,
    }
}

/// Puts one saved entry back.
///
/// # Errors
/// The entry does not read back.
pub fn restore_entry(keyspace: &mut Keyspace, entry: &[u8]) -> Result<(), Damaged> {
    restore(keyspace, entry, None)
}

/// Puts one saved entry in, replacing the key if it is there (`now` is the time a
/// lookup of it is made at).
///
/// # Errors
/// The entry does not read back.
pub fn replace_entry(keyspace: &mut Keyspace, entry: &[u8], now: u64) -> Result<(), Damaged> {
    restore(keyspace, entry, Some(now))
}

fn restore(
    keyspace: &mut Keyspace,
    entry: &[u8],
    replacing_at: Option<u64>,
) -> Result<(), Damaged> {
    let mut input = In::new(entry);
    match input.byte()? {
        KEY_ENTRY => {}
        GEO_ENTRY => {
            let member = SavedMember::load(&mut input)?;
            if !input.is_empty() {
                return Err(Damaged("bytes after the geo member"));
            }
            keyspace.geo.restore(&member);
            return Ok(());
        }
        _ => return Err(Damaged("unknown kind of entry")),
    }
    let key = input.bytes()?;
    let deadline = input.uint()?;
    let value = load(&mut input)?;
    if !input.is_empty() {
        return Err(Damaged("bytes after the value"));
    }
    let timer = next_timer(&value);
    if let Some(now) = replacing_at {
        keyspace.remove(key, now);
    }
    keyspace.restore(key, value, (deadline != 0).then_some(deadline));
    if let Some(at) = timer {
        keyspace.schedule(at, key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::{apply, Keyspace};
    use bytes::{Bytes, BytesMut};
    use tessera_protocol::Command;

    fn run(keyspace: &mut Keyspace, line: &str, now: u64) {
        let words: Vec<Bytes> = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let command = Command::parse_words(&words).expect(line);
        let reply = apply(keyspace, &command, now).into_value();
        assert!(
            !matches!(reply, tessera_protocol::Value::Error(_)),
            "{line}: {reply:?}"
        );
    }

    #[test]
    fn every_kind_of_value_reads_back_equal() {
        let mut keyspace = Keyspace::new();
        for line in [
            "set s hello",
            "set long aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "incrby n -42",
            "rl.check w limit 3 window 1000",
            "rl.check g limit 3 window 1000 algo gcra",
            "rl.check t limit 3 window 1000 limit 10 window 60000",
            "idem.begin op 60",
            "vset v one",
            "inv.set sku on_hand 10 low 2",
            "inv.reserve sku 3 ttl 60 id order-1",
            "inv.reserve sku 2 ttl 60 id order-2",
            "inv.confirm sku#order-2",
            "tl.push tl 5 score 50",
            "tl.push tl 6 score 40",
            "presence.beat u ttl 30 meta web",
            "hset h a 1 b 2",
            "hpexpire h 5000 fields 1 b",
            "zadd z 1 a 2 b 3.5 c",
            "rpush l a b a",
            "sadd set x y z",
        ] {
            run(&mut keyspace, line, 1_000);
        }
        for key in [
            "s", "long", "n", "w", "g", "t", "op", "v", "sku", "tl", "u", "h", "z", "l", "set",
        ] {
            let value = keyspace.get(key.as_bytes(), 1_000).unwrap().clone();
            let mut buf = BytesMut::new();
            save(&value, &mut Out::new(&mut buf));
            let mut input = In::new(&buf);
            assert_eq!(load(&mut input).unwrap(), value, "{key}");
            assert!(input.is_empty(), "{key}");
            for cut in 0..buf.len() {
                assert!(
                    load(&mut In::new(&buf[..cut])).is_err(),
                    "{key} cut at {cut}"
                );
            }
        }
    }
}
