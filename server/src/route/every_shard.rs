//! Node-wide commands: every shard answers for itself (DBSIZE, FLUSHALL, INFO, KEYS,
//! SCAN, RANDOMKEY, SLOWLOG, LATENCY, the geo index counts), and the answers add up.

use std::rc::Rc;

use bytes::Bytes;
use tessera_protocol::geo::GeoCommand;
use tessera_protocol::{AdminCommand, Combine, Command, KeyspaceCommand, Value};

use super::coordinator::{combine_parts, gather, run_part_at, Request};
use crate::diagnostics;
use crate::families::{self, geo};
use crate::route::info;
use crate::shard::call::Answer;
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// DBSIZE, FLUSHALL, INFO, GEO.CREATE, GEO.COUNT and GEO.CELLS: every shard answers for
/// itself, and the answers add up.
pub(super) fn every_shard(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    command: &Command<&[u8]>,
) {
    let now = request.now;
    let shards = 0..shard.shards();
    match command {
        Command::Admin(AdminCommand::Info) => {
            // Read before the snapshots exist: their histograms are megabytes that INFO
            // itself holds only for a moment.
            let used_memory = crate::memory::used();
            // The other shards are asked first, so this shard's own snapshot counts
            // those calls.
            let mut answers: Vec<(u16, Answer<_>)> = shards
                .filter(|to| *to != shard.id)
                .chain([shard.id])
                .map(|to| (to, shard.call(to, |target: &Rc<Shard>| target.snapshot())))
                .collect();
            answers.sort_by_key(|(to, _)| *to);
            let answers = answers.into_iter().map(|(_, answer)| answer).collect();
            let node = shard.node.clone();
            gather(shard, conn, request, answers, move |snapshots| {
                info::render(&node, &snapshots, used_memory)
            });
        }
        Command::Admin(AdminCommand::Snapshot) => {
            let answers = shard.call_every(|target: &Rc<Shard>| target.request_snapshot());
            gather(
                shard,
                conn,
                request,
                answers,
                |started: Vec<Result<(), Value>>| {
                    started
                        .into_iter()
                        .find_map(Result::err)
                        .unwrap_or(Value::Ok)
                },
            );
        }
        Command::Admin(AdminCommand::LastSave) => {
            let answers = shard.call_every(|target: &Rc<Shard>| target.last_snapshot_ms());
            gather(shard, conn, request, answers, |times: Vec<u64>| {
                Value::Int((times.into_iter().min().unwrap_or(0) / 1000) as i64)
            });
        }
        Command::Keyspace(KeyspaceCommand::Keys(pattern)) => {
            let pattern = Bytes::copy_from_slice(pattern);
            let answers = shard.call_every(move |target: &Rc<Shard>| {
                families::keyspace::matching(&target.keyspace.borrow(), &pattern, now)
            });
            gather(shard, conn, request, answers, |parts| {
                let mut keys = Vec::new();
                for part in parts {
                    match part {
                        Ok(part) => keys.extend(part.into_iter().map(Value::Bytes)),
                        Err(error) => return Value::Error(error),
                    }
                }
                Value::Array(keys)
            });
        }
        Command::Keyspace(KeyspaceCommand::Scan { .. }) => scan(shard, conn, request, command),
        Command::Diagnostics(asked) => {
            let asked = asked.to_owned_bytes();
            let part = asked.clone();
            let answers =
                shard.call_every(move |target: &Rc<Shard>| diagnostics::shard_part(target, &part));
            gather(shard, conn, request, answers, move |parts| {
                diagnostics::combine(&asked, parts)
            });
        }
        Command::Keyspace(KeyspaceCommand::RandomKey) => {
            let answers = shard.call_every(move |target: &Rc<Shard>| {
                let mut keyspace = target.keyspace.borrow_mut();
                let key = families::keyspace::random_key(&mut keyspace, now);
                (keyspace.len() as u64, key, keyspace.next_random())
            });
            gather(
                shard,
                conn,
                request,
                answers,
                |parts: Vec<(u64, Option<Bytes>, u64)>| {
                    // A shard is picked in proportion to its keys, so every key is about as
                    // likely whichever shard holds it.
                    let total: u64 = parts.iter().map(|(len, _, _)| len).sum();
                    let Some(draw) = parts.first().map(|(_, _, random)| random % total.max(1))
                    else {
                        return Value::Nil;
                    };
                    let mut passed = 0;
                    for (len, key, _) in parts {
                        passed += len;
                        if draw < passed {
                            return key.map_or(Value::Nil, Value::Bytes);
                        }
                    }
                    Value::Nil
                },
            );
        }
        Command::Geo(GeoCommand::Cells { .. }) => {
            let cells = command.to_owned_bytes();
            let answers = shard.call_every(move |target: &Rc<Shard>| {
                let Command::Geo(cells) = &cells else {
                    return Ok(Vec::new());
                };
                geo::cells(&mut target.keyspace.borrow_mut(), cells, now)
            });
            gather(shard, conn, request, answers, |parts| {
                let mut totals: hashbrown::HashMap<u64, i64> = hashbrown::HashMap::new();
                for part in parts {
                    match part {
                        Ok(cells) => {
                            for (cell, count) in cells {
                                *totals.entry(cell).or_default() += count;
                            }
                        }
                        Err(error) => return Value::Error(error),
                    }
                }
                geo::render_cells(totals.into_iter().collect())
            });
        }
        _ => {
            let combine = match command {
                Command::Admin(AdminCommand::FlushAll)
                | Command::Geo(GeoCommand::Create { .. }) => Combine::AllOk,
                _ => Combine::Sum,
            };
            let part = command.to_owned_bytes();
            let answers =
                shard.call_every(move |target: &Rc<Shard>| run_part_at(target, &part, now));
            gather(shard, conn, request, answers, move |parts| {
                combine_parts(&combine, parts)
            });
        }
    }
}

/// One SCAN step: on the shard its cursor names, moving on to the next shard once that
/// one is walked.
fn scan(shard: &Rc<Shard>, conn: &Rc<ConnOutput>, request: Request, command: &Command<&[u8]>) {
    let Command::Keyspace(KeyspaceCommand::Scan {
        cursor,
        pattern,
        count,
        kind,
    }) = command.to_owned_bytes()
    else {
        return;
    };
    let (at, shards, now) = (
        families::keyspace::cursor_shard(cursor),
        shard.shards(),
        request.now,
    );
    if at >= shards {
        // A cursor from a node with more shards: the walk is over here.
        let done = Value::Array(vec![Value::text("0"), Value::Array(Vec::new())]);
        return request.complete(shard, conn, &done);
    }
    let answer = shard.call(at, move |target: &Rc<Shard>| {
        let keyspace = target.keyspace.borrow();
        families::keyspace::scan_step(
            &keyspace,
            at,
            cursor,
            count,
            pattern.as_deref(),
            kind.as_deref(),
            now,
        )
    });
    gather(shard, conn, request, vec![answer], move |mut step| {
        let (next, keys) = step.pop().unwrap_or_default();
        let next = match next {
            Some(next) => next,
            None if at + 1 < shards => families::keyspace::shard_start(at + 1),
            None => 0,
        };
        Value::Array(vec![
            Value::Bytes(Bytes::from(next.to_string())),
            Value::Array(keys.into_iter().map(Value::Bytes).collect()),
        ])
    });
}
