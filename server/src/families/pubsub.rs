//! PUBLISH: the message as a push to every connection subscribed to its channel, and to
//! every subscription of a pattern the channel matches.

use super::*;
use crate::data::pubsub::Subscriptions;
use crate::data::watch::Push;

fn word(text: &'static str) -> Value {
    Value::Bytes(Bytes::from_static(text.as_bytes()))
}

/// The message's pushes, and how many subscriptions they reach.
pub fn publish(
    subscriptions: &Subscriptions,
    channel: &[u8],
    message: &[u8],
) -> (usize, Vec<Push>) {
    let (direct, by_pattern) = subscriptions.receivers(channel);
    let channel = Bytes::copy_from_slice(channel);
    let message = Bytes::copy_from_slice(message);
    let mut reached = direct.len();
    let mut pushes = Vec::new();
    if !direct.is_empty() {
        pushes.push(Push {
            to: direct,
            value: Value::Array(vec![
                word("message"),
                Value::Bytes(channel.clone()),
                Value::Bytes(message.clone()),
            ]),
        });
    }
    for (pattern, subscribers) in by_pattern {
        reached += subscribers.len();
        pushes.push(Push {
            to: subscribers,
            value: Value::Array(vec![
                word("pmessage"),
                Value::Bytes(Bytes::from(pattern.into_vec())),
                Value::Bytes(channel.clone()),
                Value::Bytes(message.clone()),
            ]),
        });
    }
    (reached, pushes)
}
