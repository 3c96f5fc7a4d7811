//! Coordinator: routes each request to the shard that owns its keys, splits multi-key
//! requests by owner, gathers the parts, and writes the reply to the connection.
//!
//! Shard work itself happens in `Shard::execute`; this module only decides where it runs
//! and how the answers combine. Cross-shard calls only ever go coordinator → owner and the
//! answer comes back as a message, so calls never form a cycle.

use std::rc::Rc;
use std::time::Instant;
use tessera_protocol::{
    AdminCommand, DedupCommand, InventoryCommand, KeyCommand, PresenceCommand, TimelineCommand,
};

use bytes::Bytes;
use tessera_cluster::{shard_for_key, split_by_shard};
use tessera_protocol::{Command, ErrorCode, KeySpec, Value};

use crate::clock;
use crate::net::connection::ConnOutput;
use crate::route::geo::{self as geo_route, Start, Task};
use crate::shard::mesh::{Envelope, ShardReply, NO_REPLY};
use crate::families;
use crate::shard::{Pending, Shard};
use tessera_protocol::geo::GeoCommand;

/// How the parts of a split request combine into one reply.
pub enum Combine {
    /// One part; its value is the reply.
    Single,
    /// MGET: part `p`'s array fills `positions[p]` of a `len`-long reply.
    Values {
        /// Reply positions per part.
        positions: Vec<Vec<usize>>,
        /// Keys asked for.
        len: usize,
    },
    /// DEL, EXISTS, DBSIZE: integers add up.
    Sum,
    /// MSET, FLUSHALL: OK once every part is OK.
    AllOk,
    /// INFO: one statistics snapshot per shard.
    Info,
    /// GEO.CELLS: per-cell counts added up across shards.
    Cells,
    /// TL.MERGE: pages from each shard merged, newest first, at most `limit` items.
    Merge {
        /// Page size.
        limit: u32,
    },
}

impl Combine {
    /// Values of `len` keys, part `p` answering for the positions `groups[owners[p]]`.
    fn values(owners: &[u16], groups: &[Vec<usize>], len: usize) -> Combine {
        Combine::Values {
            positions: owners
                .iter()
                .map(|&o| groups[usize::from(o)].clone())
                .collect(),
            len,
        }
    }
}

/// The shards with keys in `groups` (one group per shard, as `split_by_shard` makes them).
fn owners_of(groups: &[Vec<usize>]) -> Vec<u16> {
    (0..groups.len() as u16)
        .filter(|s| !groups[usize::from(*s)].is_empty())
        .collect()
}

/// Parts received so far for one pending request.
pub struct Gather {
    combine: Combine,
    parts: Vec<Option<ShardReply>>,
    remaining: usize,
}

impl Gather {
    fn new(combine: Combine, parts: usize) -> Self {
        Self {
            combine,
            parts: (0..parts).map(|_| None).collect(),
            remaining: parts,
        }
    }

    /// Stores part `part`; `true` once every part is in.
    fn absorb(&mut self, part: u32, reply: ShardReply) -> bool {
        let Some(slot) = self.parts.get_mut(part as usize) else {
            return false;
        };
        if slot.replace(reply).is_none() {
            self.remaining -= 1;
        }
        self.remaining == 0
    }

    fn finish(self, shard: &Shard) -> Value {
        let mut values = Vec::with_capacity(self.parts.len());
        let mut snapshots = Vec::new();
        for part in self.parts.into_iter().flatten() {
            match part {
                ShardReply::Value(Value::Error(e)) => return Value::Error(e),
                ShardReply::Value(v) => values.push(v),
                ShardReply::Stats(s) => snapshots.push(*s),
            }
        }
        match self.combine {
            Combine::Single => values.pop().unwrap_or(Value::Nil),
            Combine::Sum => Value::Int(values.iter().filter_map(Value::as_int).sum()),
            Combine::AllOk => Value::Ok,
            Combine::Info => shard.render_info(&snapshots),
            Combine::Cells => {
                let mut totals: hashbrown::HashMap<u64, i64> = hashbrown::HashMap::new();
                for part in &values {
                    let Value::Array(rows) = part else { continue };
                    for row in rows {
                        if let Value::Array(fields) = row {
                            if let [Value::Text(cell), Value::Int(count)] = &fields[..] {
                                let cell = u64::from_str_radix(cell, 16).unwrap_or(0);
                                *totals.entry(cell).or_default() += count;
                            }
                        }
                    }
                }
                families::cell_counts(totals.into_iter().collect())
            }
            Combine::Merge { limit } => {
                let pages: Option<Vec<_>> = values.iter().map(families::page_from_value).collect();
                match pages {
                    Some(pages) => families::page_value(&crate::data::timeline::merge(pages, limit)),
                    None => Value::error(ErrorCode::Internal, "malformed part reply"),
                }
            }
            Combine::Values { positions, len } => {
                let mut out = vec![Value::Nil; len];
                for (part, places) in values.into_iter().zip(positions) {
                    let Value::Array(items) = part else {
                        return Value::error(ErrorCode::Internal, "malformed part reply");
                    };
                    for (item, place) in items.into_iter().zip(places) {
                        out[place] = item;
                    }
                }
                Value::Array(out)
            }
        }
    }
}

/// Runs one decoded request from `conn`: locally when this shard owns it, else by message.
pub fn dispatch(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command: Command<&[u8]>,
    started: Instant,
) {
    let now = clock::millis_at(started);
    if let Command::Geo(geo) = &command {
        if geo_route::is_routed(geo) {
            let index = command.table_index();
            match geo_route::start(shard, geo, false) {
                Start::Done(reply) => complete(shard, conn, request_id, index, started, &reply),
                Start::Later(task) => run_task(shard, conn, request_id, index, started, task),
                Start::Forward(owner) => {
                    forward(shard, conn, request_id, &command, started, now, owner)
                }
            }
            return;
        }
    }
    match command.spec().keys {
        KeySpec::None | KeySpec::Area => {
            let reply = match &command {
                Command::Admin(AdminCommand::Ping(Some(message))) => {
                    Value::Bytes(Bytes::copy_from_slice(message))
                }
                Command::Admin(AdminCommand::Ping(None)) => Value::text("PONG"),
                _ => Value::error(ErrorCode::Syntax, "HELLO is answered by the connection"),
            };
            complete(
                shard,
                conn,
                request_id,
                command.table_index(),
                started,
                &reply,
            );
        }
        KeySpec::Single => {
            let key = command
                .single_key()
                .expect("single-key commands carry a key");
            let owner = shard_for_key(key, shard.shards());
            if owner == shard.id {
                run_here(shard, conn, request_id, &command, started, now);
            } else {
                forward(shard, conn, request_id, &command, started, now, owner);
            }
        }
        KeySpec::Many | KeySpec::Pairs => {
            split_keys(shard, conn, request_id, command, started, now)
        }
        KeySpec::Watch => watch(shard, conn, request_id, command, started, now),
        KeySpec::AllShards => {
            let combine = match command {
                Command::Admin(AdminCommand::Info) => Combine::Info,
                Command::Admin(AdminCommand::FlushAll)
                | Command::Geo(GeoCommand::Create { .. }) => Combine::AllOk,
                Command::Geo(GeoCommand::Cells { .. }) => Combine::Cells,
                _ => Combine::Sum,
            };
            let owned = command.to_owned_bytes();
            let parts = (0..shard.shards()).map(|s| (s, owned.clone())).collect();
            scatter(
                shard,
                conn,
                request_id,
                command.table_index(),
                started,
                now,
                combine,
                parts,
            );
        }
    }
}

/// Sends a whole request to the one shard that must run it.
fn forward(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command: &Command<&[u8]>,
    started: Instant,
    now: u64,
    owner: u16,
) {
    let index = command.table_index();
    let parts = vec![(owner, command.to_owned_bytes())];
    scatter(
        shard,
        conn,
        request_id,
        index,
        started,
        now,
        Combine::Single,
        parts,
    );
}

fn split_keys(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command: Command<&[u8]>,
    started: Instant,
    now: u64,
) {
    let shards = shard.shards();
    let groups = match &command {
        Command::Keys(KeyCommand::MSet(pairs)) => {
            split_by_shard(&pairs.iter().map(|(k, _)| k).collect::<Vec<_>>(), shards)
        }
        Command::Keys(KeyCommand::Del(keys))
        | Command::Keys(KeyCommand::Exists(keys))
        | Command::Keys(KeyCommand::MGet(keys))
        | Command::Dedup(DedupCommand::CheckMany { keys, .. })
        | Command::Timelines(TimelineCommand::Fanout { keys, .. })
        | Command::Timelines(TimelineCommand::Merge { keys, .. })
        | Command::Presence(PresenceCommand::Get(keys)) => split_by_shard(keys, shards),
        Command::Inventory(InventoryCommand::ReserveMulti { items, .. }) => split_by_shard(
            &items.iter().map(|(sku, _)| sku).collect::<Vec<_>>(),
            shards,
        ),
        _ => unreachable!("only multi-key commands are split"),
    };
    let owners = owners_of(&groups);
    if owners == [shard.id] {
        // Every key is ours: no split, no gather.
        run_here(shard, conn, request_id, &command, started, now);
        return;
    }
    if let Command::Inventory(InventoryCommand::ReserveMulti { .. }) = command {
        // A cart is all-or-nothing only on one shard; across shards the client runs the
        // saga (reserve each part, release the others if one fails).
        let reply = match owners[..] {
            [owner] => return forward(shard, conn, request_id, &command, started, now, owner),
            _ => Value::error(
                ErrorCode::CrossShard,
                "the SKUs of one INV.RESERVE.MULTI must share a shard: give them one {hash tag}",
            ),
        };
        complete(
            shard,
            conn,
            request_id,
            command.table_index(),
            started,
            &reply,
        );
        return;
    }
    // Parts travel to other threads, so they own copies of their keys.
    let own = |bytes: &[u8]| Bytes::copy_from_slice(bytes);
    let pick =
        |keys: &[&[u8]], group: &[usize]| group.iter().map(|&i| own(keys[i])).collect::<Vec<_>>();
    let parts: Vec<(u16, Command)> = owners
        .iter()
        .map(|&owner| {
            let group = &groups[usize::from(owner)];
            let part = match &command {
                Command::Keys(KeyCommand::Del(keys)) => {
                    Command::Keys(KeyCommand::Del(pick(keys, group)))
                }
                Command::Keys(KeyCommand::Exists(keys)) => {
                    Command::Keys(KeyCommand::Exists(pick(keys, group)))
                }
                Command::Keys(KeyCommand::MGet(keys)) => {
                    Command::Keys(KeyCommand::MGet(pick(keys, group)))
                }
                Command::Dedup(DedupCommand::CheckMany { ttl_ms, keys }) => {
                    Command::Dedup(DedupCommand::CheckMany {
                        ttl_ms: *ttl_ms,
                        keys: pick(keys, group),
                    })
                }
                Command::Timelines(TimelineCommand::Fanout { item, cap, keys }) => {
                    Command::Timelines(TimelineCommand::Fanout {
                        item: *item,
                        cap: *cap,
                        keys: pick(keys, group),
                    })
                }
                Command::Timelines(TimelineCommand::Merge {
                    limit,
                    before,
                    keys,
                }) => Command::Timelines(TimelineCommand::Merge {
                    limit: *limit,
                    before: *before,
                    keys: pick(keys, group),
                }),
                Command::Presence(PresenceCommand::Get(keys)) => {
                    Command::Presence(PresenceCommand::Get(pick(keys, group)))
                }
                Command::Inventory(InventoryCommand::ReserveMulti { .. }) => {
                    unreachable!("carts are never split")
                }
                Command::Keys(KeyCommand::MSet(pairs)) => Command::Keys(KeyCommand::MSet(
                    group
                        .iter()
                        .map(|&i| (own(pairs[i].0), own(pairs[i].1)))
                        .collect(),
                )),
                _ => unreachable!("only multi-key commands are split"),
            };
            (owner, part)
        })
        .collect();
    let combine = match &command {
        Command::Keys(KeyCommand::MGet(keys))
        | Command::Dedup(DedupCommand::CheckMany { keys, .. })
        | Command::Presence(PresenceCommand::Get(keys)) => {
            Combine::values(&owners, &groups, keys.len())
        }
        Command::Keys(KeyCommand::MSet(_)) => Combine::AllOk,
        Command::Timelines(TimelineCommand::Merge { limit, .. }) => {
            Combine::Merge { limit: *limit }
        }
        _ => Combine::Sum,
    };
    scatter(
        shard,
        conn,
        request_id,
        command.table_index(),
        started,
        now,
        combine,
        parts,
    );
}

/// Runs a request as a task on this shard; the reply is written when it finishes.
fn run_task(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    index: usize,
    started: Instant,
    task: Task,
) {
    conn.in_flight.set(conn.in_flight.get() + 1);
    let (shard, conn) = (shard.clone(), Rc::downgrade(conn));
    tokio::task::spawn_local(async move {
        let value = task.await;
        if let Some(conn) = conn.upgrade() {
            conn.in_flight.set(conn.in_flight.get() - 1);
            complete(&shard, &conn, request_id, index, started, &value);
            conn.wake.raise();
        }
    });
}

/// Runs a command whose keys this shard owns and replies at once, writing a stored value
/// straight from the keyspace into the output buffer.
fn run_here(
    shard: &Shard,
    conn: &ConnOutput,
    request_id: u32,
    command: &Command<&[u8]>,
    started: Instant,
    now: u64,
) {
    let mut keyspace = shard.keyspace.borrow_mut();
    let reply = families::apply(&mut keyspace, command, now);
    conn.reply_with(request_id, &reply);
    shard.completed(command.table_index(), started, reply.is_error());
    drop(reply);
    let pushes = keyspace.watches.has_pushes();
    drop(keyspace);
    if pushes {
        shard.route_pushes();
    }
}

/// Most users one connection may watch.
pub const MAX_WATCHES_PER_CONNECTION: usize = 100_000;

/// PRESENCE.WATCH and PRESENCE.UNWATCH: registers (or removes) this connection with each
/// user's owner; the connection remembers what it watches so closing can undo it all.
fn watch(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command: Command<&[u8]>,
    started: Instant,
    now: u64,
) {
    let index = command.table_index();
    let own = |users: &[&[u8]]| -> Vec<Bytes> {
        users.iter().map(|u| Bytes::copy_from_slice(u)).collect()
    };
    let (users, watching) = match &command {
        Command::Presence(PresenceCommand::Watch(users)) => (own(users), true),
        Command::Presence(PresenceCommand::Unwatch(users)) if users.is_empty() => {
            (conn.watching.borrow().iter().cloned().collect(), false)
        }
        Command::Presence(PresenceCommand::Unwatch(users)) => (own(users), false),
        _ => unreachable!("only watch commands are routed here"),
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
                return complete(shard, conn, request_id, index, started, &refusal);
            }
            set.extend(users.iter().cloned());
        } else {
            for user in &users {
                set.remove(user);
            }
        }
    }
    if users.is_empty() {
        return complete(shard, conn, request_id, index, started, &Value::Int(0));
    }
    let groups = split_by_shard(&users, shard.shards());
    let owners = owners_of(&groups);
    let part =
        |group: &[usize]| -> Vec<Bytes> { group.iter().map(|&i| users[i].clone()).collect() };
    let parts = owners
        .iter()
        .map(|&owner| {
            let group = part(&groups[usize::from(owner)]);
            let command = if watching {
                Command::Presence(PresenceCommand::Watch(group))
            } else {
                Command::Presence(PresenceCommand::Unwatch(group))
            };
            (owner, command)
        })
        .collect();
    let combine = if watching {
        Combine::values(&owners, &groups, users.len())
    } else {
        Combine::Sum
    };
    scatter(shard, conn, request_id, index, started, now, combine, parts);
}

/// Unwatches everything a closing connection watched; nobody waits for the answers.
pub fn unwatch_all(shard: &Shard, conn: &ConnOutput) {
    let users: Vec<Bytes> = conn.watching.take().into_iter().collect();
    if users.is_empty() {
        return;
    }
    let groups = split_by_shard(&users, shard.shards());
    let from = conn.id.get();
    for (owner, group) in groups.iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        let command = Command::Presence(PresenceCommand::Unwatch(
            group.iter().map(|&i| users[i].clone()).collect(),
        ));
        if owner == usize::from(shard.id) {
            shard.execute(&command, from, clock::now_millis());
        } else {
            shard.send(
                owner as u16,
                Envelope::Request {
                    origin: shard.id,
                    token: NO_REPLY,
                    part: 0,
                    command,
                    from,
                },
            );
        }
    }
    shard.flush();
}

/// Sends each part to its owner (running our own part in place) and registers the gather.
#[allow(clippy::too_many_arguments)]
fn scatter(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    index: usize,
    started: Instant,
    now: u64,
    combine: Combine,
    parts: Vec<(u16, Command)>,
) {
    let token = register(
        shard,
        conn,
        request_id,
        index,
        started,
        Gather::new(combine, parts.len()),
    );
    let mut local = None;
    for (part, (owner, part_command)) in parts.into_iter().enumerate() {
        if owner == shard.id {
            local = Some((part as u32, part_command));
        } else {
            shard.stats.borrow_mut().forwarded_out += 1;
            shard.send(
                owner,
                Envelope::Request {
                    origin: shard.id,
                    token,
                    part: part as u32,
                    command: part_command,
                    from: conn.id.get(),
                },
            );
        }
    }
    if let Some((part, part_command)) = local {
        let reply = shard.execute(&part_command, conn.id.get(), now);
        resolve(shard, token, part, reply);
    }
}

fn register(
    shard: &Shard,
    conn: &Rc<ConnOutput>,
    request_id: u32,
    command_index: usize,
    started: Instant,
    gather: Gather,
) -> u32 {
    conn.in_flight.set(conn.in_flight.get() + 1);
    let token = shard.pending.borrow_mut().insert(Pending {
        conn: Rc::downgrade(conn),
        request_id,
        command_index,
        started,
        gather,
    });
    u32::try_from(token).expect("fewer than 4 billion requests in flight")
}

/// Delivers one part's answer; once all parts are in, replies to the client.
pub fn resolve(shard: &Shard, token: u32, part: u32, reply: ShardReply) {
    let mut pending = shard.pending.borrow_mut();
    let Some(entry) = pending.get_mut(token as usize) else {
        tracing::warn!(shard = shard.id, token, "reply for an unknown request");
        return;
    };
    if !entry.gather.absorb(part, reply) {
        return;
    }
    let done = pending.remove(token as usize);
    drop(pending);
    let Some(conn) = done.conn.upgrade() else {
        return;
    };
    conn.in_flight.set(conn.in_flight.get() - 1);
    let value = done.gather.finish(shard);
    complete(
        shard,
        &conn,
        done.request_id,
        done.command_index,
        done.started,
        &value,
    );
    conn.wake.raise();
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
    conn.reply(request_id, reply);
    let latency = started.elapsed().as_nanos() as u64;
    shard
        .stats
        .borrow_mut()
        .record(command_index, latency, matches!(reply, Value::Error(_)));
}

/// Counts a request whose body could not be decoded.
pub fn count_bad_request(shard: &Shard) {
    shard.stats.borrow_mut().bad_requests += 1;
}
