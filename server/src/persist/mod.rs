//! Durability on disk: where each shard's log and snapshots live, the fsync policies, and
//! loading them back at start.
//!
//! The data folder holds `CURRENT`, naming a generation and its shard count, and that
//! generation's folder `gen-G/shard-I/` per shard, each with its log segments and its
//! latest snapshot. A restart with the same shard count loads each shard's own folder; a
//! restart with another count routes every entry and record again by key into a new
//! generation, written in full before `CURRENT` moves to it, so a crash mid-way leaves
//! the old generation in charge.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub mod log;
pub mod recover;
pub mod snapshot;

/// When the log's writes reach the disk, as Redis's `appendfsync` means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Each turn's records are on disk before that turn's replies leave.
    Always,
    /// Records are written before their replies leave and synced once a second.
    Everysec,
    /// Records are written before their replies leave; the OS syncs when it likes.
    No,
}

impl FromStr for Fsync {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::Everysec),
            "no" => Ok(Fsync::No),
            other => Err(format!(
                "appendfsync must be always, everysec or no, not {other:?}"
            )),
        }
    }
}

impl Fsync {
    /// The policy's name, as the flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// The generation in charge and its shard count, as `CURRENT` records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    /// Its number.
    pub number: u64,
    /// Shards it was written by.
    pub shards: u16,
}

/// The data folder.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data folder at `root`, created if missing.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(root: &Path) -> io::Result<DataDir> {
        std::fs::create_dir_all(root)?;
        Ok(DataDir { root: root.into() })
    }

    /// Its path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The generation in charge, if any was ever completed.
    ///
    /// # Errors
    /// `CURRENT` exists but cannot be read or says something else than a generation.
    pub fn current(&self) -> io::Result<Option<Generation>> {
        let path = self.root.join("CURRENT");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not name a generation: {text:?}", path.display()),
            )
        };
        let mut words = text.split_whitespace();
        let (Some("generation"), Some(number), Some("shards"), Some(shards)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        Ok(Some(Generation {
            number: number.parse().map_err(|_| bad())?,
            shards: shards.parse().map_err(|_| bad())?,
        }))
    }

    /// Puts `generation` in charge, atomically, and removes every other generation's folder.
    ///
    /// # Errors
    /// Writing, syncing or renaming `CURRENT` failed.
    pub fn make_current(&self, generation: Generation) -> io::Result<()> {
        let staged = self.root.join("CURRENT.tmp");
        std::fs::write(
            &staged,
            format!(
                "generation {} shards {}\n",
                generation.number, generation.shards
            ),
        )?;
        std::fs::File::open(&staged)?.sync_all()?;
        std::fs::rename(&staged, self.root.join("CURRENT"))?;
        log::sync_dir(&self.root)?;
        self.remove_others(generation.number);
        Ok(())
    }

    /// Removes generation folders other than `keep` (left by a reshard that did not finish,
    /// or replaced by one that did).
    pub fn remove_others(&self, keep: u64) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(|n| n.strip_prefix("gen-")) else {
                continue;
            };
            if number.parse::<u64>().is_ok_and(|n| n != keep) {
                if let Err(error) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(path = %entry.path().display(), %error, "cannot remove an old generation");
                }
            }
        }
    }

    /// Shard `shard`'s folder in generation `generation`, created if missing.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn shard_dir(&self, generation: u64, shard: u16) -> io::Result<PathBuf> {
        let dir = self
            .root
            .join(format!("gen-{generation}"))
            .join(format!("shard-{shard}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// What the shards need to know about persistence.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The data folder.
    pub dir: DataDir,
    /// The generation this run writes.
    pub generation: u64,
    /// When writes reach the disk.
    pub fsync: Fsync,
    /// Log bytes written since the last snapshot that start a new one (0: never).
    pub snapshot_after_bytes: u64,
}
