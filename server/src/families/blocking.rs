//! LMPOP, ZMPOP and the blocking pops on one shard: one attempt now (all a TX, a replay or a
//! replica ever makes), and serving the clients waiting on a list once a write fills it.

use tessera_protocol::commands::lists::ListCommand;
use tessera_protocol::commands::BlockingCommand;
use tessera_protocol::commands::SortedSetCommand;

use super::*;

/// One attempt: pops from the first non-empty list, or answers NIL if every one is empty.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &BlockingCommand<P>, now: u64) -> Value {
    match command {
        BlockingCommand::Pop {
            keys, end, count, ..
        } => {
            for key in keys {
                match keyspace.get(key.as_ref(), now) {
                    None => continue,
                    Some(Stored::List(_)) => {}
                    Some(_) => return wrong_type(),
                }
                let pop = ListCommand::Pop {
                    key: key.as_ref(),
                    end: *end,
                    count: *count,
                };
                let popped = lists::apply(keyspace, &pop, now);
                if matches!(popped, Value::Error(_)) {
                    return popped;
                }
                let key = Value::Bytes(Bytes::copy_from_slice(key.as_ref()));
                return Value::Array(vec![key, popped]);
            }
            Value::Nil
        }
        BlockingCommand::Move {
            source,
            destination,
            from,
            to,
            ..
        } => {
            // An empty source waits whatever the destination holds, as in Redis: its kind
            // is checked when a push serves the wait.
            if !keyspace.contains(source.as_ref(), now) {
                return Value::Nil;
            }
            let lmove = ListCommand::Move {
                source: source.as_ref(),
                destination: destination.as_ref(),
                from: *from,
                to: *to,
            };
            lists::apply(keyspace, &lmove, now)
        }
        BlockingCommand::ZPop {
            keys, max, count, ..
        } => {
            for key in keys {
                match keyspace.get(key.as_ref(), now) {
                    None => continue,
                    Some(Stored::SortedSet(_)) => {}
                    Some(_) => return wrong_type(),
                }
                let pop = SortedSetCommand::Pop {
                    key: key.as_ref(),
                    count: count.unwrap_or(1),
                    max: *max,
                };
                let popped = sorted_sets::apply(keyspace, &pop, now);
                let key = Value::Bytes(Bytes::copy_from_slice(key.as_ref()));
                return match (count, popped) {
                    (Some(_), Value::Array(pairs)) => Value::Array(vec![key, Value::Array(pairs)]),
                    // BZPOPMIN's one member comes flat: key, member, score.
                    (None, Value::Array(mut pairs)) if !pairs.is_empty() => {
                        let mut flat = vec![key];
                        if let Value::Array(pair) = pairs.swap_remove(0) {
                            flat.extend(pair);
                        }
                        Value::Array(flat)
                    }
                    (_, other) => other,
                };
            }
            Value::Nil
        }
    }
}

/// After a write: serves, in the order they began to wait, the clients waiting on the
/// lists it wrote, while those lists hold something. Each served pop runs as a command of
/// its own (logged, replicated, noting its own pushes), so a BLMOVE into a list another
/// client waits on serves that client too, in the same step.
pub fn serve_waiting(keyspace: &mut Keyspace, now: u64) {
    if keyspace.blocked.serving {
        return;
    }
    keyspace.blocked.serving = true;
    loop {
        let ready = keyspace.blocked.take_ready();
        if ready.is_empty() {
            break;
        }
        for list in ready {
            while let Some(id) = keyspace.blocked.first_on(&list) {
                let filled = match keyspace.get(&list, now) {
                    Some(Stored::List(list)) => !list.is_empty(),
                    Some(Stored::SortedSet(set)) => !set.is_empty(),
                    _ => false,
                };
                if !filled {
                    break;
                }
                let Some(waiter) = keyspace.blocked.remove(id) else {
                    break;
                };
                if waiter.reply.is_closed() {
                    // It gave up (timed out) between the wake and now.
                    continue;
                }
                let reply = match Command::decode(waiter.body.clone()) {
                    Ok(command) => super::apply(keyspace, &command, now).into_value(),
                    Err(error) => Value::error(ErrorCode::Internal, error.to_string()),
                };
                let _ = waiter.reply.send(reply);
            }
        }
    }
    keyspace.blocked.serving = false;
}
