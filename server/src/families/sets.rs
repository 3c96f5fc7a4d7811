//! Sets on one shard: the S* commands over `data::members::Members`.

use super::*;
use crate::data::glob;
use crate::data::members::Members;
use tessera_protocol::commands::sets::{SetCommand, SetOp};

/// Runs one of the family's commands on this shard's keyspace. SPOP is not here: it runs
/// through `pop`, which tells the journal what it removed.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &SetCommand<P>, now: u64) -> Value {
    let key = command.single_key().map_or(&[][..], AsRef::as_ref);
    let result = match command {
        SetCommand::Add { members, .. } => add(keyspace, key, members, now),
        SetCommand::Rem { members, .. } => change(keyspace, key, now, |set| {
            let removed = members.iter().filter(|m| set.remove(m.as_ref())).count();
            Ok(Value::Int(removed as i64))
        }),
        SetCommand::Pop { count, .. } => pop(keyspace, key, *count, now).map(|(reply, _)| reply),
        SetCommand::Move {
            source,
            destination,
            member,
        } => move_member(
            keyspace,
            source.as_ref(),
            destination.as_ref(),
            member.as_ref(),
            now,
        ),
        SetCommand::Store {
            op,
            destination,
            keys,
        } => store(keyspace, *op, destination.as_ref(), keys, now),
        _ => read(keyspace, command, now),
    };
    result.unwrap_or_else(Value::Error)
}

/// SPOP: the reply, and the members removed (which the journal records as an SREM, so a
/// replay removes the same ones rather than another random pick).
///
/// # Errors
/// WRONGTYPE for a key of another kind.
pub fn pop(
    keyspace: &mut Keyspace,
    key: &[u8],
    count: Option<u64>,
    now: u64,
) -> Result<(Value, Vec<Bytes>), ErrorReply> {
    let mut randoms = Vec::new();
    let len = match keyspace.get(key, now) {
        None => {
            let empty = count.map_or(Value::Nil, |_| Value::Array(Vec::new()));
            return Ok((empty, Vec::new()));
        }
        Some(Stored::Set(set)) => set.len(),
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
    };
    let taken = count.unwrap_or(1).min(len as u64) as usize;
    for left in (len - taken + 1..=len).rev() {
        randoms.push((keyspace.next_random() % left as u64) as usize);
    }
    let mut popped = Vec::with_capacity(taken);
    change(keyspace, key, now, |set| {
        for at in randoms {
            popped.push(Bytes::from(Vec::from(set.take_at(at))));
        }
        Ok(Value::Nil)
    })?;
    let reply = match count {
        None => popped.first().cloned().map_or(Value::Nil, Value::Bytes),
        Some(_) => Value::Array(popped.iter().cloned().map(Value::Bytes).collect()),
    };
    Ok((reply, popped))
}

fn add<P: Payload>(
    keyspace: &mut Keyspace,
    key: &[u8],
    members: &[P],
    now: u64,
) -> Result<Value, ErrorReply> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        let mut set = Members::default();
        let added = members.iter().filter(|m| set.insert(m.as_ref())).count();
        keyspace.write(found, key, Stored::Set(Box::new(set)), None);
        return Ok(Value::Int(added as i64));
    }
    let added = keyspace.update(&found, |stored| match stored {
        Stored::Set(set) => Some(members.iter().filter(|m| set.insert(m.as_ref())).count()),
        _ => None,
    });
    match added.flatten() {
        Some(added) => Ok(Value::Int(added as i64)),
        None => Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
    }
}

/// Runs a change on an existing set, removing the key if it leaves the set empty; a
/// missing key answers 0.
fn change(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    change: impl FnOnce(&mut Members) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    change_collection(
        keyspace,
        key,
        now,
        Value::Int(0),
        as_set,
        Members::is_empty,
        change,
    )
}

/// The set at `key`: `None` if missing.
///
/// # Errors
/// WRONGTYPE for a key of another kind.
fn set_at<'a>(
    keyspace: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a Members>, ErrorReply> {
    match keyspace.get(key, now) {
        None => Ok(None),
        Some(Stored::Set(set)) => Ok(Some(set)),
        Some(_) => Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
    }
}

fn move_member(
    keyspace: &mut Keyspace,
    source: &[u8],
    destination: &[u8],
    member: &[u8],
    now: u64,
) -> Result<Value, ErrorReply> {
    // Both kinds are checked before anything changes, as Redis does.
    let present = set_at(keyspace, source, now)?.is_some_and(|set| set.contains(member));
    set_at(keyspace, destination, now)?;
    if !present {
        return Ok(Value::Int(0));
    }
    if source != destination {
        change(keyspace, source, now, |set| {
            Ok(Value::Int(i64::from(set.remove(member))))
        })?;
        add(keyspace, destination, &[member], now)?;
    }
    Ok(Value::Int(1))
}

/// The members of combining the sets at `keys` (a missing key is the empty set), each
/// kind checked first.
fn combine<P: Payload>(
    keyspace: &mut Keyspace,
    op: SetOp,
    keys: &[P],
    limit: u64,
    now: u64,
) -> Result<Vec<Bytes>, ErrorReply> {
    // Every key is looked up first (which expires any that is due), then each set is
    // borrowed from those lookups, all at once.
    let founds: Vec<_> = keys
        .iter()
        .map(|k| keyspace.find(k.as_ref(), now))
        .collect();
    let mut sets = Vec::with_capacity(keys.len());
    for found in &founds {
        sets.push(match keyspace.value(found) {
            None => None,
            Some(Stored::Set(set)) => Some(&**set),
            Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        });
    }
    let copy = |m: &[u8]| Bytes::copy_from_slice(m);
    let limit = if limit == 0 {
        usize::MAX
    } else {
        limit as usize
    };
    Ok(match op {
        SetOp::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(Vec::new());
            }
            let sets: Vec<&Members> = sets.into_iter().flatten().collect();
            let smallest = sets
                .iter()
                .min_by_key(|s| s.len())
                .copied()
                .unwrap_or(sets[0]);
            smallest
                .iter()
                .filter(|m| sets.iter().all(|s| s.contains(m)))
                .take(limit)
                .map(copy)
                .collect()
        }
        SetOp::Union => {
            let mut union = Members::default();
            for set in sets.iter().flatten() {
                set.iter().for_each(|m| {
                    union.insert(m);
                });
            }
            union.iter().map(copy).collect()
        }
        SetOp::Diff => match &sets[0] {
            None => Vec::new(),
            Some(first) => first
                .iter()
                .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m)))
                .map(copy)
                .collect(),
        },
    })
}

fn store<P: Payload>(
    keyspace: &mut Keyspace,
    op: SetOp,
    destination: &[u8],
    keys: &[P],
    now: u64,
) -> Result<Value, ErrorReply> {
    let members = combine(keyspace, op, keys, 0, now)?;
    keyspace.remove(destination, now);
    if members.is_empty() {
        return Ok(Value::Int(0));
    }
    let len = members.len();
    add(keyspace, destination, &members, now)?;
    Ok(Value::Int(len as i64))
}

/// The reads: SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SRANDMEMBER, SINTER, SUNION, SDIFF,
/// SINTERCARD, SSCAN.
fn read<P: Payload>(
    keyspace: &mut Keyspace,
    command: &SetCommand<P>,
    now: u64,
) -> Result<Value, ErrorReply> {
    let limit = keyspace.reply_limit;
    let copy = |m: &[u8]| Value::Bytes(Bytes::copy_from_slice(m));
    match command {
        SetCommand::Combine { op, keys } => {
            let members = combine(keyspace, *op, keys, 0, now)?;
            super::within_reply_limit(members.iter().map(Bytes::len).sum(), limit)?;
            return Ok(Value::Array(
                members.into_iter().map(Value::Bytes).collect(),
            ));
        }
        SetCommand::InterCard { keys, limit } => {
            let members = combine(keyspace, SetOp::Inter, keys, *limit, now)?;
            return Ok(Value::Int(members.len() as i64));
        }
        SetCommand::RandMember { key, count } => {
            return random_members(keyspace, key.as_ref(), *count, now);
        }
        _ => {}
    }
    let key = command.single_key().map_or(&[][..], AsRef::as_ref);
    let empty = Members::default();
    let set = set_at(keyspace, key, now)?.unwrap_or(&empty);
    Ok(match command {
        SetCommand::Members(_) => {
            super::within_reply_limit(set.member_bytes(), limit)?;
            Value::Array(set.iter().map(copy).collect())
        }
        SetCommand::IsMember { member, .. } => Value::Int(i64::from(set.contains(member.as_ref()))),
        SetCommand::MIsMember { members, .. } => Value::Array(
            members
                .iter()
                .map(|m| Value::Int(i64::from(set.contains(m.as_ref()))))
                .collect(),
        ),
        SetCommand::Card(_) => Value::Int(set.len() as i64),
        SetCommand::Scan {
            cursor,
            pattern,
            count,
            ..
        } => {
            let (next, members) = set.scan(*cursor, usize::try_from(*count).unwrap_or(usize::MAX));
            let matched = members
                .iter()
                .filter(|m| {
                    pattern
                        .as_ref()
                        .is_none_or(|p| glob::matches(p.as_ref(), m))
                })
                .map(|m| copy(m))
                .collect();
            Value::Array(vec![
                Value::Bytes(Bytes::from(next.to_string())),
                Value::Array(matched),
            ])
        }
        _ => Value::error(ErrorCode::Internal, "not a set read"),
    })
}

/// SRANDMEMBER: one member, distinct members for a positive count, and members with
/// repeats for a negative one.
fn random_members(
    keyspace: &mut Keyspace,
    key: &[u8],
    count: Option<i64>,
    now: u64,
) -> Result<Value, ErrorReply> {
    let limit = keyspace.reply_limit;
    let len = match set_at(keyspace, key, now)? {
        None => return Ok(count.map_or(Value::Nil, |_| Value::Array(Vec::new()))),
        Some(set) => set.len(),
    };
    let wanted = count.map_or(1, |n| n.unsigned_abs().min(u32::MAX as u64) as usize);
    let distinct = count.is_none_or(|n| n > 0);
    // Positions first (the random source lives on the keyspace), members after.
    let picks: Vec<usize> = if distinct && wanted >= len {
        (0..len).collect()
    } else if distinct {
        // A partial Fisher-Yates over the positions: `wanted` distinct picks.
        let mut order: Vec<usize> = (0..len).collect();
        for i in 0..wanted {
            let j = i + (keyspace.next_random() % (len - i) as u64) as usize;
            order.swap(i, j);
        }
        order.truncate(wanted);
        order
    } else {
        (0..wanted)
            .map(|_| (keyspace.next_random() % len as u64) as usize)
            .collect()
    };
    let Some(Stored::Set(set)) = keyspace.get(key, now) else {
        return Ok(Value::Nil);
    };
    let size: usize = picks.iter().map(|&at| set.at(at).len()).sum();
    super::within_reply_limit(size, limit)?;
    let members = picks
        .into_iter()
        .map(|at| Value::Bytes(Bytes::copy_from_slice(set.at(at))));
    Ok(match count {
        None => members.into_iter().next().unwrap_or(Value::Nil),
        Some(_) => Value::Array(members.collect()),
    })
}

fn as_set(stored: &mut Stored) -> Option<&mut Members> {
    match stored {
        Stored::Set(set) => Some(&mut **set),
        _ => None,
    }
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

    fn members(value: Value) -> BTreeSet<String> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => panic!("not bytes: {other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    fn set_of(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn membership_follows_redis() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, "SADD s a b c a"), Value::Int(3));
        assert_eq!(run(&mut ks, "SADD s c d"), Value::Int(1));
        assert_eq!(run(&mut ks, "SCARD s"), Value::Int(4));
        assert_eq!(run(&mut ks, "SISMEMBER s a"), Value::Int(1));
        assert_eq!(
            run(&mut ks, "SMISMEMBER s a z"),
            Value::Array(vec![Value::Int(1), Value::Int(0)])
        );
        assert_eq!(run(&mut ks, "SREM s a z"), Value::Int(1));
        assert_eq!(
            members(run(&mut ks, "SMEMBERS s")),
            set_of(&["b", "c", "d"])
        );
        run(&mut ks, "SET str x");
        assert!(matches!(run(&mut ks, "SADD str a"), Value::Error(_)));
        assert_eq!(run(&mut ks, "SREM s b c d"), Value::Int(3));
        assert!(
            ks.get(b"s", 1_000).is_none(),
            "the key goes with its last member"
        );
    }

    #[test]
    fn combinations_and_stores_follow_redis() {
        let mut ks = Keyspace::new();
        run(&mut ks, "SADD {t}a 1 2 3 4");
        run(&mut ks, "SADD {t}b 3 4 5");
        assert_eq!(
            members(run(&mut ks, "SINTER {t}a {t}b")),
            set_of(&["3", "4"])
        );
        assert_eq!(members(run(&mut ks, "SINTER {t}a {t}none")), set_of(&[]));
        assert_eq!(
            members(run(&mut ks, "SUNION {t}a {t}b {t}none")),
            set_of(&["1", "2", "3", "4", "5"])
        );
        assert_eq!(
            members(run(&mut ks, "SDIFF {t}a {t}b")),
            set_of(&["1", "2"])
        );
        assert_eq!(
            run(&mut ks, "SINTERCARD 2 {t}a {t}b LIMIT 1"),
            Value::Int(1)
        );
        assert_eq!(run(&mut ks, "SDIFFSTORE {t}d {t}a {t}b"), Value::Int(2));
        assert_eq!(members(run(&mut ks, "SMEMBERS {t}d")), set_of(&["1", "2"]));
        assert_eq!(run(&mut ks, "SINTERSTORE {t}d {t}a {t}none"), Value::Int(0));
        assert!(
            ks.get(b"{t}d", 1_000).is_none(),
            "an empty result deletes the destination"
        );
        assert_eq!(run(&mut ks, "SMOVE {t}a {t}b 1"), Value::Int(1));
        assert_eq!(run(&mut ks, "SMOVE {t}a {t}b 1"), Value::Int(0));
        assert_eq!(run(&mut ks, "SISMEMBER {t}b 1"), Value::Int(1));
    }

    #[test]
    fn random_picks_stay_within_the_set() {
        let mut ks = Keyspace::new();
        run(&mut ks, "SADD s a b c d e");
        let all = set_of(&["a", "b", "c", "d", "e"]);
        let three = members(run(&mut ks, "SRANDMEMBER s 3"));
        assert_eq!(three.len(), 3);
        assert!(three.is_subset(&all));
        assert_eq!(members(run(&mut ks, "SRANDMEMBER s 10")), all);
        let Value::Array(repeats) = run(&mut ks, "SRANDMEMBER s -20") else {
            panic!("an array")
        };
        assert_eq!(repeats.len(), 20);
        let popped = members(run(&mut ks, "SPOP s 2"));
        assert_eq!(popped.len(), 2);
        let left = members(run(&mut ks, "SMEMBERS s"));
        assert_eq!(left.len(), 3);
        assert!(popped.is_disjoint(&left));
        assert_eq!(run(&mut ks, "SPOP none"), Value::Nil);
    }

    #[test]
    fn spop_is_journaled_as_the_srem_of_what_it_popped() {
        let mut ks = Keyspace::new();
        ks.start_journal();
        run(&mut ks, "SADD s a b c d e f g h");
        let popped = members(run(&mut ks, "SPOP s 3"));
        let mut records = bytes::BytesMut::new();
        ks.take_journal(&mut records);
        let mut replica = Keyspace::new();
        for record in crate::data::codec::unframe(&records) {
            Mutation::decode(record).unwrap().replay(&mut replica);
        }
        let left = members(run(&mut replica, "SMEMBERS s"));
        assert_eq!(left.len(), 5);
        assert!(
            popped.is_disjoint(&left),
            "the replica removed the same members"
        );
    }

    #[test]
    fn a_scan_walks_every_member_matching_the_pattern() {
        let mut ks = Keyspace::new();
        for i in 0..100 {
            run(&mut ks, &format!("SADD s m{i} x{i}"));
        }
        let (mut cursor, mut seen) = ("0".to_string(), BTreeSet::new());
        loop {
            let Value::Array(parts) = run(&mut ks, &format!("SSCAN s {cursor} MATCH m* COUNT 7"))
            else {
                panic!("an array")
            };
            let [Value::Bytes(next), found] = &parts[..] else {
                panic!("cursor and members")
            };
            seen.extend(members(found.clone()));
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, (0..100).map(|i| format!("m{i}")).collect());
    }
}
