//! Timelines on one shard: capped pushes, fan-out parts, pages and merges.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &TimelineCommand<P>, now: u64) -> Value {
    match command {
        TimelineCommand::Push { key, item, cap } => {
            match tl_push(keyspace, key.as_ref(), *item, *cap, now) {
                Some(added) => Value::Int(i64::from(added)),
                None => wrong_type(),
            }
        }
        // A key of another kind among the followers is skipped, not the whole fan-out.
        TimelineCommand::Fanout { item, cap, keys } => Value::Int(
            keys.iter()
                .filter(|key| tl_push(keyspace, key.as_ref(), *item, *cap, now) == Some(true))
                .count() as i64,
        ),
        TimelineCommand::Range {
            key,
            before,
            after,
            limit,
        } => match keyspace.get(key.as_ref(), now) {
            Some(Stored::Timeline(timeline)) => {
                page_value(&timeline.range(*before, *after, *limit))
            }
            Some(_) => wrong_type(),
            None => page_value(&Page {
                items: Vec::new(),
                next: None,
            }),
        },
        TimelineCommand::Merge {
            limit,
            before,
            keys,
        } => match merge_pages(keyspace, keys, *before, *limit, now) {
            Ok(page) => page_value(&page),
            Err(error) => Value::Error(error),
        },
        TimelineCommand::Remove { key, id } => {
            change_timeline(keyspace, key.as_ref(), now, |t| i64::from(t.remove(*id)))
        }
        TimelineCommand::Len(key) => {
            change_timeline(keyspace, key.as_ref(), now, |t| t.len() as i64)
        }
        TimelineCommand::Trim { key, keep } => {
            change_timeline(keyspace, key.as_ref(), now, |t| t.trim(*keep) as i64)
        }
    }
}

/// Pushes onto a timeline, creating it if missing; `None` (and no change) if the key
/// holds another kind of value.
fn tl_push(
    keyspace: &mut Keyspace,
    key: &[u8],
    item: Cursor,
    cap: Option<u32>,
    now: u64,
) -> Option<bool> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        let mut timeline = Timeline::default();
        let added = timeline.push(item, cap);
        keyspace.write(found, key, Stored::Timeline(Box::new(timeline)), None);
        return Some(added);
    }
    keyspace
        .update(&found, |stored| match stored {
            Stored::Timeline(timeline) => Some(timeline.push(item, cap)),
            _ => None,
        })
        .flatten()
}

/// Runs `change` on an existing timeline and replies with its count; a missing key counts
/// 0, a key of another kind is WRONGTYPE.
fn change_timeline(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    change: impl FnOnce(&mut Timeline) -> i64,
) -> Value {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Timeline(timeline) => Some(change(timeline)),
        _ => None,
    });
    match outcome {
        Some(Some(n)) => Value::Int(n),
        Some(None) => wrong_type(),
        None => Value::Int(0),
    }
}

/// A page as the reply value: items as `[id, score]`, `next` as `[score, id]` or NIL.
pub fn page_value(page: &Page) -> Value {
    let items = page
        .items
        .iter()
        .map(|c| Value::Array(vec![Value::Int(c.id as i64), Value::Int(c.score)]))
        .collect();
    let next = page.next.map_or(Value::Nil, |c| {
        Value::Array(vec![Value::Int(c.score), Value::Int(c.id as i64)])
    });
    Value::Map(vec![
        (Value::text("items"), Value::Array(items)),
        (Value::text("next"), next),
    ])
}

/// TL.MERGE over the timelines this shard owns: their newest items, merged.
///
/// # Errors
/// `WrongType` if a key holds another kind of value.
pub fn merge_pages<P: Payload>(
    keyspace: &mut Keyspace,
    keys: &[P],
    before: Option<Cursor>,
    limit: u32,
    now: u64,
) -> Result<Page, ErrorReply> {
    let mut pages = Vec::with_capacity(keys.len());
    for key in keys {
        match keyspace.get(key.as_ref(), now) {
            Some(Stored::Timeline(timeline)) => pages.push(timeline.range(before, None, limit)),
            Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
            None => {}
        }
    }
    Ok(merge(pages, limit))
}
