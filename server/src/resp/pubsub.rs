//! Redis's replies to SUBSCRIBE and its kin: one confirmation frame per channel or
//! pattern, `[kind, name, subscriptions after]`, and the commands a RESP2 connection may
//! still send once it subscribes.

use bytes::Bytes;
use hashbrown::HashSet;
use tessera_protocol::resp::RespVersion;
use tessera_protocol::{ErrorCode, Value};

use crate::shard::output::{ConnOutput, Wire};

/// Whether `name` is one of the four subscription commands.
pub fn is_subscription(name: &str) -> bool {
    matches!(
        name,
        "SUBSCRIBE" | "UNSUBSCRIBE" | "PSUBSCRIBE" | "PUNSUBSCRIBE"
    )
}

/// Redis's refusal of `name` on a RESP2 connection that subscribes to something, if it
/// refuses it: such a connection only hears messages, and may only change what it hears.
pub fn refusal_while_subscribed(out: &ConnOutput, name: &str) -> Option<Value> {
    let resp2 = matches!(out.wire.get(), Wire::Resp(RespVersion::Resp2));
    let subscribed = !out.channels.borrow().is_empty() || !out.patterns.borrow().is_empty();
    let allowed = is_subscription(name) || matches!(name, "PING" | "QUIT" | "RESET");
    (resp2 && subscribed && !allowed).then(|| {
        Value::error(
            ErrorCode::Syntax,
            format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                name.to_lowercase()
            ),
        )
    })
}

/// PING on a subscribed RESP2 connection: `["pong", message]`, as Redis answers it.
pub fn subscribed_pong(out: &ConnOutput, message: Option<&&[u8]>) -> Option<Value> {
    let resp2 = matches!(out.wire.get(), Wire::Resp(RespVersion::Resp2));
    let subscribed = !out.channels.borrow().is_empty() || !out.patterns.borrow().is_empty();
    (resp2 && subscribed).then(|| {
        Value::Array(vec![
            Value::Bytes(Bytes::from_static(b"pong")),
            Value::Bytes(Bytes::copy_from_slice(message.cloned().unwrap_or_default())),
        ])
    })
}

/// The confirmation frames `name` (upper case) with `names` will answer, worked out from
/// what the connection subscribes to before it runs.
pub fn confirmations(out: &ConnOutput, name: &str, names: &[&[u8]]) -> Vec<Value> {
    let patterns = name.starts_with('P');
    let subscribing = !name.contains("UNSUB");
    let kind = Value::Bytes(Bytes::from(name.to_lowercase()));
    let held: HashSet<Bytes> = if patterns {
        out.patterns.borrow().clone()
    } else {
        out.channels.borrow().clone()
    };
    let mut count = out.channels.borrow().len() + out.patterns.borrow().len();
    let frame = |name: Value, count: usize| {
        Value::Array(vec![kind.clone(), name, Value::Int(count as i64)])
    };
    let mut seen = HashSet::new();
    let mut frames = Vec::new();
    if subscribing {
        for name in names {
            if !held.contains(*name) && seen.insert(*name) {
                count += 1;
            }
            frames.push(frame(Value::Bytes(Bytes::copy_from_slice(name)), count));
        }
    } else if names.is_empty() {
        if held.is_empty() {
            frames.push(frame(Value::Nil, count));
        }
        let mut all: Vec<&Bytes> = held.iter().collect();
        all.sort();
        for name in all {
            count -= 1;
            frames.push(frame(Value::Bytes(name.clone()), count));
        }
    } else {
        for name in names {
            if held.contains(*name) && seen.insert(*name) {
                count -= 1;
            }
            frames.push(frame(Value::Bytes(Bytes::copy_from_slice(name)), count));
        }
    }
    frames
}

/// PUBSUB CHANNELS [pattern] / NUMSUB [channel ...] / NUMPAT, about the whole node.
pub fn introspect(subscriptions: &crate::data::pubsub::Subscriptions, args: &[&[u8]]) -> Value {
    let sub = args[1].to_ascii_uppercase();
    match (&sub[..], args.len()) {
        (b"CHANNELS", 2 | 3) => Value::Array(
            subscriptions
                .channels(args.get(2).map(|p| &p[..]))
                .into_iter()
                .map(|name| Value::Bytes(Bytes::from(name.into_vec())))
                .collect(),
        ),
        (b"NUMSUB", _) => Value::Array(
            args[2..]
                .iter()
                .flat_map(|channel| {
                    let count = subscriptions.subscribers(channel) as i64;
                    [
                        Value::Bytes(Bytes::copy_from_slice(channel)),
                        Value::Int(count),
                    ]
                })
                .collect(),
        ),
        (b"NUMPAT", 2) => Value::Int(subscriptions.pattern_count() as i64),
        _ => Value::error(
            ErrorCode::Syntax,
            format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(args[1])
            ),
        ),
    }
}
