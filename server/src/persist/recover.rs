//! Loading at start: which generation to read, checking its logs, and rebuilding one
//! shard's keyspace from its latest snapshot and the log after it.

use std::io;
use std::path::{Path, PathBuf};

use tessera_cluster::shard_for_key;

use super::log::{self, Tail};
use super::snapshot::{read_manifest, read_snapshot, SnapshotInfo, SnapshotWriter, Visit};
use super::{DataDir, Generation};
use crate::data::keyspace::save_entry;
use crate::data::keyspace::save_geo_entry;
use crate::families::geo::placed_geo;
use crate::families::saved::restore_entry;
use crate::families::{Keyspace, Record};

/// What this run loads and where it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The generation to load, if there is one.
    pub source: Option<Generation>,
    /// The generation this run writes: the source's if the shard count is the same, a new
    /// one otherwise.
    pub target: Generation,
}

impl Plan {
    /// Whether the shard count changed, so every entry is routed again by key.
    pub fn reshards(&self) -> bool {
        self.source
            .is_some_and(|source| source.shards != self.target.shards)
    }
}

/// Decides what to load for a node of `shards` shards, and removes what a reshard that
/// never finished left behind.
///
/// # Errors
/// `CURRENT` cannot be read.
pub fn plan(dir: &DataDir, shards: u16) -> io::Result<Plan> {
    let source = dir.current()?;
    let target = match source {
        Some(source) if source.shards == shards => source,
        Some(source) => Generation {
            number: source.number + 1,
            shards,
        },
        None => Generation { number: 1, shards },
    };
    if let Some(source) = source {
        dir.remove_others(source.number);
    }
    Ok(Plan { source, target })
}

/// How to treat a damaged record before the end of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDamage {
    /// Refuse to start, naming the file and offset.
    Stop,
    /// Cut the log there (losing what follows) and start.
    Cut,
}

/// Checks every log segment of `source`: a torn tail on a shard's last segment is cut off
/// with a warning; damage anywhere else stops the start or, with `OnDamage::Cut`, cuts
/// the log there. Runs before any shard loads, so files are changed only here.
///
/// # Errors
/// Damage with `OnDamage::Stop`, naming file and offset; or a file that cannot be read.
pub fn check_logs(dir: &DataDir, source: Generation, on_damage: OnDamage) -> io::Result<()> {
    for shard in 0..source.shards {
        let shard_dir = dir.shard_dir(source.number, shard)?;
        let segments = log::segments(&shard_dir)?;
        let last = segments.last().map(|(id, _)| *id);
        let mut cut_from = None;
        for (id, path) in &segments {
            if cut_from.is_some() {
                remove_segment(path)?;
                continue;
            }
            let read = log::read_segment(path, *id)?;
            match read.tail {
                Tail::Clean => {}
                Tail::Torn { offset } if Some(*id) == last => {
                    tracing::warn!(
                        file = %path.display(), offset,
                        "log ends in a partial record (a write the crash interrupted); cutting it off"
                    );
                    truncate(path, read.good_len)?;
                }
                Tail::Torn { offset } | Tail::Corrupt { offset } => {
                    if on_damage == OnDamage::Stop {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "log {} is damaged at offset {offset}; start with --repair-log to cut the log there, losing every change after it",
                                path.display()
                            ),
                        ));
                    }
                    tracing::warn!(
                        file = %path.display(), offset,
                        "log damaged: cutting it here and dropping everything after (--repair-log)"
                    );
                    truncate(path, read.good_len)?;
                    cut_from = Some(*id);
                }
            }
        }
    }
    Ok(())
}

fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

fn remove_segment(path: &PathBuf) -> io::Result<()> {
    tracing::warn!(file = %path.display(), "removing a log segment after the cut");
    std::fs::remove_file(path)
}

/// What one shard loaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Snapshot entries loaded.
    pub entries: u64,
    /// Log records replayed.
    pub records: u64,
    /// The highest log segment in the shard's folder (0: none).
    pub last_segment: u64,
    /// The snapshot loaded (0: none).
    pub last_snapshot: u64,
}

/// Rebuilds shard `shard` of `source` from its latest snapshot and then its log.
///
/// # Errors
/// A file cannot be read, or an entry or record is damaged (`check_logs` has already cut
/// torn tails, so any damage here is real).
pub fn load_shard(
    keyspace: &mut Keyspace,
    dir: &DataDir,
    source: Generation,
    shard: u16,
) -> io::Result<Loaded> {
    let mut loaded = Loaded::default();
    let shard_dir = dir.shard_dir(source.number, shard)?;
    let snapshot = read_manifest(&shard_dir)?;
    if let Some(number) = snapshot {
        let mut entries = 0;
        read_snapshot(&shard_dir, number, |visit| match visit {
            Visit::Count(count) => {
                keyspace.reserve(usize::try_from(count).unwrap_or(0));
                Ok(())
            }
            Visit::Entry(entry) => {
                entries += 1;
                restore_entry(keyspace, entry)
            }
        })?;
        loaded.entries = entries;
        loaded.last_snapshot = number;
    }
    for (id, path) in log::segments(&shard_dir)? {
        loaded.last_segment = id;
        if snapshot.is_some_and(|number| id < number) {
            continue;
        }
        let read = log::read_segment(&path, id)?;
        if read.records.is_empty() {
            // A run that wrote nothing before it stopped: the next run starts its own.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        for record in read.records {
            let record = Record::decode(record).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "log {} holds a record that does not decode: {error}",
                        path.display()
                    ),
                )
            })?;
            record.replay(keyspace);
            loaded.records += 1;
        }
    }
    Ok(loaded)
}

/// Moves `source` to `target`'s shard count: each old shard is rebuilt on its own,
/// exactly as it was, and its entries are written to the snapshot of the new shard that
/// owns each key; then `target` is put in charge. Records are never split between
/// shards, so a command replays only ever as the whole it ran as. Holds one old shard in
/// memory at a time.
///
/// # Errors
/// Loading an old shard, or writing or publishing a new snapshot, failed; the source
/// generation stays in charge.
pub fn reshard(dir: &DataDir, source: Generation, target: Generation) -> io::Result<u64> {
    let cut_ms = crate::clock::now_millis();
    let mut writers = (0..target.shards)
        .map(|shard| {
            let info = SnapshotInfo {
                number: 1,
                cut_ms,
                shard,
                shards: target.shards,
            };
            SnapshotWriter::create(&dir.shard_dir(target.number, shard)?, info)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut counts = vec![0u64; usize::from(target.shards)];
    let mut batch = bytes::BytesMut::new();
    for old in 0..source.shards {
        let mut keyspace = Keyspace::new();
        load_shard(&mut keyspace, dir, source, old)?;
        let now = crate::clock::now_millis();
        for (key, value, deadline) in keyspace.entries() {
            if deadline.is_some_and(|at| at <= now) {
                continue;
            }
            let owner = usize::from(shard_for_key(key, target.shards));
            batch.clear();
            save_entry(&mut batch, key, deadline, value);
            writers[owner].append(&mut batch)?;
            counts[owner] += 1;
        }
        for (owner, member) in placed_geo(keyspace.geo.save_all(), target.shards) {
            batch.clear();
            save_geo_entry(&mut batch, &member);
            writers[usize::from(owner)].append(&mut batch)?;
            counts[usize::from(owner)] += 1;
        }
    }
    let mut moved = 0;
    for (shard, (writer, count)) in writers.into_iter().zip(counts).enumerate() {
        writer
            .finish(count)?
            .publish(&dir.shard_dir(target.number, shard as u16)?)?;
        moved += count;
    }
    dir.make_current(target)?;
    Ok(moved)
}
