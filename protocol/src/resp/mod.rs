//! RESP, the protocol Redis clients speak: requests parsed as Redis parses them, replies
//! written in RESP2 or RESP3.

pub mod reply;
pub mod request;

pub use reply::{bulk, bulk_array, encode, encode_push, encode_status, error_line, RespVersion};
pub use request::{ProtocolError, Request, RequestParser};
