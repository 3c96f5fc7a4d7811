//! Where values live: the keyspace and the structures each kind of value is kept in.

pub mod backlog;
pub mod blob;
pub mod blocked;
pub mod codec;
pub mod geo;
pub mod geohash;
pub mod glob;
pub mod inventory;
pub mod keyspace;
pub mod members;
pub mod notices;
pub mod ordered;
pub mod pubsub;
pub mod score_set;
pub mod timeline;
pub mod tx_watch;
pub mod watch;
