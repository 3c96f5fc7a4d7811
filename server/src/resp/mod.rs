//! The RESP port: Redis clients' requests read, translated into ours and run on the same
//! shards, their replies written back in order, in RESP2 or RESP3.

pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod multi;
pub mod pubsub;
pub mod shape;

use std::rc::Rc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tessera_protocol::resp::{RequestParser, RespVersion};
use tessera_protocol::{Command, ErrorCode, ErrorReply, Value};

use crate::net::access;
use crate::net::connection::{conclude, run_command, ConnState, Next};
use crate::route::coordinator;
use crate::shard::output::{ConnOutput, Wire};
use crate::shard::Shard;
use commands::Translated;
use shape::Shape;

use crate::shard::clients::client_id;

/// One RESP connection's reading state: the parser, the id the next request gets (RESP
/// has none, so the reader numbers them), its transaction and what CLIENT REPLY chose.
pub struct RespReader {
    parser: RequestParser,
    next_id: u32,
    /// The commands queued since MULTI, while in one.
    multi: Option<multi::Queue>,
    /// The slot of the keys WATCHed, while some are.
    watch_slot: Option<u16>,
    /// What CLIENT REPLY chose.
    pub(crate) replies: Replies,
}

/// CLIENT REPLY's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replies {
    /// Every reply written.
    On,
    /// None written until CLIENT REPLY ON.
    Off,
    /// The next request's reply dropped, then on again.
    SkipNext,
}

impl RespReader {
    /// A reader refusing requests over `max_request_bytes`.
    pub fn new(max_request_bytes: usize) -> Self {
        RespReader {
            parser: RequestParser::new(max_request_bytes),
            next_id: 1,
            multi: None,
            watch_slot: None,
            replies: Replies::On,
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        // The same sequence the output's ordering expects: 1, 2, ..., skipping 0.
        self.next_id = match self.next_id.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        id
    }
}

/// Runs every whole request in `inbuf`, then sends what other shards must do.
pub(crate) fn process(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    inbuf: &mut BytesMut,
    state: &mut ConnState,
) -> Next {
    let started = Instant::now();
    let next = loop {
        if out.pending_bytes() >= shard.node.max_output_buffer_bytes {
            break Next::Drain;
        }
        let authenticated = state.session.username().is_some();
        let request = match reader.parser.next_request(inbuf, authenticated) {
            Ok(Some(request)) => request,
            Ok(None) => break Next::Continue,
            Err(error) => {
                coordinator::count_bad_request(shard);
                let id = reader.take_id();
                out.reply(id, &Value::error(ErrorCode::Protocol, error.0));
                break Next::Close("protocol error");
            }
        };
        let id = reader.take_id();
        // The words borrow the read buffer: no argument is copied or reference-counted
        // on its way to the shard.
        let mut on_stack: [&[u8]; WORDS_ON_STACK] = [&[]; WORDS_ON_STACK];
        let spilled: Vec<&[u8]>;
        let args: &[&[u8]] = if request.word_count() <= WORDS_ON_STACK {
            for (slot, word) in on_stack.iter_mut().zip(request.words(inbuf)) {
                *slot = word;
            }
            &on_stack[..request.word_count()]
        } else {
            spilled = request.words(inbuf).collect();
            &spilled
        };
        let next = run(shard, out, reader, id, args, started, state);
        inbuf.advance(request.len());
        reader.parser.give_back(request);
        out.client
            .queued
            .set(reader.multi.as_ref().map(multi::Queue::queued));
        if let Some(next) = next {
            break next;
        }
    };
    shard.flush();
    next
}

/// Runs one request: the connection's own commands here, the rest as ours.
fn run(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    id: u32,
    args: &[&[u8]],
    started: Instant,
    state: &mut ConnState,
) -> Option<Next> {
    let mut spelled = [0u8; NAME_ON_STACK];
    let name = upper_case(args[0], &mut spelled);
    let name: &str = &name;
    let container = matches!(
        name,
        "CLIENT"
            | "CONFIG"
            | "CLUSTER"
            | "COMMAND"
            | "PUBSUB"
            | "FUNCTION"
            | "OBJECT"
            | "ACL"
            | "SLOWLOG"
            | "LATENCY"
    );
    let sub = args.get(1).filter(|_| container).map(|sub| &sub[..]);
    out.client.note_command(args[0], sub);
    match reader.replies {
        Replies::On => {}
        Replies::Off => out.silence(id),
        Replies::SkipNext => {
            out.silence(id);
            reader.replies = Replies::On;
        }
    }
    let reply = |value: &Value| out.reply(id, value);
    if reader.multi.is_some() && !multi::is_control(name) {
        multi::queue(shard, out, reader, (id, name, args), state);
        return None;
    }
    let known = commands::known(name);
    if let Some(refusal) = commands::refusal_for(known, args) {
        reply(&refusal);
        return None;
    }
    let open = state.session.username().is_some();
    if !open && !matches!(name, "AUTH" | "HELLO" | "QUIT") {
        reply(&Value::error(ErrorCode::NoAuth, "authentication required"));
        return None;
    }
    if let Some(refusal) = pubsub::refusal_while_subscribed(out, name) {
        reply(&refusal);
        return None;
    }
    let acl = &shard.node.acl;
    let administers = match name {
        "CONFIG" => true,
        "CLIENT" => args.get(1).is_some_and(|sub| {
            ["LIST", "KILL", "UNBLOCK"]
                .iter()
                .any(|admin| sub.eq_ignore_ascii_case(admin.as_bytes()))
        }),
        _ => false,
    };
    if administers {
        let what = out.client.last_command.borrow().clone();
        if let Err(refusal) = state.session.check_admin(acl, &what) {
            reply(&refusal.to_value());
            return None;
        }
    }
    match name {
        "PING" if args.len() > 2 => reply(&commands::wrong_arity(args[0])),
        "PING" if pubsub::subscribed_pong(out, args.get(1)).is_some() => {
            reply(&pubsub::subscribed_pong(out, args.get(1)).unwrap_or(Value::Nil));
        }
        "PING" => match args.get(1) {
            Some(message) => reply(&Value::Bytes(Bytes::copy_from_slice(message))),
            None => out.reply_status(id, "PONG"),
        },
        "ECHO" => reply(&Value::Bytes(Bytes::copy_from_slice(args[1]))),
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" | "QUIT" => {
            return multi::control(shard, out, reader, (id, name, args), started, state);
        }
        "SELECT" => reply(&match std::str::from_utf8(args[1])
            .ok()
            .and_then(|n| n.parse::<i64>().ok())
        {
            Some(0) => Value::Ok,
            Some(_) => Value::error(ErrorCode::Syntax, "DB index is out of range"),
            None => Value::error(ErrorCode::NotInteger, "not an integer"),
        }),
        "AUTH" => {
            let (user, password) = match args {
                [_, password] => (None, password),
                [_, user, password] => (Some(&user[..]), password),
                _ => {
                    reply(&Value::error(ErrorCode::Syntax, "syntax error"));
                    return None;
                }
            };
            let answer = access::authenticate(acl, &mut state.session, user, password);
            out.client.note_user(state.session.username());
            return conclude(shard, reply, answer);
        }
        "HELLO" => return hello(shard, out, id, args, state),
        "CLIENT" => client::client(shard, out, reader, id, args),
        "COMMAND" => reply(&command(args)),
        "CLUSTER" => reply(&cluster::cluster(shard.node.cluster.as_deref(), args)),
        // Slots move whole under a pause (TRYAGAIN meanwhile), so no slot is ever half
        // here: there is no ASK to follow, and ASKING has nothing to allow.
        "ASKING" => reply(&Value::Ok),
        "CONFIG" => reply(&config::config(&shard.node, args)),
        "FUNCTION" => reply(&config::function(args)),
        "PUBSUB" => reply(&pubsub::introspect(&shard.node.subscriptions, args)),
        "TIME" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            reply(&Value::Array(vec![
                Value::Bytes(now.as_secs().to_string().into()),
                Value::Bytes(now.subsec_micros().to_string().into()),
            ]));
        }
        _ => return run_ours(shard, out, (id, name, args), known, started, state),
    }
    None
}

/// Command names up to this long are upper-cased without allocating.
const NAME_ON_STACK: usize = 32;

/// `raw` in upper case: in `buf` when it is short ASCII, as every command name is.
fn upper_case<'b>(raw: &[u8], buf: &'b mut [u8; NAME_ON_STACK]) -> std::borrow::Cow<'b, str> {
    if raw.len() <= NAME_ON_STACK && raw.is_ascii() {
        let spelled = &mut buf[..raw.len()];
        spelled.copy_from_slice(raw);
        spelled.make_ascii_uppercase();
        if let Ok(name) = std::str::from_utf8(spelled) {
            return std::borrow::Cow::Borrowed(name);
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(raw).to_ascii_uppercase())
}

/// Runs a request through our own parser, checks and shards.
fn run_ours(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    (id, name, args): (u32, &str, &[&[u8]]),
    known: commands::Known,
    started: Instant,
    state: &mut ConnState,
) -> Option<Next> {
    let (words, shape) = match commands::translate(name, args) {
        Translated::Native { words, shape } => (words, shape),
        Translated::Refused(error) => {
            out.reply(id, &error);
            return None;
        }
    };
    // Most commands keep their name: the name was looked up already.
    let parsed = match known.ours {
        Some(spec) if std::ptr::eq(words[0], args[0]) => Command::parse_for(spec, &words[1..]),
        _ => Command::parse_words(&words[..]),
    };
    let command = match parsed {
        Ok(command) => command,
        Err(error) => {
            coordinator::count_bad_request(shard);
            out.reply(id, &redis_parse_error(name, args, error));
            return None;
        }
    };
    let shape = match shape {
        None if pubsub::is_subscription(name) => {
            out.unsilence(id);
            Some(Shape::Frames(
                pubsub::confirmations(out, name, &args[1..]).into_boxed_slice(),
            ))
        }
        shape => shape,
    };
    if let Some(shape) = shape {
        out.expect_shape(id, shape);
    }
    let request_bytes = words.iter().map(|word| word.len()).sum();
    shard.diagnostics.request_bytes.set(request_bytes);
    run_command(shard, out, id, command, started, state, false, Some(args))
}

/// Requests of up to this many words hold their word list on the stack.
const WORDS_ON_STACK: usize = 8;

/// Our parser's refusal in the words Redis uses for the same mistake.
fn redis_parse_error(name: &str, args: &[&[u8]], error: ErrorReply) -> Value {
    match error.known_code() {
        Some(ErrorCode::UnknownCommand) => commands::unknown(args),
        Some(ErrorCode::Syntax) if commands::arity(name).is_some() => {
            let message = error.message.to_ascii_lowercase();
            if message.contains("integer") {
                Value::error(ErrorCode::NotInteger, message)
            } else if message.contains("float") || message.contains("not a number") {
                Value::error(ErrorCode::NotFloat, message)
            } else if message.starts_with("wrong number of arguments") || message.contains("syntax")
            {
                Value::error(ErrorCode::Syntax, "syntax error")
            } else {
                // Already Redis's words (`numkeys should be greater than 0`).
                Value::Error(error)
            }
        }
        _ => Value::Error(error),
    }
}

/// HELLO [protover [AUTH username password] [SETNAME name]]: switches RESP version and
/// answers what the connection is talking to.
fn hello(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    args: &[&[u8]],
    state: &mut ConnState,
) -> Option<Next> {
    let reply = |value: &Value| out.reply(id, value);
    let version = match args.get(1).map(|v| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
    }) {
        None => None,
        Some(Some(2)) => Some(RespVersion::Resp2),
        Some(Some(3)) => Some(RespVersion::Resp3),
        Some(Some(_)) => {
            reply(&Value::error(ErrorCode::UnsupportedVersion, "unsupported"));
            return None;
        }
        Some(None) => {
            reply(&Value::error(
                ErrorCode::Syntax,
                "Protocol version is not an integer or out of range",
            ));
            return None;
        }
    };
    let mut at = 2;
    let mut name = None;
    while at < args.len() {
        let option = args[at].to_ascii_uppercase();
        match (&option[..], args.get(at + 1), args.get(at + 2)) {
            (b"AUTH", Some(user), Some(password)) => {
                let answer =
                    access::authenticate(&shard.node.acl, &mut state.session, Some(user), password);
                if answer.pause.is_some() {
                    return conclude(shard, reply, answer);
                }
                at += 3;
            }
            (b"SETNAME", Some(given), _) => {
                name = Some(Bytes::copy_from_slice(given));
                at += 2;
            }
            _ => {
                let option = String::from_utf8_lossy(args[at]).into_owned();
                reply(&Value::error(
                    ErrorCode::Syntax,
                    format!("Syntax error in HELLO option '{option}'"),
                ));
                return None;
            }
        }
    }
    if state.session.username().is_none() {
        reply(&Value::error(ErrorCode::NoAuth, "authentication required"));
        return None;
    }
    if name.is_some() {
        *out.client.name.borrow_mut() = name;
    }
    out.client.note_user(state.session.username());
    let version = version.unwrap_or(match out.wire.get() {
        Wire::Resp(version) => version,
        Wire::Native => RespVersion::Resp2,
    });
    let proto = if version == RespVersion::Resp3 { 3 } else { 2 };
    let mode = if shard.node.cluster.is_some() {
        "cluster"
    } else {
        "standalone"
    };
    let text = |t: &str| Value::Bytes(Bytes::copy_from_slice(t.as_bytes()));
    // The reply already speaks the version asked for, as Redis's does.
    let hello = Value::Map(vec![
        (text("server"), text("tessera")),
        (text("version"), text(env!("CARGO_PKG_VERSION"))),
        (text("proto"), Value::Int(proto)),
        (text("id"), Value::Int(client_id(out.id.get()))),
        (text("mode"), text(mode)),
        (text("role"), text("master")),
        (text("modules"), Value::Array(vec![])),
    ]);
    out.reply_switching(id, &hello, version);
    None
}

/// COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS: what redis-cli asks to
/// offer hints and what cluster clients ask to find keys.
fn command(args: &[&[u8]]) -> Value {
    let entry = |name: &str, arity: i32| {
        let (first, last) = key_positions(name);
        Value::Array(vec![
            Value::Bytes(name.to_ascii_lowercase().into()),
            Value::Int(i64::from(arity)),
            Value::Array(vec![]),
            Value::Int(first),
            Value::Int(last),
            Value::Int(i64::from(first > 0)),
        ])
    };
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    match sub.as_deref() {
        None => Value::Array(commands::all().map(|(n, a)| entry(n, a)).collect()),
        Some(b"COUNT") => Value::Int(commands::count() as i64),
        Some(b"DOCS") => Value::Array(vec![]),
        Some(b"INFO") => Value::Array(
            args[2..]
                .iter()
                .map(|name| {
                    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
                    commands::arity(&name).map_or(Value::Nil, |arity| entry(&name, arity))
                })
                .collect(),
        ),
        Some(_) => Value::error(
            ErrorCode::Syntax,
            format!(
                "unknown subcommand '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(args[1])
            ),
        ),
    }
}

/// COMMAND's first and last key positions (Redis's `-1`: to the end).
fn key_positions(name: &str) -> (i64, i64) {
    match name {
        "DEL" | "UNLINK" | "EXISTS" | "MGET" => (1, -1),
        "MSET" | "MSETNX" => (1, -1),
        "PING" | "ECHO" | "SELECT" | "AUTH" | "HELLO" | "QUIT" | "TIME" | "CLIENT" | "COMMAND"
        | "MULTI" | "EXEC" | "DISCARD" | "UNWATCH" | "SUBSCRIBE" | "UNSUBSCRIBE" | "PSUBSCRIBE"
        | "PUNSUBSCRIBE" | "PUBLISH" | "PUBSUB" | "RANDOMKEY" | "DBSIZE" | "FLUSHALL"
        | "FLUSHDB" | "INFO" | "WAIT" | "READONLY" | "READWRITE" | "CONFIG" | "FUNCTION"
        | "KEYS" | "SCAN" | "CLUSTER" | "ASKING" | "SLOWLOG" | "LATENCY" | "ACL" => (0, 0),
        "RENAME" | "RENAMENX" | "LMOVE" | "RPOPLPUSH" | "SMOVE" | "BLMOVE" | "BRPOPLPUSH"
        | "GEOSEARCHSTORE" => (1, 2),
        "BLPOP" | "BRPOP" | "BZPOPMIN" | "BZPOPMAX" => (1, -2),
        "SINTER" | "SUNION" | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" | "WATCH" => {
            (1, -1)
        }
        _ => (1, 1),
    }
}
