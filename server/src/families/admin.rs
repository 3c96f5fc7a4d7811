//! Node commands each shard answers for itself: DBSIZE and FLUSHALL.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &AdminCommand<P>, now: u64) -> Value {
    match command {
        AdminCommand::DbSize => Value::Int(keyspace.len() as i64),
        AdminCommand::FlushAll => {
            // Only watched keys that were there change; watching a missing key and
            // flushing leaves the transaction free to run, as in Redis.
            for key in keyspace.tx_watches.keys() {
                if keyspace.contains(&key, now) {
                    keyspace.tx_watches.touch(&key);
                }
            }
            keyspace.clear();
            for user in keyspace.watches.users() {
                watch::look(keyspace, &user, now);
            }
            Value::Ok
        }
        // Answered here only inside a transaction; alone, the connection answers it.
        AdminCommand::Ping(None) => Value::text("PONG"),
        AdminCommand::Ping(Some(message)) => Value::Bytes(Bytes::copy_from_slice(message.as_ref())),
        AdminCommand::Hello { .. }
        | AdminCommand::Info
        | AdminCommand::Snapshot
        | AdminCommand::LastSave
        | AdminCommand::Auth { .. }
        | AdminCommand::AclWhoami
        | AdminCommand::AclSetUser { .. }
        | AdminCommand::AclDelUser(_)
        | AdminCommand::AclList
        | AdminCommand::AclCat(_) => Value::error(ErrorCode::Internal, "not a shard operation"),
    }
}
