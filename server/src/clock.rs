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
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The highest reading this thread has returned.
    static HIGHEST: Cell<u64> = const { Cell::new(0) };
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
}
