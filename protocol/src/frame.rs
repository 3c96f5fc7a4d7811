//! Framing: a two-state decoder that splits a byte stream into `(request id, body)` frames.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::FrameError;

/// Bytes before the body: `u32` length then `u32` request id, both little-endian.
pub const HEADER_LEN: usize = 8;
/// Bytes of the length prefix alone.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Request id reserved for frames the server sends unasked (pushes, closing errors).
pub const PUSH_ID: u32 = 0;
/// Default ceiling on one frame's length, prefix excluded.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// One frame: the request id and the body, which borrows the read buffer without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Request id chosen by the client; `PUSH_ID` for server pushes.
    pub id: u32,
    /// Opcode and arguments (requests) or one value (responses).
    pub body: Bytes,
}

/// Where the next frame lies in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// A whole frame: `len` bytes from the start of the buffer, prefix included; the body
    /// is `HEADER_LEN..len`.
    Frame {
        /// Request id.
        id: u32,
        /// Bytes the whole frame occupies.
        len: usize,
    },
    /// Not all of it has arrived; the frame (or its prefix) needs `total` bytes.
    Incomplete {
        /// Bytes needed from the start of the buffer.
        total: usize,
    },
}

/// Splits frames off a buffer, refusing oversize ones before buffering their bodies.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// Creates a decoder that refuses frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// Largest frame this decoder accepts.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Finds the next frame at the front of `src` without consuming or copying it, so a
    /// server can decode the body in place and advance past it afterwards.
    ///
    /// # Errors
    /// As `decode`.
    pub fn locate(&self, src: &[u8]) -> Result<Located, FrameError> {
        if src.len() < LENGTH_PREFIX_LEN {
            return Ok(Located::Incomplete {
                total: LENGTH_PREFIX_LEN,
            });
        }
        let len = u32::from_le_bytes([src[0], src[1], src[2], src[3]]);
        if (len as usize) < HEADER_LEN - LENGTH_PREFIX_LEN {
            return Err(FrameError::TooShort(len));
        }
        if len as usize > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                len: u64::from(len),
                max: self.max_frame_bytes,
            });
        }
        let total = LENGTH_PREFIX_LEN + len as usize;
        if src.len() < total {
            return Ok(Located::Incomplete { total });
        }
        let id = u32::from_le_bytes([src[4], src[5], src[6], src[7]]);
        Ok(Located::Frame { id, len: total })
    }

    /// Takes the next whole frame off the front of `src`.
    ///
    /// `Ok(None)` means more bytes are needed; space for the rest of a started frame is
    /// reserved so the next read fills it in one go.
    ///
    /// # Errors
    /// `TooLarge` or `TooShort` when the length prefix cannot be honoured; the stream is
    /// then out of sync and must be closed.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.locate(src)? {
            Located::Incomplete { total } => {
                src.reserve(total.saturating_sub(src.len()));
                Ok(None)
            }
            Located::Frame { id, len } => {
                let mut frame = src.split_to(len);
                frame.advance(HEADER_LEN);
                Ok(Some(Frame {
                    id,
                    body: frame.freeze(),
                }))
            }
        }
    }
}

/// Starts a frame in `dst` and returns the offset whose length `finish_frame` back-patches.
pub fn begin_frame(dst: &mut BytesMut, id: u32) -> usize {
    let start = dst.len();
    dst.put_u32_le(0);
    dst.put_u32_le(id);
    start
}

/// Writes the length prefix of the frame begun at `start`, now that its body is written.
pub fn finish_frame(dst: &mut BytesMut, start: usize) {
    let len = (dst.len() - start - LENGTH_PREFIX_LEN) as u32;
    dst[start..start + LENGTH_PREFIX_LEN].copy_from_slice(&len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(id: u32, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        let start = begin_frame(&mut buf, id);
        buf.put_slice(body);
        finish_frame(&mut buf, start);
        buf
    }

    #[test]
    fn layout_is_length_then_id_then_body() {
        let buf = frame_bytes(7, &[0xaa, 0xbb]);
        assert_eq!(&buf[..], &[6, 0, 0, 0, 7, 0, 0, 0, 0xaa, 0xbb]);
    }

    #[test]
    fn decodes_back_to_back_frames() {
        let mut buf = frame_bytes(1, b"one");
        buf.extend_from_slice(&frame_bytes(2, b"two"));
        let decoder = FrameDecoder::default();
        let first = decoder.decode(&mut buf).unwrap().unwrap();
        let second = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!((first.id, &first.body[..]), (1, &b"one"[..]));
        assert_eq!((second.id, &second.body[..]), (2, &b"two"[..]));
        assert!(decoder.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn every_truncation_asks_for_more() {
        let whole = frame_bytes(9, b"payload");
        let decoder = FrameDecoder::default();
        for cut in 0..whole.len() {
            let mut partial = BytesMut::from(&whole[..cut]);
            assert!(
                decoder.decode(&mut partial).unwrap().is_none(),
                "cut at {cut}"
            );
            assert_eq!(partial.len(), cut, "a partial frame is never consumed");
        }
    }

    #[test]
    fn locate_finds_frames_in_place() {
        let mut buf = frame_bytes(5, b"abc");
        buf.extend_from_slice(&frame_bytes(6, b"")[..6]);
        let decoder = FrameDecoder::default();
        assert_eq!(
            decoder.locate(&buf).unwrap(),
            Located::Frame { id: 5, len: 11 }
        );
        assert_eq!(&buf[HEADER_LEN..11], b"abc");
        assert_eq!(
            decoder.locate(&buf[11..]).unwrap(),
            Located::Incomplete { total: 8 }
        );
        assert_eq!(
            decoder.locate(&buf[..2]).unwrap(),
            Located::Incomplete { total: 4 }
        );
    }

    #[test]
    fn oversize_prefix_is_refused_before_buffering() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let err = FrameDecoder::new(1024).decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            }
        ));
        assert!(
            buf.capacity() < 1024,
            "nothing was reserved for the refused frame"
        );
    }

    #[test]
    fn prefix_shorter_than_header_is_refused() {
        let mut buf = BytesMut::from(&[3, 0, 0, 0, 1, 2, 3][..]);
        assert!(matches!(
            FrameDecoder::default().decode(&mut buf),
            Err(FrameError::TooShort(3))
        ));
    }
}
