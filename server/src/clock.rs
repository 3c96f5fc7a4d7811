//! The server clock: milliseconds since the process started, monotonic.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant all deadlines are measured from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds from `epoch()` to `at`.
pub fn millis_at(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_millis() as u64
}

/// Milliseconds from `epoch()` to now.
pub fn now_millis() -> u64 {
    millis_at(Instant::now())
}
