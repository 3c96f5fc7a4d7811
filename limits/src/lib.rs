//! Rate-limit state and decisions: sliding-window counters and GCRA, O(1) memory per key.
//!
//! Sliding window: two fixed buckets aligned to the window, the previous one weighted by
//! how much of it still overlaps the sliding window. It assumes the previous bucket's
//! requests were spread evenly, so the estimate differs from an exact sliding log by at
//! most the previous bucket's count, in either direction; within one bucket the limit is
//! exact. Rounding is upward, so rounding itself never lets an extra request through.
//!
//! GCRA (the virtual-scheduling form of ITU-T I.371): one "theoretical arrival time" per
//! key; a request is allowed if it does not arrive earlier than the burst allowance lets
//! it. Equivalent to a token bucket of `burst` tokens refilled at `limit / window`.

/// One limit: at most `limit` units per `window_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Units allowed per window; at least 1.
    pub limit: u64,
    /// Window length in milliseconds; at least 1.
    pub window_ms: u64,
}

/// One sliding-window tier's counters: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Start of the current bucket, in ms, a multiple of the window length.
    start: u64,
    /// Units counted in the previous bucket.
    prev: u32,
    /// Units counted in the current bucket.
    curr: u32,
}

/// One GCRA key's state: the theoretical arrival time, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gcra {
    tat_us: u64,
}

/// What a check answers: everything an HTTP 429 with RateLimit headers needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Units that could still be spent now.
    pub remaining: u64,
    /// Milliseconds until the limit is fully available again.
    pub reset_after_ms: u64,
    /// Milliseconds until this request would be allowed: 0 if it is, -1 if it never can be.
    pub retry_after_ms: i64,
}

impl Decision {
    /// Combines the decisions of several tiers: allowed only if all allow; the tightest
    /// remaining; the longest waits.
    pub fn all(decisions: impl IntoIterator<Item = Decision>) -> Decision {
        let mut combined = Decision {
            allowed: true,
            remaining: u64::MAX,
            reset_after_ms: 0,
            retry_after_ms: 0,
        };
        for d in decisions {
            combined.allowed &= d.allowed;
            combined.remaining = combined.remaining.min(d.remaining);
            combined.reset_after_ms = combined.reset_after_ms.max(d.reset_after_ms);
            combined.retry_after_ms = match (combined.retry_after_ms, d.retry_after_ms) {
                (-1, _) | (_, -1) => -1,
                (a, b) => a.max(b),
            };
        }
        combined
    }
}

impl Window {
    /// The state as saved: bucket start (ms), previous and current bucket counts.
    pub fn to_parts(&self) -> (u64, u32, u32) {
        (self.start, self.prev, self.curr)
    }

    /// The state `to_parts` gave.
    pub fn from_parts((start, prev, curr): (u64, u32, u32)) -> Window {
        Window { start, prev, curr }
    }

    /// Moves the buckets forward to the bucket holding `now`.
    pub fn roll(&mut self, now: u64, window_ms: u64) {
        let start = now - now % window_ms;
        if start == self.start {
            return;
        }
        self.prev = if start == self.start + window_ms {
            self.curr
        } else {
            0
        };
        self.curr = 0;
        self.start = start;
    }

    /// The weighted count of the sliding window ending at `now` (after `roll`).
    pub fn estimate(&self, now: u64, window_ms: u64) -> u64 {
        let left_of_prev = window_ms - (now - self.start);
        u64::from(self.curr) + (u64::from(self.prev) * left_of_prev).div_ceil(window_ms)
    }

    /// Decides whether `cost` more units fit under `tier` at `now`, without consuming.
    pub fn decide(&self, tier: Tier, now: u64, cost: u64) -> Decision {
        let window = tier.window_ms;
        let elapsed = now - self.start;
        let estimate = self.estimate(now, window);
        let allowed = estimate + cost <= tier.limit;
        let (prev, curr) = (u64::from(self.prev), u64::from(self.curr));
        let retry_after_ms = if allowed {
            0
        } else if cost > tier.limit {
            -1
        } else if curr + cost <= tier.limit {
            // Fits later in this bucket, once enough of the previous one has slid out.
            let room = tier.limit - curr - cost;
            (window - elapsed).saturating_sub(room * window / prev.max(1)) as i64
        } else {
            // Fits only in the next bucket, once enough of this one has slid out.
            let room = tier.limit - cost;
            ((window - elapsed) + window.saturating_sub(room * window / curr.max(1))) as i64
        };
        let counted = if allowed { estimate + cost } else { estimate };
        let curr_after = if allowed { curr + cost } else { curr };
        let reset_after_ms = if curr_after > 0 {
            window - elapsed + window
        } else if prev > 0 {
            window - elapsed
        } else {
            0
        };
        Decision {
            allowed,
            remaining: tier.limit.saturating_sub(counted),
            reset_after_ms,
            retry_after_ms,
        }
    }

    /// Counts `cost` units in the current bucket.
    pub fn consume(&mut self, cost: u64) {
        self.curr = self
            .curr
            .saturating_add(u32::try_from(cost).unwrap_or(u32::MAX));
    }

    /// When this state stops mattering: both buckets have slid out of the window.
    pub fn idle_deadline(&self, window_ms: u64) -> u64 {
        self.start + 2 * window_ms
    }
}

impl Gcra {
    /// The state as saved: the theoretical arrival time in microseconds.
    pub fn to_parts(&self) -> u64 {
        self.tat_us
    }

    /// The state `to_parts` gave.
    pub fn from_parts(tat_us: u64) -> Gcra {
        Gcra { tat_us }
    }

    /// Decides, and if `consume` also records, a request of `cost` units.
    pub fn check(
        &mut self,
        tier: Tier,
        burst: u64,
        now_ms: u64,
        cost: u64,
        consume: bool,
    ) -> Decision {
        let now = now_ms * 1000;
        let interval = (tier.window_ms * 1000 / tier.limit).max(1);
        let burst = if burst == 0 { tier.limit } else { burst };
        let tolerance = interval * burst;
        let tat = self.tat_us.max(now);
        let new_tat = tat + interval * cost;
        let allow_at = new_tat.saturating_sub(tolerance);
        let allowed = now >= allow_at;
        let ms = |us: u64| us.div_ceil(1000);
        if !allowed {
            let retry_after_ms = if cost > burst {
                -1
            } else {
                ms(allow_at - now) as i64
            };
            return Decision {
                allowed,
                remaining: (now + tolerance).saturating_sub(tat) / interval,
                reset_after_ms: ms(tat - now),
                retry_after_ms,
            };
        }
        if consume {
            self.tat_us = new_tat;
        }
        Decision {
            allowed,
            remaining: (now + tolerance - new_tat) / interval,
            reset_after_ms: ms(new_tat - now),
            retry_after_ms: 0,
        }
    }

    /// When this state stops mattering: the theoretical arrival time has passed.
    pub fn idle_deadline(&self) -> u64 {
        self.tat_us.div_ceil(1000) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn tier(limit: u64, window_ms: u64) -> Tier {
        Tier { limit, window_ms }
    }

    #[test]
    fn previous_bucket_slides_out_linearly() {
        let mut w = Window::default();
        let t = tier(10, 1000);
        w.roll(500, 1000);
        for _ in 0..10 {
            assert!(w.decide(t, 500, 1).allowed);
            w.consume(1);
        }
        let denied = w.decide(t, 900, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 0);
        // At 1250 a quarter of the previous bucket has slid out: estimate ceil(10 * 0.75) = 8.
        w.roll(1250, 1000);
        assert_eq!(w.estimate(1250, 1000), 8);
        assert_eq!(w.decide(t, 1250, 2).remaining, 0);
        assert!(!w.decide(t, 1250, 3).allowed);
        // Two buckets later everything is gone.
        w.roll(3000, 1000);
        assert_eq!(w.estimate(3000, 1000), 0);
    }

    #[test]
    fn retry_after_is_when_the_request_first_fits() {
        let t = tier(10, 1000);
        let mut w = Window::default();
        w.roll(0, 1000);
        w.consume(10);
        w.roll(1000, 1000);
        let denied = w.decide(t, 1000, 1);
        assert!(!denied.allowed);
        let at = 1000 + denied.retry_after_ms as u64;
        let mut later = w;
        later.roll(at, 1000);
        assert!(
            later.decide(t, at, 1).allowed,
            "allowed once retry_after has passed"
        );
        let mut before = w;
        before.roll(at - 1, 1000);
        assert!(
            !before.decide(t, at - 1, 1).allowed,
            "and not a millisecond sooner"
        );
        assert_eq!(
            w.decide(t, 1000, 11).retry_after_ms,
            -1,
            "more than the limit never fits"
        );
    }

    proptest! {
        /// Against an exact sliding log of the allowed requests, the estimate is off by at
        /// most the previous bucket's count, and no bucket ever holds more than the limit.
        #[test]
        fn sliding_estimate_is_within_the_documented_bound(
            gaps in proptest::collection::vec(0u64..120, 1..400),
            limit in 1u64..50,
            window in 50u64..2000,
        ) {
            let t = tier(limit, window);
            let mut w = Window::default();
            let mut log: VecDeque<u64> = VecDeque::new();
            let mut now = 10_000;
            for gap in gaps {
                now += gap;
                w.roll(now, window);
                while log.front().is_some_and(|&at| at + window <= now) {
                    log.pop_front();
                }
                let exact = log.len() as u64;
                let estimate = w.estimate(now, window);
                prop_assert!(
                    estimate.abs_diff(exact) <= u64::from(w.prev),
                    "estimate {estimate}, exact {exact}, previous bucket {}", w.prev
                );
                let decision = w.decide(t, now, 1);
                if decision.allowed {
                    w.consume(1);
                    log.push_back(now);
                }
                // Never more than the limit inside any bucket.
                prop_assert!(u64::from(w.curr) <= limit);
            }
        }

        /// GCRA against the reference virtual-scheduling algorithm, decision by decision.
        #[test]
        fn gcra_matches_the_reference_definition(
            gaps in proptest::collection::vec(0u64..50, 1..300),
            limit in 1u64..40,
            window in 100u64..5000,
            burst in 1u64..10,
        ) {
            let t = tier(limit, window);
            let interval = (window * 1000 / limit).max(1);
            let tolerance = interval * (burst - 1);
            let mut gcra = Gcra::default();
            let mut reference_tat = 0u64;
            let mut now_ms = 0;
            for gap in gaps {
                now_ms += gap;
                let arrival = now_ms * 1000;
                // ITU-T I.371 virtual scheduling: conforming unless TAT > arrival + L.
                let conforming = reference_tat <= arrival + tolerance;
                if conforming {
                    reference_tat = reference_tat.max(arrival) + interval;
                }
                let decision = gcra.check(t, burst, now_ms, 1, true);
                prop_assert_eq!(decision.allowed, conforming, "at {} ms", now_ms);
            }
        }
    }

    #[test]
    fn gcra_paces_after_the_burst() {
        let t = tier(10, 1000);
        let mut g = Gcra::default();
        for _ in 0..3 {
            assert!(g.check(t, 3, 0, 1, true).allowed);
        }
        let denied = g.check(t, 3, 0, 1, true);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_ms, 100, "one emission interval");
        assert!(g.check(t, 3, 100, 1, true).allowed);
        assert_eq!(
            g.check(t, 3, 100, 4, false).retry_after_ms,
            -1,
            "above the burst never fits"
        );
    }

    #[test]
    fn tiers_combine_to_the_strictest() {
        let ok = Decision {
            allowed: true,
            remaining: 5,
            reset_after_ms: 10,
            retry_after_ms: 0,
        };
        let no = Decision {
            allowed: false,
            remaining: 0,
            reset_after_ms: 50,
            retry_after_ms: 30,
        };
        assert_eq!(
            Decision::all([ok, no]),
            Decision {
                allowed: false,
                remaining: 0,
                reset_after_ms: 50,
                retry_after_ms: 30
            }
        );
    }
}
