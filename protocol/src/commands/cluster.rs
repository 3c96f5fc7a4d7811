//! Cluster commands: a node's identity, forming and changing a cluster, the slot map
//! clients route by, the node's view of the cluster, a key's slot, the steps a slot
//! migration takes between nodes, and replication: copies and pulls, waiting for
//! replicas, reading from one, and a planned failover.

use bytes::{Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// CLUSTER.MYSELF
    pub const CLUSTER_MYSELF: u16 = 0x00e0;
    /// CLUSTER.CREATE
    pub const CLUSTER_CREATE: u16 = 0x00e1;
    /// CLUSTER.SLOTS
    pub const CLUSTER_SLOTS: u16 = 0x00e2;
    /// CLUSTER.INFO
    pub const CLUSTER_INFO: u16 = 0x00e3;
    /// CLUSTER.KEYSLOT
    pub const CLUSTER_KEYSLOT: u16 = 0x00e4;
    /// CLUSTER.JOIN
    pub const CLUSTER_JOIN: u16 = 0x00e5;
    /// CLUSTER.MIGRATE
    pub const CLUSTER_MIGRATE: u16 = 0x00e6;
    /// CLUSTER.IMPORT
    pub const CLUSTER_IMPORT: u16 = 0x00e7;
    /// CLUSTER.DROP
    pub const CLUSTER_DROP: u16 = 0x00e8;
    /// CLUSTER.FORGET
    pub const CLUSTER_FORGET: u16 = 0x00e9;
    /// CLUSTER.REPLICATE
    pub const CLUSTER_REPLICATE: u16 = 0x00ea;
    /// CLUSTER.SYNC
    pub const CLUSTER_SYNC: u16 = 0x00eb;
    /// CLUSTER.PULL
    pub const CLUSTER_PULL: u16 = 0x00ec;
    /// WAIT
    pub const WAIT: u16 = 0x00ed;
    /// READONLY
    pub const READONLY: u16 = 0x00ee;
    /// READWRITE
    pub const READWRITE: u16 = 0x00ef;
    /// CLUSTER.FAILOVER
    pub const CLUSTER_FAILOVER: u16 = 0x00f0;
}

/// Most nodes one CLUSTER.CREATE may name.
pub const MAX_CREATE_NODES: usize = 1_000;
/// Slots in the cluster; a slot number is below this.
pub const SLOTS: u16 = 16_384;

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::CLUSTER_MYSELF,
        name: "CLUSTER.MYSELF",
        syntax: "",
        wire: "(empty)",
        reply: "MAP {id: INT, addr: TEXT, bus: TEXT, shards: INT, resp: TEXT (empty without a RESP port)}; CLUSTER_DOWN on a node not started in cluster mode",
        summary: "Tells who this node is: its id, client address, cluster-bus address and shard count.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_CREATE,
        name: "CLUSTER.CREATE",
        syntax: "id bus addr shards resp [id bus addr shards resp ...]",
        wire: "count:uvarint (id:uvarint bus:bytes addr:bytes shards:uvarint resp:bytes)*count",
        reply: "MAP {epoch: INT} once the first topology is committed; CONFLICT if this node is already in a cluster",
        summary: "Forms a cluster of the named nodes (this one among them), assigning every slot by rendezvous hashing.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_SLOTS,
        name: "CLUSTER.SLOTS",
        syntax: "",
        wire: "(empty)",
        reply: "MAP {epoch: INT, nodes: ARRAY of MAP {id, addr, shards, resp, replica_of: INT or NIL}, ranges: ARRAY of ARRAY [first, last, owner id]}; CLUSTER_DOWN before a cluster is formed",
        summary: "The slot map clients route by: every node and which runs of slots it owns, at the node's epoch.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_INFO,
        name: "CLUSTER.INFO",
        syntax: "",
        wire: "(empty)",
        reply: "MAP {enabled, state, node_id, epoch, role, leader, term, voters, nodes, slots_owned, serving_ms, replica_of, replicated} (all but the first when enabled)",
        summary: "This node's view of the cluster: whether it serves, its Raft role, the leader, the epoch and what it owns.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_KEYSLOT,
        name: "CLUSTER.KEYSLOT",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT the key's slot (0 ..= 16383)",
        summary: "Computes a key's slot, as Redis Cluster's CLUSTER KEYSLOT does; touches no data.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_JOIN,
        name: "CLUSTER.JOIN",
        syntax: "id bus addr shards resp",
        wire: "id:uvarint bus:bytes addr:bytes shards:uvarint resp:bytes",
        reply: "MAP {epoch: INT} once the node is a voter and in the topology, owning no slots yet",
        summary: "Adds a started, unformed node to this node's cluster; slots move to it by CLUSTER.MIGRATE.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_MIGRATE,
        name: "CLUSTER.MIGRATE",
        syntax: "to first last [first last ...]",
        wire: "to:uvarint count:uvarint (first:u16 last:u16)*count",
        reply: "MAP {slots, keys, bytes, ms, longest_pause_ms, epoch}; CONFLICT for a slot this node does not own",
        summary: "Moves slot ranges this node owns to node `to`: copies each batch of slots while its writes pause, flips ownership through Raft, then drops the copies here.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_IMPORT,
        name: "CLUSTER.IMPORT",
        syntax: "RESET|MORE first last [first last ...] entries",
        wire: "reset:u8 count:uvarint (first:u16 last:u16)*count entries:bytes",
        reply: "INT entries applied; CONFLICT for a slot this node owns",
        summary: "Takes slot data a migrating node sends (snapshot entries); RESET first drops whatever this node held in those slots.",
        writes: true,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_DROP,
        name: "CLUSTER.DROP",
        syntax: "first last [first last ...]",
        wire: "count:uvarint (first:u16 last:u16)*count",
        reply: "INT keys and geo members dropped; CONFLICT for a slot this node owns",
        summary: "Drops this node's copies of slots another node owns, as a migration does once ownership has flipped.",
        writes: true,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_FORGET,
        name: "CLUSTER.FORGET",
        syntax: "id",
        wire: "id:uvarint",
        reply: "MAP {epoch: INT} once the node is out of the topology and Raft; CONFLICT while it owns slots",
        summary: "Removes a node that owns no slots (migrate them away first) from the cluster.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_REPLICATE,
        name: "CLUSTER.REPLICATE",
        syntax: "primary",
        wire: "primary:uvarint",
        reply: "MAP {epoch: INT} once the topology names this node a replica of `primary`; CONFLICT while this node owns slots, or if `primary` is itself a replica",
        summary: "Makes this node, which owns no slots, a replica of node `primary`: it copies the primary's data and then follows its changes.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_SYNC,
        name: "CLUSTER.SYNC",
        syntax: "session chunk",
        wire: "session:uvarint chunk:uvarint",
        reply: "ARRAY [run: INT, offset: INT, session: INT, chunks: INT, entries: BYTES]; session 0 starts a copy of this shard",
        summary: "A replica's full copy of one shard, a chunk at a time: session 0 takes the copy and names the change stream position it holds.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_PULL,
        name: "CLUSTER.PULL",
        syntax: "run offset replica",
        wire: "run:uvarint offset:uvarint replica:uvarint",
        reply: "ARRAY [offset: INT, end: INT, records: BYTES], waiting up to 100 ms for changes; CONFLICT when the stream no longer holds `offset` (copy again)",
        summary: "A replica's next changes from one shard's stream, after `offset`, acknowledging for node `replica` (0: no one) everything before it.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::WAIT,
        name: "WAIT",
        syntax: "numreplicas timeout",
        wire: "numreplicas:uvarint timeout_ms:uvarint (0 = no limit)",
        reply: "INT the replicas holding every change this node made before the WAIT (on each shard that had any), once that is at least numreplicas or the timeout has passed",
        summary: "Waits until `numreplicas` replicas hold every write this connection was answered before it, like Redis's WAIT: a write so confirmed survives a failover.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::READONLY,
        name: "READONLY",
        syntax: "",
        wire: "(empty)",
        reply: "OK",
        summary: "Lets this connection read, on a replica, the slots of the primary it follows (possibly stale by the lag CLUSTER.INFO reports) instead of being sent MOVED.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::READWRITE,
        name: "READWRITE",
        syntax: "",
        wire: "(empty)",
        reply: "OK",
        summary: "Ends READONLY: reads of a primary's slots are sent MOVED to the primary again.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_FAILOVER,
        name: "CLUSTER.FAILOVER",
        syntax: "replica",
        wire: "replica:uvarint",
        reply: "MAP {epoch: INT} once `replica` owns this node's slots; CONFLICT (nothing changed) if it is not this node's replica or did not catch up within 10 s",
        summary: "A planned hand-over, asked of a primary: it pauses writes to its slots, waits until `replica` holds every change, and makes it the primary in its place; nothing acknowledged is lost.",
        writes: false,
        keys: KeySpec::None,
    },
];

/// A run of slots, both ends included.
pub type Range = (u16, u16);

/// One node named in CLUSTER.CREATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<P = Bytes> {
    /// The node's id.
    pub id: u64,
    /// Its cluster-bus address, `host:port`.
    pub bus: P,
    /// Its client address, `host:port`.
    pub addr: P,
    /// Its shard count.
    pub shards: u16,
    /// Its RESP address, `host:port`; empty (`-` in text) when it serves no RESP port.
    pub resp: P,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterCommand<P = Bytes> {
    /// CLUSTER.MYSELF
    Myself,
    /// CLUSTER.CREATE id bus addr shards ...
    Create(Vec<Member<P>>),
    /// CLUSTER.SLOTS
    Slots,
    /// CLUSTER.INFO
    Info,
    /// CLUSTER.KEYSLOT key
    KeySlot(P),
    /// CLUSTER.JOIN id bus addr shards
    Join(Member<P>),
    /// CLUSTER.MIGRATE to first last ...
    Migrate {
        /// The node the slots go to.
        to: u64,
        /// The slots.
        ranges: Vec<Range>,
    },
    /// CLUSTER.IMPORT RESET|MORE first last ... entries
    Import {
        /// Drop what this node holds in `ranges` first (the first batch of a migration).
        reset: bool,
        /// The slots the entries belong to.
        ranges: Vec<Range>,
        /// Snapshot entries, framed as a snapshot frames them.
        entries: P,
    },
    /// CLUSTER.DROP first last ...
    Drop(Vec<Range>),
    /// CLUSTER.FORGET id
    Forget(u64),
    /// CLUSTER.REPLICATE primary
    Replicate(u64),
    /// CLUSTER.SYNC session chunk
    Sync {
        /// The copy being read; 0 starts one.
        session: u64,
        /// Which of its chunks.
        chunk: u64,
    },
    /// CLUSTER.PULL run offset
    Pull {
        /// The stream (one per shard and process start).
        run: u64,
        /// Where in it the replica is.
        offset: u64,
        /// The replica's node id, whose acknowledgement this is (0: none).
        replica: u64,
    },
    /// WAIT numreplicas timeout
    Wait {
        /// Replicas wanted.
        replicas: u64,
        /// Most milliseconds to wait (0: no limit).
        timeout_ms: u64,
    },
    /// READONLY
    ReadOnly,
    /// READWRITE
    ReadWrite,
    /// CLUSTER.FAILOVER replica
    Failover(u64),
}

fn put_ranges(buf: &mut BytesMut, ranges: &[Range]) {
    put_uvarint(buf, ranges.len() as u64);
    for &(first, last) in ranges {
        buf.extend_from_slice(&first.to_le_bytes());
        buf.extend_from_slice(&last.to_le_bytes());
    }
}

fn checked_range(first: u16, last: u16) -> Result<Range, &'static str> {
    if first > last || last >= SLOTS {
        return Err("a slot range is first <= last < 16384");
    }
    Ok((first, last))
}

fn read_ranges<P: Payload>(r: &mut Reader<P>) -> Result<Vec<Range>, DecodeError> {
    let count = r.count(4)?;
    if count == 0 {
        return Err(DecodeError::Invalid("at least one slot range is required"));
    }
    (0..count)
        .map(|_| {
            let first = r.u16()?;
            let last = r.u16()?;
            checked_range(first, last).map_err(DecodeError::Invalid)
        })
        .collect()
}

fn parse_ranges<P: Payload>(words: &[P]) -> Result<Vec<Range>, ErrorReply> {
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "slot ranges come in pairs: first last",
        ));
    }
    words
        .chunks(2)
        .map(|pair| {
            let first = parse_int::<u16>(pair[0].as_ref())?;
            let last = parse_int::<u16>(pair[1].as_ref())?;
            checked_range(first, last).map_err(|why| ErrorReply::new(ErrorCode::Syntax, why))
        })
        .collect()
}

impl<P: Payload> ClusterCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            ClusterCommand::Myself => opcode::CLUSTER_MYSELF,
            ClusterCommand::Create(_) => opcode::CLUSTER_CREATE,
            ClusterCommand::Slots => opcode::CLUSTER_SLOTS,
            ClusterCommand::Info => opcode::CLUSTER_INFO,
            ClusterCommand::KeySlot(_) => opcode::CLUSTER_KEYSLOT,
            ClusterCommand::Join(_) => opcode::CLUSTER_JOIN,
            ClusterCommand::Migrate { .. } => opcode::CLUSTER_MIGRATE,
            ClusterCommand::Import { .. } => opcode::CLUSTER_IMPORT,
            ClusterCommand::Drop(_) => opcode::CLUSTER_DROP,
            ClusterCommand::Forget(_) => opcode::CLUSTER_FORGET,
            ClusterCommand::Replicate(_) => opcode::CLUSTER_REPLICATE,
            ClusterCommand::Sync { .. } => opcode::CLUSTER_SYNC,
            ClusterCommand::Pull { .. } => opcode::CLUSTER_PULL,
            ClusterCommand::Wait { .. } => opcode::WAIT,
            ClusterCommand::ReadOnly => opcode::READONLY,
            ClusterCommand::ReadWrite => opcode::READWRITE,
            ClusterCommand::Failover(_) => opcode::CLUSTER_FAILOVER,
        }
    }

    /// None of this family's commands touches a key.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<ClusterCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            ClusterCommand::Myself
            | ClusterCommand::Slots
            | ClusterCommand::Info
            | ClusterCommand::ReadOnly
            | ClusterCommand::ReadWrite => {}
            ClusterCommand::Create(members) => {
                put_uvarint(buf, members.len() as u64);
                for member in members {
                    put_member(buf, member);
                }
            }
            ClusterCommand::KeySlot(key) => put_bytes(buf, key.as_ref()),
            ClusterCommand::Join(member) => put_member(buf, member),
            ClusterCommand::Migrate { to, ranges } => {
                put_uvarint(buf, *to);
                put_ranges(buf, ranges);
            }
            ClusterCommand::Import {
                reset,
                ranges,
                entries,
            } => {
                buf.extend_from_slice(&[u8::from(*reset)]);
                put_ranges(buf, ranges);
                put_bytes(buf, entries.as_ref());
            }
            ClusterCommand::Drop(ranges) => put_ranges(buf, ranges),
            ClusterCommand::Forget(id)
            | ClusterCommand::Replicate(id)
            | ClusterCommand::Failover(id) => put_uvarint(buf, *id),
            ClusterCommand::Sync { session, chunk } => {
                put_uvarint(buf, *session);
                put_uvarint(buf, *chunk);
            }
            ClusterCommand::Pull {
                run,
                offset,
                replica,
            } => {
                put_uvarint(buf, *run);
                put_uvarint(buf, *offset);
                put_uvarint(buf, *replica);
            }
            ClusterCommand::Wait {
                replicas,
                timeout_ms,
            } => {
                put_uvarint(buf, *replicas);
                put_uvarint(buf, *timeout_ms);
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::CLUSTER_MYSELF => ClusterCommand::Myself,
            opcode::CLUSTER_SLOTS => ClusterCommand::Slots,
            opcode::CLUSTER_INFO => ClusterCommand::Info,
            opcode::CLUSTER_KEYSLOT => ClusterCommand::KeySlot(read_key(r)?),
            opcode::CLUSTER_CREATE => {
                let count = r.count(4)?;
                if !(1..=MAX_CREATE_NODES).contains(&count) {
                    return Err(DecodeError::Invalid(
                        "CLUSTER.CREATE names between 1 and 1000 nodes",
                    ));
                }
                let mut members = Vec::with_capacity(count);
                for _ in 0..count {
                    members.push(read_member(r)?);
                }
                ClusterCommand::Create(members)
            }
            opcode::CLUSTER_JOIN => ClusterCommand::Join(read_member(r)?),
            opcode::CLUSTER_MIGRATE => ClusterCommand::Migrate {
                to: r.uvarint()?,
                ranges: read_ranges(r)?,
            },
            opcode::CLUSTER_IMPORT => {
                let reset = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("CLUSTER.IMPORT's reset is 0 or 1")),
                };
                ClusterCommand::Import {
                    reset,
                    ranges: read_ranges(r)?,
                    entries: r.bytes()?,
                }
            }
            opcode::CLUSTER_DROP => ClusterCommand::Drop(read_ranges(r)?),
            opcode::CLUSTER_FORGET => ClusterCommand::Forget(r.uvarint()?),
            opcode::CLUSTER_REPLICATE => ClusterCommand::Replicate(r.uvarint()?),
            opcode::CLUSTER_SYNC => ClusterCommand::Sync {
                session: r.uvarint()?,
                chunk: r.uvarint()?,
            },
            opcode::CLUSTER_PULL => ClusterCommand::Pull {
                run: r.uvarint()?,
                offset: r.uvarint()?,
                replica: r.uvarint()?,
            },
            opcode::WAIT => ClusterCommand::Wait {
                replicas: r.uvarint()?,
                timeout_ms: r.uvarint()?,
            },
            opcode::READONLY => ClusterCommand::ReadOnly,
            opcode::READWRITE => ClusterCommand::ReadWrite,
            opcode::CLUSTER_FAILOVER => ClusterCommand::Failover(r.uvarint()?),
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> ClusterCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            ClusterCommand::Myself => ClusterCommand::Myself,
            ClusterCommand::Slots => ClusterCommand::Slots,
            ClusterCommand::Info => ClusterCommand::Info,
            ClusterCommand::KeySlot(key) => ClusterCommand::KeySlot(own(key)),
            ClusterCommand::Create(members) => {
                ClusterCommand::Create(members.iter().map(Member::to_owned_bytes).collect())
            }
            ClusterCommand::Join(member) => ClusterCommand::Join(member.to_owned_bytes()),
            ClusterCommand::Migrate { to, ranges } => ClusterCommand::Migrate {
                to: *to,
                ranges: ranges.clone(),
            },
            ClusterCommand::Import {
                reset,
                ranges,
                entries,
            } => ClusterCommand::Import {
                reset: *reset,
                ranges: ranges.clone(),
                entries: own(entries),
            },
            ClusterCommand::Drop(ranges) => ClusterCommand::Drop(ranges.clone()),
            ClusterCommand::Forget(id) => ClusterCommand::Forget(*id),
            ClusterCommand::Replicate(id) => ClusterCommand::Replicate(*id),
            ClusterCommand::Sync { session, chunk } => ClusterCommand::Sync {
                session: *session,
                chunk: *chunk,
            },
            ClusterCommand::Pull {
                run,
                offset,
                replica,
            } => ClusterCommand::Pull {
                run: *run,
                offset: *offset,
                replica: *replica,
            },
            ClusterCommand::Wait {
                replicas,
                timeout_ms,
            } => ClusterCommand::Wait {
                replicas: *replicas,
                timeout_ms: *timeout_ms,
            },
            ClusterCommand::ReadOnly => ClusterCommand::ReadOnly,
            ClusterCommand::ReadWrite => ClusterCommand::ReadWrite,
            ClusterCommand::Failover(id) => ClusterCommand::Failover(*id),
        }
    }
}

impl<P: Payload> Member<P> {
    /// Copies the addresses into their own `Bytes`.
    pub fn to_owned_bytes(&self) -> Member<Bytes> {
        Member {
            id: self.id,
            bus: Bytes::copy_from_slice(self.bus.as_ref()),
            addr: Bytes::copy_from_slice(self.addr.as_ref()),
            shards: self.shards,
            resp: Bytes::copy_from_slice(self.resp.as_ref()),
        }
    }
}

fn put_member<P: Payload>(buf: &mut BytesMut, member: &Member<P>) {
    put_uvarint(buf, member.id);
    put_bytes(buf, member.bus.as_ref());
    put_bytes(buf, member.addr.as_ref());
    put_uvarint(buf, u64::from(member.shards));
    put_bytes(buf, member.resp.as_ref());
}

fn read_member<P: Payload>(r: &mut Reader<P>) -> Result<Member<P>, DecodeError> {
    let id = r.uvarint()?;
    let bus = r.bytes()?;
    let addr = r.bytes()?;
    let shards = r.uvarint()?;
    let resp = r.bytes()?;
    checked_member(id, bus, addr, shards, resp).map_err(DecodeError::Invalid)
}

fn parse_member<P: Payload>(five: &[P]) -> Result<Member<P>, ErrorReply> {
    let id = parse_int::<u64>(five[0].as_ref())?;
    let shards = parse_int::<u64>(five[3].as_ref())?;
    let mut resp = five[4].clone();
    if resp.as_ref() == b"-" {
        resp.take_front(1);
    }
    checked_member(id, five[1].clone(), five[2].clone(), shards, resp)
        .map_err(|why| ErrorReply::new(ErrorCode::Syntax, why))
}

/// A member whose fields are in range: an id of at least 1, addresses of at most 255
/// bytes (the RESP one may be empty), and 1 ..= 1024 shards.
fn checked_member<P: Payload>(
    id: u64,
    bus: P,
    addr: P,
    shards: u64,
    resp: P,
) -> Result<Member<P>, &'static str> {
    if id == 0 {
        return Err("a node id is at least 1");
    }
    let fits = |a: &P| (1..=255).contains(&a.as_ref().len());
    if !fits(&bus) || !fits(&addr) || resp.as_ref().len() > 255 {
        return Err("a node address is 1 to 255 bytes");
    }
    if !(1..=1024).contains(&shards) {
        return Err("a node has 1 to 1024 shards");
    }
    Ok(Member {
        id,
        bus,
        addr,
        shards: shards as u16,
        resp,
    })
}

impl<P: Payload> ClusterCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::CLUSTER_MYSELF => arity(args.is_empty()).map(|()| ClusterCommand::Myself)?,
            opcode::CLUSTER_SLOTS => arity(args.is_empty()).map(|()| ClusterCommand::Slots)?,
            opcode::CLUSTER_INFO => arity(args.is_empty()).map(|()| ClusterCommand::Info)?,
            opcode::CLUSTER_KEYSLOT => {
                arity(args.len() == 1)?;
                ClusterCommand::KeySlot(text_key(&args[0])?)
            }
            opcode::CLUSTER_CREATE => {
                arity(!args.is_empty() && args.len().is_multiple_of(5))?;
                if args.len() / 5 > MAX_CREATE_NODES {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "CLUSTER.CREATE names between 1 and 1000 nodes",
                    ));
                }
                let members = args
                    .chunks(5)
                    .map(parse_member)
                    .collect::<Result<Vec<_>, ErrorReply>>()?;
                ClusterCommand::Create(members)
            }
            opcode::CLUSTER_JOIN => {
                arity(args.len() == 5)?;
                ClusterCommand::Join(parse_member(args)?)
            }
            opcode::CLUSTER_MIGRATE => {
                arity(args.len() >= 3)?;
                ClusterCommand::Migrate {
                    to: parse_int::<u64>(args[0].as_ref())?,
                    ranges: parse_ranges(&args[1..])?,
                }
            }
            opcode::CLUSTER_IMPORT => {
                arity(args.len() >= 4)?;
                let reset = match args[0].as_ref().to_ascii_uppercase().as_slice() {
                    b"RESET" => true,
                    b"MORE" => false,
                    _ => {
                        return Err(ErrorReply::new(
                            ErrorCode::Syntax,
                            "CLUSTER.IMPORT takes RESET or MORE first",
                        ))
                    }
                };
                let (entries, ranges) = args[1..].split_last().expect("at least three words");
                ClusterCommand::Import {
                    reset,
                    ranges: parse_ranges(ranges)?,
                    entries: entries.clone(),
                }
            }
            opcode::CLUSTER_DROP => ClusterCommand::Drop(parse_ranges(args)?),
            opcode::CLUSTER_FORGET => {
                arity(args.len() == 1)?;
                ClusterCommand::Forget(parse_int::<u64>(args[0].as_ref())?)
            }
            opcode::CLUSTER_REPLICATE => {
                arity(args.len() == 1)?;
                ClusterCommand::Replicate(parse_int::<u64>(args[0].as_ref())?)
            }
            opcode::CLUSTER_SYNC => {
                arity(args.len() == 2)?;
                ClusterCommand::Sync {
                    session: parse_int::<u64>(args[0].as_ref())?,
                    chunk: parse_int::<u64>(args[1].as_ref())?,
                }
            }
            opcode::CLUSTER_PULL => {
                arity(args.len() == 3)?;
                ClusterCommand::Pull {
                    run: parse_int::<u64>(args[0].as_ref())?,
                    offset: parse_int::<u64>(args[1].as_ref())?,
                    replica: parse_int::<u64>(args[2].as_ref())?,
                }
            }
            opcode::WAIT => {
                arity(args.len() == 2)?;
                ClusterCommand::Wait {
                    replicas: parse_int::<u64>(args[0].as_ref())?,
                    timeout_ms: parse_int::<u64>(args[1].as_ref())?,
                }
            }
            opcode::READONLY => arity(args.is_empty()).map(|()| ClusterCommand::ReadOnly)?,
            opcode::READWRITE => arity(args.is_empty()).map(|()| ClusterCommand::ReadWrite)?,
            opcode::CLUSTER_FAILOVER => {
                arity(args.len() == 1)?;
                ClusterCommand::Failover(parse_int::<u64>(args[0].as_ref())?)
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
