//! Snapshot files: one shard's entries at a point in time, written while the shard keeps
//! serving, and read back at start.
//!
//! `snap-N.tsnap` covers every change before log segment `N`: recovery loads it and then
//! replays segments `N` and later. Layout: `SNAPSHOT_MAGIC`, `N` (u64 LE), the cut's time
//! (u64 LE, Unix ms), the writing shard and the shard count (u16 LE each), then entries
//! framed as log records (CRCs seeded with `N`), then `FOOTER_MAGIC` and the entry count
//! (u64 LE). A snapshot is written as `.tmp` and renamed once whole and synced, and the
//! shard's `MANIFEST` then names it, so a crash mid-snapshot leaves the previous one in
//! charge.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::log::{self, Tail};

/// First bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"TSRSNP01";
/// First bytes of its footer.
pub const FOOTER_MAGIC: &[u8; 8] = b"TSRSEND1";
/// Header: magic, number, cut time, shard, shard count.
const HEADER: usize = 8 + 8 + 8 + 2 + 2;
/// Footer: magic, entry count.
const FOOTER: usize = 16;
/// Bytes read from a snapshot at a time while loading it.
const READ_CHUNK: usize = 4 << 20;

/// The file name of snapshot `number`.
pub fn snapshot_name(number: u64) -> String {
    format!("snap-{number:020}.tsnap")
}

/// What a snapshot's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its number: the first log segment it does not cover.
    pub number: u64,
    /// When the cut was made (Unix ms).
    pub cut_ms: u64,
    /// The shard that wrote it.
    pub shard: u16,
    /// Shards the node ran when it was written.
    pub shards: u16,
}

/// A snapshot being written.
pub struct SnapshotWriter {
    info: SnapshotInfo,
    staged: PathBuf,
    file: File,
    bytes: u64,
}

impl SnapshotWriter {
    /// Starts writing a snapshot in `dir`.
    ///
    /// # Errors
    /// The staging file cannot be created or written.
    pub fn create(dir: &Path, info: SnapshotInfo) -> io::Result<SnapshotWriter> {
        let staged = dir.join(format!("{}.tmp", snapshot_name(info.number)));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&staged)?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(SNAPSHOT_MAGIC);
        header.extend_from_slice(&info.number.to_le_bytes());
        header.extend_from_slice(&info.cut_ms.to_le_bytes());
        header.extend_from_slice(&info.shard.to_le_bytes());
        header.extend_from_slice(&info.shards.to_le_bytes());
        file.write_all(&header)?;
        Ok(SnapshotWriter {
            info,
            staged,
            file,
            bytes: HEADER as u64,
        })
    }

    /// Writes a batch of framed entries.
    ///
    /// # Errors
    /// The write failed.
    pub fn append(&mut self, entries: &mut [u8]) -> io::Result<()> {
        log::seal(entries, self.info.number);
        self.file.write_all(entries)?;
        self.bytes += entries.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes the footer and syncs the file: after this the work left is `publish`, which
    /// may run off the shard's thread.
    ///
    /// # Errors
    /// The write or sync failed.
    pub fn finish(mut self, entries: u64) -> io::Result<Finished> {
        let mut footer = [0u8; FOOTER];
        footer[..8].copy_from_slice(FOOTER_MAGIC);
        footer[8..].copy_from_slice(&entries.to_le_bytes());
        self.file.write_all(&footer)?;
        self.bytes += FOOTER as u64;
        Ok(Finished {
            info: self.info,
            staged: self.staged,
            file: self.file,
            bytes: self.bytes,
        })
    }
}

/// A snapshot written in full, not yet in charge.
pub struct Finished {
    /// What its header says.
    pub info: SnapshotInfo,
    staged: PathBuf,
    file: File,
    /// Its size.
    pub bytes: u64,
}

impl Finished {
    /// Syncs the snapshot, renames it into place, names it in the shard's manifest, and
    /// removes the log segments and snapshots it replaces. Blocking: run it off the
    /// shard's thread.
    ///
    /// # Errors
    /// A sync, rename or manifest write failed; the previous snapshot stays in charge.
    pub fn publish(self, dir: &Path) -> io::Result<u64> {
        self.file.sync_all()?;
        let path = dir.join(snapshot_name(self.info.number));
        std::fs::rename(&self.staged, &path)?;
        log::sync_dir(dir)?;
        write_manifest(dir, self.info.number)?;
        remove_replaced(dir, self.info.number);
        Ok(self.bytes)
    }
}

/// Names snapshot `number` as the shard's latest, atomically.
///
/// # Errors
/// The manifest cannot be written, synced or renamed.
pub fn write_manifest(dir: &Path, number: u64) -> io::Result<()> {
    let staged = dir.join("MANIFEST.tmp");
    std::fs::write(&staged, format!("snapshot {number}\n"))?;
    File::open(&staged)?.sync_all()?;
    std::fs::rename(&staged, dir.join("MANIFEST"))?;
    log::sync_dir(dir)
}

/// The snapshot the shard's manifest names, if any.
///
/// # Errors
/// The manifest exists but cannot be read or does not name a snapshot.
pub fn read_manifest(dir: &Path) -> io::Result<Option<u64>> {
    let path = dir.join("MANIFEST");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    text.strip_prefix("snapshot ")
        .and_then(|n| n.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not name a snapshot: {text:?}", path.display()),
            )
        })
}

/// Removes segments and snapshots older than snapshot `number`, and any staging file.
fn remove_replaced(dir: &Path, number: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let replaced = log::segment_id(name).is_some_and(|id| id < number)
            || snapshot_number(name).is_some_and(|n| n < number)
            || (name.ends_with(".tmp") && name != "MANIFEST.tmp");
        if replaced {
            if let Err(error) = std::fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), %error, "cannot remove a replaced file");
            }
        }
    }
}

fn snapshot_number(name: &str) -> Option<u64> {
    name.strip_prefix("snap-")?
        .strip_suffix(".tsnap")?
        .parse()
        .ok()
}

/// What reading a snapshot hands its visitor: first the entry count, then each entry.
pub enum Visit<'a> {
    /// The entries the snapshot holds, before the first of them.
    Count(u64),
    /// One entry whose check passed.
    Entry(&'a [u8]),
}

/// Reads snapshot `number` in `dir`, handing `visit` its entry count and then each entry
/// once its check passes. Answers the header.
///
/// # Errors
/// The file cannot be read, any part of it is damaged (`InvalidData`, naming the file and
/// offset: a snapshot the manifest names was synced before it was named, so damage is
/// never a torn write), or `restore` refuses an entry.
pub fn read_snapshot(
    dir: &Path,
    number: u64,
    mut visit: impl FnMut(Visit<'_>) -> Result<(), crate::data::codec::Damaged>,
) -> io::Result<SnapshotInfo> {
    use std::io::{Read, Seek, SeekFrom};
    let path = dir.join(snapshot_name(number));
    let damaged = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot {} is damaged: {what}", path.display()),
        )
    };
    let mut file = File::open(&path)?;
    let len = file.metadata()?.len();
    if len < (HEADER + FOOTER) as u64 {
        return Err(damaged("no snapshot header".into()));
    }
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header)?;
    let info = read_header(&header).ok_or_else(|| damaged("no snapshot header".into()))?;
    if info.number != number {
        return Err(damaged(format!("it says it is snapshot {}", info.number)));
    }
    let mut footer = [0u8; FOOTER];
    file.seek(SeekFrom::Start(len - FOOTER as u64))?;
    file.read_exact(&mut footer)?;
    if &footer[..8] != FOOTER_MAGIC {
        return Err(damaged("no footer: it was not written to the end".into()));
    }
    let count = u64_at(&footer, 8);
    // The count is not checked until the entries are: bound what it can make a reader
    // reserve by what the file could hold.
    let body_len = len - (HEADER + FOOTER) as u64;
    let most = body_len / log::RECORD_HEADER as u64;
    visit(Visit::Count(count.min(most))).map_err(|what| damaged(what.to_string()))?;
    file.seek(SeekFrom::Start(HEADER as u64))?;
    // Read in chunks, not whole: loading never holds the file's size on top of the data.
    let mut body = file.take(body_len);
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut filled, mut start_offset, mut seen) = (0usize, HEADER as u64, 0u64);
    let mut refused = None;
    loop {
        let read = body.read(&mut buf[filled..])?;
        filled += read;
        let at_end = read == 0;
        let (tail, good) = log::each_record(&buf[..filled], number, start_offset, |entry| {
            if refused.is_none() {
                if let Err(what) = visit(Visit::Entry(entry)) {
                    refused = Some((seen, what));
                }
            }
            seen += 1;
        });
        if let Some((entry, what)) = refused {
            return Err(damaged(format!("entry {entry}: {what}")));
        }
        let consumed = (good - start_offset) as usize;
        match tail {
            Tail::Clean if at_end => break,
            Tail::Corrupt { offset } => {
                return Err(damaged(format!("bad entry at offset {offset}")))
            }
            Tail::Torn { offset } if at_end => {
                return Err(damaged(format!("entry cut short at offset {offset}")))
            }
            Tail::Clean | Tail::Torn { .. } => {}
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        start_offset = good;
        if filled == buf.len() {
            // One entry larger than the buffer: make room for it.
            buf.resize(buf.len() * 2, 0);
        }
    }
    if seen != count {
        return Err(damaged(format!(
            "{seen} entries where the footer says {count}"
        )));
    }
    Ok(info)
}

/// The cut time of snapshot `number`, from its header alone.
pub fn cut_time(dir: &Path, number: u64) -> Option<u64> {
    use std::io::Read;
    let mut header = [0u8; HEADER];
    File::open(dir.join(snapshot_name(number)))
        .and_then(|mut file| file.read_exact(&mut header))
        .ok()?;
    read_header(&header).map(|info| info.cut_ms)
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn read_header(data: &[u8]) -> Option<SnapshotInfo> {
    if data.len() < HEADER || &data[..8] != SNAPSHOT_MAGIC {
        return None;
    }
    Some(SnapshotInfo {
        number: u64_at(data, 8),
        cut_ms: u64_at(data, 16),
        shard: u16::from_le_bytes([data[24], data[25]]),
        shards: u16::from_le_bytes([data[26], data[27]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::codec::frame;

    fn write(dir: &Path, entries: &[&[u8]]) -> PathBuf {
        let info = SnapshotInfo {
            number: 3,
            cut_ms: 1_000,
            shard: 0,
            shards: 1,
        };
        let mut writer = SnapshotWriter::create(dir, info).unwrap();
        let mut batch = bytes::BytesMut::new();
        for entry in entries {
            frame(&mut batch, |buf| buf.extend_from_slice(entry));
        }
        writer.append(&mut batch).unwrap();
        writer
            .finish(entries.len() as u64)
            .unwrap()
            .publish(dir)
            .unwrap();
        dir.join(snapshot_name(3))
    }

    fn read(dir: &Path) -> io::Result<Vec<Vec<u8>>> {
        let mut entries = Vec::new();
        read_snapshot(dir, 3, |visit| {
            if let Visit::Entry(entry) = visit {
                entries.push(entry.to_vec());
            }
            Ok(())
        })?;
        Ok(entries)
    }

    #[test]
    fn a_published_snapshot_reads_back_and_is_named_by_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[b"one", b"two"]);
        assert_eq!(
            read(dir.path()).unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(read_manifest(dir.path()).unwrap(), Some(3));
        assert_eq!(cut_time(dir.path(), 3), Some(1_000));
    }

    #[test]
    fn any_damage_or_a_missing_end_is_refused_not_loaded_in_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[b"first entry", b"second entry"]);
        let whole = std::fs::read(&path).unwrap();
        for byte in HEADER..whole.len() {
            let mut bad = whole.clone();
            bad[byte] ^= 0x04;
            std::fs::write(&path, &bad).unwrap();
            assert!(read(dir.path()).is_err(), "bit flipped in byte {byte}");
        }
        for cut in 0..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(read(dir.path()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn entries_across_read_chunks_and_one_larger_than_a_chunk_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries: Vec<Vec<u8>> = (0..100_000u32)
            .map(|i| format!("{i:064}").into_bytes())
            .collect();
        entries.insert(50_000, vec![7u8; READ_CHUNK + 1000]);
        let borrowed: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        write(dir.path(), &borrowed);
        assert_eq!(read(dir.path()).unwrap(), entries);
    }
}
