//! The command table and the typed request for each command: wire encode/decode and text parsing.
//!
//! `COMMANDS` is the single registry: the server dispatches on `Command`, the client builds
//! `Command`s, the CLI parses words into them, and the docs list `COMMANDS`. Adding a command
//! means one table row, one enum variant, and one arm in each of `encode`, `decode` and
//! `parse_words`; the tests below fail until all four agree.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, ErrorCode};
use crate::geo::GeoCommand;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

/// Protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Longest expiry accepted: about 100 years, in milliseconds.
pub const MAX_EXPIRE_MS: i64 = 100 * 365 * 24 * 3600 * 1000;
/// Lease an IDEM.BEGIN caller holds when it names none: 30 seconds.
pub const DEFAULT_LEASE_MS: u64 = 30_000;
/// Largest block ID.RANGE hands out at once.
pub const MAX_ID_BLOCK: u64 = 1 << 40;

/// Opcodes, one per command; stable once published.
pub mod opcode {
    /// PING
    pub const PING: u16 = 0x0001;
    /// HELLO
    pub const HELLO: u16 = 0x0002;
    /// INFO
    pub const INFO: u16 = 0x0003;
    /// DBSIZE
    pub const DBSIZE: u16 = 0x0004;
    /// FLUSHALL
    pub const FLUSHALL: u16 = 0x0005;
    /// GET
    pub const GET: u16 = 0x0010;
    /// SET
    pub const SET: u16 = 0x0011;
    /// DEL
    pub const DEL: u16 = 0x0012;
    /// EXISTS
    pub const EXISTS: u16 = 0x0013;
    /// EXPIRE
    pub const EXPIRE: u16 = 0x0014;
    /// PEXPIRE
    pub const PEXPIRE: u16 = 0x0015;
    /// TTL
    pub const TTL: u16 = 0x0016;
    /// PTTL
    pub const PTTL: u16 = 0x0017;
    /// PERSIST
    pub const PERSIST: u16 = 0x0018;
    /// INCRBY
    pub const INCRBY: u16 = 0x0019;
    /// DECRBY
    pub const DECRBY: u16 = 0x001a;
    /// MGET
    pub const MGET: u16 = 0x001b;
    /// MSET
    pub const MSET: u16 = 0x001c;
    /// RL.CHECK
    pub const RL_CHECK: u16 = 0x0020;
    /// RL.PEEK
    pub const RL_PEEK: u16 = 0x0021;
    /// RL.RESET
    pub const RL_RESET: u16 = 0x0022;
    /// DEDUP
    pub const DEDUP: u16 = 0x0030;
    /// DEDUP.MULTI
    pub const DEDUP_MULTI: u16 = 0x0031;
    /// COUNTER.TAKE
    pub const COUNTER_TAKE: u16 = 0x0040;
    /// COUNTER.PUT
    pub const COUNTER_PUT: u16 = 0x0041;
    /// ID.RANGE
    pub const ID_RANGE: u16 = 0x0042;
    /// IDEM.BEGIN
    pub const IDEM_BEGIN: u16 = 0x0050;
    /// IDEM.COMPLETE
    pub const IDEM_COMPLETE: u16 = 0x0051;
    /// IDEM.GET
    pub const IDEM_GET: u16 = 0x0052;
    /// VGET
    pub const VGET: u16 = 0x0060;
    /// VSET
    pub const VSET: u16 = 0x0061;
    /// INV.SET
    pub const INV_SET: u16 = 0x0070;
    /// INV.ADJUST
    pub const INV_ADJUST: u16 = 0x0071;
    /// INV.GET
    pub const INV_GET: u16 = 0x0072;
    /// INV.RESERVE
    pub const INV_RESERVE: u16 = 0x0073;
    /// INV.CONFIRM
    pub const INV_CONFIRM: u16 = 0x0074;
    /// INV.RELEASE
    pub const INV_RELEASE: u16 = 0x0075;
    /// INV.RESERVE.MULTI
    pub const INV_RESERVE_MULTI: u16 = 0x0076;
    /// INV.STORE
    pub const INV_STORE: u16 = 0x0077;
    /// TL.PUSH
    pub const TL_PUSH: u16 = 0x0080;
    /// TL.FANOUT
    pub const TL_FANOUT: u16 = 0x0081;
    /// TL.RANGE
    pub const TL_RANGE: u16 = 0x0082;
    /// TL.MERGE
    pub const TL_MERGE: u16 = 0x0083;
    /// TL.REMOVE
    pub const TL_REMOVE: u16 = 0x0084;
    /// TL.LEN
    pub const TL_LEN: u16 = 0x0085;
    /// TL.TRIM
    pub const TL_TRIM: u16 = 0x0086;
    /// PRESENCE.BEAT
    pub const PRESENCE_BEAT: u16 = 0x0090;
    /// PRESENCE.GET
    pub const PRESENCE_GET: u16 = 0x0091;
    /// PRESENCE.LEAVE
    pub const PRESENCE_LEAVE: u16 = 0x0092;
    /// PRESENCE.WATCH
    pub const PRESENCE_WATCH: u16 = 0x0093;
    /// PRESENCE.UNWATCH
    pub const PRESENCE_UNWATCH: u16 = 0x0094;
    /// GEO.CREATE
    pub const GEO_CREATE: u16 = 0x00a0;
    /// GEO.UPSERT
    pub const GEO_UPSERT: u16 = 0x00a1;
    /// GEO.NEAR
    pub const GEO_NEAR: u16 = 0x00a2;
    /// GEO.CLAIM
    pub const GEO_CLAIM: u16 = 0x00a3;
    /// GEO.CONFIRM
    pub const GEO_CONFIRM: u16 = 0x00a4;
    /// GEO.RELEASE
    pub const GEO_RELEASE: u16 = 0x00a5;
    /// GEO.REMOVE
    pub const GEO_REMOVE: u16 = 0x00a6;
    /// GEO.GET
    pub const GEO_GET: u16 = 0x00a7;
    /// GEO.COUNT
    pub const GEO_COUNT: u16 = 0x00a8;
    /// GEO.CELLS
    pub const GEO_CELLS: u16 = 0x00a9;
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
    /// Keys whose owners register the connection itself for pushes: sent whole on the
    /// connection that is to receive them, never split by a client.
    Watch,
    /// No key: runs where the partitions around a position live, gathered.
    Area,
}

/// One row of the command table.
#[derive(Debug)]
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
    /// Where it runs.
    pub keys: KeySpec,
}

/// Every command, in opcode order.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::PING,
        name: "PING",
        syntax: "[message]",
        wire: "has_message:u8 [message:bytes]",
        reply: "TEXT \"PONG\", or BYTES message",
        summary: "Checks the connection is alive.",
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::HELLO,
        name: "HELLO",
        syntax: "[version] [SHARD n]",
        wire: "version:u16 shard:uvarint (0 = any shard, n = shard n-1)",
        reply: "MAP {version, node_id, shards, epoch, shard, server}",
        summary: "Negotiates the protocol version and tells the client how to route; may move the connection to a chosen shard.",
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::INFO,
        name: "INFO",
        syntax: "",
        wire: "(empty)",
        reply: "MAP of server, totals and per-shard statistics",
        summary: "Reports per-shard operations, connections, keys, memory and latency percentiles.",
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::DBSIZE,
        name: "DBSIZE",
        syntax: "",
        wire: "(empty)",
        reply: "INT live keys on this node",
        summary: "Counts the keys on every shard.",
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::FLUSHALL,
        name: "FLUSHALL",
        syntax: "",
        wire: "(empty)",
        reply: "OK",
        summary: "Deletes every key on every shard.",
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::GET,
        name: "GET",
        syntax: "key",
        wire: "key:bytes",
        reply: "BYTES value, or NIL",
        summary: "Returns the value of a key.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::SET,
        name: "SET",
        syntax: "key value [NX|XX] [EX seconds|PX milliseconds|KEEPTTL] [GET]",
        wire: "key:bytes value:bytes flags:u8 [ttl_ms:uvarint if flags & 0x10]",
        reply: "OK, or NIL if NX/XX was not met; with GET: the old BYTES value or NIL",
        summary: "Sets a key's value, optionally only if absent (NX) or present (XX), with an expiry.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DEL,
        name: "DEL",
        syntax: "key [key ...]",
        wire: "count:uvarint key:bytes*count",
        reply: "INT keys removed",
        summary: "Deletes keys.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::EXISTS,
        name: "EXISTS",
        syntax: "key [key ...]",
        wire: "count:uvarint key:bytes*count",
        reply: "INT keys that exist (a key named twice counts twice)",
        summary: "Counts how many of the keys exist.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::EXPIRE,
        name: "EXPIRE",
        syntax: "key seconds",
        wire: "key:bytes seconds:ivarint",
        reply: "INT 1 if the expiry was set, 0 if the key does not exist",
        summary: "Sets a key's time to live in seconds; zero or less deletes it.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PEXPIRE,
        name: "PEXPIRE",
        syntax: "key milliseconds",
        wire: "key:bytes milliseconds:ivarint",
        reply: "INT 1 if the expiry was set, 0 if the key does not exist",
        summary: "Sets a key's time to live in milliseconds; zero or less deletes it.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TTL,
        name: "TTL",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT seconds left (rounded to the nearest), -1 without expiry, -2 if missing",
        summary: "Returns a key's remaining time to live in seconds.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PTTL,
        name: "PTTL",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT milliseconds left, -1 without expiry, -2 if missing",
        summary: "Returns a key's remaining time to live in milliseconds.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PERSIST,
        name: "PERSIST",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT 1 if an expiry was removed, else 0",
        summary: "Removes a key's expiry.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INCRBY,
        name: "INCRBY",
        syntax: "key delta",
        wire: "key:bytes delta:ivarint",
        reply: "INT the new value",
        summary: "Adds to an integer value (a missing key counts as 0), refusing overflow.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DECRBY,
        name: "DECRBY",
        syntax: "key delta",
        wire: "key:bytes delta:ivarint",
        reply: "INT the new value",
        summary: "Subtracts from an integer value (a missing key counts as 0), refusing overflow.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::MGET,
        name: "MGET",
        syntax: "key [key ...]",
        wire: "count:uvarint key:bytes*count",
        reply: "ARRAY of BYTES or NIL, in the order asked",
        summary: "Returns the values of many keys, from every shard that owns one.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::MSET,
        name: "MSET",
        syntax: "key value [key value ...]",
        wire: "count:uvarint (key:bytes value:bytes)*count",
        reply: "OK",
        summary: "Sets many keys; atomic per shard, not across shards.",
        keys: KeySpec::Pairs,
    },
    CommandSpec {
        opcode: opcode::RL_CHECK,
        name: "RL.CHECK",
        syntax: "key LIMIT n WINDOW ms [LIMIT n WINDOW ms ...] [COST c] [ALGO sliding|gcra] [BURST b]",
        wire: "key:bytes algo:u8 (0 sliding, 1 gcra) cost:uvarint burst:uvarint (0 = limit) count:uvarint (limit:uvarint window_ms:uvarint)*count",
        reply: "MAP {allowed: BOOL, remaining: INT, reset_after_ms: INT, retry_after_ms: INT (0 if allowed, -1 if never)}",
        summary: "Checks cost units against every tier and consumes them from all tiers or from none.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::RL_PEEK,
        name: "RL.PEEK",
        syntax: "key LIMIT n WINDOW ms [LIMIT n WINDOW ms ...] [COST c] [ALGO sliding|gcra] [BURST b]",
        wire: "as RL.CHECK",
        reply: "as RL.CHECK",
        summary: "Answers what RL.CHECK would, without consuming anything.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::RL_RESET,
        name: "RL.RESET",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT 1 if there was state to forget, else 0",
        summary: "Forgets a rate limit's state, as if the key had never been checked.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DEDUP,
        name: "DEDUP",
        syntax: "key seconds",
        wire: "key:bytes ttl_ms:uvarint",
        reply: "BOOL true for the first sighting, false for a duplicate",
        summary: "Records a key for a time unless it is already recorded: first writer wins, and the first sighting's expiry stands.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::DEDUP_MULTI,
        name: "DEDUP.MULTI",
        syntax: "seconds key [key ...]",
        wire: "ttl_ms:uvarint count:uvarint key:bytes*count",
        reply: "ARRAY of BOOL, one per key in the order given (a key named twice is a duplicate the second time)",
        summary: "DEDUP for many keys in one call, split across the shards that own them.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::COUNTER_TAKE,
        name: "COUNTER.TAKE",
        syntax: "key amount [FLOOR floor]",
        wire: "key:bytes amount:uvarint floor:ivarint",
        reply: "MAP {taken: BOOL, remaining: INT}",
        summary: "Subtracts amount only if the result stays at or above floor (default 0); otherwise takes nothing. A missing key counts as 0.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::COUNTER_PUT,
        name: "COUNTER.PUT",
        syntax: "key amount",
        wire: "key:bytes amount:uvarint",
        reply: "INT the new value",
        summary: "Adds amount to a bounded counter (a top-up), refusing overflow.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::ID_RANGE,
        name: "ID.RANGE",
        syntax: "key size",
        wire: "key:bytes size:uvarint (1 ..= 2^40)",
        reply: "ARRAY [first: INT, last: INT], an inclusive block no other call ever gets",
        summary: "Hands out the next block of size ids from a sequence that starts at 1.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::IDEM_BEGIN,
        name: "IDEM.BEGIN",
        syntax: "key seconds [LEASE ms]",
        wire: "key:bytes ttl_ms:uvarint lease_ms:uvarint (0 = 30000)",
        reply: "MAP {state: TEXT new|in_progress|done, token: INT (new, in_progress), retry_after_ms: INT (in_progress), result: BYTES (done)}",
        summary: "Starts an idempotent operation: new (go ahead, holding a lease), in_progress (another caller holds the lease), or done with the stored result.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::IDEM_COMPLETE,
        name: "IDEM.COMPLETE",
        syntax: "key token result",
        wire: "key:bytes token:uvarint result:bytes",
        reply: "OK; NOT_FOUND if the record is gone, CONFLICT if the token's lease was taken over or the record is already done",
        summary: "Stores the result of the operation begun with token; every later IDEM.BEGIN returns it.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::IDEM_GET,
        name: "IDEM.GET",
        syntax: "key",
        wire: "key:bytes",
        reply: "as IDEM.BEGIN, or NIL if there is no record; changes nothing",
        summary: "Reads an idempotency record without starting anything.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::VGET,
        name: "VGET",
        syntax: "key",
        wire: "key:bytes",
        reply: "MAP {value: BYTES, version: INT}, or NIL",
        summary: "Returns a versioned value and its version.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::VSET,
        name: "VSET",
        syntax: "key value [IFVERSION v] [EX seconds]",
        wire: "key:bytes value:bytes if_version:uvarint (0 = none, v + 1 = must be v) ttl_ms:uvarint (0 = no expiry)",
        reply: "MAP {ok: BOOL, version: INT}: the new version, or on a conflict the current one (0 if absent)",
        summary: "Writes a versioned value, optionally only if its version still matches (0 = must not exist): compare-and-set.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_SET,
        name: "INV.SET",
        syntax: "sku ON_HAND n [LOW m]",
        wire: "sku:bytes on_hand:ivarint low:uvarint (0 = keep, m + 1 = low stock at m or fewer available)",
        reply: "MAP {on_hand, reserved, available, reservations}; CONFLICT if n is below what is reserved",
        summary: "Sets a SKU's units on hand, keeping its reservations.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_ADJUST,
        name: "INV.ADJUST",
        syntax: "sku delta",
        wire: "sku:bytes delta:ivarint",
        reply: "MAP {on_hand, reserved, available, reservations}; CONFLICT if on hand would fall below reserved",
        summary: "Adds to (restock) or takes from (shrinkage) a SKU's units on hand.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_GET,
        name: "INV.GET",
        syntax: "sku",
        wire: "sku:bytes",
        reply: "MAP {on_hand, reserved, available, reservations}, or NIL",
        summary: "Reports a SKU's units on hand, reserved and available, and its active reservations.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_RESERVE,
        name: "INV.RESERVE",
        syntax: "sku qty TTL seconds [ID id]",
        wire: "sku:bytes qty:uvarint ttl_ms:uvarint has_id:u8 [id:bytes]",
        reply: "MAP {ok: BOOL, reservation: BYTES sku#id (ok), state: TEXT active|confirmed (ok), available: INT}",
        summary: "Reserves qty units for a time unless fewer are available; with ID, a retry returns the same reservation.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_CONFIRM,
        name: "INV.CONFIRM",
        syntax: "reservation",
        wire: "sku:bytes id:bytes (the reservation sku#id, split at its last #)",
        reply: "OK; NOT_FOUND if the reservation expired, was released or never existed",
        summary: "Turns a reservation into a sale: its units leave on hand and reserved.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_RELEASE,
        name: "INV.RELEASE",
        syntax: "reservation",
        wire: "sku:bytes id:bytes",
        reply: "OK; NOT_FOUND as for INV.CONFIRM",
        summary: "Gives a reservation's units back.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_RESERVE_MULTI,
        name: "INV.RESERVE.MULTI",
        syntax: "TTL seconds sku qty [sku qty ...]",
        wire: "ttl_ms:uvarint count:uvarint (sku:bytes qty:uvarint)*count",
        reply: "MAP {ok: BOOL, reservations: ARRAY of BYTES (ok), short: ARRAY of BYTES skus short of stock}; CROSS_SHARD if the SKUs span shards",
        summary: "Reserves every line of a cart or none; the SKUs must share a shard (a {hash tag}).",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::INV_STORE,
        name: "INV.STORE",
        syntax: "store",
        wire: "store:bytes (a hash tag: the SKUs {store}:...)",
        reply: "MAP {skus: INT, sold_out: INT, low_stock: INT}",
        summary: "Counts a store's SKUs, those sold out (nothing available) and those at or below their low-stock mark.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_PUSH,
        name: "TL.PUSH",
        syntax: "key id [SCORE s] [CAP n]",
        wire: "key:bytes id:uvarint flags:u8 (1 score, 2 cap) [score:ivarint] [cap:uvarint]",
        reply: "INT 1 if added, 0 if the id was already there or is older than the cap keeps",
        summary: "Adds an id to a capped timeline kept newest first (score defaults to the id).",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_FANOUT,
        name: "TL.FANOUT",
        syntax: "id [SCORE s] [CAP n] key [key ...]",
        wire: "id:uvarint flags:u8 [score:ivarint] [cap:uvarint] count:uvarint key:bytes*count",
        reply: "INT timelines the id was added to",
        summary: "Pushes one id into many timelines in one call, split across the shards that own them.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::TL_RANGE,
        name: "TL.RANGE",
        syntax: "key [BEFORE cursor] [AFTER cursor] [LIMIT n]",
        wire: "key:bytes flags:u8 (1 before, 2 after) [before: score:ivarint id:uvarint] [after: score:ivarint id:uvarint] limit:uvarint (0 = 20)",
        reply: "MAP {items: ARRAY of [INT id, INT score] newest first, next: [INT score, INT id] cursor for older items, or NIL}",
        summary: "Pages a timeline: up to LIMIT items older than BEFORE and newer than AFTER; cursors never skip or repeat items as new ones arrive.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_MERGE,
        name: "TL.MERGE",
        syntax: "LIMIT n [BEFORE cursor] key [key ...]",
        wire: "limit:uvarint flags:u8 (1 before) [before: score:ivarint id:uvarint] count:uvarint key:bytes*count",
        reply: "as TL.RANGE, over the union of the timelines without duplicate ids",
        summary: "Merges several timelines on read (a home timeline plus celebrities'), deduplicated, with one cursor.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::TL_REMOVE,
        name: "TL.REMOVE",
        syntax: "key id",
        wire: "key:bytes id:uvarint",
        reply: "INT 1 if removed, else 0",
        summary: "Removes an id from a timeline.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_LEN,
        name: "TL.LEN",
        syntax: "key",
        wire: "key:bytes",
        reply: "INT items in the timeline",
        summary: "Counts a timeline's items.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::TL_TRIM,
        name: "TL.TRIM",
        syntax: "key keep",
        wire: "key:bytes keep:uvarint",
        reply: "INT items removed",
        summary: "Keeps only the newest items of a timeline.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_BEAT,
        name: "PRESENCE.BEAT",
        syntax: "user [TTL seconds] [GRACE ms] [META bytes]",
        wire: "user:bytes flags:u8 (1 ttl, 2 grace, 4 meta) [ttl_ms:uvarint] [grace_ms:uvarint] [meta:bytes]",
        reply: "BOOL true if this beat brought the user online",
        summary: "Records a heartbeat: the user is online until TTL (default 30 s) plus GRACE (default 5 s) passes without another.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_GET,
        name: "PRESENCE.GET",
        syntax: "user [user ...]",
        wire: "count:uvarint user:bytes*count",
        reply: "ARRAY per user of [BOOL online, INT ms since last seen, BYTES meta or NIL], or NIL if never seen",
        summary: "Who is online, with last-seen times and metadata, for many users across shards in one call.",
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_LEAVE,
        name: "PRESENCE.LEAVE",
        syntax: "user",
        wire: "user:bytes",
        reply: "INT 1 if the user was online, else 0",
        summary: "Marks a clean disconnect: offline at once, without waiting for TTL and grace.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_WATCH,
        name: "PRESENCE.WATCH",
        syntax: "user [user ...]",
        wire: "count:uvarint user:bytes*count",
        reply: "ARRAY per user of [BOOL online, INT ms since last seen or NIL, BYTES meta or NIL, INT sequence]; then presence pushes",
        summary: "Pushes each watched user's online/offline changes to this connection (request id 0), in order, once each.",
        keys: KeySpec::Watch,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_UNWATCH,
        name: "PRESENCE.UNWATCH",
        syntax: "[user ...]",
        wire: "count:uvarint user:bytes*count (count 0: every user)",
        reply: "INT users no longer watched",
        summary: "Stops pushes for the given users, or for every user this connection watches.",
        keys: KeySpec::Watch,
    },
    CommandSpec {
        opcode: opcode::GEO_CREATE,
        name: "GEO.CREATE",
        syntax: "index RES r",
        wire: "index:bytes res:u8 (7..=12)",
        reply: "OK",
        summary: "Sets an index's H3 resolution (default 9) before its first member.",
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::GEO_UPSERT,
        name: "GEO.UPSERT",
        syntax: "index member lat lng [STATUS s] [TTL secs] [META bytes]",
        wire: "index:bytes member:bytes lat:f64 lng:f64 flags:u8 (1 status, 2 ttl, 4 meta) [status:bytes] [ttl_ms:uvarint] [meta:bytes]",
        reply: "INT 1 new member, 0 updated",
        summary: "Inserts or moves a member; once it returns no query sees the old position.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_NEAR,
        name: "GEO.NEAR",
        syntax: "index lat lng K [RADIUS m] [STATUS s] [WITHDIST] [WITHMETA] [CLAIM [TTL secs]]",
        wire: "index:bytes lat:f64 lng:f64 radius_m:uvarint k:uvarint flags:u8 (1 status, 2 withdist, 4 withmeta, 8 claim) [status:bytes] [claim_ms:uvarint]",
        reply: "ARRAY of members nearest first (BYTES, or ARRAY [member, FLOAT metres?, meta?] with WITHDIST/WITHMETA)",
        summary: "Exact K nearest within the radius; CLAIM takes the nearest available one in the same request.",
        keys: KeySpec::Area,
    },
    CommandSpec {
        opcode: opcode::GEO_CLAIM,
        name: "GEO.CLAIM",
        syntax: "index member [TTL secs]",
        wire: "index:bytes member:bytes ttl_ms:uvarint",
        reply: "OK, or CONFLICT if not available, NOT_FOUND if unknown",
        summary: "Atomically available → offered; the offer lapses back after TTL (default 15 s).",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_CONFIRM,
        name: "GEO.CONFIRM",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "OK, or CONFLICT if not offered",
        summary: "Offered → busy.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_RELEASE,
        name: "GEO.RELEASE",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "OK, or NOT_FOUND",
        summary: "Offered or busy → available.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_REMOVE,
        name: "GEO.REMOVE",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "INT 1 removed, 0 unknown",
        summary: "Forgets a member.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_GET,
        name: "GEO.GET",
        syntax: "index member",
        wire: "index:bytes member:bytes",
        reply: "MAP lat, lng, cell, status, age_ms, ttl_ms, meta; or NIL",
        summary: "A member's position, H3 cell, status and age.",
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::GEO_COUNT,
        name: "GEO.COUNT",
        syntax: "index [WITHIN lat lng m] [STATUS s]",
        wire: "index:bytes flags:u8 (1 area, 2 status) [lat:f64 lng:f64 radius_m:uvarint] [status:bytes]",
        reply: "INT members",
        summary: "Counts members, in an area or with a status.",
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::GEO_CELLS,
        name: "GEO.CELLS",
        syntax: "index lat lng m [RES r] [STATUS s]",
        wire: "index:bytes lat:f64 lng:f64 radius_m:uvarint res:u8 has_status:u8 [status:bytes]",
        reply: "ARRAY of [TEXT cell, INT members], most first",
        summary: "Per-cell member counts over an area (supply maps; default RES 7).",
        keys: KeySpec::AllShards,
    },
];

/// Looks a command up by opcode.
pub fn spec_by_opcode(op: u16) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.opcode == op)
}

/// Looks a command up by name, ignoring case.
pub fn spec_by_name(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name.eq_ignore_ascii_case(name))
}

/// Write condition of SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always write.
    #[default]
    Always,
    /// Write only if the key is absent (NX).
    IfAbsent,
    /// Write only if the key exists (XX).
    IfPresent,
}

/// What SET does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// Remove any expiry (plain SET).
    #[default]
    Clear,
    /// Keep the current expiry (KEEPTTL).
    Keep,
    /// Expire this many milliseconds from now (EX, PX).
    In(u64),
}

/// Arguments of SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArgs<P = Bytes> {
    /// Key to write.
    pub key: P,
    /// New value.
    pub value: P,
    /// NX / XX.
    pub condition: SetCondition,
    /// EX / PX / KEEPTTL.
    pub expiry: SetExpiry,
    /// Return the previous value (GET).
    pub get: bool,
}

/// Most tiers one rate-limit key checks at once.
pub const MAX_TIERS: usize = 4;

/// One rate-limit tier: at most `limit` units per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tier {
    /// Units allowed per window.
    pub limit: u64,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

/// The tiers of one check, held inline (no allocation per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tiers {
    len: u8,
    items: [Tier; MAX_TIERS],
}

impl Tiers {
    /// Builds a list from 1 ..= `MAX_TIERS` tiers.
    pub fn new(tiers: &[Tier]) -> Option<Tiers> {
        if tiers.is_empty() || tiers.len() > MAX_TIERS {
            return None;
        }
        let mut items = [Tier::default(); MAX_TIERS];
        items[..tiers.len()].copy_from_slice(tiers);
        Some(Tiers {
            len: tiers.len() as u8,
            items,
        })
    }

    /// The tiers.
    pub fn as_slice(&self) -> &[Tier] {
        &self.items[..usize::from(self.len)]
    }
}

/// Rate-limit algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Sliding-window counter: two fixed buckets, the older weighted by its overlap.
    #[default]
    Sliding,
    /// Generic cell rate algorithm: even pacing with a burst allowance.
    Gcra,
}

/// Arguments of RL.CHECK and RL.PEEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit<P = Bytes> {
    /// Key holding the state.
    pub key: P,
    /// How units are counted.
    pub algorithm: Algorithm,
    /// Units this request costs.
    pub cost: u64,
    /// GCRA only: units that may arrive at once; 0 means the tier's limit.
    pub burst: u64,
    /// Limits that must all allow the request.
    pub tiers: Tiers,
}

/// Default number of items a timeline keeps.
pub const DEFAULT_TIMELINE_CAP: u32 = 800;
/// Most items a timeline may keep.
pub const MAX_TIMELINE_CAP: u32 = 100_000;
/// Default page size of TL.RANGE and TL.MERGE.
pub const DEFAULT_PAGE: u32 = 20;

/// A position in a timeline: items are ordered by score, then id, newest (largest) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Score (defaults to the id).
    pub score: i64,
    /// Id.
    pub id: u64,
}

/// Heartbeat lifetime when PRESENCE.BEAT names none.
pub const DEFAULT_PRESENCE_TTL_MS: u64 = 30_000;
/// Grace after a missed heartbeat when PRESENCE.BEAT names none.
pub const DEFAULT_PRESENCE_GRACE_MS: u64 = 5_000;

/// SET flag bits on the wire.
pub mod set_flags {
    /// NX
    pub const NX: u8 = 0x01;
    /// XX
    pub const XX: u8 = 0x02;
    /// GET
    pub const GET: u8 = 0x04;
    /// KEEPTTL
    pub const KEEPTTL: u8 = 0x08;
    /// A `ttl_ms` field follows.
    pub const TTL: u8 = 0x10;
    /// Every defined bit.
    pub const ALL: u8 = NX | XX | GET | KEEPTTL | TTL;
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<P = Bytes> {
    /// PING [message]
    Ping(Option<P>),
    /// HELLO version [SHARD n]
    Hello {
        /// Protocol version the client speaks.
        version: u16,
        /// Shard the connection should be served by, if any.
        shard: Option<u16>,
    },
    /// INFO
    Info,
    /// DBSIZE
    DbSize,
    /// FLUSHALL
    FlushAll,
    /// GET key
    Get(P),
    /// SET key value ...
    Set(SetArgs<P>),
    /// DEL key...
    Del(Vec<P>),
    /// EXISTS key...
    Exists(Vec<P>),
    /// EXPIRE key seconds
    Expire {
        /// Key.
        key: P,
        /// Seconds from now; zero or less deletes.
        seconds: i64,
    },
    /// PEXPIRE key milliseconds
    PExpire {
        /// Key.
        key: P,
        /// Milliseconds from now; zero or less deletes.
        millis: i64,
    },
    /// TTL key
    Ttl(P),
    /// PTTL key
    PTtl(P),
    /// PERSIST key
    Persist(P),
    /// INCRBY key delta
    IncrBy {
        /// Key.
        key: P,
        /// Amount added.
        delta: i64,
    },
    /// DECRBY key delta
    DecrBy {
        /// Key.
        key: P,
        /// Amount subtracted.
        delta: i64,
    },
    /// MGET key...
    MGet(Vec<P>),
    /// MSET key value...
    MSet(Vec<(P, P)>),
    /// RL.CHECK key LIMIT n WINDOW ms ...
    RlCheck(RateLimit<P>),
    /// RL.PEEK key LIMIT n WINDOW ms ...
    RlPeek(RateLimit<P>),
    /// RL.RESET key
    RlReset(P),
    /// DEDUP key seconds
    Dedup {
        /// Key recorded.
        key: P,
        /// Expiry of a first sighting, in milliseconds.
        ttl_ms: u64,
    },
    /// DEDUP.MULTI seconds key...
    DedupMulti {
        /// Expiry of each first sighting, in milliseconds.
        ttl_ms: u64,
        /// Keys recorded.
        keys: Vec<P>,
    },
    /// COUNTER.TAKE key amount [FLOOR floor]
    CounterTake {
        /// Counter.
        key: P,
        /// Amount to take.
        amount: u64,
        /// Lowest value the counter may reach.
        floor: i64,
    },
    /// COUNTER.PUT key amount
    CounterPut {
        /// Counter.
        key: P,
        /// Amount to add.
        amount: u64,
    },
    /// ID.RANGE key size
    IdRange {
        /// Sequence.
        key: P,
        /// Ids in the block.
        size: u64,
    },
    /// IDEM.BEGIN key seconds [LEASE ms]
    IdemBegin {
        /// Idempotency key.
        key: P,
        /// How long the record (and its result) is kept, in milliseconds.
        ttl_ms: u64,
        /// How long a caller may hold the operation before another may take over.
        lease_ms: u64,
    },
    /// IDEM.COMPLETE key token result
    IdemComplete {
        /// Idempotency key.
        key: P,
        /// Token IDEM.BEGIN handed out.
        token: u64,
        /// Result to store.
        result: P,
    },
    /// IDEM.GET key
    IdemGet(P),
    /// VGET key
    VGet(P),
    /// VSET key value [IFVERSION v] [EX seconds]
    VSet {
        /// Key.
        key: P,
        /// New value.
        value: P,
        /// Write only if the current version is this (0 = the key must not exist).
        if_version: Option<u64>,
        /// Expiry in milliseconds; `None` = never expires.
        ttl_ms: Option<u64>,
    },
    /// INV.SET sku ON_HAND n [LOW m]
    InvSet {
        /// SKU.
        sku: P,
        /// Units on hand.
        on_hand: i64,
        /// Low-stock mark: the SKU counts as low when at most this many are available.
        low: Option<u64>,
    },
    /// INV.ADJUST sku delta
    InvAdjust {
        /// SKU.
        sku: P,
        /// Units added (negative: removed).
        delta: i64,
    },
    /// INV.GET sku
    InvGet(P),
    /// INV.RESERVE sku qty TTL seconds [ID id]
    InvReserve {
        /// SKU.
        sku: P,
        /// Units to reserve.
        qty: u64,
        /// Reservation lifetime in milliseconds.
        ttl_ms: u64,
        /// Caller's reservation id, making retries idempotent.
        id: Option<P>,
    },
    /// INV.CONFIRM reservation
    InvConfirm {
        /// SKU.
        sku: P,
        /// Reservation id.
        id: P,
    },
    /// INV.RELEASE reservation
    InvRelease {
        /// SKU.
        sku: P,
        /// Reservation id.
        id: P,
    },
    /// INV.RESERVE.MULTI TTL seconds sku qty ...
    InvReserveMulti {
        /// Reservation lifetime in milliseconds.
        ttl_ms: u64,
        /// Cart lines.
        items: Vec<(P, u64)>,
    },
    /// INV.STORE store
    InvStore(P),
    /// TL.PUSH key id [SCORE s] [CAP n]
    TlPush {
        /// Timeline.
        key: P,
        /// Item and its score.
        item: Cursor,
        /// Cap to keep from now on.
        cap: Option<u32>,
    },
    /// TL.FANOUT id [SCORE s] [CAP n] key...
    TlFanout {
        /// Item and its score.
        item: Cursor,
        /// Cap of each timeline.
        cap: Option<u32>,
        /// Timelines.
        keys: Vec<P>,
    },
    /// TL.RANGE key [BEFORE c] [AFTER c] [LIMIT n]
    TlRange {
        /// Timeline.
        key: P,
        /// Only items older than this.
        before: Option<Cursor>,
        /// Only items newer than this.
        after: Option<Cursor>,
        /// Most items returned.
        limit: u32,
    },
    /// TL.MERGE LIMIT n [BEFORE c] key...
    TlMerge {
        /// Most items returned.
        limit: u32,
        /// Only items older than this.
        before: Option<Cursor>,
        /// Timelines.
        keys: Vec<P>,
    },
    /// TL.REMOVE key id
    TlRemove {
        /// Timeline.
        key: P,
        /// Id removed.
        id: u64,
    },
    /// TL.LEN key
    TlLen(P),
    /// TL.TRIM key keep
    TlTrim {
        /// Timeline.
        key: P,
        /// Newest items kept.
        keep: u32,
    },
    /// PRESENCE.BEAT user [TTL s] [GRACE ms] [META bytes]
    PresenceBeat {
        /// User.
        user: P,
        /// How long this heartbeat keeps the user online, in milliseconds.
        ttl_ms: u64,
        /// Extra time before a silent user is reported offline, in milliseconds.
        grace_ms: u64,
        /// Metadata to store (region, device); `None` keeps what is there.
        meta: Option<P>,
    },
    /// PRESENCE.GET user...
    PresenceGet(Vec<P>),
    /// PRESENCE.LEAVE user
    PresenceLeave(P),
    /// PRESENCE.WATCH user...
    PresenceWatch(Vec<P>),
    /// PRESENCE.UNWATCH [user...]; empty means every watched user.
    PresenceUnwatch(Vec<P>),
    /// GEO.*: the driver index.
    Geo(GeoCommand<P>),
}

impl<P: Payload> Command<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            Command::Ping(_) => opcode::PING,
            Command::Hello { .. } => opcode::HELLO,
            Command::Info => opcode::INFO,
            Command::DbSize => opcode::DBSIZE,
            Command::FlushAll => opcode::FLUSHALL,
            Command::Get(_) => opcode::GET,
            Command::Set(_) => opcode::SET,
            Command::Del(_) => opcode::DEL,
            Command::Exists(_) => opcode::EXISTS,
            Command::Expire { .. } => opcode::EXPIRE,
            Command::PExpire { .. } => opcode::PEXPIRE,
            Command::Ttl(_) => opcode::TTL,
            Command::PTtl(_) => opcode::PTTL,
            Command::Persist(_) => opcode::PERSIST,
            Command::IncrBy { .. } => opcode::INCRBY,
            Command::DecrBy { .. } => opcode::DECRBY,
            Command::MGet(_) => opcode::MGET,
            Command::MSet(_) => opcode::MSET,
            Command::RlCheck(_) => opcode::RL_CHECK,
            Command::RlPeek(_) => opcode::RL_PEEK,
            Command::RlReset(_) => opcode::RL_RESET,
            Command::Dedup { .. } => opcode::DEDUP,
            Command::DedupMulti { .. } => opcode::DEDUP_MULTI,
            Command::CounterTake { .. } => opcode::COUNTER_TAKE,
            Command::CounterPut { .. } => opcode::COUNTER_PUT,
            Command::IdRange { .. } => opcode::ID_RANGE,
            Command::IdemBegin { .. } => opcode::IDEM_BEGIN,
            Command::IdemComplete { .. } => opcode::IDEM_COMPLETE,
            Command::IdemGet(_) => opcode::IDEM_GET,
            Command::VGet(_) => opcode::VGET,
            Command::VSet { .. } => opcode::VSET,
            Command::InvSet { .. } => opcode::INV_SET,
            Command::InvAdjust { .. } => opcode::INV_ADJUST,
            Command::InvGet(_) => opcode::INV_GET,
            Command::InvReserve { .. } => opcode::INV_RESERVE,
            Command::InvConfirm { .. } => opcode::INV_CONFIRM,
            Command::InvRelease { .. } => opcode::INV_RELEASE,
            Command::InvReserveMulti { .. } => opcode::INV_RESERVE_MULTI,
            Command::InvStore(_) => opcode::INV_STORE,
            Command::TlPush { .. } => opcode::TL_PUSH,
            Command::TlFanout { .. } => opcode::TL_FANOUT,
            Command::TlRange { .. } => opcode::TL_RANGE,
            Command::TlMerge { .. } => opcode::TL_MERGE,
            Command::TlRemove { .. } => opcode::TL_REMOVE,
            Command::TlLen(_) => opcode::TL_LEN,
            Command::TlTrim { .. } => opcode::TL_TRIM,
            Command::PresenceBeat { .. } => opcode::PRESENCE_BEAT,
            Command::PresenceGet(_) => opcode::PRESENCE_GET,
            Command::PresenceLeave(_) => opcode::PRESENCE_LEAVE,
            Command::PresenceWatch(_) => opcode::PRESENCE_WATCH,
            Command::PresenceUnwatch(_) => opcode::PRESENCE_UNWATCH,
            Command::Geo(geo) => geo.opcode(),
        }
    }

    /// The command's position in `COMMANDS`, for per-command counters; a plain match,
    /// since it runs for every request.
    pub fn table_index(&self) -> usize {
        match self {
            Command::Ping(_) => 0,
            Command::Hello { .. } => 1,
            Command::Info => 2,
            Command::DbSize => 3,
            Command::FlushAll => 4,
            Command::Get(_) => 5,
            Command::Set(_) => 6,
            Command::Del(_) => 7,
            Command::Exists(_) => 8,
            Command::Expire { .. } => 9,
            Command::PExpire { .. } => 10,
            Command::Ttl(_) => 11,
            Command::PTtl(_) => 12,
            Command::Persist(_) => 13,
            Command::IncrBy { .. } => 14,
            Command::DecrBy { .. } => 15,
            Command::MGet(_) => 16,
            Command::MSet(_) => 17,
            Command::RlCheck(_) => 18,
            Command::RlPeek(_) => 19,
            Command::RlReset(_) => 20,
            Command::Dedup { .. } => 21,
            Command::DedupMulti { .. } => 22,
            Command::CounterTake { .. } => 23,
            Command::CounterPut { .. } => 24,
            Command::IdRange { .. } => 25,
            Command::IdemBegin { .. } => 26,
            Command::IdemComplete { .. } => 27,
            Command::IdemGet(_) => 28,
            Command::VGet(_) => 29,
            Command::VSet { .. } => 30,
            Command::InvSet { .. } => 31,
            Command::InvAdjust { .. } => 32,
            Command::InvGet(_) => 33,
            Command::InvReserve { .. } => 34,
            Command::InvConfirm { .. } => 35,
            Command::InvRelease { .. } => 36,
            Command::InvReserveMulti { .. } => 37,
            Command::InvStore(_) => 38,
            Command::TlPush { .. } => 39,
            Command::TlFanout { .. } => 40,
            Command::TlRange { .. } => 41,
            Command::TlMerge { .. } => 42,
            Command::TlRemove { .. } => 43,
            Command::TlLen(_) => 44,
            Command::TlTrim { .. } => 45,
            Command::PresenceBeat { .. } => 46,
            Command::PresenceGet(_) => 47,
            Command::PresenceLeave(_) => 48,
            Command::PresenceWatch(_) => 49,
            Command::PresenceUnwatch(_) => 50,
            Command::Geo(geo) => 51 + geo.table_offset(),
        }
    }

    /// The command's row in the table.
    pub fn spec(&self) -> &'static CommandSpec {
        &COMMANDS[self.table_index()]
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            Command::Get(key)
            | Command::Ttl(key)
            | Command::PTtl(key)
            | Command::Persist(key)
            | Command::Expire { key, .. }
            | Command::PExpire { key, .. }
            | Command::IncrBy { key, .. }
            | Command::DecrBy { key, .. }
            | Command::Dedup { key, .. }
            | Command::CounterTake { key, .. }
            | Command::CounterPut { key, .. }
            | Command::IdRange { key, .. }
            | Command::RlReset(key)
            | Command::IdemBegin { key, .. }
            | Command::IdemComplete { key, .. }
            | Command::IdemGet(key)
            | Command::VGet(key)
            | Command::VSet { key, .. }
            | Command::InvSet { sku: key, .. }
            | Command::InvAdjust { sku: key, .. }
            | Command::InvGet(key)
            | Command::InvReserve { sku: key, .. }
            | Command::InvConfirm { sku: key, .. }
            | Command::InvRelease { sku: key, .. }
            | Command::InvStore(key)
            | Command::TlPush { key, .. }
            | Command::TlRange { key, .. }
            | Command::TlRemove { key, .. }
            | Command::TlLen(key)
            | Command::TlTrim { key, .. }
            | Command::PresenceBeat { user: key, .. }
            | Command::PresenceLeave(key) => Some(key),
            Command::Set(args) => Some(&args.key),
            Command::RlCheck(limit) | Command::RlPeek(limit) => Some(&limit.key),
            Command::Geo(geo) => geo.member(),
            _ => None,
        }
    }

    /// Appends opcode and arguments (the frame body).
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16_le(self.opcode());
        match self {
            Command::Ping(message) => match message {
                Some(m) => {
                    buf.put_u8(1);
                    put_bytes(buf, m.as_ref());
                }
                None => buf.put_u8(0),
            },
            Command::Hello { version, shard } => {
                buf.put_u16_le(*version);
                put_uvarint(buf, shard.map_or(0, |s| u64::from(s) + 1));
            }
            Command::Info | Command::DbSize | Command::FlushAll => {}
            Command::Get(key) | Command::Ttl(key) | Command::PTtl(key) | Command::Persist(key) => {
                put_bytes(buf, key.as_ref())
            }
            Command::Set(args) => {
                put_bytes(buf, args.key.as_ref());
                put_bytes(buf, args.value.as_ref());
                let mut flags = 0u8;
                match args.condition {
                    SetCondition::Always => {}
                    SetCondition::IfAbsent => flags |= set_flags::NX,
                    SetCondition::IfPresent => flags |= set_flags::XX,
                }
                if args.get {
                    flags |= set_flags::GET;
                }
                match args.expiry {
                    SetExpiry::Clear => buf.put_u8(flags),
                    SetExpiry::Keep => buf.put_u8(flags | set_flags::KEEPTTL),
                    SetExpiry::In(ms) => {
                        buf.put_u8(flags | set_flags::TTL);
                        put_uvarint(buf, ms);
                    }
                }
            }
            Command::Del(keys) | Command::Exists(keys) | Command::MGet(keys) => {
                put_uvarint(buf, keys.len() as u64);
                for key in keys {
                    put_bytes(buf, key.as_ref());
                }
            }
            Command::Expire { key, seconds: n }
            | Command::PExpire { key, millis: n }
            | Command::IncrBy { key, delta: n }
            | Command::DecrBy { key, delta: n } => {
                put_bytes(buf, key.as_ref());
                put_ivarint(buf, *n);
            }
            Command::MSet(pairs) => {
                put_uvarint(buf, pairs.len() as u64);
                for (key, value) in pairs {
                    put_bytes(buf, key.as_ref());
                    put_bytes(buf, value.as_ref());
                }
            }
            Command::Dedup { key, ttl_ms } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *ttl_ms);
            }
            Command::DedupMulti { ttl_ms, keys } => {
                put_uvarint(buf, *ttl_ms);
                put_uvarint(buf, keys.len() as u64);
                for key in keys {
                    put_bytes(buf, key.as_ref());
                }
            }
            Command::CounterTake { key, amount, floor } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *amount);
                put_ivarint(buf, *floor);
            }
            Command::CounterPut { key, amount: n } | Command::IdRange { key, size: n } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *n);
            }
            Command::RlCheck(limit) | Command::RlPeek(limit) => {
                put_bytes(buf, limit.key.as_ref());
                buf.put_u8(match limit.algorithm {
                    Algorithm::Sliding => 0,
                    Algorithm::Gcra => 1,
                });
                put_uvarint(buf, limit.cost);
                put_uvarint(buf, limit.burst);
                put_uvarint(buf, limit.tiers.as_slice().len() as u64);
                for tier in limit.tiers.as_slice() {
                    put_uvarint(buf, tier.limit);
                    put_uvarint(buf, tier.window_ms);
                }
            }
            Command::RlReset(key) => put_bytes(buf, key.as_ref()),
            Command::IdemBegin {
                key,
                ttl_ms,
                lease_ms,
            } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *ttl_ms);
                put_uvarint(buf, *lease_ms);
            }
            Command::IdemComplete { key, token, result } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *token);
                put_bytes(buf, result.as_ref());
            }
            Command::IdemGet(key) => put_bytes(buf, key.as_ref()),
            Command::VGet(key) => put_bytes(buf, key.as_ref()),
            Command::VSet {
                key,
                value,
                if_version,
                ttl_ms,
            } => {
                put_bytes(buf, key.as_ref());
                put_bytes(buf, value.as_ref());
                put_uvarint(buf, if_version.map_or(0, |v| v.saturating_add(1)));
                put_uvarint(buf, ttl_ms.unwrap_or(0));
            }
            Command::InvSet { sku, on_hand, low } => {
                put_bytes(buf, sku.as_ref());
                put_ivarint(buf, *on_hand);
                put_uvarint(buf, low.map_or(0, |m| m.saturating_add(1)));
            }
            Command::InvAdjust { sku, delta } => {
                put_bytes(buf, sku.as_ref());
                put_ivarint(buf, *delta);
            }
            Command::InvStore(store) => put_bytes(buf, store.as_ref()),
            Command::TlPush { key, item, cap } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, item.id);
                put_item_options(buf, item, *cap);
            }
            Command::TlFanout { item, cap, keys } => {
                put_uvarint(buf, item.id);
                put_item_options(buf, item, *cap);
                put_uvarint(buf, keys.len() as u64);
                for key in keys {
                    put_bytes(buf, key.as_ref());
                }
            }
            Command::TlRange {
                key,
                before,
                after,
                limit,
            } => {
                put_bytes(buf, key.as_ref());
                buf.put_u8(u8::from(before.is_some()) | (u8::from(after.is_some()) << 1));
                for cursor in [before, after].into_iter().flatten() {
                    put_ivarint(buf, cursor.score);
                    put_uvarint(buf, cursor.id);
                }
                put_uvarint(buf, u64::from(*limit));
            }
            Command::TlMerge {
                limit,
                before,
                keys,
            } => {
                put_uvarint(buf, u64::from(*limit));
                buf.put_u8(u8::from(before.is_some()));
                if let Some(cursor) = before {
                    put_ivarint(buf, cursor.score);
                    put_uvarint(buf, cursor.id);
                }
                put_uvarint(buf, keys.len() as u64);
                for key in keys {
                    put_bytes(buf, key.as_ref());
                }
            }
            Command::TlRemove { key, id } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, *id);
            }
            Command::TlLen(key) => put_bytes(buf, key.as_ref()),
            Command::PresenceBeat {
                user,
                ttl_ms,
                grace_ms,
                meta,
            } => {
                put_bytes(buf, user.as_ref());
                buf.put_u8(0b11 | (u8::from(meta.is_some()) << 2));
                put_uvarint(buf, *ttl_ms);
                put_uvarint(buf, *grace_ms);
                if let Some(meta) = meta {
                    put_bytes(buf, meta.as_ref());
                }
            }
            Command::PresenceGet(users)
            | Command::PresenceWatch(users)
            | Command::PresenceUnwatch(users) => {
                put_uvarint(buf, users.len() as u64);
                for user in users {
                    put_bytes(buf, user.as_ref());
                }
            }
            Command::PresenceLeave(user) => put_bytes(buf, user.as_ref()),
            Command::Geo(geo) => geo.encode(buf),
            Command::TlTrim { key, keep } => {
                put_bytes(buf, key.as_ref());
                put_uvarint(buf, u64::from(*keep));
            }
            Command::InvGet(sku) => put_bytes(buf, sku.as_ref()),
            Command::InvReserve {
                sku,
                qty,
                ttl_ms,
                id,
            } => {
                put_bytes(buf, sku.as_ref());
                put_uvarint(buf, *qty);
                put_uvarint(buf, *ttl_ms);
                match id {
                    Some(id) => {
                        buf.put_u8(1);
                        put_bytes(buf, id.as_ref());
                    }
                    None => buf.put_u8(0),
                }
            }
            Command::InvConfirm { sku, id } | Command::InvRelease { sku, id } => {
                put_bytes(buf, sku.as_ref());
                put_bytes(buf, id.as_ref());
            }
            Command::InvReserveMulti { ttl_ms, items } => {
                put_uvarint(buf, *ttl_ms);
                put_uvarint(buf, items.len() as u64);
                for (sku, qty) in items {
                    put_bytes(buf, sku.as_ref());
                    put_uvarint(buf, *qty);
                }
            }
        }
    }

    /// Decodes a request body (opcode and arguments), validating every bound.
    ///
    /// # Errors
    /// `UnknownOpcode` for opcodes outside the table; other `DecodeError`s for malformed
    /// or out-of-range arguments.
    pub fn decode(body: P) -> Result<Command<P>, DecodeError> {
        let mut r = Reader::new(body);
        let op = r.u16()?;
        let command = match op {
            opcode::PING => match r.u8()? {
                0 => Command::Ping(None),
                1 => Command::Ping(Some(r.bytes()?)),
                _ => return Err(DecodeError::Invalid("has_message must be 0 or 1")),
            },
            opcode::HELLO => {
                let version = r.u16()?;
                let shard = match r.uvarint()? {
                    0 => None,
                    n => Some(
                        u16::try_from(n - 1)
                            .map_err(|_| DecodeError::Invalid("shard out of range"))?,
                    ),
                };
                Command::Hello { version, shard }
            }
            opcode::INFO => Command::Info,
            opcode::DBSIZE => Command::DbSize,
            opcode::FLUSHALL => Command::FlushAll,
            opcode::GET => Command::Get(read_key(&mut r)?),
            opcode::TTL => Command::Ttl(read_key(&mut r)?),
            opcode::PTTL => Command::PTtl(read_key(&mut r)?),
            opcode::PERSIST => Command::Persist(read_key(&mut r)?),
            opcode::SET => {
                let key = read_key(&mut r)?;
                let value = r.bytes()?;
                let flags = r.u8()?;
                if flags & !set_flags::ALL != 0 {
                    return Err(DecodeError::Invalid("unknown SET flag bits"));
                }
                let condition = match (flags & set_flags::NX != 0, flags & set_flags::XX != 0) {
                    (false, false) => SetCondition::Always,
                    (true, false) => SetCondition::IfAbsent,
                    (false, true) => SetCondition::IfPresent,
                    (true, true) => return Err(DecodeError::Invalid("NX and XX are exclusive")),
                };
                let expiry = match (flags & set_flags::KEEPTTL != 0, flags & set_flags::TTL != 0) {
                    (false, false) => SetExpiry::Clear,
                    (true, false) => SetExpiry::Keep,
                    (false, true) => SetExpiry::In(checked_ttl(r.uvarint()?)?),
                    (true, true) => {
                        return Err(DecodeError::Invalid("KEEPTTL and an expiry are exclusive"))
                    }
                };
                Command::Set(SetArgs {
                    key,
                    value,
                    condition,
                    expiry,
                    get: flags & set_flags::GET != 0,
                })
            }
            opcode::DEL => Command::Del(read_keys(&mut r)?),
            opcode::EXISTS => Command::Exists(read_keys(&mut r)?),
            opcode::MGET => Command::MGet(read_keys(&mut r)?),
            opcode::EXPIRE => Command::Expire {
                key: read_key(&mut r)?,
                seconds: r.ivarint()?,
            },
            opcode::PEXPIRE => Command::PExpire {
                key: read_key(&mut r)?,
                millis: r.ivarint()?,
            },
            opcode::INCRBY => Command::IncrBy {
                key: read_key(&mut r)?,
                delta: r.ivarint()?,
            },
            opcode::DECRBY => Command::DecrBy {
                key: read_key(&mut r)?,
                delta: r.ivarint()?,
            },
            opcode::MSET => {
                let count = r.count(2)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("MSET needs at least one pair"));
                }
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = read_key(&mut r)?;
                    pairs.push((key, r.bytes()?));
                }
                Command::MSet(pairs)
            }
            opcode::RL_CHECK => Command::RlCheck(read_rate_limit(&mut r)?),
            opcode::RL_PEEK => Command::RlPeek(read_rate_limit(&mut r)?),
            opcode::RL_RESET => Command::RlReset(read_key(&mut r)?),
            opcode::IDEM_BEGIN => {
                let key = read_key(&mut r)?;
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                let lease_ms = match r.uvarint()? {
                    0 => DEFAULT_LEASE_MS,
                    ms => checked_ttl(ms)?,
                };
                Command::IdemBegin {
                    key,
                    ttl_ms,
                    lease_ms,
                }
            }
            opcode::IDEM_COMPLETE => Command::IdemComplete {
                key: read_key(&mut r)?,
                token: r.uvarint()?,
                result: r.bytes()?,
            },
            opcode::IDEM_GET => Command::IdemGet(read_key(&mut r)?),
            opcode::VGET => Command::VGet(read_key(&mut r)?),
            opcode::VSET => {
                let key = read_key(&mut r)?;
                let value = r.bytes()?;
                let if_version = match r.uvarint()? {
                    0 => None,
                    v => Some(v - 1),
                };
                let ttl_ms = match r.uvarint()? {
                    0 => None,
                    ms => Some(checked_ttl(ms)?),
                };
                Command::VSet {
                    key,
                    value,
                    if_version,
                    ttl_ms,
                }
            }
            opcode::INV_SET => {
                let sku = read_key(&mut r)?;
                let on_hand = r.ivarint()?;
                if on_hand < 0 {
                    return Err(DecodeError::Invalid("ON_HAND must not be negative"));
                }
                let low = match r.uvarint()? {
                    0 => None,
                    m => Some(m - 1),
                };
                Command::InvSet { sku, on_hand, low }
            }
            opcode::INV_STORE => Command::InvStore(read_key(&mut r)?),
            opcode::INV_ADJUST => Command::InvAdjust {
                sku: read_key(&mut r)?,
                delta: r.ivarint()?,
            },
            opcode::INV_GET => Command::InvGet(read_key(&mut r)?),
            opcode::INV_RESERVE => {
                let sku = read_key(&mut r)?;
                let qty = checked_quantity(r.uvarint()?)?;
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                let id = match r.u8()? {
                    0 => None,
                    1 => Some(read_reservation_id(&mut r)?),
                    _ => return Err(DecodeError::Invalid("has_id must be 0 or 1")),
                };
                Command::InvReserve {
                    sku,
                    qty,
                    ttl_ms,
                    id,
                }
            }
            opcode::INV_CONFIRM => Command::InvConfirm {
                sku: read_key(&mut r)?,
                id: read_reservation_id(&mut r)?,
            },
            opcode::INV_RELEASE => Command::InvRelease {
                sku: read_key(&mut r)?,
                id: read_reservation_id(&mut r)?,
            },
            opcode::INV_RESERVE_MULTI => {
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                let count = r.count(2)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("a cart needs at least one line"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    let sku = read_key(&mut r)?;
                    items.push((sku, checked_quantity(r.uvarint()?)?));
                }
                Command::InvReserveMulti { ttl_ms, items }
            }
            opcode::TL_PUSH => {
                let key = read_key(&mut r)?;
                let id = r.uvarint()?;
                let (item, cap) = read_item_options(&mut r, id)?;
                Command::TlPush { key, item, cap }
            }
            opcode::TL_FANOUT => {
                let id = r.uvarint()?;
                let (item, cap) = read_item_options(&mut r, id)?;
                Command::TlFanout {
                    item,
                    cap,
                    keys: read_keys(&mut r)?,
                }
            }
            opcode::TL_RANGE => {
                let key = read_key(&mut r)?;
                let flags = r.u8()?;
                if flags & !3 != 0 {
                    return Err(DecodeError::Invalid("unknown TL.RANGE flag bits"));
                }
                let before = if flags & 1 != 0 {
                    Some(read_cursor(&mut r)?)
                } else {
                    None
                };
                let after = if flags & 2 != 0 {
                    Some(read_cursor(&mut r)?)
                } else {
                    None
                };
                Command::TlRange {
                    key,
                    before,
                    after,
                    limit: read_page(&mut r)?,
                }
            }
            opcode::TL_MERGE => {
                let limit = read_page(&mut r)?;
                let before = match r.u8()? {
                    0 => None,
                    1 => Some(read_cursor(&mut r)?),
                    _ => return Err(DecodeError::Invalid("unknown TL.MERGE flag bits")),
                };
                Command::TlMerge {
                    limit,
                    before,
                    keys: read_keys(&mut r)?,
                }
            }
            opcode::TL_REMOVE => Command::TlRemove {
                key: read_key(&mut r)?,
                id: r.uvarint()?,
            },
            opcode::TL_LEN => Command::TlLen(read_key(&mut r)?),
            opcode::TL_TRIM => {
                let key = read_key(&mut r)?;
                let keep = u32::try_from(r.uvarint()?)
                    .map_err(|_| DecodeError::Invalid("keep out of range"))?;
                Command::TlTrim { key, keep }
            }
            opcode::PRESENCE_BEAT => {
                let user = read_key(&mut r)?;
                let flags = r.u8()?;
                if flags & !0b111 != 0 {
                    return Err(DecodeError::Invalid("unknown PRESENCE.BEAT flag bits"));
                }
                let ttl_ms = if flags & 1 != 0 {
                    checked_ttl(r.uvarint()?)?
                } else {
                    DEFAULT_PRESENCE_TTL_MS
                };
                let grace_ms = if flags & 2 != 0 {
                    let grace = r.uvarint()?;
                    if grace > MAX_EXPIRE_MS as u64 {
                        return Err(DecodeError::InvalidExpire);
                    }
                    grace
                } else {
                    DEFAULT_PRESENCE_GRACE_MS
                };
                let meta = if flags & 4 != 0 {
                    Some(r.bytes()?)
                } else {
                    None
                };
                Command::PresenceBeat {
                    user,
                    ttl_ms,
                    grace_ms,
                    meta,
                }
            }
            opcode::PRESENCE_GET => Command::PresenceGet(read_keys(&mut r)?),
            opcode::PRESENCE_LEAVE => Command::PresenceLeave(read_key(&mut r)?),
            opcode::PRESENCE_WATCH => Command::PresenceWatch(read_keys(&mut r)?),
            opcode::PRESENCE_UNWATCH => {
                let count = r.count(1)?;
                let mut users = Vec::with_capacity(count);
                for _ in 0..count {
                    users.push(read_key(&mut r)?);
                }
                Command::PresenceUnwatch(users)
            }
            opcode::DEDUP => Command::Dedup {
                key: read_key(&mut r)?,
                ttl_ms: checked_ttl(r.uvarint()?)?,
            },
            opcode::DEDUP_MULTI => {
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                Command::DedupMulti {
                    ttl_ms,
                    keys: read_keys(&mut r)?,
                }
            }
            opcode::COUNTER_TAKE => Command::CounterTake {
                key: read_key(&mut r)?,
                amount: checked_amount(r.uvarint()?)?,
                floor: r.ivarint()?,
            },
            opcode::COUNTER_PUT => Command::CounterPut {
                key: read_key(&mut r)?,
                amount: checked_amount(r.uvarint()?)?,
            },
            opcode::ID_RANGE => {
                let key = read_key(&mut r)?;
                let size = r.uvarint()?;
                if !(1..=MAX_ID_BLOCK).contains(&size) {
                    return Err(DecodeError::Invalid(
                        "ID.RANGE size must be between 1 and 2^40",
                    ));
                }
                Command::IdRange { key, size }
            }
            op @ opcode::GEO_CREATE..=opcode::GEO_CELLS => {
                let index = read_key(&mut r)?;
                Command::Geo(GeoCommand::decode(op, index, &mut r, read_key)?)
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        };
        r.finish()?;
        Ok(command)
    }

    /// Copies every argument into its own `Bytes`, so the command outlives the buffer it
    /// was decoded from (e.g. to send it to another shard).
    pub fn to_owned_bytes(&self) -> Command<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_rate_limit = |limit: &RateLimit<P>| RateLimit {
            key: own(&limit.key),
            algorithm: limit.algorithm,
            cost: limit.cost,
            burst: limit.burst,
            tiers: limit.tiers,
        };
        let own_all = |keys: &[P]| keys.iter().map(own).collect();
        match self {
            Command::Ping(message) => Command::Ping(message.as_ref().map(own)),
            Command::Hello { version, shard } => Command::Hello {
                version: *version,
                shard: *shard,
            },
            Command::Info => Command::Info,
            Command::DbSize => Command::DbSize,
            Command::FlushAll => Command::FlushAll,
            Command::Get(key) => Command::Get(own(key)),
            Command::Set(args) => Command::Set(SetArgs {
                key: own(&args.key),
                value: own(&args.value),
                condition: args.condition,
                expiry: args.expiry,
                get: args.get,
            }),
            Command::Del(keys) => Command::Del(own_all(keys)),
            Command::Exists(keys) => Command::Exists(own_all(keys)),
            Command::Expire { key, seconds } => Command::Expire {
                key: own(key),
                seconds: *seconds,
            },
            Command::PExpire { key, millis } => Command::PExpire {
                key: own(key),
                millis: *millis,
            },
            Command::Ttl(key) => Command::Ttl(own(key)),
            Command::PTtl(key) => Command::PTtl(own(key)),
            Command::Persist(key) => Command::Persist(own(key)),
            Command::IncrBy { key, delta } => Command::IncrBy {
                key: own(key),
                delta: *delta,
            },
            Command::DecrBy { key, delta } => Command::DecrBy {
                key: own(key),
                delta: *delta,
            },
            Command::MGet(keys) => Command::MGet(own_all(keys)),
            Command::MSet(pairs) => {
                Command::MSet(pairs.iter().map(|(k, v)| (own(k), own(v))).collect())
            }
            Command::RlCheck(limit) => Command::RlCheck(own_rate_limit(limit)),
            Command::RlPeek(limit) => Command::RlPeek(own_rate_limit(limit)),
            Command::RlReset(key) => Command::RlReset(own(key)),
            Command::IdemBegin {
                key,
                ttl_ms,
                lease_ms,
            } => Command::IdemBegin {
                key: own(key),
                ttl_ms: *ttl_ms,
                lease_ms: *lease_ms,
            },
            Command::IdemComplete { key, token, result } => Command::IdemComplete {
                key: own(key),
                token: *token,
                result: own(result),
            },
            Command::IdemGet(key) => Command::IdemGet(own(key)),
            Command::VGet(key) => Command::VGet(own(key)),
            Command::InvSet { sku, on_hand, low } => Command::InvSet {
                sku: own(sku),
                on_hand: *on_hand,
                low: *low,
            },
            Command::InvStore(store) => Command::InvStore(own(store)),
            Command::TlPush { key, item, cap } => Command::TlPush {
                key: own(key),
                item: *item,
                cap: *cap,
            },
            Command::TlFanout { item, cap, keys } => Command::TlFanout {
                item: *item,
                cap: *cap,
                keys: own_all(keys),
            },
            Command::TlRange {
                key,
                before,
                after,
                limit,
            } => Command::TlRange {
                key: own(key),
                before: *before,
                after: *after,
                limit: *limit,
            },
            Command::TlMerge {
                limit,
                before,
                keys,
            } => Command::TlMerge {
                limit: *limit,
                before: *before,
                keys: own_all(keys),
            },
            Command::TlRemove { key, id } => Command::TlRemove {
                key: own(key),
                id: *id,
            },
            Command::TlLen(key) => Command::TlLen(own(key)),
            Command::TlTrim { key, keep } => Command::TlTrim {
                key: own(key),
                keep: *keep,
            },
            Command::PresenceBeat {
                user,
                ttl_ms,
                grace_ms,
                meta,
            } => Command::PresenceBeat {
                user: own(user),
                ttl_ms: *ttl_ms,
                grace_ms: *grace_ms,
                meta: meta.as_ref().map(own),
            },
            Command::PresenceGet(users) => Command::PresenceGet(own_all(users)),
            Command::PresenceLeave(user) => Command::PresenceLeave(own(user)),
            Command::PresenceWatch(users) => Command::PresenceWatch(own_all(users)),
            Command::PresenceUnwatch(users) => Command::PresenceUnwatch(own_all(users)),
            Command::Geo(geo) => Command::Geo(geo.to_owned_bytes()),
            Command::InvAdjust { sku, delta } => Command::InvAdjust {
                sku: own(sku),
                delta: *delta,
            },
            Command::InvGet(sku) => Command::InvGet(own(sku)),
            Command::InvReserve {
                sku,
                qty,
                ttl_ms,
                id,
            } => Command::InvReserve {
                sku: own(sku),
                qty: *qty,
                ttl_ms: *ttl_ms,
                id: id.as_ref().map(own),
            },
            Command::InvConfirm { sku, id } => Command::InvConfirm {
                sku: own(sku),
                id: own(id),
            },
            Command::InvRelease { sku, id } => Command::InvRelease {
                sku: own(sku),
                id: own(id),
            },
            Command::InvReserveMulti { ttl_ms, items } => Command::InvReserveMulti {
                ttl_ms: *ttl_ms,
                items: items.iter().map(|(sku, qty)| (own(sku), *qty)).collect(),
            },
            Command::VSet {
                key,
                value,
                if_version,
                ttl_ms,
            } => Command::VSet {
                key: own(key),
                value: own(value),
                if_version: *if_version,
                ttl_ms: *ttl_ms,
            },
            Command::Dedup { key, ttl_ms } => Command::Dedup {
                key: own(key),
                ttl_ms: *ttl_ms,
            },
            Command::DedupMulti { ttl_ms, keys } => Command::DedupMulti {
                ttl_ms: *ttl_ms,
                keys: own_all(keys),
            },
            Command::CounterTake { key, amount, floor } => Command::CounterTake {
                key: own(key),
                amount: *amount,
                floor: *floor,
            },
            Command::CounterPut { key, amount } => Command::CounterPut {
                key: own(key),
                amount: *amount,
            },
            Command::IdRange { key, size } => Command::IdRange {
                key: own(key),
                size: *size,
            },
        }
    }
}

impl Command<Bytes> {
    /// Parses redis-cli style words (`SET k v EX 10`) into a command.
    ///
    /// # Errors
    /// An `ErrorReply` with `UnknownCommand`, `Syntax`, `NotInteger`, `KeyTooLarge` or
    /// `InvalidExpire`, worded for a person at a prompt.
    pub fn parse_words(words: &[Bytes]) -> Result<Command, ErrorReply> {
        let Some((name, args)) = words.split_first() else {
            return Err(ErrorReply::new(ErrorCode::Syntax, "empty command"));
        };
        let name = std::str::from_utf8(name).unwrap_or("");
        let Some(spec) = spec_by_name(name) else {
            return Err(ErrorReply::new(
                ErrorCode::UnknownCommand,
                format!("unknown command '{}'", String::from_utf8_lossy(&words[0])),
            ));
        };
        let arity = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ErrorReply::new(
                    ErrorCode::Syntax,
                    format!("wrong number of arguments: {} {}", spec.name, spec.syntax),
                ))
            }
        };
        let command = match spec.opcode {
            opcode::PING => {
                arity(args.len() <= 1)?;
                Command::Ping(args.first().cloned())
            }
            opcode::HELLO => {
                let mut version = PROTOCOL_VERSION;
                let mut shard = None;
                let mut rest = args;
                if let Some((first, tail)) = rest.split_first() {
                    if !first.eq_ignore_ascii_case(b"SHARD") {
                        version = parse_int::<u16>(first)?;
                        rest = tail;
                    }
                }
                match rest {
                    [] => {}
                    [word, n] if word.eq_ignore_ascii_case(b"SHARD") => {
                        shard = Some(parse_int::<u16>(n)?)
                    }
                    _ => arity(false)?,
                }
                Command::Hello { version, shard }
            }
            opcode::INFO => {
                arity(args.is_empty())?;
                Command::Info
            }
            opcode::DBSIZE => {
                arity(args.is_empty())?;
                Command::DbSize
            }
            opcode::FLUSHALL => {
                arity(args.is_empty())?;
                Command::FlushAll
            }
            opcode::GET | opcode::TTL | opcode::PTTL | opcode::PERSIST => {
                arity(args.len() == 1)?;
                let key = text_key(&args[0])?;
                match spec.opcode {
                    opcode::GET => Command::Get(key),
                    opcode::TTL => Command::Ttl(key),
                    opcode::PTTL => Command::PTtl(key),
                    _ => Command::Persist(key),
                }
            }
            opcode::SET => {
                arity(args.len() >= 2)?;
                parse_set(&args[0], &args[1], &args[2..])?
            }
            opcode::DEL | opcode::EXISTS | opcode::MGET => {
                arity(!args.is_empty())?;
                let keys = args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?;
                match spec.opcode {
                    opcode::DEL => Command::Del(keys),
                    opcode::EXISTS => Command::Exists(keys),
                    _ => Command::MGet(keys),
                }
            }
            opcode::EXPIRE | opcode::PEXPIRE | opcode::INCRBY | opcode::DECRBY => {
                arity(args.len() == 2)?;
                let key = text_key(&args[0])?;
                let n = parse_int::<i64>(&args[1])?;
                match spec.opcode {
                    opcode::EXPIRE => Command::Expire { key, seconds: n },
                    opcode::PEXPIRE => Command::PExpire { key, millis: n },
                    opcode::INCRBY => Command::IncrBy { key, delta: n },
                    _ => Command::DecrBy { key, delta: n },
                }
            }
            opcode::MSET => {
                arity(!args.is_empty() && args.len() % 2 == 0)?;
                let pairs = args
                    .chunks_exact(2)
                    .map(|pair| Ok((text_key(&pair[0])?, pair[1].clone())))
                    .collect::<Result<Vec<_>, ErrorReply>>()?;
                Command::MSet(pairs)
            }
            opcode::RL_CHECK | opcode::RL_PEEK => {
                arity(!args.is_empty())?;
                let limit = parse_rate_limit(&args[0], &args[1..])?;
                if spec.opcode == opcode::RL_CHECK {
                    Command::RlCheck(limit)
                } else {
                    Command::RlPeek(limit)
                }
            }
            opcode::RL_RESET => {
                arity(args.len() == 1)?;
                Command::RlReset(text_key(&args[0])?)
            }
            opcode::IDEM_BEGIN => {
                let lease_ms = match args {
                    [_, _] => DEFAULT_LEASE_MS,
                    [_, _, word, ms] if word.eq_ignore_ascii_case(b"LEASE") => {
                        let ms = parse_int::<i64>(ms)?;
                        if !(1..=MAX_EXPIRE_MS).contains(&ms) {
                            return Err(ErrorReply::new(
                                ErrorCode::InvalidExpire,
                                "invalid lease time",
                            ));
                        }
                        ms as u64
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                Command::IdemBegin {
                    key: text_key(&args[0])?,
                    ttl_ms: parse_seconds(&args[1])?,
                    lease_ms,
                }
            }
            opcode::IDEM_COMPLETE => {
                arity(args.len() == 3)?;
                Command::IdemComplete {
                    key: text_key(&args[0])?,
                    token: parse_int::<u64>(&args[1])?,
                    result: args[2].clone(),
                }
            }
            opcode::IDEM_GET => {
                arity(args.len() == 1)?;
                Command::IdemGet(text_key(&args[0])?)
            }
            opcode::VGET => {
                arity(args.len() == 1)?;
                Command::VGet(text_key(&args[0])?)
            }
            opcode::VSET => {
                arity(args.len() >= 2)?;
                let (mut if_version, mut ttl_ms) = (None, None);
                let mut options = args[2..].iter();
                while let Some(word) = options.next() {
                    let value = options.next().ok_or_else(|| {
                        ErrorReply::new(ErrorCode::Syntax, "an option is missing its value")
                    })?;
                    match word.to_ascii_uppercase().as_slice() {
                        b"IFVERSION" if if_version.is_none() => {
                            if_version = Some(parse_int::<u64>(value)?)
                        }
                        b"EX" if ttl_ms.is_none() => ttl_ms = Some(parse_seconds(value)?),
                        _ => {
                            return Err(ErrorReply::new(
                                ErrorCode::Syntax,
                                "syntax error in VSET options",
                            ))
                        }
                    }
                }
                if if_version == Some(u64::MAX) {
                    return Err(ErrorReply::new(ErrorCode::Syntax, "IFVERSION out of range"));
                }
                Command::VSet {
                    key: text_key(&args[0])?,
                    value: args[1].clone(),
                    if_version,
                    ttl_ms,
                }
            }
            opcode::INV_SET => {
                let low = match args {
                    [_, word, _] if word.eq_ignore_ascii_case(b"ON_HAND") => None,
                    [_, word, _, low, m]
                        if word.eq_ignore_ascii_case(b"ON_HAND")
                            && low.eq_ignore_ascii_case(b"LOW") =>
                    {
                        Some(parse_int::<u64>(m)?)
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                let on_hand = parse_int::<i64>(&args[2])?;
                if on_hand < 0 {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "ON_HAND must not be negative",
                    ));
                }
                Command::InvSet {
                    sku: text_key(&args[0])?,
                    on_hand,
                    low,
                }
            }
            opcode::INV_STORE => {
                arity(args.len() == 1)?;
                Command::InvStore(text_key(&args[0])?)
            }
            opcode::INV_ADJUST => {
                arity(args.len() == 2)?;
                Command::InvAdjust {
                    sku: text_key(&args[0])?,
                    delta: parse_int::<i64>(&args[1])?,
                }
            }
            opcode::INV_GET => {
                arity(args.len() == 1)?;
                Command::InvGet(text_key(&args[0])?)
            }
            opcode::INV_RESERVE => {
                let id = match args {
                    [_, _, ttl, _] if ttl.eq_ignore_ascii_case(b"TTL") => None,
                    [_, _, ttl, _, word, id]
                        if ttl.eq_ignore_ascii_case(b"TTL") && word.eq_ignore_ascii_case(b"ID") =>
                    {
                        Some(text_reservation_id(id)?)
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                Command::InvReserve {
                    sku: text_key(&args[0])?,
                    qty: text_quantity(&args[1])?,
                    ttl_ms: parse_seconds(&args[3])?,
                    id,
                }
            }
            opcode::INV_CONFIRM | opcode::INV_RELEASE => {
                arity(args.len() == 1)?;
                let (sku, id) = split_reservation(&args[0])?;
                if spec.opcode == opcode::INV_CONFIRM {
                    Command::InvConfirm { sku, id }
                } else {
                    Command::InvRelease { sku, id }
                }
            }
            opcode::INV_RESERVE_MULTI => {
                arity(
                    args.len() >= 4 && args.len() % 2 == 0 && args[0].eq_ignore_ascii_case(b"TTL"),
                )?;
                let items = args[2..]
                    .chunks_exact(2)
                    .map(|line| Ok((text_key(&line[0])?, text_quantity(&line[1])?)))
                    .collect::<Result<Vec<_>, ErrorReply>>()?;
                Command::InvReserveMulti {
                    ttl_ms: parse_seconds(&args[1])?,
                    items,
                }
            }
            opcode::TL_PUSH | opcode::TL_FANOUT => {
                arity(args.len() >= 2)?;
                let (id_word, rest) = if spec.opcode == opcode::TL_PUSH {
                    (&args[1], &args[2..])
                } else {
                    (&args[0], &args[1..])
                };
                let id = parse_int::<u64>(id_word)?;
                let (mut score, mut cap, mut at) = (None, None, 0);
                while at + 1 < rest.len() {
                    match rest[at].to_ascii_uppercase().as_slice() {
                        b"SCORE" if score.is_none() => {
                            score = Some(parse_int::<i64>(&rest[at + 1])?)
                        }
                        b"CAP" if cap.is_none() => cap = Some(text_cap(&rest[at + 1])?),
                        _ => break,
                    }
                    at += 2;
                }
                let item = Cursor {
                    score: score.unwrap_or(id as i64),
                    id,
                };
                if spec.opcode == opcode::TL_PUSH {
                    arity(at == rest.len())?;
                    Command::TlPush {
                        key: text_key(&args[0])?,
                        item,
                        cap,
                    }
                } else {
                    arity(at < rest.len())?;
                    Command::TlFanout {
                        item,
                        cap,
                        keys: rest[at..]
                            .iter()
                            .map(text_key)
                            .collect::<Result<Vec<_>, _>>()?,
                    }
                }
            }
            opcode::TL_RANGE => {
                arity(!args.is_empty())?;
                let (mut before, mut after, mut limit) = (None, None, DEFAULT_PAGE);
                for option in args[1..].chunks(2) {
                    let [word, value] = option else {
                        return arity(false).map(|_| unreachable!());
                    };
                    match word.to_ascii_uppercase().as_slice() {
                        b"BEFORE" => before = Some(text_cursor(value)?),
                        b"AFTER" => after = Some(text_cursor(value)?),
                        b"LIMIT" => limit = text_page(value)?,
                        _ => {
                            return Err(ErrorReply::new(
                                ErrorCode::Syntax,
                                "syntax error in TL.RANGE options",
                            ))
                        }
                    }
                }
                Command::TlRange {
                    key: text_key(&args[0])?,
                    before,
                    after,
                    limit,
                }
            }
            opcode::TL_MERGE => {
                arity(args.len() >= 3 && args[0].eq_ignore_ascii_case(b"LIMIT"))?;
                let limit = text_page(&args[1])?;
                let (before, keys) = match &args[2..] {
                    [word, cursor, keys @ ..] if word.eq_ignore_ascii_case(b"BEFORE") => {
                        (Some(text_cursor(cursor)?), keys)
                    }
                    keys => (None, keys),
                };
                arity(!keys.is_empty())?;
                Command::TlMerge {
                    limit,
                    before,
                    keys: keys.iter().map(text_key).collect::<Result<Vec<_>, _>>()?,
                }
            }
            opcode::TL_REMOVE => {
                arity(args.len() == 2)?;
                Command::TlRemove {
                    key: text_key(&args[0])?,
                    id: parse_int::<u64>(&args[1])?,
                }
            }
            opcode::TL_LEN => {
                arity(args.len() == 1)?;
                Command::TlLen(text_key(&args[0])?)
            }
            opcode::TL_TRIM => {
                arity(args.len() == 2)?;
                Command::TlTrim {
                    key: text_key(&args[0])?,
                    keep: parse_int::<u32>(&args[1])?,
                }
            }
            opcode::PRESENCE_BEAT => {
                arity(!args.is_empty() && args.len() % 2 == 1)?;
                let (mut ttl_ms, mut grace_ms, mut meta) =
                    (DEFAULT_PRESENCE_TTL_MS, DEFAULT_PRESENCE_GRACE_MS, None);
                for option in args[1..].chunks_exact(2) {
                    match option[0].to_ascii_uppercase().as_slice() {
                        b"TTL" => ttl_ms = parse_seconds(&option[1])?,
                        b"GRACE" => {
                            grace_ms = parse_int::<u64>(&option[1])?.min(MAX_EXPIRE_MS as u64)
                        }
                        b"META" => meta = Some(option[1].clone()),
                        _ => {
                            return Err(ErrorReply::new(
                                ErrorCode::Syntax,
                                "syntax error in PRESENCE.BEAT options",
                            ))
                        }
                    }
                }
                Command::PresenceBeat {
                    user: text_key(&args[0])?,
                    ttl_ms,
                    grace_ms,
                    meta,
                }
            }
            opcode::PRESENCE_GET => {
                arity(!args.is_empty())?;
                Command::PresenceGet(args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?)
            }
            opcode::PRESENCE_LEAVE => {
                arity(args.len() == 1)?;
                Command::PresenceLeave(text_key(&args[0])?)
            }
            opcode::PRESENCE_WATCH => {
                arity(!args.is_empty())?;
                Command::PresenceWatch(args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?)
            }
            opcode::PRESENCE_UNWATCH => {
                Command::PresenceUnwatch(args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?)
            }
            op @ opcode::GEO_CREATE..=opcode::GEO_CELLS => {
                Command::Geo(GeoCommand::parse(op, args)?)
            }
            opcode::DEDUP => {
                arity(args.len() == 2)?;
                Command::Dedup {
                    key: text_key(&args[0])?,
                    ttl_ms: parse_seconds(&args[1])?,
                }
            }
            opcode::DEDUP_MULTI => {
                arity(args.len() >= 2)?;
                Command::DedupMulti {
                    ttl_ms: parse_seconds(&args[0])?,
                    keys: args[1..]
                        .iter()
                        .map(text_key)
                        .collect::<Result<Vec<_>, _>>()?,
                }
            }
            opcode::COUNTER_TAKE => {
                let floor = match args {
                    [_, _] => 0,
                    [_, _, word, floor] if word.eq_ignore_ascii_case(b"FLOOR") => {
                        parse_int::<i64>(floor)?
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                Command::CounterTake {
                    key: text_key(&args[0])?,
                    amount: parse_amount(&args[1])?,
                    floor,
                }
            }
            opcode::COUNTER_PUT => {
                arity(args.len() == 2)?;
                Command::CounterPut {
                    key: text_key(&args[0])?,
                    amount: parse_amount(&args[1])?,
                }
            }
            opcode::ID_RANGE => {
                arity(args.len() == 2)?;
                let size = parse_int::<u64>(&args[1])?;
                if !(1..=MAX_ID_BLOCK).contains(&size) {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "ID.RANGE size must be between 1 and 2^40",
                    ));
                }
                Command::IdRange {
                    key: text_key(&args[0])?,
                    size,
                }
            }
            _ => unreachable!("every table row has a parse arm"),
        };
        Ok(command)
    }
}

fn read_key<P: Payload>(r: &mut Reader<P>) -> Result<P, DecodeError> {
    let key = r.bytes()?;
    let len = key.as_ref().len();
    if len > MAX_KEY_BYTES {
        return Err(DecodeError::KeyTooLarge(len));
    }
    Ok(key)
}

fn read_keys<P: Payload>(r: &mut Reader<P>) -> Result<Vec<P>, DecodeError> {
    let count = r.count(1)?;
    if count == 0 {
        return Err(DecodeError::Invalid("at least one key is required"));
    }
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(read_key(r)?);
    }
    Ok(keys)
}

fn checked_ttl(ms: u64) -> Result<u64, DecodeError> {
    if ms == 0 || ms > MAX_EXPIRE_MS as u64 {
        return Err(DecodeError::InvalidExpire);
    }
    Ok(ms)
}

/// Checks a rate limit's shape: 1 ..= `MAX_TIERS` tiers with limits and costs that fit
/// the 32-bit counters, windows within the expiry range, and GCRA with exactly one tier.
fn validate_rate_limit<P>(limit: &RateLimit<P>) -> Result<(), &'static str> {
    let max_units = u64::from(u32::MAX);
    for tier in limit.tiers.as_slice() {
        if !(1..=max_units).contains(&tier.limit) {
            return Err("LIMIT must be between 1 and 2^32-1");
        }
        if !(1..=MAX_EXPIRE_MS as u64).contains(&tier.window_ms) {
            return Err("WINDOW must be between 1 ms and 100 years");
        }
    }
    if limit.cost > max_units || limit.burst > max_units {
        return Err("COST and BURST must be at most 2^32-1");
    }
    match limit.algorithm {
        Algorithm::Gcra if limit.tiers.as_slice().len() != 1 => {
            Err("ALGO gcra takes exactly one LIMIT/WINDOW")
        }
        Algorithm::Sliding if limit.burst != 0 => Err("BURST applies to ALGO gcra only"),
        _ => Ok(()),
    }
}

fn read_rate_limit<P: Payload>(r: &mut Reader<P>) -> Result<RateLimit<P>, DecodeError> {
    let key = read_key(r)?;
    let algorithm = match r.u8()? {
        0 => Algorithm::Sliding,
        1 => Algorithm::Gcra,
        _ => return Err(DecodeError::Invalid("unknown rate-limit algorithm")),
    };
    let cost = r.uvarint()?;
    let burst = r.uvarint()?;
    let count = r.count(2)?;
    if count == 0 || count > MAX_TIERS {
        return Err(DecodeError::Invalid("a rate limit has 1 to 4 tiers"));
    }
    let mut tiers = [Tier::default(); MAX_TIERS];
    for tier in tiers.iter_mut().take(count) {
        *tier = Tier {
            limit: r.uvarint()?,
            window_ms: r.uvarint()?,
        };
    }
    let limit = RateLimit {
        key,
        algorithm,
        cost,
        burst,
        tiers: Tiers::new(&tiers[..count])
            .ok_or(DecodeError::Invalid("a rate limit has 1 to 4 tiers"))?,
    };
    validate_rate_limit(&limit).map_err(DecodeError::Invalid)?;
    Ok(limit)
}

fn parse_rate_limit(key: &Bytes, options: &[Bytes]) -> Result<RateLimit, ErrorReply> {
    let syntax = |message: &str| ErrorReply::new(ErrorCode::Syntax, message);
    let mut tiers = Vec::new();
    let mut limit = RateLimit {
        key: text_key(key)?,
        algorithm: Algorithm::Sliding,
        cost: 1,
        burst: 0,
        tiers: Tiers::default(),
    };
    let mut words = options.iter();
    while let Some(word) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| syntax("an option is missing its value"))
        };
        match word.to_ascii_uppercase().as_slice() {
            b"LIMIT" => {
                let n = parse_int::<u64>(value()?)?;
                if !words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"WINDOW"))
                {
                    return Err(syntax("LIMIT n must be followed by WINDOW ms"));
                }
                let ms = words
                    .next()
                    .ok_or_else(|| syntax("WINDOW needs milliseconds"))?;
                tiers.push(Tier {
                    limit: n,
                    window_ms: parse_int::<u64>(ms)?,
                });
            }
            b"COST" => limit.cost = parse_int::<u64>(value()?)?,
            b"BURST" => limit.burst = parse_int::<u64>(value()?)?,
            b"ALGO" => {
                limit.algorithm = match value()?.to_ascii_lowercase().as_slice() {
                    b"sliding" => Algorithm::Sliding,
                    b"gcra" => Algorithm::Gcra,
                    _ => return Err(syntax("ALGO is sliding or gcra")),
                }
            }
            _ => return Err(syntax("syntax error in rate-limit options")),
        }
    }
    limit.tiers =
        Tiers::new(&tiers).ok_or_else(|| syntax("give 1 to 4 LIMIT n WINDOW ms tiers"))?;
    validate_rate_limit(&limit).map_err(syntax)?;
    Ok(limit)
}

/// Separates a reservation handle, `sku#id`, at its last `#`.
pub fn split_reservation_handle(handle: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = handle.iter().rposition(|&b| b == b'#')?;
    let (sku, id) = (&handle[..at], &handle[at + 1..]);
    (!sku.is_empty() && !id.is_empty()).then_some((sku, id))
}

fn checked_quantity(qty: u64) -> Result<u64, DecodeError> {
    if !(1..=i64::MAX as u64).contains(&qty) {
        return Err(DecodeError::Invalid(
            "quantity must be between 1 and 2^63-1",
        ));
    }
    Ok(qty)
}

fn read_reservation_id<P: Payload>(r: &mut Reader<P>) -> Result<P, DecodeError> {
    let id = r.bytes()?;
    let bytes = id.as_ref();
    if bytes.is_empty() || bytes.len() > 256 || bytes.contains(&b'#') {
        return Err(DecodeError::Invalid(
            "a reservation id is 1 to 256 bytes without #",
        ));
    }
    Ok(id)
}

fn text_quantity(word: &[u8]) -> Result<u64, ErrorReply> {
    let qty = parse_int::<u64>(word)?;
    checked_quantity(qty).map_err(|e| ErrorReply::new(ErrorCode::Syntax, e.to_string()))
}

fn text_reservation_id(word: &Bytes) -> Result<Bytes, ErrorReply> {
    if word.is_empty() || word.len() > 256 || word.contains(&b'#') {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "a reservation id is 1 to 256 bytes without #",
        ));
    }
    Ok(word.clone())
}

fn split_reservation(handle: &Bytes) -> Result<(Bytes, Bytes), ErrorReply> {
    let (sku, id) = split_reservation_handle(handle)
        .ok_or_else(|| ErrorReply::new(ErrorCode::Syntax, "a reservation looks like sku#id"))?;
    Ok((text_key(&handle.slice_ref(sku))?, handle.slice_ref(id)))
}

fn put_item_options(buf: &mut BytesMut, item: &Cursor, cap: Option<u32>) {
    let custom_score = item.score != item.id as i64;
    buf.put_u8(u8::from(custom_score) | (u8::from(cap.is_some()) << 1));
    if custom_score {
        put_ivarint(buf, item.score);
    }
    if let Some(cap) = cap {
        put_uvarint(buf, u64::from(cap));
    }
}

fn read_item_options<P: Payload>(
    r: &mut Reader<P>,
    id: u64,
) -> Result<(Cursor, Option<u32>), DecodeError> {
    let flags = r.u8()?;
    if flags & !3 != 0 {
        return Err(DecodeError::Invalid("unknown timeline flag bits"));
    }
    let score = if flags & 1 != 0 {
        r.ivarint()?
    } else {
        id as i64
    };
    let cap = if flags & 2 != 0 {
        let cap = r.uvarint()?;
        if !(1..=u64::from(MAX_TIMELINE_CAP)).contains(&cap) {
            return Err(DecodeError::Invalid("CAP must be between 1 and 100000"));
        }
        Some(cap as u32)
    } else {
        None
    };
    Ok((Cursor { score, id }, cap))
}

fn read_cursor<P: Payload>(r: &mut Reader<P>) -> Result<Cursor, DecodeError> {
    Ok(Cursor {
        score: r.ivarint()?,
        id: r.uvarint()?,
    })
}

fn read_page<P: Payload>(r: &mut Reader<P>) -> Result<u32, DecodeError> {
    match r.uvarint()? {
        0 => Ok(DEFAULT_PAGE),
        n if n <= u64::from(MAX_TIMELINE_CAP) => Ok(n as u32),
        _ => Err(DecodeError::Invalid("LIMIT must be at most 100000")),
    }
}

fn text_cap(word: &[u8]) -> Result<u32, ErrorReply> {
    let cap = parse_int::<u32>(word)?;
    if !(1..=MAX_TIMELINE_CAP).contains(&cap) {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "CAP must be between 1 and 100000",
        ));
    }
    Ok(cap)
}

fn text_page(word: &[u8]) -> Result<u32, ErrorReply> {
    let limit = parse_int::<u32>(word)?;
    if !(1..=MAX_TIMELINE_CAP).contains(&limit) {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "LIMIT must be between 1 and 100000",
        ));
    }
    Ok(limit)
}

/// A cursor as text: `score:id`, or just `id` when the score is the id.
fn text_cursor(word: &[u8]) -> Result<Cursor, ErrorReply> {
    let text = std::str::from_utf8(word).unwrap_or("");
    let (score, id) = match text.split_once(':') {
        Some((score, id)) => (score.parse::<i64>().ok(), id.parse::<u64>().ok()),
        None => {
            let id = text.parse::<u64>().ok();
            (id.and_then(|id| i64::try_from(id).ok()), id)
        }
    };
    match (score, id) {
        (Some(score), Some(id)) => Ok(Cursor { score, id }),
        _ => Err(ErrorReply::new(
            ErrorCode::Syntax,
            "a cursor is score:id or id",
        )),
    }
}

fn checked_amount(amount: u64) -> Result<u64, DecodeError> {
    if amount > i64::MAX as u64 {
        return Err(DecodeError::Invalid("amount exceeds 2^63-1"));
    }
    Ok(amount)
}

fn parse_amount(word: &[u8]) -> Result<u64, ErrorReply> {
    let amount = parse_int::<u64>(word)?;
    if amount > i64::MAX as u64 {
        return Err(ErrorReply::new(
            ErrorCode::NotInteger,
            "amount exceeds 2^63-1",
        ));
    }
    Ok(amount)
}

fn parse_seconds(word: &[u8]) -> Result<u64, ErrorReply> {
    parse_int::<i64>(word)?
        .checked_mul(1000)
        .filter(|ms| (1..=MAX_EXPIRE_MS).contains(ms))
        .map(|ms| ms as u64)
        .ok_or_else(|| ErrorReply::new(ErrorCode::InvalidExpire, "invalid expire time"))
}

fn text_key(word: &Bytes) -> Result<Bytes, ErrorReply> {
    if word.len() > MAX_KEY_BYTES {
        return Err(ErrorReply::new(
            ErrorCode::KeyTooLarge,
            "key exceeds 65536 bytes",
        ));
    }
    Ok(word.clone())
}

pub(crate) fn parse_int<T: std::str::FromStr>(word: &[u8]) -> Result<T, ErrorReply> {
    std::str::from_utf8(word)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ErrorReply::new(
                ErrorCode::NotInteger,
                format!(
                    "value is not an integer or out of range: '{}'",
                    String::from_utf8_lossy(word)
                ),
            )
        })
}

fn parse_set(key: &Bytes, value: &Bytes, options: &[Bytes]) -> Result<Command, ErrorReply> {
    let syntax = || ErrorReply::new(ErrorCode::Syntax, "syntax error in SET options");
    let mut args = SetArgs {
        key: text_key(key)?,
        value: value.clone(),
        condition: SetCondition::Always,
        expiry: SetExpiry::Clear,
        get: false,
    };
    let mut expiry_given = false;
    let mut i = 0;
    while i < options.len() {
        let word = options[i].to_ascii_uppercase();
        match word.as_slice() {
            b"NX" | b"XX" => {
                if args.condition != SetCondition::Always {
                    return Err(syntax());
                }
                args.condition = if word == b"NX" {
                    SetCondition::IfAbsent
                } else {
                    SetCondition::IfPresent
                };
            }
            b"GET" => args.get = true,
            b"KEEPTTL" | b"EX" | b"PX" => {
                if expiry_given {
                    return Err(syntax());
                }
                expiry_given = true;
                if word == b"KEEPTTL" {
                    args.expiry = SetExpiry::Keep;
                } else {
                    i += 1;
                    let amount = options.get(i).ok_or_else(syntax)?;
                    let n = parse_int::<i64>(amount)?;
                    let ms = if word == b"EX" {
                        n.checked_mul(1000)
                    } else {
                        Some(n)
                    };
                    let ms = ms
                        .filter(|ms| (1..=MAX_EXPIRE_MS).contains(ms))
                        .ok_or_else(|| {
                            ErrorReply::new(
                                ErrorCode::InvalidExpire,
                                "invalid expire time in 'set' command",
                            )
                        })?;
                    args.expiry = SetExpiry::In(ms as u64);
                }
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    Ok(Command::Set(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{GeoArea, GeoNear, GeoPoint};

    fn words(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn samples() -> Vec<Command> {
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        vec![
            Command::Ping(None),
            Command::Ping(Some(k("hi"))),
            Command::Hello {
                version: 1,
                shard: None,
            },
            Command::Hello {
                version: 1,
                shard: Some(3),
            },
            Command::Info,
            Command::DbSize,
            Command::FlushAll,
            Command::Get(k("a")),
            Command::Set(SetArgs {
                key: k("a"),
                value: k("v"),
                condition: SetCondition::IfAbsent,
                expiry: SetExpiry::In(10_000),
                get: true,
            }),
            Command::Set(SetArgs {
                key: k("a"),
                value: k(""),
                condition: SetCondition::IfPresent,
                expiry: SetExpiry::Keep,
                get: false,
            }),
            Command::Del(vec![k("a"), k("b")]),
            Command::Exists(vec![k("a")]),
            Command::Expire {
                key: k("a"),
                seconds: -5,
            },
            Command::PExpire {
                key: k("a"),
                millis: 1500,
            },
            Command::Ttl(k("a")),
            Command::PTtl(k("a")),
            Command::Persist(k("a")),
            Command::IncrBy {
                key: k("n"),
                delta: i64::MIN,
            },
            Command::DecrBy {
                key: k("n"),
                delta: 7,
            },
            Command::MGet(vec![k("a"), k("b"), k("c")]),
            Command::MSet(vec![(k("a"), k("1")), (k("b"), k("2"))]),
            Command::RlCheck(RateLimit {
                key: k("client:1"),
                algorithm: Algorithm::Sliding,
                cost: 1,
                burst: 0,
                tiers: Tiers::new(&[
                    Tier {
                        limit: 10,
                        window_ms: 1000,
                    },
                    Tier {
                        limit: 1000,
                        window_ms: 3_600_000,
                    },
                ])
                .unwrap(),
            }),
            Command::RlPeek(RateLimit {
                key: k("client:1"),
                algorithm: Algorithm::Gcra,
                cost: 2,
                burst: 5,
                tiers: Tiers::new(&[Tier {
                    limit: 100,
                    window_ms: 60_000,
                }])
                .unwrap(),
            }),
            Command::RlReset(k("client:1")),
            Command::IdemBegin {
                key: k("pay:9"),
                ttl_ms: 86_400_000,
                lease_ms: 5000,
            },
            Command::IdemComplete {
                key: k("pay:9"),
                token: 1,
                result: k("charged"),
            },
            Command::IdemGet(k("pay:9")),
            Command::VGet(k("spot:17")),
            Command::InvSet {
                sku: k("{s1}:milk"),
                on_hand: 40,
                low: Some(5),
            },
            Command::InvStore(k("s1")),
            Command::TlPush {
                key: k("home:1"),
                item: Cursor {
                    score: 900,
                    id: 900,
                },
                cap: None,
            },
            Command::TlFanout {
                item: Cursor { score: -5, id: 77 },
                cap: Some(800),
                keys: vec![k("home:1"), k("home:2")],
            },
            Command::TlRange {
                key: k("home:1"),
                before: Some(Cursor { score: 10, id: 10 }),
                after: Some(Cursor { score: 1, id: 1 }),
                limit: 20,
            },
            Command::TlMerge {
                limit: 50,
                before: None,
                keys: vec![k("home:1"), k("celeb:9")],
            },
            Command::TlRemove {
                key: k("home:1"),
                id: 900,
            },
            Command::TlLen(k("home:1")),
            Command::PresenceBeat {
                user: k("u:1"),
                ttl_ms: 30_000,
                grace_ms: 0,
                meta: Some(k("eu/ios")),
            },
            Command::PresenceGet(vec![k("u:1"), k("u:2")]),
            Command::PresenceLeave(k("u:1")),
            Command::PresenceWatch(vec![k("u:1"), k("u:2")]),
            Command::PresenceUnwatch(vec![k("u:2")]),
            Command::PresenceUnwatch(vec![]),
            Command::Geo(GeoCommand::Create {
                index: k("drivers"),
                resolution: 10,
            }),
            Command::Geo(GeoCommand::Upsert {
                index: k("drivers"),
                member: k("d:1"),
                at: GeoPoint::new(52.52, 13.405).unwrap(),
                status: Some(k("available")),
                ttl_ms: Some(30_000),
                meta: Some(k("car")),
            }),
            Command::Geo(GeoCommand::Near(GeoNear {
                index: k("drivers"),
                area: GeoArea {
                    center: GeoPoint::new(-33.8688, 151.2093).unwrap(),
                    radius_m: 2_000,
                },
                k: 5,
                status: Some(k("available")),
                with_dist: true,
                with_meta: false,
                claim_ms: Some(10_000),
            })),
            Command::Geo(GeoCommand::Claim {
                index: k("drivers"),
                member: k("d:1"),
                ttl_ms: 15_000,
            }),
            Command::Geo(GeoCommand::Confirm {
                index: k("drivers"),
                member: k("d:1"),
            }),
            Command::Geo(GeoCommand::Release {
                index: k("drivers"),
                member: k("d:1"),
            }),
            Command::Geo(GeoCommand::Remove {
                index: k("drivers"),
                member: k("d:1"),
            }),
            Command::Geo(GeoCommand::Get {
                index: k("drivers"),
                member: k("d:1"),
            }),
            Command::Geo(GeoCommand::Count {
                index: k("drivers"),
                area: Some(GeoArea {
                    center: GeoPoint::new(0.0, 179.9999).unwrap(),
                    radius_m: 500,
                }),
                status: None,
            }),
            Command::Geo(GeoCommand::Cells {
                index: k("drivers"),
                area: GeoArea {
                    center: GeoPoint::new(40.0, -74.0).unwrap(),
                    radius_m: 3_000,
                },
                resolution: 7,
                status: Some(k("available")),
            }),
            Command::TlTrim {
                key: k("home:1"),
                keep: 100,
            },
            Command::InvAdjust {
                sku: k("{s1}:milk"),
                delta: -3,
            },
            Command::InvGet(k("{s1}:milk")),
            Command::InvReserve {
                sku: k("{s1}:milk"),
                qty: 2,
                ttl_ms: 600_000,
                id: Some(k("order-9")),
            },
            Command::InvConfirm {
                sku: k("{s1}:milk"),
                id: k("order-9"),
            },
            Command::InvRelease {
                sku: k("{s1}:milk"),
                id: k("r1"),
            },
            Command::InvReserveMulti {
                ttl_ms: 600_000,
                items: vec![(k("{s1}:milk"), 1), (k("{s1}:eggs"), 12)],
            },
            Command::VSet {
                key: k("spot:17"),
                value: k("reserved"),
                if_version: Some(0),
                ttl_ms: Some(900_000),
            },
            Command::VSet {
                key: k("trip:5"),
                value: k("matching"),
                if_version: None,
                ttl_ms: None,
            },
            Command::Dedup {
                key: k("imp:1"),
                ttl_ms: 3_600_000,
            },
            Command::DedupMulti {
                ttl_ms: 1000,
                keys: vec![k("a"), k("b")],
            },
            Command::CounterTake {
                key: k("budget"),
                amount: 5,
                floor: -10,
            },
            Command::CounterPut {
                key: k("budget"),
                amount: 100,
            },
            Command::IdRange {
                key: k("ids"),
                size: 1000,
            },
        ]
    }

    fn encoded(command: &Command) -> Bytes {
        let mut buf = BytesMut::new();
        command.encode(&mut buf);
        buf.freeze()
    }

    #[test]
    fn table_is_ordered_unique_and_covers_every_variant() {
        for pair in COMMANDS.windows(2) {
            assert!(
                pair[0].opcode < pair[1].opcode,
                "{} out of order",
                pair[1].name
            );
        }
        let covered: std::collections::BTreeSet<u16> =
            samples().iter().map(Command::opcode).collect();
        let table: std::collections::BTreeSet<u16> = COMMANDS.iter().map(|s| s.opcode).collect();
        assert_eq!(
            covered, table,
            "every table row has a sample and vice versa"
        );
    }

    #[test]
    fn table_index_points_at_the_commands_own_row() {
        for command in samples() {
            assert_eq!(
                COMMANDS[command.table_index()].opcode,
                command.opcode(),
                "{command:?}"
            );
        }
    }

    #[test]
    fn every_command_round_trips() {
        for command in samples() {
            assert_eq!(Command::decode(encoded(&command)).unwrap(), command);
        }
    }

    #[test]
    fn borrowed_decode_matches_owned_decode() {
        for command in samples() {
            let body = encoded(&command);
            let borrowed = Command::<&[u8]>::decode(&body[..]).unwrap();
            assert_eq!(borrowed.to_owned_bytes(), command);
        }
    }

    #[test]
    fn every_truncation_fails_without_panicking() {
        for command in samples() {
            let whole = encoded(&command);
            for cut in 0..whole.len() {
                assert!(
                    Command::decode(whole.slice(..cut)).is_err(),
                    "{command:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut buf = BytesMut::new();
        Command::Get(Bytes::from_static(b"k")).encode(&mut buf);
        buf.put_u8(0);
        assert_eq!(
            Command::decode(buf.freeze()),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn set_byte_layout() {
        let bytes = encoded(&Command::parse_words(&words("SET k v NX EX 10")).unwrap());
        assert_eq!(
            &bytes[..],
            &[
                0x11,
                0x00,
                1,
                b'k',
                1,
                b'v',
                set_flags::NX | set_flags::TTL,
                0x90,
                0x4e
            ]
        );
    }

    #[test]
    fn get_byte_layout() {
        assert_eq!(
            &encoded(&Command::Get(Bytes::from_static(b"k")))[..],
            &[0x10, 0x00, 1, b'k']
        );
    }

    #[test]
    fn unknown_opcode_is_typed() {
        let err = Command::decode(Bytes::from_static(&[0xff, 0x7f])).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownCommand);
    }

    #[test]
    fn conflicting_set_flags_are_refused() {
        let body =
            Bytes::from_static(&[0x11, 0x00, 1, b'k', 1, b'v', set_flags::NX | set_flags::XX]);
        assert!(matches!(
            Command::decode(body),
            Err(DecodeError::Invalid(_))
        ));
        let zero_ttl = Bytes::from_static(&[0x11, 0x00, 1, b'k', 1, b'v', set_flags::TTL, 0]);
        assert_eq!(Command::decode(zero_ttl), Err(DecodeError::InvalidExpire));
    }

    #[test]
    fn oversize_key_is_refused_with_its_code() {
        let mut buf = BytesMut::new();
        Command::Get(Bytes::from(vec![b'x'; MAX_KEY_BYTES + 1])).encode(&mut buf);
        assert_eq!(
            Command::decode(buf.freeze()).unwrap_err().code(),
            ErrorCode::KeyTooLarge
        );
    }

    #[test]
    fn words_parse_like_redis_cli() {
        assert_eq!(
            Command::parse_words(&words("set k v ex 10 get")).unwrap(),
            Command::Set(SetArgs {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
                condition: SetCondition::Always,
                expiry: SetExpiry::In(10_000),
                get: true,
            })
        );
        assert_eq!(
            Command::parse_words(&words("hello 1 shard 2")).unwrap(),
            Command::Hello {
                version: 1,
                shard: Some(2)
            }
        );
        assert_eq!(
            Command::parse_words(&words("counter.take budget 5 floor -10")).unwrap(),
            Command::CounterTake {
                key: Bytes::from_static(b"budget"),
                amount: 5,
                floor: -10
            }
        );
        assert_eq!(
            Command::parse_words(&words("dedup.multi 60 a b")).unwrap(),
            Command::DedupMulti {
                ttl_ms: 60_000,
                keys: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
            }
        );
        let parsed = Command::parse_words(&words(
            "rl.check c limit 10 window 1000 limit 100 window 60000 cost 2",
        ))
        .unwrap();
        let Command::RlCheck(limit) = parsed else {
            panic!("RL.CHECK parses to RlCheck")
        };
        assert_eq!(limit.cost, 2);
        assert_eq!(limit.tiers.as_slice().len(), 2);
        let err = |line| Command::parse_words(&words(line)).unwrap_err().known_code();
        assert_eq!(err("rl.check c limit 10"), Some(ErrorCode::Syntax));
        assert_eq!(err("rl.check c limit 0 window 10"), Some(ErrorCode::Syntax));
        assert_eq!(
            err("rl.check c limit 1 window 1 limit 1 window 2 algo gcra"),
            Some(ErrorCode::Syntax)
        );
        assert_eq!(
            err("rl.check c limit 1 window 1 burst 3"),
            Some(ErrorCode::Syntax)
        );
        assert_eq!(err("dedup k 0"), Some(ErrorCode::InvalidExpire));
        assert_eq!(err("counter.take k -1"), Some(ErrorCode::NotInteger));
        assert_eq!(err("counter.take k 1 floor"), Some(ErrorCode::Syntax));
        assert_eq!(err("id.range k 0"), Some(ErrorCode::Syntax));
        assert_eq!(err("nosuch a"), Some(ErrorCode::UnknownCommand));
        assert_eq!(err("get"), Some(ErrorCode::Syntax));
        assert_eq!(err("set k v nx xx"), Some(ErrorCode::Syntax));
        assert_eq!(err("set k v ex 0"), Some(ErrorCode::InvalidExpire));
        assert_eq!(err("set k v ex 1 px 5"), Some(ErrorCode::Syntax));
        assert_eq!(err("incrby k ten"), Some(ErrorCode::NotInteger));
        assert_eq!(err("mset a 1 b"), Some(ErrorCode::Syntax));
    }
}
