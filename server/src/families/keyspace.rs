//! The keyspace as a whole on one shard: a key's kind, its keys matching a glob, one step
//! of a SCAN walk, and RENAME within the shard.

use super::*;
use crate::data::glob;
use tessera_protocol::commands::keyspace::KeyspaceCommand;

/// Bits of a SCAN cursor below the shard number: the position, then the table's size.
const SHARD_SHIFT: u32 = 48;
/// Bits of a SCAN cursor below the table's size (as a power of two).
const SIZE_SHIFT: u32 = 40;

/// The name TYPE answers for a value, Redis's where Redis has the kind.
pub fn kind_name(stored: &Stored) -> &'static str {
    match stored {
        Stored::Blob(_) => "string",
        Stored::List(_) => "list",
        Stored::Set(_) => "set",
        Stored::SortedSet(_) => "zset",
        Stored::Hash(_) => "hash",
        Stored::Window(_) | Stored::Gcra(_) | Stored::Tiers(_) => "ratelimit",
        Stored::Idem(_) => "idem",
        Stored::Versioned(_) => "versioned",
        Stored::Sku(_) => "sku",
        Stored::Timeline(_) => "timeline",
        Stored::Presence(_) => "presence",
    }
}

/// Runs TYPE or RENAME on this shard (KEYS and SCAN run through `matching` and
/// `scan_step` on every shard).
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &KeyspaceCommand<P>, now: u64) -> Value {
    match command {
        KeyspaceCommand::Type(key) => {
            Value::text(keyspace.get(key.as_ref(), now).map_or("none", kind_name))
        }
        KeyspaceCommand::MemoryUsage(key) => {
            use crate::data::keyspace::StoredValue;
            let key = key.as_ref();
            keyspace.get(key, now).map_or(Value::Nil, |stored| {
                // The slot itself (key, value and timing in one line), plus what is on
                // the heap.
                let slot = 64;
                let key_heap = if key.len() > crate::data::blob::INLINE_CAPACITY {
                    key.len()
                } else {
                    0
                };
                Value::Int((slot + key_heap + stored.heap_bytes()) as i64)
            })
        }
        KeyspaceCommand::Rename {
            from,
            to,
            if_absent,
        } => rename(keyspace, from.as_ref(), to.as_ref(), *if_absent, now),
        KeyspaceCommand::Keys(pattern) => match matching(keyspace, pattern.as_ref(), now) {
            Ok(keys) => Value::Array(keys.into_iter().map(Value::Bytes).collect()),
            Err(error) => Value::Error(error),
        },
        KeyspaceCommand::Copy { from, to, replace } => {
            copy(keyspace, from.as_ref(), to.as_ref(), *replace, now)
        }
        KeyspaceCommand::RandomKey => random_key(keyspace, now).map_or(Value::Nil, Value::Bytes),
        KeyspaceCommand::Scan { .. } => {
            Value::error(ErrorCode::Internal, "SCAN runs through the coordinator")
        }
    }
}

fn copy(keyspace: &mut Keyspace, from: &[u8], to: &[u8], replace: bool, now: u64) -> Value {
    let found = keyspace.find(from, now);
    let (Some(deadline), Some(value)) = (keyspace.deadline_of(&found), keyspace.value(&found))
    else {
        return Value::Int(0);
    };
    let value = value.clone();
    if from == to || (!replace && keyspace.contains(to, now)) {
        return Value::Int(0);
    }
    let timer = saved::next_timer(&value);
    keyspace.remove(to, now);
    keyspace.insert(to, value, deadline, now);
    if let Some(at) = timer {
        keyspace.schedule(at, to);
    }
    Value::Int(1)
}

/// Table positions tried at random before walking from one for a live key.
const RANDOM_PROBES: usize = 64;

/// A live key of this shard picked at random: a few random table positions, then a walk
/// from a random position, so a sparse table still answers in bounded steps per key.
pub fn random_key(keyspace: &mut Keyspace, now: u64) -> Option<Bytes> {
    if keyspace.is_empty() {
        return None;
    }
    let positions = keyspace.table_positions();
    for _ in 0..RANDOM_PROBES {
        let at = (keyspace.next_random() % positions as u64) as usize;
        if let Some((key, _)) = keyspace.keys_at(at, 1, now).1.first() {
            return Some(Bytes::copy_from_slice(key));
        }
    }
    let start = (keyspace.next_random() % positions as u64) as usize;
    let (_, after) = keyspace.keys_at(start, positions - start, now);
    let found = after.first().map(|(key, _)| Bytes::copy_from_slice(key));
    found.or_else(|| {
        let (_, before) = keyspace.keys_at(0, start, now);
        before.first().map(|(key, _)| Bytes::copy_from_slice(key))
    })
}

fn rename(keyspace: &mut Keyspace, from: &[u8], to: &[u8], if_absent: bool, now: u64) -> Value {
    let found = keyspace.find(from, now);
    let Some(deadline) = keyspace.deadline_of(&found) else {
        return Value::error(ErrorCode::NotFound, "no such key");
    };
    if from == to {
        return if if_absent { Value::Int(0) } else { Value::Ok };
    }
    if if_absent && keyspace.contains(to, now) {
        return Value::Int(0);
    }
    let Some(value) = keyspace.value(&found).cloned() else {
        return Value::error(ErrorCode::NotFound, "no such key");
    };
    let timer = saved::next_timer(&value);
    keyspace.remove(from, now);
    keyspace.remove(to, now);
    keyspace.insert(to, value, deadline, now);
    if let Some(at) = timer {
        keyspace.schedule(at, to);
    }
    if if_absent {
        Value::Int(1)
    } else {
        Value::Ok
    }
}

/// KEYS on this shard: its live keys matching `pattern`, within the reply limit.
///
/// # Errors
/// REPLY_TOO_LARGE when the keys would be more than a reply may carry.
pub fn matching(keyspace: &Keyspace, pattern: &[u8], now: u64) -> Result<Vec<Bytes>, ErrorReply> {
    let mut size = 0;
    let mut keys = Vec::new();
    for (key, _, deadline) in keyspace.entries() {
        if deadline.is_some_and(|d| d <= now) || !glob::matches(pattern, key) {
            continue;
        }
        size += key.len();
        within_reply_limit(size, keyspace.reply_limit)?;
        keys.push(Bytes::copy_from_slice(key));
    }
    Ok(keys)
}

/// Which shard a SCAN cursor is at.
pub fn cursor_shard(cursor: u64) -> u16 {
    (cursor >> SHARD_SHIFT) as u16
}

/// One SCAN step on shard `shard`: the keys at the next `count` table positions that
/// match, and the cursor after them (`None` once this shard is walked). A cursor made
/// while the table had another size starts this shard again.
pub fn scan_step(
    keyspace: &Keyspace,
    shard: u16,
    cursor: u64,
    count: u64,
    pattern: Option<&[u8]>,
    kind: Option<&[u8]>,
    now: u64,
) -> (Option<u64>, Vec<Bytes>) {
    let positions = keyspace.table_positions();
    let size = u64::from(positions.max(1).trailing_zeros());
    let mut from = (cursor & ((1 << SIZE_SHIFT) - 1)) as usize;
    if (cursor >> SIZE_SHIFT) & 0xff != size {
        from = 0;
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let (next, found) = keyspace.keys_at(from, count, now);
    let keys = found
        .into_iter()
        .filter(|(key, _)| pattern.is_none_or(|p| glob::matches(p, key)))
        .filter(|(_, value)| {
            kind.is_none_or(|k| k.eq_ignore_ascii_case(kind_name(value).as_bytes()))
        })
        .map(|(key, _)| Bytes::copy_from_slice(key))
        .collect();
    let done = next >= positions;
    let cursor = (u64::from(shard) << SHARD_SHIFT) | (size << SIZE_SHIFT) | next as u64;
    (if done { None } else { Some(cursor) }, keys)
}

/// The cursor that starts shard `shard`'s walk.
pub fn shard_start(shard: u16) -> u64 {
    u64::from(shard) << SHARD_SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn run(keyspace: &mut Keyspace, line: &str) -> Value {
        let words: Vec<Bytes> = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let command = Command::parse_words(&words).expect(line);
        super::super::apply(keyspace, &command, 1_000).into_value()
    }

    #[test]
    fn type_and_rename_follow_redis() {
        let mut ks = Keyspace::new();
        run(&mut ks, "SET {a}s v EX 100");
        run(&mut ks, "RPUSH {a}l x");
        assert_eq!(run(&mut ks, "TYPE {a}s"), Value::text("string"));
        assert_eq!(run(&mut ks, "TYPE {a}l"), Value::text("list"));
        assert_eq!(run(&mut ks, "TYPE nothing"), Value::text("none"));
        assert_eq!(run(&mut ks, "RENAMENX {a}s {a}l"), Value::Int(0));
        assert_eq!(run(&mut ks, "RENAME {a}s {a}l"), Value::Ok);
        assert_eq!(run(&mut ks, "TYPE {a}l"), Value::text("string"));
        assert_eq!(run(&mut ks, "TYPE {a}s"), Value::text("none"));
        assert_eq!(
            run(&mut ks, "TTL {a}l"),
            Value::Int(100),
            "the expiry moves with it"
        );
        assert!(matches!(
            run(&mut ks, "RENAME {a}none {a}x"),
            Value::Error(_)
        ));
    }

    #[test]
    fn a_scan_survives_the_table_growing_under_it() {
        let mut ks = Keyspace::new();
        for i in 0..500 {
            run(&mut ks, &format!("SET keep{i} v"));
        }
        let (mut cursor, mut seen, mut added) = (shard_start(0), BTreeSet::new(), 0);
        loop {
            let (next, keys) = scan_step(&ks, 0, cursor, 50, Some(b"keep*"), None, 1_000);
            seen.extend(keys);
            // New keys between steps make the table grow: the walk restarts this shard.
            for _ in 0..5 {
                run(&mut ks, &format!("SET new{added} v"));
                added += 1;
            }
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        for i in 0..500 {
            assert!(seen.contains(format!("keep{i}").as_bytes()), "keep{i}");
        }
        assert_eq!(seen.len(), 500, "MATCH keeps only the pattern's keys");
    }
}
