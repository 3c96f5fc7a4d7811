//! Where each request runs: on the shard that owns its keys, split by owner and gathered.

pub mod cluster;
pub mod coordinator;
pub mod geo;
pub mod info;
pub mod migrate;
pub mod replicate;
