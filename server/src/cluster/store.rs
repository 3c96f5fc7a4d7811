//! The Raft log and state machine behind the topology: one journal file per node holding
//! votes, entries, truncations and purges, and the topology the committed entries build.
//!
//! Every record is `len:u32 crc32c:u32 json`, appended and synced before Raft is told it
//! is stored; a torn or damaged tail (a crash mid-write) is cut on open, which only loses
//! what Raft was never told was stored. The journal is rewritten compactly when it has
//! grown to several times what it still holds.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Cursor, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tessera_cluster::{NodeId, Topology};

use super::{Change, Changed, Peer, RaftConfig};

/// The journal is first weighed for a rewrite at this size.
const MIN_WEIGHING: u64 = 1 << 20;

/// What the journal holds, one record at a time.
#[derive(Serialize, Deserialize)]
enum Record {
    Vote(Vote<NodeId>),
    Committed(Option<LogId<NodeId>>),
    Entry(Entry<RaftConfig>),
    /// Entries from this index on are gone.
    Truncate(u64),
    /// Entries up to and including this one are gone.
    Purge(LogId<NodeId>),
}

/// The log's contents in memory, mirrored by the journal.
#[derive(Default)]
struct Log {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<RaftConfig>>,
    journal: Option<File>,
    journal_bytes: u64,
    /// Journal size at which to weigh a rewrite next: live bytes are counted only then,
    /// not on every write.
    next_weighing: u64,
}

/// The Raft log, on disk under `dir/raft/`.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    log: Arc<Mutex<Log>>,
}

fn io_error(error: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write(&io::Error::other(error.to_string())).into()
}

fn encode(record: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("raft records serialise");
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Reads every whole, undamaged record; returns them and the length they span.
fn decode_all(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice(body) else {
            break;
        };
        records.push(record);
        at += 8 + len;
    }
    (records, at)
}

impl Log {
    fn replay(&mut self, record: Record) {
        match record {
            Record::Vote(vote) => self.vote = Some(vote),
            Record::Committed(committed) => self.committed = committed,
            Record::Entry(entry) => {
                self.entries.insert(entry.log_id.index, entry);
            }
            Record::Truncate(from) => {
                self.entries.split_off(&from);
            }
            Record::Purge(upto) => {
                self.entries = self.entries.split_off(&(upto.index + 1));
                self.purged = Some(upto);
            }
        }
    }

    /// Appends records and syncs them.
    fn write(&mut self, dir: &Path, records: &[Record]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for record in records {
            bytes.extend(encode(record));
        }
        let journal = self.journal.as_mut().expect("the journal is open");
        journal.write_all(&bytes)?;
        journal.sync_data()?;
        self.journal_bytes += bytes.len() as u64;
        if self.journal_bytes > self.next_weighing {
            if self.journal_bytes > 4 * self.live_bytes() {
                self.rewrite(dir)?;
            }
            self.next_weighing = (2 * self.journal_bytes).max(MIN_WEIGHING);
        }
        Ok(())
    }

    fn live_records(&self) -> Vec<Record> {
        let mut records = Vec::with_capacity(self.entries.len() + 3);
        records.extend(self.vote.map(Record::Vote));
        records.extend(self.purged.map(Record::Purge));
        records.push(Record::Committed(self.committed));
        records.extend(self.entries.values().cloned().map(Record::Entry));
        records
    }

    fn live_bytes(&self) -> u64 {
        self.live_records()
            .iter()
            .map(|r| encode(r).len() as u64)
            .sum()
    }

    /// Writes what the log still holds to a fresh journal and swaps it in.
    fn rewrite(&mut self, dir: &Path) -> io::Result<()> {
        let fresh = dir.join("journal.new");
        let mut file = File::create(&fresh)?;
        let mut bytes = Vec::new();
        for record in self.live_records() {
            bytes.extend(encode(&record));
        }
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&fresh, dir.join("journal"))?;
        File::open(dir)?.sync_all()?;
        self.journal = Some(OpenOptions::new().append(true).open(dir.join("journal"))?);
        self.journal_bytes = bytes.len() as u64;
        Ok(())
    }
}

impl LogStore {
    /// Opens (or creates) the log under `dir`, cutting a damaged tail.
    ///
    /// # Errors
    /// The folder or journal cannot be created or read.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal");
        let mut bytes = Vec::new();
        if path.exists() {
            File::open(&path)?.read_to_end(&mut bytes)?;
        }
        let (records, whole) = decode_all(&bytes);
        if whole < bytes.len() {
            tracing::warn!(
                cut = bytes.len() - whole,
                "raft journal: cut a torn or damaged tail"
            );
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.set_len(whole as u64)?;
        file.sync_all()?;
        drop(file);
        let mut log = Log::default();
        for record in records {
            log.replay(record);
        }
        log.journal = Some(OpenOptions::new().append(true).open(&path)?);
        log.journal_bytes = whole as u64;
        log.next_weighing = (2 * log.journal_bytes).max(MIN_WEIGHING);
        Ok(LogStore {
            dir: dir.to_path_buf(),
            log: Arc::new(Mutex::new(log)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, records: &[Record]) -> io::Result<()> {
        self.lock().write(&self.dir, records)
    }
}

impl RaftLogReader<RaftConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<RaftConfig>>, StorageError<NodeId>> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<RaftConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<RaftConfig>, StorageError<NodeId>> {
        let log = self.lock();
        let last = log
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(log.purged);
        Ok(LogState {
            last_purged_log_id: log.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(&[Record::Vote(*vote)]).map_err(io_error)?;
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.write(&[Record::Committed(committed)])
            .map_err(io_error)?;
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<RaftConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<RaftConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<RaftConfig>> = entries.into_iter().collect();
        let records: Vec<Record> = entries.iter().cloned().map(Record::Entry).collect();
        let written = self.write(&records);
        if written.is_ok() {
            let mut log = self.lock();
            for entry in entries {
                log.entries.insert(entry.log_id.index, entry);
            }
        }
        let failure = written.as_ref().err().map(io_error);
        callback.log_io_completed(written);
        failure.map_or(Ok(()), Err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(&[Record::Truncate(log_id.index)])
            .map_err(io_error)?;
        self.lock().replay(Record::Truncate(log_id.index));
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(&[Record::Purge(log_id)]).map_err(io_error)?;
        self.lock().replay(Record::Purge(log_id));
        Ok(())
    }
}

/// What the state machine holds: the topology the applied entries built.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// The last entry applied.
    pub applied: Option<LogId<NodeId>>,
    /// The membership the applied entries last set.
    pub membership: StoredMembership<NodeId, Peer>,
    /// The topology, once a cluster is formed.
    pub topology: Option<Topology>,
}

impl Machine {
    /// Applies one change; the answer says which epoch holds afterwards.
    fn apply(&mut self, change: &Change) -> Changed {
        let refused = match (change, self.topology.as_ref()) {
            (Change::Form(nodes), None) if !nodes.is_empty() => {
                self.topology = Some(Topology::assigned(1, nodes.clone()));
                None
            }
            (Change::Form(_), _) => Some("a cluster is formed already".to_string()),
            (_, None) => Some("no cluster formed yet".to_string()),
            (Change::Join(node), Some(topology)) => {
                self.topology = Some(topology.with_joined(node.clone()));
                None
            }
            (Change::Move { from, to, slots }, Some(topology)) => {
                match topology.with_moved(slots, *from, *to) {
                    Some(moved) => {
                        self.topology = Some(moved);
                        None
                    }
                    None => Some(format!(
                        "node {from} no longer owns every slot of the move, or node {to} is gone"
                    )),
                }
            }
            (Change::Leave(id), Some(topology)) => match topology.without_empty(*id) {
                Some(left) => {
                    self.topology = Some(left);
                    None
                }
                None => Some(format!(
                    "node {id} still owns slots, is unknown, or is the last node"
                )),
            },
            (Change::Replicate { replica, primary }, Some(topology)) => {
                match topology.with_replica(*replica, *primary) {
                    Ok(next) => {
                        self.topology = Some(next);
                        None
                    }
                    Err(why) => Some(why),
                }
            }
            (Change::Failover { failed, promoted }, Some(topology)) => {
                match topology.with_failover(*failed, *promoted) {
                    Some(next) => {
                        self.topology = Some(next);
                        None
                    }
                    None => Some(format!("node {promoted} is not a replica of node {failed}")),
                }
            }
        };
        Changed {
            epoch: self.topology.as_ref().map_or(0, |t| t.epoch),
            refused,
        }
    }
}

/// A snapshot as kept: what it covers and the serialised machine.
type Kept = (SnapshotMeta<NodeId, Peer>, Vec<u8>);

/// The state machine, and where it tells the node of each new topology.
#[derive(Clone)]
pub struct MachineStore {
    dir: PathBuf,
    machine: Arc<Mutex<Machine>>,
    snapshot: Arc<Mutex<Option<Kept>>>,
    on_topology: Arc<dyn Fn(&Topology) + Send + Sync>,
}

impl MachineStore {
    /// The state machine, starting from the snapshot under `dir` if there is one.
    ///
    /// # Errors
    /// A snapshot exists but cannot be read.
    pub fn open(
        dir: &Path,
        on_topology: Arc<dyn Fn(&Topology) + Send + Sync>,
    ) -> io::Result<MachineStore> {
        let path = dir.join("snapshot");
        let (machine, snapshot) = match std::fs::read(&path) {
            Ok(bytes) => {
                let (meta, data): (SnapshotMeta<NodeId, Peer>, Vec<u8>) =
                    serde_json::from_slice(&bytes).map_err(io::Error::other)?;
                let machine: Machine = serde_json::from_slice(&data).map_err(io::Error::other)?;
                (machine, Some((meta, data)))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => (Machine::default(), None),
            Err(error) => return Err(error),
        };
        if let Some(topology) = &machine.topology {
            on_topology(topology);
        }
        Ok(MachineStore {
            dir: dir.to_path_buf(),
            machine: Arc::new(Mutex::new(machine)),
            snapshot: Arc::new(Mutex::new(snapshot)),
            on_topology,
        })
    }

    fn machine(&self) -> std::sync::MutexGuard<'_, Machine> {
        self.machine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps a snapshot in memory and on disk (written aside, then renamed over).
    fn keep(&self, meta: SnapshotMeta<NodeId, Peer>, data: Vec<u8>) -> io::Result<()> {
        let bytes = serde_json::to_vec(&(&meta, &data)).map_err(io::Error::other)?;
        let fresh = self.dir.join("snapshot.new");
        let mut file = File::create(&fresh)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&fresh, self.dir.join("snapshot"))?;
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some((meta, data));
        Ok(())
    }
}

impl RaftSnapshotBuilder<RaftConfig> for MachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<RaftConfig>, StorageError<NodeId>> {
        let machine = self.machine().clone();
        let data = serde_json::to_vec(&machine).map_err(io_error)?;
        let meta = SnapshotMeta {
            last_log_id: machine.applied,
            last_membership: machine.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                machine.applied.map_or(0, |id| id.leader_id.term),
                machine.applied.map_or(0, |id| id.index)
            ),
        };
        self.keep(meta.clone(), data.clone()).map_err(io_error)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<RaftConfig> for MachineStore {
    type SnapshotBuilder = MachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Peer>), StorageError<NodeId>> {
        let machine = self.machine();
        Ok((machine.applied, machine.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Changed>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<RaftConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut answers = Vec::new();
        let mut machine = self.machine();
        let before = machine.topology.as_ref().map(|t| t.epoch);
        for entry in entries {
            machine.applied = Some(entry.log_id);
            let answer = match &entry.payload {
                EntryPayload::Blank => Changed {
                    epoch: machine.topology.as_ref().map_or(0, |t| t.epoch),
                    refused: None,
                },
                EntryPayload::Normal(change) => machine.apply(change),
                EntryPayload::Membership(membership) => {
                    machine.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    Changed {
                        epoch: machine.topology.as_ref().map_or(0, |t| t.epoch),
                        refused: None,
                    }
                }
            };
            answers.push(answer);
        }
        if machine.topology.as_ref().map(|t| t.epoch) != before {
            if let Some(topology) = &machine.topology {
                (self.on_topology)(topology);
            }
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Peer>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let machine: Machine = serde_json::from_slice(&data).map_err(io_error)?;
        self.keep(meta.clone(), data).map_err(io_error)?;
        if let Some(topology) = &machine.topology {
            (self.on_topology)(topology);
        }
        *self.machine() = machine;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<RaftConfig>>, StorageError<NodeId>> {
        let held = self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(held.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn entry(index: u64) -> Entry<RaftConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    #[test]
    fn a_reopened_journal_keeps_what_was_synced_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let vote = Vote::new(3, 2);
        let records: Vec<Record> = (1..=5).map(entry).map(Record::Entry).collect();
        store.write(&records).unwrap();
        store
            .write(&[Record::Vote(vote), Record::Truncate(4)])
            .unwrap();
        store.write(&[Record::Purge(entry(1).log_id)]).unwrap();
        drop(store);
        // A crash in the middle of the next record leaves half of it.
        let torn = encode(&Record::Entry(entry(4)));
        let mut journal = OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal"))
            .unwrap();
        journal.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(journal);

        let reopened = LogStore::open(dir.path()).unwrap();
        let log = reopened.lock();
        assert_eq!(log.vote, Some(vote));
        assert_eq!(log.purged, Some(entry(1).log_id));
        assert_eq!(log.entries.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        drop(log);
        // The cut is on disk too: another record lands after the whole ones.
        reopened.write(&[Record::Entry(entry(4))]).unwrap();
        drop(reopened);
        let again = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            again.lock().entries.keys().copied().collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn a_damaged_record_ends_the_journal_there() {
        let mut bytes = encode(&Record::Entry(entry(1)));
        bytes.extend(encode(&Record::Entry(entry(2))));
        let whole = bytes.len();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let (records, kept) = decode_all(&bytes);
        assert_eq!(records.len(), 1);
        assert!(kept < whole);
    }
}
