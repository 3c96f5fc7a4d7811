//! One shard's append-only log: numbered segment files of length-prefixed, CRC32C-checked
//! records, written in batches and read back in order.
//!
//! A segment starts with `SEGMENT_MAGIC` and its id (u64 LE). Each record is
//! `len: u32 LE`, `len_crc: u32 LE`, `crc: u32 LE`, then `len` payload bytes. Both CRCs
//! start from the segment id, so a record that turns up in a segment it was not written
//! to (a stale or copied file) fails its check like a flipped bit does. The length has a
//! check of its own so that a damaged length is told apart from a torn write: only a
//! record whose checked header is whole but whose body runs past the end of the file is
//! a torn tail.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"TSRLOG01";
/// Segment header: magic, then the segment id.
pub const SEGMENT_HEADER: usize = 16;
pub use crate::data::codec::{each_record, frame, seal, unframe, Tail, MAX_RECORD, RECORD_HEADER};

/// The file name of segment `id`.
pub fn segment_name(id: u64) -> String {
    format!("log-{id:020}.tlog")
}

/// The segment id a file name gives, if it names a segment.
pub fn segment_id(name: &str) -> Option<u64> {
    name.strip_prefix("log-")?
        .strip_suffix(".tlog")?
        .parse()
        .ok()
}

/// The segments in `dir`, by id.
///
/// # Errors
/// The directory cannot be read.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(segment_id) {
            found.push((id, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// The segment being appended to.
pub struct Segment {
    /// Its id.
    pub id: u64,
    /// Its file, shared with whoever syncs it off the shard's thread.
    pub file: Arc<File>,
    /// Bytes in the file.
    pub len: u64,
}

impl Segment {
    /// Creates segment `id` in `dir` and makes its name durable.
    ///
    /// # Errors
    /// The file cannot be created, written or synced.
    pub fn create(dir: &Path, id: u64) -> io::Result<Segment> {
        let path = dir.join(segment_name(id));
        // Appending: after a failed write is cut back off the file, the next write must
        // land at the new end, not where the failed one left the cursor.
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let mut header = [0u8; SEGMENT_HEADER];
        header[..8].copy_from_slice(SEGMENT_MAGIC);
        header[8..].copy_from_slice(&id.to_le_bytes());
        file.write_all(&header)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Segment {
            id,
            file: Arc::new(file),
            len: SEGMENT_HEADER as u64,
        })
    }

    /// Seals and writes a batch of framed records (into the page cache: `sync` makes them
    /// durable).
    ///
    /// # Errors
    /// The write failed (a full disk, an I/O error); part of the batch may be in the file.
    pub fn append(&mut self, batch: &mut [u8]) -> io::Result<()> {
        seal(batch, self.id);
        (&*self.file).write_all(batch)?;
        self.len += batch.len() as u64;
        Ok(())
    }
}

/// Makes a directory's entries (files created, renamed or removed in it) durable.
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A segment read back.
pub struct SegmentRead {
    /// Its whole, checked records' payloads, in order.
    pub records: Vec<Bytes>,
    /// How it ends.
    pub tail: Tail,
    /// Bytes up to the end of the last good record.
    pub good_len: u64,
}

/// Reads segment `id` at `path`.
///
/// # Errors
/// The file cannot be read, or its header is not segment `id`'s (reported as
/// `InvalidData`).
pub fn read_segment(path: &Path, id: u64) -> io::Result<SegmentRead> {
    let data = Bytes::from(std::fs::read(path)?);
    if data.len() < SEGMENT_HEADER {
        // Created but its header never landed: nothing in it was ever acknowledged.
        return Ok(SegmentRead {
            records: Vec::new(),
            tail: Tail::Torn { offset: 0 },
            good_len: 0,
        });
    }
    if &data[..8] != SEGMENT_MAGIC || data[8..16] != id.to_le_bytes() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not log segment {id}", path.display()),
        ));
    }
    Ok(read_records(
        &data.slice(SEGMENT_HEADER..),
        id,
        SEGMENT_HEADER as u64,
    ))
}

/// Reads the records framed in `data` for file `id`, which start at offset `base` of
/// their file; offsets in the answer are the file's.
pub fn read_records(data: &Bytes, id: u64, base: u64) -> SegmentRead {
    let mut records = Vec::new();
    let (tail, good_len) = each_record(data, id, base, |body| records.push(data.slice_ref(body)));
    SegmentRead {
        records,
        tail,
        good_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(dir: &Path, id: u64, payloads: &[&[u8]]) -> PathBuf {
        let mut segment = Segment::create(dir, id).unwrap();
        let mut batch = bytes::BytesMut::new();
        for payload in payloads {
            frame(&mut batch, |buf| buf.extend_from_slice(payload));
        }
        segment.append(&mut batch).unwrap();
        dir.join(segment_name(id))
    }

    #[test]
    fn records_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_records(dir.path(), 7, &[b"one", b"two", b"three"]);
        let read = read_segment(&path, 7).unwrap();
        assert_eq!(read.tail, Tail::Clean);
        assert_eq!(read.records, vec!["one", "two", "three"]);
        assert_eq!(segments(dir.path()).unwrap(), vec![(7, path)]);
    }

    #[test]
    fn a_tail_cut_anywhere_in_the_last_record_is_torn_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_records(dir.path(), 1, &[b"first", b"second record"]);
        let full = std::fs::read(&path).unwrap();
        let last_start = SEGMENT_HEADER + RECORD_HEADER + 5;
        for cut in last_start + 1..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let read = read_segment(&path, 1).unwrap();
            assert_eq!(read.records, vec!["first"], "cut at {cut}");
            assert_eq!(
                read.tail,
                Tail::Torn {
                    offset: last_start as u64
                }
            );
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_records(dir.path(), 3, &[b"first", b"middle", b"last"]);
        let full = std::fs::read(&path).unwrap();
        let middle = SEGMENT_HEADER + RECORD_HEADER + 5;
        for byte in middle..middle + RECORD_HEADER + 6 {
            for bit in 0..8 {
                let mut bad = full.clone();
                bad[byte] ^= 1 << bit;
                std::fs::write(&path, &bad).unwrap();
                let read = read_segment(&path, 3).unwrap();
                assert_eq!(read.records, vec!["first"], "byte {byte} bit {bit}");
                assert_eq!(
                    read.tail,
                    Tail::Corrupt {
                        offset: middle as u64
                    },
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn a_record_moved_to_another_segment_fails_its_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_records(dir.path(), 4, &[b"record"]);
        let mut moved = std::fs::read(&path).unwrap();
        moved[8..16].copy_from_slice(&5u64.to_le_bytes());
        let other = dir.path().join(segment_name(5));
        std::fs::write(&other, moved).unwrap();
        let read = read_segment(&other, 5).unwrap();
        assert!(read.records.is_empty());
        assert!(matches!(read.tail, Tail::Corrupt { .. }));
    }
}
