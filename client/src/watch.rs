//! Presence watches: connections of their own (one per node watched on) whose pushes
//! become one stream of changes.

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

/// Watches users' presence on dedicated connections, one per node that owns a watched
/// user (one in all on a single node); a `Stream` of their changes, each once and in
/// order per user. Dropping it closes the connections, which ends every watch.
pub struct PresenceWatch {
    client: Client,
    /// Each node's connection, by client address.
    links: Vec<(String, Connection)>,
    /// Where every link's pushes meet; the links' forwarders hold the only strong ends,
    /// so the stream ends once every link has closed.
    sink: mpsc::WeakUnboundedSender<Value>,
    pushes: mpsc::UnboundedReceiver<Value>,
    /// Per watched user, the owner shard's change count its baseline reflects: pushes at
    /// or below it are already part of what `watch` answered.
    baselines: HashMap<Bytes, i64>,
}

impl Client {
    /// Opens a connection for presence watches (more open as users on other nodes are
    /// watched).
    ///
    /// # Errors
    /// As `Client::connect`.
    pub async fn presence_watcher(&self) -> Result<PresenceWatch> {
        let (sink, pushes) = mpsc::unbounded_channel();
        let mut watch = PresenceWatch {
            client: self.clone(),
            links: Vec::new(),
            sink: sink.downgrade(),
            pushes,
            baselines: HashMap::new(),
        };
        watch.open(&self.inner.seed.address, sink).await?;
        Ok(watch)
    }
}

impl PresenceWatch {
    /// Opens a watch connection to `address`, its pushes forwarded into `sink`.
    async fn open(&mut self, address: &str, sink: mpsc::UnboundedSender<Value>) -> Result<()> {
        let (connection, mut pushes) =
            Connection::open_with_pushes(address, None, &self.client.inner.config).await?;
        tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                if sink.send(push).is_err() {
                    return;
                }
            }
        });
        self.links.push((address.to_string(), connection));
        Ok(())
    }

    /// The watch connection to `address`, opened if there is none yet.
    async fn link(&mut self, address: &str) -> Result<&Connection> {
        if !self.links.iter().any(|(a, _)| a == address) {
            let sink = self
                .sink
                .upgrade()
                .ok_or_else(|| Error::ConnectionLost("every watch connection has closed".into()))?;
            self.open(address, sink).await?;
        }
        let (_, connection) = self
            .links
            .iter()
            .find(|(a, _)| a == address)
            .expect("opened above");
        Ok(connection)
    }

    /// `users` grouped by the node owning each, with each one's place in `users`.
    fn by_node(&self, users: &[Bytes]) -> Vec<(String, Vec<usize>)> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (at, user) in users.iter().enumerate() {
            let node = self.client.node_of(user);
            match groups.iter_mut().find(|(n, _)| *n == node) {
                Some((_, places)) => places.push(at),
                None => groups.push((node, vec![at])),
            }
        }
        groups
    }

    /// PRESENCE.WATCH: starts watching `users` and answers their presence now (`None` for
    /// users never seen); the stream then yields every later change. Users on several
    /// nodes are watched on each node's own connection.
    ///
    /// # Errors
    /// `Server` with `TooManyElements` beyond the per-connection limit; link failures.
    pub async fn watch<K: Into<Bytes>>(
        &mut self,
        users: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<PresenceInfo>>> {
        let users: Vec<Bytes> = users.into_iter().map(Into::into).collect();
        let mut infos = vec![None; users.len()];
        for (node, places) in self.by_node(&users) {
            let part: Vec<Bytes> = places.iter().map(|&at| users[at].clone()).collect();
            let reply = self
                .link(&node)
                .await?
                .request(Command::Presence(PresenceCommand::Watch(part.clone())))
                .await?;
            let Value::Array(rows) = reply else {
                return Err(Error::unexpected("an array of presence rows", &reply));
            };
            if rows.len() != part.len() {
                return Err(Error::Protocol("one baseline row per user expected".into()));
            }
            for ((at, user), row) in places.into_iter().zip(part).zip(rows) {
                let (info, sequence) = baseline_row(&row)?;
                self.baselines.insert(user, sequence);
                infos[at] = info;
            }
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
        for user in &users {
            self.baselines.remove(user);
        }
        let mut unwatched = 0;
        for (node, places) in self.by_node(&users) {
            let part: Vec<Bytes> = places.iter().map(|&at| users[at].clone()).collect();
            let reply = self
                .link(&node)
                .await?
                .request(Command::Presence(PresenceCommand::Unwatch(part)))
                .await?;
            unwatched += reply.as_int().unwrap_or(0).max(0) as u64;
        }
        Ok(unwatched)
    }

    /// PRESENCE.UNWATCH with no users: stops every watch on every connection.
    ///
    /// # Errors
    /// Link failures.
    pub async fn unwatch_all(&mut self) -> Result<u64> {
        self.baselines.clear();
        let mut unwatched = 0;
        for (_, connection) in &self.links {
            let reply = connection
                .request(Command::Presence(PresenceCommand::Unwatch(Vec::new())))
                .await?;
            unwatched += reply.as_int().unwrap_or(0).max(0) as u64;
        }
        Ok(unwatched)
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
