//! A rate limiter that keeps deciding when the server cannot be reached: fail open, fail
//! closed, or count locally, behind a circuit breaker that trips after consecutive link
//! failures and probes the server again once per interval until it answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_limits::{Tier, Window};

use crate::{Client, Error, RateDecision, Result};

/// What to answer while the server is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Allow everything (availability over protection).
    FailOpen,
    /// Deny everything (protection over availability).
    FailClosed,
    /// Count in this process with the same sliding-window algorithm as the server; each
    /// client process then enforces the limit on its own share of the traffic.
    Local,
}

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The server.
    Server,
    /// The fallback, because the server could not be reached.
    Fallback,
}

/// A decision and who made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: RateDecision,
    /// Whether it came from the server or the fallback.
    pub source: Source,
}

/// Circuit-breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive link failures that open the breaker.
    pub failures_to_open: u32,
    /// How long the breaker stays open before one call probes the server.
    pub probe_interval: Duration,
    /// How long one server call may take before it counts as a failure.
    pub call_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures_to_open: 3,
            probe_interval: Duration::from_millis(500),
            call_timeout: Duration::from_millis(250),
        }
    }
}

enum Breaker {
    Closed { failures: u32 },
    Open { probe_at: Instant },
}

/// A rate limiter on one client with a fallback for when the server is unreachable.
pub struct RateLimiter {
    client: Client,
    fallback: Fallback,
    config: BreakerConfig,
    breaker: Mutex<Breaker>,
    local: Mutex<HashMap<Bytes, Vec<Window>>>,
    epoch: Instant,
}

impl RateLimiter {
    /// A limiter using `client`, answering with `fallback` while the server is unreachable.
    pub fn new(client: Client, fallback: Fallback, config: BreakerConfig) -> Self {
        Self {
            client,
            fallback,
            config,
            breaker: Mutex::new(Breaker::Closed { failures: 0 }),
            local: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Whether the breaker is open (the server is being bypassed).
    pub fn is_open(&self) -> bool {
        matches!(
            *self.breaker.lock().unwrap_or_else(|e| e.into_inner()),
            Breaker::Open { .. }
        )
    }

    /// Checks `cost` units of `key` against every `(limit, window)` tier.
    ///
    /// # Errors
    /// Only the server's own refusals (`Error::Server`, e.g. a bad limit); link failures
    /// are answered by the fallback.
    pub async fn check(
        &self,
        key: impl Into<Bytes>,
        tiers: &[(u64, Duration)],
        cost: u64,
    ) -> Result<Verdict> {
        let key = key.into();
        if self.should_call_server() {
            let mut request = self.client.rate_limit(key.clone()).cost(cost);
            for &(limit, window) in tiers {
                request = request.limit(limit, window);
            }
            match tokio::time::timeout(self.config.call_timeout, request.check()).await {
                Ok(Ok(decision)) => {
                    self.record(true);
                    return Ok(Verdict {
                        decision,
                        source: Source::Server,
                    });
                }
                Ok(Err(error @ (Error::Server(_) | Error::InvalidArgument(_)))) => {
                    return Err(error)
                }
                Ok(Err(_)) | Err(_) => self.record(false),
            }
        }
        Ok(Verdict {
            decision: self.fall_back(key, tiers, cost),
            source: Source::Fallback,
        })
    }

    /// Closed: always. Open: only once the probe time has come, and then only this call
    /// (the probe time moves on so concurrent calls keep using the fallback).
    fn should_call_server(&self) -> bool {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *breaker {
            Breaker::Closed { .. } => true,
            Breaker::Open { probe_at } => {
                let now = Instant::now();
                if now < *probe_at {
                    return false;
                }
                *probe_at = now + self.config.probe_interval;
                true
            }
        }
    }

    fn record(&self, reached: bool) {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        *breaker = match (&*breaker, reached) {
            (_, true) => Breaker::Closed { failures: 0 },
            (Breaker::Closed { failures }, false)
                if failures + 1 < self.config.failures_to_open =>
            {
                Breaker::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => Breaker::Open {
                probe_at: Instant::now() + self.config.probe_interval,
            },
        };
    }

    fn fall_back(&self, key: Bytes, tiers: &[(u64, Duration)], cost: u64) -> RateDecision {
        let refused = RateDecision {
            allowed: false,
            remaining: 0,
            reset_after: self.config.probe_interval,
            retry_after: Some(self.config.probe_interval),
        };
        match self.fallback {
            Fallback::FailOpen => RateDecision {
                allowed: true,
                remaining: 0,
                reset_after: Duration::ZERO,
                retry_after: Some(Duration::ZERO),
            },
            Fallback::FailClosed => refused,
            Fallback::Local => self.local_check(key, tiers, cost).unwrap_or(refused),
        }
    }

    /// The server's sliding-window algorithm, per key, in this process.
    fn local_check(
        &self,
        key: Bytes,
        tiers: &[(u64, Duration)],
        cost: u64,
    ) -> Option<RateDecision> {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).ok()?;
        let tiers: Vec<Tier> = tiers
            .iter()
            .map(|&(limit, window)| Tier {
                limit: limit.max(1),
                window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1),
            })
            .collect();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let windows = local.entry(key).or_default();
        windows.resize(tiers.len(), Window::default());
        let decisions: Vec<_> = windows
            .iter_mut()
            .zip(&tiers)
            .map(|(window, tier)| {
                window.roll(now, tier.window_ms);
                window.decide(*tier, now, cost)
            })
            .collect();
        let decision = tessera_limits::Decision::all(decisions);
        if decision.allowed {
            windows.iter_mut().for_each(|w| w.consume(cost));
        }
        Some(RateDecision {
            allowed: decision.allowed,
            remaining: decision.remaining,
            reset_after: Duration::from_millis(decision.reset_after_ms),
            retry_after: (decision.retry_after_ms >= 0)
                .then(|| Duration::from_millis(decision.retry_after_ms as u64)),
        })
    }
}
