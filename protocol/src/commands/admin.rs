//! Connection and node commands: PING, HELLO, AUTH, INFO, DBSIZE, FLUSHALL, SNAPSHOT,
//! LASTSAVE and the ACL commands.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::Split;
use super::{CommandSpec, KeySpec, PROTOCOL_VERSION};
use crate::error::DecodeError;
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
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
    /// SNAPSHOT
    pub const SNAPSHOT: u16 = 0x0006;
    /// LASTSAVE
    pub const LASTSAVE: u16 = 0x0007;
    /// AUTH
    pub const AUTH: u16 = 0x0008;
    /// ACL.WHOAMI
    pub const ACL_WHOAMI: u16 = 0x0009;
    /// ACL.SETUSER
    pub const ACL_SETUSER: u16 = 0x000A;
    /// ACL.DELUSER
    pub const ACL_DELUSER: u16 = 0x000B;
    /// ACL.LIST
    pub const ACL_LIST: u16 = 0x000C;
    /// ACL.CAT
    pub const ACL_CAT: u16 = 0x000D;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::PING,
        name: "PING",
        syntax: "[message]",
        wire: "has_message:u8 [message:bytes]",
        reply: "TEXT \"PONG\", or BYTES message",
        summary: "Checks the connection is alive.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::HELLO,
        name: "HELLO",
        syntax: "[version] [SHARD n] [AUTH username password]",
        wire: "version:u16 shard:uvarint (0 = any shard, n = shard n-1) has_auth:u8 [username:bytes password:bytes]",
        reply: "MAP {version, node_id, shards, epoch, shard, server}; WRONGPASS if AUTH fails, NOAUTH without it where a password is required",
        summary: "Negotiates the protocol version, authenticates, and tells the client how to route; may move the connection to a chosen shard.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::INFO,
        name: "INFO",
        syntax: "",
        wire: "(empty)",
        reply: "MAP of server, totals and per-shard statistics",
        summary: "Reports per-shard operations, connections, keys, memory and latency percentiles.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::DBSIZE,
        name: "DBSIZE",
        syntax: "",
        wire: "(empty)",
        reply: "INT live keys on this node",
        summary: "Counts the keys on every shard.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::FLUSHALL,
        name: "FLUSHALL",
        syntax: "",
        wire: "(empty)",
        reply: "OK",
        summary: "Deletes every key on every shard.",
        writes: true,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::SNAPSHOT,
        name: "SNAPSHOT",
        syntax: "",
        wire: "(empty)",
        reply: "OK once every shard has begun (or was already taking) a snapshot",
        summary: "Starts a point-in-time snapshot on every shard, in the background (like BGSAVE); the log before it is then dropped.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::LASTSAVE,
        name: "LASTSAVE",
        syntax: "",
        wire: "(empty)",
        reply: "INT Unix seconds of the oldest shard's last completed snapshot (0: a shard has none)",
        summary: "Tells when every shard last completed a snapshot, so a caller can see a SNAPSHOT finish.",
        writes: false,
        keys: KeySpec::AllShards,
    },
    CommandSpec {
        opcode: opcode::AUTH,
        name: "AUTH",
        syntax: "[username] password",
        wire: "username:bytes (empty = default) password:bytes",
        reply: "OK; WRONGPASS, answered late and later after each failure on the connection",
        summary: "Authenticates the connection as a user (the default user when none is named).",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::ACL_WHOAMI,
        name: "ACL.WHOAMI",
        syntax: "",
        wire: "(empty)",
        reply: "BYTES the connection's user",
        summary: "Names the user the connection is authenticated as.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::ACL_SETUSER,
        name: "ACL.SETUSER",
        syntax: "username [rule ...]",
        wire: "username:bytes count:uvarint rule:bytes*count",
        reply: "OK; SYNTAX naming the first bad rule (then nothing changed)",
        summary: "Creates or changes a user with Redis ACL rules (on, >password, ~pattern, +@category, -command ...).",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::ACL_DELUSER,
        name: "ACL.DELUSER",
        syntax: "username [username ...]",
        wire: "count:uvarint username:bytes*count",
        reply: "INT users deleted",
        summary: "Deletes users; their connections are closed at their next request. The default user cannot be deleted.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::ACL_LIST,
        name: "ACL.LIST",
        syntax: "",
        wire: "(empty)",
        reply: "ARRAY of TEXT, one rule line per user (passwords as #sha256)",
        summary: "Lists every user as the rules that would recreate it.",
        writes: false,
        keys: KeySpec::None,
    },
    CommandSpec {
        opcode: opcode::ACL_CAT,
        name: "ACL.CAT",
        syntax: "[category]",
        wire: "has_category:u8 [category:bytes]",
        reply: "ARRAY of TEXT: the categories, or the commands in one",
        summary: "Lists the command categories ACL rules can name, or the commands of one.",
        writes: false,
        keys: KeySpec::None,
    },
];

/// A username and password carried by HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<P = Bytes> {
    /// User to authenticate as.
    pub username: P,
    /// That user's password.
    pub password: P,
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand<P = Bytes> {
    /// PING [message]
    Ping(Option<P>),
    /// HELLO version [SHARD n]
    Hello {
        /// Protocol version the client speaks.
        version: u16,
        /// Shard the connection should be served by, if any.
        shard: Option<u16>,
        /// Credentials to authenticate with before anything else.
        auth: Option<Credentials<P>>,
    },
    /// INFO
    Info,
    /// DBSIZE
    DbSize,
    /// FLUSHALL
    FlushAll,
    /// SNAPSHOT
    Snapshot,
    /// LASTSAVE
    LastSave,
    /// AUTH [username] password
    Auth {
        /// User to authenticate as; `None` for the default user.
        username: Option<P>,
        /// The password.
        password: P,
    },
    /// ACL.WHOAMI
    AclWhoami,
    /// ACL.SETUSER username rule...
    AclSetUser {
        /// User to create or change.
        username: P,
        /// Rules, applied in order.
        rules: Vec<P>,
    },
    /// ACL.DELUSER username...
    AclDelUser(Vec<P>),
    /// ACL.LIST
    AclList,
    /// ACL.CAT [category]
    AclCat(Option<P>),
}

impl<P: Payload> AdminCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            AdminCommand::Ping(_) => opcode::PING,
            AdminCommand::Hello { .. } => opcode::HELLO,
            AdminCommand::Info => opcode::INFO,
            AdminCommand::DbSize => opcode::DBSIZE,
            AdminCommand::FlushAll => opcode::FLUSHALL,
            AdminCommand::Snapshot => opcode::SNAPSHOT,
            AdminCommand::LastSave => opcode::LASTSAVE,
            AdminCommand::Auth { .. } => opcode::AUTH,
            AdminCommand::AclWhoami => opcode::ACL_WHOAMI,
            AdminCommand::AclSetUser { .. } => opcode::ACL_SETUSER,
            AdminCommand::AclDelUser(_) => opcode::ACL_DELUSER,
            AdminCommand::AclList => opcode::ACL_LIST,
            AdminCommand::AclCat(_) => opcode::ACL_CAT,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        None
    }

    /// How the command splits across shards: none of this family's commands do.
    pub fn split(&self, _owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<AdminCommand<Bytes>>> {
        None
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            AdminCommand::Ping(message) => match message {
                Some(m) => {
                    buf.put_u8(1);
                    put_bytes(buf, m.as_ref());
                }
                None => buf.put_u8(0),
            },
            AdminCommand::Hello {
                version,
                shard,
                auth,
            } => {
                buf.put_u16_le(*version);
                put_uvarint(buf, shard.map_or(0, |s| u64::from(s) + 1));
                match auth {
                    Some(auth) => {
                        buf.put_u8(1);
                        put_bytes(buf, auth.username.as_ref());
                        put_bytes(buf, auth.password.as_ref());
                    }
                    None => buf.put_u8(0),
                }
            }
            AdminCommand::Auth { username, password } => {
                put_bytes(buf, username.as_ref().map_or(&[][..], |u| u.as_ref()));
                put_bytes(buf, password.as_ref());
            }
            AdminCommand::AclSetUser { username, rules } => {
                put_bytes(buf, username.as_ref());
                put_list(buf, rules);
            }
            AdminCommand::AclDelUser(usernames) => put_list(buf, usernames),
            AdminCommand::AclCat(category) => match category {
                Some(c) => {
                    buf.put_u8(1);
                    put_bytes(buf, c.as_ref());
                }
                None => buf.put_u8(0),
            },
            AdminCommand::Info
            | AdminCommand::DbSize
            | AdminCommand::FlushAll
            | AdminCommand::Snapshot
            | AdminCommand::LastSave
            | AdminCommand::AclWhoami
            | AdminCommand::AclList => {}
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::PING => match r.u8()? {
                0 => AdminCommand::Ping(None),
                1 => AdminCommand::Ping(Some(r.bytes()?)),
                _ => return Err(DecodeError::Invalid("has_message must be 0 or 1")),
            },
            opcode::HELLO => {
                let version = r.u16()?;
                // Shard n travels as n + 1. A number past any node's shards still reaches
                // the connection, which answers NO_SUCH_SHARD.
                let shard = match r.uvarint()? {
                    0 => None,
                    n => Some(u16::try_from(n - 1).unwrap_or(u16::MAX)),
                };
                let auth = match r.u8()? {
                    0 => None,
                    1 => Some(Credentials {
                        username: r.bytes()?,
                        password: r.bytes()?,
                    }),
                    _ => return Err(DecodeError::Invalid("has_auth must be 0 or 1")),
                };
                AdminCommand::Hello {
                    version,
                    shard,
                    auth,
                }
            }
            opcode::AUTH => {
                let username = r.bytes()?;
                let password = r.bytes()?;
                AdminCommand::Auth {
                    username: (!username.as_ref().is_empty()).then_some(username),
                    password,
                }
            }
            opcode::ACL_WHOAMI => AdminCommand::AclWhoami,
            opcode::ACL_SETUSER => AdminCommand::AclSetUser {
                username: r.bytes()?,
                rules: read_list(r, 0)?,
            },
            opcode::ACL_DELUSER => AdminCommand::AclDelUser(read_list(r, 1)?),
            opcode::ACL_LIST => AdminCommand::AclList,
            opcode::ACL_CAT => match r.u8()? {
                0 => AdminCommand::AclCat(None),
                1 => AdminCommand::AclCat(Some(r.bytes()?)),
                _ => return Err(DecodeError::Invalid("has_category must be 0 or 1")),
            },
            opcode::INFO => AdminCommand::Info,
            opcode::DBSIZE => AdminCommand::DbSize,
            opcode::FLUSHALL => AdminCommand::FlushAll,
            opcode::SNAPSHOT => AdminCommand::Snapshot,
            opcode::LASTSAVE => AdminCommand::LastSave,
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> AdminCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            AdminCommand::Ping(message) => AdminCommand::Ping(message.as_ref().map(own)),
            AdminCommand::Hello {
                version,
                shard,
                auth,
            } => AdminCommand::Hello {
                version: *version,
                shard: *shard,
                auth: auth.as_ref().map(|auth| Credentials {
                    username: own(&auth.username),
                    password: own(&auth.password),
                }),
            },
            AdminCommand::Auth { username, password } => AdminCommand::Auth {
                username: username.as_ref().map(own),
                password: own(password),
            },
            AdminCommand::AclWhoami => AdminCommand::AclWhoami,
            AdminCommand::AclSetUser { username, rules } => AdminCommand::AclSetUser {
                username: own(username),
                rules: rules.iter().map(own).collect(),
            },
            AdminCommand::AclDelUser(usernames) => {
                AdminCommand::AclDelUser(usernames.iter().map(own).collect())
            }
            AdminCommand::AclList => AdminCommand::AclList,
            AdminCommand::AclCat(category) => AdminCommand::AclCat(category.as_ref().map(own)),
            AdminCommand::Info => AdminCommand::Info,
            AdminCommand::DbSize => AdminCommand::DbSize,
            AdminCommand::FlushAll => AdminCommand::FlushAll,
            AdminCommand::Snapshot => AdminCommand::Snapshot,
            AdminCommand::LastSave => AdminCommand::LastSave,
        }
    }
}

impl<P: Payload> AdminCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::PING => {
                arity(args.len() <= 1)?;
                AdminCommand::Ping(args.first().cloned())
            }
            opcode::HELLO => parse_hello(spec, args)?,
            opcode::AUTH => {
                arity(matches!(args.len(), 1 | 2))?;
                AdminCommand::Auth {
                    username: (args.len() == 2).then(|| args[0].clone()),
                    password: args[args.len() - 1].clone(),
                }
            }
            opcode::ACL_WHOAMI => {
                arity(args.is_empty())?;
                AdminCommand::AclWhoami
            }
            opcode::ACL_SETUSER => {
                arity(!args.is_empty())?;
                AdminCommand::AclSetUser {
                    username: args[0].clone(),
                    rules: args[1..].to_vec(),
                }
            }
            opcode::ACL_DELUSER => {
                arity(!args.is_empty())?;
                AdminCommand::AclDelUser(args.to_vec())
            }
            opcode::ACL_LIST => {
                arity(args.is_empty())?;
                AdminCommand::AclList
            }
            opcode::ACL_CAT => {
                arity(args.len() <= 1)?;
                AdminCommand::AclCat(args.first().cloned())
            }
            opcode::INFO => {
                arity(args.is_empty())?;
                AdminCommand::Info
            }
            opcode::DBSIZE => {
                arity(args.is_empty())?;
                AdminCommand::DbSize
            }
            opcode::FLUSHALL => {
                arity(args.is_empty())?;
                AdminCommand::FlushAll
            }
            opcode::SNAPSHOT => {
                arity(args.is_empty())?;
                AdminCommand::Snapshot
            }
            opcode::LASTSAVE => {
                arity(args.is_empty())?;
                AdminCommand::LastSave
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}

/// Parses `HELLO [version] [SHARD n] [AUTH username password]`, options in any order.
fn parse_hello<P: Payload>(
    spec: &'static CommandSpec,
    args: &[P],
) -> Result<AdminCommand<P>, ErrorReply> {
    let mut version = PROTOCOL_VERSION;
    let mut shard = None;
    let mut auth = None;
    let mut rest = args;
    if let Some((first, tail)) = rest.split_first() {
        if !first.as_ref().eq_ignore_ascii_case(b"SHARD")
            && !first.as_ref().eq_ignore_ascii_case(b"AUTH")
        {
            version = parse_int::<u16>(first.as_ref())?;
            rest = tail;
        }
    }
    loop {
        match rest {
            [] => break,
            [word, n, tail @ ..] if word.as_ref().eq_ignore_ascii_case(b"SHARD") => {
                shard = Some(u16::try_from(parse_int::<u64>(n.as_ref())?).unwrap_or(u16::MAX));
                rest = tail;
            }
            [word, username, password, tail @ ..]
                if word.as_ref().eq_ignore_ascii_case(b"AUTH") =>
            {
                auth = Some(Credentials {
                    username: username.clone(),
                    password: password.clone(),
                });
                rest = tail;
            }
            _ => {
                arity(spec, false)?;
                break;
            }
        }
    }
    Ok(AdminCommand::Hello {
        version,
        shard,
        auth,
    })
}

/// Reads `count:uvarint item:bytes*count`, with at least `min` items.
fn read_list<P: Payload>(r: &mut Reader<P>, min: usize) -> Result<Vec<P>, DecodeError> {
    let count = r.count(1)?;
    if count < min {
        return Err(DecodeError::Invalid("at least one name is required"));
    }
    (0..count).map(|_| r.bytes()).collect()
}
