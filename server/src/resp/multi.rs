//! MULTI/EXEC/DISCARD and WATCH/UNWATCH over RESP: commands queued on the connection and
//! sent at EXEC as one TX, which runs whole on the shard owning the one slot its keys
//! (and the watched keys) share.

use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tessera_cluster::{key_slot, shard_of_slot};
use tessera_protocol::commands::transactions::refusal_in_tx;
use tessera_protocol::commands::TxCommand;
use tessera_protocol::{Command, ErrorCode, Value};

use super::commands::{self, Translated};
use super::shape::Shape;
use super::RespReader;
use crate::net::connection::{run_command, ConnState, Next};
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// The commands a connection has queued since MULTI.
#[derive(Default)]
pub struct Queue {
    commands: Vec<Command>,
    shapes: Vec<Option<Shape>>,
    /// A command was refused while queuing: EXEC runs nothing.
    failed: bool,
    /// The slot every key so far is in.
    slot: Option<u16>,
}

impl Queue {
    /// How many commands are queued, for CLIENT LIST's `multi=`.
    pub fn queued(&self) -> u32 {
        u32::try_from(self.commands.len()).unwrap_or(u32::MAX)
    }
}

/// Whether `name` is answered by the transaction machinery itself rather than queued.
pub fn is_control(name: &str) -> bool {
    matches!(
        name,
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" | "QUIT"
    )
}

/// CROSSSLOT, as Redis Cluster answers keys of several slots.
fn cross_slot() -> Value {
    Value::error(
        ErrorCode::CrossShard,
        "the keys of a transaction must share a slot",
    )
}

/// Runs MULTI, EXEC, DISCARD, WATCH or UNWATCH.
pub(crate) fn control(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    (id, name, args): (u32, &str, &[&[u8]]),
    started: Instant,
    state: &mut ConnState,
) -> Option<Next> {
    let reply = |value: &Value| out.reply(id, value);
    let error = |message: &str| Value::error(ErrorCode::Syntax, message);
    match name {
        "MULTI" if reader.multi.is_some() => reply(&error("MULTI calls can not be nested")),
        "MULTI" => {
            reader.multi = Some(Queue {
                slot: reader.watch_slot,
                ..Queue::default()
            });
            reply(&Value::Ok);
        }
        "DISCARD" => match reader.multi.take() {
            None => reply(&error("DISCARD without MULTI")),
            Some(_) => {
                end_watch(shard, out, reader);
                reply(&Value::Ok);
            }
        },
        "EXEC" => {
            let Some(queue) = reader.multi.take() else {
                reply(&error("EXEC without MULTI"));
                return None;
            };
            if queue.failed {
                end_watch(shard, out, reader);
                reply(&Value::error(
                    ErrorCode::Syntax,
                    "EXECABORT Transaction discarded because of previous errors.",
                ));
                return None;
            }
            return exec(shard, out, reader, id, queue, started, state);
        }
        "WATCH" if reader.multi.is_some() => reply(&error("WATCH inside MULTI is not allowed")),
        "WATCH" => watch(shard, out, reader, (id, &args[1..])),
        "UNWATCH" => {
            end_watch(shard, out, reader);
            reply(&Value::Ok);
        }
        _ => {
            reader.multi = None;
            end_watch(shard, out, reader);
            reply(&Value::Ok);
            return Some(Next::Close("client quit"));
        }
    }
    None
}

/// Queues one command after MULTI, or refuses it (and so the whole transaction).
pub(crate) fn queue(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    (id, name, args): (u32, &str, &[&[u8]]),
    state: &mut ConnState,
) {
    let Some(queue) = reader.multi.as_mut() else {
        return;
    };
    match queueable(shard, queue, name, args, state) {
        Ok((command, shape)) => {
            queue.commands.push(command);
            queue.shapes.push(shape);
            out.reply_status(id, "QUEUED");
        }
        Err(refusal) => {
            queue.failed = true;
            out.reply(id, &refusal);
        }
    }
}

/// The command a queued request becomes, checked as it would be at EXEC.
fn queueable(
    shard: &Shard,
    queue: &mut Queue,
    name: &str,
    args: &[&[u8]],
    state: &mut ConnState,
) -> Result<(Command, Option<Shape>), Value> {
    if let Some(refusal) = commands::arity_refusal(name, args) {
        return Err(refusal);
    }
    let (words, shape) = match name {
        "ECHO" => (vec![&b"PING"[..], args[1]].into(), None),
        // SAVE and SHUTDOWN are Redis's, refused in a transaction as Redis refuses them.
        "SELECT" | "CLIENT" | "COMMAND" | "CONFIG" | "FUNCTION" | "TIME" | "AUTH" | "HELLO"
        | "SAVE" | "SHUTDOWN" => {
            return Err(not_in_tx());
        }
        _ => match commands::translate(name, args) {
            Translated::Native { words, shape } => (words, shape),
            Translated::Refused(refusal) => return Err(refusal),
        },
    };
    let command = Command::parse_words(&words[..])
        .map_err(|error| super::redis_parse_error(name, args, error))?;
    if refusal_in_tx(command.spec()).is_some() {
        return Err(not_in_tx());
    }
    if let Err(refusal) = state.session.check(&shard.node.acl, &command) {
        return Err(crate::net::access::Answer::refused(&refusal).reply);
    }
    let mut same_slot = true;
    command.for_each_key(&mut |key| {
        let slot = key_slot(key);
        same_slot &= *queue.slot.get_or_insert(slot) == slot;
    });
    if !same_slot {
        return Err(cross_slot());
    }
    // Queued commands outlive the request's bytes.
    Ok((command.to_owned_bytes(), shape))
}

fn not_in_tx() -> Value {
    Value::error(
        ErrorCode::Syntax,
        "Command not allowed inside a transaction",
    )
}

/// Sends the queued commands as one TX; it answers nil if a watched key changed.
fn exec(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    id: u32,
    queue: Queue,
    started: Instant,
    state: &mut ConnState,
) -> Option<Next> {
    out.expect_shape(id, Shape::Each(queue.shapes.into_boxed_slice()));
    let tx = Command::Transactions(TxCommand::Tx(queue.commands));
    let mut body = BytesMut::new();
    tx.encode(&mut body);
    let body = body.freeze();
    shard.diagnostics.request_bytes.set(body.len());
    state.tx_watch = reader.watch_slot.take();
    match Command::<&[u8]>::decode(&body[..]) {
        Ok(command) => {
            let words = [&b"EXEC"[..]];
            run_command(shard, out, id, command, started, state, false, Some(&words))
        }
        Err(error) => {
            state.tx_watch = None;
            out.reply(id, &Value::error(ErrorCode::Internal, error.to_string()));
            None
        }
    }
}

/// WATCH key...: registers the connection with the keys' owner, once they share a slot
/// with each other and with the keys watched before; answered once the owner holds the
/// watches, so a write another client makes after the OK always spoils the transaction.
fn watch(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut RespReader,
    (id, keys): (u32, &[&[u8]]),
) {
    let mut slot = reader.watch_slot;
    for key in keys {
        let key_slot = key_slot(key);
        if *slot.get_or_insert(key_slot) != key_slot {
            return out.reply(id, &cross_slot());
        }
    }
    let Some(slot) = slot else {
        return out.reply(id, &Value::Ok);
    };
    reader.watch_slot = Some(slot);
    let conn = out.id.get();
    let keys: Vec<Bytes> = keys.iter().map(|key| Bytes::copy_from_slice(key)).collect();
    let registered = shard.call(
        shard_of_slot(slot, shard.shards()),
        move |owner: &Rc<Shard>| {
            let mut keyspace = owner.keyspace.borrow_mut();
            for key in &keys {
                keyspace.tx_watches.watch(conn, key);
            }
        },
    );
    super::client::reply_when_answered(shard, out, id, vec![registered], |_| Value::Ok);
}

/// Ends the connection's watches (UNWATCH, DISCARD, a refused EXEC, closing).
pub fn end_watch(shard: &Rc<Shard>, out: &ConnOutput, reader: &mut RespReader) {
    let Some(slot) = reader.watch_slot.take() else {
        return;
    };
    let conn = out.id.get();
    shard.submit(
        shard_of_slot(slot, shard.shards()),
        move |owner: &Rc<Shard>| {
            owner.keyspace.borrow_mut().tx_watches.end(conn);
        },
    );
}
