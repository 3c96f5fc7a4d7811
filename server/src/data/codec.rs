//! The byte layout values are saved in (varints, fixed-width numbers, length-prefixed
//! bytes, read back with every length checked) and the CRC-checked records that carry them.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Record header: length, its CRC, then the payload's CRC (see `persist::log`).
pub const RECORD_HEADER: usize = 12;

pub(crate) fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Largest record accepted when reading: a frame's largest body and then some.
pub const MAX_RECORD: usize = (1 << 30) + 64;

/// How a segment's records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// After its last whole record.
    Clean,
    /// In a record cut short at `offset` (a write the crash interrupted).
    Torn {
        /// Where the partial record starts.
        offset: u64,
    },
    /// At a whole record that fails its check, at `offset`.
    Corrupt {
        /// Where the bad record starts.
        offset: u64,
    },
}

/// Checks the records framed in `data` for file `id` one by one, handing each whole,
/// checked payload to `visit`; answers how they end and the offset (in the file, whose
/// records start at `base`) just past the last good one.
pub fn each_record<'a>(
    data: &'a [u8],
    id: u64,
    base: u64,
    mut visit: impl FnMut(&'a [u8]),
) -> (Tail, u64) {
    let seed = crc32c::crc32c(&id.to_le_bytes());
    let mut at = 0;
    let tail = loop {
        if at == data.len() {
            break Tail::Clean;
        }
        let offset = base + at as u64;
        if at + RECORD_HEADER > data.len() {
            break Tail::Torn { offset };
        }
        let len = u32_at(data, at) as usize;
        let len_crc = u32_at(data, at + 4);
        let crc = u32_at(data, at + 8);
        if data[at..at + RECORD_HEADER].iter().all(|&b| b == 0) {
            // Zeros where a header should be: space the file system extended but the
            // crash never filled. Every real record has a checked header.
            break Tail::Torn { offset };
        }
        if crc32c::crc32c_append(seed, &data[at..at + 4]) != len_crc || len > MAX_RECORD {
            break Tail::Corrupt { offset };
        }
        let body = at + RECORD_HEADER;
        if body + len > data.len() {
            break Tail::Torn { offset };
        }
        if crc32c::crc32c_append(seed, &data[body..body + len]) != crc {
            break Tail::Corrupt { offset };
        }
        visit(&data[body..body + len]);
        at = body + len;
    };
    let good_len = match tail {
        Tail::Clean => base + data.len() as u64,
        Tail::Torn { offset } | Tail::Corrupt { offset } => offset,
    };
    (tail, good_len)
}

/// Appends `payload` as one record, leaving its CRCs to `seal`: records are framed as
/// they are made, before the file they will land in is known.
pub fn frame(buf: &mut BytesMut, payload: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER]);
    payload(buf);
    let len = (buf.len() - start - RECORD_HEADER) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Fills in the CRCs of every record framed in `buf` for the file numbered `segment`.
pub fn seal(buf: &mut [u8], segment: u64) {
    let seed = crc32c::crc32c(&segment.to_le_bytes());
    let mut at = 0;
    while at + RECORD_HEADER <= buf.len() {
        let len = u32_at(buf, at) as usize;
        let body = at + RECORD_HEADER;
        let len_crc = crc32c::crc32c_append(seed, &buf[at..at + 4]);
        let crc = crc32c::crc32c_append(seed, &buf[body..body + len]);
        buf[at + 4..at + 8].copy_from_slice(&len_crc.to_le_bytes());
        buf[at + 8..body].copy_from_slice(&crc.to_le_bytes());
        at = body + len;
    }
}

/// The payloads of the records framed in `buf` (before or after `seal`).
pub fn unframe(buf: &[u8]) -> Vec<Bytes> {
    let mut records = Vec::new();
    let mut at = 0;
    while at + RECORD_HEADER <= buf.len() {
        let len = u32_at(buf, at) as usize;
        let body = at + RECORD_HEADER;
        records.push(Bytes::copy_from_slice(&buf[body..body + len]));
        at = body + len;
    }
    records
}

/// Saved bytes that do not read back as what was saved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("saved value is damaged: {0}")]
pub struct Damaged(pub &'static str);

/// Writes values.
pub struct Out<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Out<'a> {
    /// Writes into `buf`.
    pub fn new(buf: &'a mut BytesMut) -> Out<'a> {
        Out { buf }
    }

    /// An unsigned integer, 7 bits a byte.
    pub fn uint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.put_u8(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.put_u8(value as u8);
    }

    /// A signed integer, zigzag then varint.
    pub fn int(&mut self, value: i64) {
        self.uint(((value << 1) ^ (value >> 63)) as u64);
    }

    /// A float, exactly.
    pub fn float(&mut self, value: f64) {
        self.buf.put_u64_le(value.to_bits());
    }

    /// One byte.
    pub fn byte(&mut self, value: u8) {
        self.buf.put_u8(value);
    }

    /// Bytes with their length.
    pub fn bytes(&mut self, value: &[u8]) {
        self.uint(value.len() as u64);
        self.buf.put_slice(value);
    }

    /// Bytes that may be absent.
    pub fn maybe_bytes(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                self.byte(1);
                self.bytes(value);
            }
            None => self.byte(0),
        }
    }
}

/// Reads values back in the order they were written.
pub struct In<'a> {
    data: &'a [u8],
}

impl<'a> In<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> In<'a> {
        In { data }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte.
    ///
    /// # Errors
    /// Nothing is left.
    pub fn byte(&mut self) -> Result<u8, Damaged> {
        let (&first, rest) = self.data.split_first().ok_or(Damaged("cut short"))?;
        self.data = rest;
        Ok(first)
    }

    /// An unsigned integer.
    ///
    /// # Errors
    /// Cut short, or longer than 64 bits.
    pub fn uint(&mut self) -> Result<u64, Damaged> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Damaged("integer longer than 64 bits"))
    }

    /// A signed integer.
    ///
    /// # Errors
    /// As `uint`.
    pub fn int(&mut self) -> Result<i64, Damaged> {
        let raw = self.uint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A float.
    ///
    /// # Errors
    /// Cut short.
    pub fn float(&mut self) -> Result<f64, Damaged> {
        let raw = self.take(8)?;
        let mut bits = [0u8; 8];
        bits.copy_from_slice(raw);
        Ok(f64::from_bits(u64::from_le_bytes(bits)))
    }

    /// A count of items to follow, each at least one byte long, so a damaged count cannot
    /// make a reader reserve more than the input could hold.
    ///
    /// # Errors
    /// As `uint`, or more items than bytes left.
    pub fn count(&mut self) -> Result<usize, Damaged> {
        let count = self.uint()?;
        if count > self.data.len() as u64 {
            return Err(Damaged("count larger than the bytes left"));
        }
        Ok(count as usize)
    }

    /// `len` bytes.
    ///
    /// # Errors
    /// Fewer are left.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], Damaged> {
        if len > self.data.len() {
            return Err(Damaged("cut short"));
        }
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        Ok(taken)
    }

    /// Bytes with their length.
    ///
    /// # Errors
    /// Cut short.
    pub fn bytes(&mut self) -> Result<&'a [u8], Damaged> {
        let len = self.uint()?;
        self.take(usize::try_from(len).map_err(|_| Damaged("length too large"))?)
    }

    /// Bytes that may be absent.
    ///
    /// # Errors
    /// Cut short, or a marker other than 0 or 1.
    pub fn maybe_bytes(&mut self) -> Result<Option<&'a [u8]>, Damaged> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.bytes().map(Some),
            _ => Err(Damaged("bad presence marker")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let mut buf = BytesMut::new();
        let mut out = Out::new(&mut buf);
        for n in [0i64, -1, 1, i64::MIN, i64::MAX] {
            out.int(n);
        }
        out.uint(u64::MAX);
        out.float(-0.5);
        out.bytes(b"hello");
        out.maybe_bytes(None);
        out.maybe_bytes(Some(b""));
        let mut input = In::new(&buf);
        for n in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(input.int().unwrap(), n);
        }
        assert_eq!(input.uint().unwrap(), u64::MAX);
        assert_eq!(input.float().unwrap(), -0.5);
        assert_eq!(input.bytes().unwrap(), b"hello");
        assert_eq!(input.maybe_bytes().unwrap(), None);
        assert_eq!(input.maybe_bytes().unwrap(), Some(&b""[..]));
        assert!(input.is_empty());
    }

    #[test]
    fn a_cut_input_is_damaged_not_a_panic() {
        let mut buf = BytesMut::new();
        Out::new(&mut buf).bytes(b"a long enough value");
        for cut in 0..buf.len() {
            assert!(In::new(&buf[..cut]).bytes().is_err());
        }
    }
}
