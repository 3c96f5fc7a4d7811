//! Versioned values with compare-and-set.

use super::*;

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
