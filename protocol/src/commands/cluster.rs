//! Cluster commands: a node's identity, forming a cluster, the slot map clients route by,
//! the node's view of the cluster, and a key's slot.

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
}

/// Most nodes one CLUSTER.CREATE may name.
pub const MAX_CREATE_NODES: usize = 1_000;

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::CLUSTER_MYSELF,
        name: "CLUSTER.MYSELF",
        syntax: "",
        wire: "(empty)",
        reply: "MAP {id: INT, addr: TEXT, bus: TEXT, shards: INT}; CLUSTER_DOWN on a node not started in cluster mode",
        summary: "Tells who this node is: its id, client address, cluster-bus address and shard count.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_CREATE,
        name: "CLUSTER.CREATE",
        syntax: "id bus addr shards [id bus addr shards ...]",
        wire: "count:uvarint (id:uvarint bus:bytes addr:bytes shards:uvarint)*count",
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
        reply: "MAP {epoch: INT, nodes: ARRAY of MAP {id, addr, shards}, ranges: ARRAY of ARRAY [first, last, owner id]}; CLUSTER_DOWN before a cluster is formed",
        summary: "The slot map clients route by: every node and which runs of slots it owns, at the node's epoch.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::CLUSTER_INFO,
        name: "CLUSTER.INFO",
        syntax: "",
        wire: "(empty)",
        reply: "MAP {enabled, state, node_id, epoch, role, leader, term, voters, nodes, slots_owned, serving} (the last ten when enabled)",
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
];

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
            ClusterCommand::Myself | ClusterCommand::Slots | ClusterCommand::Info => {}
            ClusterCommand::Create(members) => {
                put_uvarint(buf, members.len() as u64);
                for member in members {
                    put_uvarint(buf, member.id);
                    put_bytes(buf, member.bus.as_ref());
                    put_bytes(buf, member.addr.as_ref());
                    put_uvarint(buf, u64::from(member.shards));
                }
            }
            ClusterCommand::KeySlot(key) => put_bytes(buf, key.as_ref()),
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
                    let id = r.uvarint()?;
                    let bus = r.bytes()?;
                    let addr = r.bytes()?;
                    let shards = r.uvarint()?;
                    members
                        .push(checked_member(id, bus, addr, shards).map_err(DecodeError::Invalid)?);
                }
                ClusterCommand::Create(members)
            }
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
            ClusterCommand::Create(members) => ClusterCommand::Create(
                members
                    .iter()
                    .map(|m| Member {
                        id: m.id,
                        bus: own(&m.bus),
                        addr: own(&m.addr),
                        shards: m.shards,
                    })
                    .collect(),
            ),
        }
    }
}

/// A member whose fields are in range: an id of at least 1, addresses of at most 255
/// bytes, and 1 ..= 1024 shards.
fn checked_member<P: Payload>(
    id: u64,
    bus: P,
    addr: P,
    shards: u64,
) -> Result<Member<P>, &'static str> {
    if id == 0 {
        return Err("a node id is at least 1");
    }
    let fits = |a: &P| (1..=255).contains(&a.as_ref().len());
    if !fits(&bus) || !fits(&addr) {
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
    })
}

impl ClusterCommand<Bytes> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[Bytes]) -> Result<Self, ErrorReply> {
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
                arity(!args.is_empty() && args.len().is_multiple_of(4))?;
                if args.len() / 4 > MAX_CREATE_NODES {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "CLUSTER.CREATE names between 1 and 1000 nodes",
                    ));
                }
                let members = args
                    .chunks(4)
                    .map(|four| {
                        let id = parse_int::<u64>(&four[0])?;
                        let shards = parse_int::<u64>(&four[3])?;
                        checked_member(id, four[1].clone(), four[2].clone(), shards)
                            .map_err(|why| ErrorReply::new(ErrorCode::Syntax, why))
                    })
                    .collect::<Result<Vec<_>, ErrorReply>>()?;
                ClusterCommand::Create(members)
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
