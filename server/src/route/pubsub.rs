//! PUBLISH and the (P)SUBSCRIBE family across shards: the node's subscriptions change
//! under their locks, and a closing connection's subscriptions end.

use std::rc::Rc;

use bytes::Bytes;
use tessera_protocol::commands::pubsub::MAX_SUBSCRIPTIONS_PER_CONNECTION;
use tessera_protocol::{ErrorCode, PubSubCommand, Value};

use super::coordinator::Request;
use crate::families;
use crate::shard::output::ConnOutput;
use crate::shard::Shard;

/// PUBLISH, and (P)SUBSCRIBE and (P)UNSUBSCRIBE: the node's subscriptions change under
/// their locks as the command runs, so one in force is heard by any publisher after it,
/// on any shard; the connection keeps what it subscribes to, for its counts and its
/// close.
pub(super) fn publish_or_subscribe(
    shard: &Rc<Shard>,
    conn: &Rc<ConnOutput>,
    request: Request,
    command: &PubSubCommand<&[u8]>,
) {
    let subscriptions = &shard.node.subscriptions;
    let from = conn.id.get();
    let (names, patterns, subscribing) = match command {
        PubSubCommand::Publish {
            channel,
            message,
            local,
        } => {
            let (reached, pushes) = families::pubsub::publish(subscriptions, channel, message);
            if !pushes.is_empty() {
                shard.keyspace.borrow_mut().watches.outgoing.extend(pushes);
                shard.route_pushes();
            }
            if !local {
                super::relay::relay(shard, channel, message);
            }
            return request.complete(shard, conn, &Value::Int(reached as i64));
        }
        PubSubCommand::Subscribe { names, patterns } => (names, *patterns, true),
        PubSubCommand::Unsubscribe { names, patterns } => (names, *patterns, false),
    };
    let other_kind = if patterns {
        conn.channels.borrow().len()
    } else {
        conn.patterns.borrow().len()
    };
    let mut held = if patterns {
        conn.patterns.borrow_mut()
    } else {
        conn.channels.borrow_mut()
    };
    if subscribing {
        let new = names.iter().filter(|n| !held.contains(**n)).count();
        if other_kind + held.len() + new > MAX_SUBSCRIPTIONS_PER_CONNECTION {
            drop(held);
            let refusal = Value::error(
                ErrorCode::TooManyElements,
                format!("a connection may subscribe to at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} channels and patterns"),
            );
            return request.complete(shard, conn, &refusal);
        }
        for name in names {
            subscriptions.subscribe(from, name, patterns);
            held.insert(Bytes::copy_from_slice(name));
        }
    } else {
        let ending: Vec<Bytes> = if names.is_empty() {
            held.drain().collect()
        } else {
            names.iter().map(|n| Bytes::copy_from_slice(n)).collect()
        };
        for name in ending {
            subscriptions.unsubscribe(from, &name, patterns);
            held.remove(&name);
        }
    }
    let count = Value::Int((other_kind + held.len()) as i64);
    drop(held);
    request.complete(shard, conn, &count);
}

/// Ends every subscription of a closing connection.
pub fn unsubscribe_all(shard: &Shard, conn: &ConnOutput) {
    let from = conn.id.get();
    for (set, pattern) in [(&conn.channels, false), (&conn.patterns, true)] {
        for name in set.take() {
            shard.node.subscriptions.unsubscribe(from, &name, pattern);
        }
    }
}
