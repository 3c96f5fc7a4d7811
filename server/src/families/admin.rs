//! Node commands each shard answers for itself: DBSIZE and FLUSHALL.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &AdminCommand<P>, now: u64) -> Value {
    match command {
        AdminCommand::DbSize => Value::Int(keyspace.len() as i64),
        AdminCommand::FlushAll => {
            keyspace.clear();
            for user in keyspace.watches.users() {
                watch::look(keyspace, &user, now);
            }
            Value::Ok
        }
        AdminCommand::Ping(_)
        | AdminCommand::Hello { .. }
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
