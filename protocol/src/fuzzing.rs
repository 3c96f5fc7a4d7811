//! Entry points shared by the cargo-fuzz targets and the stable corpus replay test.
//!
//! Each function must never panic on any input; the assertions inside are properties
//! that hold for every input, so a failure is a real bug.

use bytes::{Bytes, BytesMut};

use crate::{Command, FrameDecoder, Value};

/// Feeds `data` to the frame decoder whole and in uneven pieces; both must yield the same
/// frames, and every frame body goes through both body decoders.
pub fn frame_decoder(data: &[u8]) {
    let decoder = FrameDecoder::new(64 * 1024);
    let whole = decode_all(&decoder, &[data]);
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let pieces: Vec<&[u8]> = data.chunks(step).collect();
    let chunked = decode_all(&decoder, &pieces);
    assert_eq!(whole, chunked, "framing depends on how bytes arrive");
    for body in whole.0 {
        let _ = Value::decode(body.clone());
        command_body(body);
    }
}

type Decoded = (Vec<Bytes>, bool);

fn decode_all(decoder: &FrameDecoder, pieces: &[&[u8]]) -> Decoded {
    let mut buf = BytesMut::new();
    let mut bodies = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => bodies.push(frame.body),
                Ok(None) => break,
                Err(_) => return (bodies, true),
            }
        }
    }
    (bodies, false)
}

/// Decodes `data` as a request body; whatever decodes must re-encode to an equal command.
pub fn command_parser(data: &[u8]) {
    command_body(Bytes::copy_from_slice(data));
    let words: Vec<Bytes> = data
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    if let Ok(command) = Command::parse_words(&words) {
        assert_round_trips(&command);
    }
}

fn command_body(body: Bytes) {
    let borrowed = Command::<&[u8]>::decode(&body[..]).map(|c| c.to_owned_bytes());
    let owned = Command::decode(body);
    assert_eq!(borrowed, owned, "borrowed and owned decoding agree");
    if let Ok(command) = owned {
        assert_round_trips(&command);
    }
}

fn assert_round_trips(command: &Command) {
    let mut buf = BytesMut::new();
    command.encode(&mut buf);
    assert_eq!(
        Command::decode(buf.freeze()).as_ref(),
        Ok(command),
        "commands round-trip"
    );
}
