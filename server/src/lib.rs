//! Tessera's server: `server::run` is the whole server.
//!
//! Layers, each calling only the ones below it:
//! `net` (sockets, frames) → `route` (where a request runs, split and gathered) →
//! `shard` (one thread's state, the mesh, the cross-shard call) → `families` (each command
//! family's operations) → `data` (keyspace and the structures values live in).

/// Every binary and test linking the server uses the production allocator, counted.
#[global_allocator]
static GLOBAL: memory::CountingAllocator = memory::CountingAllocator;

pub mod acl;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod families;
pub mod memory;
pub mod net;
pub mod persist;
pub mod resp;
pub mod route;
pub mod server;
pub mod shard;
pub mod signal;
pub mod startup;

pub use config::Config;
