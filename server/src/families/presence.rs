//! Presence on one shard: heartbeats, leaves and lookups, with watched users looked at around each change.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &PresenceCommand<P>, now: u64) -> Value {
    match command {
        PresenceCommand::Beat {
            user,
            ttl_ms,
            grace_ms,
            meta,
        } => watched_change(keyspace, user.as_ref(), now, |keyspace| {
            presence_beat(
                keyspace,
                user.as_ref(),
                now + ttl_ms + grace_ms,
                meta.as_ref().map(AsRef::as_ref),
                now,
            )
        }),
        PresenceCommand::Get(users) => Value::Array(
            rows(keyspace, users, now)
                .into_iter()
                .map(render_row)
                .collect(),
        ),
        PresenceCommand::Leave(user) => watched_change(keyspace, user.as_ref(), now, |keyspace| {
            let found = keyspace.find(user.as_ref(), now);
            let left = keyspace.update(&found, |stored| match stored {
                Stored::Presence(presence) => {
                    let was_online = presence.online_until > now;
                    presence.online_until = presence.online_until.min(now);
                    Some(was_online)
                }
                _ => None,
            });
            match left {
                Some(Some(was_online)) => Value::Int(i64::from(was_online)),
                Some(None) => wrong_type(),
                None => Value::Int(0),
            }
        }),
        PresenceCommand::Watch(_) | PresenceCommand::Unwatch(_) => Value::error(
            ErrorCode::Internal,
            "watches are registered by the coordinator",
        ),
    }
}

/// Runs a presence change, looking at a watched user's state before (to catch a lapse
/// not yet seen) and after, so watchers hear every change in order.
fn watched_change(
    keyspace: &mut Keyspace,
    user: &[u8],
    now: u64,
    change: impl FnOnce(&mut Keyspace) -> Value,
) -> Value {
    let watched = keyspace.watches.is_watched(user);
    if watched {
        watch::look(keyspace, user, now);
    }
    let reply = change(keyspace);
    if watched {
        watch::look(keyspace, user, now);
    }
    reply
}

/// How long a user's last-seen time stays queryable after they go offline.
const PRESENCE_RETENTION_MS: u64 = 24 * 3600 * 1000;

/// Records a heartbeat; `true` if it brought the user online.
fn presence_beat(
    keyspace: &mut Keyspace,
    user: &[u8],
    online_until: u64,
    meta: Option<&[u8]>,
    now: u64,
) -> Value {
    let found = keyspace.find(user, now);
    let came_online = match keyspace.update(&found, |stored| match stored {
        Stored::Presence(presence) => {
            let came_online = presence.online_until <= now;
            presence.last_seen = now;
            presence.online_until = online_until;
            if let Some(meta) = meta {
                presence.meta = Some(meta.into());
            }
            Some(came_online)
        }
        _ => None,
    }) {
        Some(Some(came_online)) => came_online,
        Some(None) => return wrong_type(),
        None => {
            let presence = Presence {
                last_seen: now,
                online_until,
                meta: meta.map(Into::into),
            };
            keyspace.write(
                found,
                user,
                Stored::Presence(Box::new(presence)),
                Some(online_until + PRESENCE_RETENTION_MS),
            );
            return Value::Bool(true);
        }
    };
    let found = keyspace.find(user, now);
    keyspace.set_deadline_of(&found, Some(online_until + PRESENCE_RETENTION_MS));
    Value::Bool(came_online)
}

/// A user's presence as PRESENCE.GET reports it: online, milliseconds since the last
/// heartbeat, and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRow {
    /// Online now.
    pub online: bool,
    /// Milliseconds since the last heartbeat.
    pub ago_ms: u64,
    /// Metadata of the last heartbeat.
    pub meta: Option<Bytes>,
}

/// Each user's row, `None` for users never seen (or of another kind).
pub fn rows<P: Payload>(
    keyspace: &mut Keyspace,
    users: &[P],
    now: u64,
) -> Vec<Option<PresenceRow>> {
    users
        .iter()
        .map(|user| match keyspace.get(user.as_ref(), now) {
            Some(Stored::Presence(presence)) => Some(PresenceRow {
                online: presence.online_until > now,
                ago_ms: now.saturating_sub(presence.last_seen),
                meta: presence.meta.as_deref().map(Bytes::copy_from_slice),
            }),
            _ => None,
        })
        .collect()
}

/// A row as the reply carries it: a flat triple rather than a map, so a batch of 100 users
/// is 100 small arrays, not 400 allocations of field names; NIL for a user never seen.
pub fn render_row(row: Option<PresenceRow>) -> Value {
    match row {
        Some(row) => Value::Array(vec![
            Value::Bool(row.online),
            Value::Int(row.ago_ms as i64),
            row.meta.map_or(Value::Nil, Value::Bytes),
        ]),
        None => Value::Nil,
    }
}
