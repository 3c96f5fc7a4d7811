//! Publish/subscribe: PUBLISH on any connection, and a `Subscriber` with a connection of
//! its own whose message pushes become a stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tessera_protocol::{Command, PubSubCommand, Value};
use tokio::sync::mpsc;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::Client;

/// A message pushed to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published on.
    pub channel: Bytes,
    /// What was published.
    pub payload: Bytes,
    /// The subscribed pattern it matched, if it came by one.
    pub pattern: Option<Bytes>,
}

impl Message {
    /// Reads a message push; `None` for a push of another kind.
    pub fn from_push(push: &Value) -> Option<Message> {
        let Value::Array(items) = push else {
            return None;
        };
        let text = |value: &Value| match value {
            Value::Bytes(bytes) => Some(bytes.clone()),
            Value::Text(text) => Some(Bytes::from(text.clone())),
            _ => None,
        };
        match items.as_slice() {
            [kind, channel, payload] if text(kind).as_deref() == Some(&b"message"[..]) => {
                Some(Message {
                    channel: text(channel)?,
                    payload: text(payload)?,
                    pattern: None,
                })
            }
            [kind, pattern, channel, payload]
                if text(kind).as_deref() == Some(&b"pmessage"[..]) =>
            {
                Some(Message {
                    channel: text(channel)?,
                    payload: text(payload)?,
                    pattern: Some(text(pattern)?),
                })
            }
            _ => None,
        }
    }
}

impl Client {
    /// PUBLISH: sends `payload` to `channel`'s subscribers (in a cluster, every node's);
    /// answers how many subscriptions it reached on the node connected to.
    ///
    /// # Errors
    /// As `call`.
    pub async fn publish(
        &self,
        channel: impl Into<Bytes>,
        payload: impl Into<Bytes>,
    ) -> Result<u64> {
        let reply = self
            .call(Command::PubSub(PubSubCommand::Publish {
                channel: channel.into(),
                message: payload.into(),
                local: false,
            }))
            .await?;
        match reply {
            Value::Int(n) => Ok(n.max(0) as u64),
            other => Err(Error::unexpected("a count", &other)),
        }
    }

    /// Opens a connection for subscriptions on the node connected to; its messages are a
    /// `Stream`. Dropping it closes the connection, which ends every subscription.
    ///
    /// # Errors
    /// As `Client::connect`.
    pub async fn subscriber(&self) -> Result<Subscriber> {
        let (connection, pushes) =
            Connection::open_with_pushes(&self.inner.seed.address, None, &self.inner.config)
                .await?;
        Ok(Subscriber { connection, pushes })
    }
}

/// A connection subscribed to channels and patterns: a `Stream` of their messages, in the
/// order the server pushed them.
pub struct Subscriber {
    connection: Connection,
    pushes: mpsc::UnboundedReceiver<Value>,
}

impl Subscriber {
    async fn change<K: Into<Bytes>>(
        &self,
        names: impl IntoIterator<Item = K>,
        patterns: bool,
        subscribing: bool,
    ) -> Result<u64> {
        let names = names.into_iter().map(Into::into).collect();
        let command = if subscribing {
            PubSubCommand::Subscribe { names, patterns }
        } else {
            PubSubCommand::Unsubscribe { names, patterns }
        };
        match self.connection.request(Command::PubSub(command)).await? {
            Value::Int(n) => Ok(n.max(0) as u64),
            other => Err(Error::unexpected("a count", &other)),
        }
    }

    /// SUBSCRIBE: messages on `channels` follow from now on; answers the connection's
    /// subscriptions after.
    ///
    /// # Errors
    /// `Server` with `TooManyElements` past the per-connection limit; link failures.
    pub async fn subscribe<K: Into<Bytes>>(
        &self,
        channels: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        self.change(channels, false, true).await
    }

    /// PSUBSCRIBE: messages on every channel matching the glob `patterns` follow.
    ///
    /// # Errors
    /// As `subscribe`.
    pub async fn psubscribe<K: Into<Bytes>>(
        &self,
        patterns: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        self.change(patterns, true, true).await
    }

    /// UNSUBSCRIBE: ends subscriptions to `channels` (none: to every channel).
    ///
    /// # Errors
    /// Link failures.
    pub async fn unsubscribe<K: Into<Bytes>>(
        &self,
        channels: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        self.change(channels, false, false).await
    }

    /// PUNSUBSCRIBE: ends pattern subscriptions (none: every one).
    ///
    /// # Errors
    /// Link failures.
    pub async fn punsubscribe<K: Into<Bytes>>(
        &self,
        patterns: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        self.change(patterns, true, false).await
    }
}

impl Stream for Subscriber {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match self.pushes.poll_recv(cx) {
                Poll::Ready(Some(push)) => {
                    if let Some(message) = Message::from_push(&push) {
                        return Poll::Ready(Some(message));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
