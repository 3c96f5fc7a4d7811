//! Rate limits: decisions and the builder of a check or peek.

use super::*;

/// A rate-limit answer, ready for `RateLimit-*` and `Retry-After` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Units that could still be spent now.
    pub remaining: u64,
    /// Time until the limit is fully available again.
    pub reset_after: Duration,
    /// Time until this request would be allowed: zero if it is, `None` if it never can be
    /// (its cost exceeds the limit).
    pub retry_after: Option<Duration>,
}

impl RateDecision {
    fn from_reply(reply: &Value) -> Result<RateDecision> {
        let int = |name| reply.get(name).and_then(Value::as_int);
        match (
            reply.get("allowed"),
            int("remaining"),
            int("reset_after_ms"),
            int("retry_after_ms"),
        ) {
            (Some(Value::Bool(allowed)), Some(remaining), Some(reset), Some(retry)) => {
                Ok(RateDecision {
                    allowed: *allowed,
                    remaining: remaining.max(0) as u64,
                    reset_after: Duration::from_millis(reset.max(0) as u64),
                    retry_after: (retry >= 0).then(|| Duration::from_millis(retry as u64)),
                })
            }
            _ => Err(Error::unexpected("a rate-limit decision", reply)),
        }
    }
}

/// A rate limit being described: add tiers (and a cost, or GCRA), then `check` or `peek`.
#[must_use = "a rate limit does nothing until checked"]
pub struct RateLimitBuilder {
    client: Client,
    key: Bytes,
    tiers: Vec<Tier>,
    algorithm: Algorithm,
    cost: u64,
    burst: u64,
}

impl RateLimitBuilder {
    /// Adds a tier: at most `limit` units per `window` (up to four tiers, all enforced).
    pub fn limit(mut self, limit: u64, window: Duration) -> Self {
        self.tiers.push(Tier {
            limit,
            window_ms: millis(window),
        });
        self
    }

    /// Units this request costs (default 1).
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        self
    }

    /// Uses GCRA (even pacing) with up to `burst` units at once; 0 means the limit.
    pub fn gcra(mut self, burst: u64) -> Self {
        self.algorithm = Algorithm::Gcra;
        self.burst = burst;
        self
    }

    fn build(self) -> Result<(Client, RateLimit)> {
        let tiers = Tiers::new(&self.tiers)
            .ok_or_else(|| Error::InvalidArgument("a rate limit needs 1 to 4 tiers".into()))?;
        let limit = RateLimit {
            key: self.key,
            algorithm: self.algorithm,
            cost: self.cost,
            burst: self.burst,
            tiers,
        };
        Ok((self.client, limit))
    }

    /// RL.CHECK: decides and, if allowed, counts the request in every tier.
    ///
    /// # Errors
    /// `InvalidArgument` without tiers; `Server` with `Syntax` for out-of-range values or
    /// `WrongType` if the key holds something else.
    pub async fn check(self) -> Result<RateDecision> {
        let (client, limit) = self.build()?;
        RateDecision::from_reply(
            &client
                .call(Command::Limits(LimitCommand::Check(limit)))
                .await?,
        )
    }

    /// RL.PEEK: what `check` would answer, without counting anything.
    ///
    /// # Errors
    /// As `check`.
    pub async fn peek(self) -> Result<RateDecision> {
        let (client, limit) = self.build()?;
        RateDecision::from_reply(
            &client
                .call(Command::Limits(LimitCommand::Peek(limit)))
                .await?,
        )
    }
}

impl Client {
    /// Starts a rate-limit check on `key`:
    /// `client.rate_limit("api:42").limit(10, secs(1)).limit(1000, hours(1)).check().await`.
    pub fn rate_limit(&self, key: impl Into<Bytes>) -> RateLimitBuilder {
        RateLimitBuilder {
            client: self.clone(),
            key: bytes(key),
            tiers: Vec::new(),
            algorithm: Algorithm::Sliding,
            cost: 1,
            burst: 0,
        }
    }

    /// RL.RESET: forgets a rate limit's state; `true` if there was any.
    ///
    /// # Errors
    /// `Server` with `WrongType` if the key holds something else.
    pub async fn rate_limit_reset(&self, key: impl Into<Bytes>) -> Result<bool> {
        Ok(expect_int(
            self.call(Command::Limits(LimitCommand::Reset(bytes(key))))
                .await?,
        )? == 1)
    }
}
