//! Compact stored byte strings: up to 22 bytes inline, longer ones in one exact-size box,
//! and integers as integers; always 24 bytes, so a slot holding a key and a value stays
//! within one cache line and a short key costs no allocation or pointer chase.

/// Longest byte string kept inline.
pub const INLINE_CAPACITY: usize = 22;

/// A stored byte string or integer.
#[derive(Clone, PartialEq, Eq)]
pub enum Blob {
    /// Short bytes held in place.
    Inline {
        /// Bytes used in `bytes`.
        len: u8,
        /// The bytes, zero-padded.
        bytes: [u8; INLINE_CAPACITY],
    },
    /// Longer bytes on the heap.
    Heap(Box<[u8]>),
    /// An integer written by INCRBY/DECRBY; reads back as decimal text.
    Int(i64),
}

impl Blob {
    /// Copies `bytes` into a blob.
    pub fn new(bytes: &[u8]) -> Blob {
        if bytes.len() <= INLINE_CAPACITY {
            let mut inline = [0u8; INLINE_CAPACITY];
            inline[..bytes.len()].copy_from_slice(bytes);
            Blob::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Blob::Heap(bytes.into())
        }
    }

    /// The bytes, if this holds bytes rather than an integer.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Blob::Inline { len, bytes } => Some(&bytes[..usize::from(*len)]),
            Blob::Heap(bytes) => Some(bytes),
            Blob::Int(_) => None,
        }
    }

    /// Whether this equals `other` as bytes (integers never equal keys).
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        self.as_bytes() == Some(other)
    }

    /// Heap bytes owned, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Blob::Heap(bytes) => bytes.len(),
            _ => 0,
        }
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blob::Int(n) => write!(f, "Int({n})"),
            _ => write!(
                f,
                "{:?}",
                String::from_utf8_lossy(self.as_bytes().unwrap_or_default())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_24_bytes() {
        assert_eq!(std::mem::size_of::<Blob>(), 24);
    }

    #[test]
    fn short_and_long_round_trip() {
        for len in [0, 1, INLINE_CAPACITY, INLINE_CAPACITY + 1, 1000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let blob = Blob::new(&data);
            assert_eq!(blob.as_bytes(), Some(&data[..]));
            assert_eq!(
                blob.heap_bytes(),
                if len > INLINE_CAPACITY { len } else { 0 }
            );
            assert!(blob.eq_bytes(&data));
        }
        assert!(!Blob::Int(1).eq_bytes(b"1"));
    }
}
