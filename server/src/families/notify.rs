//! The keyspace notification a write raises: Redis's event name and class for the
//! command, raised only when the write changed something, on each key it changed.

use super::*;
use crate::data::notices::class;
use tessera_protocol::commands::GeoSetCommand;

/// Redis's event for a write of ours, by the command's name, with its class.
fn event_of(name: &str) -> Option<(u16, &'static str)> {
    Some(match name {
        "SET" | "MSET" | "MSETNX" => (class::STRING, "set"),
        "INCRBY" => (class::STRING, "incrby"),
        "DECRBY" => (class::STRING, "decrby"),
        "INCRBYFLOAT" => (class::STRING, "incrbyfloat"),
        "APPEND" => (class::STRING, "append"),
        "SETRANGE" => (class::STRING, "setrange"),
        "SETBIT" => (class::STRING, "setbit"),
        "DEL" | "GETDEL" => (class::GENERIC, "del"),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => (class::GENERIC, "expire"),
        "PERSIST" => (class::GENERIC, "persist"),
        "LPUSH" | "LPUSHX" => (class::LIST, "lpush"),
        "RPUSH" | "RPUSHX" => (class::LIST, "rpush"),
        "LPOP" => (class::LIST, "lpop"),
        "RPOP" => (class::LIST, "rpop"),
        "LSET" => (class::LIST, "lset"),
        "LREM" => (class::LIST, "lrem"),
        "LTRIM" => (class::LIST, "ltrim"),
        "LINSERT" => (class::LIST, "linsert"),
        "SADD" => (class::SET, "sadd"),
        "SREM" => (class::SET, "srem"),
        "SPOP" => (class::SET, "spop"),
        "HSET" | "HSETNX" => (class::HASH, "hset"),
        "HDEL" => (class::HASH, "hdel"),
        "HINCRBY" => (class::HASH, "hincrby"),
        "HINCRBYFLOAT" => (class::HASH, "hincrbyfloat"),
        "ZADD" | "GEOADD" => (class::ZSET, "zadd"),
        "ZINCRBY" => (class::ZSET, "zincr"),
        "ZREM" => (class::ZSET, "zrem"),
        "ZPOPMIN" => (class::ZSET, "zpopmin"),
        "ZPOPMAX" => (class::ZSET, "zpopmax"),
        "ZREMRANGEBYSCORE" => (class::ZSET, "zremrangebyscore"),
        "ZREMRANGEBYRANK" => (class::ZSET, "zremrangebyrank"),
        _ => return None,
    })
}

/// Writes whose reply counts what they changed, so 0 means nothing changed.
fn counts_changes(name: &str) -> bool {
    matches!(
        name,
        "SADD"
            | "SREM"
            | "ZADD"
            | "GEOADD"
            | "ZREM"
            | "HDEL"
            | "HSETNX"
            | "LREM"
            | "LPUSHX"
            | "RPUSHX"
            | "EXPIRE"
            | "PEXPIRE"
            | "EXPIREAT"
            | "PEXPIREAT"
            | "PERSIST"
            | "MSETNX"
            | "ZREMRANGEBYSCORE"
            | "ZREMRANGEBYRANK"
    )
}

/// Whether a SET ... GET wrote, from the old value it answered: under NX only when there
/// was none, under XX only when there was one, and always otherwise.
fn set_wrote<P>(set: &SetArgs<P>, old_value: &Value) -> bool {
    match set.condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => *old_value == Value::Nil,
        SetCondition::IfPresent => *old_value != Value::Nil,
    }
}

/// The keys of a DEL that exist now, for its notifications once they are gone; `None`
/// when no notification would be raised.
fn existing_before<P: Payload>(
    keyspace: &mut Keyspace,
    command: &Command<P>,
    now: u64,
) -> Option<Vec<Bytes>> {
    let Command::Keys(KeyCommand::Del(keys)) = command else {
        return None;
    };
    if !keyspace.notices.wants(class::GENERIC) {
        return None;
    }
    Some(
        keys.iter()
            .filter(|key| keyspace.find(key.as_ref(), now).exists())
            .map(|key| Bytes::copy_from_slice(key.as_ref()))
            .collect(),
    )
}

/// What a write's notification needs from before it ran: the keys of a DEL that exist,
/// or the scores a ZADD or GEOADD may update (their reply counts only new members).
pub enum Before {
    /// DEL's keys that exist now.
    Existing(Vec<Bytes>),
    /// ZMSCORE of the members a ZADD or GEOADD names, on its key, and its answer then.
    Scores(Command, Value),
}

/// What `command`'s notification will need from before it runs; `None` when no
/// notification would be raised or the reply alone tells.
pub fn before<P: Payload>(
    keyspace: &mut Keyspace,
    command: &Command<P>,
    now: u64,
) -> Option<Before> {
    if let Some(existing) = existing_before(keyspace, command, now) {
        return Some(Before::Existing(existing));
    }
    let scores = scores_of_named(command)?;
    if !keyspace.notices.wants(class::ZSET) {
        return None;
    }
    let old = super::apply(keyspace, &scores, now).into_value();
    Some(Before::Scores(scores, old))
}

/// ZMSCORE of the members an update-only-counting ZADD or GEOADD names.
fn scores_of_named<P: Payload>(command: &Command<P>) -> Option<Command> {
    let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
    let (key, members): (&P, Vec<Bytes>) = match command {
        Command::SortedSets(SortedSetCommand::Add { key, pairs, .. }) => {
            (key, pairs.iter().map(|(_, member)| own(member)).collect())
        }
        Command::GeoSets(GeoSetCommand::Add { key, points, .. }) => {
            (key, points.iter().map(|(_, member)| own(member)).collect())
        }
        _ => return None,
    };
    Some(Command::SortedSets(SortedSetCommand::MScore {
        key: own(key),
        members,
    }))
}

/// Raises `command`'s event on the keys it changed, given its reply and what it found
/// before it ran.
pub fn raise<P: Payload>(
    keyspace: &mut Keyspace,
    command: &Command<P>,
    reply: &Value,
    before: Option<Before>,
    now: u64,
) {
    let name = command.spec().name;
    let Some((class, event)) = event_of(name) else {
        return;
    };
    if !keyspace.notices.wants(class) {
        return;
    }
    let unchanged = match (command, reply) {
        (_, Value::Error(_)) => true,
        (Command::Keys(KeyCommand::Set(set)), reply) if set.get => !set_wrote(set, reply),
        (_, Value::Nil) => true,
        (_, Value::Array(items)) => items.is_empty(),
        // A ZADD or GEOADD adding nothing may still have moved members.
        (_, Value::Int(0)) => match &before {
            Some(Before::Scores(scores, old)) => {
                super::apply(keyspace, scores, now).into_value() == *old
            }
            _ => counts_changes(name),
        },
        _ => false,
    };
    if unchanged {
        return;
    }
    if let Some(Before::Existing(deleted)) = before {
        for key in deleted {
            keyspace.notices.raise(class, event, &key);
        }
        return;
    }
    let notices = &mut keyspace.notices;
    command.for_each_key(&mut |key| notices.raise(class, event, key));
}
