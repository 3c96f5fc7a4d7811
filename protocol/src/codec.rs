//! tokio-util `Decoder`/`Encoder` adaptors: the one place the codec meets a runtime's framing.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;
use crate::frame::{Frame, FrameDecoder};
use crate::{encode_request, encode_response, Command, Value};

/// Client side: encodes requests, decodes response frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientCodec {
    frames: FrameDecoder,
}

impl ClientCodec {
    /// A codec refusing response frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            frames: FrameDecoder::new(max_frame_bytes),
        }
    }
}

impl Decoder for ClientCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.frames.decode(src)
    }
}

impl Encoder<(u32, &Command)> for ClientCodec {
    type Error = FrameError;

    fn encode(
        &mut self,
        (id, command): (u32, &Command),
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        encode_request(dst, id, command);
        Ok(())
    }
}

/// Server side: decodes request frames, encodes responses.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerCodec {
    frames: FrameDecoder,
}

impl ServerCodec {
    /// A codec refusing request frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            frames: FrameDecoder::new(max_frame_bytes),
        }
    }
}

impl Decoder for ServerCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.frames.decode(src)
    }
}

impl Encoder<(u32, &Value)> for ServerCodec {
    type Error = FrameError;

    fn encode(&mut self, (id, value): (u32, &Value), dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_response(dst, id, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyCommand;
    use bytes::Bytes;

    #[test]
    fn request_travels_from_client_to_server_codec() {
        let mut wire = BytesMut::new();
        let command = Command::Keys(KeyCommand::Get(Bytes::from_static(b"key")));
        ClientCodec::default()
            .encode((42, &command), &mut wire)
            .unwrap();
        let frame = ServerCodec::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!(frame.id, 42);
        assert_eq!(Command::decode(frame.body).unwrap(), command);
    }

    #[test]
    fn response_travels_from_server_to_client_codec() {
        let mut wire = BytesMut::new();
        ServerCodec::default()
            .encode((7, &Value::Int(5)), &mut wire)
            .unwrap();
        let frame = ClientCodec::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!(
            (frame.id, Value::decode(frame.body).unwrap()),
            (7, Value::Int(5))
        );
    }
}
