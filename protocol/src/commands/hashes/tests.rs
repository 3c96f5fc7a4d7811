//! Hash commands as text and on the wire: parses like redis-cli, refuses what Redis refuses.

use super::super::{Command, MAX_EXPIRE_MS};
use super::*;
use crate::error::ErrorCode;
use crate::value::ErrorReply;

fn words(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn parsed(line: &str) -> Result<Command, ErrorReply> {
    Command::parse_words(&words(line))
}

fn b(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

#[test]
fn text_forms_parse_like_redis() {
    assert_eq!(
        parsed("hset h a 1 b 2").unwrap(),
        Command::Hashes(HashCommand::Set {
            key: b("h"),
            pairs: vec![(b("a"), b("1")), (b("b"), b("2"))],
        })
    );
    assert_eq!(
        parsed("HEXPIRE h 10 GT FIELDS 2 a b").unwrap(),
        Command::Hashes(HashCommand::Expire {
            key: b("h"),
            ttl: 10,
            unit: TimeUnit::Seconds,
            condition: ExpireCondition::IfLater,
            fields: vec![b("a"), b("b")],
        })
    );
    assert_eq!(
        parsed("hpttl h FIELDS 1 a").unwrap(),
        Command::Hashes(HashCommand::Ttl {
            key: b("h"),
            unit: TimeUnit::Millis,
            fields: vec![b("a")],
        })
    );
}

#[test]
fn bad_text_forms_get_their_codes() {
    let code = |line: &str| parsed(line).err().and_then(|e| e.known_code());
    assert_eq!(code("hset h a"), Some(ErrorCode::Syntax));
    assert_eq!(code("hget h"), Some(ErrorCode::Syntax));
    assert_eq!(code("hget h a b"), Some(ErrorCode::Syntax));
    assert_eq!(code("hincrby h a x"), Some(ErrorCode::NotInteger));
    assert_eq!(code("hincrbyfloat h a nan"), Some(ErrorCode::NotFloat));
    assert_eq!(code("hincrbyfloat h a inf"), Some(ErrorCode::NotFloat));
    assert_eq!(code("hexpire h 10 FIELDS 2 a"), Some(ErrorCode::Syntax));
    assert_eq!(code("hexpire h 10 FIELDS 0"), Some(ErrorCode::Syntax));
    assert_eq!(code("hexpire h 10 a"), Some(ErrorCode::Syntax));
    assert_eq!(
        code("hexpire h -1 FIELDS 1 a"),
        Some(ErrorCode::InvalidExpire)
    );
    assert_eq!(code("hdel h"), Some(ErrorCode::Syntax));
}

#[test]
fn a_zero_expiry_is_kept_for_deleting() {
    assert!(matches!(
        parsed("hpexpire h 0 FIELDS 1 a").unwrap(),
        Command::Hashes(HashCommand::Expire { ttl: 0, .. })
    ));
    let too_long = format!("hexpire h {} FIELDS 1 a", MAX_EXPIRE_MS);
    assert_eq!(
        parsed(&too_long).err().and_then(|e| e.known_code()),
        Some(ErrorCode::InvalidExpire)
    );
}
