//! Coordinator: routes each request to the shard that owns its keys, splits multi-key
//! requests by owner, gathers the parts, and writes the reply to the connection.
//!
//! Every trip to another shard is a `Shard::call` whose closure runs a family operation
//! there and answers its typed result; the gather waits for those answers in a task and
//! renders the reply here. Calls only ever go from the coordinating shard to owners, so
//! they never form a cycle.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tessera_cluster::{shard_for_key, shard_of_slot};
use tessera_protocol::{
    AdminCommand, Combine, Command, ErrorCode, InventoryCommand, KeySpec, PresenceCommand, Split,
    Value, COMMANDS,
};

use crate::clock;
use crate::data::timeline::merge;
use crate::data::watch::ConnId;
use crate::diagnostics;
use crate::families::timelines::page_value;
use crate::families::{self, Part};
use crate::route::cluster::Verdict;
use crate::route::geo::{self as geo_route, Start, Task};
use crate::shard::call::Answer;
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// Most users one connection may watch.
pub const MAX_WATCHES_PER_CONNECTION: usize = 100_000;

/// Runs one decoded request from `conn`: locally when this shard owns it, else by call.
pub fn dispatch(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command: &Command<&[u8]>,
    started: Instant,
) {
    dispatch_watched(shard, conn, request_id, command, started, None);
}

/// As `dispatch`, for a TX that runs only if none of the keys `watch` names (its
/// connection, and the slot of the keys it watches) has changed since it watched them;
/// either way the watches end.
pub fn dispatch_watched(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command: &Command<&[u8]>,
    started: Instant,
    tx_watch: Option<(ConnId, u16)>,
) {
    let index = command.table_index();
    let request = Request {
        id: request_id,
        index,
        started,
        now: clock::now_millis(),
        watcher: tx_watch.map(|(conn, _)| conn),
    };
    let slot = match super::cluster::check(shard, command, conn.reads_replica.get()) {
        Verdict::Run { slot } => slot,
        Verdict::Refuse(refusal) => return request.complete(shard, conn, &refusal),
        Verdict::AcrossNodes => {
            let task = super::cluster::across_nodes(shard.clone(), command.to_owned_bytes());
            return run_task(shard, conn, request, Box::pin(task));
        }
    };
    if COMMANDS[index].writes {
        if let Some(refusal) = shard.write_refusal() {
            return request.complete(shard, conn, &refusal);
        }
        conn.wrote.set(true);
    }
    if let Command::PubSub(pubsub) = command {
        return super::pubsub::publish_or_subscribe(shard, conn, request, pubsub);
    }
    if let Command::Geo(geo) = command {
        if geo_route::is_routed(geo) {
            // A migration waits for geo commands begun before its slots paused.
            let entered = shard.node.cluster.is_some().then(|| shard.fence.enter());
            match geo_route::start(shard, geo, false) {
                Start::Done(reply) => request.complete(shard, conn, &reply),
                Start::Later(task) => run_task(
                    shard,
                    conn,
                    request,
                    Box::pin(async move {
                        let _entered = entered;
                        task.await
                    }),
                ),
                Start::Forward(owner) => {
                    let owned = geo.to_owned_bytes();
                    let answer = shard.call_later(owner, move |target: &Rc<Shard>| {
                        geo_route::run_forwarded(target.clone(), owned)
                    });
                    match entered {
                        None => await_one(shard, conn, request, answer),
                        Some(entered) => run_task(
                            shard,
                            conn,
                            request,
                            Box::pin(async move {
                                let _entered = entered;
                                answer.await.unwrap_or_else(unanswered)
                            }),
                        ),
                    }
                }
            }
            return;
        }
    }
    match COMMANDS[index].keys {
        KeySpec::None | KeySpec::Area => {
            let reply = match command {
                Command::Admin(AdminCommand::Ping(Some(message))) => {
                    Value::Bytes(Bytes::copy_from_slice(message))
                }
                Command::Admin(AdminCommand::Ping(None)) => Value::text("PONG"),
                _ => Value::error(ErrorCode::Syntax, "HELLO is answered by the connection"),
            };
            request.complete(shard, conn, &reply);
        }
        KeySpec::OneSlot if !one_slot(command) => request.complete(
            shard,
            conn,
            &Value::error(
                ErrorCode::CrossShard,
                "the keys must share a slot: give them one {hash tag}",
            ),
        ),
        KeySpec::Single | KeySpec::OneSlot => {
            // The cluster check hashed the key already.
            let owner = match (slot, command.single_key()) {
                (Some(slot), Some(_)) => shard_of_slot(slot, shard.shards()),
                (None, Some(key)) => shard_for_key(key, shard.shards()),
                // A TX runs where its keys are, or else where its watched keys are.
                (_, None) => match first_slot(command).or(tx_watch.map(|(_, slot)| slot)) {
                    Some(slot) => shard_of_slot(slot, shard.shards()),
                    None => shard.id,
                },
            };
            if let Command::Blocking(blocking) = command {
                if blocking.block_ms().is_some() {
                    return super::blocking::block(shard, conn, request, command, owner);
                }
            }
            if owner == shard.id {
                run_here(shard, conn, request, command);
            } else {
                forward(shard, conn, request, command, owner);
            }
        }
        KeySpec::Many | KeySpec::Pairs => split_keys(shard, conn, request, command),
        KeySpec::Watch => watch(shard, conn, request, command),
        KeySpec::AllShards => super::every_shard::every_shard(shard, conn, request, command),
    }
}

/// The slot of the first key a command names.
fn first_slot(command: &Command<&[u8]>) -> Option<u16> {
    let mut first = None;
    command.for_each_key(&mut |key| {
        first.get_or_insert_with(|| tessera_cluster::key_slot(key));
    });
    first
}

/// Whether every key a command names is in one slot.
fn one_slot(command: &Command<&[u8]>) -> bool {
    let mut first = None;
    let mut same = true;
    command.for_each_key(&mut |key| {
        let slot = tessera_cluster::key_slot(key);
        same &= *first.get_or_insert(slot) == slot;
    });
    same
}

/// The facts about one request that its reply needs.
#[derive(Clone, Copy)]
pub(super) struct Request {
    pub(super) id: u32,
    pub(super) index: usize,
    pub(super) started: Instant,
    pub(super) now: u64,
    /// The connection whose watches decide whether a TX runs.
    pub(super) watcher: Option<ConnId>,
}

impl Request {
    /// Writes the reply and records the request's latency.
    pub(super) fn complete(&self, shard: &Shard, conn: &ConnOutput, reply: &Value) {
        complete(shard, conn, self.id, self.index, self.started, reply);
    }

    /// As `complete`, for a request that ran as a task: all its time since its batch
    /// began is its own.
    fn complete_waited(&self, shard: &Shard, conn: &ConnOutput, reply: &Value) {
        finish(
            shard,
            conn,
            (self.id, self.index, self.started),
            reply,
            true,
        );
    }
}

/// Sends a whole request to the one shard that must run it.
fn forward(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    command: &Command<&[u8]>,
    owner: u16,
) {
    let owned = command.to_owned_bytes();
    let (now, watcher) = (request.now, request.watcher);
    let answer = shard.call(owner, move |target: &Rc<Shard>| {
        if let Some(watcher) = watcher {
            if target.keyspace.borrow_mut().tx_watches.end(watcher) {
                return Value::Nil;
            }
        }
        if owned.spec().writes {
            if let Some(refusal) = target.write_refusal() {
                return refusal;
            }
        }
        if let Some(refusal) = target.make_room(owned.spec(), now) {
            return refusal;
        }
        target.with_keyspace(|keyspace| families::apply(keyspace, &owned, now).into_value())
    });
    await_one(shard, conn, request, answer);
}

/// MGET, MSET, DEL, EXISTS, DEDUP.MULTI, TL.FANOUT, TL.MERGE, PRESENCE.GET and carts: split
/// by owner as their family declares, each part run on its owner, the parts combined.
fn split_keys(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    command: &Command<&[u8]>,
) {
    let shards = shard.shards();
    let Some(split) = command.split(&|key| shard_for_key(key, shards)) else {
        return run_here(shard, conn, request, command);
    };
    let owners: Vec<u16> = split.owners().collect();
    if owners == [shard.id] {
        // Every key is ours: no split, no gather.
        return run_here(shard, conn, request, command);
    }
    if let Command::Inventory(InventoryCommand::ReserveMulti { .. }) = command {
        // A cart is all-or-nothing only on one shard; across shards the client runs the
        // saga (reserve each part, release the others if one fails).
        return match owners[..] {
            [owner] => forward(shard, conn, request, command, owner),
            _ => request.complete(
                shard,
                conn,
                &Value::error(
                    ErrorCode::CrossShard,
                    "the SKUs of one INV.RESERVE.MULTI must share a shard: give them one {hash tag}",
                ),
            ),
        };
    }
    let now = request.now;
    let Split { parts, combine } = split;
    let answers = parts
        .into_iter()
        .map(|(owner, part)| {
            shard.call(owner, move |target: &Rc<Shard>| {
                run_part_at(target, &part, now)
            })
        })
        .collect();
    gather(shard, conn, request, answers, move |parts| {
        combine_parts(&combine, parts)
    });
}

/// Runs one part on the shard owning its keys, unless it writes and that shard's log
/// cannot be written.
pub(super) fn run_part_at(target: &Shard, part: &Command, now: u64) -> Part {
    if part.spec().writes {
        if let Some(Value::Error(refusal)) = target.write_refusal() {
            return Part::Failed(refusal);
        }
    }
    if let Some(Value::Error(refusal)) = target.make_room(part.spec(), now) {
        return Part::Failed(refusal);
    }
    target.with_keyspace(|keyspace| families::run_part(keyspace, part, now))
}

/// The reply of a split request from its parts' answers.
pub(super) fn combine_parts(combine: &Combine, parts: Vec<Part>) -> Value {
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut total = 0;
    for part in parts {
        match part {
            Part::Failed(error) => return Value::Error(error),
            Part::Items(values) => items.push(values.render()),
            Part::Count(count) => total += count,
            Part::Page(page) => pages.push(page),
            Part::Done => {}
        }
    }
    match combine {
        Combine::Positions { positions, len } => {
            Value::Array(Combine::place(positions, *len, items, Value::Nil))
        }
        Combine::Sum => Value::Int(total),
        Combine::AllOk => Value::Ok,
        Combine::Merge { limit } => page_value(&merge(pages, *limit)),
    }
}

/// Runs a command whose keys this shard owns and replies at once, writing a stored value
/// straight from the keyspace into the output buffer.
fn run_here(shard: &Shard, conn: &ConnOutput, request: Request, command: &Command<&[u8]>) {
    if let Some(refusal) = shard.make_room(command.spec(), request.now) {
        return request.complete(shard, conn, &refusal);
    }
    let mut keyspace = shard.keyspace.borrow_mut();
    let reply = match request.watcher {
        Some(watcher) if keyspace.tx_watches.end(watcher) => families::Reply::Value(Value::Nil),
        _ => families::apply(&mut keyspace, command, request.now),
    };
    let before = conn.pending_bytes();
    conn.reply_with(request.id, &reply);
    let reply_bytes = conn.pending_bytes().saturating_sub(before);
    shard.completed(request.index, request.started, reply.is_error());
    drop(reply);
    let pushes = keyspace.watches.has_pushes() || !keyspace.notices.is_empty();
    drop(keyspace);
    if pushes {
        shard.route_pushes();
    }
    if shard
        .diagnostics
        .worth_timing(shard, request.index, reply_bytes)
    {
        let done = diagnostics::Completion {
            request_id: request.id,
            index: request.index,
            started: request.started,
            now: Instant::now(),
            waited: false,
            large_reply: reply_bytes >= diagnostics::latency::LARGE_REPLY_BYTES,
        };
        shard.diagnostics.observe(shard, conn, &done);
    }
}

/// PRESENCE.WATCH and PRESENCE.UNWATCH: registers (or removes) this connection with each
/// user's owner; the connection remembers what it watches so closing can undo it all.
fn watch(shard: &Rc<Shard>, conn: &Rc<ConnOutput>, request: Request, command: &Command<&[u8]>) {
    let own = |users: &[&[u8]]| -> Vec<Bytes> {
        users.iter().map(|u| Bytes::copy_from_slice(u)).collect()
    };
    let (users, watching) = match command {
        Command::Presence(PresenceCommand::Watch(users)) => (own(users), true),
        Command::Presence(PresenceCommand::Unwatch(users)) if users.is_empty() => {
            (conn.watching.borrow().iter().cloned().collect(), false)
        }
        Command::Presence(PresenceCommand::Unwatch(users)) => (own(users), false),
        _ => {
            let refusal = Value::error(ErrorCode::Internal, "not a watch command");
            return request.complete(shard, conn, &refusal);
        }
    };
    {
        let mut set = conn.watching.borrow_mut();
        if watching {
            let new = users.iter().filter(|u| !set.contains(*u)).count();
            if set.len() + new > MAX_WATCHES_PER_CONNECTION {
                drop(set);
                let refusal = Value::error(
                    ErrorCode::TooManyElements,
                    format!("a connection may watch at most {MAX_WATCHES_PER_CONNECTION} users"),
                );
                return request.complete(shard, conn, &refusal);
            }
            set.extend(users.iter().cloned());
        } else {
            for user in &users {
                set.remove(user);
            }
        }
    }
    if users.is_empty() {
        return request.complete(shard, conn, &Value::Int(0));
    }
    let whole = if watching {
        PresenceCommand::Watch(users)
    } else {
        PresenceCommand::Unwatch(users)
    };
    let shards = shard.shards();
    let Some(Split { parts, combine }) = whole.split(&|user| shard_for_key(user, shards)) else {
        return request.complete(shard, conn, &Value::Int(0));
    };
    let (from, now) = (conn.id.get(), request.now);
    let answers = parts
        .into_iter()
        .map(|(owner, part)| {
            shard.call(owner, move |target: &Rc<Shard>| {
                target.with_keyspace(|keyspace| match &part {
                    PresenceCommand::Watch(users) => {
                        let rows = families::watch::watch(keyspace, from, users, now);
                        Part::Items(families::Items::Watched(rows))
                    }
                    PresenceCommand::Unwatch(users) => {
                        Part::Count(families::watch::unwatch(keyspace, from, users))
                    }
                    _ => Part::Done,
                })
            })
        })
        .collect();
    gather(shard, conn, request, answers, move |parts| {
        combine_parts(&combine, parts)
    });
}

/// Unwatches everything a closing connection watched; nobody waits for the answers.
pub fn unwatch_all(shard: &Rc<Shard>, conn: &ConnOutput) {
    let users: Vec<Bytes> = conn.watching.take().into_iter().collect();
    if users.is_empty() {
        return;
    }
    let shards = shard.shards();
    let Some(split) = PresenceCommand::Unwatch(users).split(&|user| shard_for_key(user, shards))
    else {
        return;
    };
    let from = conn.id.get();
    for (owner, part) in split.parts {
        shard.submit(owner, move |target: &Rc<Shard>| {
            if let PresenceCommand::Unwatch(users) = &part {
                target.with_keyspace(|keyspace| families::watch::unwatch(keyspace, from, users));
            }
        });
    }
    shard.flush();
}

/// Waits for one answer in a task and replies with it.
pub(super) fn await_one(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    answer: Answer<Value>,
) {
    gather(shard, conn, request, vec![answer], |mut values| {
        values.pop().unwrap_or(Value::Nil)
    });
}

/// Waits for every answer, then replies with `finish` of them; at once when all of them
/// ran here.
pub(super) fn gather<T: 'static>(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    answers: Vec<Answer<T>>,
    finish: impl FnOnce(Vec<T>) -> Value + 'static,
) {
    let answers = match Answer::all_ready(answers) {
        Ok(values) => return request.complete(shard, conn, &finish(values)),
        Err(waiting) => waiting,
    };
    let task: Task = Box::pin(async move {
        match Answer::all(answers).await {
            Some(values) => finish(values),
            None => unanswered(),
        }
    });
    run_task(shard, conn, request, task);
}

/// The reply when a shard dropped its part of a request (it was shutting down).
pub(crate) fn unanswered() -> Value {
    Value::error(ErrorCode::Internal, "a shard did not answer")
}

/// Runs a request as a task on this shard; the reply is written when it finishes.
fn run_task(shard: &Rc<Shard>, conn: &Rc<ConnOutput>, request: Request, task: Task) {
    conn.in_flight.set(conn.in_flight.get() + 1);
    let (shard, conn) = (shard.clone(), Rc::downgrade(conn));
    tokio::task::spawn_local(async move {
        let value = task.await;
        if let Some(conn) = conn.upgrade() {
            conn.in_flight.set(conn.in_flight.get() - 1);
            request.complete_waited(&shard, &conn, &value);
            conn.wake.raise();
        }
    });
}

/// Answers a request once `reply` is ready (a cluster change waits on Raft), keeping the
/// connection's count of requests in flight so it waits for the answer before closing.
pub fn complete_later(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command_index: usize,
    started: Instant,
    reply: impl std::future::Future<Output = Value> + 'static,
) {
    let request = Request {
        id: request_id,
        index: command_index,
        started,
        now: clock::now_millis(),
        watcher: None,
    };
    run_task(shard, conn, request, Box::pin(reply));
}

/// Writes the reply and records the request's latency.
pub fn complete(
    shard: &Shard,
    conn: &ConnOutput,
    request_id: u32,
    command_index: usize,
    started: Instant,
    reply: &Value,
) {
    finish(
        shard,
        conn,
        (request_id, command_index, started),
        reply,
        false,
    );
}

/// Writes the reply, records the request's latency, and shows it to the slow log.
fn finish(
    shard: &Shard,
    conn: &ConnOutput,
    (request_id, index, started): (u32, usize, Instant),
    reply: &Value,
    waited: bool,
) {
    conn.reply(request_id, reply);
    let now = Instant::now();
    let latency = now.saturating_duration_since(started).as_nanos() as u64;
    shard
        .stats
        .borrow_mut()
        .record(index, latency, matches!(reply, Value::Error(_)));
    shard.diagnostics.observe(
        shard,
        conn,
        &diagnostics::Completion {
            request_id,
            index,
            started,
            now,
            waited,
            large_reply: diagnostics::latency::is_large(reply),
        },
    );
}

/// Counts a request whose body could not be decoded.
pub fn count_bad_request(shard: &Shard) {
    shard.stats.borrow_mut().bad_requests += 1;
}
