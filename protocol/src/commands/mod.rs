//! The command registry: one module per command family, assembled into one table.
//!
//! Each family module (`keys`, `limits`, ..., `geo`) owns its opcodes, its rows of the
//! table, its request type, the wire encode/decode and the text parsing of its commands,
//! and which argument is the key. This module only assembles them: `families!` lists each
//! family once, and from that list come the `Command` enum, the dispatch to each family,
//! `COMMANDS` and the opcode index. Adding a family is one file and one line below.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{Payload, Reader};

pub mod access;
pub mod admin;
pub(crate) mod arg;
pub mod blocking;
pub mod cluster;
pub mod counters;
pub mod dedup;
pub mod diagnostics;
pub mod geo;
pub mod geo_sets;
pub mod hashes;
pub mod idem;
pub mod inventory;
pub mod keys;
pub mod keyspace;
pub mod limits;
pub mod lists;
pub mod presence;
pub mod pubsub;
pub mod request;
pub mod sets;
pub mod sorted_set_algebra;
pub mod sorted_sets;
pub mod split;
pub mod strings;
pub mod timelines;
pub mod transactions;
pub mod versioned;

pub use admin::AdminCommand;
pub use blocking::BlockingCommand;
pub use cluster::ClusterCommand;
pub use counters::{CounterCommand, MAX_ID_BLOCK};
pub use dedup::DedupCommand;
pub use diagnostics::DiagnosticsCommand;
pub use geo::GeoCommand;
pub use geo_sets::GeoSetCommand;
pub use hashes::HashCommand;
pub use idem::{IdemCommand, DEFAULT_LEASE_MS};
pub use inventory::{split_reservation_handle, InventoryCommand};
pub use keys::{KeyCommand, SetArgs, SetCondition, SetExpiry};
pub use keyspace::KeyspaceCommand;
pub use limits::{Algorithm, LimitCommand, RateLimit, Tier, Tiers, MAX_TIERS};
pub use lists::{End, ListCommand};
pub use presence::{PresenceCommand, DEFAULT_PRESENCE_GRACE_MS, DEFAULT_PRESENCE_TTL_MS};
pub use pubsub::PubSubCommand;
pub use request::{ShapeError, Typed};
pub use sets::{SetCommand, SetOp};
pub use sorted_set_algebra::SortedSetAlgebraCommand;
pub use sorted_sets::SortedSetCommand;
pub use split::{Combine, Split};
pub use strings::{GetExpiry, StringCommand};
pub use timelines::{
    Cursor, TimelineCommand, DEFAULT_PAGE, DEFAULT_TIMELINE_CAP, MAX_TIMELINE_CAP,
};
pub use transactions::TxCommand;
pub use versioned::VersionedCommand;

/// Protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 2;
/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Longest expiry accepted: about 100 years, in milliseconds.
pub const MAX_EXPIRE_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Every family's opcodes under one roof, for code that names opcodes across families.
pub mod opcode {
    pub use super::admin::opcode::*;
    pub use super::blocking::opcode::*;
    pub use super::cluster::opcode::*;
    pub use super::counters::opcode::*;
    pub use super::dedup::opcode::*;
    pub use super::geo::opcode::*;
    pub use super::geo_sets::opcode::*;
    pub use super::hashes::opcode::*;
    pub use super::idem::opcode::*;
    pub use super::inventory::opcode::*;
    pub use super::keys::opcode::*;
    pub use super::keyspace::opcode::*;
    pub use super::limits::opcode::*;
    pub use super::lists::opcode::*;
    pub use super::presence::opcode::*;
    pub use super::pubsub::opcode::*;
    pub use super::sets::opcode::*;
    pub use super::sorted_set_algebra::opcode::*;
    pub use super::sorted_sets::opcode::*;
    pub use super::strings::opcode::*;
    pub use super::timelines::opcode::*;
    pub use super::transactions::opcode::*;
    pub use super::versioned::opcode::*;
}

/// Which arguments are keys, so a router knows where a command must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No key: answered by whichever shard receives it.
    None,
    /// Exactly one key: runs on its owner.
    Single,
    /// A list of keys: split by owner, run in parallel, gathered.
    Many,
    /// Key/value pairs: split by owner like `Many`.
    Pairs,
    /// No key, but every shard takes part (DBSIZE, FLUSHALL, INFO).
    AllShards,
    /// Several keys that must share a slot (a `{hash tag}`), so the command runs whole
    /// on their owner: CROSS_SHARD otherwise.
    OneSlot,
    /// Keys whose owners register the connection itself for pushes: sent whole on the
    /// connection that is to receive them, never split by a client.
    Watch,
    /// No key: runs where the partitions around a position live, gathered.
    Area,
}

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Wire opcode.
    pub opcode: u16,
    /// Upper-case name used by the CLI and the docs.
    pub name: &'static str,
    /// Text arguments after the name, redis-cli style.
    pub syntax: &'static str,
    /// Body layout after the opcode, in PROTOCOL.md's notation.
    pub wire: &'static str,
    /// Reply shape.
    pub reply: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Whether it changes data, so a log records it and a replica applies it (reads,
    /// even those that drop expired keys on the way, do not).
    pub writes: bool,
    /// Where it runs.
    pub keys: KeySpec,
}

/// A row of the table, from its parts in the order the table shows them.
#[allow(clippy::too_many_arguments)]
pub(crate) const fn spec_row(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
    writes: bool,
    keys: KeySpec,
) -> CommandSpec {
    CommandSpec {
        opcode,
        name,
        syntax,
        wire,
        reply,
        summary,
        writes,
        keys,
    }
}

/// A row for a command with one key, which most families' rows are.
pub(crate) const fn keyed_row(
    opcode: u16,
    name: &'static str,
    syntax: &'static str,
    wire: &'static str,
    reply: &'static str,
    summary: &'static str,
    writes: bool,
) -> CommandSpec {
    spec_row(
        opcode,
        name,
        syntax,
        wire,
        reply,
        summary,
        writes,
        KeySpec::Single,
    )
}

/// Declares the families: the `Command` enum with one variant per family, its dispatch to
/// the family's methods, and the family list the table is assembled from.
macro_rules! families {
    ($($(#[$doc:meta])* $variant:ident($module:ident::$family:ident),)*) => {
        /// A decoded request: one variant per command family.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command<P = Bytes> {
            $($(#[$doc])* $variant($module::$family<P>),)*
        }

        /// Which family a table row belongs to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Family {
            $($variant,)*
        }

        /// Each family with its rows, in opcode order.
        const FAMILIES: &[(Family, &[CommandSpec])] = &[$((Family::$variant, $module::ROWS),)*];

        impl Family {
            /// The family's lower-case name: its module's, which ACL categories use.
            const fn name(self) -> &'static str {
                match self {
                    $(Family::$variant => stringify!($module),)*
                }
            }
        }

        /// Every family's name, in table order.
        pub const FAMILY_NAMES: &[&str] = &[$(stringify!($module),)*];

        $(impl<P> From<$module::$family<P>> for Command<P> {
            fn from(command: $module::$family<P>) -> Self {
                Command::$variant(command)
            }
        })*

        impl<P: Payload> Command<P> {
            /// The command's opcode.
            pub fn opcode(&self) -> u16 {
                match self {
                    $(Command::$variant(c) => c.opcode(),)*
                }
            }

            /// The single key this command touches, for `KeySpec::Single` commands.
            pub fn single_key(&self) -> Option<&P> {
                match self {
                    $(Command::$variant(c) => c.single_key(),)*
                }
            }

            fn encode_arguments(&self, buf: &mut BytesMut) {
                match self {
                    $(Command::$variant(c) => c.encode(buf),)*
                }
            }

            /// How a multi-key command splits across shards, given each key's owner;
            /// `None` for commands that run whole.
            pub fn split(&self, owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<Command>> {
                match self {
                    $(Command::$variant(c) => c.split(owner).map(|s| s.map(Command::$variant)),)*
                }
            }

            /// Copies every argument into its own `Bytes`, so the command outlives the
            /// buffer it was decoded from (e.g. to send it to another shard).
            pub fn to_owned_bytes(&self) -> Command<Bytes> {
                match self {
                    $(Command::$variant(c) => Command::$variant(c.to_owned_bytes()),)*
                }
            }

            fn decode_arguments(
                family: Family,
                op: u16,
                r: &mut Reader<P>,
            ) -> Result<Command<P>, DecodeError> {
                Ok(match family {
                    $(Family::$variant => Command::$variant($module::$family::decode(op, r)?),)*
                })
            }
        }

        impl<P: Payload> Command<P> {
            fn parse_arguments(
                family: Family,
                spec: &'static CommandSpec,
                args: &[P],
            ) -> Result<Command<P>, ErrorReply> {
                Ok(match family {
                    $(Family::$variant => Command::$variant($module::$family::parse(spec, args)?),)*
                })
            }
        }
    };
}

families! {
    /// PING, HELLO, INFO, DBSIZE, FLUSHALL.
    Admin(admin::AdminCommand),
    /// GET, SET, DEL, EXISTS, the expiry commands, INCRBY/DECRBY, MGET, MSET.
    Keys(keys::KeyCommand),
    /// RL.*: rate limits.
    Limits(limits::LimitCommand),
    /// DEDUP, DEDUP.MULTI.
    Dedup(dedup::DedupCommand),
    /// COUNTER.* and ID.RANGE.
    Counters(counters::CounterCommand),
    /// IDEM.*: idempotency records.
    Idem(idem::IdemCommand),
    /// VGET, VSET.
    Versioned(versioned::VersionedCommand),
    /// INV.*: inventory.
    Inventory(inventory::InventoryCommand),
    /// TL.*: timelines.
    Timelines(timelines::TimelineCommand),
    /// PRESENCE.*.
    Presence(presence::PresenceCommand),
    /// GEO.*: the driver index.
    Geo(geo::GeoCommand),
    /// H*: hashes, with per-field expiry.
    Hashes(hashes::HashCommand),
    /// Z*: sorted sets.
    SortedSets(sorted_sets::SortedSetCommand),
    /// CLUSTER.*: the cluster's membership and slot map.
    Cluster(cluster::ClusterCommand),
    /// L*: lists.
    Lists(lists::ListCommand),
    /// S*: sets.
    Sets(sets::SetCommand),
    /// TYPE, KEYS, SCAN, RENAME.
    Keyspace(keyspace::KeyspaceCommand),
    /// APPEND, GETRANGE, GETEX, INCRBYFLOAT, MSETNX, EXPIREAT and the other string commands.
    Strings(strings::StringCommand),
    /// TX: commands of one slot run as one step.
    Transactions(transactions::TxCommand),
    /// LMPOP and the blocking pops: BLPOP, BRPOP, BLMPOP, BLMOVE.
    Blocking(blocking::BlockingCommand),
    /// SUBSCRIBE, PSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH.
    PubSub(pubsub::PubSubCommand),
    /// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD.
    SortedSetAlgebra(sorted_set_algebra::SortedSetAlgebraCommand),
    /// GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE: Redis's geo sets.
    GeoSets(geo_sets::GeoSetCommand),
    /// SLOWLOG.* and LATENCY.*: the slow log and the latency monitor.
    Diagnostics(diagnostics::DiagnosticsCommand),
}

const fn row_count() -> usize {
    let mut total = 0;
    let mut f = 0;
    while f < FAMILIES.len() {
        total += FAMILIES[f].1.len();
        f += 1;
    }
    total
}

const ROW_COUNT: usize = row_count();

const fn assemble() -> [CommandSpec; ROW_COUNT] {
    let mut table = [FAMILIES[0].1[0]; ROW_COUNT];
    let (mut at, mut f) = (0, 0);
    while f < FAMILIES.len() {
        let rows = FAMILIES[f].1;
        let mut i = 0;
        while i < rows.len() {
            table[at] = rows[i];
            at += 1;
            i += 1;
        }
        f += 1;
    }
    table
}

/// Every command, in opcode order: the families' rows, one after another.
pub static COMMANDS: [CommandSpec; ROW_COUNT] = assemble();

/// Opcodes are below this bound, so the index is a flat array.
const OPCODE_LIMIT: usize = 0x200;
/// Marks an opcode with no row.
const NO_ROW: u8 = u8::MAX;

/// Where each opcode's row is: its family and its position in `COMMANDS`.
#[derive(Clone, Copy)]
struct Slot {
    family: Family,
    row: u8,
}

const fn index_opcodes() -> [Slot; OPCODE_LIMIT] {
    assert!(
        ROW_COUNT < NO_ROW as usize,
        "the opcode index holds at most 254 rows"
    );
    let mut index = [Slot {
        family: Family::Admin,
        row: NO_ROW,
    }; OPCODE_LIMIT];
    let (mut row, mut f) = (0, 0);
    while f < FAMILIES.len() {
        let rows = FAMILIES[f].1;
        let mut i = 0;
        while i < rows.len() {
            let op = rows[i].opcode as usize;
            assert!(op < OPCODE_LIMIT, "opcodes must stay below 0x200");
            assert!(index[op].row == NO_ROW, "two rows share an opcode");
            index[op] = Slot {
                family: FAMILIES[f].0,
                row: row as u8,
            };
            row += 1;
            i += 1;
        }
        f += 1;
    }
    index
}

static BY_OPCODE: [Slot; OPCODE_LIMIT] = index_opcodes();

fn slot(op: u16) -> Option<Slot> {
    BY_OPCODE
        .get(usize::from(op))
        .copied()
        .filter(|slot| slot.row != NO_ROW)
}

/// Looks a command up by opcode.
pub fn spec_by_opcode(op: u16) -> Option<&'static CommandSpec> {
    slot(op).map(|slot| &COMMANDS[usize::from(slot.row)])
}

/// The name of the family a command belongs to (`keys`, `geo`, `sorted_sets` ...).
pub fn family_of(spec: &CommandSpec) -> &'static str {
    slot(spec.opcode).map_or("admin", |slot| slot.family.name())
}

/// Longest command name in the table, with room to spare: longer names are no command.
const LONGEST_NAME: usize = 32;

/// Looks a command up by name, ignoring case.
pub fn spec_by_name(name: &str) -> Option<&'static CommandSpec> {
    // Every request read as text looks its name up, so this is a hash probe, not a scan
    // of a table of hundreds.
    static BY_NAME: std::sync::LazyLock<hashbrown::HashMap<&'static [u8], u16>> =
        std::sync::LazyLock::new(|| {
            COMMANDS
                .iter()
                .enumerate()
                .map(|(row, spec)| (spec.name.as_bytes(), row as u16))
                .collect()
        });
    let name = name.as_bytes();
    if name.len() > LONGEST_NAME {
        return None;
    }
    let mut upper = [0u8; LONGEST_NAME];
    let upper = &mut upper[..name.len()];
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    BY_NAME
        .get(&upper[..])
        .map(|&row| &COMMANDS[usize::from(row)])
}

impl<P: Payload> Command<P> {
    /// The command's position in `COMMANDS`, for per-command counters.
    pub fn table_index(&self) -> usize {
        slot(self.opcode()).map_or(0, |slot| usize::from(slot.row))
    }

    /// The command's row in the table.
    pub fn spec(&self) -> &'static CommandSpec {
        &COMMANDS[self.table_index()]
    }

    /// Appends opcode and arguments (the frame body).
    pub fn encode(&self, buf: &mut BytesMut) {
        use bytes::BufMut;
        buf.put_u16_le(self.opcode());
        self.encode_arguments(buf);
    }

    /// Decodes a request body (opcode and arguments), validating every bound.
    ///
    /// # Errors
    /// `UnknownOpcode` for opcodes outside the table; other `DecodeError`s for malformed
    /// or out-of-range arguments.
    pub fn decode(body: P) -> Result<Command<P>, DecodeError> {
        let mut r = Reader::new(body);
        let op = r.u16()?;
        let slot = slot(op).ok_or(DecodeError::UnknownOpcode(op))?;
        let command = Command::decode_arguments(slot.family, op, &mut r)?;
        r.finish()?;
        Ok(command)
    }
}

impl<P: Payload> Command<P> {
    /// Parses redis-cli style words (`SET k v EX 10`) into a command whose arguments are
    /// the words themselves (`&[u8]` words give a command borrowed from them).
    ///
    /// # Errors
    /// An `ErrorReply` with `UnknownCommand`, `Syntax`, `NotInteger`, `KeyTooLarge` or
    /// `InvalidExpire`, worded for a person at a prompt.
    pub fn parse_words(words: &[P]) -> Result<Command<P>, ErrorReply> {
        let Some((name, args)) = words.split_first() else {
            return Err(ErrorReply::new(ErrorCode::Syntax, "empty command"));
        };
        let name = name.as_ref();
        let spec = std::str::from_utf8(name)
            .ok()
            .and_then(spec_by_name)
            .ok_or_else(|| {
                ErrorReply::new(
                    ErrorCode::UnknownCommand,
                    format!("unknown command '{}'", String::from_utf8_lossy(name)),
                )
            })?;
        Command::parse_for(spec, args)
    }

    /// Parses the words after the name of the command `spec` describes, for a caller
    /// that has already looked the name up.
    ///
    /// # Errors
    /// As `parse_words`.
    pub fn parse_for(spec: &'static CommandSpec, args: &[P]) -> Result<Command<P>, ErrorReply> {
        let family = slot(spec.opcode).map_or(Family::Admin, |slot| slot.family);
        Command::parse_arguments(family, spec, args)
    }
}

#[cfg(test)]
mod tests;
