//! Presence watches on a user's owner shard: who watches each user, what they were last
//! told, and the pushes waiting to leave. `families::presence` decides when to look.

use hashbrown::HashMap;
use tessera_protocol::Value;

/// One client connection anywhere on the node: its shard, its slot there, and a serial
/// that tells apart connections that reuse one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// Shard serving the connection.
    pub shard: u16,
    /// The connection's slot in that shard's registry.
    pub slot: u32,
    /// Distinguishes successive connections in one slot.
    pub serial: u32,
}

/// A push for some connections, produced on the watched user's shard.
pub struct Push {
    /// Connections to deliver to.
    pub to: Vec<ConnId>,
    /// The push frame's value.
    pub value: Value,
}

/// One watched user.
pub(crate) struct Watched {
    pub(crate) watchers: Vec<ConnId>,
    /// What the watchers were last told.
    pub(crate) online: bool,
    /// When the earliest pending timer will look again, if one is pending.
    pub(crate) timer_at: Option<u64>,
}

/// Every watched user on one shard.
#[derive(Default)]
pub struct Watches {
    pub(crate) users: HashMap<Box<[u8]>, Watched>,
    /// Counts changes on this shard; a push carries the count after its change, so a
    /// client can drop pushes its WATCH baseline already reflects.
    pub(crate) sequence: u64,
    pub(crate) outgoing: Vec<Push>,
}

impl Watches {
    /// Whether anyone watches `user`.
    pub fn is_watched(&self, user: &[u8]) -> bool {
        !self.users.is_empty() && self.users.contains_key(user)
    }

    /// Watched users, for accounting.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is watched.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Takes the pushes produced since the last call.
    pub fn take_pushes(&mut self) -> Vec<Push> {
        std::mem::take(&mut self.outgoing)
    }

    /// Whether pushes are waiting.
    pub fn has_pushes(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Forgets every pending timer, after the keyspace dropped them all.
    pub fn timers_cleared(&mut self) {
        for watched in self.users.values_mut() {
            watched.timer_at = None;
        }
    }

    /// Every watched user.
    pub fn users(&self) -> Vec<Box<[u8]>> {
        self.users.keys().cloned().collect()
    }

    /// Ends the watches on the users `moved` names, whose slots another node owns now,
    /// telling each watcher with a `["presence-moved", user]` push so it can watch the user
    /// there; answers how many users.
    pub fn hand_over(&mut self, moved: impl Fn(&[u8]) -> bool) -> usize {
        let users: Vec<Box<[u8]>> = self.users.keys().filter(|u| moved(u)).cloned().collect();
        for user in &users {
            if let Some(watched) = self.users.remove(user) {
                self.outgoing.push(Push {
                    to: watched.watchers,
                    value: Value::Array(vec![
                        Value::text("presence-moved"),
                        Value::Bytes(bytes::Bytes::copy_from_slice(user)),
                    ]),
                });
            }
        }
        users.len()
    }
}
