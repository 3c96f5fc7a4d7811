//! Presence: heartbeats with TTL and grace, batch lookups, watches.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::{fixed, positions, split_keys, Combine, Split};
use super::{CommandSpec, KeySpec, MAX_EXPIRE_MS};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
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
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::PRESENCE_BEAT,
        name: "PRESENCE.BEAT",
        syntax: "user [TTL seconds] [GRACE ms] [META bytes]",
        wire: "user:bytes flags:u8 (1 ttl, 2 grace, 4 meta) [ttl_ms:uvarint] [grace_ms:uvarint] [meta:bytes]",
        reply: "BOOL true if this beat brought the user online",
        summary: "Records a heartbeat: the user is online until TTL (default 30 s) plus GRACE (default 5 s) passes without another.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_GET,
        name: "PRESENCE.GET",
        syntax: "user [user ...]",
        wire: "count:uvarint user:bytes*count",
        reply: "ARRAY per user of [BOOL online, INT ms since last seen, BYTES meta or NIL], or NIL if never seen",
        summary: "Who is online, with last-seen times and metadata, for many users across shards in one call.",
        writes: false,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_LEAVE,
        name: "PRESENCE.LEAVE",
        syntax: "user",
        wire: "user:bytes",
        reply: "INT 1 if the user was online, else 0",
        summary: "Marks a clean disconnect: offline at once, without waiting for TTL and grace.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_WATCH,
        name: "PRESENCE.WATCH",
        syntax: "user [user ...]",
        wire: "count:uvarint user:bytes*count",
        reply: "ARRAY per user of [BOOL online, INT ms since last seen or NIL, BYTES meta or NIL, INT sequence]; then presence pushes",
        summary: "Pushes each watched user's online/offline changes to this connection (request id 0), in order, once each.",
        writes: false,
        keys: KeySpec::Watch,
    },
    CommandSpec {
        opcode: opcode::PRESENCE_UNWATCH,
        name: "PRESENCE.UNWATCH",
        syntax: "[user ...]",
        wire: "count:uvarint user:bytes*count (count 0: every user)",
        reply: "INT users no longer watched",
        summary: "Stops pushes for the given users, or for every user this connection watches.",
        writes: false,
        keys: KeySpec::Watch,
    },
];

/// Heartbeat lifetime when PRESENCE.BEAT names none.
pub const DEFAULT_PRESENCE_TTL_MS: u64 = 30_000;

/// Grace after a missed heartbeat when PRESENCE.BEAT names none.
pub const DEFAULT_PRESENCE_GRACE_MS: u64 = 5_000;

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceCommand<P = Bytes> {
    /// PRESENCE.BEAT user [TTL s] [GRACE ms] [META bytes]
    Beat {
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
    Get(Vec<P>),
    /// PRESENCE.LEAVE user
    Leave(P),
    /// PRESENCE.WATCH user...
    Watch(Vec<P>),
    /// PRESENCE.UNWATCH [user...]; empty means every watched user.
    Unwatch(Vec<P>),
}

impl<P: Payload> PresenceCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            PresenceCommand::Beat { .. } => opcode::PRESENCE_BEAT,
            PresenceCommand::Get(_) => opcode::PRESENCE_GET,
            PresenceCommand::Leave(_) => opcode::PRESENCE_LEAVE,
            PresenceCommand::Watch(_) => opcode::PRESENCE_WATCH,
            PresenceCommand::Unwatch(_) => opcode::PRESENCE_UNWATCH,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            PresenceCommand::Beat { user, .. } | PresenceCommand::Leave(user) => Some(user),
            PresenceCommand::Get(_) | PresenceCommand::Watch(_) | PresenceCommand::Unwatch(_) => {
                None
            }
        }
    }

    /// How the command splits across shards: by the owner of each user. A watch is split
    /// by the server only, since its parts register the connection that sent it.
    pub fn split(&self, owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<PresenceCommand<Bytes>>> {
        match self {
            PresenceCommand::Get(users) => Some(split_keys(
                users,
                owner,
                positions(users.len()),
                PresenceCommand::Get,
            )),
            PresenceCommand::Watch(users) => Some(split_keys(
                users,
                owner,
                positions(users.len()),
                PresenceCommand::Watch,
            )),
            PresenceCommand::Unwatch(users) => Some(split_keys(
                users,
                owner,
                fixed(Combine::Sum),
                PresenceCommand::Unwatch,
            )),
            PresenceCommand::Beat { .. } | PresenceCommand::Leave(_) => None,
        }
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            PresenceCommand::Beat {
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
            PresenceCommand::Get(users)
            | PresenceCommand::Watch(users)
            | PresenceCommand::Unwatch(users) => {
                put_uvarint(buf, users.len() as u64);
                for user in users {
                    put_bytes(buf, user.as_ref());
                }
            }
            PresenceCommand::Leave(user) => put_bytes(buf, user.as_ref()),
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::PRESENCE_BEAT => {
                let user = read_key(r)?;
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
                PresenceCommand::Beat {
                    user,
                    ttl_ms,
                    grace_ms,
                    meta,
                }
            }
            opcode::PRESENCE_GET => PresenceCommand::Get(read_keys(r)?),
            opcode::PRESENCE_LEAVE => PresenceCommand::Leave(read_key(r)?),
            opcode::PRESENCE_WATCH => PresenceCommand::Watch(read_keys(r)?),
            opcode::PRESENCE_UNWATCH => {
                let count = r.count(1)?;
                let mut users = Vec::with_capacity(count);
                for _ in 0..count {
                    users.push(read_key(r)?);
                }
                PresenceCommand::Unwatch(users)
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> PresenceCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        let own_all = |keys: &[P]| keys.iter().map(own).collect();
        match self {
            PresenceCommand::Beat {
                user,
                ttl_ms,
                grace_ms,
                meta,
            } => PresenceCommand::Beat {
                user: own(user),
                ttl_ms: *ttl_ms,
                grace_ms: *grace_ms,
                meta: meta.as_ref().map(own),
            },
            PresenceCommand::Get(users) => PresenceCommand::Get(own_all(users)),
            PresenceCommand::Leave(user) => PresenceCommand::Leave(own(user)),
            PresenceCommand::Watch(users) => PresenceCommand::Watch(own_all(users)),
            PresenceCommand::Unwatch(users) => PresenceCommand::Unwatch(own_all(users)),
        }
    }
}

impl<P: Payload> PresenceCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::PRESENCE_BEAT => {
                let mut words = Words::new(spec, args);
                let user = words.key()?;
                let (mut ttl_ms, mut grace_ms, mut meta) =
                    (DEFAULT_PRESENCE_TTL_MS, DEFAULT_PRESENCE_GRACE_MS, None);
                words.options("syntax error in PRESENCE.BEAT options", |name, words| {
                    match name {
                        b"TTL" => ttl_ms = words.seconds()?,
                        b"GRACE" => grace_ms = words.int::<u64>()?.min(MAX_EXPIRE_MS as u64),
                        b"META" => meta = Some(words.bytes()?),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                PresenceCommand::Beat {
                    user,
                    ttl_ms,
                    grace_ms,
                    meta,
                }
            }
            opcode::PRESENCE_GET => {
                arity(!args.is_empty())?;
                PresenceCommand::Get(args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?)
            }
            opcode::PRESENCE_LEAVE => {
                arity(args.len() == 1)?;
                PresenceCommand::Leave(text_key(&args[0])?)
            }
            opcode::PRESENCE_WATCH => {
                arity(!args.is_empty())?;
                PresenceCommand::Watch(args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?)
            }
            opcode::PRESENCE_UNWATCH => {
                PresenceCommand::Unwatch(args.iter().map(text_key).collect::<Result<Vec<_>, _>>()?)
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}
