//! Presence watches, the looking half: when a watched user's state is read and compared.
//!
//! A user's online state is a function of time (online until the last heartbeat's TTL and
//! grace pass), so changes are found by looking: before and after every heartbeat or leave
//! of a watched user, and at a timer set for the moment an online user would go offline.
//! Each look compares the state with what watchers were last told and pushes only a
//! difference, so every change is pushed once, and a quick offline-online blip that
//! happened between two looks is still pushed as two changes.

use bytes::Bytes;
use tessera_protocol::Value;

use super::{Keyspace, Stored};
use crate::data::watch::{ConnId, Push, Watched};

/// What a user's presence record says at `now`: online, when it lapses, ms since last
/// seen (`None` if never seen), and metadata.
fn state_of(keyspace: &mut Keyspace, user: &[u8], now: u64) -> (bool, u64, Option<u64>, Value) {
    match keyspace.get(user, now) {
        Some(Stored::Presence(presence)) => (
            presence.online_until > now,
            presence.online_until,
            Some(now.saturating_sub(presence.last_seen)),
            presence
                .meta
                .as_ref()
                .map_or(Value::Nil, |m| Value::Bytes(Bytes::copy_from_slice(m))),
        ),
        _ => (false, 0, None, Value::Nil),
    }
}

/// Looks at a watched user's state and queues a push if it differs from what watchers
/// were last told; keeps a timer pending while the user is online.
pub fn look(keyspace: &mut Keyspace, user: &[u8], now: u64) {
    if !keyspace.watches.is_watched(user) {
        return;
    }
    let (online, until, _, meta) = state_of(keyspace, user, now);
    let watches = &mut keyspace.watches;
    let Some(watched) = watches.users.get_mut(user) else {
        return;
    };
    // A heartbeat with a shorter TTL than the one the pending timer was set for needs an
    // earlier look.
    let arm_timer = online && watched.timer_at.is_none_or(|at| at > until);
    if arm_timer {
        watched.timer_at = Some(until);
    }
    if watched.online != online {
        watched.online = online;
        watches.sequence += 1;
        let value = Value::Array(vec![
            Value::text("presence"),
            Value::Bytes(Bytes::copy_from_slice(user)),
            Value::Bool(online),
            if online { meta } else { Value::Nil },
            Value::Int(watches.sequence as i64),
        ]);
        watches.outgoing.push(Push {
            to: watched.watchers.clone(),
            value,
        });
    }
    if arm_timer {
        keyspace.schedule(until, user);
    }
}

/// A key command wrote, deleted or re-timed `key`: if it is a watched user's record, its
/// watchers hear the change now, and again when a new, earlier deadline removes it.
pub fn key_written(keyspace: &mut Keyspace, key: &[u8], now: u64) {
    if !keyspace.watches.is_watched(key) {
        return;
    }
    look(keyspace, key, now);
    if let Some(Some(deadline)) = keyspace.deadline(key, now) {
        keyspace.schedule(deadline, key);
    }
}

/// A timer set by `look` has fired for `key`.
pub fn timer_fired(keyspace: &mut Keyspace, key: &[u8], now: u64) {
    if let Some(watched) = keyspace.watches.users.get_mut(key) {
        if watched.timer_at.is_some_and(|at| at <= now) {
            watched.timer_at = None;
        }
        look(keyspace, key, now);
    }
}

/// A watched user's state when the watch began, and the shard's change count then: the
/// baseline later pushes build on.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRow {
    /// Online now.
    pub online: bool,
    /// Milliseconds since the last heartbeat; `None` if never seen.
    pub ago_ms: Option<u64>,
    /// Metadata of the last heartbeat.
    pub meta: Option<Bytes>,
    /// The shard's change count.
    pub sequence: u64,
}

impl WatchRow {
    /// The row as PRESENCE.WATCH answers it: `[online, last_seen_ms or NIL, meta, sequence]`.
    pub fn render(self) -> Value {
        Value::Array(vec![
            Value::Bool(self.online),
            self.ago_ms.map_or(Value::Nil, |ms| Value::Int(ms as i64)),
            self.meta.map_or(Value::Nil, Value::Bytes),
            Value::Int(self.sequence as i64),
        ])
    }
}

/// Registers `watcher` for each user; answers each user's baseline row.
pub fn watch<K: AsRef<[u8]>>(
    keyspace: &mut Keyspace,
    watcher: ConnId,
    users: &[K],
    now: u64,
) -> Vec<WatchRow> {
    users
        .iter()
        .map(|user| {
            let user = user.as_ref();
            let (online, _, ago, meta) = state_of(keyspace, user, now);
            let watched = keyspace
                .watches
                .users
                .entry(user.into())
                .or_insert_with(|| Watched {
                    watchers: Vec::new(),
                    online,
                    timer_at: None,
                });
            if !watched.watchers.contains(&watcher) {
                watched.watchers.push(watcher);
            }
            // A new entry starts from the state just read; an old one may lag it by a
            // change not yet seen, which this look pushes.
            look(keyspace, user, now);
            WatchRow {
                online,
                ago_ms: ago,
                meta: match meta {
                    Value::Bytes(meta) => Some(meta),
                    _ => None,
                },
                sequence: keyspace.watches.sequence,
            }
        })
        .collect()
}

/// Removes `watcher` from each user; answers how many it was watching.
pub fn unwatch<K: AsRef<[u8]>>(keyspace: &mut Keyspace, watcher: ConnId, users: &[K]) -> i64 {
    let mut removed = 0;
    for user in users {
        let user = user.as_ref();
        let Some(watched) = keyspace.watches.users.get_mut(user) else {
            continue;
        };
        let before = watched.watchers.len();
        watched.watchers.retain(|w| *w != watcher);
        removed += before - watched.watchers.len();
        if watched.watchers.is_empty() {
            keyspace.watches.users.remove(user);
        }
    }
    removed as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::apply;
    use tessera_protocol::{AdminCommand, Command, PresenceCommand};

    const ME: ConnId = ConnId {
        shard: 0,
        slot: 7,
        serial: 1,
    };

    fn beat(keyspace: &mut Keyspace, ttl_ms: u64, now: u64) {
        let command: Command = Command::Presence(PresenceCommand::Beat {
            user: Bytes::from_static(b"u"),
            ttl_ms,
            grace_ms: 0,
            meta: None,
        });
        apply(keyspace, &command, now);
    }

    /// (online, sequence) of each push queued so far.
    fn pushed(keyspace: &mut Keyspace) -> Vec<(bool, i64)> {
        keyspace
            .watches
            .take_pushes()
            .into_iter()
            .map(|push| {
                assert_eq!(push.to, vec![ME]);
                match push.value {
                    Value::Array(fields) => match fields[..] {
                        [_, _, Value::Bool(online), _, Value::Int(seq)] => (online, seq),
                        _ => panic!("malformed push {fields:?}"),
                    },
                    other => panic!("malformed push {other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn changes_are_pushed_once_each_in_order() {
        let mut ks = Keyspace::new();
        let baseline = Value::Array(
            watch(&mut ks, ME, &[b"u"], 0)
                .into_iter()
                .map(WatchRow::render)
                .collect(),
        );
        assert_eq!(
            baseline,
            Value::Array(vec![Value::Array(vec![
                Value::Bool(false),
                Value::Nil,
                Value::Nil,
                Value::Int(0)
            ])])
        );
        beat(&mut ks, 100, 10);
        beat(&mut ks, 100, 50);
        assert_eq!(pushed(&mut ks), vec![(true, 1)]);
        // The timer set at the first beat fires while the user is still online: nothing
        // to push, and it re-arms for the later deadline.
        for key in ks.take_due(110) {
            timer_fired(&mut ks, &key, 110);
        }
        assert_eq!(pushed(&mut ks), vec![]);
        for key in ks.take_due(150) {
            timer_fired(&mut ks, &key, 150);
        }
        assert_eq!(pushed(&mut ks), vec![(false, 2)]);
    }

    #[test]
    fn a_lapse_between_looks_is_two_changes() {
        let mut ks = Keyspace::new();
        watch(&mut ks, ME, &[b"u"], 0);
        beat(&mut ks, 100, 0);
        // Back before the timer ran: offline then online, not silence.
        beat(&mut ks, 100, 150);
        assert_eq!(pushed(&mut ks), vec![(true, 1), (false, 2), (true, 3)]);
    }

    #[test]
    fn a_shorter_ttl_after_a_long_one_is_still_reported_on_time() {
        let mut ks = Keyspace::new();
        watch(&mut ks, ME, &[b"u"], 0);
        beat(&mut ks, 60_000, 0);
        apply(
            &mut ks,
            &Command::Presence(PresenceCommand::Leave(Bytes::from_static(b"u"))),
            1,
        );
        beat(&mut ks, 100, 2);
        for key in ks.take_due(102) {
            timer_fired(&mut ks, &key, 102);
        }
        assert_eq!(
            pushed(&mut ks),
            vec![(true, 1), (false, 2), (true, 3), (false, 4)]
        );
    }

    #[test]
    fn leave_and_flush_push_offline_and_unwatch_stops_pushes() {
        let mut ks = Keyspace::new();
        watch(&mut ks, ME, &[b"u"], 0);
        beat(&mut ks, 1_000, 0);
        apply(
            &mut ks,
            &Command::Presence(PresenceCommand::Leave(Bytes::from_static(b"u"))),
            5,
        );
        beat(&mut ks, 1_000, 6);
        apply(&mut ks, &Command::Admin(AdminCommand::<Bytes>::FlushAll), 7);
        assert_eq!(
            pushed(&mut ks),
            vec![(true, 1), (false, 2), (true, 3), (false, 4)]
        );
        assert_eq!(
            Value::Int(unwatch(&mut ks, ME, &[&b"u"[..], b"never"])),
            Value::Int(1)
        );
        assert!(ks.watches.is_empty());
        beat(&mut ks, 1_000, 8);
        assert_eq!(pushed(&mut ks), vec![]);
    }
}
