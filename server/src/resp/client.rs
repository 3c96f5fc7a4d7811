//! CLIENT and its subcommands: this connection's own settings, and LIST, KILL and UNBLOCK,
//! which every shard answers for the connections it serves.

use std::rc::Rc;

use bytes::Bytes;
use tessera_protocol::{ErrorCode, Value};

use super::{Replies, RespReader};
use crate::shard::call::Answer;
use crate::shard::clients::{self, client_id, conn_of, ClientFilter, ClientKind};
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// CLIENT's subcommands, for CLIENT HELP.
const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <client-id>, TYPE (normal|pubsub|master|replica),",
    "    USER <username>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (yes|no).",
    "LIST [options ...]",
    "    Return information about client connections. Options: TYPE (normal|pubsub|master|replica),",
    "    ID <client-id> [<client-id> ...].",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Accepted for client libraries that send it.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "HELP",
    "    Print this help.",
];

/// Answers CLIENT `args[1]` for request `id`: now, or once every shard has.
pub fn client(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    id: u32,
    args: &[&[u8]],
) {
    let sub = args[1].to_ascii_uppercase();
    let reply = match (&sub[..], args.len()) {
        (b"LIST", _) => match list_filter(&args[2..]) {
            Ok(filter) => return list(shard, out, id, filter),
            Err(error) => error,
        },
        (b"KILL", 3) => {
            let filter = ClientFilter {
                addr: Some(String::from_utf8_lossy(args[2]).into_owned()),
                ..ClientFilter::default()
            };
            return kill(shard, out, id, filter, true);
        }
        (b"KILL", n) if n >= 4 => match kill_filter(&args[2..], out) {
            Ok(filter) => return kill(shard, out, id, filter, false),
            Err(error) => error,
        },
        (b"UNBLOCK", 3 | 4) => match unblock_request(&args[2..]) {
            Ok((conn, answer)) => return unblock(shard, out, id, conn, answer),
            Err(error) => error,
        },
        (b"INFO", 2) => {
            Value::Bytes(format!("{}\n", clients::describe(out, std::time::Instant::now())).into())
        }
        (b"HELP", 2) => Value::Array(
            HELP.iter()
                .map(|line| Value::Bytes(Bytes::from_static(line.as_bytes())))
                .collect(),
        ),
        (b"REPLY", 3) => {
            let mode = args[2].to_ascii_uppercase();
            // OFF and SKIP are not answered themselves; ON is.
            reader.replies = match &mode[..] {
                b"ON" => Replies::On,
                b"OFF" => Replies::Off,
                b"SKIP" => Replies::SkipNext,
                _ => return out.reply(id, &syntax()),
            };
            if reader.replies != Replies::On {
                out.silence(id);
            }
            Value::Ok
        }
        (b"SETNAME", 3) => {
            if args[2].iter().any(|b| *b <= b' ' || *b > b'~') {
                Value::error(
                    ErrorCode::Syntax,
                    "Client names cannot contain spaces, newlines or special characters.",
                )
            } else {
                *out.client.name.borrow_mut() =
                    (!args[2].is_empty()).then(|| Bytes::copy_from_slice(args[2]));
                Value::Ok
            }
        }
        (b"GETNAME", 2) => out
            .client
            .name
            .borrow()
            .clone()
            .map_or(Value::Nil, Value::Bytes),
        (b"ID", 2) => Value::Int(client_id(out.id.get())),
        (b"SETINFO", 4) => Value::Ok,
        _ => Value::error(
            ErrorCode::Syntax,
            format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(args[1])
            ),
        ),
    };
    out.reply(id, &reply);
}

fn syntax() -> Value {
    Value::error(ErrorCode::Syntax, "syntax error")
}

fn unknown_type(word: &[u8]) -> Value {
    Value::error(
        ErrorCode::Syntax,
        format!("Unknown client type '{}'", String::from_utf8_lossy(word)),
    )
}

fn parse_id(word: &[u8]) -> Option<i64> {
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// CLIENT LIST [TYPE type] [ID id ...].
fn list_filter(options: &[&[u8]]) -> Result<ClientFilter, Value> {
    let mut filter = ClientFilter::default();
    let mut at = 0;
    while at < options.len() {
        match (&options[at].to_ascii_uppercase()[..], options.get(at + 1)) {
            (b"TYPE", Some(kind)) => {
                filter.kind = Some(ClientKind::parse(kind).ok_or_else(|| unknown_type(kind))?);
                at += 2;
            }
            (b"ID", Some(_)) => {
                let mut ids = Vec::new();
                for word in &options[at + 1..] {
                    let id = parse_id(word)
                        .filter(|id| *id > 0)
                        .ok_or_else(|| Value::error(ErrorCode::Syntax, "Invalid client ID"))?;
                    // A number no connection could have matches none.
                    ids.extend(conn_of(id));
                }
                filter.ids = Some(ids);
                at = options.len();
            }
            _ => return Err(syntax()),
        }
    }
    Ok(filter)
}

/// CLIENT KILL option value ...: Redis's filters, SKIPME yes unless told otherwise.
fn kill_filter(options: &[&[u8]], out: &ConnOutput) -> Result<ClientFilter, Value> {
    let mut filter = ClientFilter {
        asking: Some(out.id.get()),
        skip_me: true,
        ..ClientFilter::default()
    };
    let text = |word: &[u8]| String::from_utf8_lossy(word).into_owned();
    for pair in options.chunks(2) {
        let [option, value] = pair else {
            return Err(syntax());
        };
        match &option.to_ascii_uppercase()[..] {
            b"ID" => {
                let id = parse_id(value).filter(|id| *id > 0).ok_or_else(|| {
                    Value::error(ErrorCode::Syntax, "client-id should be greater than 0")
                })?;
                filter.ids = Some(conn_of(id).into_iter().collect());
            }
            b"TYPE" => {
                filter.kind = Some(ClientKind::parse(value).ok_or_else(|| unknown_type(value))?);
            }
            b"USER" => filter.user = Some(text(value)),
            b"ADDR" => filter.addr = Some(text(value)),
            b"LADDR" => filter.laddr = Some(text(value)),
            b"SKIPME" => {
                filter.skip_me = match &value.to_ascii_lowercase()[..] {
                    b"yes" => true,
                    b"no" => false,
                    _ => return Err(syntax()),
                };
            }
            _ => return Err(syntax()),
        }
    }
    Ok(filter)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: the connection, and what its wait answers.
fn unblock_request(args: &[&[u8]]) -> Result<(Option<crate::data::watch::ConnId>, Value), Value> {
    let id =
        parse_id(args[0]).ok_or_else(|| Value::error(ErrorCode::NotInteger, "not an integer"))?;
    let answer = match args.get(1).map(|mode| mode.to_ascii_uppercase()).as_deref() {
        None | Some(b"TIMEOUT") => Value::Nil,
        Some(b"ERROR") => Value::error(ErrorCode::Unblocked, "client unblocked via CLIENT UNBLOCK"),
        Some(_) => {
            return Err(Value::error(
                ErrorCode::Syntax,
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    Ok((conn_of(id), answer))
}

/// Asks every shard, then replies with `finish` of their answers in shard order.
fn ask_every_shard<T: Send + 'static>(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    work: impl Fn(&Shard) -> T + Send + Sync + Clone + 'static,
    finish: impl FnOnce(Vec<T>) -> Value + 'static,
) {
    let answers = shard.call_every(move |target: &Rc<Shard>| work(target));
    reply_when_answered(shard, out, id, answers, finish);
}

/// Replies to request `id` with `finish` of every answer, at once when all ran here, else
/// once they arrive (the connection counts the request as in flight meanwhile).
pub(crate) fn reply_when_answered<T: 'static>(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    answers: Vec<Answer<T>>,
    finish: impl FnOnce(Vec<T>) -> Value + 'static,
) {
    shard.flush();
    let answers = match Answer::all_ready(answers) {
        Ok(values) => return out.reply(id, &finish(values)),
        Err(waiting) => waiting,
    };
    out.in_flight.set(out.in_flight.get() + 1);
    let out = Rc::downgrade(out);
    tokio::task::spawn_local(async move {
        let reply = match Answer::all(answers).await {
            Some(values) => finish(values),
            None => crate::route::coordinator::unanswered(),
        };
        if let Some(out) = out.upgrade() {
            out.in_flight.set(out.in_flight.get() - 1);
            out.reply(id, &reply);
            out.wake.raise();
        }
    });
}

/// CLIENT LIST: every shard's lines, ordered by client id.
fn list(shard: &Rc<Shard>, out: &Rc<ConnOutput>, id: u32, filter: ClientFilter) {
    let filter = std::sync::Arc::new(filter);
    ask_every_shard(
        shard,
        out,
        id,
        move |target| target.client_lines(&filter),
        |per_shard| {
            let mut lines: Vec<(i64, String)> = per_shard.into_iter().flatten().collect();
            lines.sort_unstable_by_key(|(id, _)| *id);
            let mut text = String::new();
            for (_, line) in lines {
                text.push_str(&line);
                text.push('\n');
            }
            Value::Bytes(text.into())
        },
    );
}

/// CLIENT KILL: the number of connections closed, or (the old `ip:port` form) OK.
fn kill(shard: &Rc<Shard>, out: &Rc<ConnOutput>, id: u32, filter: ClientFilter, legacy: bool) {
    let filter = std::sync::Arc::new(filter);
    ask_every_shard(
        shard,
        out,
        id,
        move |target| target.kill_clients(&filter),
        move |per_shard| {
            let killed: usize = per_shard.into_iter().sum();
            match (legacy, killed) {
                (true, 0) => Value::error(ErrorCode::Syntax, "No such client"),
                (true, _) => Value::Ok,
                (false, killed) => Value::Int(killed as i64),
            }
        },
    );
}

/// CLIENT UNBLOCK: 1 if the connection was waiting in a blocking pop, else 0.
fn unblock(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    conn: Option<crate::data::watch::ConnId>,
    answer: Value,
) {
    let Some(conn) = conn else {
        return out.reply(id, &Value::Int(0));
    };
    ask_every_shard(
        shard,
        out,
        id,
        move |target| target.keyspace.borrow_mut().blocked.unblock(conn, &answer),
        |per_shard| Value::Int(i64::from(per_shard.into_iter().any(|unblocked| unblocked))),
    );
}
