//! Presence watches: connections of their own (one per node watched on) whose pushes
//! become one stream of changes.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
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

/// How long a watch that moved with its user's slot keeps trying to be set again on the
/// new owner.
const REWATCH_PATIENCE: Duration = Duration::from_secs(10);

/// A watch being set again on the node a user's slot moved to.
type Rewatch = Pin<Box<dyn Future<Output = Result<Rewatched>> + Send>>;

/// A watch set again after its user's slot moved.
struct Rewatched {
    user: Bytes,
    info: Option<PresenceInfo>,
    sequence: i64,
    /// Connections opened on the way.
    opened: Vec<(String, Connection)>,
}

/// Watches users' presence on dedicated connections, one per node that owns a watched
/// user (one in all on a single node); a `Stream` of their changes, each once and in
/// order per user. When a user's slot migrates, the node giving it up hands the watch
/// back and this watches the user again on the new owner, yielding a change if the user's
/// state differs from the last one yielded (changes during the hand-over collapse into
/// that one). Dropping it closes the connections, which ends every watch.
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
    /// Per watched user, whether it was online as last answered or yielded.
    online: HashMap<Bytes, bool>,
    /// Users whose watch a node handed back, waiting to be watched again.
    moved: VecDeque<Bytes>,
    /// The one being watched again now.
    rewatch: Option<Rewatch>,
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
            online: HashMap::new(),
            moved: VecDeque::new(),
            rewatch: None,
        };
        watch.open(&self.inner.seed.address, sink).await?;
        Ok(watch)
    }
}

impl PresenceWatch {
    /// Opens a watch connection to `address`, its pushes forwarded into `sink`.
    async fn open(&mut self, address: &str, sink: mpsc::UnboundedSender<Value>) -> Result<()> {
        let connection = open_forwarding(&self.client, address, sink).await?;
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
                self.online
                    .insert(user.clone(), info.as_ref().is_some_and(|i| i.online));
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
            self.online.remove(user);
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
        self.online.clear();
        self.moved.clear();
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
    /// reflects it; a hand-over is queued for watching the user again.
    fn accept(&mut self, push: Value) -> Option<PresenceChange> {
        let Value::Array(fields) = push else {
            return None;
        };
        if let [Value::Text(kind), Value::Bytes(user)] = &fields[..] {
            if kind == "presence-moved" && self.baselines.contains_key(user) {
                self.moved.push_back(user.clone());
            }
            return None;
        }
        let [Value::Text(kind), Value::Bytes(user), Value::Bool(online), meta, Value::Int(sequence)] =
            &fields[..]
        else {
            return None;
        };
        if kind != "presence" || self.baselines.get(user).is_none_or(|b| sequence <= b) {
            return None;
        }
        self.online.insert(user.clone(), *online);
        Some(PresenceChange {
            user: user.clone(),
            online: *online,
            meta: match meta {
                Value::Bytes(meta) => Some(meta.clone()),
                _ => None,
            },
        })
    }

    /// Takes in a watch set again: its new baseline, and a change if the user's state
    /// differs from the last one yielded.
    fn rewatched(&mut self, rewatched: Rewatched) -> Option<PresenceChange> {
        self.links.extend(rewatched.opened);
        let user = rewatched.user;
        if !self.baselines.contains_key(&user) {
            // Unwatched while the hand-over ran.
            return None;
        }
        self.baselines.insert(user.clone(), rewatched.sequence);
        let online = rewatched.info.as_ref().is_some_and(|i| i.online);
        let was = self.online.insert(user.clone(), online).unwrap_or(false);
        (online != was).then(|| PresenceChange {
            user,
            online,
            meta: rewatched.info.and_then(|i| i.meta).filter(|_| online),
        })
    }

    /// Starts watching the next handed-back user again, if none is under way.
    fn start_rewatch(&mut self) -> bool {
        if self.rewatch.is_some() {
            return false;
        }
        let Some(user) = self.moved.pop_front() else {
            return false;
        };
        let Some(sink) = self.sink.upgrade() else {
            return false;
        };
        let (client, links) = (self.client.clone(), self.links.clone());
        self.rewatch = Some(Box::pin(rewatch(client, user, links, sink)));
        true
    }
}

impl Stream for PresenceWatch {
    type Item = PresenceChange;

    /// The next change; `None` once every connection has closed.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PresenceChange>> {
        loop {
            if let Some(rewatch) = self.rewatch.as_mut() {
                if let Poll::Ready(done) = rewatch.as_mut().poll(cx) {
                    self.rewatch = None;
                    // A user that could not be watched again is watched no more.
                    if let Some(change) = done.ok().and_then(|r| self.rewatched(r)) {
                        return Poll::Ready(Some(change));
                    }
                    continue;
                }
            }
            if self.start_rewatch() {
                continue;
            }
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

/// Opens a connection to `address` whose pushes are forwarded into `sink`.
async fn open_forwarding(
    client: &Client,
    address: &str,
    sink: mpsc::UnboundedSender<Value>,
) -> Result<Connection> {
    let (connection, mut pushes) =
        Connection::open_with_pushes(address, None, &client.inner.config).await?;
    tokio::spawn(async move {
        while let Some(push) = pushes.recv().await {
            if sink.send(push).is_err() {
                return;
            }
        }
    });
    Ok(connection)
}

/// Watches `user` again on the node that owns it now, reloading the slot map until that
/// node answers (it may not have applied the move yet).
async fn rewatch(
    client: Client,
    user: Bytes,
    mut links: Vec<(String, Connection)>,
    sink: mpsc::UnboundedSender<Value>,
) -> Result<Rewatched> {
    let deadline = tokio::time::Instant::now() + REWATCH_PATIENCE;
    let mut opened = Vec::new();
    loop {
        client.reload_routes().await;
        let node = client.node_of(&user);
        let connection = match links.iter().find(|(a, _)| *a == node) {
            Some((_, connection)) => connection.clone(),
            None => {
                let connection = open_forwarding(&client, &node, sink.clone()).await?;
                links.push((node.clone(), connection.clone()));
                opened.push((node, connection.clone()));
                connection
            }
        };
        let watch = Command::Presence(PresenceCommand::Watch(vec![user.clone()]));
        match connection.request(watch).await {
            Ok(Value::Array(rows)) if rows.len() == 1 => {
                let (info, sequence) = baseline_row(&rows[0])?;
                return Ok(Rewatched {
                    user,
                    info,
                    sequence,
                    opened,
                });
            }
            Err(error)
                if crate::routing::retryable(&error) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(other) => return Err(Error::unexpected("one presence row", &other)),
            Err(error) => return Err(error),
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
