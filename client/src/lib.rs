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
pub mod tls;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use tessera_cluster::geo::{partition_of, partition_shard};
use tessera_cluster::shard_for_key;
use tessera_protocol::geo::GeoCommand;
use tessera_protocol::{Combine, HelloInfo, Split, Typed, Value};
use tokio::sync::Mutex;

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
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            username: None,
            password: None,
            tls: None,
        }
    }
}

/// One shard's connection slot, reconnected on demand.
struct ShardLink {
    shard: u16,
    current: Mutex<Option<Connection>>,
}

struct Inner {
    address: String,
    config: ClientConfig,
    hello: HelloInfo,
    links: Vec<ShardLink>,
}

/// A shard-aware client for one Tessera node; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects with default settings.
    ///
    /// # Errors
    /// `Connect` if the node cannot be reached; `Server` if it refuses the handshake.
    pub async fn connect(address: &str) -> Result<Client> {
        Self::connect_with(address, ClientConfig::default()).await
    }

    /// Connects, learns the shard count from HELLO, and opens one connection per shard.
    ///
    /// # Errors
    /// As `connect`.
    pub async fn connect_with(address: &str, config: ClientConfig) -> Result<Client> {
        let first = Connection::open(address, None, &config).await?;
        let hello = first.hello().clone();
        let links: Vec<ShardLink> = (0..hello.shards)
            .map(|shard| ShardLink {
                shard,
                current: Mutex::new((shard == hello.shard).then(|| first.clone())),
            })
            .collect();
        let client = Client {
            inner: Arc::new(Inner {
                address: address.to_string(),
                config,
                hello,
                links,
            }),
        };
        try_join_all(client.inner.links.iter().map(|link| client.link(link))).await?;
        Ok(client)
    }

    /// What the node said in HELLO: shard count, node id, epoch.
    pub fn hello(&self) -> &HelloInfo {
        &self.inner.hello
    }

    /// The shard that owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> u16 {
        shard_for_key(key, self.inner.hello.shards)
    }

    /// The live connection to `link`'s shard, reconnecting if the last one dropped.
    async fn link(&self, link: &ShardLink) -> Result<Connection> {
        let mut current = link.current.lock().await;
        if let Some(connection) = current.as_ref().filter(|c| !c.is_closed()) {
            return Ok(connection.clone());
        }
        let connection =
            Connection::open(&self.inner.address, Some(link.shard), &self.inner.config).await?;
        *current = Some(connection.clone());
        Ok(connection)
    }

    /// The connection to shard `shard`.
    pub async fn connection(&self, shard: u16) -> Result<Connection> {
        let link = self
            .inner
            .links
            .get(usize::from(shard))
            .ok_or_else(|| Error::Protocol(format!("no shard {shard}")))?;
        self.link(link).await
    }

    /// The shard a command should go to: its key's owner, or shard 0 for keyless and
    /// multi-key commands (which the server splits itself).
    fn route(&self, command: &Command) -> u16 {
        // A position's partition lives on one shard: an upsert runs there, and a search
        // starts there; asking it directly saves a hop.
        let by_position = match command {
            Command::Geo(GeoCommand::Near(near)) => Some((&near.index, near.area.center)),
            Command::Geo(GeoCommand::Upsert { index, at, .. }) => Some((index, *at)),
            _ => None,
        };
        if let Some((index, at)) = by_position {
            return partition_of(at.lat(), at.lng()).map_or(0, |partition| {
                partition_shard(index, partition, self.inner.hello.shards)
            });
        }
        command.single_key().map_or(0, |key| self.shard_of(key))
    }

    /// Sends any command to the right shard and returns the raw reply.
    ///
    /// # Errors
    /// `Server` for an error reply; `ConnectionLost`/`Connect` for link failures.
    pub async fn call(&self, command: Command) -> Result<Value> {
        let connection = self.connection(self.route(&command)).await?;
        connection.request(command).await
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
    async fn fan_out(&self, command: Command) -> Result<(Combine, Vec<Value>)> {
        let shards = self.inner.hello.shards;
        let split = command.split(&|key| shard_for_key(key, shards));
        let Some(Split { parts, combine }) = split.filter(|s| !s.parts.is_empty()) else {
            let reply = self.call(command).await?;
            return Ok((Combine::AllOk, vec![reply]));
        };
        let calls = parts.into_iter().map(|(shard, part)| async move {
            let connection = self.connection(shard).await?;
            connection.request(part).await
        });
        Ok((combine, try_join_all(calls).await?))
    }
}
