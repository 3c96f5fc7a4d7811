//! Client connections: frames in, replies and pushes out.

pub mod access;
pub mod cluster;
pub mod connection;
pub mod tls;
