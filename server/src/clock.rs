//! The server clock: Unix milliseconds from the wall clock, never stepping back on a thread.
//!
//! Deadlines are stored as absolute times on this clock, so a log or snapshot written by
//! one run means the same instants to the next: whatever lapsed while the server was down
//! has lapsed when it loads. Clients compute PXAT, EXAT and PEXPIREAT deadlines from their
//! own wall clocks (or from TIME), so the clock follows the host's wall clock rather than
//! a reading taken at start and advanced by a monotonic clock, which drifted from it by
//! milliseconds a minute on a virtual machine whose clock is being disciplined. A step
//! back of the wall clock is held at the highest reading this thread has seen until the
//! wall clock catches up, so on one shard time never runs backwards.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static START: OnceLock<Instant> = OnceLock::new();

thread_local! {
    /// The highest reading this thread has returned.
    static HIGHEST: Cell<u64> = const { Cell::new(0) };
}

/// The instant the clock started from (the first call fixes it).
pub fn epoch() -> Instant {
    *START.get_or_init(Instant::now)
}

fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
}

/// The clock's reading now, in Unix milliseconds.
pub fn now_millis() -> u64 {
    let wall = wall_millis();
    HIGHEST.with(|highest| {
        let reading = wall.max(highest.get());
        highest.set(reading);
        reading
    })
}

/// The clock's reading at `at` (an instant just past or soon to come), in Unix
/// milliseconds.
pub fn millis_at(at: Instant) -> u64 {
    let (now, millis) = (Instant::now(), now_millis());
    match at.checked_duration_since(now) {
        Some(ahead) => millis + ahead.as_millis() as u64,
        None => millis.saturating_sub(now.duration_since(at).as_millis() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_the_wall_clock_and_never_steps_back() {
        let mut last = 0;
        for _ in 0..100_000 {
            let reading = now_millis();
            assert!(reading >= last, "{reading} after {last}");
            last = reading;
        }
        let wall = wall_millis();
        assert!(
            wall.abs_diff(now_millis()) <= 5,
            "{wall} against {}",
            now_millis()
        );
    }

    #[test]
    fn an_instant_converts_to_the_reading_then() {
        let before = Instant::now() - std::time::Duration::from_millis(1_500);
        let after = Instant::now() + std::time::Duration::from_millis(2_000);
        let now = now_millis();
        assert!(millis_at(before).abs_diff(now - 1_500) <= 5);
        assert!(millis_at(after).abs_diff(now + 2_000) <= 5);
    }
}
