//! Keyspace notifications: which events a node publishes (Redis's
//! `notify-keyspace-events` flags) and the events a shard's changes raised, waiting to be
//! published on `__keyspace@0__:key` and `__keyevent@0__:event`.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use bytes::Bytes;

/// Event classes and channel kinds, as bits; each has Redis's letter.
pub mod class {
    /// `g`: DEL, EXPIRE, PERSIST and other commands of any type.
    pub const GENERIC: u16 = 1 << 0;
    /// `$`: string commands.
    pub const STRING: u16 = 1 << 1;
    /// `l`: list commands.
    pub const LIST: u16 = 1 << 2;
    /// `s`: set commands.
    pub const SET: u16 = 1 << 3;
    /// `h`: hash commands.
    pub const HASH: u16 = 1 << 4;
    /// `z`: sorted-set commands.
    pub const ZSET: u16 = 1 << 5;
    /// `x`: a key removed because it expired.
    pub const EXPIRED: u16 = 1 << 6;
    /// `e`: a key evicted at maxmemory.
    pub const EVICTED: u16 = 1 << 7;
    /// `t`: stream commands (none are served; kept so the flags read back).
    pub const STREAM: u16 = 1 << 8;
    /// `d`: module events (none here).
    pub const MODULE: u16 = 1 << 9;
    /// `m`: key misses (not raised: Redis raises them for every read of a missing key).
    pub const KEY_MISS: u16 = 1 << 10;
    /// `n`: a key created.
    pub const NEW: u16 = 1 << 11;
    /// `K`: publish on `__keyspace@0__:<key>`.
    pub const KEYSPACE: u16 = 1 << 12;
    /// `E`: publish on `__keyevent@0__:<event>`.
    pub const KEYEVENT: u16 = 1 << 13;
    /// `A`: every class but `m` and `n`.
    pub const ALL: u16 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Each class's letter, in the order Redis writes them back.
const LETTERS: &[(char, u16)] = &[
    ('g', class::GENERIC),
    ('$', class::STRING),
    ('l', class::LIST),
    ('s', class::SET),
    ('h', class::HASH),
    ('z', class::ZSET),
    ('x', class::EXPIRED),
    ('e', class::EVICTED),
    ('t', class::STREAM),
    ('d', class::MODULE),
];

/// Reads a `notify-keyspace-events` value; `None` for a letter Redis does not know.
pub fn parse(flags: &str) -> Option<u16> {
    flags.chars().try_fold(0, |bits, c| {
        let bit = match c {
            'A' => class::ALL,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            'm' => class::KEY_MISS,
            'n' => class::NEW,
            c => LETTERS.iter().find(|(letter, _)| *letter == c)?.1,
        };
        Some(bits | bit)
    })
}

/// Writes flags back as Redis does: `A` for every class, then `K`, `E`, `m`, `n`.
pub fn render(flags: u16) -> String {
    let mut out = String::new();
    if flags & class::ALL == class::ALL {
        out.push('A');
    } else {
        for (letter, bit) in LETTERS {
            if flags & bit != 0 {
                out.push(*letter);
            }
        }
    }
    for (letter, bit) in [
        ('K', class::KEYSPACE),
        ('E', class::KEYEVENT),
        ('m', class::KEY_MISS),
        ('n', class::NEW),
    ] {
        if flags & bit != 0 {
            out.push(letter);
        }
    }
    out
}

/// A shard's raised events, until its pushes are routed.
#[derive(Debug, Default)]
pub struct Notices {
    /// The node's flags, which CONFIG SET changes on any shard.
    pub flags: Arc<AtomicU16>,
    pending: Vec<(&'static str, Bytes)>,
}

impl Notices {
    fn flags(&self) -> u16 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Whether any event is published: off (the default) costs one load.
    pub fn enabled(&self) -> bool {
        self.flags() & (class::KEYSPACE | class::KEYEVENT) != 0
    }

    /// Whether events of `class` are published.
    pub fn wants(&self, class: u16) -> bool {
        let flags = self.flags();
        flags & class != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
    }

    /// Notes `event` on `key`, if its class is published.
    pub fn raise(&mut self, class: u16, event: &'static str, key: &[u8]) {
        if self.wants(class) {
            self.pending.push((event, Bytes::copy_from_slice(key)));
        }
    }

    /// Whether events wait.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The `(channel, message)` pairs to publish, in the order raised: for each event its
    /// keyspace message, then its keyevent message.
    pub fn take(&mut self) -> Vec<(Bytes, Bytes)> {
        let flags = self.flags();
        let mut out = Vec::with_capacity(self.pending.len() * 2);
        for (event, key) in self.pending.drain(..) {
            if flags & class::KEYSPACE != 0 {
                let mut channel = b"__keyspace@0__:".to_vec();
                channel.extend_from_slice(&key);
                out.push((channel.into(), Bytes::from_static(event.as_bytes())));
            }
            if flags & class::KEYEVENT != 0 {
                out.push((format!("__keyevent@0__:{event}").into(), key));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_back_as_redis_writes_them() {
        for (given, shown) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("", ""),
            ("En", "En"),
        ] {
            assert_eq!(render(parse(given).unwrap()), shown, "{given}");
        }
        assert_eq!(parse("Kq"), None);
    }

    #[test]
    fn events_wait_only_when_their_class_and_a_channel_kind_are_on() {
        let mut notices = Notices::default();
        notices.flags.store(parse("Kl").unwrap(), Ordering::Relaxed);
        notices.raise(class::STRING, "set", b"k");
        notices.raise(class::LIST, "lpush", b"q");
        assert_eq!(
            notices.take(),
            vec![(Bytes::from("__keyspace@0__:q"), Bytes::from("lpush"))]
        );
        notices.flags.store(parse("l").unwrap(), Ordering::Relaxed);
        notices.raise(class::LIST, "lpush", b"q");
        assert!(notices.is_empty(), "no channel kind chosen");
    }
}
