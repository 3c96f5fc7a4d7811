//! The chat service's store, as each server provides it: heartbeats, presence watches,
//! timelines and gateway routing on Tessera, and the Redis commands teams use for them.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use hashbrown::HashMap;
use redis::aio::MultiplexedConnection;
use tessera_client::{Client, Cursor};

use super::{BEAT_TTL, KEEP, PAGE};
use crate::driver::BoxError;

/// A page of history: message ids, newest first, where the next older page starts, and
/// whether there is one.
pub(super) type Page = (Vec<u64>, Option<Cursor>, bool);

/// What the chat service needs, as each server provides it.
pub(super) trait Chat {
    /// A heartbeat: `true` if it brought the user online.
    async fn beat(&self, user: u64) -> Result<bool, BoxError>;
    /// The user closes the app: `true` if they were online.
    async fn leave(&self, user: u64) -> Result<bool, BoxError>;
    /// Watches `users` (a gateway's users' contacts) and counts each change that arrives,
    /// until aborted.
    async fn watch(
        &self,
        users: Vec<u64>,
        changes: Rc<Changes>,
    ) -> Result<tokio::task::JoinHandle<()>, BoxError>;
    /// Which of `users` are online.
    async fn online(&self, users: &[u64]) -> Result<Vec<bool>, BoxError>;
    /// Appends a message to a conversation, keeping the newest `KEEP`.
    async fn append(&self, conversation: &str, id: u64) -> Result<(), BoxError>;
    /// Hands a message to a gateway: how many subscribers got it.
    async fn route(&self, gateway: &str, id: u64) -> Result<u64, BoxError>;
    /// Page `number` (0 = newest) of a conversation, after the page that ended at `after`.
    async fn page(
        &self,
        conversation: &str,
        number: usize,
        after: Option<Cursor>,
    ) -> Result<Page, BoxError>;
    /// Every message a conversation keeps, newest first.
    async fn history(&self, conversation: &str) -> Result<Vec<u64>, BoxError>;
    /// Subscribes to a gateway's channel and counts what arrives, until aborted.
    async fn listen(
        &self,
        gateway: String,
        received: Rc<Received>,
    ) -> Result<tokio::task::JoinHandle<()>, BoxError>;
}

/// Presence changes watchers received: per user, how many times each way, and the last.
#[derive(Default)]
pub struct Changes(pub(super) RefCell<HashMap<u64, (u32, u32, bool)>>);

impl Changes {
    fn got(&self, user: &[u8], online: bool) {
        let user = std::str::from_utf8(user)
            .ok()
            .and_then(|text| text.strip_prefix("u:")?.parse().ok());
        if let Some(user) = user {
            let mut changes = self.0.borrow_mut();
            let entry = changes.entry(user).or_insert((0, 0, online));
            if online {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
            entry.2 = online;
        }
    }
}

/// Messages each gateway received, by id.
#[derive(Default)]
pub struct Received(pub(super) RefCell<HashMap<u64, u32>>);

impl Received {
    fn got(&self, payload: &[u8]) {
        let id = std::str::from_utf8(payload)
            .ok()
            .and_then(|text| text.strip_prefix("m:")?.parse().ok());
        if let Some(id) = id {
            *self.0.borrow_mut().entry(id).or_default() += 1;
        }
    }
}

pub(super) struct Tessera(pub(super) Client);

impl Chat for Tessera {
    async fn beat(&self, user: u64) -> Result<bool, BoxError> {
        let key = format!("u:{user}");
        Ok(self
            .0
            .presence_beat(key, BEAT_TTL, Duration::ZERO, None)
            .await?)
    }

    async fn leave(&self, user: u64) -> Result<bool, BoxError> {
        Ok(self.0.presence_leave(format!("u:{user}")).await?)
    }

    async fn watch(
        &self,
        users: Vec<u64>,
        changes: Rc<Changes>,
    ) -> Result<tokio::task::JoinHandle<()>, BoxError> {
        let mut watcher = self.0.presence_watcher().await?;
        watcher
            .watch(users.iter().map(|u| format!("u:{u}")))
            .await?;
        Ok(tokio::task::spawn_local(async move {
            while let Some(change) = watcher.next().await {
                changes.got(&change.user, change.online);
            }
        }))
    }

    async fn online(&self, users: &[u64]) -> Result<Vec<bool>, BoxError> {
        let keys = users.iter().map(|u| format!("u:{u}"));
        let found = self.0.presence_get(keys).await?;
        Ok(found
            .iter()
            .map(|info| info.as_ref().is_some_and(|i| i.online))
            .collect())
    }

    async fn append(&self, conversation: &str, id: u64) -> Result<(), BoxError> {
        self.0
            .tl_push(conversation.to_string(), id, None, Some(KEEP))
            .await?;
        Ok(())
    }

    async fn route(&self, gateway: &str, id: u64) -> Result<u64, BoxError> {
        Ok(self
            .0
            .publish(gateway.to_string(), format!("m:{id}"))
            .await?)
    }

    async fn page(
        &self,
        conversation: &str,
        _number: usize,
        after: Option<Cursor>,
    ) -> Result<Page, BoxError> {
        let page = self
            .0
            .tl_range(conversation.to_string(), after, None, PAGE)
            .await?;
        let more = page.next.is_some();
        Ok((
            page.items.iter().map(|(id, _)| *id).collect(),
            page.next,
            more,
        ))
    }

    async fn history(&self, conversation: &str) -> Result<Vec<u64>, BoxError> {
        let mut ids = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .0
                .tl_range(conversation.to_string(), before, None, 100)
                .await?;
            ids.extend(page.items.iter().map(|(id, _)| *id));
            match page.next {
                Some(next) => before = Some(next),
                None => return Ok(ids),
            }
        }
    }

    async fn listen(
        &self,
        gateway: String,
        received: Rc<Received>,
    ) -> Result<tokio::task::JoinHandle<()>, BoxError> {
        let mut subscriber = self.0.subscriber().await?;
        subscriber.subscribe([gateway]).await?;
        Ok(tokio::task::spawn_local(async move {
            while let Some(message) = subscriber.next().await {
                received.got(&message.payload);
            }
        }))
    }
}

pub(super) struct Redis {
    pub(super) connection: MultiplexedConnection,
    pub(super) client: redis::Client,
}

impl Chat for Redis {
    /// SET ... GET tells whether the user was online; a change is then published on the
    /// user's presence channel, which contacts' gateways subscribe to.
    async fn beat(&self, user: u64) -> Result<bool, BoxError> {
        let mut connection = self.connection.clone();
        let before: Option<String> = redis::cmd("SET")
            .arg(format!("u:{user}"))
            .arg(1)
            .arg("EX")
            .arg(BEAT_TTL.as_secs())
            .arg("GET")
            .query_async(&mut connection)
            .await?;
        if before.is_none() {
            redis::cmd("PUBLISH")
                .arg(format!("presence:u:{user}"))
                .arg("online")
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(before.is_none())
    }

    async fn leave(&self, user: u64) -> Result<bool, BoxError> {
        let mut connection = self.connection.clone();
        let removed: u64 = redis::cmd("DEL")
            .arg(format!("u:{user}"))
            .query_async(&mut connection)
            .await?;
        if removed == 1 {
            redis::cmd("PUBLISH")
                .arg(format!("presence:u:{user}"))
                .arg("offline")
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(removed == 1)
    }

    async fn watch(
        &self,
        users: Vec<u64>,
        changes: Rc<Changes>,
    ) -> Result<tokio::task::JoinHandle<()>, BoxError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        let channels: Vec<String> = users.iter().map(|u| format!("presence:u:{u}")).collect();
        pubsub.subscribe(channels).await?;
        Ok(tokio::task::spawn_local(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let user = message.get_channel_name().trim_start_matches("presence:");
                changes.got(user.as_bytes(), message.get_payload_bytes() == b"online");
            }
        }))
    }

    async fn online(&self, users: &[u64]) -> Result<Vec<bool>, BoxError> {
        let mut mget = redis::cmd("MGET");
        for user in users {
            mget.arg(format!("u:{user}"));
        }
        let found: Vec<Option<String>> = mget.query_async(&mut self.connection.clone()).await?;
        Ok(found.iter().map(Option::is_some).collect())
    }

    async fn append(&self, conversation: &str, id: u64) -> Result<(), BoxError> {
        redis::pipe()
            .cmd("LPUSH")
            .arg(conversation)
            .arg(id)
            .ignore()
            .cmd("LTRIM")
            .arg(conversation)
            .arg(0)
            .arg(KEEP - 1)
            .ignore()
            .query_async::<()>(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    async fn route(&self, gateway: &str, id: u64) -> Result<u64, BoxError> {
        Ok(redis::cmd("PUBLISH")
            .arg(gateway)
            .arg(format!("m:{id}"))
            .query_async(&mut self.connection.clone())
            .await?)
    }

    /// Pages by offset, as a list allows: LRANGE 0 19, then 20 39, ...
    async fn page(
        &self,
        conversation: &str,
        number: usize,
        _after: Option<Cursor>,
    ) -> Result<Page, BoxError> {
        let first = number as i64 * i64::from(PAGE);
        let ids: Vec<u64> = redis::cmd("LRANGE")
            .arg(conversation)
            .arg(first)
            .arg(first + i64::from(PAGE) - 1)
            .query_async(&mut self.connection.clone())
            .await?;
        let more = ids.len() == PAGE as usize;
        Ok((ids, None, more))
    }

    async fn history(&self, conversation: &str) -> Result<Vec<u64>, BoxError> {
        Ok(redis::cmd("LRANGE")
            .arg(conversation)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection.clone())
            .await?)
    }

    async fn listen(
        &self,
        gateway: String,
        received: Rc<Received>,
    ) -> Result<tokio::task::JoinHandle<()>, BoxError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(gateway).await?;
        Ok(tokio::task::spawn_local(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                received.got(message.get_payload_bytes());
            }
        }))
    }
}
