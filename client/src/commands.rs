//! Typed methods for each command, following the command table.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;
use tessera_protocol::{
    AdminCommand, CounterCommand, DedupCommand, IdemCommand, InventoryCommand, KeyCommand,
    LimitCommand, PresenceCommand, TimelineCommand, VersionedCommand,
};

use bytes::Bytes;
use tessera_protocol::commands::{Algorithm, Cursor, RateLimit, Tier, Tiers};
use tessera_protocol::{Combine, Command, SetArgs, SetCondition, SetExpiry, Value};

use crate::{Client, Error, Result};

/// A key's remaining time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

fn bytes(value: impl Into<Bytes>) -> Bytes {
    value.into()
}

fn expect_int(value: Value) -> Result<i64> {
    value
        .as_int()
        .ok_or_else(|| Error::unexpected("an integer", &value))
}

fn expect_optional_bytes(value: Value) -> Result<Option<Bytes>> {
    match value {
        Value::Nil => Ok(None),
        Value::Bytes(b) => Ok(Some(b)),
        other => Err(Error::unexpected("bytes or nil", &other)),
    }
}

/// Each part's array answer put back at its keys' positions in the caller's order, as the
/// split's combine says.
fn reassemble<T: Default + Clone>(
    (combine, parts): (Combine, Vec<Value>),
    convert: fn(Value) -> Result<T>,
) -> Result<Vec<T>> {
    let Combine::Positions { positions, len } = combine else {
        return Err(Error::Protocol("a split that answers per key".into()));
    };
    let parts = parts
        .into_iter()
        .map(|part| match part {
            Value::Array(items) => items.into_iter().map(convert).collect(),
            other => Err(Error::unexpected("an array", &other)),
        })
        .collect::<Result<Vec<Vec<T>>>>()?;
    Ok(Combine::place(&positions, len, parts, T::default()))
}

fn expect_ok(value: Value) -> Result<()> {
    match value {
        Value::Ok => Ok(()),
        other => Err(Error::unexpected("OK", &other)),
    }
}

impl Client {
    /// PING: round-trips to a shard.
    ///
    /// # Errors
    /// Link failures.
    pub async fn ping(&self) -> Result<()> {
        match self.call(Command::Admin(AdminCommand::Ping(None))).await? {
            Value::Text(t) if t == "PONG" => Ok(()),
            other => Err(Error::unexpected("PONG", &other)),
        }
    }

    /// GET: the value of `key`, or `None`.
    ///
    /// # Errors
    /// Link failures.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>> {
        expect_optional_bytes(
            self.call(Command::Keys(KeyCommand::Get(bytes(key))))
                .await?,
        )
    }

    /// SET: returns a builder; await it (true if written) or add options first:
    /// `client.set("k", "v").ex(30).nx().await`.
    pub fn set(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> SetBuilder {
        SetBuilder {
            client: self.clone(),
            args: SetArgs {
                key: bytes(key),
                value: bytes(value),
                condition: SetCondition::Always,
                expiry: SetExpiry::Clear,
                get: false,
            },
        }
    }

    /// DEL: removes keys (split by shard), returning how many existed.
    ///
    /// # Errors
    /// Link failures; an empty key list is refused by the server.
    pub async fn del<K: Into<Bytes>>(&self, keys: impl IntoIterator<Item = K>) -> Result<u64> {
        self.sum_over(keys, |keys| Command::Keys(KeyCommand::Del(keys)))
            .await
    }

    /// EXISTS: how many of the keys exist (split by shard).
    ///
    /// # Errors
    /// Link failures.
    pub async fn exists<K: Into<Bytes>>(&self, keys: impl IntoIterator<Item = K>) -> Result<u64> {
        self.sum_over(keys, |keys| Command::Keys(KeyCommand::Exists(keys)))
            .await
    }

    async fn sum_over<K: Into<Bytes>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        build: fn(Vec<Bytes>) -> Command,
    ) -> Result<u64> {
        let keys: Vec<Bytes> = keys.into_iter().map(Into::into).collect();
        let (_, parts) = self.fan_out(build(keys)).await?;
        parts
            .into_iter()
            .map(|value| expect_int(value).map(|n| n as u64))
            .sum()
    }

    /// EXPIRE: sets a time to live; false if the key does not exist.
    ///
    /// # Errors
    /// `Server` with `InvalidExpire` for an out-of-range time.
    pub async fn expire(&self, key: impl Into<Bytes>, ttl: Duration) -> Result<bool> {
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let reply = self
            .call(Command::Keys(KeyCommand::PExpire {
                key: bytes(key),
                millis,
            }))
            .await?;
        Ok(expect_int(reply)? == 1)
    }

    /// TTL: how long until `key` expires, to the millisecond.
    ///
    /// # Errors
    /// Link failures.
    pub async fn ttl(&self, key: impl Into<Bytes>) -> Result<Ttl> {
        Ok(
            match expect_int(
                self.call(Command::Keys(KeyCommand::PTtl(bytes(key))))
                    .await?,
            )? {
                -2 => Ttl::Missing,
                -1 => Ttl::Persistent,
                ms => Ttl::Expires(Duration::from_millis(ms.max(0) as u64)),
            },
        )
    }

    /// PERSIST: removes the expiry; false if there was none.
    ///
    /// # Errors
    /// Link failures.
    pub async fn persist(&self, key: impl Into<Bytes>) -> Result<bool> {
        Ok(expect_int(
            self.call(Command::Keys(KeyCommand::Persist(bytes(key))))
                .await?,
        )? == 1)
    }

    /// INCRBY: adds `delta` and returns the new value.
    ///
    /// # Errors
    /// `Server` with `NotInteger` if the value is not an integer or would overflow.
    pub async fn incr_by(&self, key: impl Into<Bytes>, delta: i64) -> Result<i64> {
        expect_int(
            self.call(Command::Keys(KeyCommand::IncrBy {
                key: bytes(key),
                delta,
            }))
            .await?,
        )
    }

    /// DECRBY: subtracts `delta` and returns the new value.
    ///
    /// # Errors
    /// As `incr_by`.
    pub async fn decr_by(&self, key: impl Into<Bytes>, delta: i64) -> Result<i64> {
        expect_int(
            self.call(Command::Keys(KeyCommand::DecrBy {
                key: bytes(key),
                delta,
            }))
            .await?,
        )
    }

    /// MGET: values of many keys in the order given, fetched from each owner in parallel.
    ///
    /// # Errors
    /// Link failures.
    pub async fn mget<K: Into<Bytes>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        let keys = keys.into_iter().map(Into::into).collect();
        let split = self.fan_out(Command::Keys(KeyCommand::MGet(keys))).await?;
        reassemble(split, expect_optional_bytes)
    }

    /// MSET: sets many keys, one request per owning shard (atomic per shard).
    ///
    /// # Errors
    /// Link failures.
    pub async fn mset<K: Into<Bytes>, V: Into<Bytes>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        let pairs: Vec<(Bytes, Bytes)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let (_, parts) = self.fan_out(Command::Keys(KeyCommand::MSet(pairs))).await?;
        parts.into_iter().try_for_each(expect_ok)
    }

    /// DBSIZE: keys on the node.
    ///
    /// # Errors
    /// Link failures.
    pub async fn dbsize(&self) -> Result<u64> {
        Ok(expect_int(self.call(Command::Admin(AdminCommand::DbSize)).await?)? as u64)
    }

    /// FLUSHALL: deletes every key on the node.
    ///
    /// # Errors
    /// Link failures.
    pub async fn flushall(&self) -> Result<()> {
        expect_ok(self.call(Command::Admin(AdminCommand::FlushAll)).await?)
    }

    /// INFO: the node's statistics map.
    ///
    /// # Errors
    /// Link failures.
    pub async fn info(&self) -> Result<Value> {
        self.call(Command::Admin(AdminCommand::Info)).await
    }
}

/// What COUNTER.TAKE did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// Whether the amount was taken.
    pub taken: bool,
    /// The counter's value afterwards (unchanged when nothing was taken).
    pub remaining: i64,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn expect_bool(value: Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(Error::unexpected("a bool", &other)),
    }
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

/// Where an idempotent operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idem {
    /// Go ahead: this caller holds the operation; complete it with `token`.
    New {
        /// Token to pass to `idem_complete`.
        token: u64,
    },
    /// Another caller holds the operation; retry after the wait (its lease's remainder).
    InProgress {
        /// Holder's token.
        token: u64,
        /// Time left on the holder's lease.
        retry_after: Duration,
    },
    /// Already done: this is the stored result; do not run the operation again.
    Done(Bytes),
}

impl Idem {
    fn from_reply(reply: &Value) -> Result<Idem> {
        let int = |name| reply.get(name).and_then(Value::as_int);
        match reply.get("state") {
            Some(Value::Text(state)) if state == "new" => Ok(Idem::New {
                token: int("token").unwrap_or(0) as u64,
            }),
            Some(Value::Text(state)) if state == "in_progress" => Ok(Idem::InProgress {
                token: int("token").unwrap_or(0) as u64,
                retry_after: Duration::from_millis(int("retry_after_ms").unwrap_or(0).max(0) as u64),
            }),
            Some(Value::Text(state)) if state == "done" => match reply.get("result") {
                Some(Value::Bytes(result)) => Ok(Idem::Done(result.clone())),
                _ => Err(Error::unexpected("a stored result", reply)),
            },
            _ => Err(Error::unexpected("an idempotency record", reply)),
        }
    }
}

impl Client {
    /// IDEM.BEGIN: claims an idempotent operation for `lease`, keeping the record for `ttl`.
    ///
    /// # Errors
    /// `Server` with `InvalidExpire` for out-of-range times, `WrongType` for other keys.
    pub async fn idem_begin(
        &self,
        key: impl Into<Bytes>,
        ttl: Duration,
        lease: Duration,
    ) -> Result<Idem> {
        let command = Command::Idem(IdemCommand::Begin {
            key: bytes(key),
            ttl_ms: millis(ttl),
            lease_ms: millis(lease).max(1),
        });
        Idem::from_reply(&self.call(command).await?)
    }

    /// IDEM.COMPLETE: stores the result of the operation begun with `token`.
    ///
    /// # Errors
    /// `Server` with `Conflict` if the lease was taken over or it is already done,
    /// `NotFound` if the record expired.
    pub async fn idem_complete(
        &self,
        key: impl Into<Bytes>,
        token: u64,
        result: impl Into<Bytes>,
    ) -> Result<()> {
        let command = Command::Idem(IdemCommand::Complete {
            key: bytes(key),
            token,
            result: bytes(result),
        });
        expect_ok(self.call(command).await?)
    }

    /// IDEM.GET: where an operation stands, without claiming it; `None` if unknown.
    ///
    /// # Errors
    /// `Server` with `WrongType` for other keys.
    pub async fn idem_get(&self, key: impl Into<Bytes>) -> Result<Option<Idem>> {
        match self
            .call(Command::Idem(IdemCommand::Get(bytes(key))))
            .await?
        {
            Value::Nil => Ok(None),
            reply => Idem::from_reply(&reply).map(Some),
        }
    }
}

/// What a VSET did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cas {
    /// Whether the value was written.
    pub written: bool,
    /// The new version if written, else the current one (0 if the key does not exist).
    pub version: u64,
}

impl Client {
    /// VGET: the value and its version, or `None`.
    ///
    /// # Errors
    /// `Server` with `WrongType` if the key holds something else.
    pub async fn vget(&self, key: impl Into<Bytes>) -> Result<Option<(Bytes, u64)>> {
        let reply = self
            .call(Command::Versioned(VersionedCommand::Get(bytes(key))))
            .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        match (
            reply.get("value"),
            reply.get("version").and_then(Value::as_int),
        ) {
            (Some(Value::Bytes(value)), Some(version)) => Ok(Some((value.clone(), version as u64))),
            _ => Err(Error::unexpected("{value, version}", &reply)),
        }
    }

    /// VSET: writes `value` if the version is still `if_version` (`Some(0)`: the key must
    /// not exist; `None`: unconditionally), expiring after `ttl` if given.
    ///
    /// # Errors
    /// `Server` with `WrongType` if the key holds something else.
    pub async fn vset(
        &self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        if_version: Option<u64>,
        ttl: Option<Duration>,
    ) -> Result<Cas> {
        let command = Command::Versioned(VersionedCommand::Set {
            key: bytes(key),
            value: bytes(value),
            if_version,
            ttl_ms: ttl.map(|t| millis(t).max(1)),
        });
        let reply = self.call(command).await?;
        match (
            reply.get("ok"),
            reply.get("version").and_then(Value::as_int),
        ) {
            (Some(Value::Bool(written)), Some(version)) => Ok(Cas {
                written: *written,
                version: version as u64,
            }),
            _ => Err(Error::unexpected("{ok, version}", &reply)),
        }
    }
}

/// A SKU's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// Units physically there.
    pub on_hand: i64,
    /// Units held by active reservations.
    pub reserved: i64,
    /// Units that can still be reserved.
    pub available: i64,
    /// Active reservations.
    pub reservations: i64,
}

impl Stock {
    fn from_reply(reply: &Value) -> Result<Stock> {
        let int = |name| reply.get(name).and_then(Value::as_int);
        match (
            int("on_hand"),
            int("reserved"),
            int("available"),
            int("reservations"),
        ) {
            (Some(on_hand), Some(reserved), Some(available), Some(reservations)) => Ok(Stock {
                on_hand,
                reserved,
                available,
                reservations,
            }),
            _ => Err(Error::unexpected("SKU figures", reply)),
        }
    }
}

/// A store's figures over its SKUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFigures {
    /// SKUs in the store.
    pub skus: i64,
    /// SKUs with nothing available.
    pub sold_out: i64,
    /// SKUs at or below their low-stock mark, not sold out.
    pub low_stock: i64,
}

/// How a reserve ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Units are held; confirm or release with `handle` (`sku#id`).
    Held {
        /// Handle to confirm or release with.
        handle: Bytes,
        /// Whether a retry found it already confirmed.
        confirmed: bool,
    },
    /// Not enough units: this many are available.
    Short {
        /// Units available.
        available: i64,
    },
}

/// How a cart reservation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cart {
    /// Every line is held; one handle per line, in order.
    Held(Vec<Bytes>),
    /// Nothing is held; these SKUs were short.
    Short(Vec<Bytes>),
}

fn split_handle(handle: &Bytes) -> Result<(Bytes, Bytes)> {
    let (sku, id) = tessera_protocol::commands::split_reservation_handle(handle)
        .ok_or_else(|| Error::InvalidArgument("a reservation handle looks like sku#id".into()))?;
    Ok((handle.slice_ref(sku), handle.slice_ref(id)))
}

impl Client {
    /// INV.STORE: how many of a store's SKUs are sold out or low; `store` is the hash tag
    /// its SKUs share (`{store}:...`).
    ///
    /// # Errors
    /// Link failures.
    pub async fn inv_store(&self, store: impl Into<Bytes>) -> Result<StoreFigures> {
        let reply = self
            .call(Command::Inventory(InventoryCommand::Store(bytes(store))))
            .await?;
        let int = |name| reply.get(name).and_then(Value::as_int);
        match (int("skus"), int("sold_out"), int("low_stock")) {
            (Some(skus), Some(sold_out), Some(low_stock)) => Ok(StoreFigures {
                skus,
                sold_out,
                low_stock,
            }),
            _ => Err(Error::unexpected("store figures", &reply)),
        }
    }

    /// INV.SET: sets a SKU's units on hand and, if given, its low-stock mark.
    ///
    /// # Errors
    /// `Server` with `Conflict` if that is below what is reserved.
    pub async fn inv_set(
        &self,
        sku: impl Into<Bytes>,
        on_hand: i64,
        low: Option<u64>,
    ) -> Result<Stock> {
        Stock::from_reply(
            &self
                .call(Command::Inventory(InventoryCommand::Set {
                    sku: bytes(sku),
                    on_hand,
                    low,
                }))
                .await?,
        )
    }

    /// INV.ADJUST: restock (positive) or shrinkage (negative).
    ///
    /// # Errors
    /// `Server` with `Conflict` if on hand would fall below what is reserved.
    pub async fn inv_adjust(&self, sku: impl Into<Bytes>, delta: i64) -> Result<Stock> {
        Stock::from_reply(
            &self
                .call(Command::Inventory(InventoryCommand::Adjust {
                    sku: bytes(sku),
                    delta,
                }))
                .await?,
        )
    }

    /// INV.GET: a SKU's figures, or `None` if it was never set.
    ///
    /// # Errors
    /// `Server` with `WrongType` if the key holds something else.
    pub async fn inv_get(&self, sku: impl Into<Bytes>) -> Result<Option<Stock>> {
        match self
            .call(Command::Inventory(InventoryCommand::Get(bytes(sku))))
            .await?
        {
            Value::Nil => Ok(None),
            reply => Stock::from_reply(&reply).map(Some),
        }
    }

    /// INV.RESERVE: holds `qty` units for `ttl`; with an `id`, retries get the same hold.
    ///
    /// # Errors
    /// `Server` with `Syntax` for bad arguments.
    pub async fn inv_reserve(
        &self,
        sku: impl Into<Bytes>,
        qty: u64,
        ttl: Duration,
        id: Option<&str>,
    ) -> Result<Reservation> {
        let command = Command::Inventory(InventoryCommand::Reserve {
            sku: bytes(sku),
            qty,
            ttl_ms: millis(ttl).max(1),
            id: id.map(|id| Bytes::copy_from_slice(id.as_bytes())),
        });
        let reply = self.call(command).await?;
        let available = reply.get("available").and_then(Value::as_int).unwrap_or(0);
        match (
            reply.get("ok"),
            reply.get("reservation"),
            reply.get("state"),
        ) {
            (Some(Value::Bool(true)), Some(Value::Bytes(handle)), Some(Value::Text(state))) => {
                Ok(Reservation::Held {
                    handle: handle.clone(),
                    confirmed: state == "confirmed",
                })
            }
            (Some(Value::Bool(false)), _, _) => Ok(Reservation::Short { available }),
            _ => Err(Error::unexpected("a reservation", &reply)),
        }
    }

    /// INV.CONFIRM: turns a held reservation into a sale.
    ///
    /// # Errors
    /// `Server` with `NotFound` if it expired or was released.
    pub async fn inv_confirm(&self, handle: &Bytes) -> Result<()> {
        let (sku, id) = split_handle(handle)?;
        expect_ok(
            self.call(Command::Inventory(InventoryCommand::Confirm { sku, id }))
                .await?,
        )
    }

    /// INV.RELEASE: gives a held reservation's units back.
    ///
    /// # Errors
    /// `Server` with `NotFound` as for `inv_confirm`, `Conflict` if it is a sale.
    pub async fn inv_release(&self, handle: &Bytes) -> Result<()> {
        let (sku, id) = split_handle(handle)?;
        expect_ok(
            self.call(Command::Inventory(InventoryCommand::Release { sku, id }))
                .await?,
        )
    }

    /// Reserves every line of a cart or none. Lines on one shard (one `{hash tag}`) go in
    /// one atomic INV.RESERVE.MULTI; a cart across shards reserves each shard's part and,
    /// if any part is short, releases the parts already held. If this process dies in
    /// between, the held parts lapse with their TTL.
    ///
    /// # Errors
    /// Link failures (held parts then lapse with `ttl`).
    pub async fn inv_reserve_cart<S: Into<Bytes>>(
        &self,
        ttl: Duration,
        lines: impl IntoIterator<Item = (S, u64)>,
    ) -> Result<Cart> {
        let lines: Vec<(Bytes, u64)> = lines
            .into_iter()
            .map(|(sku, qty)| (sku.into(), qty))
            .collect();
        let ttl_ms = millis(ttl).max(1);
        let count = lines.len();
        let cart = Command::Inventory(InventoryCommand::ReserveMulti {
            ttl_ms,
            items: lines,
        });
        let (combine, replies) = self.fan_out(cart).await?;
        let positions = match combine {
            Combine::Positions { positions, .. } => positions,
            _ => vec![(0..count).collect()],
        };
        let parts = positions.into_iter().zip(replies);
        let mut handles = vec![Bytes::new(); count];
        let mut short = Vec::new();
        let mut held = Vec::new();
        for (positions, reply) in parts {
            match (
                reply.get("ok"),
                reply.get("reservations"),
                reply.get("short"),
            ) {
                (Some(Value::Bool(true)), Some(Value::Array(got)), _) => {
                    for (position, handle) in positions.into_iter().zip(got) {
                        let Value::Bytes(handle) = handle else {
                            return Err(Error::unexpected("a reservation handle", handle));
                        };
                        held.push(handle.clone());
                        handles[position] = handle.clone();
                    }
                }
                (Some(Value::Bool(false)), _, Some(Value::Array(skus))) => {
                    short.extend(skus.iter().filter_map(|s| match s {
                        Value::Bytes(sku) => Some(sku.clone()),
                        _ => None,
                    }));
                }
                _ => return Err(Error::unexpected("a cart reply", &reply)),
            }
        }
        if short.is_empty() {
            return Ok(Cart::Held(handles));
        }
        for handle in &held {
            // Best effort: a release that fails leaves the hold to lapse with its TTL.
            let _ = self.inv_release(handle).await;
        }
        Ok(Cart::Short(short))
    }
}

/// A page of a timeline: `(id, score)` newest first, and the cursor for older items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePage {
    /// Items as `(id, score)`, newest first.
    pub items: Vec<(u64, i64)>,
    /// Pass as `before` to get the next, older page; `None` at the end.
    pub next: Option<Cursor>,
}

impl TimelinePage {
    fn from_reply(reply: &Value) -> Result<TimelinePage> {
        let bad = || Error::unexpected("a timeline page", reply);
        let Some(Value::Array(items)) = reply.get("items") else {
            return Err(bad());
        };
        let items = items
            .iter()
            .map(|item| match item {
                Value::Array(pair) => match pair[..] {
                    [Value::Int(id), Value::Int(score)] => Some((id as u64, score)),
                    _ => None,
                },
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        let next = match reply.get("next") {
            Some(Value::Array(pair)) => match pair[..] {
                [Value::Int(score), Value::Int(id)] => Some(Cursor {
                    score,
                    id: id as u64,
                }),
                _ => return Err(bad()),
            },
            _ => None,
        };
        Ok(TimelinePage { items, next })
    }
}

impl Client {
    /// TL.PUSH: adds `id` (scored `score`, default the id) to a timeline capped at `cap`.
    ///
    /// # Errors
    /// `Server` with `Syntax` for a cap out of range.
    pub async fn tl_push(
        &self,
        key: impl Into<Bytes>,
        id: u64,
        score: Option<i64>,
        cap: Option<u32>,
    ) -> Result<bool> {
        let item = Cursor {
            score: score.unwrap_or(id as i64),
            id,
        };
        Ok(expect_int(
            self.call(Command::Timelines(TimelineCommand::Push {
                key: bytes(key),
                item,
                cap,
            }))
            .await?,
        )? == 1)
    }

    /// TL.FANOUT: pushes one id into many timelines; returns how many took it.
    ///
    /// # Errors
    /// As `tl_push`.
    pub async fn tl_fanout<K: Into<Bytes>>(
        &self,
        id: u64,
        score: Option<i64>,
        cap: Option<u32>,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let item = Cursor {
            score: score.unwrap_or(id as i64),
            id,
        };
        let keys = keys.into_iter().map(Into::into).collect();
        Ok(expect_int(
            self.call(Command::Timelines(TimelineCommand::Fanout {
                item,
                cap,
                keys,
            }))
            .await?,
        )? as u64)
    }

    /// TL.RANGE: up to `limit` items older than `before` and newer than `after`.
    ///
    /// # Errors
    /// `Server` with `WrongType` for another kind of key.
    pub async fn tl_range(
        &self,
        key: impl Into<Bytes>,
        before: Option<Cursor>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<TimelinePage> {
        let command = Command::Timelines(TimelineCommand::Range {
            key: bytes(key),
            before,
            after,
            limit,
        });
        TimelinePage::from_reply(&self.call(command).await?)
    }

    /// TL.MERGE: one page over several timelines, newest first, without duplicate ids.
    ///
    /// # Errors
    /// As `tl_range`.
    pub async fn tl_merge<K: Into<Bytes>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        before: Option<Cursor>,
        limit: u32,
    ) -> Result<TimelinePage> {
        let keys = keys.into_iter().map(Into::into).collect();
        TimelinePage::from_reply(
            &self
                .call(Command::Timelines(TimelineCommand::Merge {
                    limit,
                    before,
                    keys,
                }))
                .await?,
        )
    }

    /// TL.LEN: items in a timeline.
    ///
    /// # Errors
    /// As `tl_range`.
    pub async fn tl_len(&self, key: impl Into<Bytes>) -> Result<u64> {
        Ok(expect_int(
            self.call(Command::Timelines(TimelineCommand::Len(bytes(key))))
                .await?,
        )? as u64)
    }
}

/// A user's presence as PRESENCE.GET reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceInfo {
    /// Whether the user is online (heartbeat TTL plus grace not yet passed).
    pub online: bool,
    /// Time since the last heartbeat.
    pub last_seen: Duration,
    /// Metadata from the heartbeats (region, device).
    pub meta: Option<Bytes>,
}

impl Client {
    /// PRESENCE.BEAT: a heartbeat keeping `user` online for `ttl` plus `grace`; `true` if it
    /// brought the user online.
    ///
    /// # Errors
    /// `Server` with `InvalidExpire` for an out-of-range TTL.
    pub async fn presence_beat(
        &self,
        user: impl Into<Bytes>,
        ttl: Duration,
        grace: Duration,
        meta: Option<Bytes>,
    ) -> Result<bool> {
        let command = Command::Presence(PresenceCommand::Beat {
            user: bytes(user),
            ttl_ms: millis(ttl).max(1),
            grace_ms: millis(grace),
            meta,
        });
        expect_bool(self.call(command).await?)
    }

    /// PRESENCE.GET: presence of many users, one request per owning shard; `None` for
    /// users never seen.
    ///
    /// # Errors
    /// Link failures.
    pub async fn presence_get<K: Into<Bytes>>(
        &self,
        users: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<PresenceInfo>>> {
        let users = users.into_iter().map(Into::into).collect();
        let split = self
            .fan_out(Command::Presence(PresenceCommand::Get(users)))
            .await?;
        reassemble(split, |row| match row {
            Value::Nil => Ok(None),
            Value::Array(fields) => match &fields[..] {
                [Value::Bool(online), Value::Int(ago), meta] => Ok(Some(PresenceInfo {
                    online: *online,
                    last_seen: Duration::from_millis((*ago).max(0) as u64),
                    meta: match meta {
                        Value::Bytes(meta) => Some(meta.clone()),
                        _ => None,
                    },
                })),
                _ => Err(Error::Protocol(
                    "a presence row is [online, last_seen_ms, meta]".into(),
                )),
            },
            other => Err(Error::unexpected("a presence row", &other)),
        })
    }

    /// PRESENCE.LEAVE: a clean disconnect; `true` if the user was online.
    ///
    /// # Errors
    /// `Server` with `WrongType` for another kind of key.
    pub async fn presence_leave(&self, user: impl Into<Bytes>) -> Result<bool> {
        Ok(expect_int(
            self.call(Command::Presence(PresenceCommand::Leave(bytes(user))))
                .await?,
        )? == 1)
    }
}

/// SET with options; await it for `true` if the value was written.
#[must_use = "a SET does nothing until awaited"]
pub struct SetBuilder {
    client: Client,
    args: SetArgs,
}

impl SetBuilder {
    /// Expire after `seconds` (EX).
    pub fn ex(mut self, seconds: u64) -> Self {
        self.args.expiry = SetExpiry::In(seconds.saturating_mul(1000));
        self
    }

    /// Expire after `millis` milliseconds (PX).
    pub fn px(mut self, millis: u64) -> Self {
        self.args.expiry = SetExpiry::In(millis);
        self
    }

    /// Keep the key's current expiry (KEEPTTL).
    pub fn keep_ttl(mut self) -> Self {
        self.args.expiry = SetExpiry::Keep;
        self
    }

    /// Only write if the key does not exist (NX).
    pub fn nx(mut self) -> Self {
        self.args.condition = SetCondition::IfAbsent;
        self
    }

    /// Only write if the key exists (XX).
    pub fn xx(mut self) -> Self {
        self.args.condition = SetCondition::IfPresent;
        self
    }

    /// Also return the previous value (GET).
    pub fn get(mut self) -> SetGetBuilder {
        self.args.get = true;
        SetGetBuilder { inner: self }
    }
}

impl IntoFuture for SetBuilder {
    type Output = Result<bool>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<bool>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self
                .client
                .call(Command::Keys(KeyCommand::Set(self.args)))
                .await?
            {
                Value::Ok => Ok(true),
                Value::Nil => Ok(false),
                other => Err(Error::unexpected("OK or nil", &other)),
            }
        })
    }
}

/// SET ... GET; await it for the previous value.
#[must_use = "a SET does nothing until awaited"]
pub struct SetGetBuilder {
    inner: SetBuilder,
}

impl IntoFuture for SetGetBuilder {
    type Output = Result<Option<Bytes>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Option<Bytes>>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let SetBuilder { client, args } = self.inner;
            expect_optional_bytes(client.call(Command::Keys(KeyCommand::Set(args))).await?)
        })
    }
}
