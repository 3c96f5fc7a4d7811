//! Lists on one shard: a double-ended queue of elements, and the L* commands.

use std::collections::VecDeque;

use super::*;
use tessera_protocol::commands::lists::{End, ListCommand};

/// A list's elements, head first, with their bytes counted as they change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
    bytes: usize,
}

impl List {
    /// A list of these elements, head first.
    pub fn from_elements<'a>(elements: impl Iterator<Item = &'a [u8]>) -> List {
        let mut list = List::default();
        elements.for_each(|e| list.push(End::Right, e.into()));
        list
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|e| &e[..])
    }

    /// Heap bytes held, counted in constant time.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.bytes
    }

    fn push(&mut self, end: End, element: Box<[u8]>) {
        self.bytes += element.len();
        match end {
            End::Left => self.items.push_front(element),
            End::Right => self.items.push_back(element),
        }
    }

    fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        let element = match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }?;
        self.bytes -= element.len();
        Some(element)
    }

    /// Redis's index: negative counts from the tail; `None` outside the list.
    fn position(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let at = if index < 0 { index + len } else { index };
        (0..len).contains(&at).then_some(at as usize)
    }

    /// Redis's range: both ends included, negative from the tail, clamped to the list;
    /// empty when nothing is in it.
    fn span(&self, start: i64, stop: i64) -> std::ops::Range<usize> {
        let len = self.items.len() as i64;
        let start = if start < 0 {
            (start + len).max(0)
        } else {
            start
        };
        let stop = if stop < 0 {
            stop + len
        } else {
            stop.min(len - 1)
        };
        if start > stop || start >= len {
            return 0..0;
        }
        start as usize..stop as usize + 1
    }

    fn retain_span(&mut self, keep: std::ops::Range<usize>) {
        self.items.truncate(keep.end);
        self.items.drain(..keep.start);
        self.bytes = self.items.iter().map(|e| e.len()).sum();
    }
}

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &ListCommand<P>, now: u64) -> Value {
    let key = command.single_key().map_or(&[][..], AsRef::as_ref);
    let result = match command {
        ListCommand::Push {
            end,
            existing_only,
            elements,
            ..
        } => push(keyspace, key, *end, *existing_only, elements, now),
        ListCommand::Pop { end, count, .. } => change(keyspace, key, now, Value::Nil, |list| {
            Ok(match count {
                None => list.pop(*end).map_or(Value::Nil, bytes_value),
                Some(count) => {
                    let taken = (*count).min(list.len() as u64) as usize;
                    Value::Array(
                        (0..taken)
                            .filter_map(|_| list.pop(*end))
                            .map(bytes_value)
                            .collect(),
                    )
                }
            })
        }),
        ListCommand::Set { index, element, .. } => {
            let missing = Value::error(ErrorCode::NotFound, "no such key");
            change(keyspace, key, now, missing, |list| {
                let at = list
                    .position(*index)
                    .ok_or_else(|| ErrorReply::new(ErrorCode::Syntax, "index out of range"))?;
                list.bytes = list.bytes - list.items[at].len() + element.as_ref().len();
                list.items[at] = element.as_ref().into();
                Ok(Value::Ok)
            })
        }
        ListCommand::Rem { count, element, .. } => {
            change(keyspace, key, now, Value::Int(0), |list| {
                Ok(Value::Int(remove(list, *count, element.as_ref())))
            })
        }
        ListCommand::Trim { start, stop, .. } => change(keyspace, key, now, Value::Ok, |list| {
            let keep = list.span(*start, *stop);
            list.retain_span(keep);
            Ok(Value::Ok)
        }),
        ListCommand::Insert {
            after,
            pivot,
            element,
            ..
        } => change(keyspace, key, now, Value::Int(0), |list| {
            let Some(at) = list.iter().position(|e| e == pivot.as_ref()) else {
                return Ok(Value::Int(-1));
            };
            list.bytes += element.as_ref().len();
            list.items
                .insert(at + usize::from(*after), element.as_ref().into());
            Ok(Value::Int(list.len() as i64))
        }),
        ListCommand::Move {
            destination,
            from,
            to,
            ..
        } => move_element(keyspace, key, destination.as_ref(), *from, *to, now),
        _ => read(keyspace, key, now, command),
    };
    result.unwrap_or_else(Value::Error)
}

fn bytes_value(element: Box<[u8]>) -> Value {
    Value::Bytes(Bytes::from(Vec::from(element)))
}

/// LREM: removes up to `count` (0: all) elements equal to `element`, from the tail when
/// `count` is negative.
fn remove(list: &mut List, count: i64, element: &[u8]) -> i64 {
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs().min(usize::MAX as u64) as usize
    };
    let mut removed = 0;
    let mut kept = VecDeque::with_capacity(list.len());
    let items = std::mem::take(&mut list.items);
    let ordered: Box<dyn Iterator<Item = Box<[u8]>>> = if count < 0 {
        Box::new(items.into_iter().rev())
    } else {
        Box::new(items.into_iter())
    };
    for item in ordered {
        if removed < limit && &item[..] == element {
            removed += 1;
            list.bytes -= item.len();
        } else if count < 0 {
            kept.push_front(item);
        } else {
            kept.push_back(item);
        }
    }
    list.items = kept;
    removed as i64
}

/// The reads: LLEN, LRANGE, LINDEX, LPOS.
fn read<P: Payload>(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    command: &ListCommand<P>,
) -> Result<Value, ErrorReply> {
    let limit = keyspace.reply_limit;
    let empty = List::default();
    let list = match keyspace.get(key, now) {
        Some(Stored::List(list)) => list,
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        None => &empty,
    };
    let copy = |e: &[u8]| Value::Bytes(Bytes::copy_from_slice(e));
    Ok(match command {
        ListCommand::Len(_) => Value::Int(list.len() as i64),
        ListCommand::Range { start, stop, .. } => {
            let span = list.span(*start, *stop);
            let size = list.items.range(span.clone()).map(|e| e.len()).sum();
            super::within_reply_limit(size, limit)?;
            Value::Array(list.items.range(span).map(|e| copy(e)).collect())
        }
        ListCommand::Index { index, .. } => list
            .position(*index)
            .map_or(Value::Nil, |at| copy(&list.items[at])),
        ListCommand::Pos {
            element,
            rank,
            count,
            max_len,
            ..
        } => positions(list, element.as_ref(), *rank, *count, *max_len),
        _ => Value::error(ErrorCode::Internal, "not a list read"),
    })
}

/// LPOS: the indices of matches, skipping the first `rank - 1` (from the tail when
/// `rank` is negative), looking at no more than `max_len` elements (0: all).
fn positions(list: &List, element: &[u8], rank: i64, count: Option<u64>, max_len: u64) -> Value {
    let len = list.len();
    let looked = if max_len == 0 {
        len
    } else {
        (max_len.min(len as u64)) as usize
    };
    let wanted = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => n.min(usize::MAX as u64) as usize,
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    let indices: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..looked)
    } else {
        Box::new((len - looked..len).rev())
    };
    for at in indices {
        if &list.items[at][..] != element {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        found.push(Value::Int(at as i64));
        if found.len() == wanted {
            break;
        }
    }
    match count {
        Some(_) => Value::Array(found),
        None => found.pop().unwrap_or(Value::Nil),
    }
}

fn push<P: Payload>(
    keyspace: &mut Keyspace,
    key: &[u8],
    end: End,
    existing_only: bool,
    elements: &[P],
    now: u64,
) -> Result<Value, ErrorReply> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        if existing_only {
            return Ok(Value::Int(0));
        }
        let mut list = List::default();
        elements
            .iter()
            .for_each(|e| list.push(end, e.as_ref().into()));
        let len = list.len();
        keyspace.write(found, key, Stored::List(Box::new(list)), None);
        return Ok(Value::Int(len as i64));
    }
    let pushed = keyspace.update(&found, |stored| match stored {
        Stored::List(list) => {
            elements
                .iter()
                .for_each(|e| list.push(end, e.as_ref().into()));
            Some(list.len())
        }
        _ => None,
    });
    match pushed.flatten() {
        Some(len) => Ok(Value::Int(len as i64)),
        None => Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
    }
}

/// Runs a change on an existing list, removing the key if it leaves the list empty; a
/// missing key answers `missing`.
fn change(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    missing: Value,
    change: impl FnOnce(&mut List) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    change_collection(keyspace, key, now, missing, as_list, List::is_empty, change)
}

/// LMOVE: the destination's kind is checked before anything is popped, so a refused move
/// changes nothing.
fn move_element(
    keyspace: &mut Keyspace,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
    now: u64,
) -> Result<Value, ErrorReply> {
    if let Some(stored) = keyspace.get(destination, now) {
        if !matches!(stored, Stored::List(_)) {
            return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE));
        }
    }
    let mut popped = None;
    change(keyspace, source, now, Value::Nil, |list| {
        popped = list.pop(from);
        Ok(Value::Nil)
    })?;
    let Some(element) = popped else {
        return Ok(Value::Nil);
    };
    let reply = Value::Bytes(Bytes::copy_from_slice(&element));
    push(
        keyspace,
        destination,
        to,
        false,
        &[Bytes::from(Vec::from(element))],
        now,
    )?;
    Ok(reply)
}

fn as_list(stored: &mut Stored) -> Option<&mut List> {
    match stored {
        Stored::List(list) => Some(&mut **list),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(keyspace: &mut Keyspace, line: &str) -> Value {
        let words: Vec<Bytes> = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let command = Command::parse_words(&words).expect(line);
        apply_owned(keyspace, &command, 1_000)
    }

    fn texts(value: Value) -> Vec<String> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => format!("{other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn pushes_pops_and_ranges_follow_redis() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, "RPUSH l a b c"), Value::Int(3));
        assert_eq!(run(&mut ks, "LPUSH l x y"), Value::Int(5));
        assert_eq!(
            texts(run(&mut ks, "LRANGE l 0 -1")),
            ["y", "x", "a", "b", "c"]
        );
        assert_eq!(texts(run(&mut ks, "LRANGE l -2 100")), ["b", "c"]);
        assert_eq!(texts(run(&mut ks, "LRANGE l 3 1")), Vec::<String>::new());
        assert_eq!(run(&mut ks, "LINDEX l -1"), Value::Bytes("c".into()));
        assert_eq!(run(&mut ks, "LINDEX l 9"), Value::Nil);
        assert_eq!(texts(run(&mut ks, "RPOP l 2")), ["c", "b"]);
        assert_eq!(run(&mut ks, "LPOP l"), Value::Bytes("y".into()));
        assert_eq!(run(&mut ks, "LPUSHX nothing a"), Value::Int(0));
        assert_eq!(run(&mut ks, "LPOP nothing 3"), Value::Nil);
        assert_eq!(texts(run(&mut ks, "LPOP l 10")), ["x", "a"]);
        assert!(
            ks.get(b"l", 1_000).is_none(),
            "the key goes with its last element"
        );
    }

    #[test]
    fn rem_trim_insert_pos_and_set_follow_redis() {
        let mut ks = Keyspace::new();
        run(&mut ks, "RPUSH l a b a c a d");
        assert_eq!(run(&mut ks, "LREM l -2 a"), Value::Int(2));
        assert_eq!(texts(run(&mut ks, "LRANGE l 0 -1")), ["a", "b", "c", "d"]);
        assert_eq!(run(&mut ks, "LINSERT l BEFORE c z"), Value::Int(5));
        assert_eq!(run(&mut ks, "LINSERT l AFTER missing z"), Value::Int(-1));
        assert_eq!(run(&mut ks, "LPOS l z"), Value::Int(2));
        run(&mut ks, "RPUSH l z");
        assert_eq!(
            run(&mut ks, "LPOS l z RANK -1 COUNT 0"),
            Value::Array(vec![Value::Int(5), Value::Int(2)])
        );
        assert_eq!(run(&mut ks, "LPOS l z MAXLEN 2"), Value::Nil);
        assert_eq!(run(&mut ks, "LSET l 0 first"), Value::Ok);
        assert!(matches!(run(&mut ks, "LSET l 40 x"), Value::Error(_)));
        assert!(matches!(run(&mut ks, "LSET none 0 x"), Value::Error(_)));
        assert_eq!(run(&mut ks, "LTRIM l 1 -2"), Value::Ok);
        assert_eq!(texts(run(&mut ks, "LRANGE l 0 -1")), ["b", "z", "c", "d"]);
        let Some(Stored::List(list)) = ks.get(b"l", 1_000) else {
            panic!("a list")
        };
        assert_eq!(list.bytes, 4, "the byte count follows every change");
    }

    #[test]
    fn lmove_checks_the_destination_before_popping() {
        let mut ks = Keyspace::new();
        run(&mut ks, "RPUSH {q}a 1 2 3");
        run(&mut ks, "SET {q}s x");
        assert!(matches!(
            run(&mut ks, "LMOVE {q}a {q}s LEFT LEFT"),
            Value::Error(_)
        ));
        assert_eq!(run(&mut ks, "LLEN {q}a"), Value::Int(3));
        assert_eq!(
            run(&mut ks, "LMOVE {q}a {q}b RIGHT LEFT"),
            Value::Bytes("3".into())
        );
        assert_eq!(
            run(&mut ks, "LMOVE {q}a {q}a LEFT RIGHT"),
            Value::Bytes("1".into())
        );
        assert_eq!(texts(run(&mut ks, "LRANGE {q}a 0 -1")), ["2", "1"]);
        assert_eq!(run(&mut ks, "LMOVE {q}none {q}b LEFT LEFT"), Value::Nil);
    }
}
