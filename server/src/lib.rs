//! Tessera's server: shards, keyspace and networking; `server::run` is the whole server.

use mimalloc::MiMalloc;

/// Every binary and test linking the server uses the production allocator.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

pub mod blob;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod coordinator;
pub mod geo;
pub mod geo_route;
pub mod inventory;
pub mod keyspace;
pub mod mesh;
pub mod ops;
pub mod server;
pub mod shard;
pub mod signal;
pub mod stats;
pub mod timeline;
pub mod watch;

pub use config::Config;
