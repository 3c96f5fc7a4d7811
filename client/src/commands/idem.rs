//! Idempotency records.

use super::*;

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
