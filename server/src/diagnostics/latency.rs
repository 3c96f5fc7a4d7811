//! The latency monitor: per event (a slow command, an expiry cycle, a table growth, a log
//! sync...), the worst time of each second it took at least the threshold, per shard,
//! merged when read as Redis's LATENCY LATEST and HISTORY answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tessera_protocol::Value;

/// Samples each event keeps, as in Redis.
pub const HISTORY_LEN: usize = 160;

/// A request that ran at least the threshold.
pub const COMMAND: &str = "command";
/// An active-expiry pass.
pub const EXPIRE_CYCLE: &str = "expire-cycle";
/// Keys evicted to make room for a write.
pub const EVICTION_CYCLE: &str = "eviction-cycle";
/// The keyspace's table doubling as a key went in.
pub const TABLE_GROWTH: &str = "table-growth";
/// A request with a large reply (`is_large`, or 1 MiB encoded) that took the threshold.
pub const LARGE_REPLY: &str = "large-reply";
/// A write of the log.
pub const LOG_WRITE: &str = "aof-write";
/// A sync of the log.
pub const LOG_FSYNC: &str = "aof-fsync";
/// One step of a snapshot (the cut walking part of the table).
pub const SNAPSHOT_STEP: &str = "snapshot-step";
/// Slots paused for a migration's last copy.
pub const MIGRATION_PAUSE: &str = "migration-pause";

/// Reply bytes that make a slow request a `large-reply` event too.
pub const LARGE_REPLY_BYTES: usize = 1 << 20;
/// Elements that make an array or map reply large.
pub const LARGE_REPLY_ELEMENTS: usize = 16 << 10;

/// Whether `reply` is large, judged by its outer shape only, so most replies cost one
/// comparison.
pub fn is_large(reply: &Value) -> bool {
    match reply {
        Value::Bytes(bytes) => bytes.len() >= LARGE_REPLY_BYTES,
        Value::Array(items) => items.len() >= LARGE_REPLY_ELEMENTS,
        Value::Map(pairs) => pairs.len() >= LARGE_REPLY_ELEMENTS / 2,
        _ => false,
    }
}

/// One event's samples on one shard.
#[derive(Debug, Clone, Default)]
struct Series {
    /// `(unix seconds, milliseconds)`, oldest first, one per second (its worst).
    samples: VecDeque<(u64, u64)>,
    /// The most milliseconds ever recorded since the last reset.
    max_ms: u64,
}

/// One shard's monitor; `threshold_ms` (node-wide, 0 = off) decides what it keeps.
#[derive(Debug, Clone)]
pub struct LatencyMonitor {
    threshold_ms: Arc<AtomicU64>,
    series: BTreeMap<&'static str, Series>,
}

impl Default for LatencyMonitor {
    fn default() -> Self {
        LatencyMonitor::new(Arc::default())
    }
}

/// What LATENCY LATEST shows of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    /// Unix seconds of the latest sample.
    pub at: u64,
    /// Its milliseconds.
    pub ms: u64,
    /// The most milliseconds seen.
    pub max_ms: u64,
}

impl LatencyMonitor {
    /// A monitor that keeps samples of at least `threshold_ms` (0: none).
    pub fn new(threshold_ms: Arc<AtomicU64>) -> Self {
        LatencyMonitor {
            threshold_ms,
            series: BTreeMap::new(),
        }
    }

    /// The threshold now, in milliseconds (0: off).
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// Whether an event that took `elapsed` is kept.
    pub fn wants(&self, elapsed: std::time::Duration) -> bool {
        let threshold = self.threshold_ms();
        threshold > 0 && elapsed.as_millis() as u64 >= threshold
    }

    /// Records `event` taking `elapsed`, if it is at least the threshold.
    pub fn note(&mut self, event: &'static str, elapsed: std::time::Duration) {
        if self.wants(elapsed) {
            self.record(event, unix_secs(), elapsed.as_millis() as u64);
        }
    }

    /// Adds a sample at `at` (Unix seconds): a second's samples keep only the worst.
    pub fn record(&mut self, event: &'static str, at: u64, ms: u64) {
        let series = self.series.entry(event).or_default();
        series.max_ms = series.max_ms.max(ms);
        match series.samples.back_mut() {
            Some((second, worst)) if *second == at => *worst = (*worst).max(ms),
            _ => {
                series.samples.push_back((at, ms));
                if series.samples.len() > HISTORY_LEN {
                    series.samples.pop_front();
                }
            }
        }
    }

    /// Each event's latest sample and worst.
    pub fn latest(&self) -> Vec<(&'static str, Latest)> {
        self.series
            .iter()
            .filter_map(|(event, series)| {
                let (at, ms) = *series.samples.back()?;
                Some((
                    *event,
                    Latest {
                        at,
                        ms,
                        max_ms: series.max_ms,
                    },
                ))
            })
            .collect()
    }

    /// One event's samples, oldest first.
    pub fn history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        self.series
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(event))
            .map(|(_, series)| series.samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets the named events (every event when none is named); the names reset.
    pub fn reset(&mut self, events: &[bytes::Bytes]) -> Vec<&'static str> {
        let reset: Vec<&'static str> = self
            .series
            .keys()
            .copied()
            .filter(|name| {
                events.is_empty()
                    || events
                        .iter()
                        .any(|e| name.as_bytes().eq_ignore_ascii_case(e))
            })
            .collect();
        for name in &reset {
            self.series.remove(name);
        }
        reset
    }
}

/// The clock a sample is stamped with.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every shard's latest samples merged: per event the latest of any shard and the worst
/// of all, by event name.
pub fn merged_latest(parts: Vec<Vec<(&'static str, Latest)>>) -> Vec<(&'static str, Latest)> {
    let mut merged: BTreeMap<&'static str, Latest> = BTreeMap::new();
    for (event, latest) in parts.into_iter().flatten() {
        merged
            .entry(event)
            .and_modify(|seen| {
                if (latest.at, latest.ms) > (seen.at, seen.ms) {
                    seen.at = latest.at;
                    seen.ms = latest.ms;
                }
                seen.max_ms = seen.max_ms.max(latest.max_ms);
            })
            .or_insert(latest);
    }
    merged.into_iter().collect()
}

/// LATENCY LATEST over every shard's answer.
pub fn merge_latest(parts: Vec<Vec<(&'static str, Latest)>>) -> Value {
    Value::Array(
        merged_latest(parts)
            .into_iter()
            .map(|(event, latest)| {
                Value::Array(vec![
                    Value::text(event),
                    Value::Int(latest.at as i64),
                    Value::Int(latest.ms as i64),
                    Value::Int(latest.max_ms as i64),
                ])
            })
            .collect(),
    )
}

/// LATENCY HISTORY over every shard's samples: the worst of each second, oldest first,
/// the newest `HISTORY_LEN` seconds.
pub fn merge_history(parts: Vec<Vec<(u64, u64)>>) -> Value {
    let mut by_second: BTreeMap<u64, u64> = BTreeMap::new();
    for (at, ms) in parts.into_iter().flatten() {
        let worst = by_second.entry(at).or_default();
        *worst = (*worst).max(ms);
    }
    let skip = by_second.len().saturating_sub(HISTORY_LEN);
    Value::Array(
        by_second
            .into_iter()
            .skip(skip)
            .map(|(at, ms)| Value::Array(vec![Value::Int(at as i64), Value::Int(ms as i64)]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(threshold: u64) -> LatencyMonitor {
        LatencyMonitor::new(Arc::new(AtomicU64::new(threshold)))
    }

    #[test]
    fn keeps_the_worst_of_each_second_and_a_bounded_history() {
        let mut shard = monitor(10);
        shard.record(COMMAND, 100, 12);
        shard.record(COMMAND, 100, 30);
        shard.record(COMMAND, 100, 11);
        shard.record(COMMAND, 101, 15);
        assert_eq!(shard.history(b"command"), [(100, 30), (101, 15)]);
        let latest = shard.latest();
        assert_eq!(
            latest,
            [(
                COMMAND,
                Latest {
                    at: 101,
                    ms: 15,
                    max_ms: 30
                }
            )]
        );
        for second in 0..200 {
            shard.record(EXPIRE_CYCLE, 1000 + second, 1);
        }
        assert_eq!(shard.history(b"expire-cycle").len(), HISTORY_LEN);
        assert_eq!(shard.history(b"expire-cycle")[0].0, 1040);
    }

    #[test]
    fn the_threshold_decides_and_zero_turns_it_off() {
        let mut shard = monitor(0);
        shard.note(COMMAND, std::time::Duration::from_secs(5));
        assert!(shard.latest().is_empty());
        shard.threshold_ms.store(100, Ordering::Relaxed);
        shard.note(COMMAND, std::time::Duration::from_millis(99));
        assert!(shard.latest().is_empty());
        shard.note(COMMAND, std::time::Duration::from_millis(100));
        assert_eq!(shard.latest().len(), 1);
    }

    #[test]
    fn shards_merge_by_event_and_reset_forgets() {
        let mut a = monitor(1);
        let mut b = monitor(1);
        a.record(COMMAND, 10, 50);
        b.record(COMMAND, 12, 20);
        b.record(TABLE_GROWTH, 11, 7);
        let latest = merge_latest(vec![a.latest(), b.latest()]);
        assert_eq!(
            latest,
            Value::Array(vec![
                Value::Array(vec![
                    Value::text("command"),
                    Value::Int(12),
                    Value::Int(20),
                    Value::Int(50)
                ]),
                Value::Array(vec![
                    Value::text("table-growth"),
                    Value::Int(11),
                    Value::Int(7),
                    Value::Int(7)
                ]),
            ])
        );
        let history = merge_history(vec![a.history(b"command"), b.history(b"command")]);
        assert_eq!(
            history,
            Value::Array(vec![
                Value::Array(vec![Value::Int(10), Value::Int(50)]),
                Value::Array(vec![Value::Int(12), Value::Int(20)]),
            ])
        );
        assert_eq!(
            b.reset(&[bytes::Bytes::from_static(b"TABLE-GROWTH")]),
            [TABLE_GROWTH]
        );
        assert_eq!(b.latest().len(), 1);
        assert_eq!(a.reset(&[]), [COMMAND]);
        assert!(a.latest().is_empty());
    }
}
