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

/// Reads `data` as RESP requests whole and in uneven pieces: both must yield the same
/// requests and the same refusal, and no claimed length may cost memory before it arrives.
pub fn resp_request(data: &[u8]) {
    let authenticated = data.first().is_some_and(|b| b & 1 == 1);
    let whole = resp_all(&[data], authenticated);
    let step = usize::from(data.get(1).copied().unwrap_or(1)).max(1);
    let pieces: Vec<&[u8]> = data.chunks(step).collect();
    assert_eq!(
        whole,
        resp_all(&pieces, authenticated),
        "reading depends on how bytes arrive"
    );
    for args in &whole.0 {
        if let Ok(command) = Command::parse_words(args) {
            assert_round_trips(&command);
        }
    }
}

type RespRead = (Vec<Vec<Bytes>>, Option<crate::resp::ProtocolError>);

fn resp_all(pieces: &[&[u8]], authenticated: bool) -> RespRead {
    let mut parser = crate::resp::RequestParser::new(64 * 1024);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match parser.next(&mut buf, authenticated) {
                Ok(Some(args)) => requests.push(args),
                Ok(None) => break,
                Err(error) => return (requests, Some(error)),
            }
        }
    }
    (requests, None)
}
