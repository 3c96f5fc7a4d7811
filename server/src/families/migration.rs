//! A slot migration's steps on one shard: saving the entries of migrating slots, taking
//! them in on the node they move to, and dropping the giver's copies once ownership flips.
//!
//! Entries travel as a snapshot frames them (a key with its deadline and value, or a geo
//! member's view), with CRCs, so the receiver refuses a damaged batch whole. A geo index
//! moves with its name's slot: its held members are re-placed on the receiver's shards,
//! as a restart with another shard count re-places them.

use bytes::BytesMut;
use tessera_cluster::{key_slot, shard_for_key, SLOT_COUNT};
use tessera_protocol::commands::cluster::Range;
use tessera_protocol::{ErrorCode, Value};

use super::geo::placed_geo;
use super::saved::{replace_entry, restore_entry};
use super::Keyspace;
use crate::data::codec::{each_record, Tail};
use crate::data::codec::{frame, seal, In};
use crate::data::geo::SavedMember;
use crate::data::keyspace::{save_entry, save_geo_entry, GEO_ENTRY, KEY_ENTRY};

/// The segment number entries in flight are sealed for.
const IN_FLIGHT: u64 = 0;

/// A lookup of which slots a step concerns.
pub struct SlotSet(Vec<bool>);

impl SlotSet {
    /// The slots of `ranges`.
    pub fn of(ranges: &[Range]) -> SlotSet {
        let mut slots = vec![false; usize::from(SLOT_COUNT)];
        for &(first, last) in ranges {
            for slot in first..=last.min(SLOT_COUNT - 1) {
                slots[usize::from(slot)] = true;
            }
        }
        SlotSet(slots)
    }

    /// Whether `key`'s slot is in the set.
    pub fn holds_key(&self, key: &[u8]) -> bool {
        self.0[usize::from(key_slot(key))]
    }
}

/// One shard's share of a migrating batch of slots.
pub struct Saved {
    /// The entries, framed and sealed.
    pub entries: BytesMut,
    /// Keys and held geo members among them.
    pub count: u64,
}

/// Saves this shard's keys in `slots`, and the members it holds of geo indexes named in
/// them.
pub fn save(keyspace: &Keyspace, slots: &SlotSet) -> Saved {
    let mut entries = BytesMut::new();
    let mut count = 0;
    for (key, value, deadline) in keyspace.entries() {
        if slots.holds_key(key) {
            save_entry(&mut entries, key, deadline, value);
            count += 1;
        }
    }
    for member in keyspace.geo.save_held(|index| slots.holds_key(index)) {
        save_geo_entry(&mut entries, &member);
        count += 1;
    }
    seal(&mut entries, IN_FLIGHT);
    Saved { entries, count }
}

/// Splits a batch a giving node sent into one part per shard of this node, each framed
/// and sealed; answers the parts and how many keys and members they hold.
///
/// # Errors
/// A damaged entry, or a key outside the batch's slots.
pub fn split(entries: &[u8], slots: &SlotSet, shards: u16) -> Result<(Vec<BytesMut>, u64), String> {
    let mut parts = vec![BytesMut::new(); usize::from(shards)];
    let mut members = Vec::new();
    let mut count = 0;
    let mut damage = None;
    let (tail, _) = each_record(entries, IN_FLIGHT, 0, |body| {
        if damage.is_some() {
            return;
        }
        let mut input = In::new(body);
        match input.byte() {
            Ok(KEY_ENTRY) => match input.bytes() {
                Ok(key) if slots.holds_key(key) => {
                    let part = &mut parts[usize::from(shard_for_key(key, shards))];
                    frame(part, |buf| buf.extend_from_slice(body));
                    count += 1;
                }
                Ok(_) => damage = Some("a key outside the slots it came with"),
                Err(_) => damage = Some("a damaged key entry"),
            },
            Ok(GEO_ENTRY) => match SavedMember::load(&mut input) {
                Ok(member) if slots.holds_key(&member.index) && member.held.is_some() => {
                    members.push(member);
                    count += 1;
                }
                Ok(_) => damage = Some("a geo member outside the slots it came with"),
                Err(_) => damage = Some("a damaged geo entry"),
            },
            _ => damage = Some("an unknown kind of entry"),
        }
    });
    if let Some(why) = damage {
        return Err(why.into());
    }
    if tail != Tail::Clean {
        return Err("the entries are damaged or cut short".into());
    }
    for (shard, view) in placed_geo(members, shards) {
        save_geo_entry(&mut parts[usize::from(shard)], &view);
    }
    for part in &mut parts {
        seal(part, IN_FLIGHT);
    }
    Ok((parts, count))
}

/// CLUSTER.IMPORT on one shard: drops what it held in `ranges` first if `reset`, then
/// takes in its part of a batch; answers the keys and held members applied.
pub fn import(
    keyspace: &mut Keyspace,
    reset: bool,
    ranges: &[Range],
    entries: &[u8],
    now: u64,
) -> Value {
    if reset {
        drop_slots(keyspace, ranges, now);
    }
    let mut applied = 0i64;
    let mut damaged = false;
    let (tail, _) = each_record(entries, IN_FLIGHT, 0, |body| {
        let restored = match body.first() {
            Some(&KEY_ENTRY) => replace_entry(keyspace, body, now).map(|()| true),
            Some(&GEO_ENTRY) => {
                let held = SavedMember::load(&mut In::new(&body[1..]))
                    .is_ok_and(|member| member.held.is_some());
                restore_entry(keyspace, body).map(|()| held)
            }
            _ => Ok(false),
        };
        match restored {
            Ok(true) => applied += 1,
            Ok(false) => {}
            Err(_) => damaged = true,
        }
    });
    if damaged || tail != Tail::Clean {
        return Value::error(
            ErrorCode::Protocol,
            format!("CLUSTER.IMPORT: damaged entries after {applied} applied"),
        );
    }
    Value::Int(applied)
}

/// CLUSTER.DROP on one shard: removes its keys in `ranges` and the geo indexes named in
/// them, and hands the watches on users there over to their watchers to set again on the
/// new owner; answers how many keys and members went.
pub fn drop_slots(keyspace: &mut Keyspace, ranges: &[Range], now: u64) -> i64 {
    let slots = SlotSet::of(ranges);
    let doomed: Vec<Box<[u8]>> = keyspace
        .entries()
        .filter(|(key, _, _)| slots.holds_key(key))
        .map(|(key, _, _)| key.into())
        .collect();
    for key in &doomed {
        keyspace.remove(key, now);
    }
    let members = keyspace.geo.remove_indexes(|index| slots.holds_key(index));
    keyspace.watches.hand_over(|user| slots.holds_key(user));
    (doomed.len() + members) as i64
}
