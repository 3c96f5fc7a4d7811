//! Start-up with persistence: take the data folder, check and reshard what it holds, then
//! load each shard on its own thread, and serve only once every shard has loaded.

use std::fs::File;
use std::io;
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use crate::config::Config;
use crate::families::Keyspace;
use crate::persist::log::Segment;
use crate::persist::recover::{self, OnDamage};
use crate::persist::snapshot::cut_time;
use crate::persist::{DataDir, Generation, Settings};
use crate::server::Ready;
use crate::shard::durable::Durability;

/// The data folder, held for the server's lifetime.
pub struct Persistence {
    /// What the shards need.
    pub settings: Settings,
    /// The lock that keeps a second server off the folder; released when dropped.
    _lock: File,
}

/// Takes the data folder (refusing one another server holds), checks every log, and
/// moves the data to this run's shard count if it changed.
///
/// # Errors
/// The folder is locked, unreadable, or holds a damaged log (without `repair_log`).
pub fn prepare(config: &Config, shards: u16) -> io::Result<Persistence> {
    let dir = DataDir::open(&config.dir)?;
    let lock = File::create(dir.root().join("LOCK"))?;
    if lock.try_lock().is_err() {
        return Err(io::Error::other(format!(
            "{} is in use by another server",
            dir.root().display()
        )));
    }
    let plan = recover::plan(&dir, shards)?;
    match plan.source {
        Some(source) => {
            let on_damage = if config.repair_log {
                OnDamage::Cut
            } else {
                OnDamage::Stop
            };
            recover::check_logs(&dir, source, on_damage)?;
            if plan.reshards() {
                let started = Instant::now();
                let moved = recover::reshard(&dir, source, plan.target)?;
                tracing::info!(
                    from = source.shards,
                    to = shards,
                    keys = moved,
                    ms = started.elapsed().as_millis() as u64,
                    "moved the data to the new shard count"
                );
            }
        }
        None => {
            for shard in 0..shards {
                dir.shard_dir(plan.target.number, shard)?;
            }
            dir.make_current(plan.target)?;
        }
    }
    Ok(Persistence {
        settings: Settings {
            dir,
            generation: plan.target.number,
            fsync: config.appendfsync,
            snapshot_after_bytes: config.snapshot_after_bytes,
        },
        _lock: lock,
    })
}

/// One shard's loaded state.
pub type LoadedShard = (Keyspace, Option<Durability>);

/// Loads shard `shard` and opens its log: a new segment after the last one found.
///
/// # Errors
/// Reading or replaying failed, or the new segment cannot be created.
pub fn load(settings: Option<&Settings>, shard: u16, shards: u16) -> io::Result<LoadedShard> {
    let Some(settings) = settings else {
        return Ok((Keyspace::new(), None));
    };
    let started = Instant::now();
    let generation = Generation {
        number: settings.generation,
        shards,
    };
    let mut keyspace = Keyspace::new();
    let loaded = recover::load_shard(&mut keyspace, &settings.dir, generation, shard)?;
    // Whatever lapsed while the server was down lapses now, before anyone can read it:
    // reservations give their units back, expiring hash fields go.
    let now = crate::clock::now_millis();
    for key in keyspace.take_due(now) {
        crate::families::timer_due(&mut keyspace, &key, now);
    }
    let shard_dir = settings.dir.shard_dir(settings.generation, shard)?;
    let last_snapshot_ms = if loaded.last_snapshot > 0 {
        cut_time(&shard_dir, loaded.last_snapshot).unwrap_or(0)
    } else {
        0
    };
    let next = loaded.last_segment.max(loaded.last_snapshot) + 1;
    let segment = Segment::create(&shard_dir, next)?;
    if loaded.entries + loaded.records > 0 {
        tracing::info!(
            shard,
            keys = keyspace.len(),
            snapshot_entries = loaded.entries,
            log_records = loaded.records,
            ms = started.elapsed().as_millis() as u64,
            "loaded"
        );
    }
    let durability = Durability::new(
        settings.clone(),
        shard_dir,
        shard,
        segment,
        last_snapshot_ms,
    );
    Ok((keyspace, Some(durability)))
}

/// Where the shards meet after loading: all serve, or, if any failed, none does.
pub struct Loading {
    barrier: Barrier,
    failed: Mutex<Option<String>>,
    ready: Mutex<Option<Ready>>,
}

impl Loading {
    /// A meeting point for `shards` shards; `ready` runs once all have loaded.
    pub fn new(shards: u16, ready: Ready) -> Loading {
        Loading {
            barrier: Barrier::new(usize::from(shards)),
            failed: Mutex::new(None),
            ready: Mutex::new(Some(ready)),
        }
    }

    /// Reports shard `shard`'s load and waits for the others.
    ///
    /// # Errors
    /// This shard's load failed, or another's did (then every shard stops).
    pub fn all_loaded(
        &self,
        shard: u16,
        loaded: io::Result<LoadedShard>,
    ) -> io::Result<LoadedShard> {
        if let Err(error) = &loaded {
            tracing::error!(shard, %error, "cannot load");
            if let Ok(mut failed) = self.failed.lock() {
                failed.get_or_insert_with(|| format!("shard {shard}: {error}"));
            }
        }
        let leader = self.barrier.wait().is_leader();
        let failure = self.failed.lock().ok().and_then(|failed| failed.clone());
        if let Some(failure) = failure {
            return match loaded {
                Err(error) => Err(error),
                Ok(_) => Err(io::Error::other(format!("not started: {failure}"))),
            };
        }
        if leader {
            if let Some(ready) = self.ready.lock().ok().and_then(|mut ready| ready.take()) {
                ready();
            }
        }
        loaded
    }
}
