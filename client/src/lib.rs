//! Tessera's async client: one multiplexed connection per shard, each key sent straight to
//! the shard that owns it, typed methods for every command.
//!
//! ```no_run
//! # async fn demo() -> tessera_client::Result<()> {
//! let client = tessera_client::Client::connect("127.0.0.1:7379").await?;
//! client.set("greeting", "hello").ex(30).nx().await?;
//! assert_eq!(client.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```

mod commands;
pub mod connection;
mod error;
mod geo;
pub mod limiter;
mod pipeline;
mod pubsub;
mod routing;
pub mod tls;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use tessera_cluster::geo::{partition_of, partition_shard};
use tessera_cluster::{key_slot, shard_for_key, shard_of_slot};
use tessera_protocol::geo::GeoCommand;
pub use tessera_protocol::ClusterCommand;
use tessera_protocol::{Combine, HelloInfo, KeySpec, Split, Typed, Value};

pub use routing::parse_slots;
use routing::{NodeLinks, Routes};

pub use bytes::Bytes;
pub use commands::{
    Cart, Cas, Idem, PresenceInfo, RateDecision, RateLimitBuilder, Reservation, SetBuilder,
    SetGetBuilder, Stock, StoreFigures, Take, TimelinePage, Ttl,
};
pub use connection::Connection;
pub use error::{Error, Result};
pub use geo::{GeoIndex, GeoMember, GeoNearBuilder, GeoUpsert, Nearby};
pub use limiter::{BreakerConfig, Fallback, RateLimiter, Source, Verdict};
pub use pipeline::Pipeline;
pub use pubsub::{Message, Subscriber};
pub use tessera_protocol::commands::Cursor;
pub use tessera_protocol::Value as Reply;
pub use tessera_protocol::{Command, ErrorCode, ErrorReply, SetArgs, SetCondition, SetExpiry};
pub use tls::{TlsConfig, TlsError};
pub use watch::{PresenceChange, PresenceWatch};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long one connect attempt may take.
    pub connect_timeout: Duration,
    /// User to authenticate as (with `password`); `None`: the default user.
    pub username: Option<String>,
    /// Password sent in each connection's HELLO; `None`: no authentication.
    pub password: Option<String>,
    /// TLS for every connection; `None`: plain TCP.
    pub tls: Option<TlsConfig>,
    /// How long one request may wait for its reply before failing with `Timeout` (a
    /// stopped or partitioned node never closes the socket); `None`: wait for ever.
    pub request_timeout: Option<Duration>,
    /// Replicas that must hold each write before the client reports it done (WAIT after
    /// every write); `None`: a write is done once its primary answers.
    pub sync_replicas: Option<SyncReplicas>,
}

/// A synchronous write: the primary's answer counts only once `replicas` replicas hold
/// the write, confirmed within `timeout`; otherwise the call fails with `NotReplicated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReplicas {
    /// Replicas that must hold the write.
    pub replicas: u64,
    /// How long they have to confirm it.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            username: None,
            password: None,
            tls: None,
            request_timeout: Some(Duration::from_secs(10)),
            sync_replicas: None,
        }
    }
}

struct Inner {
    config: ClientConfig,
    /// What the node the client connected to said in HELLO.
    hello: HelloInfo,
    /// That node's shard links.
    seed: Arc<NodeLinks>,
    /// The slot map, when that node is a cluster member.
    routes: Option<Routes>,
}

/// A shard-aware client for one Tessera node or a whole cluster; cheap to clone and share
/// between tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Asks, on the connection a write was answered on (so the WAIT follows it), for `sync`'s
/// replicas to confirm it; nothing to do without `sync`.
async fn confirm(connection: &Connection, sync: Option<SyncReplicas>) -> Result<()> {
    let Some(sync) = sync else {
        return Ok(());
    };
    let wait = Command::Cluster(ClusterCommand::Wait {
        replicas: sync.replicas,
        timeout_ms: (sync.timeout.as_millis() as u64).max(1),
    });
    match connection.request(wait).await? {
        Value::Int(reached) if reached as u64 >= sync.replicas => Ok(()),
        Value::Int(reached) => Err(Error::NotReplicated {
            reached: reached as u64,
            wanted: sync.replicas,
        }),
        other => Err(Error::unexpected("INT", &other)),
    }
}

/// Where one request goes: a node's links and one of its shards.
type Target = (Arc<NodeLinks>, u16);

impl Client {
    /// Connects with default settings.
    ///
    /// # Errors
    /// `Connect` if the node cannot be reached; `Server` if it refuses the handshake.
    pub async fn connect(address: &str) -> Result<Client> {
        Self::connect_with(address, ClientConfig::default()).await
    }

    /// Connects, learns the shard count from HELLO, and opens one connection per shard.
    /// A cluster member also hands over the slot map; the other nodes' connections are
    /// opened when a key first needs them.
    ///
    /// # Errors
    /// As `connect`.
    pub async fn connect_with(address: &str, config: ClientConfig) -> Result<Client> {
        let first = Connection::open(address, None, &config).await?;
        let hello = first.hello().clone();
        let seed = Arc::new(NodeLinks::new(address, hello.shards, Some(&first)));
        let routes = if hello.cluster {
            Some(Routes::load(&first, seed.clone()).await?)
        } else {
            None
        };
        let client = Client {
            inner: Arc::new(Inner {
                config,
                hello,
                seed,
                routes,
            }),
        };
        let seed = &client.inner.seed;
        try_join_all((0..seed.shards).map(|shard| seed.link(shard, &client.inner.config))).await?;
        Ok(client)
    }

    /// What the node connected to said in HELLO: shard count, node id, epoch.
    pub fn hello(&self) -> &HelloInfo {
        &self.inner.hello
    }

    /// Whether the client routes over a cluster's slot map.
    pub fn is_cluster(&self) -> bool {
        self.inner.routes.is_some()
    }

    /// Reloads the slot map (in cluster mode) from a node that has a newer one, if any.
    pub async fn reload_routes(&self) {
        if let Some(routes) = &self.inner.routes {
            let epoch = routes.current().topology.epoch;
            // A failed reload leaves the old map; the caller's next request tells.
            let _ = routes.refresh(epoch, &self.inner.config).await;
        }
    }

    /// The slot map the client routes by, in cluster mode.
    pub fn topology(&self) -> Option<tessera_cluster::Topology> {
        let routes = self.inner.routes.as_ref()?;
        Some(routes.current().topology.clone())
    }

    /// The slot map's epoch (0 for a single node).
    pub fn epoch(&self) -> u64 {
        self.inner
            .routes
            .as_ref()
            .map_or(0, |routes| routes.current().topology.epoch)
    }

    /// The shard that owns `key` on the node that owns it.
    pub fn shard_of(&self, key: &[u8]) -> u16 {
        self.key_target(key).1
    }

    /// The client address of the node that owns `key`.
    pub fn node_of(&self, key: &[u8]) -> String {
        self.key_target(key).0.address.clone()
    }

    /// The node and shard owning `key`.
    fn key_target(&self, key: &[u8]) -> Target {
        let slot = key_slot(key);
        let node = self.node_for_slot(slot);
        let shard = shard_of_slot(slot, node.shards);
        (node, shard)
    }

    /// The connection to shard `shard` of the node connected to.
    pub async fn connection(&self, shard: u16) -> Result<Connection> {
        self.inner.seed.link(shard, &self.inner.config).await
    }

    /// Where a command should go: its key's owner; for a multi-key command its first
    /// key's (the server splits the rest); the connected node's shard 0 for keyless ones.
    fn route(&self, command: &Command) -> Target {
        // A position's partition lives on one shard: an upsert runs there, and a search
        // starts there; asking it directly saves a hop. An index lives on the node that
        // owns its name's slot.
        let by_position = match command {
            Command::Geo(GeoCommand::Near(near)) => Some((&near.index, near.area.center)),
            Command::Geo(GeoCommand::Upsert { index, at, .. }) => Some((index, *at)),
            _ => None,
        };
        if let Some((index, at)) = by_position {
            let (node, _) = self.key_target(index);
            let shard = partition_of(at.lat(), at.lng()).map_or(0, |partition| {
                partition_shard(index, partition, node.shards)
            });
            return (node, shard);
        }
        let is_geo = matches!(command, Command::Geo(_));
        if let Some(key) = command.single_key().filter(|_| !is_geo) {
            return self.key_target(key);
        }
        // A geo command's node is its index's (the index lives whole on one node) and its
        // shard its member's home; a multi-key command goes to its first key's node and
        // shard, which splits the rest.
        let mut first_slot = None;
        command.for_each_key(&mut |key| {
            first_slot.get_or_insert_with(|| key_slot(key));
        });
        let Some(slot) = first_slot else {
            return (self.inner.seed.clone(), 0);
        };
        let node = self.node_for_slot(slot);
        let shard = command.single_key().map_or_else(
            || shard_of_slot(slot, node.shards),
            |key| shard_for_key(key, node.shards),
        );
        (node, shard)
    }

    /// The node owning `slot`: by the slot map, or the node connected to.
    fn node_for_slot(&self, slot: u16) -> Arc<NodeLinks> {
        match &self.inner.routes {
            Some(routes) => routes.current().owner(slot),
            None => self.inner.seed.clone(),
        }
    }

    /// Sends any command to the right node and shard and returns the raw reply. In
    /// cluster mode a redirect or a cluster not serving yet is retried after reloading
    /// the slot map, for up to ten seconds.
    ///
    /// # Errors
    /// `Server` for an error reply; `ConnectionLost`/`Connect` for link failures.
    pub async fn call(&self, command: Command) -> Result<Value> {
        self.call_replicated(command, self.inner.config.sync_replicas)
            .await
    }

    /// As `call`, and a write counts as done only once `sync` replicas hold it (when
    /// `sync` is given), whatever the client's own setting.
    ///
    /// # Errors
    /// As `call`; `NotReplicated` when the write ran on its primary but too few replicas
    /// confirmed it in time (it may then be lost in a failover).
    pub async fn call_replicated(
        &self,
        command: Command,
        sync: Option<SyncReplicas>,
    ) -> Result<Value> {
        let sync = sync.filter(|_| command.spec().writes);
        let Some(routes) = &self.inner.routes else {
            let (node, shard) = self.route(&command);
            return self.request_confirmed(&node, shard, command, sync).await;
        };
        let deadline = tokio::time::Instant::now() + routing::RETRY_PATIENCE;
        let mut pause = Duration::from_millis(20);
        let mut moving_pause = Duration::from_millis(2);
        loop {
            let epoch = routes.current().topology.epoch;
            if self.spans_nodes(&command, routes) {
                let (combine, replies) = Box::pin(self.fan_out_with(command, sync)).await?;
                return routing::combine(&combine, replies);
            }
            let (node, shard) = self.route(&command);
            let (answer, connection) = match node.link(shard, &self.inner.config).await {
                Ok(connection) => (connection.request(command.clone()).await, Some(connection)),
                Err(error) => (Err(error), None),
            };
            let stale_split = matches!(&answer, Err(error)
                if error.server_code() == Some(ErrorCode::CrossNode)
                    && matches!(command.spec().keys, KeySpec::Many | KeySpec::Pairs));
            match answer {
                Err(error)
                    if (stale_split || routing::retryable(&error))
                        && tokio::time::Instant::now() < deadline =>
                {
                    match error.server_code() {
                        Some(ErrorCode::Moved | ErrorCode::CrossNode) => {}
                        // A slot pauses for milliseconds while it migrates.
                        Some(ErrorCode::TryAgain) => {
                            tokio::time::sleep(moving_pause).await;
                            moving_pause = (moving_pause * 2).min(Duration::from_millis(50));
                            continue;
                        }
                        _ => {
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(500));
                        }
                    }
                    // A failed reload leaves the old map; the next attempt tells.
                    let _ = routes.refresh(epoch, &self.inner.config).await;
                }
                Err(error @ (Error::Timeout(_) | Error::ConnectionLost(_))) => {
                    // Not sent again (it may have run), but the node may be gone or
                    // replaced: the next request should follow the newest map.
                    let _ = routes.refresh(epoch, &self.inner.config).await;
                    return Err(error);
                }
                Ok(reply) => {
                    if let Some(connection) = connection {
                        confirm(&connection, sync).await?;
                    }
                    return Ok(reply);
                }
                answer => return answer,
            }
        }
    }

    /// Splits a multi-key command by the node and shard of each key; a part's owner
    /// number indexes the targets returned with it.
    fn split_by_target(&self, command: &Command) -> (Option<Split<Command>>, Vec<Target>) {
        let targets: std::cell::RefCell<Vec<Target>> = std::cell::RefCell::new(Vec::new());
        // One look at the slot map for the whole command, not one per key.
        let map = self.inner.routes.as_ref().map(Routes::current);
        let owner = |key: &[u8]| {
            let slot = key_slot(key);
            let node = map
                .as_ref()
                .map_or_else(|| self.inner.seed.clone(), |map| map.owner(slot));
            let shard = shard_of_slot(slot, node.shards);
            let mut known = targets.borrow_mut();
            let at = known
                .iter()
                .position(|(n, s)| Arc::ptr_eq(n, &node) && *s == shard)
                .unwrap_or_else(|| {
                    known.push((node, shard));
                    known.len() - 1
                });
            at as u16
        };
        let split = command.split(&owner);
        (split, targets.into_inner())
    }

    /// Whether a multi-key command names keys on more than one node, so it must be split
    /// here rather than by the node it is sent to.
    fn spans_nodes(&self, command: &Command, routes: &Routes) -> bool {
        // Only these split; a watch goes whole on the connection that is to get its pushes.
        if !matches!(command.spec().keys, KeySpec::Many | KeySpec::Pairs) {
            return false;
        }
        let map = routes.current();
        let mut first = None;
        let mut several = false;
        command.for_each_key(&mut |key| {
            let owner = map.topology.owner_id(key_slot(key));
            several |= *first.get_or_insert(owner) != owner;
        });
        several
    }

    /// Sends a typed request (`HashCommand::hget(..)`, `SortedSetCommand::zadd(..)`) to the
    /// right shard and reads its reply as the request's type.
    ///
    /// # Errors
    /// `InvalidArgument` for arguments no request can carry (NaN); `Server` for an error
    /// reply; `Protocol` for a reply of another shape; link failures.
    pub async fn run<T>(&self, request: Typed<T>) -> Result<T> {
        if let Some(reason) = request.refused {
            return Err(Error::InvalidArgument(reason.into()));
        }
        let reply = self.call(request.command).await?;
        (request.read)(reply).map_err(|shape| Error::Protocol(shape.to_string()))
    }

    /// Starts a pipeline: commands queued on it go out together when it is executed.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// Runs a multi-key command split by owner exactly as its family declares (the
    /// server splits by the same definition): each part goes straight to its shard, all
    /// in parallel. Answers how the parts combine, and each part's reply in part order. A
    /// command with no keys goes whole, for the server to refuse.
    /// A write's parts are each confirmed as the client's `sync_replicas` asks.
    async fn fan_out(&self, command: Command) -> Result<(Combine, Vec<Value>)> {
        let sync = self
            .inner
            .config
            .sync_replicas
            .filter(|_| command.spec().writes);
        self.fan_out_with(command, sync).await
    }

    /// Sends `command` to one shard of `node` with no redirects to follow, then has `sync`
    /// replicas confirm it on the same connection.
    async fn request_confirmed(
        &self,
        node: &NodeLinks,
        shard: u16,
        command: Command,
        sync: Option<SyncReplicas>,
    ) -> Result<Value> {
        let connection = node.link(shard, &self.inner.config).await?;
        let reply = connection.request(command).await?;
        confirm(&connection, sync).await.map(|()| reply)
    }

    /// As `fan_out`, each part of a write confirmed by `sync` replicas when it is given.
    async fn fan_out_with(
        &self,
        command: Command,
        sync: Option<SyncReplicas>,
    ) -> Result<(Combine, Vec<Value>)> {
        let (split, targets) = self.split_by_target(&command);
        let Some(Split { parts, combine }) = split.filter(|s| !s.parts.is_empty()) else {
            let reply = Box::pin(self.call_replicated(command, sync)).await?;
            return Ok((Combine::AllOk, vec![reply]));
        };
        let calls = parts.into_iter().map(|(at, part)| {
            let (node, shard) = targets[usize::from(at)].clone();
            async move {
                if self.inner.routes.is_some() {
                    // Sent again on a redirect: `call` routes it by its first key.
                    return Box::pin(self.call_replicated(part, sync)).await;
                }
                self.request_confirmed(&node, shard, part, sync).await
            }
        });
        Ok((combine, try_join_all(calls).await?))
    }
}
