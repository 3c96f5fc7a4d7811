//! Dedup marks on one shard: first writer wins.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &DedupCommand<P>, now: u64) -> Value {
    match command {
        DedupCommand::Check { key, ttl_ms } => {
            Value::Bool(dedup(keyspace, key.as_ref(), *ttl_ms, now))
        }
        DedupCommand::CheckMany { ttl_ms, keys } => Value::Array(
            check_many(keyspace, keys, *ttl_ms, now)
                .into_iter()
                .map(Value::Bool)
                .collect(),
        ),
    }
}

/// Records `key` for `ttl_ms` unless it is already there; `true` for the first sighting.
fn dedup(keyspace: &mut Keyspace, key: &[u8], ttl_ms: u64, now: u64) -> bool {
    let found = keyspace.find(key, now);
    if found.exists() {
        return false;
    }
    keyspace.write(found, key, Blob::new(b"").into(), Some(now + ttl_ms));
    true
}

/// DEDUP for each key in order; `true` for a first sighting.
pub fn check_many<P: Payload>(
    keyspace: &mut Keyspace,
    keys: &[P],
    ttl_ms: u64,
    now: u64,
) -> Vec<bool> {
    keys.iter()
        .map(|key| dedup(keyspace, key.as_ref(), ttl_ms, now))
        .collect()
}
