//! Where each request runs: on the shard that owns its keys, split by owner and gathered.

pub mod acks;
pub mod blocking;
pub mod cluster;
pub mod coordinator;
pub mod every_shard;
pub mod geo;
pub mod handover;
pub mod info;
pub mod migrate;
pub mod pubsub;
pub mod relay;
pub mod replicate;
