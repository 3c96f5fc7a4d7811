//! A replica's side of a primary shard's stream: applying the change records it pulled,
//! in order, as the primary made them.
//!
//! A command record replays at the time it ran on the primary, so TTLs, windows and
//! reservations come out the same; its own record lands in this shard's journal exactly
//! as the primary wrote it, for this node's log (and its replicas). A geo view is
//! restored as the primary's shard of the same number left it (a replica runs as many
//! shards as its primary), and journaled as it came.

use bytes::Bytes;

use super::{Keyspace, Record};
use crate::data::backlog::IN_FLIGHT;
use crate::data::codec::{each_record, frame, Tail};

/// Applies the records of one pull; answers how many, or what was wrong with them (the
/// replica then copies the shard afresh rather than guess).
///
/// # Errors
/// A record that fails its check or does not decode.
pub fn apply_pulled(keyspace: &mut Keyspace, records: &[u8]) -> Result<u64, String> {
    let mut applied = 0;
    let mut damage = None;
    let (tail, _) = each_record(records, IN_FLIGHT, 0, |body| {
        if damage.is_some() {
            return;
        }
        match Record::decode(Bytes::copy_from_slice(body)) {
            Ok(record @ Record::Command(_)) => {
                record.replay(keyspace);
                applied += 1;
            }
            Ok(Record::Geo(saved)) => {
                keyspace.geo.restore(&saved);
                if let Some(journal) = keyspace.journal() {
                    frame(journal, |buf| buf.extend_from_slice(body));
                }
                applied += 1;
            }
            Err(error) => damage = Some(format!("a pulled record does not decode: {error}")),
        }
    });
    if let Some(damage) = damage {
        return Err(damage);
    }
    if tail != Tail::Clean {
        return Err(format!("pulled records end {tail:?}"));
    }
    Ok(applied)
}
