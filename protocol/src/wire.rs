//! Primitive encodings shared by every message: varints, zigzag integers, length-prefixed bytes.

use bytes::{BufMut, Bytes};

use crate::error::DecodeError;

/// Longest LEB128 encoding of a `u64`.
pub const MAX_VARINT_LEN: usize = 10;

/// Appends `value` as an unsigned LEB128 varint.
pub fn put_uvarint(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Appends `value` zigzag-mapped, so small negative numbers stay short.
pub fn put_ivarint(buf: &mut impl BufMut, value: i64) {
    put_uvarint(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends a byte string as varint length then the bytes.
pub fn put_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    put_uvarint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

/// Number of bytes `put_uvarint` writes for `value`.
pub fn uvarint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Where decoded arguments live: `Bytes` (owned, shared with the read buffer) or `&[u8]`
/// (borrowed from it, so decoding touches no reference counts).
pub trait Payload: Clone + AsRef<[u8]> {
    /// Splits off and returns the first `n` bytes; `n` never exceeds the length.
    fn take_front(&mut self, n: usize) -> Self;
}

impl Payload for Bytes {
    fn take_front(&mut self, n: usize) -> Self {
        self.split_to(n)
    }
}

impl Payload for &[u8] {
    fn take_front(&mut self, n: usize) -> Self {
        let (front, rest) = self.split_at(n);
        *self = rest;
        front
    }
}

/// A bounds-checked cursor over one frame's body; every read fails cleanly at the end.
#[derive(Debug, Clone)]
pub struct Reader<P = Bytes> {
    buf: P,
}

impl<P: Payload> Reader<P> {
    /// Wraps a frame body.
    pub fn new(buf: P) -> Self {
        Self { buf }
    }

    fn len(&self) -> usize {
        self.buf.as_ref().len()
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        if self.len() < N {
            return Err(DecodeError::Truncated);
        }
        let front = self.buf.take_front(N);
        let mut out = [0u8; N];
        out.copy_from_slice(front.as_ref());
        Ok(out)
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.len()
    }

    /// Fails unless every byte was consumed, so trailing garbage is never ignored.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.len() {
            0 => Ok(()),
            left => Err(DecodeError::TrailingBytes(left)),
        }
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take()?))
    }

    /// Reads a little-endian `f64`.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.take()?))
    }

    /// Reads an unsigned LEB128 varint of at most ten bytes.
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let byte = self.u8()?;
            let low = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads a zigzag varint.
    pub fn ivarint(&mut self) -> Result<i64, DecodeError> {
        let raw = self.uvarint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads a varint count and checks it against the bytes left, before anything is allocated.
    ///
    /// Every element takes at least `min_element_bytes`, so a count larger than what the
    /// frame could hold is refused without trusting it.
    pub fn count(&mut self, min_element_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.uvarint()?;
        let fits = (self.len() / min_element_bytes.max(1)) as u64;
        if count > fits {
            return Err(DecodeError::CountTooLarge(count));
        }
        Ok(count as usize)
    }

    /// Reads a length-prefixed byte string without copying it.
    pub fn bytes(&mut self) -> Result<P, DecodeError> {
        let len = self.uvarint()?;
        if len > self.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.take_front(len as usize))
    }

    /// Reads a length-prefixed string that must be UTF-8.
    pub fn text(&mut self) -> Result<String, DecodeError> {
        let raw = self.bytes()?;
        std::str::from_utf8(raw.as_ref())
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    #[test]
    fn varint_layout_matches_leb128() {
        let mut buf = BytesMut::new();
        put_uvarint(&mut buf, 300);
        assert_eq!(&buf[..], &[0xac, 0x02]);
        buf.clear();
        put_ivarint(&mut buf, -1);
        assert_eq!(&buf[..], &[0x01]);
        buf.clear();
        put_ivarint(&mut buf, 1);
        assert_eq!(&buf[..], &[0x02]);
    }

    #[test]
    fn overlong_varint_is_refused() {
        let mut reader = Reader::new(Bytes::from_static(&[0xff; 11]));
        assert_eq!(reader.uvarint(), Err(DecodeError::VarintOverflow));
        let mut reader = Reader::new(Bytes::from_static(&[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ]));
        assert_eq!(reader.uvarint(), Err(DecodeError::VarintOverflow));
    }

    #[test]
    fn borrowed_and_owned_readers_agree() {
        let mut buf = BytesMut::new();
        put_bytes(&mut buf, b"key");
        put_ivarint(&mut buf, -7);
        let mut owned = Reader::new(buf.clone().freeze());
        let mut borrowed = Reader::new(&buf[..]);
        assert_eq!(&owned.bytes().unwrap()[..], borrowed.bytes().unwrap());
        assert_eq!(owned.ivarint(), borrowed.ivarint());
        assert!(owned.finish().is_ok() && borrowed.finish().is_ok());
    }

    #[test]
    fn count_larger_than_frame_is_refused_before_allocation() {
        let mut buf = BytesMut::new();
        put_uvarint(&mut buf, u64::MAX);
        let mut reader = Reader::new(buf.freeze());
        assert!(matches!(
            reader.count(1),
            Err(DecodeError::CountTooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn uvarint_round_trips(value: u64) {
            let mut buf = BytesMut::new();
            put_uvarint(&mut buf, value);
            prop_assert_eq!(buf.len(), uvarint_len(value));
            let mut reader = Reader::new(buf.freeze());
            prop_assert_eq!(reader.uvarint().unwrap(), value);
            prop_assert!(reader.finish().is_ok());
        }

        #[test]
        fn ivarint_round_trips(value: i64) {
            let mut buf = BytesMut::new();
            put_ivarint(&mut buf, value);
            let mut reader = Reader::new(buf.freeze());
            prop_assert_eq!(reader.ivarint().unwrap(), value);
        }
    }
}
