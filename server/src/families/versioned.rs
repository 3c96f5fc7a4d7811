//! Versioned values on one shard: compare-and-set by version.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(
    keyspace: &mut Keyspace,
    command: &VersionedCommand<P>,
    now: u64,
) -> Value {
    match command {
        VersionedCommand::Get(key) => match keyspace.get(key.as_ref(), now) {
            Some(Stored::Versioned(versioned)) => Value::Map(vec![
                (Value::text("value"), to_value(&versioned.value)),
                (Value::text("version"), Value::Int(versioned.version as i64)),
            ]),
            Some(_) => wrong_type(),
            None => Value::Nil,
        },
        VersionedCommand::Set {
            key,
            value,
            if_version,
            ttl_ms,
        } => versioned_set(
            keyspace,
            key.as_ref(),
            value.as_ref(),
            *if_version,
            *ttl_ms,
            now,
        ),
    }
}

/// Writes a versioned value if `if_version` (when given) is still the current version;
/// a missing key is version 0.
fn versioned_set(
    keyspace: &mut Keyspace,
    key: &[u8],
    value: &[u8],
    if_version: Option<u64>,
    ttl_ms: Option<u64>,
    now: u64,
) -> Value {
    let found = keyspace.find(key, now);
    let current = match keyspace.value(&found) {
        None => 0,
        Some(Stored::Versioned(versioned)) => versioned.version,
        Some(_) => return wrong_type(),
    };
    let outcome = |ok, version: u64| {
        Value::Map(vec![
            (Value::text("ok"), Value::Bool(ok)),
            (Value::text("version"), Value::Int(version as i64)),
        ])
    };
    if if_version.is_some_and(|expected| expected != current) {
        return outcome(false, current);
    }
    let version = current + 1;
    let stored = Stored::Versioned(Box::new(Versioned {
        version,
        value: Blob::new(value),
    }));
    keyspace.write(found, key, stored, ttl_ms.map(|ms| now + ms));
    outcome(true, version)
}
