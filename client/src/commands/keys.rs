//! Keys: GET/SET and their options, expiry, counters, MGET/MSET, node commands.

use super::*;

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
                condition: Default::default(),
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

    /// SNAPSHOT: starts a snapshot on every shard, in the background.
    ///
    /// # Errors
    /// Link failures, or a server that keeps nothing on disk.
    pub async fn snapshot(&self) -> Result<()> {
        expect_ok(self.call(Command::Admin(AdminCommand::Snapshot)).await?)
    }

    /// LASTSAVE: Unix seconds of the oldest shard's last completed snapshot (0: a shard
    /// has none).
    ///
    /// # Errors
    /// Link failures.
    pub async fn lastsave(&self) -> Result<i64> {
        expect_int(self.call(Command::Admin(AdminCommand::LastSave)).await?)
    }

    /// INFO: the node's statistics map.
    ///
    /// # Errors
    /// Link failures.
    pub async fn info(&self) -> Result<Value> {
        self.call(Command::Admin(AdminCommand::Info)).await
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
