//! Tessera's wire protocol: a pure codec — no I/O, no runtime, no sockets.
//!
//! Every message, in both directions, is one frame:
//!
//! ```text
//! +-----------+---------------+------------------------------------------+
//! | len: u32  | request id:u32| body (len - 4 bytes)                     |
//! +-----------+---------------+------------------------------------------+
//!   little-endian; len counts the id and the body, not itself
//!
//! request body : opcode:u16  arguments (per command, see `commands::COMMANDS`)
//! response body: exactly one `Value` (tag:u8 then payload)
//! ```
//!
//! Responses carry their request's id and may arrive in any order; id 0 is reserved for
//! frames the server sends unasked. `docs/PROTOCOL.md` is the normative description.

pub mod commands;
pub mod error;
pub mod frame;
pub mod fuzzing;
pub mod hello;
pub mod resp;
pub mod value;
pub mod wire;

#[cfg(feature = "codec")]
pub mod codec;

pub use commands::geo;
pub use commands::{
    AdminCommand, ClusterCommand, Combine, Command, CommandSpec, CounterCommand, DedupCommand,
    DiagnosticsCommand, GeoCommand, IdemCommand, InventoryCommand, KeyCommand, KeySpec,
    KeyspaceCommand, LimitCommand, ListCommand, PresenceCommand, PubSubCommand, SetArgs,
    SetCommand, SetCondition, SetExpiry, ShapeError, Split, TimelineCommand, Typed,
    VersionedCommand, COMMANDS, PROTOCOL_VERSION,
};
pub use error::{DecodeError, ErrorCode, FrameError};
pub use frame::{Frame, FrameDecoder, Located, PUSH_ID};
pub use hello::HelloInfo;
pub use value::{ErrorReply, Value};

use bytes::BytesMut;

/// Port a node listens on, and a client connects to, when none is given.
pub const DEFAULT_PORT: u16 = 7379;

/// Appends a whole request frame: header, opcode, arguments.
pub fn encode_request(dst: &mut BytesMut, id: u32, command: &Command) {
    let start = frame::begin_frame(dst, id);
    command.encode(dst);
    frame::finish_frame(dst, start);
}

/// Appends a response frame whose value is BYTES `bytes`, without building a `Value`.
pub fn encode_bytes_response(dst: &mut BytesMut, id: u32, bytes: &[u8]) {
    use bytes::BufMut;
    let start = frame::begin_frame(dst, id);
    dst.put_u8(value::tag::BYTES);
    wire::put_bytes(dst, bytes);
    frame::finish_frame(dst, start);
}

/// Appends a response frame whose value is an ARRAY of BYTES, without building `Value`s.
pub fn encode_bytes_array_response(dst: &mut BytesMut, id: u32, items: &[&[u8]]) {
    use bytes::BufMut;
    let start = frame::begin_frame(dst, id);
    dst.put_u8(value::tag::ARRAY);
    wire::put_uvarint(dst, items.len() as u64);
    for item in items {
        dst.put_u8(value::tag::BYTES);
        wire::put_bytes(dst, item);
    }
    frame::finish_frame(dst, start);
}

/// Appends a whole response frame carrying `value`.
pub fn encode_response(dst: &mut BytesMut, id: u32, value: &Value) {
    let start = frame::begin_frame(dst, id);
    value.encode(dst);
    frame::finish_frame(dst, start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn replies_written_without_values_match_their_values() {
        let (mut direct, mut built) = (BytesMut::new(), BytesMut::new());
        encode_bytes_array_response(&mut direct, 7, &[b"ann", b"", b"bob"]);
        let items = [&b"ann"[..], b"", b"bob"].map(|m| Value::Bytes(Bytes::copy_from_slice(m)));
        encode_response(&mut built, 7, &Value::Array(items.to_vec()));
        assert_eq!(direct, built);
        let (mut direct, mut built) = (BytesMut::new(), BytesMut::new());
        encode_bytes_response(&mut direct, 9, b"v");
        encode_response(&mut built, 9, &Value::Bytes(Bytes::from_static(b"v")));
        assert_eq!(direct, built);
    }
}
