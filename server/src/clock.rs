//! The server clock: Unix milliseconds, read once at start and advanced by a monotonic clock.
//!
//! Deadlines are stored as absolute times on this clock, so a log or snapshot written by
//! one run means the same instants to the next: whatever lapsed while the server was down
//! has lapsed when it loads. Within a run the clock never steps back, whatever the wall
//! clock does.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The instant the clock started and the Unix time it read then, to the nanosecond, so
/// readings do not lag the wall clock by the millisecond's fraction at start.
static START: OnceLock<(Instant, std::time::Duration)> = OnceLock::new();

fn start() -> (Instant, std::time::Duration) {
    *START.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (Instant::now(), unix)
    })
}

/// The instant the clock started from.
pub fn epoch() -> Instant {
    start().0
}

/// The clock's reading at `at`, in Unix milliseconds.
pub fn millis_at(at: Instant) -> u64 {
    let (instant, unix) = start();
    (unix + at.saturating_duration_since(instant)).as_millis() as u64
}

/// The clock's reading now, in Unix milliseconds.
pub fn now_millis() -> u64 {
    millis_at(Instant::now())
}
