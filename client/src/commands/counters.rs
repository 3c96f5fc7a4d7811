//! Dedup marks, bounded counters and id blocks.

use super::*;

/// What COUNTER.TAKE did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// Whether the amount was taken.
    pub taken: bool,
    /// The counter's value afterwards (unchanged when nothing was taken).
    pub remaining: i64,
}

impl Client {
    /// DEDUP: records `key` for `ttl` unless already recorded; `true` on the first sighting.
    ///
    /// # Errors
    /// `Server` with `InvalidExpire` for a zero or too-long `ttl`.
    pub async fn dedup(&self, key: impl Into<Bytes>, ttl: Duration) -> Result<bool> {
        let reply = self
            .call(Command::Dedup(DedupCommand::Check {
                key: bytes(key),
                ttl_ms: millis(ttl),
            }))
            .await?;
        expect_bool(reply)
    }

    /// DEDUP.MULTI: DEDUP for many keys, one request per owning shard; one answer per key.
    ///
    /// # Errors
    /// As `dedup`.
    pub async fn dedup_many<K: Into<Bytes>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        ttl: Duration,
    ) -> Result<Vec<bool>> {
        let keys = keys.into_iter().map(Into::into).collect();
        let ttl_ms = millis(ttl);
        let split = self
            .fan_out(Command::Dedup(DedupCommand::CheckMany { ttl_ms, keys }))
            .await?;
        reassemble(split, expect_bool)
    }

    /// COUNTER.TAKE: takes `amount` only if the counter stays at or above `floor`.
    ///
    /// # Errors
    /// `Server` with `NotInteger` if the key holds something else.
    pub async fn counter_take(
        &self,
        key: impl Into<Bytes>,
        amount: u64,
        floor: i64,
    ) -> Result<Take> {
        let reply = self
            .call(Command::Counters(CounterCommand::Take {
                key: bytes(key),
                amount,
                floor,
            }))
            .await?;
        match (reply.get("taken"), reply.get("remaining")) {
            (Some(Value::Bool(taken)), Some(Value::Int(remaining))) => Ok(Take {
                taken: *taken,
                remaining: *remaining,
            }),
            _ => Err(Error::unexpected("{taken, remaining}", &reply)),
        }
    }

    /// COUNTER.PUT: adds `amount` to a counter and returns the new value.
    ///
    /// # Errors
    /// `Server` with `NotInteger` on overflow or a non-integer value.
    pub async fn counter_put(&self, key: impl Into<Bytes>, amount: u64) -> Result<i64> {
        expect_int(
            self.call(Command::Counters(CounterCommand::Put {
                key: bytes(key),
                amount,
            }))
            .await?,
        )
    }

    /// ID.RANGE: the next block of `size` ids, disjoint from every other block handed out.
    ///
    /// # Errors
    /// `Server` with `Syntax` for a size outside 1..=2^40, `NotInteger` on overflow.
    pub async fn id_range(
        &self,
        key: impl Into<Bytes>,
        size: u64,
    ) -> Result<std::ops::RangeInclusive<i64>> {
        match self
            .call(Command::Counters(CounterCommand::IdRange {
                key: bytes(key),
                size,
            }))
            .await?
        {
            Value::Array(bounds) => match bounds[..] {
                [Value::Int(first), Value::Int(last)] => Ok(first..=last),
                _ => Err(Error::Protocol("ID.RANGE answers [first, last]".into())),
            },
            other => Err(Error::unexpected("[first, last]", &other)),
        }
    }
}
