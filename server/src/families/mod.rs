//! Shard-side operations: synchronous functions on one shard's keyspace that return values.
//!
//! Nothing here knows about connections, replies or other shards; a coordinator hands in a
//! command whose keys this shard owns and gets a `Value` back.

use bytes::{Bytes, BytesMut};
use tessera_protocol::commands::MAX_EXPIRE_MS;
use tessera_protocol::commands::{Algorithm, Cursor, RateLimit, Tier, MAX_TIERS};
use tessera_protocol::commands::{HashCommand, SortedSetCommand, TxCommand};
use tessera_protocol::wire::Payload;
use tessera_protocol::{
    AdminCommand, CounterCommand, DedupCommand, IdemCommand, InventoryCommand, KeyCommand,
    LimitCommand, PresenceCommand, TimelineCommand, VersionedCommand,
};
use tessera_protocol::{Command, ErrorCode, ErrorReply, SetArgs, SetCondition, SetExpiry, Value};

use tessera_cluster::hash_tag;

use crate::data::codec::{In, Out};
use crate::data::geo::SavedMember;
use crate::data::inventory::StockLevel;
use crate::data::inventory::{Refusal, Reserved, Sku};
use crate::data::keyspace::{Blob, Found, StoredValue};
use crate::data::timeline::{merge, Page, Timeline};
use tessera_limits::{Decision, Gcra, Window};

pub mod admin;
pub mod blocking;
pub mod counters;
pub mod dedup;
pub mod geo;
pub mod geo_sets;
pub mod hashes;
pub mod idem;
pub mod inventory;
pub mod keys;
pub mod keyspace;
pub mod limits;
pub mod lists;
pub mod migration;
pub mod notify;
pub mod presence;
pub mod pubsub;
pub mod replica;
pub mod saved;
pub mod sets;
pub mod sorted_set_algebra;
pub mod sorted_sets;
pub mod strings;
pub mod timelines;
pub mod versioned;
pub mod watch;

/// A shard's keyspace holding the families' values.
pub type Keyspace = crate::data::keyspace::Keyspace<Stored>;

/// What a key holds: bytes, or the state of one of the native types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Bytes or an integer (strings, counters, dedup records).
    Blob(Blob),
    /// A single-tier sliding-window rate limit.
    Window(Window),
    /// A GCRA rate limit.
    Gcra(Gcra),
    /// A multi-tier sliding-window rate limit, one window per tier.
    Tiers(Box<[Window]>),
    /// An idempotency record.
    Idem(Box<IdemRecord>),
    /// A value with a version, for compare-and-set.
    Versioned(Box<Versioned>),
    /// A SKU's stock and reservations.
    Sku(Box<Sku>),
    /// A capped timeline.
    Timeline(Box<Timeline>),
    /// A user's presence.
    Presence(Box<Presence>),
    /// A hash's fields.
    Hash(hashes::FieldMap),
    /// A sorted set's members.
    SortedSet(sorted_sets::ScoreSet),
    /// A list's elements.
    List(Box<lists::List>),
    /// A set's members.
    Set(Box<crate::data::members::Members>),
}

/// A user's presence: when last seen, until when online, and optional metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Last heartbeat (ms, server clock).
    pub last_seen: u64,
    /// Online until this time: last heartbeat plus its TTL and grace.
    pub online_until: u64,
    /// Region, device, or whatever the client attached.
    pub meta: Option<Box<[u8]>>,
}

/// A versioned value: the version counts writes since the key was created, from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// Current version.
    pub version: u64,
    /// Current value.
    pub value: Blob,
}

/// An idempotency record: who holds the operation, or its result once done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    /// Counts the callers that have been handed the operation; the current holder's token.
    pub token: u64,
    /// When the holder's lease lapses and another caller may take over (ms).
    pub lease_until: u64,
    /// The stored result, once the operation is done.
    pub result: Option<Box<[u8]>>,
}

impl StoredValue for Stored {
    fn heap_bytes(&self) -> usize {
        match self {
            Stored::Blob(blob) => blob.heap_bytes(),
            Stored::Tiers(tiers) => std::mem::size_of_val::<[Window]>(tiers),
            Stored::Sku(sku) => std::mem::size_of::<Sku>() + sku.heap_bytes(),
            Stored::Timeline(timeline) => std::mem::size_of::<Timeline>() + timeline.heap_bytes(),
            Stored::Presence(presence) => {
                std::mem::size_of::<Presence>() + presence.meta.as_ref().map_or(0, |m| m.len())
            }
            Stored::Versioned(versioned) => {
                std::mem::size_of::<Versioned>() + versioned.value.heap_bytes()
            }
            Stored::Idem(record) => {
                std::mem::size_of::<IdemRecord>() + record.result.as_ref().map_or(0, |r| r.len())
            }
            Stored::Hash(fields) => fields.heap_bytes(),
            Stored::SortedSet(set) => set.heap_bytes(),
            Stored::List(list) => list.heap_bytes(),
            Stored::Set(set) => set.heap_bytes(),
            Stored::Window(_) | Stored::Gcra(_) => 0,
        }
    }

    fn stock(&self) -> Option<StockLevel> {
        match self {
            Stored::Sku(sku) => Some(sku.level()),
            _ => None,
        }
    }

    fn save(&self, out: &mut crate::data::codec::Out<'_>) {
        saved::save(self, out);
    }
}

impl Stored {
    /// Whether this is rate-limit state.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, Stored::Window(_) | Stored::Gcra(_) | Stored::Tiers(_))
    }
}

impl From<Blob> for Stored {
    fn from(blob: Blob) -> Self {
        Stored::Blob(blob)
    }
}

/// A shard operation's result: a value, or a stored value lent out until the reply is
/// written, so a local GET copies its bytes once, straight into the output buffer.
pub enum Reply<'a> {
    /// A value built for the reply.
    Value(Value),
    /// A stored value, read in place.
    Stored(&'a Blob),
    /// Stored bytes (a hash field's value), read in place.
    Bytes(&'a [u8]),
    /// An ARRAY of stored bytes (a sorted set's members), read in place.
    Members(Vec<&'a [u8]>),
}

impl Reply<'_> {
    /// The reply as an owned value, for sending to another shard.
    pub fn into_value(self) -> Value {
        match self {
            Reply::Value(value) => value,
            Reply::Stored(blob) => to_value(blob),
            Reply::Bytes(bytes) => Value::Bytes(Bytes::copy_from_slice(bytes)),
            Reply::Members(members) => Value::Array(
                members
                    .into_iter()
                    .map(|m| Value::Bytes(Bytes::copy_from_slice(m)))
                    .collect(),
            ),
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Value(Value::Error(_)))
    }
}

/// Runs a key command (or the key-owning part of a multi-key one) on `keyspace`.
///
/// Commands without keys that every shard answers (DBSIZE, FLUSHALL) are included; INFO,
/// PING and HELLO are not shard operations and reply with an internal error here.
pub fn apply<'a, P: Payload>(
    keyspace: &'a mut Keyspace,
    command: &Command<P>,
    now: u64,
) -> Reply<'a> {
    // The reads a reply can take straight from the keyspace.
    match command {
        Command::Keys(KeyCommand::Get(key)) => {
            return match keyspace.get(key.as_ref(), now) {
                Some(Stored::Blob(blob)) => Reply::Stored(blob),
                Some(_) => Reply::Value(wrong_type()),
                None => Reply::Value(Value::Nil),
            };
        }
        Command::Hashes(HashCommand::Get { key, field }) => {
            return match hashes::get(keyspace, key.as_ref(), field.as_ref(), now) {
                Ok(Some(bytes)) => Reply::Bytes(bytes),
                Ok(None) => Reply::Value(Value::Nil),
                Err(error) => Reply::Value(error),
            };
        }
        Command::SortedSets(SortedSetCommand::Range {
            key,
            selection,
            rev,
            limit,
            with_scores: false,
        }) => {
            let members =
                sorted_sets::range_members(keyspace, key.as_ref(), *selection, *rev, *limit, now);
            return match members {
                Ok(members) => Reply::Members(members),
                Err(error) => Reply::Value(error),
            };
        }
        Command::Sets(tessera_protocol::commands::SetCommand::Pop { key, count }) => {
            let reply = pop_members(keyspace, key.as_ref(), *count, now);
            touch_watched(keyspace, command, &reply);
            return Reply::Value(reply);
        }
        Command::Transactions(TxCommand::Tx(commands)) => {
            return Reply::Value(run_transaction(keyspace, commands, now));
        }
        _ => {}
    }
    let before = notify::before(keyspace, command, now);
    let reply = apply_owned(keyspace, command, now);
    // A pop that found every list empty changed nothing, and its wait is not logged.
    let changed_nothing = matches!(command, Command::Blocking(_)) && reply == Value::Nil;
    if !matches!(reply, Value::Error(_)) && command.spec().writes && !changed_nothing {
        if let Some(journal) = keyspace.journal() {
            Mutation::record(journal, now, command);
        }
        touch_watched(keyspace, command, &reply);
        if keyspace.notices.enabled() {
            notify::raise(keyspace, command, &reply, before, now);
        }
        if !keyspace.blocked.is_empty() {
            let blocked = &mut keyspace.blocked;
            command.for_each_key(&mut |key| blocked.note_write(key));
            blocking::serve_waiting(keyspace, now);
        }
    }
    Reply::Value(reply)
}

/// A write ran: the transactions watching its keys will run nothing. A write that found
/// nothing to change counts too, which can only spoil a transaction, never let one run.
fn touch_watched<P: Payload>(keyspace: &mut Keyspace, command: &Command<P>, reply: &Value) {
    if keyspace.tx_watches.is_empty() || matches!(reply, Value::Error(_)) {
        return;
    }
    if let Command::Admin(AdminCommand::FlushAll) = command {
        return;
    }
    let watches = &mut keyspace.tx_watches;
    command.for_each_key(&mut |key| watches.touch(key));
}

/// What a count, OK or nil is taken to cost in a reply.
const SMALL_REPLY_BYTES: usize = 16;

/// About what `value` takes in a reply.
fn reply_bytes(value: &Value) -> usize {
    match value {
        Value::Bytes(bytes) => bytes.len() + 8,
        Value::Array(items) => items.iter().map(reply_bytes).sum::<usize>() + 8,
        Value::Map(pairs) => {
            pairs
                .iter()
                .map(|(key, value)| reply_bytes(key) + reply_bytes(value))
                .sum::<usize>()
                + 8
        }
        _ => SMALL_REPLY_BYTES,
    }
}

/// TX: each command in turn, with nothing between them, and the changes they made
/// recorded as one record, so a replay or a replica applies all of them or none.
fn run_transaction<P: Payload>(
    keyspace: &mut Keyspace,
    commands: &[Command<P>],
    now: u64,
) -> Value {
    // Waiting pops are served once the whole transaction has run, as in Redis: a list
    // pushed to and emptied again inside it wakes nobody.
    let serving = std::mem::replace(&mut keyspace.blocked.serving, true);
    let (replies, records) = keyspace.journal_aside(|keyspace| {
        // Each command's reply is bounded on its own; their sum is bounded too, so many
        // large reads in one transaction cannot hold more than one reply may. Past the
        // bound every command still runs, and a small reply (a count, OK) still comes
        // back, but a value is replaced by the refusal.
        let mut size = 0usize;
        commands
            .iter()
            .map(|command| {
                let reply = apply(keyspace, command, now).into_value();
                let bytes = reply_bytes(&reply);
                size = size.saturating_add(bytes);
                match within_reply_limit(size, keyspace.reply_limit) {
                    Err(refusal) if bytes > SMALL_REPLY_BYTES => Value::Error(refusal),
                    _ => reply,
                }
            })
            .collect()
    });
    let changes: Vec<Command> = records
        .map(|records| crate::data::codec::unframe(&records))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|record| Mutation::decode(record).ok().map(|m| m.command))
        .collect();
    if !changes.is_empty() {
        if let Some(journal) = keyspace.journal() {
            Mutation::record(journal, now, &Command::Transactions(TxCommand::Tx(changes)));
        }
    }
    keyspace.blocked.serving = serving;
    blocking::serve_waiting(keyspace, now);
    Value::Array(replies)
}

/// SPOP, journaled as the SREM of the members it took, so a replay takes the same ones.
fn pop_members(keyspace: &mut Keyspace, key: &[u8], count: Option<u64>, now: u64) -> Value {
    match sets::pop(keyspace, key, count, now) {
        Err(error) => Value::Error(error),
        Ok((reply, popped)) => {
            if !popped.is_empty() {
                if let Some(journal) = keyspace.journal() {
                    let removal = Command::Sets(tessera_protocol::commands::SetCommand::Rem {
                        key: Bytes::copy_from_slice(key),
                        members: popped,
                    });
                    Mutation::record(journal, now, &removal);
                }
            }
            reply
        }
    }
}

/// Refuses a reply that would carry `size` bytes of stored data when a reply may carry
/// only `limit`: measured before anything is copied, so asking costs nothing.
///
/// # Errors
/// REPLY_TOO_LARGE naming both figures.
pub fn within_reply_limit(size: usize, limit: usize) -> Result<(), ErrorReply> {
    if size <= limit {
        return Ok(());
    }
    Err(ErrorReply::new(
        ErrorCode::ReplyTooLarge,
        format!("the reply would hold {size} bytes of values, over the {limit} a reply may"),
    ))
}

/// One change as a log appends it and a replica applies it: the command that made it and
/// the server time it ran at, which is all replay needs, since every operation is a
/// function of the keyspace, the command and that time.
///
/// Record layout: `at_ms: uvarint`, then the command's request body (opcode and
/// arguments) exactly as PROTOCOL.md gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// Server time the command ran at, in milliseconds.
    pub at_ms: u64,
    /// The command.
    pub command: Command,
}

impl Mutation {
    /// Appends the record of `command` run at `at_ms`.
    pub fn encode<P: Payload>(buf: &mut BytesMut, at_ms: u64, command: &Command<P>) {
        tessera_protocol::wire::put_uvarint(buf, at_ms);
        command.encode(buf);
    }

    /// Appends the record of `command` run at `at_ms` to a journal, framed for the log.
    pub fn record<P: Payload>(journal: &mut BytesMut, at_ms: u64, command: &Command<P>) {
        crate::data::codec::frame(journal, |buf| Mutation::encode(buf, at_ms, command));
    }

    /// Reads a record back.
    ///
    /// # Errors
    /// The command's decode errors, or `Truncated` for a record with no time.
    pub fn decode(record: Bytes) -> Result<Mutation, tessera_protocol::DecodeError> {
        let mut at = 0;
        let mut at_ms = 0u64;
        loop {
            let byte = *record
                .get(at)
                .ok_or(tessera_protocol::DecodeError::Truncated)?;
            at_ms |= u64::from(byte & 0x7f) << (7 * at);
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if at == 10 {
                return Err(tessera_protocol::DecodeError::VarintOverflow);
            }
        }
        let command = Command::decode(record.slice(at..))?;
        Ok(Mutation { at_ms, command })
    }

    /// Applies the change to `keyspace`, as the shard did when it ran it.
    pub fn replay(&self, keyspace: &mut Keyspace) -> Value {
        apply(keyspace, &self.command, self.at_ms).into_value()
    }
}

/// The opcode slot of a log record holding a geo member's view instead of a command: no
/// command has it.
const GEO_VIEW: u16 = 0xFFFF;

/// One log record read back.
pub enum Record {
    /// A command that changed keys.
    Command(Mutation),
    /// One shard's view of a geo member after a change (geo commands run in steps across
    /// shards, so each shard logs what its step left).
    Geo(SavedMember),
}

impl Record {
    /// Reads a record back.
    ///
    /// # Errors
    /// The command's decode errors, or `Invalid` for a geo view that does not read back.
    pub fn decode(record: Bytes) -> Result<Record, tessera_protocol::DecodeError> {
        let mut input = In::new(&record);
        input
            .uint()
            .map_err(|_| tessera_protocol::DecodeError::Truncated)?;
        let body = input
            .take(2)
            .map_err(|_| tessera_protocol::DecodeError::Truncated)?;
        if u16::from_le_bytes([body[0], body[1]]) == GEO_VIEW {
            let saved = SavedMember::load(&mut input)
                .map_err(|_| tessera_protocol::DecodeError::Invalid("damaged geo view"))?;
            return Ok(Record::Geo(saved));
        }
        Mutation::decode(record).map(Record::Command)
    }

    /// Applies the record to `keyspace`.
    pub fn replay(&self, keyspace: &mut Keyspace) {
        match self {
            Record::Command(mutation) => {
                mutation.replay(keyspace);
            }
            Record::Geo(saved) => keyspace.geo.restore(saved),
        }
    }
}

/// Journals the views of the geo members changed since the last call, at the end of a
/// batch (and before the log takes the journal), so they are durable with the replies
/// that report them.
pub fn journal_geo(keyspace: &mut Keyspace, now: u64) {
    if !keyspace.geo.is_journaled() {
        return;
    }
    let touched = keyspace.geo.take_touched();
    let Some(journal) = keyspace.journal() else {
        return;
    };
    for member in touched {
        crate::data::codec::frame(journal, |buf| {
            tessera_protocol::wire::put_uvarint(buf, now);
            bytes::BufMut::put_u16_le(buf, GEO_VIEW);
            member.save(&mut Out::new(buf));
        });
    }
}

fn apply_owned<P: Payload>(keyspace: &mut Keyspace, command: &Command<P>, now: u64) -> Value {
    match command {
        Command::Admin(command) => admin::apply(keyspace, command, now),
        Command::Keys(command) => keys::apply(keyspace, command, now),
        Command::Limits(command) => limits::apply(keyspace, command, now),
        Command::Dedup(command) => dedup::apply(keyspace, command, now),
        Command::Counters(command) => counters::apply(keyspace, command, now),
        Command::Idem(command) => idem::apply(keyspace, command, now),
        Command::Versioned(command) => versioned::apply(keyspace, command, now),
        Command::Inventory(command) => inventory::apply(keyspace, command, now),
        Command::Timelines(command) => timelines::apply(keyspace, command, now),
        Command::Presence(command) => presence::apply(keyspace, command, now),
        Command::Geo(command) => geo::here(keyspace, command, now),
        Command::Hashes(command) => hashes::apply(keyspace, command, now),
        Command::SortedSets(command) => sorted_sets::apply(keyspace, command, now),
        Command::Lists(command) => lists::apply(keyspace, command, now),
        Command::Sets(command) => sets::apply(keyspace, command, now),
        Command::Keyspace(command) => keyspace::apply(keyspace, command, now),
        Command::Strings(command) => strings::apply(keyspace, command, now),
        Command::Cluster(tessera_protocol::ClusterCommand::Import {
            reset,
            ranges,
            entries,
        }) => migration::import(keyspace, *reset, ranges, entries.as_ref(), now),
        Command::Cluster(tessera_protocol::ClusterCommand::Drop(ranges)) => {
            Value::Int(migration::drop_slots(keyspace, ranges, now))
        }
        Command::Transactions(TxCommand::Tx(commands)) => run_transaction(keyspace, commands, now),
        Command::Blocking(command) => blocking::apply(keyspace, command, now),
        Command::SortedSetAlgebra(command) => sorted_set_algebra::apply(keyspace, command, now),
        Command::GeoSets(command) => geo_sets::apply(keyspace, command, now),
        Command::PubSub(_) => {
            Value::error(ErrorCode::Internal, "pub/sub is the node's, not a shard's")
        }
        Command::Cluster(_) | Command::Diagnostics(_) => {
            Value::error(ErrorCode::Internal, "not a shard operation")
        }
    }
}

/// Renders a stored value as the bytes a client reads.
pub fn to_value(stored: &Blob) -> Value {
    match stored.as_bytes() {
        Some(bytes) => Value::Bytes(Bytes::copy_from_slice(bytes)),
        None => match stored {
            Blob::Int(n) => Value::Bytes(Bytes::from(n.to_string())),
            _ => Value::Nil,
        },
    }
}

/// A key's timer has come: lapse its reservations, or look at a watched user again.
pub fn timer_due(keyspace: &mut Keyspace, key: &[u8], now: u64) {
    inventory::expire_reservations(keyspace, key, now);
    hashes::expire_fields(keyspace, key, now);
    watch::timer_fired(keyspace, key, now);
}

/// One answer per key of a split request's part, in the part's order, typed until the
/// reply is rendered where the request came in.
pub enum Items {
    /// MGET: each key's value.
    Values(Vec<Option<Bytes>>),
    /// DEDUP.MULTI: each key's first sighting or not.
    Flags(Vec<bool>),
    /// PRESENCE.GET: each user's row.
    Presence(Vec<Option<presence::PresenceRow>>),
    /// PRESENCE.WATCH: each user's baseline.
    Watched(Vec<watch::WatchRow>),
}

impl Items {
    /// The reply elements.
    pub fn render(self) -> Vec<Value> {
        match self {
            Items::Values(values) => values
                .into_iter()
                .map(|value| value.map_or(Value::Nil, Value::Bytes))
                .collect(),
            Items::Flags(flags) => flags.into_iter().map(Value::Bool).collect(),
            Items::Presence(rows) => rows.into_iter().map(presence::render_row).collect(),
            Items::Watched(rows) => rows.into_iter().map(watch::WatchRow::render).collect(),
        }
    }
}

/// What one shard answers for its part of a split request.
pub enum Part {
    /// One answer per key of the part.
    Items(Items),
    /// A count to add up.
    Count(i64),
    /// Done, nothing to report.
    Done,
    /// A timeline page to merge.
    Page(Page),
    /// The part failed; the whole request answers this error.
    Failed(ErrorReply),
}

/// Runs one part of a split request on the shard owning its keys.
pub fn run_part(keyspace: &mut Keyspace, part: &Command, now: u64) -> Part {
    if let Command::Timelines(TimelineCommand::Merge {
        limit,
        before,
        keys,
    }) = part
    {
        return match timelines::merge_pages(keyspace, keys, *before, *limit, now) {
            Ok(page) => Part::Page(page),
            Err(error) => Part::Failed(error),
        };
    }
    let items = match part {
        Command::Keys(KeyCommand::MGet(keys)) => match keys::mget(keyspace, keys, now) {
            Ok(values) => Some(Items::Values(values)),
            Err(error) => return Part::Failed(error),
        },
        Command::Dedup(DedupCommand::CheckMany { ttl_ms, keys }) => Some(Items::Flags(
            dedup::check_many(keyspace, keys, *ttl_ms, now),
        )),
        Command::Presence(PresenceCommand::Get(users)) => {
            Some(Items::Presence(presence::rows(keyspace, users, now)))
        }
        _ => None,
    };
    if let Some(items) = items {
        return Part::Items(items);
    }
    match apply(keyspace, part, now).into_value() {
        Value::Int(count) => Part::Count(count),
        Value::Error(error) => Part::Failed(error),
        _ => Part::Done,
    }
}

/// Runs `change` on the collection at `key`, as `view` finds it in the stored value,
/// removing the key if the change leaves it empty (`is_empty`); a missing key answers
/// `missing`, and a key of another kind WRONGTYPE.
fn change_collection<T: ?Sized>(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    missing: Value,
    view: fn(&mut Stored) -> Option<&mut T>,
    is_empty: fn(&T) -> bool,
    change: impl FnOnce(&mut T) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        return Ok(missing);
    }
    let outcome = keyspace.update(&found, |stored| {
        let collection = view(stored)?;
        let reply = change(collection);
        Some((reply, is_empty(collection)))
    });
    match outcome.flatten() {
        None => Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        Some((reply, empty)) => {
            if empty {
                keyspace.remove(key, now);
            }
            reply
        }
    }
}

/// Positions in `0..len` picked at random for HRANDFIELD and ZRANDMEMBER: `wanted`
/// distinct ones (all of them if it is at least `len`), or for a negative `wanted` that
/// many picks with repeats.
fn random_positions(keyspace: &mut Keyspace, len: usize, wanted: i64) -> Vec<usize> {
    if wanted < 0 {
        return (0..wanted.unsigned_abs())
            .map(|_| (keyspace.next_random() % len as u64) as usize)
            .collect();
    }
    let wanted = (wanted as usize).min(len);
    let mut order: Vec<usize> = (0..len).collect();
    for at in 0..wanted {
        let swap = at + (keyspace.next_random() % (len - at) as u64) as usize;
        order.swap(at, swap);
    }
    order.truncate(wanted);
    order
}

/// What a WRONGTYPE error says.
const WRONG_TYPE: &str = "the key holds a value of another kind";

fn wrong_type() -> Value {
    Value::error(ErrorCode::WrongType, WRONG_TYPE)
}

fn overflow() -> Value {
    Value::error(
        ErrorCode::NotInteger,
        "increment or decrement would overflow",
    )
}

/// `invalid expire time in 'expire' command`, as Redis words it.
fn invalid_expire(command: &str) -> Value {
    Value::error(
        ErrorCode::InvalidExpire,
        format!("invalid expire time in '{command}' command"),
    )
}

#[cfg(test)]
mod tests;
