//! Client errors: what went wrong, typed so callers can tell a refusal from a lost link.

use tessera_protocol::{ErrorCode, ErrorReply, Value};
use thiserror::Error;

/// Everything a client call can fail with.
#[derive(Debug, Error)]
pub enum Error {
    /// Connecting failed or timed out.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// Address tried.
        address: String,
        /// Underlying failure.
        source: std::io::Error,
    },
    /// The connection closed while the request was in flight or about to be sent; the
    /// request may or may not have run. The next call reconnects.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// No reply came within the configured request timeout; the request may or may not
    /// have run.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// A synchronous write ran on its primary, but only `reached` of the `wanted`
    /// replicas confirmed it in time: a failover may lose it.
    #[error("the write ran but {reached} of {wanted} replicas confirmed it in time")]
    NotReplicated {
        /// Replicas that confirmed.
        reached: u64,
        /// Replicas asked for.
        wanted: u64,
    },
    /// The server answered with an error reply.
    #[error("server error: {0}")]
    Server(ErrorReply),
    /// The call's arguments cannot form a valid request.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server's answer could not be decoded or had an unexpected shape.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    /// The server's error code, when this is an error reply with a known code.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(reply) => reply.known_code(),
            _ => None,
        }
    }

    pub(crate) fn unexpected(what: &str, value: &Value) -> Error {
        Error::Protocol(format!("expected {what}, got {value:?}"))
    }
}

/// Result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
