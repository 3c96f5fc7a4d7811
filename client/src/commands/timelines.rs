//! Timelines: pushes, fan-out, pages and merges.

use super::*;

/// A page of a timeline: `(id, score)` newest first, and the cursor for older items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePage {
    /// Items as `(id, score)`, newest first.
    pub items: Vec<(u64, i64)>,
    /// Pass as `before` to get the next, older page; `None` at the end.
    pub next: Option<Cursor>,
}

impl TimelinePage {
    fn from_reply(reply: &Value) -> Result<TimelinePage> {
        let bad = || Error::unexpected("a timeline page", reply);
        let Some(Value::Array(items)) = reply.get("items") else {
            return Err(bad());
        };
        let items = items
            .iter()
            .map(|item| match item {
                Value::Array(pair) => match pair[..] {
                    [Value::Int(id), Value::Int(score)] => Some((id as u64, score)),
                    _ => None,
                },
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        let next = match reply.get("next") {
            Some(Value::Array(pair)) => match pair[..] {
                [Value::Int(score), Value::Int(id)] => Some(Cursor {
                    score,
                    id: id as u64,
                }),
                _ => return Err(bad()),
            },
            _ => None,
        };
        Ok(TimelinePage { items, next })
    }
}

impl Client {
    /// TL.PUSH: adds `id` (scored `score`, default the id) to a timeline capped at `cap`.
    ///
    /// # Errors
    /// `Server` with `Syntax` for a cap out of range.
    pub async fn tl_push(
        &self,
        key: impl Into<Bytes>,
        id: u64,
        score: Option<i64>,
        cap: Option<u32>,
    ) -> Result<bool> {
        let item = Cursor {
            score: score.unwrap_or(id as i64),
            id,
        };
        Ok(expect_int(
            self.call(Command::Timelines(TimelineCommand::Push {
                key: bytes(key),
                item,
                cap,
            }))
            .await?,
        )? == 1)
    }

    /// TL.FANOUT: pushes one id into many timelines; returns how many took it.
    ///
    /// # Errors
    /// As `tl_push`.
    pub async fn tl_fanout<K: Into<Bytes>>(
        &self,
        id: u64,
        score: Option<i64>,
        cap: Option<u32>,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let item = Cursor {
            score: score.unwrap_or(id as i64),
            id,
        };
        let keys = keys.into_iter().map(Into::into).collect();
        Ok(expect_int(
            self.call(Command::Timelines(TimelineCommand::Fanout {
                item,
                cap,
                keys,
            }))
            .await?,
        )? as u64)
    }

    /// TL.RANGE: up to `limit` items older than `before` and newer than `after`.
    ///
    /// # Errors
    /// `Server` with `WrongType` for another kind of key.
    pub async fn tl_range(
        &self,
        key: impl Into<Bytes>,
        before: Option<Cursor>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<TimelinePage> {
        let command = Command::Timelines(TimelineCommand::Range {
            key: bytes(key),
            before,
            after,
            limit,
        });
        TimelinePage::from_reply(&self.call(command).await?)
    }

    /// TL.MERGE: one page over several timelines, newest first, without duplicate ids.
    ///
    /// # Errors
    /// As `tl_range`.
    pub async fn tl_merge<K: Into<Bytes>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        before: Option<Cursor>,
        limit: u32,
    ) -> Result<TimelinePage> {
        let keys = keys.into_iter().map(Into::into).collect();
        TimelinePage::from_reply(
            &self
                .call(Command::Timelines(TimelineCommand::Merge {
                    limit,
                    before,
                    keys,
                }))
                .await?,
        )
    }

    /// TL.LEN: items in a timeline.
    ///
    /// # Errors
    /// As `tl_range`.
    pub async fn tl_len(&self, key: impl Into<Bytes>) -> Result<u64> {
        Ok(expect_int(
            self.call(Command::Timelines(TimelineCommand::Len(bytes(key))))
                .await?,
        )? as u64)
    }
}
