//! The server clock: Unix milliseconds, read once at start and advanced by a monotonic clock.
//!
//! Deadlines are stored as absolute times on this clock, so a log or snapshot written by
//! one run means the same instants to the next: whatever lapsed while the server was down
//! has lapsed when it loads. Within a run the clock never steps back, whatever the wall
//! clock does.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The instant the clock started and the Unix time it read then.
static START: OnceLock<(Instant, u64)> = OnceLock::new();

fn start() -> (Instant, u64) {
    *START.get_or_init(|| {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        (Instant::now(), unix_ms)
    })
}

/// The instant the clock started from.
pub fn epoch() -> Instant {
    start().0
}

/// The clock's reading at `at`, in Unix milliseconds.
pub fn millis_at(at: Instant) -> u64 {
    let (instant, unix_ms) = start();
    unix_ms + at.saturating_duration_since(instant).as_millis() as u64
}

/// The clock's reading now, in Unix milliseconds.
pub fn now_millis() -> u64 {
    millis_at(Instant::now())
}
