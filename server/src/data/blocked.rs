//! Clients waiting in a blocking pop, on the lists' owner shard: who waits on each list,
//! in the order they began, and the lists a write has just pushed to.

use std::collections::VecDeque;

use bytes::Bytes;
use hashbrown::HashMap;
use tessera_protocol::Value;
use tokio::sync::oneshot;

use super::watch::ConnId;

/// One waiting pop.
pub struct Waiter {
    /// The command's body (opcode and arguments), run again when a list it waits on fills.
    pub body: Bytes,
    /// The lists whose pushes can serve it.
    pub lists: Vec<Box<[u8]>>,
    /// The connection waiting.
    pub conn: ConnId,
    /// Where its reply goes once served.
    pub reply: oneshot::Sender<Value>,
}

/// Every waiting pop on one shard.
#[derive(Default)]
pub struct Blocked {
    queues: HashMap<Box<[u8]>, VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
    ready: Vec<Box<[u8]>>,
    /// Set while waiters are being served, so a pop that pushes (BLMOVE) adds to the
    /// lists being served instead of serving again inside itself.
    pub serving: bool,
}

impl Blocked {
    /// Whether nobody waits here.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Waiters, for accounting.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Adds a waiter behind those already waiting on its lists; answers its id.
    pub fn add(&mut self, waiter: Waiter) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        for list in &waiter.lists {
            self.queues.entry(list.clone()).or_default().push_back(id);
        }
        self.waiters.insert(id, waiter);
        id
    }

    /// Takes waiter `id` out of every queue (served, timed out, or gone).
    pub fn remove(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        for list in &waiter.lists {
            if let Some(queue) = self.queues.get_mut(list) {
                queue.retain(|waiting| *waiting != id);
                if queue.is_empty() {
                    self.queues.remove(list);
                }
            }
        }
        Some(waiter)
    }

    /// Drops every waiter of a closed connection.
    pub fn cancel_connection(&mut self, conn: ConnId) {
        for id in self.waiters_of(conn) {
            self.remove(id);
        }
    }

    /// Ends the waits of `conn` with `answer` (CLIENT UNBLOCK); answers whether it had any.
    pub fn unblock(&mut self, conn: ConnId, answer: &Value) -> bool {
        let ids = self.waiters_of(conn);
        for id in &ids {
            if let Some(waiter) = self.remove(*id) {
                let _ = waiter.reply.send(answer.clone());
            }
        }
        !ids.is_empty()
    }

    fn waiters_of(&self, conn: ConnId) -> Vec<u64> {
        self.waiters
            .iter()
            .filter(|(_, waiter)| waiter.conn == conn)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A write named `key`: if someone waits on it, it is looked at before the write's
    /// step ends.
    pub fn note_write(&mut self, key: &[u8]) {
        if self.queues.contains_key(key) && !self.ready.iter().any(|k| &k[..] == key) {
            self.ready.push(key.into());
        }
    }

    /// The lists noted since the last call.
    pub fn take_ready(&mut self) -> Vec<Box<[u8]>> {
        std::mem::take(&mut self.ready)
    }

    /// Who has waited longest on `list`.
    pub fn first_on(&self, list: &[u8]) -> Option<u64> {
        self.queues
            .get(list)
            .and_then(|queue| queue.front().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(lists: &[&str], slot: u32) -> (Waiter, oneshot::Receiver<Value>) {
        let (reply, receiver) = oneshot::channel();
        let waiter = Waiter {
            body: Bytes::new(),
            lists: lists.iter().map(|l| l.as_bytes().into()).collect(),
            conn: ConnId {
                shard: 0,
                slot,
                serial: 1,
            },
            reply,
        };
        (waiter, receiver)
    }

    #[test]
    fn unblocking_a_connection_answers_its_waits_and_leaves_the_others() {
        let mut blocked = Blocked::default();
        let (mine, mut my_answer) = waiter(&["a"], 1);
        let (theirs, mut their_answer) = waiter(&["a"], 2);
        blocked.add(mine);
        let theirs = blocked.add(theirs);
        let me = ConnId {
            shard: 0,
            slot: 1,
            serial: 1,
        };
        assert!(blocked.unblock(me, &Value::Nil));
        assert_eq!(my_answer.try_recv(), Ok(Value::Nil));
        assert!(their_answer.try_recv().is_err());
        assert_eq!(blocked.first_on(b"a"), Some(theirs));
        assert!(!blocked.unblock(me, &Value::Nil), "nothing left to unblock");
    }

    #[test]
    fn waiters_are_served_in_the_order_they_came_and_leave_every_queue() {
        let mut blocked = Blocked::default();
        let (first, _r1) = waiter(&["a", "b"], 1);
        let (second, _r2) = waiter(&["a"], 2);
        let first = blocked.add(first);
        let second = blocked.add(second);
        assert_eq!(blocked.first_on(b"a"), Some(first));
        assert_eq!(blocked.first_on(b"b"), Some(first));
        assert!(blocked.remove(first).is_some());
        assert_eq!(blocked.first_on(b"a"), Some(second));
        assert_eq!(blocked.first_on(b"b"), None);
        blocked.note_write(b"a");
        blocked.note_write(b"a");
        blocked.note_write(b"nobody-waits");
        assert_eq!(blocked.take_ready(), vec![Box::from(&b"a"[..])]);
        blocked.cancel_connection(ConnId {
            shard: 0,
            slot: 2,
            serial: 1,
        });
        assert!(blocked.is_empty());
        assert_eq!(blocked.first_on(b"a"), None);
    }
}
