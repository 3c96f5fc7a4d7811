//! Pub/sub subscriptions, node-wide: the connections subscribed to each channel and to
//! each pattern, changed and read under locks by every shard, so a subscription is in
//! force the moment its command runs, whichever shard the publisher is on.

use std::sync::{Mutex, PoisonError, RwLock};

use hashbrown::HashMap;

use super::glob;
use super::watch::ConnId;

/// Channel tables, each behind its own lock, so publishers to different channels seldom
/// meet.
const STRIPES: usize = 64;

type Table = HashMap<Box<[u8]>, Vec<ConnId>>;

/// Who hears a message: the channel's subscribers, and each matching pattern with its.
pub type Receivers = (Vec<ConnId>, Vec<(Box<[u8]>, Vec<ConnId>)>);

/// Every subscription on the node.
pub struct Subscriptions {
    channels: Box<[Mutex<Table>]>,
    patterns: RwLock<Table>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("subscribed", &self.len())
            .finish()
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            channels: (0..STRIPES).map(|_| Mutex::default()).collect(),
            patterns: RwLock::default(),
        }
    }
}

fn add(table: &mut Table, conn: ConnId, name: &[u8]) {
    let subscribers = table.entry(name.into()).or_default();
    if !subscribers.contains(&conn) {
        subscribers.push(conn);
    }
}

fn remove(table: &mut Table, conn: ConnId, name: &[u8]) {
    if let Some(subscribers) = table.get_mut(name) {
        subscribers.retain(|s| *s != conn);
        if subscribers.is_empty() {
            table.remove(name);
        }
    }
}

impl Subscriptions {
    fn stripe(&self, channel: &[u8]) -> std::sync::MutexGuard<'_, Table> {
        let at = usize::from(tessera_cluster::key_slot(channel)) % STRIPES;
        // A panic while holding a stripe leaves its table whole: every change is one call.
        self.channels[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `conn` hears `name` (a channel, or a pattern) from now on.
    pub fn subscribe(&self, conn: ConnId, name: &[u8], pattern: bool) {
        if pattern {
            add(
                &mut self
                    .patterns
                    .write()
                    .unwrap_or_else(PoisonError::into_inner),
                conn,
                name,
            );
        } else {
            add(&mut self.stripe(name), conn, name);
        }
    }

    /// `conn` no longer hears `name`.
    pub fn unsubscribe(&self, conn: ConnId, name: &[u8], pattern: bool) {
        if pattern {
            remove(
                &mut self
                    .patterns
                    .write()
                    .unwrap_or_else(PoisonError::into_inner),
                conn,
                name,
            );
        } else {
            remove(&mut self.stripe(name), conn, name);
        }
    }

    /// Who hears a message on `channel` now.
    pub fn receivers(&self, channel: &[u8]) -> Receivers {
        let direct = self
            .stripe(channel)
            .get(channel)
            .cloned()
            .unwrap_or_default();
        let patterns = self.patterns.read().unwrap_or_else(PoisonError::into_inner);
        let by_pattern = patterns
            .iter()
            .filter(|(pattern, _)| glob::matches(pattern, channel))
            .map(|(pattern, subscribers)| (pattern.clone(), subscribers.clone()))
            .collect();
        (direct, by_pattern)
    }

    /// Channels with a subscriber whose names match `pattern` (all of them without one).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Box<[u8]>> {
        let mut names: Vec<Box<[u8]>> = self
            .channels
            .iter()
            .flat_map(|stripe| {
                let table = stripe.lock().unwrap_or_else(PoisonError::into_inner);
                table
                    .keys()
                    .filter(|name| pattern.is_none_or(|p| glob::matches(p, name)))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        names
    }

    /// How many connections subscribe to `channel`.
    pub fn subscribers(&self, channel: &[u8]) -> usize {
        self.stripe(channel).get(channel).map_or(0, Vec::len)
    }

    /// How many patterns have a subscriber.
    pub fn pattern_count(&self) -> usize {
        self.patterns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Channels and patterns with a subscriber, for accounting.
    pub fn len(&self) -> usize {
        let channels: usize = self
            .channels
            .iter()
            .map(|stripe| stripe.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        channels
            + self
                .patterns
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }

    /// Whether nobody subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(slot: u32) -> ConnId {
        ConnId {
            shard: 0,
            slot,
            serial: 1,
        }
    }

    #[test]
    fn a_message_reaches_channel_and_matching_pattern_subscribers() {
        let subs = Subscriptions::default();
        subs.subscribe(conn(1), b"chat:1", false);
        subs.subscribe(conn(1), b"chat:1", false);
        subs.subscribe(conn(2), b"chat:*", true);
        subs.subscribe(conn(3), b"news", false);
        let (direct, patterns) = subs.receivers(b"chat:1");
        assert_eq!(direct, vec![conn(1)]);
        assert_eq!(patterns, vec![(Box::from(&b"chat:*"[..]), vec![conn(2)])]);
        subs.unsubscribe(conn(1), b"chat:1", false);
        subs.unsubscribe(conn(2), b"chat:*", true);
        let (direct, patterns) = subs.receivers(b"chat:1");
        assert!(direct.is_empty() && patterns.is_empty());
        assert_eq!(subs.len(), 1);
    }
}
