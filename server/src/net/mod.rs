//! Client connections: frames in, replies and pushes out.

pub mod connection;
