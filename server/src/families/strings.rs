//! The rest of the string commands on one shard: in-place edits, partial reads, GETDEL and
//! GETEX, float increments, MSETNX and expiry at an absolute time.

use tessera_protocol::commands::hashes::{ExpireCondition, TimeUnit};
use tessera_protocol::commands::{GetExpiry, StringCommand};

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &StringCommand<P>, now: u64) -> Value {
    let reply = run(keyspace, command, now);
    if !keyspace.watches.is_empty() {
        // A new deadline or a deletion can end a watched user's presence record.
        if let StringCommand::ExpireAt { key, .. } | StringCommand::GetDel(key) = command {
            watch::key_written(keyspace, key.as_ref(), now);
        }
    }
    reply
}

fn run<P: Payload>(keyspace: &mut Keyspace, command: &StringCommand<P>, now: u64) -> Value {
    match command {
        StringCommand::Append { key, value } => edit(
            keyspace,
            key.as_ref(),
            now,
            value.as_ref().is_empty(),
            |bytes| bytes.extend_from_slice(value.as_ref()),
        ),
        StringCommand::SetRange { key, offset, value } => {
            let offset = usize::try_from(*offset).unwrap_or(usize::MAX);
            let value = value.as_ref();
            if offset.saturating_add(value.len()) > keyspace.value_limit {
                return too_large();
            }
            edit(keyspace, key.as_ref(), now, value.is_empty(), |bytes| {
                if bytes.len() < offset + value.len() {
                    bytes.resize(offset + value.len(), 0);
                }
                bytes[offset..offset + value.len()].copy_from_slice(value);
            })
        }
        StringCommand::Strlen(key) => match read(keyspace, key.as_ref(), now) {
            Ok(bytes) => Value::Int(bytes.map_or(0, |b| b.len()) as i64),
            Err(error) => error,
        },
        StringCommand::GetRange { key, start, end } => match read(keyspace, key.as_ref(), now) {
            Ok(bytes) => {
                let bytes = bytes.unwrap_or_default();
                let range = byte_range(bytes.len(), *start, *end);
                Value::Bytes(Bytes::copy_from_slice(&bytes[range]))
            }
            Err(error) => error,
        },
        StringCommand::GetDel(key) => {
            let found = keyspace.find(key.as_ref(), now);
            let value = match keyspace.value(&found) {
                None => return Value::Nil,
                Some(Stored::Blob(blob)) => to_value(blob),
                Some(_) => return wrong_type(),
            };
            keyspace.remove(key.as_ref(), now);
            value
        }
        StringCommand::GetEx { key, expiry } => get_ex(keyspace, key.as_ref(), *expiry, now),
        StringCommand::IncrByFloat { key, delta } => {
            incr_by_float(keyspace, key.as_ref(), delta.get(), now)
        }
        StringCommand::MSetNx(pairs) => {
            if pairs
                .iter()
                .any(|(key, _)| keyspace.contains(key.as_ref(), now))
            {
                return Value::Int(0);
            }
            for (key, value) in pairs {
                keyspace.insert(key.as_ref(), Blob::new(value.as_ref()).into(), None, now);
            }
            Value::Int(1)
        }
        StringCommand::ExpireAt {
            key,
            at,
            unit,
            condition,
        } => {
            let name = match unit {
                TimeUnit::Seconds => "expireat",
                TimeUnit::Millis => "pexpireat",
            };
            match at.checked_mul(unit.millis()) {
                Some(at) => match expire_at(keyspace, key.as_ref(), at, *condition, now) {
                    Value::Error(_) => invalid_expire(name),
                    reply => reply,
                },
                None => invalid_expire(name),
            }
        }
        StringCommand::SetBit { key, offset, bit } => {
            let (byte, mask) = ((*offset / 8) as usize, 0x80u8 >> (offset % 8));
            if byte >= keyspace.value_limit {
                return too_large();
            }
            let mut was = false;
            let reply = edit(keyspace, key.as_ref(), now, false, |bytes| {
                if bytes.len() <= byte {
                    bytes.resize(byte + 1, 0);
                }
                was = bytes[byte] & mask != 0;
                if *bit {
                    bytes[byte] |= mask;
                } else {
                    bytes[byte] &= !mask;
                }
            });
            match reply {
                Value::Int(_) => Value::Int(i64::from(was)),
                error => error,
            }
        }
        StringCommand::GetBit { key, offset } => match read(keyspace, key.as_ref(), now) {
            Ok(bytes) => {
                let bytes = bytes.unwrap_or_default();
                let byte = bytes.get((*offset / 8) as usize).copied().unwrap_or(0);
                Value::Int(i64::from(byte & (0x80 >> (offset % 8)) != 0))
            }
            Err(error) => error,
        },
        StringCommand::ExpireTime { key, unit } => match keyspace.deadline(key.as_ref(), now) {
            None => Value::Int(-2),
            Some(None) => Value::Int(-1),
            Some(Some(deadline)) => Value::Int(match unit {
                TimeUnit::Millis => deadline as i64,
                TimeUnit::Seconds => (deadline as i64 + 500) / 1000,
            }),
        },
    }
}

/// Sets `key`'s deadline to Unix millisecond `at` if `condition` allows, deleting it when
/// `at` is already past; what EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT share.
pub fn expire_at(
    keyspace: &mut Keyspace,
    key: &[u8],
    at: i64,
    condition: ExpireCondition,
    now: u64,
) -> Value {
    if at > (now as i64).saturating_add(MAX_EXPIRE_MS) {
        return invalid_expire("expire");
    }
    let Some(current) = keyspace.deadline(key, now) else {
        return Value::Int(0);
    };
    // No expiry counts as forever for GT and LT.
    let current_or_forever = current.map_or(i64::MAX, |deadline| deadline as i64);
    let allowed = match condition {
        ExpireCondition::Always => true,
        ExpireCondition::IfNone => current.is_none(),
        ExpireCondition::IfSome => current.is_some(),
        ExpireCondition::IfLater => at > current_or_forever,
        ExpireCondition::IfEarlier => at < current_or_forever,
        ExpireCondition::IfSomeEarlier => current.is_some() && at < current_or_forever,
    };
    if !allowed {
        return Value::Int(0);
    }
    if at <= now as i64 {
        keyspace.remove(key, now);
    } else {
        keyspace.set_deadline(key, Some(at as u64), now);
    }
    Value::Int(1)
}

/// A string value's bytes (`None` if the key is missing); WRONGTYPE for other kinds.
fn read(keyspace: &mut Keyspace, key: &[u8], now: u64) -> Result<Option<Bytes>, Value> {
    match keyspace.get(key, now) {
        None => Ok(None),
        Some(Stored::Blob(blob)) => match to_value(blob) {
            Value::Bytes(bytes) => Ok(Some(bytes)),
            _ => Ok(None),
        },
        Some(_) => Err(wrong_type()),
    }
}

/// Changes a string value's bytes with `change` (a missing key starts empty) and answers
/// the length after; a change that adds nothing to a missing key creates nothing.
fn edit(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    adds_nothing: bool,
    change: impl FnOnce(&mut Vec<u8>),
) -> Value {
    let found = keyspace.find(key, now);
    let mut bytes = match keyspace.value(&found) {
        None if adds_nothing => return Value::Int(0),
        None => Vec::new(),
        Some(Stored::Blob(Blob::Int(n))) => n.to_string().into_bytes(),
        Some(Stored::Blob(blob)) => blob.as_bytes().unwrap_or_default().to_vec(),
        Some(_) => return wrong_type(),
    };
    change(&mut bytes);
    if bytes.len() > keyspace.value_limit {
        return too_large();
    }
    let length = bytes.len() as i64;
    if found.exists() {
        keyspace.replace_value(&found, Blob::new(&bytes).into());
    } else {
        keyspace.write(found, key, Blob::new(&bytes).into(), None);
    }
    Value::Int(length)
}

/// GETRANGE's bytes of a value `len` long, as Redis clamps them.
fn byte_range(len: usize, start: i64, end: i64) -> std::ops::Range<usize> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return 0..0;
    }
    let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    if len == 0 || start > end {
        return 0..0;
    }
    start as usize..end as usize + 1
}

fn get_ex(keyspace: &mut Keyspace, key: &[u8], expiry: GetExpiry, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let value = match keyspace.value(&found) {
        None => return Value::Nil,
        Some(Stored::Blob(blob)) => to_value(blob),
        Some(_) => return wrong_type(),
    };
    match expiry {
        GetExpiry::Keep => {}
        GetExpiry::Persist => keyspace.set_deadline_of(&found, None),
        GetExpiry::In(ms) => keyspace.set_deadline_of(&found, Some(now + ms)),
        GetExpiry::At(at) if at <= now => {
            keyspace.remove(key, now);
        }
        GetExpiry::At(at) if at > now + MAX_EXPIRE_MS as u64 => return invalid_expire("getex"),
        GetExpiry::At(at) => keyspace.set_deadline_of(&found, Some(at)),
    }
    value
}

fn incr_by_float(keyspace: &mut Keyspace, key: &[u8], delta: f64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let current = match keyspace.value(&found) {
        None => 0.0,
        Some(Stored::Blob(Blob::Int(n))) => *n as f64,
        Some(Stored::Blob(blob)) => match blob
            .as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|text| !text.starts_with(char::is_whitespace))
            .and_then(|text| text.parse::<f64>().ok())
            .filter(|x| !x.is_nan())
        {
            Some(x) => x,
            None => return Value::error(ErrorCode::NotFloat, "value is not a valid float"),
        },
        Some(_) => return wrong_type(),
    };
    let next = current + delta;
    if !next.is_finite() {
        return Value::error(
            ErrorCode::NotFloat,
            "increment would produce NaN or Infinity",
        );
    }
    let text = hashes::format_decimal(next);
    if found.exists() {
        keyspace.replace_value(&found, Blob::new(text.as_bytes()).into());
    } else {
        keyspace.write(found, key, Blob::new(text.as_bytes()).into(), None);
    }
    Value::Bytes(Bytes::from(text))
}

fn too_large() -> Value {
    Value::error(
        ErrorCode::ValueTooLarge,
        "string exceeds maximum allowed size (proto-max-bulk-len)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::commands::hashes::Finite;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn run(keyspace: &mut Keyspace, command: StringCommand, now: u64) -> Value {
        apply(keyspace, &command, now)
    }

    fn text(value: Value) -> String {
        match value {
            Value::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("not bytes: {other:?}"),
        }
    }

    #[test]
    fn getrange_clamps_as_redis_does() {
        assert_eq!(byte_range(5, 0, -1), 0..5);
        assert_eq!(byte_range(5, -3, -1), 2..5);
        assert_eq!(byte_range(5, 1, 100), 1..5);
        assert_eq!(byte_range(5, -100, 1), 0..2);
        assert_eq!(byte_range(5, 3, 1), 0..0);
        assert_eq!(byte_range(5, -1, -3), 0..0);
        assert_eq!(byte_range(0, 0, -1), 0..0);
    }

    #[test]
    fn append_and_setrange_edit_in_place_and_keep_the_expiry() {
        let mut keyspace = Keyspace::new();
        let append = |value: &str| StringCommand::Append {
            key: b("k"),
            value: b(value),
        };
        assert_eq!(run(&mut keyspace, append("hello"), 1), Value::Int(5));
        keyspace.set_deadline(b"k", Some(10_000), 1);
        assert_eq!(run(&mut keyspace, append(" world"), 1), Value::Int(11));
        let set_range = StringCommand::SetRange {
            key: b("k"),
            offset: 13,
            value: b("!"),
        };
        assert_eq!(run(&mut keyspace, set_range, 1), Value::Int(14));
        let Some(Stored::Blob(blob)) = keyspace.get(b"k", 1) else {
            panic!("k holds a string");
        };
        assert_eq!(blob.as_bytes().unwrap(), b"hello world\0\0!");
        assert_eq!(keyspace.deadline(b"k", 1), Some(Some(10_000)));
        // An empty write to a missing key creates nothing.
        let empty = StringCommand::SetRange {
            key: b("none"),
            offset: 5,
            value: b(""),
        };
        assert_eq!(run(&mut keyspace, empty, 1), Value::Int(0));
        assert!(!keyspace.contains(b"none", 1));
    }

    #[test]
    fn setrange_past_the_value_limit_is_refused_before_it_allocates() {
        let mut keyspace = Keyspace::new();
        keyspace.value_limit = 1 << 20;
        let huge = StringCommand::SetRange {
            key: b("k"),
            offset: 1 << 40,
            value: b("x"),
        };
        assert!(matches!(run(&mut keyspace, huge, 1), Value::Error(_)));
        assert!(!keyspace.contains(b"k", 1));
    }

    #[test]
    fn incrbyfloat_reads_integers_and_text_and_refuses_infinity() {
        let mut keyspace = Keyspace::new();
        let incr = |delta: f64| StringCommand::IncrByFloat {
            key: b("k"),
            delta: Finite::new(delta).unwrap(),
        };
        assert_eq!(text(run(&mut keyspace, incr(10.5), 1)), "10.5");
        assert_eq!(text(run(&mut keyspace, incr(0.1), 1)), "10.6");
        assert_eq!(text(run(&mut keyspace, incr(-10.6), 1)), "0");
        assert!(matches!(
            run(&mut keyspace, incr(f64::INFINITY), 1),
            Value::Error(_)
        ));
        keyspace.insert(b"n", Blob::Int(3).into(), None, 1);
        let on_int = StringCommand::IncrByFloat {
            key: b("n"),
            delta: Finite::new(1.5).unwrap(),
        };
        assert_eq!(text(run(&mut keyspace, on_int, 1)), "4.5");
    }

    #[test]
    fn expiry_conditions_compare_with_forever_for_keys_without_one() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(b"k", Blob::new(b"v").into(), None, 1);
        let at = |at: i64, condition| StringCommand::ExpireAt {
            key: b("k"),
            at,
            unit: TimeUnit::Millis,
            condition,
        };
        assert_eq!(
            run(&mut keyspace, at(5000, ExpireCondition::IfLater), 1),
            Value::Int(0)
        );
        assert_eq!(
            run(&mut keyspace, at(5000, ExpireCondition::IfSome), 1),
            Value::Int(0)
        );
        assert_eq!(
            run(&mut keyspace, at(5000, ExpireCondition::IfNone), 1),
            Value::Int(1)
        );
        assert_eq!(
            run(&mut keyspace, at(4000, ExpireCondition::IfLater), 1),
            Value::Int(0)
        );
        assert_eq!(
            run(&mut keyspace, at(6000, ExpireCondition::IfLater), 1),
            Value::Int(1)
        );
        assert_eq!(keyspace.deadline(b"k", 1), Some(Some(6000)));
        let expire_time = StringCommand::ExpireTime {
            key: b("k"),
            unit: TimeUnit::Seconds,
        };
        assert_eq!(run(&mut keyspace, expire_time, 1), Value::Int(6));
        // A time already past deletes the key.
        assert_eq!(
            run(&mut keyspace, at(0, ExpireCondition::Always), 10),
            Value::Int(1)
        );
        assert!(!keyspace.contains(b"k", 10));
    }

    #[test]
    fn bits_count_from_the_first_bytes_high_bit() {
        let mut keyspace = Keyspace::new();
        let set = |offset: u64, bit: bool| StringCommand::SetBit {
            key: b("k"),
            offset,
            bit,
        };
        assert_eq!(run(&mut keyspace, set(1, true), 1), Value::Int(0));
        assert_eq!(run(&mut keyspace, set(1, true), 1), Value::Int(1));
        assert_eq!(run(&mut keyspace, set(15, true), 1), Value::Int(0));
        let Some(Stored::Blob(blob)) = keyspace.get(b"k", 1) else {
            panic!("k holds a string");
        };
        assert_eq!(blob.as_bytes().unwrap(), [0x40, 0x01]);
        let get = |offset: u64| StringCommand::GetBit {
            key: b("k"),
            offset,
        };
        assert_eq!(run(&mut keyspace, get(1), 1), Value::Int(1));
        assert_eq!(run(&mut keyspace, get(2), 1), Value::Int(0));
        assert_eq!(run(&mut keyspace, get(1000), 1), Value::Int(0));
    }

    #[test]
    fn msetnx_writes_all_or_nothing() {
        let mut keyspace = Keyspace::new();
        let pairs =
            |names: &[&str]| StringCommand::MSetNx(names.iter().map(|n| (b(n), b("1"))).collect());
        assert_eq!(run(&mut keyspace, pairs(&["a", "b"]), 1), Value::Int(1));
        assert_eq!(run(&mut keyspace, pairs(&["c", "b"]), 1), Value::Int(0));
        assert!(!keyspace.contains(b"c", 1));
    }
}
