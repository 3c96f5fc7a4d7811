//! Idempotency records on one shard: leases, tokens and stored results.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &IdemCommand<P>, now: u64) -> Value {
    match command {
        IdemCommand::Begin {
            key,
            ttl_ms,
            lease_ms,
        } => idem_begin(keyspace, key.as_ref(), *ttl_ms, *lease_ms, now),
        IdemCommand::Complete { key, token, result } => {
            idem_complete(keyspace, key.as_ref(), *token, result.as_ref(), now)
        }
        IdemCommand::Get(key) => {
            let found = keyspace.find(key.as_ref(), now);
            match keyspace.value(&found) {
                Some(Stored::Idem(record)) => idem_reply(record, now),
                Some(_) => wrong_type(),
                None => Value::Nil,
            }
        }
    }
}

/// Starts (or reports) an idempotent operation. A missing record, or one whose holder's
/// lease has lapsed without a result, is handed to this caller with a new token.
fn idem_begin(keyspace: &mut Keyspace, key: &[u8], ttl_ms: u64, lease_ms: u64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let taken_over = keyspace.update(&found, |state| match state {
        Stored::Idem(record) if record.result.is_none() && record.lease_until <= now => {
            // The last holder's lease lapsed without a result: this caller takes over.
            record.token += 1;
            record.lease_until = now + lease_ms;
            Ok(record.token)
        }
        Stored::Idem(record) => Err(idem_reply(record, now)),
        _ => Err(wrong_type()),
    });
    let token = match taken_over {
        Some(Ok(token)) => token,
        Some(Err(reply)) => return reply,
        None => {
            let record = IdemRecord {
                token: 1,
                lease_until: now + lease_ms,
                result: None,
            };
            keyspace.write(
                found,
                key,
                Stored::Idem(Box::new(record)),
                Some(now + ttl_ms),
            );
            1
        }
    };
    Value::Map(vec![
        (Value::text("state"), Value::text("new")),
        (Value::text("token"), Value::Int(token as i64)),
    ])
}

fn idem_complete(
    keyspace: &mut Keyspace,
    key: &[u8],
    token: u64,
    result: &[u8],
    now: u64,
) -> Value {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |state| match state {
        Stored::Idem(record) if record.result.is_some() => {
            Value::error(ErrorCode::Conflict, "the operation is already complete")
        }
        Stored::Idem(record) if record.token != token => Value::error(
            ErrorCode::Conflict,
            "the lease for this token lapsed and another caller took the operation over",
        ),
        Stored::Idem(record) => {
            record.result = Some(result.into());
            Value::Ok
        }
        _ => wrong_type(),
    });
    outcome.unwrap_or_else(|| {
        Value::error(
            ErrorCode::NotFound,
            "no idempotency record (it may have expired)",
        )
    })
}

fn idem_reply(record: &IdemRecord, now: u64) -> Value {
    match &record.result {
        Some(result) => Value::Map(vec![
            (Value::text("state"), Value::text("done")),
            (
                Value::text("result"),
                Value::Bytes(Bytes::copy_from_slice(result)),
            ),
        ]),
        None => Value::Map(vec![
            (Value::text("state"), Value::text("in_progress")),
            (Value::text("token"), Value::Int(record.token as i64)),
            (
                Value::text("retry_after_ms"),
                Value::Int(record.lease_until.saturating_sub(now) as i64),
            ),
        ]),
    }
}
