//! WATCH for transactions, on the watched keys' owner shard: who watches each key, and
//! which watchers have seen a watched key change since, so their EXEC runs nothing.

use hashbrown::{HashMap, HashSet};

use super::watch::ConnId;

/// Every transaction watch on one shard.
#[derive(Default)]
pub struct TxWatches {
    watchers: HashMap<Box<[u8]>, Vec<ConnId>>,
    keys_of: HashMap<ConnId, Vec<Box<[u8]>>>,
    touched: HashSet<ConnId>,
}

impl TxWatches {
    /// Whether nobody watches anything here.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Keys watched, for accounting.
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// `conn` watches `key` from now on.
    pub fn watch(&mut self, conn: ConnId, key: &[u8]) {
        let watchers = self.watchers.entry(key.into()).or_default();
        if !watchers.contains(&conn) {
            watchers.push(conn);
            self.keys_of.entry(conn).or_default().push(key.into());
        }
    }

    /// `key` changed: everyone watching it has its transaction spoiled.
    pub fn touch(&mut self, key: &[u8]) {
        if let Some(watchers) = self.watchers.get(key) {
            self.touched.extend(watchers.iter().copied());
        }
    }

    /// Every key someone watches.
    pub fn keys(&self) -> Vec<Box<[u8]>> {
        self.watchers.keys().cloned().collect()
    }

    /// Ends `conn`'s watches here; `true` if a key it watched changed meanwhile.
    pub fn end(&mut self, conn: ConnId) -> bool {
        for key in self.keys_of.remove(&conn).unwrap_or_default() {
            if let Some(watchers) = self.watchers.get_mut(&key) {
                watchers.retain(|watcher| *watcher != conn);
                if watchers.is_empty() {
                    self.watchers.remove(&key);
                }
            }
        }
        self.touched.remove(&conn)
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
    fn a_change_spoils_only_its_watchers_and_ending_forgets_them() {
        let mut watches = TxWatches::default();
        watches.watch(conn(1), b"a");
        watches.watch(conn(2), b"b");
        watches.touch(b"a");
        watches.touch(b"unwatched");
        assert!(watches.end(conn(1)));
        assert!(!watches.end(conn(2)));
        assert!(watches.is_empty());
        // A watcher that ended is not spoiled by later changes.
        watches.touch(b"a");
        assert!(!watches.end(conn(1)));
    }
}
