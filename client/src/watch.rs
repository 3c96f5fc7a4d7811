//! Presence watches: a connection of their own whose pushes become a stream of changes.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tessera_protocol::PresenceCommand;

use bytes::Bytes;
use futures_util::Stream;
use tessera_protocol::{Command, Value};
use tokio::sync::mpsc;

use crate::commands::PresenceInfo;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::Client;

/// A watched user's presence change, pushed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// Whose presence changed.
    pub user: Bytes,
    /// Whether the user is now online.
    pub online: bool,
    /// Metadata of the heartbeat that brought the user online.
    pub meta: Option<Bytes>,
}

/// Watches users' presence on a dedicated connection; a `Stream` of their changes, each
/// once and in order. Dropping it closes the connection, which ends every watch.
pub struct PresenceWatch {
    connection: Connection,
    pushes: mpsc::UnboundedReceiver<Value>,
    /// Per watched user, the owner shard's change count its baseline reflects: pushes at
    /// or below it are already part of what `watch` answered.
    baselines: HashMap<Bytes, i64>,
}

impl Client {
    /// Opens a connection for presence watches.
    ///
    /// # Errors
    /// As `Client::connect`.
    pub async fn presence_watcher(&self) -> Result<PresenceWatch> {
        let (connection, pushes) =
            Connection::open_with_pushes(&self.inner.seed.address, None, &self.inner.config)
                .await?;
        Ok(PresenceWatch {
            connection,
            pushes,
            baselines: HashMap::new(),
        })
    }
}

impl PresenceWatch {
    /// PRESENCE.WATCH: starts watching `users` and answers their presence now (`None` for
    /// users never seen); the stream then yields every later change.
    ///
    /// # Errors
    /// `Server` with `TooManyElements` beyond the per-connection limit; link failures.
    pub async fn watch<K: Into<Bytes>>(
        &mut self,
        users: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<PresenceInfo>>> {
        let users: Vec<Bytes> = users.into_iter().map(Into::into).collect();
        let reply = self
            .connection
            .request(Command::Presence(PresenceCommand::Watch(users.clone())))
            .await?;
        let Value::Array(rows) = reply else {
            return Err(Error::unexpected("an array of presence rows", &reply));
        };
        if rows.len() != users.len() {
            return Err(Error::Protocol("one baseline row per user expected".into()));
        }
        let mut infos = Vec::with_capacity(rows.len());
        for (user, row) in users.into_iter().zip(rows) {
            let (info, sequence) = baseline_row(&row)?;
            self.baselines.insert(user, sequence);
            infos.push(info);
        }
        Ok(infos)
    }

    /// PRESENCE.UNWATCH: stops watching `users`; answers how many were watched.
    ///
    /// # Errors
    /// Link failures.
    pub async fn unwatch<K: Into<Bytes>>(
        &mut self,
        users: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let users: Vec<Bytes> = users.into_iter().map(Into::into).collect();
        if users.is_empty() {
            return Ok(0);
        }
        for user in &users {
            self.baselines.remove(user);
        }
        let reply = self
            .connection
            .request(Command::Presence(PresenceCommand::Unwatch(users)))
            .await?;
        Ok(reply.as_int().unwrap_or(0).max(0) as u64)
    }

    /// PRESENCE.UNWATCH with no users: stops every watch on this connection.
    ///
    /// # Errors
    /// Link failures.
    pub async fn unwatch_all(&mut self) -> Result<u64> {
        self.baselines.clear();
        let reply = self
            .connection
            .request(Command::Presence(PresenceCommand::Unwatch(Vec::new())))
            .await?;
        Ok(reply.as_int().unwrap_or(0).max(0) as u64)
    }

    /// Users watched now.
    pub fn watched(&self) -> usize {
        self.baselines.len()
    }

    /// A push as a change, unless its user is no longer watched or the baseline already
    /// reflects it.
    fn accept(&self, push: Value) -> Option<PresenceChange> {
        let Value::Array(fields) = push else {
            return None;
        };
        let [Value::Text(kind), Value::Bytes(user), Value::Bool(online), meta, Value::Int(sequence)] =
            &fields[..]
        else {
            return None;
        };
        if kind != "presence" || self.baselines.get(user).is_none_or(|b| sequence <= b) {
            return None;
        }
        Some(PresenceChange {
            user: user.clone(),
            online: *online,
            meta: match meta {
                Value::Bytes(meta) => Some(meta.clone()),
                _ => None,
            },
        })
    }
}

impl Stream for PresenceWatch {
    type Item = PresenceChange;

    /// The next change; `None` once the connection has closed.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PresenceChange>> {
        loop {
            match self.pushes.poll_recv(cx) {
                Poll::Ready(Some(push)) => {
                    if let Some(change) = self.accept(push) {
                        return Poll::Ready(Some(change));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A WATCH baseline row `[online, ms since seen or NIL, meta, sequence]`.
fn baseline_row(row: &Value) -> Result<(Option<PresenceInfo>, i64)> {
    let malformed =
        || Error::Protocol("a watch row is [online, last_seen_ms, meta, sequence]".into());
    let Value::Array(fields) = row else {
        return Err(malformed());
    };
    let [Value::Bool(online), ago, meta, Value::Int(sequence)] = &fields[..] else {
        return Err(malformed());
    };
    let info = match ago {
        Value::Int(ago) => Some(PresenceInfo {
            online: *online,
            last_seen: Duration::from_millis((*ago).max(0) as u64),
            meta: match meta {
                Value::Bytes(meta) => Some(meta.clone()),
                _ => None,
            },
        }),
        _ => None,
    };
    Ok((info, *sequence))
}
