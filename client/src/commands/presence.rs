//! Presence: heartbeats and batch lookups.

use super::*;

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
